//! `steward check` as a user runs it: what it prints, where, and its exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// Writes `config` to a fresh folder; returns the folder (keep it alive) and the file.
fn config_file(config: &str) -> (testkit::tempfile::TempDir, PathBuf) {
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("steward.toml");
    std::fs::write(&path, config).expect("write the config");
    (dir, path)
}

fn check(config: &Path, stdout: Stdio) -> Output {
    Command::new(STEWARD)
        .args(["-c", &config.to_string_lossy(), "check"])
        .stdout(stdout)
        .output()
        .expect("run steward check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `steward check | head -1` once head has gone: the write fails with EPIPE, which must end
/// the command quietly (it used to panic and exit 101). The pipe's reader is closed before
/// steward starts, so the write fails every time, not only when head is quick.
#[test]
fn a_closed_stdout_ends_check_quietly() {
    let (_dir, path) = config_file(&format!("[programs.web]\ncommand = {}\n", child_cmd(&["--sleep", "1h"])));
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = check(&path, Stdio::from(writer));
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing to say about a reader that left");
}

/// A config whose program could restart thousands of times a second, but which is valid.
fn hot_loop_config() -> String {
    format!(
        "[programs.web]\ncommand = {}\nrestart_delay = \"0s\"\nrestart_window = \"1ns\"\n",
        child_cmd(&["--sleep", "1h"])
    )
}

/// A hot restart loop is a warning, located at `restart_delay` and shown the way errors are
/// (on stderr, `warning:` where an error says `error:`), and the check still passes.
#[test]
fn a_hot_restart_loop_is_a_warning_and_the_check_passes() {
    let (_dir, path) = config_file(&hot_loop_config());
    let out = check(&path, Stdio::piped());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    let at = format!("{}:3:17: warning: program `web` can restart", path.display());
    assert!(first.starts_with(&at), "first line {first:?} is not {at:?}...; stderr:\n{stderr}");
    assert!(stderr.contains("  hint: set `restart_delay` to at least \"100ms\""), "{stderr}");
    assert!(stderr.ends_with(&format!("1 warning in {}\n", path.display())), "{stderr}");
    assert!(stdout.ends_with(": ok (1 programs, 1 warning)\n"), "{stdout}");
}

/// `run` goes through the same check: the warning is logged (as an event, located, without
/// the line's text) and the programs run.
#[test]
fn run_logs_the_warning_and_runs() {
    let s = start(&hot_loop_config());
    let warning = s.wait_for_event("the config warning", |e| e.is_daemon("config-warning"));
    assert!(warning.message.contains("steward.toml:3:17: warning: program `web` can restart"), "{warning:?}");
    assert!(
        !warning.message.contains("restart_delay = \"0s\""),
        "the line's text is not logged: {warning:?}"
    );
    s.wait_started("web");
}

/// The config the container example ships (examples/container/Dockerfile copies it into the
/// image) is valid for Linux, with no warnings. The image itself is not built here.
#[test]
fn the_container_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/container");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("the example's Dockerfile");
    assert!(
        dockerfile.contains("COPY examples/container/steward.toml /etc/steward/steward.toml"),
        "the Dockerfile no longer ships steward.toml:\n{dockerfile}"
    );
    let out = Command::new(STEWARD)
        .arg("-c")
        .arg(root.join("steward.toml"))
        .args(["check", "--os", "linux"])
        .output()
        .expect("run steward check");
    assert_eq!(out.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (2 programs)"), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr), "", "warnings");
}
