//! steward run by a service manager that calls into the process itself: an entry point like
//! `steward run`, at the top floor beside `cli`. Today that is the Windows Service Control
//! Manager (`steward service host`, [`run`], on `steward_service::run`); systemd and launchd
//! simply run `steward run`.

#[cfg(windows)]
pub mod windows;

use std::path::Path;

/// `steward service host`: run as the Windows service `name` (the SCM starts this), with the
/// variables `env` set first. Returns the process's exit code.
pub fn run(name: &str, config: &Path, env: &[(String, String)]) -> anyhow::Result<std::process::ExitCode> {
    #[cfg(windows)]
    return windows::run(name, config, env);
    #[cfg(not(windows))]
    {
        let _ = (name, config, env);
        anyhow::bail!(
            "`steward service host` is what the Windows Service Control Manager runs; on {} use `steward run -c FILE`",
            std::env::consts::OS
        )
    }
}
