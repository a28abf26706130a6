//! End to end, the proof of the rolling restart: a real HTTP server (`steward-testserver`)
//! takes its listener from the socket steward holds, and a load client keeps 32 requests in
//! flight while steward restarts, scales and reloads it. Every scenario must fail no request,
//! and after a roll every response must come from a new process. The negative control (a
//! server that binds its own port, restarted stop-then-start) must fail some: otherwise the
//! others would prove nothing.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use testkit::load::{self, Load, Mode, Report, Target};

use crate::common::*;

/// A program of `instances` test servers on a socket steward holds, becoming ready (READY=1)
/// 300 ms after they start, revision `rev`, with `update` in its [update] table.
fn config(instances: u32, rev: &str, update: &str) -> String {
    format!(
        r#"
[programs.web]
command = [{server}, "--ready-after", "300ms"]
instances = {instances}
ready = "notify"
env = {{ REV = "{rev}" }}

[programs.web.sockets.http]
listen = "127.0.0.1:0"

[programs.web.update]
{update}
"#,
        server = q(testkit::testserver().to_string_lossy()),
    )
}

struct Scenario {
    s: Steward,
    addr: SocketAddr,
}

impl Scenario {
    fn start(config: &str, instances: usize) -> Scenario {
        let s = start(config);
        s.wait_api();
        let sc = Scenario { addr: SocketAddr::from(([127, 0, 0, 1], 0)), s };
        sc.wait_running(instances);
        let st = sc.s.status();
        let listen = st["groups"][0]["sockets"][0]["listen"].as_str().unwrap().to_owned();
        let addr = listen.strip_prefix("tcp://").unwrap().parse().unwrap();
        Scenario { addr, ..sc }
    }

