//! End to end: health checks with real probes against real local servers.
#![cfg(unix)]

mod common;
mod http_server;

use std::process::{Command, Output};

use common::*;
use http_server::TestServer;

fn cli(s: &Steward, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .arg("-c")
        .arg(s.path("steward.toml"))
        .args(args)
        .output()
        .expect("run the steward CLI")
}

fn status(s: &Steward, name: &str) -> serde_json::Value {
    let out = cli(s, &["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    all["programs"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap()
}

/// The events so far, as JSON values.
fn events(s: &Steward) -> Vec<serde_json::Value> {
    let out = cli(s, &["events", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
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
    let s = Steward::start(&cfg);
    let first = pid_in(&s.wait_log_line(&["web", "started"]));
    s.wait_log_line(&["web", "healthy: HTTP 200"]);
    wait_until(DEADLINE, "status to say healthy", || {
        (status(&s, "web")["health"] == "healthy").then_some(())
    });
    assert_eq!(server.received()[0].path, "/healthz");

    server.set_status(503);
    let line = s.wait_log_line(&["web", "unhealthy: 2 failed probes in a row, the last: HTTP 503"]);
    assert!(line.contains("restarting (on_unhealthy)"), "{line}");
    s.wait_log_line(&["web", "restarting: unhealthy"]);
    server.set_status(200);
    // A new process, healthy again, and the restart counted.
    let second = wait_until(DEADLINE, "a second start", || {
        let log = s.log();
        let pids: Vec<u32> = log
            .lines()
            .filter(|l| l.contains("program=web") && l.contains("started (pid"))
            .map(pid_in)
            .collect();
        pids.get(1).copied()
    });
    assert_ne!(first, second);
    wait_until(DEADLINE, "healthy after the restart", || {
        let st = status(&s, "web");
        (st["health"] == "healthy" && st["pid"] == second && st["restarts"] == 1).then_some(())
    });
    let kinds: Vec<(String, String)> = events(&s)
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
    let s = Steward::start(&cfg);
    let pid = pid_in(&s.wait_log_line(&["db", "started"]));
    s.wait_log_line(&["db", "healthy: connected"]);
    // The port closes: unhealthy, and with on_unhealthy = "none" it keeps running.
    drop(listener);
    let line = s.wait_log_line(&["db", "unhealthy: 1 failed probes in a row"]);
    assert!(line.contains(&format!("connect to {addr}")), "{line}");
    let st = status(&s, "db");
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
    let s = Steward::start(&cfg);
    s.wait_log_line(&["good", "healthy: exit code 0"]);
    let line = s.wait_log_line(&["stuck", "unhealthy"]);
    assert!(line.contains("timed out after 300ms"), "{line}");
    // The hung check (started in the program's folder) was killed with its tree.
    let probe_pid = wait_pidfile(&s.path("probe.pid"));
    wait_gone(probe_pid, "the hung exec probe");
    // The supervisor kept answering meanwhile.
    assert_eq!(status(&s, "good")["health"], "healthy");
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
    let s = Steward::start(&cfg);
    s.wait_log_line(&["db", "started"]);
    // db runs and is probed, but is not healthy: web waits for it.
    wait_until(DEADLINE, "three probes of db", || (server.hits() >= 3).then_some(()));
    let web = status(&s, "web");
    assert_eq!(web["state"], "stopped", "{web}");
    assert_eq!(web["waiting_for"], serde_json::json!(["db"]), "{web}");
    assert_eq!(status(&s, "db")["health"], "unknown");
    assert_eq!(s.count_log_lines(&["program=web", "started"]), 0, "{}", s.log());

    server.set_status(200);
    s.wait_log_line(&["web", "started"]);
    let log = s.log();
    let at = |parts: &[&str]| log.lines().position(|l| parts.iter().all(|p| l.contains(p))).unwrap();
    assert!(at(&["db", "healthy: HTTP 200"]) < at(&["program=web", "started"]), "{log}");
    s.shutdown();
}
