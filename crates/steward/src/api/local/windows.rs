//! Windows: the local API over a named pipe. (Being written by the Windows backend work:
//! until then the daemon runs without a local API on Windows and says so.)

use std::io;
use std::path::{Path, PathBuf};

pub struct Listener;
pub type Stream = tokio::net::windows::named_pipe::NamedPipeClient;

pub fn endpoint(state_dir: &Path) -> PathBuf {
    PathBuf::from(format!(r"\\.\pipe\steward-{:016x}", hash(state_dir)))
}

fn hash(p: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

pub fn bind(_path: &Path) -> io::Result<Listener> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "the local API is not available on Windows in this build"))
}

pub async fn connect(path: &Path) -> io::Result<Stream> {
    tokio::net::windows::named_pipe::ClientOptions::new().open(path)
}

pub async fn serve(
    _listener: Listener,
    _router: axum::Router,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "the local API is not available on Windows in this build"))
}
