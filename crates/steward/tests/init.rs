//! `steward init` and `steward add` as a user runs them: the files they write pass `steward
//! check`, nothing is overwritten, comments survive, and an added program really runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// A fresh folder and the config path in it (not created).
fn folder() -> (testkit::tempfile::TempDir, PathBuf) {
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("steward.toml");
    (dir, path)
}

/// `steward -c CONFIG ARGS..`, run in the config's folder.
fn steward(config: &Path, args: &[&str]) -> Output {
    Command::new(STEWARD)
        .arg("-c")
        .arg(config)
        .args(args)
        .current_dir(config.parent().expect("a folder"))
        .output()
        .expect("run steward")
}

#[track_caller]
fn ok(config: &Path, args: &[&str]) -> String {
    let out = steward(config, args);
    assert_eq!(out.status.code(), Some(0), "steward {args:?}: {}", testkit::describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with exit code 1; returns stderr.
#[track_caller]
fn refused(config: &Path, args: &[&str]) -> String {
    let out = steward(config, args);
    assert_eq!(out.status.code(), Some(1), "steward {args:?} should fail: {}", testkit::describe(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The `command` of program `name`, read back by a TOML parser that is not steward's.
fn command_of(text: &str, name: &str) -> Vec<String> {
    let doc: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    let command =
        doc["programs"][name]["command"].as_array().unwrap_or_else(|| panic!("no command:\n{text}"));
    command.iter().map(|a| a.as_str().expect("a string").to_owned()).collect()
}

#[test]
fn init_with_a_command_writes_a_commented_file_that_checks() {
    let (_dir, path) = folder();
    let stdout = ok(&path, &["init", "--", "python3", "-m", "http.server", "0"]);
    assert!(stdout.contains("steward check") && stdout.contains("steward run"), "next steps: {stdout}");
    let text = read(&path);
    assert_eq!(command_of(&text, "python3"), ["python3", "-m", "http.server", "0"]);
    assert!(text.lines().filter(|l| l.starts_with('#')).count() >= 5, "a commented file:\n{text}");
    let check = ok(&path, &["check"]);
    assert!(check.contains("ok (1 programs)"), "{check}");
}

#[test]
fn init_without_a_command_writes_an_example_that_checks() {
    let (_dir, path) = folder();
    let stdout = ok(&path, &["init"]);
    assert!(stdout.contains("steward add"), "the next step is adding a program: {stdout}");
    let text = read(&path);
    assert!(text.contains("# [programs.web]"), "an example program, commented out:\n{text}");
    let check = ok(&path, &["check"]);
    assert!(check.contains("ok (0 programs)"), "{check}");
}

#[test]
fn init_names_the_program_and_quotes_what_toml_and_steward_would_read() {
    let (_dir, path) = folder();
    let args = ["./my app.js", "say \"hi\"", "C:\\dir", "${HOME}", "$HOME", "50%{x}", "'single'"];
    let mut init = vec!["init", "--"];
    init.extend(args);
    ok(&path, &init);
    let text = read(&path);
    assert_eq!(command_of(&text, "my-app").len(), args.len(), "{text}");
    // What steward itself reads back: every argument as typed, nothing expanded.
    let config = steward_core::config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.programs["my-app"].command, args);

    let (_dir2, other) = folder();
    ok(&other, &["init", "--name", "api", "--", "./server"]);
    assert_eq!(command_of(&read(&other), "api"), ["./server"]);
    let err = refused(&other.with_file_name("x.toml"), &["init", "--name", "my app", "--", "./server"]);
    assert!(err.contains("invalid program name `my app`"), "{err}");
}

#[test]
fn init_never_overwrites_a_file() {
    let (_dir, path) = folder();
    ok(&path, &["init", "--", "python3", "app.py"]);
    let before = read(&path);
    let err = refused(&path, &["init", "--", "node", "other.js"]);
    assert!(err.contains(&path.display().to_string()), "names the file: {err}");
    assert!(err.contains("already exists") && err.contains("steward add"), "says what to do: {err}");
    assert_eq!(read(&path), before, "the file is untouched");
}

#[test]
fn add_appends_a_program_and_keeps_the_file_as_it_was() {
    let (_dir, path) = folder();
    ok(&path, &["init", "--", "python3", "-m", "http.server", "0"]);
    // A comment and a layout of the user's own, which must survive.
    let mut mine = read(&path);
    mine.push_str("\n# my own note\n[programs.db]   # the database\ncommand = \"postgres -D data\"\nstop_signal = \"INT\"\n");
    std::fs::write(&path, &mine).expect("write");

    let stdout = ok(&path, &["add", "worker", "--", "python3", "worker.py", "--queue", "jobs"]);
    assert!(stdout.contains("added program `worker`"), "{stdout}");
    let text = read(&path);
    assert!(text.starts_with(&mine), "the old text is kept, byte for byte:\n{text}");
    assert!(text[mine.len()..].contains("[programs.worker]"), "the new program comes last:\n{text}");
    assert_eq!(command_of(&text, "worker"), ["python3", "worker.py", "--queue", "jobs"]);
    let check = ok(&path, &["check"]);
    assert!(check.contains("ok (3 programs)"), "{check}");
}

#[test]
fn add_to_a_file_without_programs_writes_a_table_of_its_own() {
    let (_dir, path) = folder();
    ok(&path, &["init"]);
    ok(&path, &["add", "web", "--", "python3", "-m", "http.server", "0"]);
    let text = read(&path);
    assert!(text.contains("\n[programs.web]\n"), "[programs.web], not [programs]:\n{text}");
    assert!(!text.contains("\n[programs]\n"), "{text}");
    assert!(ok(&path, &["check"]).contains("ok (1 programs)"));
}

#[test]
fn add_refuses_a_name_taken_or_invalid_and_changes_nothing() {
    let (_dir, path) = folder();
    ok(&path, &["init", "--name", "web", "--", "python3", "app.py"]);
    let before = read(&path);
    let err = refused(&path, &["add", "web", "--", "node", "x.js"]);
    assert!(err.contains("already has a program `web`"), "{err}");
    for bad in ["my app", ".hidden", "con", "a/b"] {
        let err = refused(&path, &["add", bad, "--", "node", "x.js"]);
        assert!(err.contains(&format!("invalid program name `{bad}`")), "{bad}: {err}");
    }
    assert_eq!(read(&path), before, "the file is untouched");

    // No file yet: the error says how to start one.
    let (_dir2, missing) = folder();
    let err = refused(&missing, &["add", "web", "--", "node", "x.js"]);
    assert!(err.contains("does not exist") && err.contains("steward init -- node x.js"), "{err}");
}

#[test]
fn add_refuses_when_the_file_does_not_check_out() {
    let (_dir, path) = folder();
    let broken = "[programs.web]\ncommand = \"./web\"\nrestart = \"sometimes\"\n";
    std::fs::write(&path, broken).expect("write");
    let err = refused(&path, &["add", "worker", "--", "./worker"]);
    assert!(err.contains("does not pass `steward check`"), "{err}");
    assert!(err.contains("restart"), "the file's own mistake is shown: {err}");
    assert_eq!(read(&path), broken);
}

/// A program `add` wrote runs under `steward run`, with its arguments as they were typed:
/// the test child writes its pid to a path holding `${...}` and `%{...}`, which steward must
/// not expand.
#[test]
fn an_added_program_runs() {
    let (dir, path) = folder();
    ok(&path, &["init"]);
    let pidfile = dir.path().join("pid-${NOT_EXPANDED}-%{instance}");
    let child = testchild();
    let (child, pidfile_arg) = (child.to_string_lossy(), pidfile.to_string_lossy());
    ok(&path, &["add", "child", "--", &child, "--pidfile", &pidfile_arg, "--sleep", "1h"]);

    let steward = start(&read(&path));
    let pid = steward.wait_started("child");
    assert_eq!(wait_pidfile(&pidfile), pid, "the child wrote its pid where it was told");
    steward.wait_api();
    wait_until(DEADLINE, "`child` to be running in `steward status`", || {
        (steward.program("child")["state"] == "running").then_some(())
    });
}
