//! Release I/O: getting, checking, unpacking and keeping the versions of a program that
//! `steward deploy` installs. The rules (which version, is the manifest expired, the history of
//! current/previous/floor) are steward-core's (`steward_core::release`); this module only moves
//! bytes, and takes the manifest and the history as raw bytes or any serde type.
//!
//! - [`fetch`]: a [`Location`] (an http(s) URL or a local path, and how relative artifact urls
//!   resolve against the manifest's), [`fetch_small`] for the manifest and its `.minisig`, and
//!   [`download`] for an archive: streamed to a new file, exactly the announced size, SHA-256
//!   checked, fsynced; timeouts, at most 5 redirects, never https→http.
//! - [`verify`](mod@verify): minisign signatures against the trusted `public_keys`, giving the trusted
//!   comment; unknown key and altered file are separate errors.
//! - [`unpack`](mod@unpack): a `.tar.gz` or `.zip` into a staging folder, refusing paths and links that
//!   would land outside and archive bombs, then renamed whole into `<version>/`.
//! - [`store`]: the folder of one program's releases, its leftovers and its `state.json`,
//!   written atomically with a previous copy to recover from.
//!
//! The layout, `<state_dir>/releases/<program>/`:
//!
//! ```text
//! 1.4.0/                         a whole release (only ever made by a rename)
//! 1.5.0/
//! .staging-1.6.0-<pid>-<n>/      unpacking now (or left by a killed steward: swept at start)
//! .download-1.6.0-<pid>-<n>      downloading now (likewise)
//! state.json                     the release history (steward_core::release::History)
//! state.json.prev                the history before the last write
//! ```
//!
//! Platform code: `sys_unix.rs` and `sys_windows.rs` (folder fsync, file modes, symlinks),
//! chosen once below.

pub mod fetch;
pub mod store;
pub mod unpack;
pub mod verify;

#[cfg_attr(unix, path = "sys_unix.rs")]
#[cfg_attr(windows, path = "sys_windows.rs")]
mod sys;

pub use fetch::{download, fetch_small, FetchError, Fetcher, Location};
pub use store::{ReadState, Recovered, Store, StoreError};
pub use unpack::{unpack, unpack_async, unpack_with, Kind, Limits, UnpackError};
pub use verify::{verify, verify_file, Verified, VerifyError};
