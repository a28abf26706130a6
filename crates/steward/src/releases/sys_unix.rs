//! The Unix side of releases' file handling: folders are fsynced by opening them, modes are
//! real, and symbolic links are made with `symlink(2)`.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Makes a folder's entries (files created, renamed or removed in it) durable. On Unix a
/// rename is only on disk once the folder holding it is fsynced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Sets a file's mode from an archive's: the executable bits are kept, group and others never
/// get write access, the owner always reads and writes.
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode((mode & 0o755) | 0o600))
}

pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
