//! The Windows side of releases' file handling. A folder cannot be opened as a file to be
//! fsynced (it needs backup semantics), and NTFS journals its metadata, so `sync_dir` does
//! nothing. There are no mode bits: a program is executable by its extension. Symbolic links
//! need a privilege (or developer mode) that a service account rarely has, so an archive with
//! links is refused with a message saying so.

use std::fs::File;
use std::io;
use std::path::Path;

pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

pub fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

pub fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links in a release archive are not supported on Windows; ship a copy of the file",
    ))
}
