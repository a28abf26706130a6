//! Unix: a stream socket file, mode 0600 from the moment it exists (the umask is narrowed
//! around `bind`), so only the owner (and root) can connect.

use std::io;
use std::path::{Path, PathBuf};

pub type Listener = tokio::net::UnixListener;
pub type Stream = tokio::net::UnixStream;

pub fn endpoint(state_dir: &Path) -> PathBuf {
    state_dir.join("steward.sock")
}

/// Bind the socket. The caller holds the instance lock, so a file already there is a
/// leftover of a dead daemon and is replaced.
pub fn bind(path: &Path) -> io::Result<Listener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // SAFETY: umask is a plain system call. It is process-wide: steward binds before any
    // program starts, and a file another of its threads creates in this moment is made
    // owner-only, the stricter outcome.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above; this puts back the mask that was in force.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| {
        if path.as_os_str().len() >= 104 {
            io::Error::new(
                e.kind(),
                format!(
                    "{e} (the socket path is {} bytes long; Unix allows about 104: use a shorter state_dir)",
                    path.as_os_str().len()
                ),
            )
        } else {
            e
        }
    })?;
    listener.set_nonblocking(true)?;
    Listener::from_std(listener)
}

pub async fn connect(path: &Path) -> io::Result<Stream> {
    Stream::connect(path).await
}

/// Serve `router` until `shutdown` completes, under the local socket's connection limits.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    use crate::api::connections::{self, Limited, Limits};
    connections::serve(Limited::new(listener, Limits::LOCAL, "the local API socket"), router, shutdown).await
}
