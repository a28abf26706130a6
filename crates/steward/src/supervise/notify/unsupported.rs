//! `ready = "notify"` needs Unix datagram sockets; on other systems the config parser refuses
//! it, so no program ever asks for a socket here. This keeps the same interface as the Unix
//! module so that the program task needs no `#[cfg]`.

use std::ffi::OsString;
use std::io;
use std::path::Path;

/// The variables a program gets on top of its own `env`: none of the service manager's
/// variables meant for steward itself.
pub fn child_env(_socket: Option<&NotifySocket>) -> Vec<(&'static str, Option<OsString>)> {
    vec![("NOTIFY_SOCKET", None), ("WATCHDOG_USEC", None), ("WATCHDOG_PID", None)]
}

/// Never constructed on this OS.
#[derive(Debug)]
pub struct NotifySocket {
    _never: std::convert::Infallible,
}

impl NotifySocket {
    pub fn set_main_pid(&mut self, _pid: u32) {
        match self._never {}
    }

    pub fn bind(_state_dir: &Path, _program: &str) -> io::Result<NotifySocket> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "`ready = \"notify\"` needs Unix datagram sockets, which this OS lacks; use `ready = \"up\"`",
        ))
    }
}

/// Never ready: there is no socket.
pub async fn ready(_socket: Option<&NotifySocket>, _program: &str) {
    std::future::pending().await
}
