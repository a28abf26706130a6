//! End to end: config errors say where the mistake is without repeating what may be a secret.
//! An env file's bad line is named by its number and key, never its text, in `steward check`,
//! in steward's log and in a reload's error (here to a remote operator); a TOML line is shown
//! by `steward check` only, not in the log or to API callers.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use sha2::Digest as _;

const OPERATOR: &str = "operator-token-0123456789abcdef";
/// Parts of the secrets the files below hold: none may appear in any output.
const SECRETS: [&str; 2] = ["hunter2", "s3cret"];

fn cli(args: &[&str]) -> Output {
    Command::new(STEWARD).args(args).env_remove("STEWARD_TOKEN_FILE").output().expect("run the steward CLI")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// `steward check`, which must fail; its stderr.
#[track_caller]
fn check_fails(config: &Path) -> String {
    let out = cli(&["-c", &config.to_string_lossy(), "check"]);
    assert_eq!(out.status.code(), Some(1), "steward check: {}", stderr(&out));
    stderr(&out)
}

/// A reload through the remote API as an operator, which must be refused; what the CLI got.
#[track_caller]
fn remote_reload_fails(url: &str, token_file: &Path) -> String {
    let out = cli(&["--remote", url, "--token-file", &token_file.to_string_lossy(), "reload"]);
    assert_eq!(out.status.code(), Some(1), "remote reload: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn config_errors_never_echo_secrets_to_check_the_log_or_remote_callers() {
    let files = testkit::tempfile::tempdir().expect("temp dir");
    let env_file = files.path().join("app.env");
    let token_file = files.path().join("operator.token");
    std::fs::write(&env_file, "DB_USER=app\n").unwrap();
    std::fs::write(&token_file, format!("{OPERATOR}\n")).unwrap();
    let operator_sha: String =
        sha2::Sha256::digest(OPERATOR.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let config = format!(
        r#"
[programs.web]
command = {sleep}
env_file = {env_file}

[api]
listen = "127.0.0.1:0"

[[api.tokens]]
name = "deployer"
role = "operator"
token_sha256 = "{operator_sha}"
"#,
        sleep = child_cmd(&["--sleep", "1h"]),
        env_file = q(env_file.to_string_lossy()),
    );
    let s = start(&config);
    let url =
        url_in(&s.wait_for_event("the remote API's address", |e| e.is_daemon("api") && url_in(e).is_some()))
            .unwrap();
    s.wait_for("web", "started");
    let mut rejected = 0;

    // A value that does not parse: the line number and the key, not the value.
    std::fs::write(&env_file, "DB_USER=app\nDB_PASSWORD=hunter2 s3cret\n").unwrap();
    let checked = check_fails(s.config_path());
    assert!(checked.contains("line 2: the value of `DB_PASSWORD` cannot be parsed"), "{checked}");
    assert_no_secret("steward check", &checked);
    let remote = remote_reload_fails(&url, &token_file);
    assert!(remote.contains("line 2: the value of `DB_PASSWORD`"), "{remote}");
    assert_no_secret("a remote reload's error", &remote);
    rejected += 1;
    s.wait_for_nth_event("the rejected reload in the log", rejected, |e| e.is_daemon("reload-rejected"));

    // A secret pasted on a line of its own: not even taken for a key name.
    std::fs::write(&env_file, "DB_USER=app\n# pasted by mistake:\nhunter2 s3cret\n").unwrap();
    let checked = check_fails(s.config_path());
    assert!(checked.contains("line 3 is not `NAME=value`"), "{checked}");
    assert_no_secret("steward check", &checked);
    let remote = remote_reload_fails(&url, &token_file);
    assert_no_secret("a remote reload's error", &remote);
    rejected += 1;
    s.wait_for_nth_event("the rejected reload in the log", rejected, |e| e.is_daemon("reload-rejected"));

    // A TOML syntax error on a line that holds a token: `check` (run by someone who can read
    // the file) shows the line; a remote caller and the log get where it is and what is wrong.
    std::fs::write(&env_file, "DB_USER=app\n").unwrap();
    let broken = format!("{config}\n[programs.db]\ncommand = \"x\"\nenv = {{ TOKEN = \"hunter2-s3cret }}\n");
    std::fs::write(s.config_path(), &broken).unwrap();
    let line = broken.lines().position(|l| l.contains("hunter2")).unwrap() + 1;
    let checked = check_fails(s.config_path());
    assert!(checked.contains("TOKEN = \"hunter2-s3cret"), "check shows the line:\n{checked}");
    let remote = remote_reload_fails(&url, &token_file);
    assert!(remote.contains(&format!("steward.toml:{line}:")), "the location, line {line}:\n{remote}");
    assert!(remote.contains("invalid TOML"), "{remote}");
    assert_no_secret("a remote reload's error", &remote);
    rejected += 1;
    s.wait_for_nth_event("the rejected reload in the log", rejected, |e| e.is_daemon("reload-rejected"));

    assert_no_secret("steward's log", &s.log());
    // Nothing was applied: web still runs on the first config.
    assert_eq!(s.program("web")["state"], "running");
    std::fs::write(s.config_path(), &config).unwrap();
    s.shutdown();
}
