//! End to end: the sd_notify protocol in both directions, with real processes.
//!
//! - A program with `ready = "notify"` counts as running only once it sends `READY=1` to the
//!   `NOTIFY_SOCKET` steward gives it, and its dependents wait for that.
//! - steward itself, run with `NOTIFY_SOCKET` (as systemd runs a `Type=notify` unit), sends
//!   `READY=1` once its programs are up, `WATCHDOG=1` pings when `WATCHDOG_USEC` is set, and
//!   `STOPPING=1` at shutdown. The socket is a real Unix datagram socket bound by the test,
//!   exactly what systemd provides; systemd itself is not involved.
#![cfg(unix)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Seconds since midnight (UTC) of a log line's timestamp (`2026-01-02T03:04:05.678901Z ...`).
#[track_caller]
fn time_of(line: &str) -> f64 {
    let t = line
        .split('T')
        .nth(1)
        .and_then(|rest| rest.split('Z').next())
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    let mut parts = t.split(':');
    let mut field =
        || parts.next().and_then(|p| p.parse::<f64>().ok()).unwrap_or_else(|| panic!("bad time in {line:?}"));
    let (h, m, s) = (field(), field(), field());
    h * 3600.0 + m * 60.0 + s
}

/// Seconds from line `a` to line `b`, across midnight if need be.
fn seconds_between(a: &str, b: &str) -> f64 {
    (time_of(b) - time_of(a)).rem_euclid(86_400.0)
}

#[test]
fn a_dependent_starts_only_after_its_dependency_sends_ready() {
    let cfg = format!(
        r#"
[programs.db]
command = {db}
ready = "notify"

[programs.web]
command = {web}
depends_on = ["db"]
"#,
        db = child_cmd(&["--env", "NOTIFY_SOCKET", "--notify-ready-after", "700ms", "--sleep", "1h"]),
        web = child_cmd(&["--env", "NOTIFY_SOCKET", "--sleep", "1h"]),
    );
    let s = Steward::start(&cfg);
    let web_started = s.wait_log_line(&["program=web", "started (pid"]);
    let log = s.log();
    let line =
        |parts: &[&str]| find_line(&log, parts).unwrap_or_else(|| panic!("no line with {parts:?}\n{log}"));
    let db_spawned = line(&["program=db", "waiting for READY=1"]);
    let db_ready = line(&["program=db", "ready"]);
    let pos = |l: &str| log.lines().position(|x| x == l).unwrap();
    assert!(pos(&db_spawned) < pos(&db_ready) && pos(&db_ready) < pos(&web_started), "order\n{log}");
    // db was held in `starting` through the delay (700ms, counted by the child from its own
    // start; the bound leaves room for a loaded machine), and web waited for it.
    let held = seconds_between(&db_spawned, &db_ready);
    assert!(held >= 0.5, "db was ready {held}s after its start, before it sent READY=1\n{log}");
    assert!(seconds_between(&db_spawned, &web_started) >= 0.5, "web started too early\n{log}");

    // db got a socket of its own under the state dir; web got none.
    let db_out = std::fs::read_to_string(s.log_dir().join("db.out.log")).unwrap();
    let socket = s.path(".steward/notify/db.sock");
    assert!(db_out.contains(&format!("env NOTIFY_SOCKET={}", socket.display())), "{db_out}");
    assert!(db_out.contains("sent READY=1"), "{db_out}");
    let web_out = std::fs::read_to_string(s.log_dir().join("web.out.log")).unwrap();
    assert!(web_out.contains("env NOTIFY_SOCKET unset"), "{web_out}");
    s.shutdown();
    // The socket goes with the process.
    assert!(!socket.exists(), "{} left behind", socket.display());
}

#[test]
fn a_notify_program_that_never_sends_ready_holds_its_dependents() {
    let cfg = format!(
        r#"
[programs.mute]
command = {mute}
ready = "notify"

[programs.after]
command = {after}
depends_on = ["mute"]

[programs.witness]
command = {witness}
"#,
        mute = child_cmd(&["--print-ready", "--sleep", "1h"]),
        after = child_cmd(&["--sleep", "1h"]),
        witness = child_cmd(&["--print-ready", "--sleep", "1h"]),
    );
    let s = Steward::start(&cfg);
    // Both independent programs are up and printing; still nothing from `after`.
    s.wait_log_line(&["program=witness", "started (pid"]);
    s.wait_log_line(&["program=mute", "waiting for READY=1"]);
    wait_until(DEADLINE, "mute's ready line in its log", || {
        std::fs::read_to_string(s.log_dir().join("mute.out.log"))
            .ok()
            .filter(|o| o.contains("ready pid="))
            .map(drop)
    });
    assert_eq!(s.count_log_lines(&["program=after", "started"]), 0, "{}", s.log());
    assert_eq!(s.count_log_lines(&["program=mute", "ready"]), 0, "{}", s.log());
    s.shutdown();
}

