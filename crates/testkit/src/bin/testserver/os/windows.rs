//! Windows side of the test server: console control events, and no readiness notification.
//!
//! - Ctrl+C and Ctrl+Break both start the drain. steward sends Ctrl+C to the program's console
//!   by default and Ctrl+Break for `stop_signal = "ctrl-break"`; a process started with
//!   `CREATE_NEW_PROCESS_GROUP` ignores Ctrl+C, so Ctrl+Break is the one that reaches it
//!   there. tokio's handlers return TRUE, so the process is not ended by the default handler
//!   and drains instead.
//! - `NOTIFY_SOCKET` is a Unix datagram socket; Windows has no equivalent yet, so readiness is
//!   only the ready line on stdout (a health check can use `/healthz` on an admin socket).

use std::io;

use tokio::signal::windows::{ctrl_break, ctrl_c, CtrlBreak, CtrlC};

/// The console events that start the drain, installed once at the start.
pub struct StopSignal {
    ctrl_c: CtrlC,
    ctrl_break: CtrlBreak,
}

impl StopSignal {
    pub fn new() -> io::Result<StopSignal> {
        Ok(StopSignal { ctrl_c: ctrl_c()?, ctrl_break: ctrl_break()? })
    }

    /// Completes at the next Ctrl+C or Ctrl+Break.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.ctrl_c.recv() => {}
            _ = self.ctrl_break.recv() => {}
        }
    }
}

/// Nothing to notify on Windows; `Ok(false)` says nothing was sent.
pub fn notify_ready() -> io::Result<bool> {
    Ok(false)
}
