//! End to end: the sd_notify protocol in both directions, with real processes.
//!
//! - A program with `ready = "notify"` counts as running only once it sends `READY=1` to the
//!   `NOTIFY_SOCKET` steward gives it, and its dependents wait for that.
//! - On Linux only the program's process group may send it: a `READY=1` from elsewhere (here
//!   from the test itself) is ignored and logged.
//! - steward itself, run with `NOTIFY_SOCKET` (as systemd runs a `Type=notify` unit), sends
//!   `READY=1` once its programs are up, `WATCHDOG=1` pings when `WATCHDOG_USEC` is set, and
//!   `STOPPING=1` at shutdown. The socket is a real Unix datagram socket bound by the test,
//!   exactly what systemd provides; systemd itself is not involved.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::supervise::time_between;

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
    let s = start(&cfg);
    s.wait_for("web", "started");
    let (events, log) = (s.events(), s.log());
    let at = |pred: &dyn Fn(&LogEvent) -> bool| {
        events.iter().position(pred).unwrap_or_else(|| panic!("an event is missing\n{log}"))
    };
    // Spawned (and waiting), then ready (starting -> running), then its dependent started.
    let spawned = at(&|e| e.is("db", "spawned"));
    let ready = at(&|e| e.program.as_deref() == Some("db") && e.to.as_deref() == Some("running"));
    let web = at(&|e| e.is("web", "started"));
    assert!(spawned < ready && ready < web, "order\n{log}");
    let (db_spawned, db_ready, web_started) = (&events[spawned], &events[ready], &events[web]);
    // db was held in `starting` through the delay (700ms, counted by the child from its own
    // start; the bound leaves room for a loaded machine), and web waited for it.
    let held = time_between(db_spawned, db_ready);
    assert!(
        held >= Duration::from_millis(500),
        "db was ready {held:?} after its start, before it sent READY=1\n{log}"
    );
    assert!(
        time_between(db_spawned, web_started) >= Duration::from_millis(500),
        "web started too early\n{log}"
    );

    // db got a socket of its own under the state dir; web got none.
    // The child prints "sent READY=1" after sending it: it may reach the file after web starts.
    let db_log = s.log_dir().join("db.out.log");
    let db_out = wait_until(DEADLINE, "db's `sent READY=1` in its log", || {
        std::fs::read_to_string(&db_log).ok().filter(|out| out.contains("sent READY=1"))
    });
    let socket = s.path(".steward/notify/db.sock");
    assert!(db_out.contains(&format!("env NOTIFY_SOCKET={}", socket.display())), "{db_out}");
    assert!(db_out.contains("sent READY=1"), "{db_out}");
    // web's log file is opened at its first output, which may come after its start event.
    let web_log = s.log_dir().join("web.out.log");
    let web_out = wait_until(DEADLINE, "web's first output", || {
        std::fs::read_to_string(&web_log).ok().filter(|out| out.contains("env NOTIFY_SOCKET"))
    });
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
    let s = start(&cfg);
    // Both independent programs are up and printing; still nothing from `after`.
    s.wait_for("witness", "started");
    s.wait_for("mute", "spawned");
    wait_until(DEADLINE, "mute's ready line in its log", || {
        std::fs::read_to_string(s.log_dir().join("mute.out.log"))
            .ok()
            .filter(|o| o.contains("ready pid="))
            .map(drop)
    });
    assert_eq!(s.events_of("after", "started").len(), 0, "{}", s.log());
    assert_eq!(s.program("mute")["state"], "starting", "{}", s.log());
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
                s.daemon().dump()
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
    let manager_dir = testkit::tempfile::tempdir().unwrap();
    let socket_path = manager_dir.path().join("manager.sock");
    let mut manager = FakeManagerSocket::bind(&socket_path);
    let s = Steward::start_command(STEWARD, &cfg, &[], |cmd| {
        // What systemd sets for a Type=notify unit with WatchdogSec=200ms (WATCHDOG_PID is
        // optional; without it the variable is for whoever reads it).
        cmd.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "200000").env_remove("WATCHDOG_PID");
    });

    let ready = manager.wait_for("READY=1", |m| m.lines().any(|l| l == "READY=1"), &s);
    // Sent once both programs were up, with the summary as its status.
    assert!(ready.lines().any(|l| l == "STATUS=2 running"), "{ready}");
    assert_eq!(s.events_of("web", "started").len(), 1, "READY=1 came before web started\n{}", s.log());
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
    let web_log = s.log_dir().join("web.out.log");
    let web_out = wait_until(DEADLINE, "web's output", || {
        std::fs::read_to_string(&web_log).ok().filter(|out| out.contains("env WATCHDOG_USEC"))
    });
    assert!(
        web_out.contains("env NOTIFY_SOCKET unset") && web_out.contains("env WATCHDOG_USEC unset"),
        "{web_out}"
    );

    s.daemon().signal(libc::SIGTERM);
    manager.wait_for("STOPPING=1", |m| m.lines().any(|l| l == "STOPPING=1"), &s);
    let status = s.daemon().wait_exit(DEADLINE);
    assert!(status.success(), "{status}\n{}", s.daemon().dump());
}

