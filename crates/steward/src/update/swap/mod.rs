//! Replacing the installed steward binary: never by writing into it, always by a rename, so
//! the path names a whole binary at every moment (Unix) or is empty only between two renames
//! that are undone on failure (Windows).
//!
//! - Unix (`swap/unix.rs`): the new binary is copied beside the installed one as
//!   `.steward.new-<pid>`, fsynced, made 0755 and `rename()`d over it. The running process
//!   keeps its old inode: no ETXTBSY (writing into a running executable), and no poisoned
//!   code-signing cache on macOS (a signed binary changed in place is SIGKILLed at its next
//!   exec). A copy in the same folder: a rename across file systems fails (EXDEV).
//! - Windows (`swap/windows.rs`): a running `.exe` cannot be written or deleted, but it can be
//!   renamed. So `steward.exe` is renamed to `steward.exe.old-<version>`, the new one is
//!   copied in (retried with backoff on sharing violations: antivirus scanners open new
//!   executables), and if that fails the old one is renamed back. The `.old-*` file is still
//!   in use by the running process; the next steward deletes it at start ([`sweep`]).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

use std::io;
use std::path::{Path, PathBuf};

/// A swap step failed.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(
        "cannot replace {}: its folder is not writable by this user ({source}); if a package manager \
         installed steward there, update it with that package manager, or run self-update as the \
         user that owns the file",
        exe.display()
    )]
    NotWritable { exe: PathBuf, source: io::Error },
    #[error("{} is not a file steward can replace (pass --exe with the installed binary)", exe.display())]
    NotAFile { exe: PathBuf },
    #[error("cannot {what} {}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error(
        "moving the new binary in failed, and renaming the old one back from {} failed too ({back}): \
         {} is missing; rename {} back by hand",
        aside.display(), exe.display(), aside.display()
    )]
    Stranded { exe: PathBuf, aside: PathBuf, back: io::Error, source: io::Error },
}

impl SwapError {
    fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SwapError + 'a {
        move |source| SwapError::Io { what, path: path.to_path_buf(), source }
    }
}

/// Whether `exe` is a file this user can replace: its folder takes a new file (a probe file,
/// removed at once). A binary a package manager installed under a root-owned folder fails here.
pub fn check_replaceable(exe: &Path) -> Result<(), SwapError> {
    let meta = std::fs::metadata(exe).map_err(SwapError::io("read", exe))?;
    if !meta.is_file() {
        return Err(SwapError::NotAFile { exe: exe.to_path_buf() });
    }
    let probe = sibling(exe, &format!(".steward.probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(SwapError::NotWritable { exe: exe.to_path_buf(), source }),
    }
}

/// Puts a copy of `new` in place of `exe`. `old_version` names what `exe` was (the Windows
/// aside file). `new` is left where it is.
pub fn replace(new: &Path, exe: &Path, old_version: &str) -> Result<(), SwapError> {
    platform::replace(new, exe, old_version)
}

/// Copies `exe` to `backup` (through a temp file, fsynced) so a rollback has the old binary.
pub fn backup(exe: &Path, backup: &Path) -> Result<(), SwapError> {
    if let Some(dir) = backup.parent() {
        crate::private::create_dir_all(dir).map_err(SwapError::io("create", dir))?;
    }
    let tmp = backup.with_extension("tmp");
    copy_synced(exe, &tmp)?;
    std::fs::rename(&tmp, backup).map_err(SwapError::io("rename into place", backup))?;
    Ok(())
}

/// Leftovers of earlier swaps beside `exe`, removed (best effort; returns what was removed):
/// the renamed-aside `.old-*` files on Windows (in use until the old process ended), and on
/// every OS `.steward.new-*` copies of a self-update killed before its rename.
pub fn sweep(exe: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else { return Vec::new() };
    let aside = format!("{}.old-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let ours = file.starts_with(&aside) || file.starts_with(".steward.new-");
        if ours && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// `name` in `exe`'s folder.
fn sibling(exe: &Path, name: &str) -> PathBuf {
    exe.with_file_name(name)
}

/// Copies `from` to a new file `to` and fsyncs it.
fn copy_synced(from: &Path, to: &Path) -> Result<(), SwapError> {
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to).map_err(SwapError::io("copy the new binary to", to))?;
    let file = std::fs::OpenOptions::new().write(true).open(to).map_err(SwapError::io("open", to))?;
    file.sync_all().map_err(SwapError::io("fsync", to))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_backup_and_sweep() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join(if cfg!(windows) { "steward.exe" } else { "steward" });
        let new = tmp.path().join("new");
        std::fs::write(&exe, b"old").unwrap();
        std::fs::write(&new, b"new").unwrap();
        check_replaceable(&exe).unwrap();
        let kept = tmp.path().join("backup/steward-1.0.0");
        backup(&exe, &kept).unwrap();
        replace(&new, &exe, "1.0.0").unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        assert_eq!(std::fs::read(&kept).unwrap(), b"old");
        assert_eq!(std::fs::read(&new).unwrap(), b"new");
        std::fs::write(tmp.path().join(".steward.new-99999"), b"x").unwrap();
        let swept = sweep(&exe);
        assert!(swept.iter().any(|p| p.ends_with(".steward.new-99999")), "{swept:?}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }

    #[test]
    fn a_folder_is_not_a_binary() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(check_replaceable(tmp.path()), Err(SwapError::NotAFile { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_folder_is_refused_with_advice() {
        use std::os::unix::fs::PermissionsExt as _;
        if unsafe_is_root() {
            return; // root writes anywhere
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bin");
        std::fs::create_dir(&dir).unwrap();
        let exe = dir.join("steward");
        std::fs::write(&exe, b"old").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let e = check_replaceable(&exe).unwrap_err().to_string();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(e.contains("package manager"), "{e}");
    }

    #[cfg(unix)]
    fn unsafe_is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
