//! systemd: the unit file and `systemctl`.
//!
//! How systemd behaves, and what this relies on:
//! - A system unit lives in `/etc/systemd/system`, a `--user` unit in
//!   `~/.config/systemd/user`. systemd reads a new or changed file only after
//!   `systemctl daemon-reload`; `enable` links it into `multi-user.target` (system) or
//!   `default.target` (user) so it starts at boot or login. `enable` does not start it.
//! - `systemctl start` on a `Type=notify` unit returns once steward has sent `READY=1`, that
//!   is once its autostart programs are up, or fails after `TimeoutStartSec` (90s by default).
//! - A `--user` unit runs in the user's own systemd instance, which exists while the user is
//!   logged in (or always, with `loginctl enable-linger USER`). `systemctl --user` reaches it
//!   through `XDG_RUNTIME_DIR` and the session bus; from `su` or a plain container shell it
//!   cannot.
//! - `systemctl --root=DIR enable` works on an offline image without a running systemd: it
//!   only creates the `WantedBy` symlinks.

use std::path::PathBuf;
use std::process::Command;

use steward_core::render::{self, Init, Scope, ServiceSpec};

use super::{run_checked, run_tool, Manager, ServiceError, ServiceStatus, Target};

pub struct Systemd;

const MISSING: &str = "`systemctl` was not found: this system does not use systemd. \
    `steward service render --init systemd` prints the unit for a machine that does";

impl Manager for Systemd {
    fn init(&self) -> Init {
        Init::Systemd
    }

    fn file(&self, target: &Target) -> Result<PathBuf, ServiceError> {
        let path = render::install_path(Init::Systemd, target.scope, &target.name, &target.dirs)?
            .expect("systemd units are files");
        Ok(target.in_root(&path))
    }

    fn install(&self, target: &Target, _spec: &ServiceSpec, text: &str) -> Result<(), ServiceError> {
        check_root(target)?;
        let path = self.file(target)?;
        super::write_then(&path, text, || {
            if target.root.is_none() {
                systemctl(target, &["daemon-reload"])?;
            }
            systemctl(target, &["enable", &unit(target)]).map(drop)
        })
    }

    fn uninstall(&self, target: &Target) -> Result<(), ServiceError> {
        check_root(target)?;
        let path = self.file(target)?;
        if !path.exists() {
            return Err(ServiceError::NotInstalled { name: target.name.clone(), path });
        }
        if target.root.is_none() {
            // Stops it too; a unit that is not running is fine.
            systemctl(target, &["disable", "--now", &unit(target)])?;
        } else {
            systemctl(target, &["disable", &unit(target)])?;
        }
        super::remove_file(&path)?;
        if target.root.is_none() {
            systemctl(target, &["daemon-reload"])?;
            // Forget a failed state, so the name is free; it may have none.
            let _ = run_tool(command(target, &["reset-failed", &unit(target)]), MISSING);
        }
        Ok(())
    }

    fn start(&self, target: &Target) -> Result<(), ServiceError> {
        live_only(target, "start")?;
        systemctl(target, &["start", &unit(target)]).map(drop)
    }

    fn stop(&self, target: &Target) -> Result<(), ServiceError> {
        live_only(target, "stop")?;
        systemctl(target, &["stop", &unit(target)]).map(drop)
    }

    fn status(&self, target: &Target) -> Result<ServiceStatus, ServiceError> {
        live_only(target, "status")?;
        let props = "LoadState,ActiveState,SubState,MainPID,UnitFileState,FragmentPath,StatusText";
        let out = systemctl(target, &["show", &unit(target), &format!("--property={props}")])?;
        Ok(parse_show(&out))
    }
}

fn unit(target: &Target) -> String {
    format!("{}.service", target.name)
}

fn check_root(target: &Target) -> Result<(), ServiceError> {
    if target.root.is_some() && target.scope == Scope::User {
        return Err(ServiceError::Unsupported(
            "--root installs a system unit into an image; it cannot be combined with --user".into(),
        ));
    }
    Ok(())
}

fn live_only(target: &Target, verb: &str) -> Result<(), ServiceError> {
    if target.root.is_some() {
        return Err(ServiceError::Unsupported(format!(
            "`service {verb}` acts on the running system; --root is only for install and uninstall"
        )));
    }
    Ok(())
}

