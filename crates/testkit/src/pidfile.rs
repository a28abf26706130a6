//! Pidfiles: one decimal pid and a newline, replaced atomically so a reader never sees half.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The pid in the file at `path`, or `None` if the file is missing, empty or holds anything
/// but a positive decimal number (surrounding whitespace is allowed).
pub fn read_pidfile(path: impl AsRef<Path>) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    text.trim().parse().ok().filter(|&pid| pid != 0)
}

/// Writes `pid` and a newline to `path` atomically: to a temporary file beside it, renamed
/// over `path`.
pub fn write_pidfile(path: impl AsRef<Path>, pid: u32) -> io::Result<()> {
    let path = path.as_ref();
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, format!("{pid}\n"))?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        assert_eq!(read_pidfile(&path), None, "missing file");
        write_pidfile(&path, 4242).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        assert_eq!(read_pidfile(&path), Some(4242));
        write_pidfile(&path, 7).unwrap();
        assert_eq!(read_pidfile(&path), Some(7), "replaced");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        for garbage in ["", "\n", "abc", "12a", "-3", "0", "99999999999"] {
            fs::write(&path, garbage).unwrap();
            assert_eq!(read_pidfile(&path), None, "{garbage:?}");
        }
        fs::write(&path, "  55 \r\n").unwrap();
        assert_eq!(read_pidfile(&path), Some(55));
    }
}
