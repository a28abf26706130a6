//! launchd: the property list and `launchctl`.
//!
//! How launchd behaves, and what this relies on:
//! - A LaunchDaemon (`/Library/LaunchDaemons/NAME.plist`, domain `system`) is loaded at boot
//!   and runs as root or its `UserName`; a LaunchAgent (`~/Library/LaunchAgents/NAME.plist`,
//!   domain `gui/UID`) is loaded when that user logs in and runs as them.
//! - `launchctl bootstrap DOMAIN PLIST` loads a job now; with `RunAtLoad` that starts it.
//!   `launchctl bootout DOMAIN/LABEL` unloads it, which stops it (SIGTERM, then SIGKILL after
//!   `ExitTimeOut`); killing a loaded `KeepAlive` job instead would only restart it.
//!   A job that was booted out loads again at the next boot or login, as long as its plist
//!   is there and it is not disabled. The legacy `load`/`unload` are not used.
//! - `launchctl enable DOMAIN/LABEL` clears a "disabled" override left by an earlier
//!   `launchctl disable`, which would keep the job from loading at all.
//! - `launchctl print DOMAIN/LABEL` succeeds only for a loaded job, shows its state, pid and
//!   last exit code, and needs no root (unlike `launchctl list` for daemons).
//! - `launchctl kickstart DOMAIN/LABEL` runs a loaded job now; `launchctl kill SIGHUP
//!   DOMAIN/LABEL` signals it.
//!
//! So: install writes the plist and enables it (it starts at the next boot or login, or now
//! with `start`); start bootstraps it (or kickstarts a job that is already loaded); stop boots
//! it out; uninstall boots it out and removes the plist.
//!
//! Not tested in CI (there is no macOS runner); the plist itself is golden-tested everywhere.

use std::process::Command;
use std::time::Duration;

use super::tool::{remove_file, run_checked, run_tool, wait_for, write_then};
use super::{Error, Manager, Platform, Scope, ServiceSpec, StartType, State, Status};

const MISSING: &str = "`launchctl` was not found: this is not macOS";

pub(super) fn install(m: &Manager, spec: &ServiceSpec, text: &str) -> Result<(), Error> {
    let path = m.file()?;
    // launchd opens the log file itself, and fails to start the job if its folder is missing.
    if let Some(dir) = spec.log_file.as_deref().and_then(|f| f.parent()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create the log folder", dir, e))?;
    }
    write_then(&path, text, || match spec.start {
        StartType::Disabled => Ok(()),
        _ => launchctl(m, &["enable", &service_target(m)]).map(drop),
    })
}

pub(super) fn is_installed(m: &Manager) -> Result<bool, Error> {
    Ok(m.file()?.exists())
}

pub(super) fn uninstall(m: &Manager) -> Result<(), Error> {
    let path = m.file()?;
    if !path.exists() {
        return Err(Error::NotInstalled { name: m.name().to_owned(), path });
    }
    if is_loaded(m)? {
        launchctl(m, &["bootout", &service_target(m)])?;
    }
    remove_file(&path)
}

pub(super) fn start(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    if is_loaded(m)? {
        // Loaded but maybe not running (it exited successfully): run it now.
        launchctl(m, &["kickstart", &service_target(m)])?;
    } else {
        let path = m.file()?;
        if !path.exists() {
            return Err(Error::NotInstalled { name: m.name().to_owned(), path });
        }
        launchctl(m, &["bootstrap", &domain(m.scope()), &path.to_string_lossy()])?;
    }
    let Some(wait) = wait else { return status(m) };
    let (s, ok) = wait_for(wait, || status(m), Status::running)?;
    if ok {
        return Ok(s);
    }
    Err(Error::Timeout {
        op: "start",
        name: m.name().to_owned(),
        state: s.detail,
        waited: wait,
        hint: log_hint(m),
    })
}

pub(super) fn stop(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    if is_loaded(m)? {
        launchctl(m, &["bootout", &service_target(m)])?;
    }
    let Some(wait) = wait else { return status(m) };
    let (s, ok) = wait_for(wait, || status(m), |s| !s.running() && s.pid.is_none())?;
    if ok {
        return Ok(s);
    }
    Err(Error::Timeout {
        op: "stop",
        name: m.name().to_owned(),
        state: s.detail,
        waited: wait,
        hint: log_hint(m),
    })
}

