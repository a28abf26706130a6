//! Folders and files that only steward's user may read: the state dir, the log dir and the
//! programs' output, which can hold anything a program prints (tokens, personal data).
//!
//! On Unix a folder steward creates is mode 0700 and a file 0600 from the moment it exists:
//! the mode goes to `mkdir`/`open` (narrowed further by the umask), it is not set afterwards,
//! so there is no moment at which another user could open it. A folder that already exists
//! keeps its mode: it may be shared on purpose, and steward does not change what it did not
//! make. On Windows, files and folders inherit the ACL of the folder they are created in.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` owner-only, and its missing parents with the usual mode. An existing `dir`
/// is left as it is.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Only Unix has a mode to set.
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        // Created meanwhile by someone else: as with an existing folder, fine.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// `OpenOptions` whose `create` makes an owner-only file.
pub fn open_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_owner_only_and_existing_ones_keep_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        create_dir_all(&dir).unwrap();

        let file = dir.join("f.log");
        open_options().create(true).append(true).open(&file).unwrap().write_all(b"x\n").unwrap();
        assert_eq!(mode(&file), 0o600);

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755);
    }
}
