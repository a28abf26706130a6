//! systemd: the unit file and `systemctl`.
//!
//! How systemd behaves, and what this relies on:
//! - A system unit lives in `/etc/systemd/system`, a user unit in `~/.config/systemd/user`.
//!   systemd reads a new or changed file only after `systemctl daemon-reload`; `enable` links
//!   it into the target named by `WantedBy=` so it starts at boot or login, without starting it.
//! - `systemctl start` on a `Type=notify` unit returns once the program sent `READY=1`, or
//!   fails after `TimeoutStartSec`; `systemctl stop` returns once it stopped. With
//!   `--no-block` both return at once.
//! - A user unit runs in the user's own systemd instance, which exists while the user is
//!   logged in (or always, with `loginctl enable-linger USER`). `systemctl --user` reaches it
//!   through `XDG_RUNTIME_DIR` and the session bus; from `su` or a plain container shell it
//!   cannot.
//! - `systemctl --root=DIR enable` works on an offline image without a running systemd: it
//!   only creates the `WantedBy` symlinks.
//! - `systemctl show` needs no root, and tells the state, the main pid and how the last run
//!   ended (`ExecMainCode`, `ExecMainStatus`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::tool::{run_checked, run_tool, wait_for, write_then};
use super::{Error, Manager, Platform, Scope, ServiceSpec, StartType, State, Status};

const MISSING: &str = "`systemctl` was not found: this system does not use systemd";

