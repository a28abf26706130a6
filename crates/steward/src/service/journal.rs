//! steward's own log to journald, with structured fields, when systemd runs it.
//!
//! systemd connects a service's stderr to the journal and says so in `JOURNAL_STREAM`
//! (`DEVICE:INODE` of that stream). Only when stderr is still that stream (not redirected by
//! a wrapper script) and the journal's socket answers does steward send its log lines to
//! journald as structured entries instead of text on stderr. Field names are the tracing
//! fields, upper-cased, without a prefix: `PROGRAM`, `EVENT`, `EXIT_CODE`, `PID`, `FROM`,
//! `TO`, plus journald's `MESSAGE`, `PRIORITY` (error 3, warn 4, info 5, debug 6) and
//! `SYSLOG_IDENTIFIER=steward`. So `journalctl -u NAME PROGRAM=web` shows one program's
//! events, and `journalctl -u NAME EVENT=fatal` every program that gave up.

use std::os::fd::AsRawFd as _;

/// The journald layer, when steward's stderr is connected to the journal.
pub fn layer() -> Option<tracing_journald::Layer> {
    let stream = std::env::var("JOURNAL_STREAM").ok()?;
    if !fd_is_stream(std::io::stderr().as_raw_fd(), &stream) {
        return None;
    }
    // Fails when the journal's socket is not there; stderr still reaches the journal then.
    let layer = tracing_journald::layer().ok()?;
    Some(layer.with_field_prefix(None))
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