/// What steward sent to the socket systemd would have given it.
struct FakeManagerSocket {
    socket: UnixDatagram,
    messages: Vec<String>,
}

impl FakeManagerSocket {
    fn bind(path: &std::path::Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        FakeManagerSocket { socket, messages: Vec::new() }
    }

    /// Receives datagrams until one satisfies `pred`, and returns it.
    #[track_caller]
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool, s: &Steward) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {what} within {DEADLINE:?}; got {:?}\n{}",
                self.messages,
                s.daemon.dump()
            );
            self.socket.set_read_timeout(Some(left)).unwrap();
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.messages.push(msg.clone());
                    if pred(&msg) {
                        return msg;
                    }
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

#[test]
fn steward_tells_its_service_manager_ready_watchdog_and_stopping() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[supervisor]
watchdog = "200ms"

[programs.db]
command = {db}
ready = "notify"

[programs.web]
command = {web}
depends_on = ["db"]
"#,
        db = child_cmd(&["--notify-ready-after", "300ms", "--sleep", "1h"]),
        web = child_cmd(&["--env", "NOTIFY_SOCKET", "--env", "WATCHDOG_USEC", "--sleep", "1h"]),
    );
    let cfg_path = dir.path().join("steward.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let socket_path = dir.path().join("manager.sock");
    let mut manager = FakeManagerSocket::bind(&socket_path);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.arg("run").arg("-c").arg(&cfg_path);
    // What systemd sets for a Type=notify unit with WatchdogSec=200ms (WATCHDOG_PID is
    // optional; without it the variable is for whoever reads it).
    cmd.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "200000").env_remove("WATCHDOG_PID");
    let s = Steward { daemon: Daemon::from_command(cmd, dir.path()), dir };

    let ready = manager.wait_for("READY=1", |m| m.lines().any(|l| l == "READY=1"), &s);
    // Sent once both programs were up, with the summary as its status.
    assert!(ready.lines().any(|l| l == "STATUS=2 running"), "{ready}");
    assert!(
        s.count_log_lines(&["program=web", "started (pid"]) == 1,
        "READY=1 came before web started\n{}",
        s.log()
    );
    // Nothing claimed readiness before.
    let before: Vec<&String> =
        manager.messages[..manager.messages.len() - 1].iter().filter(|m| m.trim() != "WATCHDOG=1").collect();
    assert!(before.iter().all(|m| !m.contains("READY=1")), "{before:?}");
    assert!(before.iter().all(|m| m.starts_with("STATUS=starting: ")), "{before:?}");

    // The watchdog: pings every 100ms (half of WATCHDOG_USEC). Two in a row prove it repeats.
    let first = Instant::now();
    manager.wait_for("a WATCHDOG=1", |m| m.trim() == "WATCHDOG=1", &s);
    manager.wait_for("a second WATCHDOG=1", |m| m.trim() == "WATCHDOG=1", &s);
    assert!(first.elapsed() < Duration::from_secs(10));

    // The programs do not see steward's variables.
    let web_out = std::fs::read_to_string(s.log_dir().join("web.out.log")).unwrap();
    assert!(
        web_out.contains("env NOTIFY_SOCKET unset") && web_out.contains("env WATCHDOG_USEC unset"),
        "{web_out}"
    );

    s.daemon.signal(libc::SIGTERM);
    manager.wait_for("STOPPING=1", |m| m.lines().any(|l| l == "STOPPING=1"), &s);
    let status = s.daemon.wait_exit(DEADLINE);
    assert!(status.success(), "{status}\n{}", s.daemon.dump());
}

#[test]
fn without_a_notify_socket_steward_sends_nothing_and_the_watchdog_is_idle() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[supervisor]
watchdog = "1s"

[programs.p]
command = {p}
"#,
        p = child_cmd(&["--sleep", "1h"]),
    );
    let cfg_path = dir.path().join("steward.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.arg("run").arg("-c").arg(&cfg_path).env("STEWARD_LOG", "debug");
    // As if run by hand, even when the tests themselves run under systemd.
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        cmd.env_remove(var);
    }
    let s = Steward { daemon: Daemon::from_command(cmd, dir.path()), dir };
    s.wait_log_line(&["program=p", "started"]);
    s.wait_log_line(&["`watchdog` has no effect: steward is not running as a systemd service"]);
    assert_eq!(s.count_log_lines(&["sending WATCHDOG=1"]), 0, "{}", s.log());
    s.shutdown();
}
