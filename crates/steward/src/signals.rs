//! The signals that ask the supervisor to shut down: SIGTERM and SIGINT on Unix, Ctrl+C
//! (and Ctrl+Break, console close) on Windows.

use std::future::Future;

/// A future that completes at the first shutdown request. The handlers are installed
/// before this returns, so a signal that arrives while programs start is not lost.
#[cfg(unix)]
pub fn shutdown_requested() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(event = "signal", "got SIGTERM"),
            _ = int.recv() => tracing::info!(event = "signal", "got SIGINT"),
        }
    })
}

#[cfg(windows)]
pub fn shutdown_requested() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let mut c = ctrl_c()?;
    let mut b = ctrl_break()?;
    let mut close = ctrl_close()?;
    Ok(async move {
        tokio::select! {
            _ = c.recv() => tracing::info!(event = "signal", "got Ctrl+C"),
            _ = b.recv() => tracing::info!(event = "signal", "got Ctrl+Break"),
            _ = close.recv() => tracing::info!(event = "signal", "console closed"),
        }
    })
}
