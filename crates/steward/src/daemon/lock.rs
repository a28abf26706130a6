//! The single-instance lock: `<state_dir>/steward.lock`, held with an OS file lock for as
//! long as steward runs. The kernel drops the lock when the process dies, however it dies,
//! so a lock left by a crash is simply taken over: there is never a manual step. The file
//! also holds the owner's pid, for the error a second instance prints.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another steward (pid {pid}) is already running with state dir {dir}; \
         stop it first (`steward shutdown -c FILE`) or give this config another state_dir"
    )]
    Held { pid: String, dir: String },
    #[error("cannot take the lock {path}: {source}")]
    Io { path: String, source: io::Error },
}

impl InstanceLock {
    /// Take the lock, or say who holds it. Returns the pid of a previous owner that died
    /// without releasing it, if any (for the log).
    pub fn acquire(state_dir: &Path) -> Result<(InstanceLock, Option<String>), LockError> {
        let path = state_dir.join("steward.lock");
        let io_err = |source| LockError::Io { path: path.display().to_string(), source };
        let mut file = crate::private::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let mut previous = String::new();
        // Read before locking: on Windows a locked range cannot be read by others.
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().to_string();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: if previous.is_empty() { "unknown".into() } else { previous },
                    dir: state_dir.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        // A clean exit empties the file, so a pid left here means its owner died.
        let stale = (!previous.is_empty()).then_some(previous);
        Ok((InstanceLock { file, path }, stale))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_and_names_the_pid() {
        let d = tempfile::tempdir().unwrap();
        let (first, stale) = InstanceLock::acquire(d.path()).unwrap();
        assert!(stale.is_none());
        let err = InstanceLock::acquire(d.path()).err().expect("second lock refused");
        let msg = err.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        drop(first);
        // Released: the next one gets it, and a clean release leaves no stale pid.
        let (_again, stale) = InstanceLock::acquire(d.path()).unwrap();
        assert!(stale.is_none());
    }

    #[test]
    fn a_pid_left_by_a_dead_owner_is_reported_as_stale() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("steward.lock"), "999999\n").unwrap();
        let (_lock, stale) = InstanceLock::acquire(d.path()).unwrap();
        assert_eq!(stale.as_deref(), Some("999999"));
    }
}
