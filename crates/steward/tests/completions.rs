//! `steward completions`: the bash script run by a real bash the way bash runs it on TAB
//! (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT set, then the function `complete -p steward`
//! names), calling this crate's steward from PATH; and the other shells' scripts checked by
//! their shell when it is installed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

/// Sources `steward completions bash` and completes `line` (its last word, empty when the line
/// ends with a space) in `cwd`; prints one candidate per line.
const COMPLETE: &str = r#"
set -u
source <(steward completions bash) || exit 10
fn=$(complete -p steward | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[[ -n "$fn" ]] || exit 11
line="$1"
read -ra COMP_WORDS <<<"$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$line"
COMP_POINT=${#line}
COMP_TYPE=9
"$fn" steward "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// PATH with the directory of the steward under test first, as the script calls `steward`.
fn path_with_steward() -> std::ffi::OsString {
    let dir = Path::new(STEWARD).parent().unwrap().to_path_buf();
    let mut dirs = vec![dir];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// What a TAB at the end of `line` offers, run in `cwd` with `env` set; panics (showing bash's
/// output) if bash fails or writes to stderr, which a user would see on their terminal.
#[track_caller]
fn complete(line: &str, cwd: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", COMPLETE, "bash", line])
        .current_dir(cwd)
        .env("PATH", path_with_steward())
        .env_remove("STEWARD_CONFIG")
        .env_remove("STEWARD_SOCKET")
        .env_remove("COMPLETE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    assert!(out.status.success() && out.stderr.is_empty(), "completing {line:?}: {}", describe(&out));
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// The candidates that are not flags: the verbs or program names.
fn words(candidates: Vec<String>) -> BTreeSet<String> {
    candidates.into_iter().filter(|c| !c.starts_with('-')).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn describe(out: &Output) -> String {
    testkit::describe(out)
}

#[test]
fn bash_completes_the_verbs_that_start_with_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(words(complete("steward st", dir.path(), &[])), set(&["start", "status", "stop"]));
    assert_eq!(words(complete("steward sc", dir.path(), &[])), set(&["scale"]));
    // Sub-verbs and flags of a verb.
    assert_eq!(words(complete("steward service ren", dir.path(), &[])), set(&["render"]));
    assert_eq!(complete("steward logs --fol", dir.path(), &[]), vec!["--follow".to_owned()]);
    // The shells `completions` takes.
    let shells = words(complete("steward completions ", dir.path(), &[]));
    assert!(["bash", "zsh", "fish", "powershell"].iter().all(|s| shells.contains(*s)), "{shells:?}");
}

fn config() -> String {
    let sleep = child_cmd(&["--trap-term", "--sleep", "1h"]);
    format!(
        r#"
[programs.web]
command = {sleep}
instances = 2

[programs.db]
command = {sleep}

[programs.batch]
command = {sleep}
autostart = false
"#
    )
}

#[test]
fn bash_completes_program_names_from_the_running_steward_then_from_the_config() {
    let s = start(&config());
    s.wait_api();
    let config = s.config_path().to_str().unwrap().to_owned();
    // The file now names other programs: while steward runs (not reloaded), its own list is
    // the one offered; once it is gone, the file's.
    std::fs::write(
        s.config_path(),
        format!("[programs.renamed]\ncommand = {}\n", child_cmd(&["--exit", "0"])),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    let line = format!("steward -c {config} restart ");
    assert_eq!(words(complete(&line, elsewhere.path(), &[])), set(&["web", "db", "batch"]));
    let line = format!("steward --config={config} restart w");
    assert_eq!(complete(&line, elsewhere.path(), &[]), vec!["web".to_owned()]);
    // Every verb that takes a program name, the config from STEWARD_CONFIG or the default.
    for verb in ["start", "stop", "status", "logs", "scale", "deploy", "rollback", "versions"] {
        let line = format!("steward {verb} b");
        assert_eq!(
            complete(&line, elsewhere.path(), &[("STEWARD_CONFIG", &config)]),
            vec!["batch"],
            "{verb}"
        );
        assert_eq!(complete(&line, s.dir(), &[]), vec!["batch"], "{verb}");
    }
    // A value that is not a program name is not completed with one.
    assert!(words(complete("steward scale web ", s.dir(), &[])).is_empty());

    s.shutdown();
    assert_eq!(words(complete("steward restart ", s.dir(), &[])), set(&["renamed"]));
    let line = format!("steward -c {config} stop r");
    assert_eq!(complete(&line, elsewhere.path(), &[]), vec!["renamed".to_owned()]);
}

#[test]
fn a_config_that_does_not_validate_still_gives_its_names_and_no_config_gives_none() {
    let dir = tempfile::tempdir().unwrap();
    // Invalid (an unknown key, a variable that is not set): the names are still its tables'.
    std::fs::write(
        dir.path().join("steward.toml"),
        "[programs.api]\ncommand = \"${STEWARD_TEST_UNSET_VARIABLE}\"\n\n[programs.web]\ncommnd = \"x\"\n",
    )
    .unwrap();
    assert_eq!(words(complete("steward restart ", dir.path(), &[])), set(&["api", "web"]));
    // No file: nothing, and nothing on stderr (checked by `complete`).
    let empty = tempfile::tempdir().unwrap();
    assert!(words(complete("steward restart ", empty.path(), &[])).is_empty());
    // Not TOML at all.
    std::fs::write(empty.path().join("steward.toml"), "[programs.web\n").unwrap();
    assert!(words(complete("steward restart ", empty.path(), &[])).is_empty());
}

#[test]
fn a_steward_that_does_not_answer_does_not_hang_the_tab() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("steward.toml"), "[programs.web]\ncommand = \"x\"\n").unwrap();
    // A socket where steward's would be, that takes connections and never answers.
    std::fs::create_dir(dir.path().join(".steward")).unwrap();
    let socket = dir.path().join(".steward/steward.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let started = Instant::now();
    assert_eq!(words(complete("steward restart ", dir.path(), &[])), set(&["web"]));
    // Half a second for the daemon, then the file: well under what a person would notice
    // as a hang (with room for a loaded CI machine).
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// The scripts of the other shells: generated, and checked by the shell when it is here.
#[test]
fn every_shell_gets_a_script_its_shell_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"][..]),
        ("fish", &["fish", "--no-execute"][..]),
        ("powershell", &[][..]),
        ("elvish", &[][..]),
    ] {
        let out = Command::new(STEWARD).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        // It completes `steward` by calling `steward` back with COMPLETE set to its shell.
        assert!(script.contains("steward") && script.contains("COMPLETE"), "{shell}: {script}");
        let Some((program, args)) = check.split_first() else { continue };
        let file = dir.path().join(format!("steward.{shell}"));
        std::fs::write(&file, &script).unwrap();
        match Command::new(program).args(args).arg(&file).output() {
            Ok(out) => {
                assert!(out.status.success(), "{program} rejects the {shell} script: {}", describe(&out))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: {program} is not installed; the {shell} script is not syntax-checked")
            }
            Err(e) => panic!("run {program}: {e}"),
        }
    }
}
