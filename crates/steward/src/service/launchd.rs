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
//!   is there and it is not disabled.
//! - `launchctl enable DOMAIN/LABEL` clears a "disabled" override left by an earlier
//!   `launchctl disable`, which would keep the job from loading at all.
//! - `launchctl print DOMAIN/LABEL` succeeds only for a loaded job, and shows its state and pid.
//!
//! So: install writes the plist and enables it (it starts at the next boot or login, or now
//! with `service start`); start bootstraps it (or kickstarts a job that is already loaded);
//! stop boots it out; uninstall boots it out and removes the plist.
//!
//! Not tested in CI (there is no macOS runner); the plist itself is golden-tested everywhere.

use std::path::PathBuf;
use std::process::Command;

use steward_core::render::{self, Init, Scope, ServiceSpec};

use super::{run_checked, run_tool, Manager, ServiceError, ServiceStatus, Target};

pub struct Launchd;

const MISSING: &str = "`launchctl` was not found: this is not macOS. \
    `steward service render --init launchd` prints the plist for a Mac";

impl Manager for Launchd {
    fn init(&self) -> Init {
        Init::Launchd
    }

    fn file(&self, target: &Target) -> Result<PathBuf, ServiceError> {
        let path = render::install_path(Init::Launchd, target.scope, &target.name, &target.dirs)?
            .expect("launchd jobs are files");
        Ok(target.in_root(&path))
    }

    fn install(&self, target: &Target, spec: &ServiceSpec, text: &str) -> Result<(), ServiceError> {
        let path = self.file(target)?;
        // launchd opens the log file itself, and fails to start the job if its folder is missing.
        if let Some(dir) = spec.log_file.parent() {
            let dir = target.in_root(dir);
            std::fs::create_dir_all(&dir).map_err(|e| ServiceError::io("create the log folder", &dir, e))?;
        }
        super::write_then(&path, text, || match target.root {
            None => launchctl(target, &["enable", &service_target(target)]).map(drop),
            Some(_) => Ok(()),
        })
    }

    fn uninstall(&self, target: &Target) -> Result<(), ServiceError> {
        let path = self.file(target)?;
        if !path.exists() {
            return Err(ServiceError::NotInstalled { name: target.name.clone(), path });
        }
        if target.root.is_none() && is_loaded(target)? {
            launchctl(target, &["bootout", &service_target(target)])?;
        }
        super::remove_file(&path)
    }

    fn start(&self, target: &Target) -> Result<(), ServiceError> {
        live_only(target, "start")?;
        if is_loaded(target)? {
            // Loaded but maybe not running (it exited successfully): run it now.
            return launchctl(target, &["kickstart", &service_target(target)]).map(drop);
        }
        let path = self.file(target)?;
        if !path.exists() {
            return Err(ServiceError::NotInstalled { name: target.name.clone(), path });
        }
        launchctl(target, &["bootstrap", &domain(target.scope), &path.to_string_lossy()]).map(drop)
    }

    fn stop(&self, target: &Target) -> Result<(), ServiceError> {
        live_only(target, "stop")?;
        if is_loaded(target)? {
            launchctl(target, &["bootout", &service_target(target)])?;
        }
        Ok(())
    }

    fn status(&self, target: &Target) -> Result<ServiceStatus, ServiceError> {
        live_only(target, "status")?;
        let file = self.file(target)?;
        let (out, _) = run_tool(command(&["print", &service_target(target)]), MISSING)?;
        let mut status = if out.success { parse_print(&out.stdout) } else { ServiceStatus::default() };
        if !out.success {
            status.state = "not loaded".into();
        }
        status.file = file.exists().then_some(file);
        if status.file.is_none() {
            status.state = "not installed".into();
        }
        Ok(status)
    }
}

fn live_only(target: &Target, verb: &str) -> Result<(), ServiceError> {
    if target.root.is_some() {
        return Err(ServiceError::Unsupported(format!(
            "`service {verb}` acts on the running system; --root is only for install and uninstall"
        )));
    }
    Ok(())
}

/// `system`, or `gui/UID` for the user running this.
fn domain(scope: Scope) -> String {
    match scope {
        Scope::System => "system".to_owned(),
        // SAFETY: getuid cannot fail and has no preconditions.
        Scope::User => format!("gui/{}", unsafe { libc::getuid() }),
    }
}

fn service_target(target: &Target) -> String {
    format!("{}/{}", domain(target.scope), target.name)
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new("launchctl");
    cmd.args(args);
    cmd
}

fn is_loaded(target: &Target) -> Result<bool, ServiceError> {
    let (out, _) = run_tool(command(&["print", &service_target(target)]), MISSING)?;
    Ok(out.success)
}

fn launchctl(target: &Target, args: &[&str]) -> Result<String, ServiceError> {
    run_checked(command(args), MISSING, |output| hint(output, target))
}

fn hint(output: &str, target: &Target) -> String {
    let user = target.scope == Scope::User;
    if output.contains("Operation not permitted") || output.contains("Permission denied") {
        return if user {
            "a LaunchAgent belongs to the logged-in user: run it as that user, from their login session"
                .into()
        } else {
            "run it as root (sudo), or use --user for a LaunchAgent of your own".into()
        };
    }
    if output.contains("Could not find service") || output.contains("No such process") {
        let flag = if user { " --user" } else { "" };
        return format!(
            "is it installed? `steward service install{flag} --name {}` installs it",
            target.name
        );
    }
    format!(
        "see `launchctl print {}` and steward's own log (StandardErrorPath in the plist)",
        service_target(target)
    )
}

/// The `state = ...` and `pid = ...` lines of `launchctl print`.
fn parse_print(out: &str) -> ServiceStatus {
    let mut status = ServiceStatus { enabled: Some("loaded".into()), ..ServiceStatus::default() };
    for line in out.lines() {
        let Some((key, value)) = line.trim().split_once(" = ") else { continue };
        match key {
            "state" if status.state.is_empty() => {
                status.state = value.to_owned();
                status.running = value == "running";
            }
            "pid" if status.pid.is_none() => status.pid = value.parse().ok(),
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
                   \tendpoints = {\n\t\tstate = active\n\t}\n}\n";
        let s = parse_print(out);
        assert_eq!((s.running, s.state.as_str(), s.pid), (true, "running", Some(321)));
    }

    #[test]
    fn domains() {
        assert_eq!(domain(Scope::System), "system");
        assert!(domain(Scope::User).starts_with("gui/"));
    }
}