#[test]
fn without_a_notify_socket_steward_sends_nothing_and_the_watchdog_is_idle() {
    let cfg = format!(
        r#"
[supervisor]
watchdog = "1s"

[programs.p]
command = {p}
"#,
        p = child_cmd(&["--sleep", "1h"]),
    );
    let s = Steward::start_command(STEWARD, &cfg, &[], |cmd| {
        cmd.env("STEWARD_LOG", "debug");
        // As if run by hand, even when the tests themselves run under systemd.
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
    });
    s.wait_for("p", "started");
    // One watchdog event, which says it is idle; none for a ping.
    let idle = s.wait_for_event("the watchdog's event", |e| e.is_daemon("watchdog"));
    assert!(idle.message.contains("has no effect: steward is not running as a systemd service"), "{idle:?}");
    let watchdog: Vec<LogEvent> = s.events().into_iter().filter(|e| e.is_daemon("watchdog")).collect();
    assert_eq!(watchdog.len(), 1, "{watchdog:?}");
    s.shutdown();
}

#[cfg(target_os = "linux")]
#[test]
fn ready_from_outside_the_programs_process_group_is_ignored() {
    let gate = testkit::tempfile::tempdir().unwrap();
    // db sends READY=1 only once this file exists.
    let go = gate.path().join("go");
    let config = format!(
        "[programs.db]\ncommand = {}\nready = \"notify\"\n",
        child_cmd(&["--await-file", &go.to_string_lossy(), "--notify-ready-after", "0ms", "--sleep", "1h"]),
    );
    let s = start(&config);
    s.wait_for("db", "spawned");
    // The test is not in db's process tree, but it is steward's user: the socket's folder lets
    // it send.
    let socket = s.path(".steward/notify/db.sock");
    let outsider = UnixDatagram::unbound().unwrap();
    outsider.send_to(b"READY=1\n", &socket).unwrap();
    let running = |e: &LogEvent| e.program.as_deref() == Some("db") && e.to.as_deref() == Some("running");
    let first = s.wait_for_event("db to refuse the outsider's READY=1 (or to take it)", |e| {
        e.is("db", "notify-refused") || running(e)
    });
    assert_eq!(first.event.as_deref(), Some("notify-refused"), "{first:?}\n{}", s.log());
    assert_eq!(first.pid, Some(std::process::id()), "the outsider's pid: {first:?}");
    assert_eq!(s.program("db")["state"], "starting");

    // Now db itself sends READY=1, and that counts.
    std::fs::write(&go, "").unwrap();
    s.wait_for_event("db to be running after its own READY=1", running);
    s.shutdown();
}