    /// Waits until `n` instances run (and are ready: `ready = "notify"`); returns their pids.
    fn wait_running(&self, n: usize) -> BTreeSet<u32> {
        testkit::wait_until_or_dump(
            DEADLINE,
            "the instances to run",
            || self.s.daemon().dump(),
            || {
                let st = self.s.status();
                let pids: BTreeSet<u32> = st["programs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["program"] == "web" && p["state"] == "running")
                    .filter_map(|p| p["pid"].as_u64().map(|p| p as u32))
                    .collect();
                (pids.len() == n && st["groups"][0]["total"] == n as u64).then_some(pids)
            },
        )
    }

    fn load(&self, mode: Mode) -> Load {
        let mut config = load::Config::new(Target::Tcp(self.addr));
        config.mode = mode;
        let load = load::start(config).unwrap();
        self.flowing(&load);
        load
    }

    /// Waits for 200 more successes: load is flowing.
    fn flowing(&self, load: &Load) {
        let target = load.snapshot().ok + 200;
        testkit::wait_until_or_dump(
            DEADLINE,
            "load to flow",
            || format!("{:?}", load.snapshot()),
            || (load.snapshot().ok >= target).then_some(()),
        );
    }
}

/// No request failed; every request sent after `after` was answered by one of `pids`.
#[track_caller]
fn assert_clean_after(report: &Report, after: Duration, pids: &BTreeSet<u32>) {
    assert_eq!(report.counts.failed(), 0, "{}", report.summary());
    let late: BTreeSet<u32> = report.sent_after(after).map(|r| r.pid).collect();
    assert!(!late.is_empty(), "no response after the change: {}", report.summary());
    assert!(
        late.is_subset(pids),
        "answered after the change by {late:?}, not only {pids:?}: {}",
        report.summary()
    );
}

#[test]
fn a_rolling_restart_of_four_instances_drops_nothing() {
    let sc = Scenario::start(&config(4, "1", ""), 4);
    let old = sc.wait_running(4);
    let load = sc.load(Mode::Close);
    sc.s.cli_ok(["restart", "web"]);
    let after = load.elapsed();
    let new = sc.wait_running(4);
    sc.flowing(&load);
    let report = load.stop();
    assert!(new.is_disjoint(&old), "{old:?} -> {new:?}");
    assert_clean_after(&report, after, &new);
}

#[test]
fn one_instance_with_a_socket_restarts_without_downtime() {
    let sc = Scenario::start(&config(1, "1", ""), 1);
    let old = sc.wait_running(1);
    // Keep-alive this time: the old server closes idle connections as it drains.
    let load = sc.load(Mode::KeepAlive);
    sc.s.cli_ok(["restart", "web"]);
    let after = load.elapsed();
    let new = sc.wait_running(1);
    sc.flowing(&load);
    let report = load.stop();
    assert!(new.is_disjoint(&old));
    assert_clean_after(&report, after, &new);
}

#[test]
fn a_reload_that_changes_env_rolls_and_one_that_changes_instances_scales() {
    let sc = Scenario::start(&config(3, "1", ""), 3);
    let old = sc.wait_running(3);
    let load = sc.load(Mode::Close);

    // Only `instances`: the three keep their processes.
    std::fs::write(sc.s.config_path(), config(4, "1", "")).unwrap();
    sc.s.cli_ok(["reload"]);
    let four = sc.wait_running(4);
    assert!(old.is_subset(&four), "{old:?} -> {four:?}");

    // The env: a gated roll to revision 2.
    std::fs::write(sc.s.config_path(), config(4, "2", "")).unwrap();
    sc.s.cli_ok(["reload"]);
    sc.s.wait_for_api_event("the roll to complete", |e| e["kind"] == "rollout" && e["to"] == "complete");
    let after = load.elapsed();
    let new = sc.wait_running(4);
    sc.flowing(&load);
    let report = load.stop();
    assert!(new.is_disjoint(&four));
    assert_clean_after(&report, after, &new);
    assert!(report.sent_after(after).all(|r| r.rev == "2"), "{}", report.summary());
}

#[test]
fn scaling_four_to_six_to_two_under_load_drops_nothing() {
    let sc = Scenario::start(&config(4, "1", ""), 4);
    let four = sc.wait_running(4);
    let load = sc.load(Mode::Close);
    sc.s.cli_ok(["scale", "web", "6"]);
    let six = sc.wait_running(6);
    assert!(four.is_subset(&six));
    sc.flowing(&load);
    sc.s.cli_ok(["scale", "web", "2"]);
    let after = load.elapsed();
    let two = sc.wait_running(2);
    assert!(two.is_subset(&four), "the survivors are web:0 and web:1, untouched");
    sc.flowing(&load);
    let report = load.stop();
    assert_clean_after(&report, after, &two);
}

#[test]
fn a_bad_version_pauses_and_the_old_processes_keep_serving() {
    let update = "ready_timeout = \"1s\"";
    let sc = Scenario::start(&config(3, "1", update), 3);
    let old = sc.wait_running(3);
    let load = sc.load(Mode::Close);
    let bad = config(3, "2", update).replace(r#""--ready-after", "300ms""#, r#""--never-ready""#);
    std::fs::write(sc.s.config_path(), bad).unwrap();
    sc.s.cli_ok(["reload"]);
    let paused =
        sc.s.wait_for_api_event("the roll to pause", |e| e["kind"] == "rollout" && e["to"] == "paused");
    let after = load.elapsed();
    assert!(paused["message"].as_str().unwrap().contains("slot 0"), "{paused}");
    sc.flowing(&load);
    let report = load.stop();
    assert_eq!(sc.wait_running(3), old, "the old processes still serve");
    assert_clean_after(&report, after, &old);
}

#[test]
fn a_version_that_fails_at_the_third_slot_rolls_back() {
    let update = "ready_timeout = \"1s\"\non_failure = \"rollback\"";
    let sc = Scenario::start(&config(3, "1", update), 3);
    let old = sc.wait_running(3);
    let load = sc.load(Mode::Close);
    // Revision 2 never gets ready in slot 2: a shell picks the flag and execs the server
    // (exec keeps the pid, so LISTEN_PID stays right).
    let server = testkit::testserver().to_string_lossy().into_owned();
    let script = format!(
        r#"if [ "$STEWARD_INSTANCE" = 2 ]; then exec {server} --never-ready; else exec {server} --ready-after 300ms; fi"#
    );
    let bad = config(3, "2", update).replace(
        &format!(r#"[{}, "--ready-after", "300ms"]"#, q(&server)),
        &format!(r#"["/bin/sh", "-c", {}]"#, q(&script)),
    );
    assert_ne!(bad, config(3, "2", update));
    std::fs::write(sc.s.config_path(), bad).unwrap();
    sc.s.cli_ok(["reload"]);
    let done =
        sc.s.wait_for_api_event("the rollback", |e| e["kind"] == "rollout" && e["to"] == "rolled-back");
    assert!(done["message"].as_str().unwrap().contains("slot 2"), "{done}");
    let after = load.elapsed();
    sc.flowing(&load);
    let report = load.stop();
    let now = sc.wait_running(3);
    // Slot 2 never changed; slots 0 and 1 went to revision 2 and back, on new processes.
    assert_eq!(now.intersection(&old).count(), 1, "{old:?} -> {now:?}");
    assert_clean_after(&report, after, &now);
    assert!(report.sent_after(after).all(|r| r.rev == "1"), "{}", report.summary());
}

/// The negative control: a server that binds its own port, restarted stop-then-start under
/// the same load, must fail requests; if it did not, the tests above would prove nothing.
#[test]
fn without_a_held_socket_a_restart_drops_requests() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Like most servers, it loads for a while (300 ms) before it binds its port.
    let script =
        format!("sleep 0.3; exec {} --listen 127.0.0.1:{port}", testkit::testserver().to_string_lossy());
    let config = format!(
        r#"
[programs.web]
command = ["/bin/sh", "-c", {script}]
ready = "notify"
"#,
        script = q(&script),
    );
    let s = start(&config);
    s.wait_api();
    testkit::wait_until_or_dump(
        DEADLINE,
        "web to run",
        || s.daemon().dump(),
        || (s.program("web")["state"] == "running").then_some(()),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sc = Scenario { s, addr };
    let load = sc.load(Mode::Close);
    sc.s.cli_ok(["restart", "web"]);
    sc.flowing(&load);
    let report = load.stop();
    assert!(
        report.counts.refused > 0,
        "a stop-then-start on its own port refused nothing: {}",
        report.summary()
    );
}
