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

/// Why a signed manifest could not be had. The first is the transport's (worth a retry);
/// the others say the manifest is not one to trust.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot fetch the manifest {at}: {source}")]
    Fetch { at: String, source: FetchError },
    #[error("cannot get the manifest's signature {at} (the manifest's name plus .minisig): {source}")]
    Signature { at: String, source: FetchError },
    #[error("the manifest {at} is refused: {source}")]
    Refused { at: String, source: VerifyError },
    #[error("the manifest {at} is not valid: {source}")]
    Invalid { at: String, source: steward_core::release::ManifestError },
}

/// The manifest at `at` and its signature beside it (`.minisig`), verified under `keys`,
/// then parsed: what deploys and self-update both start from.
pub async fn signed_manifest(
    fetcher: &Fetcher,
    at: &Location,
    keys: &[String],
) -> Result<(steward_core::release::Manifest, Verified), ManifestError> {
    let cap = fetch::SMALL_CAP;
    let body = fetcher
        .fetch_small(at, cap)
        .await
        .map_err(|source| ManifestError::Fetch { at: at.to_string(), source })?;
    let sig_at = at.with_suffix(".minisig");
    let signature = fetcher
        .fetch_small(&sig_at, cap)
        .await
        .map_err(|source| ManifestError::Signature { at: sig_at.to_string(), source })?;
    let verified = verify(&body, &signature, keys)
        .map_err(|source| ManifestError::Refused { at: at.to_string(), source })?;
    let manifest = steward_core::release::Manifest::parse(&body)
        .map_err(|source| ManifestError::Invalid { at: at.to_string(), source })?;
    Ok((manifest, verified))
}
