//! End to end: a program's log file that cannot be opened never loses output silently. The
//! reason reaches steward's log, the event stream and `/metrics`, and the program runs on
//! (its output is read and discarded, so it never blocks on a full pipe).

use crate::common::*;
use crate::http_server::get;

#[test]
fn a_log_file_that_cannot_be_opened_is_logged_published_and_counted() {
    let logs = testkit::tempfile::tempdir().expect("temp dir");
    // A folder where the stdout log should be: opening it for appending fails on every OS,
    // and for root too (file modes would not stop root).
    let blocked = logs.path().join("web.out.log");
    std::fs::create_dir(&blocked).unwrap();
    let cfg = format!(
        r#"
[supervisor]
log_dir = {log_dir}

[metrics]
listen = "127.0.0.1:0"

[programs.web]
command = {web}
"#,
        log_dir = q(logs.path().to_string_lossy()),
        web = child_cmd(&["--write-lines", "3", "--sleep", "1h"]),
    );
    let s = start(&cfg);

    // steward's log: the event with the program, the stream, the file and the OS's reason.
    let logged = s.wait_for_event("web's log-open-failed", |e| e.is("web", "log-open-failed"));
    assert_eq!(logged.stream.as_deref(), Some("stdout"), "{logged:?}");
    assert_eq!(logged.level, "ERROR", "{logged:?}");
    let file = blocked.display().to_string();
    assert!(logged.message.contains(&format!("cannot open log file {file}: ")), "{logged:?}");
    assert!(logged.message.ends_with("this run's stdout is discarded"), "{logged:?}");

    // The event stream, with the same message.
    let event = wait_until(DEADLINE, "a `log` event in GET /v1/events", || {
        s.api_events().into_iter().find(|e| e["kind"] == "log")
    });
    assert_eq!(event["program"], "web", "{event}");
    assert_eq!(event["stream"], "stdout", "{event}");
    assert_eq!(event["message"].as_str(), Some(logged.message.as_str()), "{event}");

    // The counter, by stream.
    let addr = metrics_addr(&s);
    let (status, text) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{text}");
    for line in [
        "steward_log_open_failures_total{program=\"web\",stream=\"stdout\"} 1",
        "steward_log_open_failures_total{program=\"web\",stream=\"stderr\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }

    // The program was not held up: it runs, with nothing but the blocking folder in log_dir.
    assert_eq!(s.program("web")["state"], "running");
    let names: Vec<_> = std::fs::read_dir(logs.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["web.out.log"], "{names:?}");
}
