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
