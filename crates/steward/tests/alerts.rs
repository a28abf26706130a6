//! End to end: an alert fires and resolves against a local webhook receiver (which fails
//! once, so the retry is exercised), and runs its command each time.

use crate::common::*;
use crate::http_server::TestServer;

#[test]
fn an_alert_fires_and_resolves_with_webhook_retries_and_a_command() {
    let receiver = TestServer::start(200);
    // The first delivery fails with a 503: it must be retried, not lost.
    receiver.script(&[503]);
    let cfg = format!(
        r#"
[programs.crashy]
command = {crashy}
restart_delay = "20ms"
max_restarts = 2
restart_window = "1h"

[programs.steady]
command = {steady}

[[alerts]]
name = "flapping"
when = "restarts > 1 within 2s"
webhook = "{hook}"
command = {command}
programs = ["crashy", "steady"]
"#,
        crashy = child_cmd(&["--exit", "1"]),
        steady = child_cmd(&["--trap-term", "--sleep", "1h"]),
        hook = receiver.url("/hooks/steward"),
        command = child_cmd(&["--append-start", "alert-runs.txt"]),
    );
    let s = start(&cfg);

    // Two restarts within 2 s: firing. The restarts stop there (the budget is spent), so
    // 2 s after the first one the count drops to 1: resolved.
    let to = |e: &serde_json::Value, status: &str| {
        e["kind"] == "alert" && e["program"] == "crashy" && e["to"] == status
    };
    let fired = s.wait_for_api_event("the alert to fire", |e| to(e, "firing"));
    let message = fired["message"].as_str().unwrap_or_default();
    assert!(message.contains("restarts > 1 within 2s: 2 restarts in the last 2s"), "{fired}");
    s.wait_for_api_event("the alert to resolve", |e| to(e, "resolved"));

    let payloads = wait_until(DEADLINE, "the firing and the resolved payloads", || {
        let got: Vec<serde_json::Value> = receiver
            .received()
            .iter()
            .map(|r| serde_json::from_str(&r.body).expect("the payload is JSON"))
            .collect();
        // The first request got the 503, and was sent again.
        (got.len() >= 3).then_some(got)
    });
    let requests = receiver.received();
    assert!(requests.iter().all(|r| r.method == "POST" && r.path == "/hooks/steward"), "{requests:?}");
    assert_eq!(payloads[0], payloads[1], "the retry sends the same payload");
    let firing = &payloads[1];
    assert_eq!(firing["alert"], "flapping");
    assert_eq!(firing["program"], "crashy");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["repeat"], false);
    assert_eq!(firing["condition"], "restarts > 1 within 2s");
    let resolved = &payloads[2];
    assert_eq!((&resolved["status"], &resolved["program"]), (&"resolved".into(), &"crashy".into()));
    assert!(
        resolved["message"].as_str().unwrap().starts_with("no longer restarts > 1 within 2s"),
        "{resolved}"
    );
    assert_eq!(payloads.len(), 3, "steady never restarted: {payloads:?}");

    // The command ran for each notification, in the config's folder.
    wait_until(DEADLINE, "two runs of the alert command", || {
        (line_count(&s.path("alert-runs.txt")) == 2).then_some(())
    });
    // Both are in steward's log and in the event stream.
    let logged: Vec<LogEvent> =
        s.events().into_iter().filter(|e| e.event.as_deref() == Some("alert")).collect();
    assert!(
        logged.len() == 2
            && logged.iter().all(|e| e.is("crashy", "alert") && e.alert.as_deref() == Some("flapping")),
        "{logged:?}"
    );
    let alerts: Vec<String> = s
        .api_events()
        .into_iter()
        .filter(|e| e["kind"] == "alert")
        .map(|e| format!("{} {}", e["program"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(alerts, ["crashy firing", "crashy resolved"]);
    s.shutdown();
}

/// Without rules steward keeps nothing for alerts. Rules a reload adds start from what is
/// true then: a program already fatal fires at once, and restarts from before the rules are
/// not counted as new.
#[test]
fn rules_added_by_a_reload_start_from_the_programs_as_they_are() {
    let programs = format!(
        r#"
[programs.crashy]
command = {crashy}
restart_delay = "20ms"
max_restarts = 1
restart_window = "1h"
"#,
        crashy = child_cmd(&["--exit", "1"]),
    );
    let s = start(&programs);
    s.wait_for("crashy", "fatal");
    let with_rules = format!(
        r#"{programs}
[[alerts]]
name = "dead"
when = "state == fatal"

[[alerts]]
name = "flapping"
when = "restarts > 0 within 1h"
"#
    );
    std::fs::write(s.path("steward.toml"), with_rules).unwrap();
    s.cli_ok(["reload"]);
    let fired = s.wait_for_api_event("the alert on the fatal program", |e| {
        e["kind"] == "alert" && e["program"] == "crashy" && e["to"] == "firing"
    });
    assert!(fired["message"].as_str().unwrap_or_default().starts_with("alert dead firing"), "{fired}");
    // The event stream is ordered: a flapping alert from the reload would be there by now.
    s.shutdown();
    let alerts: Vec<String> =
        s.events().into_iter().filter(|e| e.event.as_deref() == Some("alert")).map(|e| e.message).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}
