//! steward as a native service, and the service managers' protocols.
//!
//! - Installing: a backend per service manager writes the file `steward_core::render`
//!   produced and drives the manager's own tool: [`systemd`] (`systemctl`, Linux) and
//!   [`launchd`] (`launchctl`, macOS). Both are compiled on every Unix, so the compiler checks
//!   the macOS code on Linux too; [`native`] picks the one this OS uses. On Windows, `windows`
//!   registers the settings `render::windows` decided with the Service Control Manager's API.
//!   steward running as that service is `crate::host`, one floor up.
//! - [`eventlog`]: what a Windows service writes to the Event Log (pure, tested everywhere);
//!   `eventlog::windows` writes it and registers the source.
//! - [`status`]: the supervisor's status sink, telling systemd (or the SCM, through the host)
//!   that steward is ready, stopping, or alive (watchdog).
//! - steward's own log goes to journald, with structured fields, under systemd, through
//!   `steward_service::log::journald` (in `cli`).
//!
//! This module sits above `supervise` (it reads its events and states) and below `daemon`,
//! which hands the status sink to the supervisor.
//!
//! The errors of `systemctl` and `launchctl` are passed on verbatim, with a hint that says
//! what to do next ([`ServiceError::Tool`]).

#[cfg(unix)]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub mod launchd;
pub mod status;
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod systemd;
// Platform code, chosen once here.
#[cfg_attr(not(windows), allow(dead_code))]
pub mod eventlog;
#[cfg(windows)]
pub mod windows;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use steward_core::render::{Init, RenderError, Scope, ServiceSpec, UserDirs};

/// Which installed service a verb is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub scope: Scope,
    /// The folders of the user a `--user` service belongs to.
    pub dirs: UserDirs,
    /// An offline system image to install into instead of the running system (systemd's
    /// `--root`): the file is written under it, enabled there, and nothing is started.
    pub root: Option<PathBuf>,
}

impl Target {
    /// `path` inside [`Target::root`], or `path` itself.
    pub fn in_root(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }
}

/// What `service status` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The service file, when it exists.
    pub file: Option<PathBuf>,
    /// Whether it starts at boot (or login): `enabled`, `disabled`, ... as the manager says.
    pub enabled: Option<String>,
    pub running: bool,
    /// The manager's words for the state, such as `active (running)`.
    pub state: String,
    pub pid: Option<u32>,
    /// steward's last `STATUS=` line, as systemd keeps it.
    pub status_text: Option<String>,
    /// The command line the manager runs, as it stored it (Windows).
    pub command: Option<String>,
}

/// One service manager.
pub trait Manager {
    fn init(&self) -> Init;
    /// Where the service file of `target` goes (inside `target.root` when set).
    fn file(&self, target: &Target) -> Result<PathBuf, ServiceError>;
    /// Write `text` as the service file and make it start at boot (or login). Does not start it.
    fn install(&self, target: &Target, spec: &ServiceSpec, text: &str) -> Result<(), ServiceError>;
    /// Stop the service, make it no longer start at boot, and remove its file.
    fn uninstall(&self, target: &Target) -> Result<(), ServiceError>;
    fn start(&self, target: &Target) -> Result<(), ServiceError>;
    fn stop(&self, target: &Target) -> Result<(), ServiceError>;
    fn status(&self, target: &Target) -> Result<ServiceStatus, ServiceError>;
}

/// The service manager of this OS.
pub fn native() -> Result<&'static dyn Manager, ServiceError> {
    #[cfg(target_os = "linux")]
    return Ok(&systemd::Systemd);
    #[cfg(target_os = "macos")]
    return Ok(&launchd::Launchd);
    #[cfg(windows)]
    return Ok(&windows::Scm);
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    return Err(ServiceError::Unsupported(format!(
        "steward knows no service manager on {}; `steward service render --init systemd|launchd` prints a \
         service file to adapt",
        std::env::consts::OS
    )));
}

/// Why a service verb failed. Every message ends with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The tool ran and failed: its output, verbatim.
    #[error("`{command}` failed ({status}):\n{output}\nhint: {hint}")]
    Tool { command: String, status: String, output: String, hint: String },
    #[error("cannot run `{command}`; {hint}")]
    Spawn {
        command: String,
        hint: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot {what} {}; {hint}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        hint: String,
        #[source]
        source: io::Error,
    },
    #[error("service `{name}` is not installed: {} does not exist; check --name and --user", path.display())]
    NotInstalled { name: String, path: PathBuf },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Unsupported(String),
    /// A call into the OS's service manager failed (Windows: the SCM's API).
    #[error("cannot {what}; {hint}")]
    Os {
        what: String,
        hint: String,
        #[source]
        source: io::Error,
    },
}

