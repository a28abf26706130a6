//! `<state_dir>/update/pending.json`: a swap in flight, and `quarantined.json`: the versions
//! that were rolled back.
//!
//! `pending.json` is written before the installed binary is touched and rewritten after each
//! step, always atomically (a temp file, fsync, rename, fsync of the folder), so a steward
//! killed at any moment leaves either no file or a whole one. The daemon that starts next
//! reads it ([`super::boot`]): if it is the version being installed it counts the attempt;
//! if it is another (the old binary, after a rollback or a swap that never happened) it
//! clears the file.

use std::collections::BTreeSet;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of a swap in flight.
pub const PENDING: &str = "pending.json";
/// The file name of the versions that were rolled back.
pub const QUARANTINED: &str = "quarantined.json";

/// A swap in flight, from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The version installed before (the backup's).
    pub from: String,
    /// The version being installed.
    pub to: String,
    /// The installed binary that was replaced, and that a rollback restores: the one recorded
    /// here, never the running process's own path (which may be a wrapper).
    pub exe: PathBuf,
    /// The copy of the old binary, `<state_dir>/update/backup/steward-<from>`.
    pub backup: PathBuf,
    /// How many times the new binary has started without confirming.
    pub attempts: u32,
    pub step: Step,
}

/// Where the swap got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Recorded, backup made; the installed binary is still the old one.
    Recorded,
    /// The new binary is in place; the daemon has not been restarted yet.
    Swapped,
    /// The restart was asked of the service manager.
    Restarting,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Recorded => "recorded",
            Step::Swapped => "swapped",
            Step::Restarting => "restarting",
        }
    }
}

/// `pending.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is damaged ({source}); it was written by steward self-update: remove it if no update is under way", path.display())]
    Damaged { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {}; check the permissions of the folder and the free space", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// The swap in flight recorded in `dir`, if any.
pub fn read(dir: &Path) -> Result<Option<Pending>, PendingError> {
    let path = dir.join(PENDING);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PendingError::Read { path, source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| PendingError::Damaged { path, source })
}

/// Records `pending` in `dir`, atomically.
pub fn write(dir: &Path, pending: &Pending) -> Result<(), PendingError> {
    let json = serde_json::to_vec_pretty(pending).expect("pending.json serializes");
    write_atomic(&dir.join(PENDING), &json)
}

/// Removes the record in `dir` (none is fine).
pub fn remove(dir: &Path) -> Result<(), PendingError> {
    let path = dir.join(PENDING);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(PendingError::Write { path, source: e }),
        _ => {
            sync_dir(dir);
            Ok(())
        }
    }
}

/// The versions rolled back so far (an unreadable file counts as none: it only protects
/// from retrying a version that failed).
pub fn quarantined(dir: &Path) -> BTreeSet<String> {
    #[derive(Deserialize)]
    struct File {
        versions: BTreeSet<String>,
    }
    std::fs::read(dir.join(QUARANTINED))
        .ok()
        .and_then(|b| serde_json::from_slice::<File>(&b).ok())
        .map(|f| f.versions)
        .unwrap_or_default()
}

/// Adds `version` to `quarantined.json`.
pub fn quarantine(dir: &Path, version: &str) -> Result<(), PendingError> {
    let mut versions = quarantined(dir);
    versions.insert(version.to_owned());
    let json = serde_json::to_vec_pretty(&serde_json::json!({ "versions": versions }))
        .expect("quarantined.json serializes");
    write_atomic(&dir.join(QUARANTINED), &json)
}

/// Writes `bytes` to `path` through `path.tmp`: fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PendingError> {
    let tmp = path.with_extension("json.tmp");
    let written = (|| {
        let mut file = crate::private::open_options().write(true).create(true).truncate(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(PendingError::Write { path: path.to_path_buf(), source });
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Makes a rename in `dir` durable (Unix; Windows has no folder handle to sync).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pending {
        Pending {
            from: "1.0.0".into(),
            to: "1.1.0".into(),
            exe: "/usr/local/bin/steward".into(),
            backup: "/var/lib/steward/update/backup/steward-1.0.0".into(),
            attempts: 0,
            step: Step::Recorded,
        }
    }

    #[test]
    fn written_read_back_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read(tmp.path()).unwrap(), None);
        write(tmp.path(), &sample()).unwrap();
        assert_eq!(read(tmp.path()).unwrap(), Some(sample()));
        let text = std::fs::read_to_string(tmp.path().join(PENDING)).unwrap();
        assert!(text.contains("\"step\": \"recorded\""), "{text}");
        assert!(!tmp.path().join("pending.json.tmp").exists());
        remove(tmp.path()).unwrap();
        remove(tmp.path()).unwrap();
        assert_eq!(read(tmp.path()).unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(PENDING), b"{\"from\": ").unwrap();
        let e = read(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("pending.json is damaged"), "{e}");
    }

    #[test]
    fn quarantine_accumulates() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(quarantined(tmp.path()).is_empty());
        quarantine(tmp.path(), "1.1.0").unwrap();
        quarantine(tmp.path(), "1.2.0").unwrap();
        quarantine(tmp.path(), "1.1.0").unwrap();
        assert_eq!(quarantined(tmp.path()), BTreeSet::from(["1.1.0".to_owned(), "1.2.0".to_owned()]));
    }
}
