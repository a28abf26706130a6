//! One program's releases on disk: `<state_dir>/releases/<program>/`.
//!
//! - `<version>/`: a whole unpacked release (made only by renaming a complete staging folder).
//! - `.staging-…`, `.download-…`: work in flight; anything starting with `.` is left over from
//!   a killed steward and swept at start.
//! - `state.json`: the release history, written atomically; `state.json.prev` is the one before,
//!   which a damaged `state.json` is recovered from (and the caller reports it).

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::sys;

const STATE: &str = "state.json";
const STATE_PREV: &str = "state.json.prev";
const STATE_TMP: &str = "state.json.tmp";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {what} {}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error(
        "the release history is damaged: {} ({state_problem}) and {} ({prev_problem}); \
         restore one from a backup, or move both aside to start a new history (steward then \
         forgets the previous version, the floor and quarantined versions)",
        state.display(), prev.display()
    )]
    Damaged { state: PathBuf, state_problem: String, prev: PathBuf, prev_problem: String },
    #[error("cannot encode the release history for {}", path.display())]
    Encode { path: PathBuf, source: serde_json::Error },
}

/// A history read back, and whether it had to come from `state.json.prev`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadState<T> {
    pub state: T,
    /// Set when `state.json` was missing or damaged and the previous copy was used: the
    /// caller reports it (the last change may have been lost).
    pub recovered: Option<Recovered>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub damaged: PathBuf,
    pub problem: String,
    pub used: PathBuf,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {}; using the copy before it, {} (the last release change may be lost: check `steward status`)",
            self.damaged.display(),
            self.problem,
            self.used.display()
        )
    }
}

/// The releases folder of one program.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path, program: &str) -> Store {
        Store { dir: state_dir.join("releases").join(program) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the folder (owner-only) if missing.
    pub fn create(&self) -> Result<(), StoreError> {
        crate::private::create_dir_all(&self.dir).map_err(|source| io_err("create", &self.dir, source))
    }

    /// The versions unpacked here: folders whose names are versions (others are ignored).
    pub fn installed(&self) -> Result<BTreeSet<semver::Version>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(source) => return Err(io_err("read", &self.dir, source)),
        };
        let mut versions = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_err("read", &self.dir, source))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let version = entry.file_name().to_str().and_then(|n| semver::Version::parse(n).ok());
            if let (true, Some(v)) = (is_dir, version) {
                versions.insert(v);
            }
        }
        Ok(versions)
    }

    pub fn dir_of(&self, version: &semver::Version) -> PathBuf {
        self.dir.join(version.to_string())
    }

    /// A new, unused path to download `version`'s archive to (swept if steward dies).
    pub fn download_path(&self, version: &semver::Version) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!(".download-{version}-{}-{n}", std::process::id()))
    }

    /// Removes what a killed steward left (names starting with `.`); call it at start, before
    /// any deploy of this program. Returns what was removed; what could not be is logged.
    pub fn sweep_leftovers(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let result = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            match result {
                Ok(()) => removed.push(path),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover; will retry at the next start")
                }
            }
        }
        removed
    }

    /// Removes a version's folder. On Windows a file in use (a running program) makes this
    /// fail: the caller logs it and tries again at the next clean-up.
    pub fn remove(&self, version: &semver::Version) -> Result<(), StoreError> {
        let dir = self.dir_of(version);
        // Renamed aside first, so that a half-removed release never looks whole; a failed
        // removal leaves a `.`-name that the next start sweeps.
        let aside = self.dir.join(format!(".remove-{version}-{}", std::process::id()));
        match std::fs::rename(&dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(io_err("remove", &dir, source)),
        }
        std::fs::remove_dir_all(&aside).map_err(|source| io_err("remove", &aside, source))
    }

    /// The history, or `None` when there is none yet. A damaged `state.json` (empty, cut
    /// short, not the expected JSON) falls back to `state.json.prev`, flagged in `recovered`;
    /// both damaged is an error naming both. Never silently starts over.
    pub fn read_state<T: DeserializeOwned>(&self) -> Result<Option<ReadState<T>>, StoreError> {
        let (state, prev) = (self.dir.join(STATE), self.dir.join(STATE_PREV));
        let problem = match read_json::<T>(&state)? {
            Ok(value) => return Ok(Some(ReadState { state: value, recovered: None })),
            Err(problem) => problem,
        };
        let prev_problem = match read_json::<T>(&prev)? {
            Ok(value) => {
                let recovered = Recovered { damaged: state, problem, used: prev };
                tracing::warn!("{recovered}");
                return Ok(Some(ReadState { state: value, recovered: Some(recovered) }));
            }
            Err(problem) => problem,
        };
        match (problem.as_str(), prev_problem.as_str()) {
            (MISSING, MISSING) => Ok(None),
            _ => Err(StoreError::Damaged { state, state_problem: problem, prev, prev_problem }),
        }
    }

    /// Writes the history atomically: `state.json.tmp`, fsync, the current (if sound) copied to
    /// `state.json.prev`, then the rename over `state.json` and an fsync of the folder. A crash
    /// at any point leaves a sound `state.json` or `state.json.prev`.
    pub fn write_state<T: Serialize>(&self, state: &T) -> Result<(), StoreError> {
        self.create()?;
        let (path, prev, tmp) = (self.dir.join(STATE), self.dir.join(STATE_PREV), self.dir.join(STATE_TMP));
        let mut bytes = serde_json::to_vec_pretty(state)
            .map_err(|source| StoreError::Encode { path: path.clone(), source })?;
        bytes.push(b'\n');
        let mut file = crate::private::open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|source| io_err("write", &tmp, source))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| io_err("write", &tmp, source))?;
        drop(file);
        // Only a sound current becomes the previous copy: after a recovery, the damaged file is
        // not allowed to overwrite the good copy it was recovered from.
        if let Ok(current) = std::fs::read(&path) {
            if serde_json::from_slice::<serde_json::Value>(&current).is_ok() {
                copy_durably(&current, &prev)?;
            }
        }
        std::fs::rename(&tmp, &path).map_err(|source| io_err("replace", &path, source))?;
        sys::sync_dir(&self.dir).map_err(|source| io_err("sync", &self.dir, source))
    }
}

