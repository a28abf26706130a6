//! `steward self-update`: steward replaces its own binary, restarts through the service
//! manager that runs it, and the new binary confirms itself or is rolled back.
//!
//! The steps, each in its own file:
//! - [`settings`]: where releases come from and which keys sign them (`[self_update]` in the
//!   config file, or the CLI's flags).
//! - [`release`]: fetch, verify and accept a manifest named `steward`, download and unpack the
//!   artifact for this host into `<state_dir>/update/steward-<version>/`.
//! - [`gate`]: Gate 0, the new binary must accept the live config and say its version.
//! - [`pending`]: `<state_dir>/update/pending.json`, written atomically before the swap, and
//!   `quarantined.json`.
//! - [`swap`]: the installed binary replaced by a rename (platform files: no running file is
//!   ever written into).
//! - [`restart`]: how the running daemon was started (systemd, launchd, the SCM) and the
//!   restart through that manager.
//! - [`boot`]: at daemon startup, the boot counter: confirm the new binary once startup has
//!   settled, or restore the backup after too many failed starts.
//!
//! Test hooks exist only in debug builds (`cfg(debug_assertions)`; the tests use debug
//! builds): `STEWARD_TEST_VERSION` overrides the version steward reports,
//! `STEWARD_TEST_CRASH_AT_START=1` panics right after the boot counter, and
//! `STEWARD_TEST_STOP_AFTER=<step>` ends `self-update` at a step (standing for a kill -9).
//! `STEWARD_TEST_SERVICE=harness` makes the daemon say a test harness is its service manager,
//! which `self-update` then restarts with SIGTERM (the harness starts it again). A release
//! build reads none of them.

pub mod boot;
pub mod gate;
pub mod pending;
pub mod release;
pub mod restart;
pub mod settings;
pub mod swap;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The version this steward reports: `--version`, `GET /v1/version`, the version
/// `self-update` compares with and the boot counter's.
pub fn running_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        #[cfg(debug_assertions)]
        if let Some(v) = test_hook("STEWARD_TEST_VERSION") {
            return v;
        }
        env!("CARGO_PKG_VERSION").to_owned()
    })
}

/// A debug-only test hook's value (see the module doc); `None` in a release build.
pub fn test_hook(name: &str) -> Option<String> {
    if cfg!(debug_assertions) {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    } else {
        let _ = name;
        None
    }
}

/// `<state_dir>/update`: everything self-update keeps.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("update")
}