pub(super) fn install(m: &Manager, spec: &ServiceSpec, text: &str) -> Result<(), Error> {
    let path = m.file()?;
    let existed = path.exists();
    if existed && spec.start != StartType::Auto {
        // An update to a manual start: the links of the old WantedBy= go first (they are
        // read from the file still there).
        systemctl(m, &["disable", &unit(m)])?;
    }
    write_then(&path, text, || {
        if m.root().is_none() {
            systemctl(m, &["daemon-reload"])?;
        }
        if spec.start == StartType::Auto {
            systemctl(m, &["enable", &unit(m)])?;
        }
        Ok(())
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
    if m.root().is_none() {
        // Stops it too; a unit that is not running is fine.
        systemctl(m, &["disable", "--now", &unit(m)])?;
    } else {
        systemctl(m, &["disable", &unit(m)])?;
    }
    super::tool::remove_file(&path)?;
    if m.root().is_none() {
        systemctl(m, &["daemon-reload"])?;
        // Forget a failed state, so the name is free; it may have none.
        let _ = run_tool(command(m, &["reset-failed", &unit(m)]), MISSING);
    }
    Ok(())
}

pub(super) fn start(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    let Some(wait) = wait else {
        systemctl(m, &["start", "--no-block", &unit(m)])?;
        return status(m);
    };
    // Blocks until the start job is done: READY=1 for a Type=notify unit.
    systemctl(m, &["start", &unit(m)])?;
    let (s, ok) = wait_for(wait, || status(m), |s| s.running() || s.state == State::Failed)?;
    if ok && s.running() {
        return Ok(s);
    }
    if ok {
        return Err(Error::Stopped {
            op: "start",
            name: m.name().to_owned(),
            detail: s.detail,
            exit: s.last_exit,
            hint: journal_hint(m),
        });
    }
    Err(Error::Timeout {
        op: "start",
        name: m.name().to_owned(),
        state: s.detail,
        waited: wait,
        hint: journal_hint(m),
    })
}

pub(super) fn stop(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    let Some(wait) = wait else {
        systemctl(m, &["stop", "--no-block", &unit(m)])?;
        return status(m);
    };
    systemctl(m, &["stop", &unit(m)])?;
    let stopped = |s: &Status| matches!(s.state, State::Stopped | State::Failed | State::NotInstalled);
    let (s, ok) = wait_for(wait, || status(m), stopped)?;
    if ok {
        return Ok(s);
    }
    Err(Error::Timeout {
        op: "stop",
        name: m.name().to_owned(),
        state: s.detail,
        waited: wait,
        hint: journal_hint(m),
    })
}

pub(super) fn pause(_m: &Manager, pause: bool) -> Result<Status, Error> {
    let verb = if pause { "pause" } else { "continue" };
    Err(Error::unsupported(verb, Platform::Systemd, "systemd has no pause; reload or stop the unit instead"))
}

pub(super) fn reload(m: &Manager) -> Result<(), Error> {
    // SIGHUP to the main process: the crate's run side takes it as Reload, and a unit needs
    // no ExecReload= for it.
    systemctl(m, &["kill", "--kill-whom=main", "--signal=SIGHUP", &unit(m)]).map(drop)
}

pub(super) fn status(m: &Manager) -> Result<Status, Error> {
    let props =
        "LoadState,ActiveState,SubState,MainPID,UnitFileState,FragmentPath,StatusText,ExecMainCode,ExecMainStatus";
    let out = systemctl(m, &["show", &unit(m), &format!("--property={props}")])?;
    Ok(parse_show(&out))
}

fn unit(m: &Manager) -> String {
    format!("{}.service", m.name())
}

fn command(m: &Manager, args: &[&str]) -> Command {
    let mut cmd = Command::new("systemctl");
    if let Some(root) = m.root() {
        cmd.arg(format!("--root={}", root.display()));
    } else if m.scope() == Scope::User {
        cmd.arg("--user");
    }
    cmd.args(args);
    cmd
}

/// `systemctl ARGS`, failing with its output and a hint.
fn systemctl(m: &Manager, args: &[&str]) -> Result<String, Error> {
    let verb = args.first().copied().unwrap_or_default();
    run_checked(command(m, args), MISSING, |output| hint(output, m.scope(), m.name(), verb))
}

fn journal_hint(m: &Manager) -> String {
    let flag = if m.scope() == Scope::User { " --user" } else { "" };
    format!("see `systemctl{flag} status {0}` and `journalctl{flag} -u {0}`", m.name())
}

/// What to do next, from what systemctl said.
fn hint(output: &str, scope: Scope, name: &str, verb: &str) -> String {
    let user = scope == Scope::User;
    let flag = if user { " --user" } else { "" };
    if output.contains("System has not been booted with systemd") {
        return "systemd is not running on this machine (PID 1 is another init, as in most containers); \
                render the unit here and install it on a machine that runs systemd, or start the program \
                from this machine's own init"
            .into();
    }
    if user
        && (output.contains("Failed to connect to bus")
            || output.contains("DBUS_SESSION_BUS_ADDRESS")
            || output.contains("XDG_RUNTIME_DIR"))
    {
        return "a user unit needs your user's systemd instance: log in through a real session (ssh or \
                a desktop login, not `su`), or keep it running with `loginctl enable-linger $USER`"
            .into();
    }
    if output.contains("Failed to connect to bus") {
        return "systemctl cannot reach systemd; is it running (`ps -p 1`)?".into();
    }
    if output.contains("Access denied")
        || output.contains("Interactive authentication required")
        || output.contains("Permission denied")
    {
        return "run it as root (sudo), or install a service of your own user".into();
    }
    if output.contains("not found") || output.contains("not loaded") || output.contains("does not exist") {
        return format!("is the{flag} service {name} installed? check the name and the scope");
    }
    match verb {
        "start" => format!(
            "see why in `systemctl{flag} status {name}` and `journalctl{flag} -u {name}`; a Type=notify \
             service is started once it reports ready"
        ),
        _ => format!("see `systemctl{flag} status {name}` for the unit's state"),
    }
}

/// The `KEY=value` lines of `systemctl show`.
fn parse_show(out: &str) -> Status {
    let (mut load, mut active, mut sub) = ("", "", "");
    let (mut exit_code, mut exit_status) = (0, None::<i64>);
    let mut status = Status::default();
    for line in out.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "LoadState" => load = value,
            "ActiveState" => active = value,
            "SubState" => sub = value,
            "MainPID" => status.pid = value.parse().ok().filter(|pid| *pid != 0),
            "UnitFileState" if !value.is_empty() => status.enabled = Some(value.to_owned()),
            "FragmentPath" if !value.is_empty() => status.file = Some(PathBuf::from(value)),
            "StatusText" if !value.is_empty() => status.status_text = Some(value.to_owned()),
            "ExecMainCode" => exit_code = value.parse().unwrap_or(0),
            "ExecMainStatus" => exit_status = value.parse().ok(),
            _ => {}
        }
    }
    // ExecMainCode is a CLD_* code: 1 exited (the status is the exit code), 2 killed and 3
    // dumped (the status is the signal, reported negative).
    status.last_exit = match exit_code {
        1 => exit_status,
        2 | 3 => exit_status.map(|s| -s),
        _ => None,
    };
    status.state = match (load, active) {
        ("not-found", _) => State::NotInstalled,
        (_, "active") => State::Running,
        (_, "reloading") => State::Reloading,
        (_, "activating") => State::StartPending,
        (_, "deactivating") => State::StopPending,
        (_, "failed") => State::Failed,
        _ => State::Stopped,
    };
    status.detail = if load == "not-found" {
        "not installed".to_owned()
    } else if sub.is_empty() {
        active.to_owned()
    } else {
        format!("{active} ({sub})")
    };
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manage::UserDirs;

    fn manager(scope: Scope, root: Option<&str>) -> Manager {
        let m = Manager::new(Platform::Systemd, "app", scope).unwrap().with_dirs(UserDirs::default());
        match root {
            Some(root) => m.with_root(root).unwrap(),
            None => m,
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            args(&command(&manager(Scope::System, None), &["enable", "app.service"])),
            ["enable", "app.service"]
        );
        assert_eq!(
            args(&command(&manager(Scope::User, None), &["start", "app.service"])),
            ["--user", "start", "app.service"]
        );
        assert_eq!(
            args(&command(&manager(Scope::System, Some("/mnt")), &["enable", "app.service"])),
            ["--root=/mnt", "enable", "app.service"]
        );
    }

    #[test]
    fn show_output_is_summarised() {
        let running = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\n\
                       UnitFileState=enabled\nFragmentPath=/etc/systemd/system/app.service\n\
                       StatusText=3 running\nExecMainCode=0\nExecMainStatus=0\n";
        assert_eq!(
            parse_show(running),
            Status {
                state: State::Running,
                detail: "active (running)".into(),
                file: Some("/etc/systemd/system/app.service".into()),
                enabled: Some("enabled".into()),
                pid: Some(4242),
                last_exit: None,
                status_text: Some("3 running".into()),
                command: None,
            }
        );
        let failed = "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nExecMainCode=1\n\
                      ExecMainStatus=3\n";
        let s = parse_show(failed);
        assert_eq!((s.state, s.last_exit, s.pid), (State::Failed, Some(3), None));
        let killed =
            "LoadState=loaded\nActiveState=inactive\nSubState=dead\nExecMainCode=2\nExecMainStatus=9\n";
        assert_eq!(parse_show(killed).last_exit, Some(-9));
        let missing = "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=\n\
                       FragmentPath=\nStatusText=\n";
        let s = parse_show(missing);
        assert_eq!(
            (s.running(), s.state, s.detail.as_str(), s.pid, s.file),
            (false, State::NotInstalled, "not installed", None, None)
        );
    }

    #[test]
    fn hints_say_what_to_do() {
        let no_systemd = "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
                          Failed to connect to bus: Host is down";
        assert!(hint(no_systemd, Scope::System, "app", "enable").contains("render the unit here"));
        assert!(hint("Failed to connect to bus: No medium found", Scope::User, "app", "enable")
            .contains("enable-linger"));
        assert!(hint("Failed to enable unit: Access denied", Scope::System, "app", "enable").contains("sudo"));
        assert!(hint("Unit app.service not found.", Scope::User, "app", "start")
            .contains("--user service app installed"));
        assert!(hint("Job failed.", Scope::System, "app", "start").contains("journalctl -u app"));
    }

    #[test]
    fn pause_is_refused_by_name() {
        let err = pause(&manager(Scope::System, None), true).unwrap_err().to_string();
        assert!(err.starts_with("systemd cannot honour pause"), "{err}");
    }
}