fn command(target: &Target, args: &[&str]) -> Command {
    let mut cmd = Command::new("systemctl");
    if let Some(root) = &target.root {
        cmd.arg(format!("--root={}", root.display()));
    } else if target.scope == Scope::User {
        cmd.arg("--user");
    }
    cmd.args(args);
    cmd
}

/// `systemctl ARGS`, failing with its output and a hint.
fn systemctl(target: &Target, args: &[&str]) -> Result<String, ServiceError> {
    let verb = args.first().copied().unwrap_or_default();
    run_checked(command(target, args), MISSING, |output| hint(output, target, verb))
}

/// What to do next, from what systemctl said.
fn hint(output: &str, target: &Target, verb: &str) -> String {
    let user = target.scope == Scope::User;
    let name = &target.name;
    let flag = if user { " --user" } else { "" };
    if output.contains("System has not been booted with systemd") {
        return "systemd is not running on this machine (PID 1 is another init, as in most containers). \
                `steward service render --init systemd` prints the unit for a machine that runs systemd; \
                here, start `steward run` from this machine's own init"
            .into();
    }
    if user
        && (output.contains("Failed to connect to bus")
            || output.contains("DBUS_SESSION_BUS_ADDRESS")
            || output.contains("XDG_RUNTIME_DIR"))
    {
        return "a --user unit needs your user's systemd instance: log in through a real session (ssh or \
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
        return "run it as root (sudo), or use --user for a service of your own user".into();
    }
    if output.contains("not found") || output.contains("not loaded") || output.contains("does not exist") {
        return format!("is it installed? `steward service install{flag} --name {name}` installs it");
    }
    match verb {
        "start" => format!(
            "see why in `systemctl{flag} status {name}` and `journalctl{flag} -u {name}`; steward reports \
             ready only once its autostart programs are running"
        ),
        _ => format!("see `systemctl{flag} status {name}` for the unit's state"),
    }
}

/// The `KEY=value` lines of `systemctl show`.
fn parse_show(out: &str) -> ServiceStatus {
    let mut load = "";
    let mut active = "";
    let mut sub = "";
    let mut status = ServiceStatus::default();
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
            _ => {}
        }
    }
    status.running = active == "active" || active == "reloading";
    status.state = if load == "not-found" {
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
    use steward_core::render::UserDirs;

    fn target(scope: Scope, root: Option<&str>) -> Target {
        Target { name: "app".into(), scope, dirs: UserDirs::default(), root: root.map(PathBuf::from) }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            args(&command(&target(Scope::System, None), &["enable", "app.service"])),
            ["enable", "app.service"]
        );
        assert_eq!(
            args(&command(&target(Scope::User, None), &["start", "app.service"])),
            ["--user", "start", "app.service"]
        );
        assert_eq!(
            args(&command(&target(Scope::System, Some("/mnt")), &["enable", "app.service"])),
            ["--root=/mnt", "enable", "app.service"]
        );
    }

    #[test]
    fn show_output_is_summarised() {
        let running = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\n\
                       UnitFileState=enabled\nFragmentPath=/etc/systemd/system/app.service\n\
                       StatusText=3 running\n";
        assert_eq!(
            parse_show(running),
            ServiceStatus {
                file: Some("/etc/systemd/system/app.service".into()),
                enabled: Some("enabled".into()),
                running: true,
                state: "active (running)".into(),
                pid: Some(4242),
                status_text: Some("3 running".into()),
                command: None,
            }
        );
        let missing = "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=\n\
                       FragmentPath=\nStatusText=\n";
        let s = parse_show(missing);
        assert_eq!((s.running, s.state.as_str(), s.pid, s.file), (false, "not installed", None, None));
    }

    #[test]
    fn hints_say_what_to_do() {
        let sys = target(Scope::System, None);
        let user = target(Scope::User, None);
        let no_systemd = "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
                          Failed to connect to bus: Host is down";
        assert!(hint(no_systemd, &sys, "enable").contains("service render --init systemd"));
        assert!(hint("Failed to connect to bus: No medium found", &user, "enable").contains("enable-linger"));
        assert!(hint("Failed to enable unit: Access denied", &sys, "enable").contains("sudo"));
        assert!(
            hint("Unit app.service not found.", &user, "start").contains("service install --user --name app")
        );
        assert!(hint("Job failed.", &sys, "start").contains("journalctl -u app"));
    }
}
