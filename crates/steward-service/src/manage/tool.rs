//! Running a manager's tool (`systemctl`, `launchctl`) and writing service files, for the
//! Unix backends.

use std::io;
use std::path::Path;
use std::process::Command;

use super::Error;

/// A command line as it would be typed, for messages.
pub(crate) fn command_line(cmd: &Command) -> String {
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
pub(crate) struct ToolOutput {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, capturing its output. Only a failure to start it is an error here;
/// whether it succeeded is in [`ToolOutput::success`].
pub(crate) fn run_tool(mut cmd: Command, missing_hint: &str) -> Result<(ToolOutput, String), Error> {
    let command = command_line(&cmd);
    tracing::debug!(event = "service", "running {command}");
    let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|source| {
        let hint = if source.kind() == io::ErrorKind::NotFound {
            missing_hint.to_owned()
        } else {
            "check that it is installed and executable".to_owned()
        };
        Error::Spawn { command: command.clone(), hint, source }
    })?;
    let output = ToolOutput {
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    Ok((output, command))
}

/// Runs `cmd` and turns a failure into [`Error::Tool`], with `hint(output)` as what to do
/// next. Returns stdout.
pub(crate) fn run_checked(
    cmd: Command,
    missing_hint: &str,
    hint: impl FnOnce(&str) -> String,
) -> Result<String, Error> {
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
    Err(Error::Tool { command, status: out.status, output, hint })
}

/// Writes a service file: its folder is created, and the file is replaced in one rename, so
/// the manager never reads half a file.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create the folder", dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    std::fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, e))?;
    {
        // Service files are read by the manager (root) and by people: rw-r--r--.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

/// Writes a service file, then runs `register` (daemon-reload, enable, ...). When that
/// fails, the file is put back as it was (or removed), so a failed install leaves nothing
/// half-installed behind.
pub(crate) fn write_then(
    path: &Path,
    text: &str,
    register: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
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
pub(crate) fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Polls `status` until `done` holds or `wait` has passed (`Duration::MAX`: for ever): for
/// the verbs that wait on a manager whose tool returns before the state changes (launchctl,
/// `systemctl --no-block`). The tools offer nothing to block on.
pub(crate) fn wait_for<S>(
    wait: std::time::Duration,
    mut status: impl FnMut() -> Result<S, Error>,
    done: impl Fn(&S) -> bool,
) -> Result<(S, bool), Error> {
    let deadline = std::time::Instant::now().checked_add(wait);
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let s = status()?;
        if done(&s) {
            return Ok((s, true));
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok((s, false));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
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

    #[test]
    fn files_are_written_and_put_back_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/app.service");
        write_then(&path, "one", || Ok(())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let failed = write_then(&path, "two", || Err(Error::NoHome("x")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one", "the old file is back");
        remove_file(&path).unwrap();
        remove_file(&path).unwrap();
        assert!(write_then(&path, "three", || Err(Error::NoHome("x"))).is_err());
        assert!(!path.exists(), "a failed first install leaves no file");
    }
}
