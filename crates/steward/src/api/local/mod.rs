//! The local API transport: a Unix domain socket in the state dir (owner-only), or a named
//! pipe on Windows. The CLI finds it from the config file, or from `STEWARD_SOCKET`.

use std::path::{Path, PathBuf};

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod platform;

pub use platform::{bind, connect, serve, Listener, Stream};

/// Where the daemon of a config listens: `<state_dir>/steward.sock` on Unix; on Windows a
/// pipe name derived from the state dir.
pub fn endpoint(state_dir: &Path) -> PathBuf {
    platform::endpoint(state_dir)
}