const MISSING: &str = "missing";

/// `Ok(Ok(value))`, `Ok(Err(problem))` for a missing or damaged file, `Err` when it cannot be
/// read at all (permissions: recovering from it would hide a real problem).
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Result<T, String>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(MISSING.to_owned())),
        Err(source) => return Err(io_err("read", path, source)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Err("empty".to_owned()));
    }
    Ok(serde_json::from_slice(&bytes).map_err(|e| format!("damaged: {e}")))
}

fn copy_durably(bytes: &[u8], to: &Path) -> Result<(), StoreError> {
    let mut file = crate::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(to)
        .map_err(|source| io_err("write", to, source))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|source| io_err("write", to, source))
}

fn io_err(what: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError::Io { what, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct H {
        current: String,
    }

    fn h(v: &str) -> H {
        H { current: v.into() }
    }

    #[test]
    fn state_round_trips_and_keeps_the_one_before() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "api");
        assert_eq!(store.read_state::<H>().unwrap(), None);
        store.write_state(&h("1.0.0")).unwrap();
        store.write_state(&h("1.1.0")).unwrap();
        let read = store.read_state::<H>().unwrap().unwrap();
        assert_eq!((read.state, read.recovered), (h("1.1.0"), None));
        let prev: H = serde_json::from_slice(&std::fs::read(store.dir().join(STATE_PREV)).unwrap()).unwrap();
        assert_eq!(prev, h("1.0.0"));
        assert!(!store.dir().join(STATE_TMP).exists());
    }

    #[test]
    fn a_damaged_state_is_recovered_from_the_copy_and_said_so() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "api");
        store.write_state(&h("1.0.0")).unwrap();
        store.write_state(&h("1.1.0")).unwrap();
        for damage in [&b""[..], b"{\"current\": \"1.1", b"\0\0\0\0"] {
            std::fs::write(store.dir().join(STATE), damage).unwrap();
            let read = store.read_state::<H>().unwrap().unwrap();
            assert_eq!(read.state, h("1.0.0"));
            let said = read.recovered.expect("flagged").to_string();
            assert!(said.contains("state.json.prev") && said.contains("may be lost"), "{said}");
        }
        // The next write does not copy the damaged file over the good one.
        store.write_state(&h("1.2.0")).unwrap();
        assert_eq!(store.read_state::<H>().unwrap().unwrap().state, h("1.2.0"));
        std::fs::write(store.dir().join(STATE), b"x").unwrap();
        assert_eq!(store.read_state::<H>().unwrap().unwrap().state, h("1.0.0"));
    }

    #[test]
    fn both_damaged_is_an_error_naming_both() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "api");
        store.create().unwrap();
        std::fs::write(store.dir().join(STATE), b"{").unwrap();
        let e = store.read_state::<H>().unwrap_err().to_string();
        assert!(e.contains("state.json (damaged") && e.contains("state.json.prev (missing)"), "{e}");
        assert!(e.contains("move both aside"), "{e}");
        // A missing state with a sound copy: recovered too (a crash between the two renames
        // of an older steward, or a hand that deleted it).
        std::fs::remove_file(store.dir().join(STATE)).unwrap();
        std::fs::write(store.dir().join(STATE_PREV), b"{\"current\": \"0.9.0\"}").unwrap();
        let read = store.read_state::<H>().unwrap().unwrap();
        assert_eq!(read.state, h("0.9.0"));
        assert!(read.recovered.unwrap().to_string().contains("missing"));
    }

    #[test]
    fn versions_leftovers_and_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "api");
        store.create().unwrap();
        for d in ["1.0.0", "1.10.0", "1.2.0-rc.1", "notes", ".staging-1.3.0-7-0", ".remove-1.0.0-7"] {
            std::fs::create_dir(store.dir().join(d)).unwrap();
        }
        std::fs::write(store.dir().join("1.9.0"), b"a file, not a release").unwrap();
        std::fs::write(store.dir().join(".download-1.3.0-7-1"), b"partial").unwrap();
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let installed: Vec<_> = store.installed().unwrap().into_iter().collect();
        assert_eq!(installed, [v("1.0.0"), v("1.2.0-rc.1"), v("1.10.0")]);
        let mut swept = store.sweep_leftovers();
        swept.sort();
        let names: Vec<_> =
            swept.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [".download-1.3.0-7-1", ".remove-1.0.0-7", ".staging-1.3.0-7-0"]);
        assert!(store.sweep_leftovers().is_empty());
        store.remove(&v("1.0.0")).unwrap();
        store.remove(&v("1.0.0")).unwrap();
        assert_eq!(store.installed().unwrap().len(), 2);
        assert_eq!(store.dir_of(&v("1.10.0")), tmp.path().join("releases").join("api").join("1.10.0"));
        assert!(store.download_path(&v("2.0.0")) != store.download_path(&v("2.0.0")));
        assert!(Store::new(&tmp.path().join("none"), "x").installed().unwrap().is_empty());
    }
}
