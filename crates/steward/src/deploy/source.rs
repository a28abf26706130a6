//! Getting a version to deploy onto the disk, whole and verified: from the release source
//! (manifest, signature, artifact), from a signed local archive (`--file`), or from what is
//! installed already.

use std::path::PathBuf;
use std::time::SystemTime;

use steward_core::config::ReleaseSource;
use steward_core::release::{self, Expect, History, Refusal, Version};

use super::{Request, Wanted};
use crate::releases::fetch::{self, Location};
use crate::releases::unpack::{self, Kind};
use crate::releases::{verify, Store};
use crate::supervise::ReleaseInfo;

/// A version unpacked whole in its folder.
pub(super) struct Staged {
    pub version: Version,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum StageError {
    /// The release is not acceptable: nothing is changed.
    #[error("{0}")]
    Refused(String),
    /// Nothing new to deploy (an automatic check).
    #[error("{0}")]
    NoNews(String),
    /// Getting or unpacking it failed.
    #[error("{0}")]
    Failed(String),
}

pub(super) async fn stage(
    info: &ReleaseInfo,
    store: &Store,
    history: &History,
    request: &Request,
    auto: bool,
) -> Result<Staged, StageError> {
    let program = request.program.as_str();
    let target = release::host_target();
    store.create().map_err(|e| StageError::Failed(e.to_string()))?;
    match &request.wanted {
        Wanted::File(path) => from_file(info, store, history, request, path).await,
        Wanted::Version(v) if store.dir_of(v).is_dir() => {
            if history.floor.as_ref().is_some_and(|f| v < f) && !request.allow_downgrade {
                return Err(StageError::Refused(format!(
                    "{v} is older than {}, the newest version {program} has run; `steward rollback {program}` goes back one version, or pass --allow-downgrade",
                    history.floor.as_ref().map(ToString::to_string).unwrap_or_default()
                )));
            }
            Ok(Staged { version: v.clone(), dir: store.dir_of(v) })
        }
        wanted => {
            let Some(source) = &info.spec.source else {
                return Err(StageError::Refused(format!(
                    "{program}'s [release] has no `source`; deploy a signed archive with --file, or add a source"
                )));
            };
            let manifest_at = manifest_of(source)?;
            let fetcher = match &info.spec.ca_file {
                Some(ca) => {
                    fetch::Fetcher::with_ca_file(ca).map_err(|e| StageError::Refused(e.to_string()))?
                }
                None => fetch::Fetcher::default(),
            };
            let (manifest, _) =
                crate::releases::signed_manifest(&fetcher, &manifest_at, &info.spec.public_keys)
                    .await
                    .map_err(|e| match e {
                        crate::releases::ManifestError::Fetch { .. } => StageError::Failed(e.to_string()),
                        _ => StageError::Refused(e.to_string()),
                    })?;
            if let Wanted::Version(v) = wanted {
                if &manifest.version != v {
                    return Err(StageError::Refused(format!(
                        "{v} is neither installed nor what the source offers ({} at {}); `steward versions {program}` lists what is installed",
                        manifest.version,
                        manifest_at
                    )));
                }
            }
            if auto && history.quarantined.contains(&manifest.version) {
                return Err(StageError::NoNews(format!(
                    "{} failed before and is quarantined; not retried by itself",
                    manifest.version
                )));
            }
            let expect = Expect {
                name: program,
                target: &target,
                now: SystemTime::now(),
                installed: info.active.as_ref(),
                floor: history.floor.as_ref(),
                allow_downgrade: request.allow_downgrade,
            };
            let artifact = match release::accept(&manifest, &expect) {
                Ok(a) => a.clone(),
                Err(Refusal::AlreadyInstalled { .. }) if auto => {
                    return Err(StageError::NoNews(format!("{program} already runs {}", manifest.version)))
                }
                Err(Refusal::AlreadyInstalled { .. }) => {
                    let dir = store.dir_of(&manifest.version);
                    return Ok(Staged { version: manifest.version.clone(), dir });
                }
                Err(refusal) => return Err(StageError::Refused(refusal.to_string())),
            };
            let version = manifest.version.clone();
            if store.dir_of(&version).is_dir() {
                return Ok(Staged { dir: store.dir_of(&version), version });
            }
            let kind = Kind::from_name(&artifact.url).map_err(|e| StageError::Refused(e.to_string()))?;
            let at = manifest_at.join(&artifact.url).map_err(|e| StageError::Refused(e.to_string()))?;
            let download = store.download_path(&version);
            tracing::info!(
                program,
                event = "release-download",
                "downloading {program} {version} from {}",
                at
            );
            fetcher
                .download(&at, &download, artifact.size, &artifact.sha256)
                .await
                .map_err(|e| StageError::Failed(e.to_string()))?;
            let dir = unpack_blocking(download.clone(), kind, store, &version).await;
            let _ = std::fs::remove_file(&download);
            Ok(Staged { version, dir: dir? })
        }
    }
}

/// `--file ARCHIVE`: its signature (`ARCHIVE.minisig`) must verify, and its trusted comment
/// name the program and the version.
async fn from_file(
    info: &ReleaseInfo,
    store: &Store,
    history: &History,
    request: &Request,
    path: &std::path::Path,
) -> Result<Staged, StageError> {
    let program = request.program.as_str();
    let sig_path = PathBuf::from(format!("{}.minisig", path.display()));
    let kind = Kind::from_name(&path.to_string_lossy()).map_err(|e| StageError::Refused(e.to_string()))?;
    let (data, signature) = {
        let (p, s) = (path.to_owned(), sig_path.clone());
        tokio::task::spawn_blocking(move || (std::fs::read(&p), std::fs::read(&s)))
            .await
            .map_err(|e| StageError::Failed(e.to_string()))?
    };
    let data = data.map_err(|e| StageError::Refused(format!("cannot read {}: {e}", path.display())))?;
    let signature = signature.map_err(|e| {
        StageError::Refused(format!(
            "cannot read the signature {}: {e}; sign the archive with `minisign -S -m {} -t \"name={program} version=X.Y.Z\"`",
            sig_path.display(),
            path.display()
        ))
    })?;
    let verified = verify::verify(&data, &signature, &info.spec.public_keys)
        .map_err(|e| StageError::Refused(format!("{} is refused: {e}", path.display())))?;
    let (name, version) = release::file_release(&verified.trusted_comment)
        .map_err(|e| StageError::Refused(format!("{}: {e}", sig_path.display())))?;
    if name != program {
        return Err(StageError::Refused(format!(
            "{} is signed as a release of {name:?}, not of {program:?}",
            path.display()
        )));
    }
    let older = |than: &Version| &version < than;
    if !request.allow_downgrade {
        if let Some(f) = history.floor.as_ref().filter(|f| older(f)) {
            return Err(StageError::Refused(format!(
                "{version} is older than {f}, the newest version {program} has run; pass --allow-downgrade to deploy it anyway"
            )));
        }
    }
    if store.dir_of(&version).is_dir() {
        return Ok(Staged { dir: store.dir_of(&version), version });
    }
    let dir = unpack_blocking(path.to_owned(), kind, store, &version).await?;
    Ok(Staged { version, dir })
}

async fn unpack_blocking(
    archive: PathBuf,
    kind: Kind,
    store: &Store,
    version: &Version,
) -> Result<PathBuf, StageError> {
    let parent = store.dir().to_owned();
    let v = version.to_string();
    tokio::task::spawn_blocking(move || unpack::unpack(&archive, kind, &parent, &v))
        .await
        .map_err(|e| StageError::Failed(e.to_string()))?
        .map_err(|e| StageError::Refused(e.to_string()))
}

/// The manifest's place for a `[release] source`.
fn manifest_of(source: &ReleaseSource) -> Result<Location, StageError> {
    let text = match source {
        ReleaseSource::Url(url) => url.clone(),
        ReleaseSource::Path(p) => p.display().to_string(),
    };
    Location::of_source(&text).map_err(|e| StageError::Refused(e.to_string()))
}

/// How a source is shown (no userinfo, no query: they can hold a token).
pub fn describe(source: &ReleaseSource) -> String {
    manifest_of(source).map_or_else(|_| "(invalid)".to_owned(), |l| l.to_string())
}