impl ServiceError {
    /// An I/O error on a service file or folder, with the usual hint for its kind.
    pub fn io(what: &'static str, path: &Path, source: io::Error) -> ServiceError {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "run it as root (sudo), or use --user for a service of your own user".to_owned()
            }
            io::ErrorKind::NotFound => "check that the folder exists".to_owned(),
            _ => "check the path and its permissions".to_owned(),
        };
        ServiceError::Io { what, path: path.to_path_buf(), hint, source }
    }
}

/// A command line as it would be typed, for messages.
pub fn command_line(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            words.push(format!("'{arg}'"));
        } else {
            words.push(arg.into_owned());
        }
    }
    words.join(" ")
}

/// The output of a tool that ran, with stdout and stderr as text.
#[derive(Debug)]
pub struct ToolOutput {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, capturing its output. Only a failure to start it is an error here;
/// whether it succeeded is in [`ToolOutput::success`].
pub fn run_tool(mut cmd: Command, missing_hint: &str) -> Result<(ToolOutput, String), ServiceError> {
    let command = command_line(&cmd);
    tracing::debug!(event = "service", "running {command}");
    let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|source| {
        let hint = if source.kind() == io::ErrorKind::NotFound {
            missing_hint.to_owned()
        } else {
            "check that it is installed and executable".to_owned()
        };
        ServiceError::Spawn { command: command.clone(), hint, source }
    })?;
    let output = ToolOutput {
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    Ok((output, command))
}

/// Runs `cmd` and turns a failure into [`ServiceError::Tool`], with `hint(output)` as what to
/// do next. Returns stdout.
pub fn run_checked(
    cmd: Command,
    missing_hint: &str,
    hint: impl FnOnce(&str) -> String,
) -> Result<String, ServiceError> {
    let (out, command) = run_tool(cmd, missing_hint)?;
    if out.success {
        return Ok(out.stdout);
    }
    let mut output = out.stderr.trim_end().to_owned();
    if !out.stdout.trim().is_empty() {
        if !output.is_empty() {
            output.push('\n');
        }
        output.push_str(out.stdout.trim_end());
    }
    if output.is_empty() {
        output = "(no output)".to_owned();
    }
    let hint = hint(&output);
    Err(ServiceError::Tool { command, status: out.status, output, hint })
}

/// Writes a service file: its folder is created, and the file is replaced in one rename, so
/// the manager never reads half a file.
pub fn write_file(path: &Path, text: &str) -> Result<(), ServiceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ServiceError::io("create the folder", dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    std::fs::write(&tmp, text).map_err(|e| ServiceError::io("write", &tmp, e))?;
    #[cfg(unix)]
    {
        // Service files are read by the manager (root) and by people: rw-r--r--.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ServiceError::io("write", path, e)
    })
}

/// Writes a service file, then runs `register` (daemon-reload, enable, ...). When that
/// fails, the file is put back as it was (or removed), so a failed install leaves nothing
/// half-installed behind.
pub fn write_then(
    path: &Path,
    text: &str,
    register: impl FnOnce() -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let previous = std::fs::read_to_string(path).ok();
    write_file(path, text)?;
    register().inspect_err(|_| {
        let _ = match &previous {
            Some(old) => write_file(path, old),
            None => remove_file(path),
        };
    })
}

/// Removes a service file; one that is already gone is fine.
pub fn remove_file(path: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServiceError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_spaces() {
        let mut cmd = Command::new("systemctl");
        cmd.args(["--user", "enable", "my app.service", ""]);
        assert_eq!(command_line(&cmd), "systemctl --user enable 'my app.service' ''");
    }

    #[test]
    fn paths_inside_a_root() {
        let mut t = Target { name: "x".into(), scope: Scope::System, dirs: UserDirs::default(), root: None };
        assert_eq!(
            t.in_root(Path::new("/etc/systemd/system/x.service")),
            PathBuf::from("/etc/systemd/system/x.service")
        );
        t.root = Some("/mnt/image".into());
        assert_eq!(
            t.in_root(Path::new("/etc/systemd/system/x.service")),
            PathBuf::from("/mnt/image/etc/systemd/system/x.service")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_tool_is_shown_verbatim_with_a_hint() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'Failed to frob: Access denied' >&2; exit 4"]);
        let err = run_checked(cmd, "install sh", |out| format!("hint for <{out}>")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("`sh -c "), "{text}");
        assert!(text.contains("exit status: 4"), "{text}");
        assert!(
            text.contains("\nFailed to frob: Access denied\nhint: hint for <Failed to frob: Access denied>"),
            "{text}"
        );
        let missing = run_checked(Command::new("/nonexistent/tool"), "install the tool", |_| String::new());
        let err = missing.unwrap_err();
        assert!(err.to_string().contains("install the tool"), "{err}");
    }
}
