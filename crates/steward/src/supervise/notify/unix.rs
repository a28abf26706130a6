//! Readiness of programs with `ready = "notify"`: systemd's sd_notify protocol, with steward
//! in systemd's place.
//!
//! Before each start of such a program, its task binds a Unix datagram socket at
//! `<state_dir>/notify/NAME.sock` and passes the path in `NOTIFY_SOCKET`. The program (or
//! anything it runs: `systemd-notify --ready` from a wrapper script works too) sends datagrams
//! of newline-separated `KEY=value` assignments; `READY=1` makes the program `running`.
//! `STATUS=...` goes to steward's log at debug level; everything else is ignored.
//!
//! A fresh socket for each start means a late message from an earlier run can never mark
//! the new one ready: the old socket, and whatever was queued on it, is gone. The socket file
//! is removed when the handle is dropped (after the process exits, or when the task ends).
//! Its folder is private to steward's user (0700), so other users cannot send to it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use tokio::net::UnixDatagram;

/// The variables a program gets on top of its own `env`: its `NOTIFY_SOCKET` when it has one,
/// and none of the service manager's variables meant for steward itself (with them, a
/// systemd-aware program would report to systemd, which ignores it, instead of to steward).
pub fn child_env(socket: Option<&NotifySocket>) -> Vec<(&'static str, Option<OsString>)> {
    vec![
        ("NOTIFY_SOCKET", socket.map(|s| s.path.clone().into_os_string())),
        ("WATCHDOG_USEC", None),
        ("WATCHDOG_PID", None),
    ]
}

/// A bound notify socket; removes its file on drop.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `<state_dir>/notify/<program>.sock`, replacing a stale file left by a steward
    /// that was killed. The error says what to change.
    pub fn bind(state_dir: &Path, program: &str) -> io::Result<NotifySocket> {
        let dir = state_dir.join("notify");
        create_private_dir(&dir)?;
        let path = dir.join(format!("{program}.sock"));
        // sockaddr_un holds 108 bytes on Linux and 104 on macOS, with the final NUL.
        let max = if cfg!(target_os = "linux") { 107 } else { 103 };
        let len = path.as_os_str().len();
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the notify socket path {} is {len} bytes, longer than the {max} a socket path may \
                     have; set a shorter [supervisor] state_dir",
                    path.display()
                ),
            ));
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("cannot replace {}: {e}", path.display())))
            }
        }
        let socket = UnixDatagram::bind(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind the notify socket {}: {e}", path.display()))
        })?;
        Ok(NotifySocket { socket, path })
    }

    /// Waits for a datagram with `READY=1`, logging `STATUS=` lines on the way. Cancel-safe:
    /// a datagram is either taken whole and handled before the next await, or left queued.
    pub async fn ready(&self, program: &str) {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match self.socket.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(program, event = "notify-failed", "reading the notify socket failed: {e}");
                    // A socket that cannot be read will not become readable: wait for the exit.
                    return std::future::pending().await;
                }
            };
            let message = parse(&buf[..n]);
            if let Some(status) = &message.status {
                tracing::debug!(program, event = "notify-status", "STATUS={status}");
            }
            if message.ready {
                return;
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits for readiness on `socket`, or forever when there is none (a `select!` branch).
pub async fn ready(socket: Option<&NotifySocket>, program: &str) {
    match socket {
        Some(s) => s.ready(program).await,
        None => std::future::pending().await,
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {
            // An existing folder keeps its mode with `recursive`: make sure.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
    }
}

/// What one datagram said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub ready: bool,
    pub status: Option<String>,
    pub stopping: bool,
}

/// Parses newline-separated `KEY=value` assignments; unknown keys and malformed lines are
/// ignored, as systemd does.
pub fn parse(datagram: &[u8]) -> Message {
    let text = String::from_utf8_lossy(datagram);
    let mut message = Message::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("READY", "1")) => message.ready = true,
            Some(("STOPPING", "1")) => message.stopping = true,
            Some(("STATUS", s)) => message.status = Some(s.to_owned()),
            _ => {}
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams() {
        assert_eq!(parse(b"READY=1"), Message { ready: true, ..Message::default() });
        assert_eq!(
            parse(b"STATUS=warming up\nMAINPID=42\n"),
            Message { status: Some("warming up".into()), ..Message::default() }
        );
        assert_eq!(
            parse(b"READY=1\nSTATUS=serving\n"),
            Message { ready: true, status: Some("serving".into()), stopping: false }
        );
        assert!(parse(b"STOPPING=1").stopping);
        for not_ready in [&b"READY=0"[..], b"READY", b"ready=1", b"", b"\xff\xfe", b"XREADY=1"] {
            assert!(!parse(not_ready).ready, "{not_ready:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ready_after_a_status_and_the_file_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let sock = NotifySocket::bind(dir.path(), "p").unwrap();
        let path = sock.path.clone();
        assert_eq!(path, dir.path().join("notify/p.sock"));
        let env = child_env(Some(&sock));
        assert_eq!(env[0], ("NOTIFY_SOCKET", Some(path.clone().into_os_string())));
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.send_to(b"STATUS=almost", &path).unwrap();
        client.send_to(b"READY=1\n", &path).unwrap();
        sock.ready("p").await;
        drop(sock);
        assert!(!path.exists());
        // A socket file left by a steward that was killed is replaced.
        drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
        assert!(path.exists());
        let again = NotifySocket::bind(dir.path(), "p").unwrap();
        drop(again);
        assert!(!path.exists());
        assert_eq!(child_env(None)[0], ("NOTIFY_SOCKET", None));
    }

    #[test]
    fn too_long_a_path_says_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x".repeat(120));
        let err = NotifySocket::bind(&deep, "p").unwrap_err();
        assert!(err.to_string().contains("set a shorter [supervisor] state_dir"), "{err}");
    }
}
