//! How the running daemon was started (it says so in `GET /v1/version`), and restarting it
//! through that same service manager, so the new binary runs under the manager's rules
//! (its restart policy is what makes the boot counter's failed starts retry and roll back).
//!
//! - systemd: the daemon is a service's main process when systemd passed `INVOCATION_ID`,
//!   `SYSTEMD_EXEC_PID` (systemd 248+) is its own pid when present, and `/proc/self/cgroup`
//!   puts it in a `NAME.service` (below it only in the sub-cgroups a `Delegate=yes` unit
//!   makes). Restart: `systemctl [--user] restart --no-block NAME.service`; `--no-block`
//!   because the caller waits on the daemon's API itself, and a caller inside the unit would
//!   otherwise wait on its own death.
//! - launchd: `XPC_SERVICE_NAME` (the job's label; `0` outside a job) with launchd as the
//!   parent. Restart: `launchctl kickstart -k system/LABEL` (`gui/UID/LABEL` for an agent).
//! - Windows: the service host says so ([`started_by_scm`]). Restart: stop, then start, through
//!   the SCM (steward-service's manage code). Never by launching the new exe ourselves: a
//!   process started outside the SCM is not the service (Velopack's ghost process).

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::protocol::ServiceRef;

/// How long the SCM may take to stop the service before the restart fails.
pub const SCM_STOP_WAIT: Duration = Duration::from_secs(180);

static STARTED_AS: OnceLock<ServiceRef> = OnceLock::new();

/// Called by the Windows service host: this process is the SCM's service `name`.
pub fn started_by_scm(name: &str) {
    let _ = STARTED_AS.set(ServiceRef { manager: "scm".into(), name: name.into(), user: false });
}

/// The service manager that started this process, if any.
pub fn this_service() -> Option<ServiceRef> {
    if super::test_hook("STEWARD_TEST_SERVICE").as_deref() == Some("harness") {
        return Some(ServiceRef { manager: "harness".into(), name: "harness".into(), user: false });
    }
    if let Some(s) = STARTED_AS.get() {
        return Some(s.clone());
    }
    if cfg!(target_os = "linux") {
        return systemd();
    }
    if cfg!(target_os = "macos") {
        return launchd();
    }
    None
}

fn systemd() -> Option<ServiceRef> {
    std::env::var_os("INVOCATION_ID")?;
    if let Ok(pid) = std::env::var("SYSTEMD_EXEC_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let (name, user) = unit_of_cgroup(&text)?;
    Some(ServiceRef { manager: "systemd".into(), name, user })
}

fn launchd() -> Option<ServiceRef> {
    let label = std::env::var("XPC_SERVICE_NAME").ok().filter(|l| !l.is_empty() && l != "0")?;
    #[cfg(unix)]
    {
        // SAFETY: getppid and geteuid have no preconditions and cannot fail.
        let (ppid, uid) = unsafe { (libc::getppid(), libc::geteuid()) };
        (ppid == 1).then(|| ServiceRef { manager: "launchd".into(), name: label, user: uid != 0 })
    }
    #[cfg(not(unix))]
    {
        let _ = label;
        None
    }
}

/// The systemd service whose cgroup `/proc/self/cgroup` names, and whether it is a user
/// unit. The unit is the innermost `.service`/`.scope`/`.slice` of the path (a delegated
/// unit's own sub-cgroups are skipped); it must be a `.service` and not a user manager.
pub fn unit_of_cgroup(text: &str) -> Option<(String, bool)> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| text.lines().find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p)))?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let is_unit = |p: &&str| [".service", ".scope", ".slice"].iter().any(|s| p.ends_with(s));
    let at = parts.iter().rposition(is_unit)?;
    let unit = parts[at];
    if !unit.ends_with(".service") || unit.starts_with("user@") {
        return None;
    }
    let user = parts[..at].iter().any(|p| p.starts_with("user@") && p.ends_with(".service"));
    Some((unit.to_owned(), user))
}

/// What the restart did.
#[derive(Debug, PartialEq, Eq)]
pub enum Restarted {
    /// The manager was asked; the daemon comes back on its own.
    Asked,
    /// No service manager runs the daemon (a `steward run` by hand): restart it yourself.
    ByHand,
}

/// Restarts the daemon `service` runs (pid `pid`), through its manager.
pub fn restart(service: Option<&ServiceRef>, pid: u32) -> anyhow::Result<Restarted> {
    let Some(service) = service else { return Ok(Restarted::ByHand) };
    match service.manager.as_str() {
        "systemd" => {
            let mut cmd = Command::new("systemctl");
            if service.user {
                cmd.arg("--user");
            }
            run(cmd.args(["restart", "--no-block", &service.name]))?;
        }
        "launchd" => {
            let target = match service.user {
                #[cfg(unix)]
                // SAFETY: geteuid has no preconditions and cannot fail.
                true => format!("gui/{}/{}", unsafe { libc::geteuid() }, service.name),
                _ => format!("system/{}", service.name),
            };
            run(Command::new("launchctl").args(["kickstart", "-k", &target]))?;
        }
        "scm" => scm_restart(&service.name)?,
        "harness" if cfg!(debug_assertions) => terminate(pid)?,
        other => anyhow::bail!(
            "the daemon names a service manager this steward does not know ({other}); restart it by hand"
        ),
    }
    Ok(Restarted::Asked)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| anyhow::anyhow!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("{shown} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(windows)]
fn scm_restart(name: &str) -> anyhow::Result<()> {
    use steward_service::manage::{Manager, Platform, Scope};
    let manager = Manager::new(Platform::Windows, name, Scope::System)?;
    manager.stop(Some(SCM_STOP_WAIT))?;
    manager.start(None)?;
    Ok(())
}

#[cfg(not(windows))]
fn scm_restart(name: &str) -> anyhow::Result<()> {
    anyhow::bail!("the daemon says the Windows SCM runs it as {name}, but this is not Windows")
}

/// The test harness's restart: SIGTERM (an orderly stop), after which the harness starts the
/// binary again.
fn terminate(pid: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let pid = libc::pid_t::try_from(pid)?;
        // SAFETY: kill has no memory preconditions; a wrong pid only fails with ESRCH.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            anyhow::bail!("cannot signal steward (pid {pid}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(unix))]
    anyhow::bail!("the test harness restart is Unix only (pid {pid})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_from_cgroup_paths() {
        let unit = |t: &str| unit_of_cgroup(t);
        assert_eq!(unit("0::/system.slice/stw.service\n"), Some(("stw.service".into(), false)));
        assert_eq!(
            unit("0::/system.slice/stw.service/supervisor\n"),
            Some(("stw.service".into(), false)),
            "a delegated unit's sub-cgroup"
        );
        assert_eq!(
            unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/stw.service\n"),
            Some(("stw.service".into(), true))
        );
        assert_eq!(
            unit("12:pids:/\n1:name=systemd:/system.slice/stw.service\n0::/\n"),
            None,
            "the unified line wins"
        );
        assert_eq!(
            unit("12:pids:/\n1:name=systemd:/system.slice/stw.service\n"),
            Some(("stw.service".into(), false))
        );
        assert_eq!(unit("0::/user.slice/user-1000.slice/session-3.scope\n"), None);
        assert_eq!(
            unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-term-1.scope\n"),
            None
        );
        assert_eq!(unit("0::/user.slice/user-1000.slice/user@1000.service\n"), None);
        assert_eq!(unit("0::/\n"), None);
        assert_eq!(unit(""), None);
    }
}
