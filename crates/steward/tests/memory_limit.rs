//! End to end: a program whose process tree stays above `max_memory` is restarted with the
//! reason "memory limit".

use crate::common::*;

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
    let s = start(&cfg);
    let first = s.wait_started("hog");
    // Two limit events: above (the first sample may catch the child still allocating: only
    // "above" is certain), then the restart once the grace period is over.
    let limits = |n| s.wait_for_nth("hog", "limit", n).message;
    let above = limits(1);
    assert!(above.contains("is above max_memory 32MiB; restarting if it stays above for 400ms"), "{above}");
    let restart = limits(2);
    assert!(
        restart.starts_with("memory limit:")
            && restart.contains("has stayed above max_memory 32MiB for 400ms"),
        "{restart}"
    );
    let second = s.wait_for_nth("hog", "started", 2).pid.unwrap();
    assert_ne!(first, second);
    wait_gone(first, "the first hog");

    // The restart counts, the event stream says why, and the lean program was left alone.
    let events = s.api_events();
    let limit: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["kind"] == "limit" && e["program"] == "hog").collect();
    assert!(limit.iter().any(|e| e["message"].as_str().unwrap().starts_with("memory limit:")), "{events:#?}");
    // The restart says why in the stream: the state change's message.
    let restarting = events.iter().any(|e| {
        e["kind"] == "state"
            && e["program"] == "hog"
            && e["from"] == "running"
            && e["message"] == "restarting: memory limit"
    });
    assert!(restarting, "{events:#?}");
    assert_eq!(s.events_of("lean", "started").len(), 1, "{}", s.log());
    assert_eq!(s.events_of("lean", "limit").len(), 0, "{}", s.log());
    s.shutdown();
}
