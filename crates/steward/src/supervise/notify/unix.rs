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
//!
//! Other processes of that user can, so on Linux a datagram counts only if the kernel says
//! it comes from the program's process group: the program itself or anything it started
//! that stayed in its group (a wrapper script's `systemd-notify`). That is systemd's
//! `NotifyAccess=all` narrowed to the program's own tree; what comes from elsewhere is
//! ignored, and the first such message is logged (`notify-refused`, with the sender's pid).
//! macOS and the BSDs do not say who sent a datagram: there the folder's mode is the check.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UnixDatagram;

// Who sent a datagram: the kernel says on Linux.
#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod sender;

/// Elsewhere a datagram does not carry its sender.
#[cfg(not(target_os = "linux"))]
mod sender {
    use std::io;

    use tokio::net::UnixDatagram;

    use super::Sender;

    pub(super) fn pass_credentials(_socket: &UnixDatagram) -> io::Result<()> {
        Ok(())
    }

    pub(super) async fn recv(socket: &UnixDatagram, buf: &mut [u8]) -> io::Result<(usize, Sender)> {
        socket.recv(buf).await.map(|n| (n, Sender::Unknown))
    }
}

/// Who sent a datagram. Each OS knows only one of the two (the tests use both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sender {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Pid(u32),
    /// The OS does not say.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Unknown,
}

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
    /// The program's pid, which leads its process group; until it is set, no datagram
    /// with a known sender counts.
    main_pid: Option<u32>,
    /// Whether a datagram from outside the program's group was logged already.
    refused: AtomicBool,
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
        sender::pass_credentials(&socket).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot ask for senders on the notify socket {}: {e}", path.display()),
            )
        })?;
        Ok(NotifySocket { socket, path, main_pid: None, refused: AtomicBool::new(false) })
    }

    /// The program started with this pid: messages from its process group count.
    pub fn set_main_pid(&mut self, pid: u32) {
        self.main_pid = Some(pid);
    }

    /// Whether a datagram from `sender` may speak for the program.
    fn accepts(&self, sender: Sender) -> bool {
        match (sender, self.main_pid) {
            (Sender::Unknown, _) => true,
            (Sender::Pid(pid), Some(main)) => pid == main || in_group(pid, main),
            (Sender::Pid(_), None) => false,
        }
    }

    /// Waits for a datagram with `READY=1`, logging `STATUS=` lines on the way. Cancel-safe:
    /// a datagram is either taken whole and handled before the next await, or left queued.
    pub async fn ready(&self, program: &str) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, sender) = match sender::recv(&self.socket, &mut buf).await {
                Ok(received) => received,
                Err(e) => {
                    tracing::warn!(program, event = "notify-failed", "reading the notify socket failed: {e}");
                    // A socket that cannot be read will not become readable: wait for the exit.
                    return std::future::pending().await;
                }
            };
            if !self.accepts(sender) {
                if !self.refused.swap(true, Ordering::Relaxed) {
                    let pid = match sender {
                        Sender::Pid(pid) => pid,
                        Sender::Unknown => 0,
                    };
                    tracing::warn!(program, event = "notify-refused", pid,
                        "ignored a message on the notify socket from pid {pid}, which is not in the program's \
                         process group (further ones are ignored without a word)");
                }
                continue;
            }
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
/// Boxed when there is a socket: inline, every program's task would be sized for it.
pub async fn ready(socket: Option<&NotifySocket>, program: &str) {
    match socket {
        Some(s) => Box::pin(s.ready(program)).await,
        None => std::future::pending().await,
    }
}

/// Whether process `pid` is in process group `group` (a zombie still is, until reaped).
fn in_group(pid: u32, group: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: getpgid only reads.
    let pgid = unsafe { libc::getpgid(pid) };
    pid > 0 && pgid > 0 && pgid.unsigned_abs() == group
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
        let mut sock = NotifySocket::bind(dir.path(), "p").unwrap();
        // This test sends as the program would: from the program's pid.
        sock.set_main_pid(std::process::id());
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

    #[tokio::test(flavor = "current_thread")]
    async fn only_the_programs_process_group_speaks_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut sock = NotifySocket::bind(dir.path(), "p").unwrap();
        let me = std::process::id();
        let sender = if cfg!(target_os = "linux") { Sender::Pid(me) } else { Sender::Unknown };
        assert!(!sock.accepts(Sender::Pid(me)), "before the program started");
        // SAFETY: getpgid(0) only reads.
        let my_group = unsafe { libc::getpgid(0) }.unsigned_abs();
        sock.set_main_pid(my_group);
        assert!(sock.accepts(sender), "a member of the program's group");
        sock.set_main_pid(u32::MAX - 1);
        assert!(!sock.accepts(Sender::Pid(me)), "outside the program's group");
        assert!(!sock.accepts(Sender::Pid(0)), "no credentials");
        assert!(sock.accepts(Sender::Unknown), "an OS that does not say");
    }

    #[test]
    fn too_long_a_path_says_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x".repeat(120));
        let err = NotifySocket::bind(&deep, "p").unwrap_err();
        assert!(err.to_string().contains("set a shorter [supervisor] state_dir"), "{err}");
    }
}
