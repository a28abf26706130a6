//! journald, when systemd runs the program with its stderr connected to the journal.
//!
//! systemd says which stream that is in `JOURNAL_STREAM` (`DEVICE:INODE`). Only when stderr
//! is still that stream (not redirected by a wrapper script) and the journal's socket answers
//! are the log lines sent as structured entries instead of text: the event's fields become
//! journal fields, upper-cased and without a prefix (`journalctl -u NAME PORT=8080`), with
//! journald's `MESSAGE`, `PRIORITY` and `SYSLOG_IDENTIFIER` (the service's name).

use std::os::fd::AsRawFd as _;

/// Whether stderr is the stream systemd connected to the journal.
pub(super) fn stderr_is_journal() -> bool {
    std::env::var("JOURNAL_STREAM").is_ok_and(|stream| fd_is_stream(std::io::stderr().as_raw_fd(), &stream))
}

/// The journald layer; `None` when the journal's socket does not answer.
pub(super) fn layer(name: &str) -> Option<tracing_journald::Layer> {
    let layer = tracing_journald::layer().ok()?;
    Some(layer.with_field_prefix(None).with_syslog_identifier(name.to_owned()))
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, in decimal.
fn parse_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Whether `fd` is the stream `JOURNAL_STREAM` names.
fn fd_is_stream(fd: std::os::fd::RawFd, value: &str) -> bool {
    let Some((dev, ino)) = parse_stream(value) else { return false };
    // SAFETY: `stat` is plain data, for which all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into the stat buffer that we own; fd is only read (a closed fd
    // just makes it fail).
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between Unix flavours
    let (st_dev, st_ino) = (st.st_dev as u64, st.st_ino as u64);
    st_dev == dev && st_ino == ino
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn stream_values() {
        assert_eq!(parse_stream("8:12345"), Some((8, 12345)));
        for bad in ["", "8", "8:", ":1", "a:b", "8:1:2"] {
            assert_eq!(parse_stream(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_named_stream_matches() {
        let file = tempfile::tempfile().unwrap();
        let meta = file.metadata().unwrap();
        let value = format!("{}:{}", meta.dev(), meta.ino());
        assert!(fd_is_stream(file.as_raw_fd(), &value));
        assert!(!fd_is_stream(file.as_raw_fd(), &format!("{}:{}", meta.dev(), meta.ino() + 1)));
        assert!(!fd_is_stream(file.as_raw_fd(), "garbage"));
    }
}