pub(super) fn pause(_m: &Manager, pause: bool) -> Result<Status, Error> {
    let verb = if pause { "pause" } else { "continue" };
    Err(Error::unsupported(verb, Platform::Launchd, "launchd has no pause; reload or stop the job instead"))
}

pub(super) fn reload(m: &Manager) -> Result<(), Error> {
    launchctl(m, &["kill", "SIGHUP", &service_target(m)]).map(drop)
}

pub(super) fn status(m: &Manager) -> Result<Status, Error> {
    let file = m.file()?;
    let (out, _) = run_tool(command(&["print", &service_target(m)]), MISSING)?;
    let mut status = if out.success { parse_print(&out.stdout) } else { Status::default() };
    if !out.success {
        status.state = State::Stopped;
        status.detail = "not loaded".into();
    }
    status.file = file.exists().then_some(file);
    if status.file.is_none() {
        status.state = State::NotInstalled;
        status.detail = "not installed".into();
    }
    Ok(status)
}

/// `system`, or `gui/UID` for the user running this.
fn domain(scope: Scope) -> String {
    match scope {
        Scope::System => "system".to_owned(),
        // SAFETY: getuid cannot fail and has no preconditions.
        Scope::User => format!("gui/{}", unsafe { libc::getuid() }),
    }
}

fn service_target(m: &Manager) -> String {
    format!("{}/{}", domain(m.scope()), m.name())
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new("launchctl");
    cmd.args(args);
    cmd
}

fn is_loaded(m: &Manager) -> Result<bool, Error> {
    let (out, _) = run_tool(command(&["print", &service_target(m)]), MISSING)?;
    Ok(out.success)
}

fn launchctl(m: &Manager, args: &[&str]) -> Result<String, Error> {
    run_checked(command(args), MISSING, |output| hint(output, m))
}

fn log_hint(m: &Manager) -> String {
    format!("see `launchctl print {}` and the job's log (StandardErrorPath in the plist)", service_target(m))
}

fn hint(output: &str, m: &Manager) -> String {
    let user = m.scope() == Scope::User;
    if output.contains("Operation not permitted") || output.contains("Permission denied") {
        return if user {
            "a LaunchAgent belongs to the logged-in user: run it as that user, from their login session"
                .into()
        } else {
            "run it as root (sudo), or install a LaunchAgent of your own user".into()
        };
    }
    if output.contains("Could not find service") || output.contains("No such process") {
        return format!("is the service {} installed? check the name and the scope", m.name());
    }
    log_hint(m)
}

/// The `state = ...`, `pid = ...` and `last exit code = ...` lines of `launchctl print`.
fn parse_print(out: &str) -> Status {
    let mut status = Status { enabled: Some("loaded".into()), ..Status::default() };
    for line in out.lines() {
        let Some((key, value)) = line.trim().split_once(" = ") else { continue };
        match key {
            "state" if status.detail.is_empty() => {
                status.detail = value.to_owned();
                status.state = if value == "running" { State::Running } else { State::Stopped };
            }
            "pid" if status.pid.is_none() => status.pid = value.parse().ok(),
            "last exit code" if status.last_exit.is_none() => {
                // `0`, `1`, or `(never exited)`.
                status.last_exit = value.split_whitespace().next().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_output_is_summarised() {
        let out = "system/app = {\n\tactive count = 1\n\tpath = /Library/LaunchDaemons/app.plist\n\
                   \tstate = running\n\n\tprogram = /usr/local/bin/steward\n\tpid = 321\n\
                   \tlast exit code = 1\n\tendpoints = {\n\t\tstate = active\n\t}\n}\n";
        let s = parse_print(out);
        assert_eq!(
            (s.running(), s.detail.as_str(), s.pid, s.last_exit),
            (true, "running", Some(321), Some(1))
        );
        let never = parse_print("\tstate = not running\n\tlast exit code = (never exited)\n");
        assert_eq!((never.state, never.last_exit), (State::Stopped, None));
    }

    #[test]
    fn domains() {
        assert_eq!(domain(Scope::System), "system");
        assert!(domain(Scope::User).starts_with("gui/"));
    }
}
