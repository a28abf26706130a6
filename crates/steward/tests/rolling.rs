//! End to end: rolling restarts of a program with `instances` (Unix: readiness by sd_notify).
//! A new process must be ready before the old one of its slot stops; a new process that
//! never becomes ready is stopped, never the old one, and the roll pauses.

use std::collections::BTreeMap;

use crate::common::*;

fn config(extra_args: &[&str], update: &str) -> String {
    let mut args = vec!["--trap-term", "--notify-ready-after", "150ms"];
    args.extend_from_slice(extra_args);
    args.extend_from_slice(&["--sleep", "1h"]);
    format!(
        r#"
[programs.web]
command = {cmd}
instances = 3
ready = "notify"

[programs.web.update]
{update}
"#,
        cmd = child_cmd(&args),
    )
}

fn pids(s: &Steward) -> BTreeMap<String, u32> {
    let st = s.status();
    st["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["program"] == "web")
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["pid"].as_u64().unwrap_or(0) as u32))
        .collect()
}

/// Waits until `n` instances run; their pids.
fn wait_running(s: &Steward, n: u32) -> BTreeMap<String, u32> {
    testkit::wait_until_or_dump(
        DEADLINE,
        &format!("{n} instances running"),
        || s.daemon().dump(),
        || {
            let st = s.status();
            (st["groups"][0]["running"] == n).then(|| pids(s))
        },
    )
}

/// The API's events of `kind`, in order.
fn events(s: &Steward, kind: &str) -> Vec<serde_json::Value> {
    s.api_events().into_iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn a_restart_replaces_each_instance_once_its_new_process_is_ready() {
    let s = start(&config(&[], "max_surge = 1"));
    s.wait_api();
    let before = wait_running(&s, 3);

    let out = s.cli_ok(["restart", "web"]);
    let after = pids(&s);
    for (name, old) in &before {
        assert_ne!(after[name], *old, "{name} was not replaced: {out}");
        assert!(!pid_alive(*old), "the old process of {name} still runs");
        assert!(out.contains(&format!("{name}: running (pid {})", after[name])), "{out}");
    }
    let steps: Vec<String> =
        events(&s, "rollout").iter().map(|e| e["to"].as_str().unwrap().to_owned()).collect();
    assert_eq!(steps, ["started", "replaced", "replaced", "replaced", "complete"], "{:#?}", s.api_events());

    // The gate, seen in the events: each new process was running before the old process of
    // its slot began to stop, and only one new process ran at a time (max_surge = 1).
    let all = s.api_events();
    for (name, new) in &after {
        let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| all.iter().position(pred);
        let new_running =
            pos(&|e| e["program"] == name.as_str() && e["to"] == "running" && e["pid"] == *new).unwrap();
        let old_stopping =
            pos(&|e| e["program"] == name.as_str() && e["to"] == "stopping" && e["pid"] == before[name])
                .unwrap_or_else(|| panic!("no stop of {name}'s old process in {all:#?}"));
        assert!(new_running < old_stopping, "{name}: old stopped before the new one ran: {all:#?}");
    }
}

#[test]
fn a_new_version_that_never_becomes_ready_pauses_the_roll_and_keeps_the_old_ones() {
    let s = start(&config(&[], "ready_timeout = \"1s\""));
    s.wait_api();
    let before = wait_running(&s, 3);

    // The new version never sends READY=1.
    let bad = format!(
        "\n[programs.web]\ncommand = {}\ninstances = 3\nready = \"notify\"\n[programs.web.update]\nready_timeout = \"1s\"\n",
        child_cmd(&["--trap-term", "--sleep", "1h"])
    );
    std::fs::write(s.config_path(), bad).unwrap();
    s.cli_ok(["reload"]);
    let paused = s.wait_for_api_event("the roll to pause", |e| e["kind"] == "rollout" && e["to"] == "paused");
    let message = paused["message"].as_str().unwrap();
    assert!(message.contains("slot 0") && message.contains("not ready"), "{message}");
    // The old processes still run, untouched.
    let after = pids(&s);
    assert_eq!(after, before);
    for pid in before.values() {
        assert!(pid_alive(*pid));
    }
    // Whatever the new version started is gone.
    let failed = events(&s, "rollout").into_iter().filter(|e| e["to"] == "slot-failed").count();
    assert_eq!(failed, 1, "{:#?}", s.api_events());
}

#[test]
fn a_second_restart_during_a_roll_is_refused() {
    let s = start(&config(&[], "min_ready = \"2s\""));
    s.wait_api();
    wait_running(&s, 3);
    s.cli_ok(["restart", "web", "--no-wait"]);
    let out = s.cli(["restart", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web is in a rolling restart"), "{err}");
    let out = s.cli(["scale", "web", "5"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rolling restart"), "{}", testkit::describe(&out));
}

/// With a health check, a new process counts as ready once its check passes: a version whose
/// check fails never replaces an old process.
#[test]
fn a_health_check_gates_the_roll() {
    let config = |rev: &str| {
        format!(
            r#"
[programs.web]
command = {cmd}
instances = 2
env = {{ REV = "{rev}" }}

[programs.web.health]
exec = ["/bin/sh", "-c", "test \"$REV\" != bad"]
interval = "100ms"
retries = 1

[programs.web.update]
ready_timeout = "2s"
"#,
            cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
        )
    };
    let s = start(&config("1"));
    s.wait_api();
    let before = wait_running(&s, 2);
    // A version whose check passes replaces both.
    std::fs::write(s.config_path(), config("2")).unwrap();
    s.cli_ok(["reload"]);
    s.wait_for_api_event("the roll to complete", |e| e["kind"] == "rollout" && e["to"] == "complete");
    let good = pids(&s);
    assert!(good.values().all(|p| !before.values().any(|b| b == p)), "{before:?} -> {good:?}");
    // One whose check fails replaces none: the roll pauses, the old processes stay.
    std::fs::write(s.config_path(), config("bad")).unwrap();
    s.cli_ok(["reload"]);
    let paused = s.wait_for_api_event("the roll to pause", |e| e["kind"] == "rollout" && e["to"] == "paused");
    assert!(paused["message"].as_str().unwrap().contains("slot 0"), "{paused}");
    assert_eq!(pids(&s), good);
}

/// `steward restart` of a program whose new processes fail exits 1 and says which slot and why.
#[test]
fn a_failed_roll_makes_restart_exit_1_naming_the_slot() {
    let flag = testkit::tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let flag_path = flag.to_string_lossy().into_owned();
    std::fs::remove_file(&flag_path).unwrap();
    let config = format!(
        r#"
[programs.web]
command = {cmd}
instances = 2

[programs.web.health]
exec = ["/bin/sh", "-c", "test ! -e {flag_path}"]
interval = "100ms"
retries = 1

[programs.web.update]
ready_timeout = "1s"
"#,
        cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
    );
    let s = start(&config);
    s.wait_api();
    let before = wait_running(&s, 2);
    // From now on every new process fails its check.
    std::fs::write(&flag_path, "").unwrap();
    let out = s.cli(["restart", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rolling restart of web: paused at slot 0"), "{err}");
    assert_eq!(pids(&s), before, "the old processes still serve");
    std::fs::remove_file(&flag_path).unwrap();
}
