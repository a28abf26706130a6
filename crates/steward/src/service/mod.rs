//! steward as a native service, and the service managers' protocols.
//!
//! - Installing: the `steward-service` library does it (`steward_service::manage`: the
//!   systemd unit, the launchd plist, the SCM settings, and `systemctl`, `launchctl` or the
//!   SCM's API, the Event Log source on Windows). [`spec`] builds the library's spec of
//!   steward from its config; this module adds what only steward does around it: the wrap
//!   folders. steward running as a Windows service is `crate::host`, one floor up.
//! - [`eventlog`]: what a Windows service writes to the Event Log (pure, tested everywhere);
//!   `steward_service::log::EventLog` writes it.
//! - [`status`]: the supervisor's status sink, telling systemd (or the SCM, through the host)
//!   that steward is ready, stopping, or alive (watchdog).
//! - steward's own log goes to journald, with structured fields, under systemd, through
//!   `steward_service::log::journald` (in `cli`).
//!
//! This module sits above `supervise` (it reads its events and states) and below `daemon`,
//! which hands the status sink to the supervisor.

pub mod spec;
pub mod status;
// Platform code, chosen once here.
#[cfg_attr(not(windows), allow(dead_code))]
pub mod eventlog;

use std::path::{Path, PathBuf};

use steward_service::manage::{Error, Manager, Platform, Scope};

/// The manager of the service `name` on this OS, or on the offline image at `root`.
pub fn manager(name: &str, scope: Scope, root: Option<PathBuf>) -> Result<Manager, Error> {
    let manager = Manager::native(name, scope)?;
    match root {
        Some(root) => manager.with_root(std::path::absolute(&root).unwrap_or(root)),
        None => Ok(manager),
    }
}

/// The service manager of this OS, for messages and `render` without `--init`.
pub fn native_platform() -> Platform {
    Platform::native().unwrap_or(Platform::Systemd)
}

/// Writes a file steward generates (a wrap's config): its folder is created, and the file is
/// replaced in one rename, so a reader never sees half of it.
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create the folder", dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    std::fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

/// Whether an error is "no such service" (which `wrap uninstall` goes past).
pub fn is_not_installed(e: &Error) -> bool {
    matches!(e, Error::NotInstalled { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_replace_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrap/api/steward.toml");
        write_file(&path, "one").unwrap();
        write_file(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }
}
