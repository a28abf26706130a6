//! Unix side of the test server: the stop signals and systemd's readiness notification.
//!
//! - SIGTERM (what steward and systemd send) and SIGINT (a terminal's Ctrl+C) both start the
//!   drain. tokio's handlers replace the default action, so a second signal during the drain
//!   does not kill the process; steward's stop timeout and SIGKILL remain the backstop.
//! - Readiness is `sd_notify(0, "READY=1")` done by hand: one datagram to the Unix socket whose
//!   path is in `NOTIFY_SOCKET` (a leading `@` names Linux's abstract namespace).

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signals that start the drain, installed once at the start.
pub struct StopSignal {
    term: Signal,
    int: Signal,
}

impl StopSignal {
    pub fn new() -> io::Result<StopSignal> {
        Ok(StopSignal { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Completes at the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Sends `READY=1` to `$NOTIFY_SOCKET`; `Ok(false)` if it is not set.
pub fn notify_ready() -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix('@')) {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(b"READY=1\n", &addr)?;
        return Ok(true);
    }
    socket.send_to(b"READY=1\n", path)?;
    Ok(true)
}
