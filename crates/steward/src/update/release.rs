//! A release of steward itself: the manifest named `steward`, fetched from the source,
//! verified under the trusted keys and accepted for this host (the rules are steward-core's
//! `release::accept`), then its archive downloaded, checked and unpacked into
//! `<state_dir>/update/steward-<version>/`, where the binary is `steward` (`steward.exe`) at
//! the top or in `bin/`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use steward_core::release::{self, Artifact, Expect, Manifest, Refusal, Version};

use crate::releases::{self, Kind, Location};

/// The manifest's `name` for steward's own releases.
pub const NAME: &str = "steward";

/// What the source offers, verified.
pub struct Offer {
    pub manifest: Manifest,
    pub artifact: Artifact,
    /// The manifest's own place (artifact urls are relative to it).
    pub location: Location,
}

/// What the source says, against the running `installed` version.
pub enum Found {
    /// A version to install.
    Newer(Box<Offer>),
    /// The source's version is the one running.
    UpToDate(Version),
}

/// Fetches, verifies and accepts the manifest at `source` (a folder, a `.json` path or a
/// URL), signed by one of `keys`, against the `installed` version. With `reinstall`, the
/// installed version itself is offered again (never an older one).
pub async fn find(
    source: &str,
    keys: &[String],
    installed: &Version,
    reinstall: bool,
    quarantined: &std::collections::BTreeSet<String>,
) -> anyhow::Result<Found> {
    if keys.is_empty() {
        anyhow::bail!(
            "no trusted public key for steward's releases: set `public_keys` in [self_update] of the \
             config, or pass --key RW..."
        );
    }
    let location = Location::of_source(source)?;
    let (manifest, _) = releases::signed_manifest(&releases::Fetcher::default(), &location, keys).await?;
    if manifest.name != NAME {
        anyhow::bail!(
            "the manifest is for `{}`, not `{NAME}`: check [self_update] source (or --source)",
            manifest.name
        );
    }
    if quarantined.contains(&manifest.version.to_string()) && !reinstall {
        anyhow::bail!(
            "steward {} failed to start here after an earlier self-update and was rolled back \
             (quarantined.json in the state folder's update/); pass --reinstall to try it again",
            manifest.version
        );
    }
    let target = release::host_target();
    let again = reinstall && manifest.version == *installed;
    let expect = Expect {
        name: NAME,
        target: &target,
        now: SystemTime::now(),
        installed: (!again).then_some(installed),
        floor: None,
        allow_downgrade: false,
    };
    let artifact = match release::accept(&manifest, &expect) {
        Ok(a) => a.clone(),
        Err(Refusal::AlreadyInstalled { version }) => return Ok(Found::UpToDate(version)),
        Err(Refusal::Downgrade { version, newer, .. }) => anyhow::bail!(
            "the source offers steward {version}, older than the running {newer}: refusing to downgrade"
        ),
        Err(refusal) => return Err(refusal.into()),
    };
    Ok(Found::Newer(Box::new(Offer { manifest, artifact, location })))
}

/// Downloads and unpacks `offer` under `update_dir` (`<state_dir>/update`), returning the
/// new binary's path inside `update_dir/steward-<version>/`.
pub async fn stage(offer: &Offer, update_dir: &Path) -> anyhow::Result<PathBuf> {
    let version = offer.manifest.version.to_string();
    crate::private::create_dir_all(update_dir)
        .with_context(|| format!("cannot create {}", update_dir.display()))?;
    let kind = Kind::from_name(&offer.artifact.url)?;
    let from = offer.location.join(&offer.artifact.url)?;
    let archive = update_dir.join(format!(".download-{version}-{}", std::process::id()));
    releases::download(&from, &archive, offer.artifact.size, &offer.artifact.sha256)
        .await
        .context("cannot download the release")?;
    // unpack names its folder by the version; it goes into a staging parent first.
    let staging = update_dir.join(format!(".staging-{}", std::process::id()));
    crate::private::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let unpacked = releases::unpack_async(archive.clone(), kind, staging.clone(), version.clone()).await;
    let _ = std::fs::remove_file(&archive);
    let unpacked = unpacked?;
    let dest = update_dir.join(format!("{NAME}-{version}"));
    if dest.exists() {
        std::fs::remove_dir_all(&dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    }
    let moved = std::fs::rename(&unpacked, &dest)
        .with_context(|| format!("cannot move the release to {}", dest.display()));
    let _ = std::fs::remove_dir_all(&staging);
    moved?;
    binary_in(&dest)
}

/// The steward binary in an unpacked release: `steward` (`steward.exe`) at the top or in `bin/`.
pub fn binary_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = format!("{NAME}{}", std::env::consts::EXE_SUFFIX);
    [dir.join(&name), dir.join("bin").join(&name)].into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "the release has no {name} at its top or in bin/ ({}); it is not a steward release",
            dir.display()
        )
    })
}

/// Leftovers of a killed self-update in `update_dir` (`.download-*`, `.staging-*`), removed.
pub fn sweep(update_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(update_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".download-") {
            let _ = std::fs::remove_file(entry.path());
        } else if name.starts_with(".staging-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
