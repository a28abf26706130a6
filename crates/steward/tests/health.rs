//! End to end: health checks with real probes against real local servers.

use crate::common::*;
use crate::http_server::TestServer;

/// Whether `e` says the health of `program` turned `to`.
fn health(e: &LogEvent, program: &str, to: &str) -> bool {
    e.is(program, "health") && e.to.as_deref() == Some(to)
}

#[test]
fn an_http_check_turns_unhealthy_and_the_program_is_restarted() {
    let server = TestServer::start(200);
    let cfg = format!(
        r#"
[programs.web]
command = {cmd}

[programs.web.health]
http = "{url}"
interval = "100ms"
timeout = "2s"
retries = 2
on_unhealthy = "restart"
"#,
        cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
        url = server.url("/healthz"),
    );
    let s = start(&cfg);
    let first = s.wait_started("web");
    let healthy = s.wait_for_event("web to be healthy", |e| health(e, "web", "healthy"));
    assert!(healthy.message.contains("HTTP 200"), "{healthy:?}");
    wait_until(DEADLINE, "status to say healthy", || (s.program("web")["health"] == "healthy").then_some(()));
    assert_eq!(server.received()[0].path, "/healthz");

    server.set_status(503);
    let unhealthy = s.wait_for_event("web to be unhealthy", |e| health(e, "web", "unhealthy"));
    let line = &unhealthy.message;
    assert!(line.contains("2 failed probes in a row, the last: HTTP 503"), "{line}");
    assert!(line.contains("restarting (on_unhealthy)"), "{line}");
    server.set_status(200);
    // A new process, healthy again, and the restart counted.
    let second = s.wait_for_nth("web", "started", 2).pid.unwrap();
    assert_ne!(first, second);
    wait_until(DEADLINE, "healthy after the restart", || {
        let st = s.program("web");
        (st["health"] == "healthy" && st["pid"] == second && st["restarts"] == 1).then_some(())
    });
    let kinds: Vec<(String, String)> = s
        .api_events()
        .iter()
        .filter(|e| e["kind"] == "health")
        .map(|e| (e["from"].as_str().unwrap().to_owned(), e["to"].as_str().unwrap().to_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = kinds.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        pairs[..4],
        [("unknown", "healthy"), ("healthy", "unhealthy"), ("unhealthy", "unknown"), ("unknown", "healthy")],
        "{kinds:?}"
    );
    s.shutdown();
}

#[test]
fn a_tcp_check_follows_the_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = format!(
        r#"
[programs.db]
command = {cmd}
health = {{ tcp = "{addr}", interval = "100ms", retries = 1 }}
"#,
        cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
    );
    let s = start(&cfg);
    let pid = s.wait_started("db");
    let healthy = s.wait_for_event("db to be healthy", |e| health(e, "db", "healthy"));
    assert!(healthy.message.contains("connected"), "{healthy:?}");
    // The port closes: unhealthy, and with on_unhealthy = "none" it keeps running.
    drop(listener);
    let line = s.wait_for_event("db to be unhealthy", |e| health(e, "db", "unhealthy")).message;
    assert!(line.contains("1 failed probes in a row"), "{line}");
    assert!(line.contains(&format!("connect to {addr}")), "{line}");
    let st = s.program("db");
    assert_eq!(
        (st["health"].as_str(), st["state"].as_str(), st["pid"].as_u64()),
        (Some("unhealthy"), Some("running"), Some(pid.into()))
    );
    s.shutdown();
}

#[test]
fn exec_checks_pass_on_zero_and_a_hung_one_is_killed_at_its_timeout() {
    let probe = testchild();
    let cfg = format!(
        r#"
[programs.good]
command = {cmd}
health = {{ exec = [{probe}], interval = "100ms" }}

[programs.stuck]
command = {cmd}
health = {{ exec = [{probe}, "--pidfile", "probe.pid", "--sleep", "1h"], timeout = "300ms", interval = "5s", retries = 1 }}
"#,
        cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
        probe = q(probe.to_string_lossy()),
    );
    let s = start(&cfg);
    let good = s.wait_for_event("good to be healthy", |e| health(e, "good", "healthy"));
    assert!(good.message.contains("exit code 0"), "{good:?}");
    let line = s.wait_for_event("stuck to be unhealthy", |e| health(e, "stuck", "unhealthy")).message;
    assert!(line.contains("timed out after 300ms"), "{line}");
    // The hung check (started in the program's folder) was killed with its tree.
    let probe_pid = wait_pidfile(&s.path("probe.pid"));
    wait_gone(probe_pid, "the hung exec probe");
    // The supervisor kept answering meanwhile.
    assert_eq!(s.program("good")["health"], "healthy");
    s.shutdown();
}

#[test]
fn depends_on_waits_until_the_dependency_is_healthy() {
    let server = TestServer::start(503);
    let cfg = format!(
        r#"
[programs.web]
command = {cmd}
depends_on = ["db"]

[programs.db]
command = {cmd}
health = {{ http = "{url}", interval = "50ms", retries = 100 }}
"#,
        cmd = child_cmd(&["--trap-term", "--sleep", "1h"]),
        url = server.url("/ready"),
    );
    let s = start(&cfg);
    s.wait_for("db", "started");
    // db runs and is probed, but is not healthy: web waits for it.
    wait_until(DEADLINE, "three probes of db", || (server.hits() >= 3).then_some(()));
    let web = s.program("web");
    assert_eq!(web["state"], "stopped", "{web}");
    assert_eq!(web["waiting_for"], serde_json::json!(["db"]), "{web}");
    assert_eq!(s.program("db")["health"], "unknown");
    assert_eq!(s.events_of("web", "started").len(), 0, "{}", s.log());

    server.set_status(200);
    s.wait_for("web", "started");
    let events = s.events();
    let at = |pred: &dyn Fn(&LogEvent) -> bool| events.iter().position(pred).unwrap();
    assert!(at(&|e| health(e, "db", "healthy")) < at(&|e| e.is("web", "started")), "{}", s.log());
    s.shutdown();
}
