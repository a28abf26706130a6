//! End to end: a program whose process tree stays above `max_memory` is restarted with the
//! reason "memory limit".
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_program_above_max_memory_for_the_grace_period_is_restarted() {
    let cfg = format!(
        r#"
[programs.hog]
command = {hog}
max_memory = "32MiB"
memory_grace = "400ms"

[programs.lean]
command = {lean}
max_memory = "32MiB"
memory_grace = "400ms"
"#,
        hog = child_cmd(&["--trap-term", "--alloc-mb", "64", "--sleep", "1h"]),
        lean = child_cmd(&["--trap-term", "--sleep", "1h"]),
    );
    let s = Steward::start(&cfg);
    let first = pid_in(&s.wait_log_line(&["hog", "started"]));
    // The first sample above may catch the child still allocating: only "above" is certain.
    s.wait_log_line(&["hog", "is above max_memory 32MiB; restarting if it stays above for 400ms"]);
    s.wait_log_line(&["hog", "memory limit:", "has stayed above max_memory 32MiB for 400ms; restarting"]);
    s.wait_log_line(&["hog", "restarting: memory limit"]);
    let second = wait_until(DEADLINE, "hog to start again", || {
        let log = s.log();
        let pids: Vec<u32> = log
            .lines()
            .filter(|l| l.contains("program=hog") && l.contains("started (pid"))
            .map(pid_in)
            .collect();
        pids.get(1).copied()
    });
    assert_ne!(first, second);
    wait_gone(first, "the first hog");

    // The restart counts, the event stream says why, and the lean program was left alone.
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["-c", &s.path("steward.toml").to_string_lossy(), "events", "--json"])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout).into_owned();
    let limit: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "limit" && e["program"] == "hog")
        .collect();
    assert!(limit.iter().any(|e| e["message"].as_str().unwrap().starts_with("memory limit:")), "{events}");
    assert!(events.contains("restarting: memory limit"), "{events}");
    assert_eq!(s.count_log_lines(&["program=lean", "started"]), 1, "{}", s.log());
    assert_eq!(s.count_log_lines(&["lean", "max_memory"]), 0, "{}", s.log());
    s.shutdown();
}
