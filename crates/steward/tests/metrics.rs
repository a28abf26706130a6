//! End to end: `GET /metrics` on its own listener and on the API socket, checked by
//! `promtool check metrics` and by values after known restarts.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::http_server::{get, read_reply};

/// The value of the sample `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_pass_promtool_and_count_what_happened() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        r#"
[metrics]
listen = "127.0.0.1:0"

[programs.steady]
command = {steady}
health = {{ tcp = "{addr}", interval = "100ms" }}

[programs.crashy]
command = {crashy}
restart_delay = "10ms"
max_restarts = 2
restart_window = "1h"
"#,
        steady = child_cmd(&["--trap-term", "--alloc-mb", "8", "--sleep", "1h"]),
        crashy = child_cmd(&["--exit", "3"]),
        addr = target.local_addr().unwrap(),
    );
    let s = start(&cfg);
    let addr = metrics_addr(&s);
    s.wait_for("crashy", "fatal");
    s.wait_for_event("steady to be healthy", |e| {
        e.is("steady", "health") && e.to.as_deref() == Some("healthy")
    });
    wait_until(DEADLINE, "steady to have allocated its memory", || {
        let out = std::fs::read_to_string(s.log_dir().join("steady.out.log")).unwrap_or_default();
        out.contains("allocated 8 MiB").then_some(())
    });

    let (status, text) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{text}");
    let expect = [
        ("steward_program_restarts_total{program=\"crashy\"}", 2.0),
        ("steward_program_last_exit_code{program=\"crashy\"}", 3.0),
        ("steward_program_state{program=\"crashy\",state=\"fatal\"}", 1.0),
        ("steward_program_up{program=\"crashy\"}", 0.0),
        ("steward_program_up{program=\"steady\"}", 1.0),
        ("steward_program_restarts_total{program=\"steady\"}", 0.0),
        ("steward_program_health{program=\"steady\",health=\"healthy\"}", 1.0),
        ("steward_program_health{program=\"steady\",health=\"unhealthy\"}", 0.0),
        ("steward_build_info{version=\"0.1.0\"}", 1.0),
        ("steward_reloads_total{result=\"applied\"}", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    // The tree holds at least the 8 MiB the child touched; steward itself is measured too.
    let rss = value(&text, "steward_program_memory_rss_bytes{program=\"steady\"}").expect("rss of steady");
    assert!(rss >= 8.0 * 1024.0 * 1024.0, "{rss}");
    assert!(value(&text, "steward_program_cpu_seconds_total{program=\"steady\"}").is_some(), "{text}");
    assert!(value(&text, "steward_program_start_time_seconds{program=\"steady\"}").unwrap() > 1.6e9);
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 0.0, "{text}");
    // crashy is down: no tree to measure.
    assert!(!text.contains("steward_program_memory_rss_bytes{program=\"crashy\"}"), "{text}");
    assert!(!text.contains("# EOF"), "the Prometheus text format has no EOF line");

    promtool_check(&text);

    // OpenMetrics when asked for, as Prometheus does.
    let (_, om) = get(addr, "/metrics", Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE steward_program_restarts counter\n"), "{om}");

    // The same on the API socket, which counts its own requests.
    for _ in 0..2 {
        let (status, text) = get_unix(&s.path(".steward/steward.sock"), "/metrics");
        assert_eq!(status, 200);
        assert!(text.contains("steward_program_restarts_total{program=\"crashy\"} 2"), "{text}");
    }
    let (_, text) = get_unix(&s.path(".steward/steward.sock"), "/metrics");
    assert!(value(&text, "steward_api_requests_total{code=\"200\"}").unwrap() >= 2.0, "{text}");
    // Only /metrics on the metrics listener.
    assert_eq!(get(addr, "/v1/status", None).0, 404);

    // A rejected reload counts.
    std::fs::write(s.path("steward.toml"), "[programs.broken]\n").unwrap();
    let out = Command::new(STEWARD)
        .args(["-c", &s.path("steward.toml").to_string_lossy(), "reload"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (_, text) = get(addr, "/metrics", None);
    assert_eq!(value(&text, "steward_reloads_total{result=\"rejected\"}"), Some(1.0), "{text}");
    s.shutdown();
}

/// `promtool check metrics` on `text`, when promtool is installed (Debian package
/// `prometheus`); says so and returns when it is not.
fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED promtool check: promtool is not installed (apt-get install prometheus)");
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET over the daemon's Unix socket.
pub fn get_unix(socket: &std::path::Path, path: &str) -> (u16, String) {
    let mut conn = std::os::unix::net::UnixStream::connect(socket).expect("connect to the API socket");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: steward\r\nConnection: close\r\n\r\n").unwrap();
    read_reply(conn)
}

#[test]
fn ship_metrics_count_lines_retries_and_lag_and_pass_promtool() {
    use testkit::receiver::{Endpoint, Fault, Receiver, Times};
    let loki = Receiver::start();
    loki.inject_on(Endpoint::Loki, Fault::Status(503), Times::Next(1));
    let cfg = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n[programs.web]\ncommand = {}\n\
         [[ship]]\nkind = \"loki\"\nurl = \"{}\"\nlinger = \"20ms\"\n",
        child_cmd(&["--write-lines", "300", "--sleep", "1h"]),
        loki.url("/loki/api/v1/push"),
    );
    let s = start(&cfg);
    let addr = metrics_addr(&s);
    loki.wait_for("300 lines", DEADLINE, |st| st.loki.len() >= 300);
    // Counted when acknowledged; the cursors (and so the lag) move just after.
    let text = wait_until(DEADLINE, "the acknowledged lines counted and the cursor moved", || {
        let (_, text) = get(addr, "/metrics", None);
        let sent = value(&text, "steward_ship_sent_lines_total{sink=\"loki\"}") == Some(300.0);
        (sent && value(&text, "steward_ship_lag_seconds{sink=\"loki\"}") == Some(0.0)).then_some(text)
    });
    let expect = [
        ("steward_ship_sink_up{sink=\"loki\"}", 1.0),
        ("steward_ship_retries_total{sink=\"loki\"}", 1.0),
        ("steward_ship_dropped_lines_total{sink=\"loki\",reason=\"refused\"}", 0.0),
        ("steward_ship_dropped_lines_total{sink=\"loki\",reason=\"retention\"}", 0.0),
        ("steward_ship_lag_bytes{sink=\"loki\"}", 0.0),
        ("steward_ship_lag_seconds{sink=\"loki\"}", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    assert_eq!(value(&text, "steward_ship_sent_bytes_total{sink=\"loki\"}"), Some(300.0 * 63.0));
    promtool_check(&text);
}
