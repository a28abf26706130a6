//! Under systemd: what reaches a real notify socket (a datagram socket in a temp dir, as
//! systemd's is), in order.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use crate::harness::{example, Service, PATIENCE};

struct Notify {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Notify {
    fn new() -> Notify {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        Notify { socket, _dir: dir, path }
    }

    /// The next message, its assignments sorted as sent.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notify message within the patience");
        String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned).collect()
    }

    /// Messages until one whose first assignment is `first`, skipping watchdog pings.
    fn until(&self, first: &str) -> Vec<String> {
        loop {
            let msg = self.next();
            if msg.first().is_some_and(|a| a == first) {
                return msg;
            }
            assert!(msg == ["WATCHDOG=1"], "expected {first:?}, got {msg:?}");
        }
    }

    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut command = Command::new(example("minimal"));
        command.args(args).env("NOTIFY_SOCKET", &self.path).env_remove("WATCHDOG_USEC");
        for (k, v) in env {
            command.env(k, v);
        }
        Service::start(&mut command)
    }
}

#[test]
fn ready_reload_and_stop_are_told_in_order() {
    let notify = Notify::new();
    let mut service = notify.spawn(&[], &[]);
    service.expect_prefix("starting (Systemd)");
    assert_eq!(notify.next(), ["READY=1"]);
    service.signal(libc::SIGHUP);
    let reloading = notify.next();
    assert_eq!(reloading[0], "RELOADING=1");
    let usec: u64 = reloading[1].strip_prefix("MONOTONIC_USEC=").expect("MONOTONIC_USEC").parse().unwrap();
    assert!(usec > 0);
    // READY=1 again once the program acknowledged the reload.
    assert_eq!(notify.next(), ["READY=1"]);
    service.signal(libc::SIGTERM);
    assert_eq!(notify.next(), ["STOPPING=1", "EXTEND_TIMEOUT_USEC=10000000"]);
    service.expect_prefix("control Stop(Requested)");
    assert_eq!(service.exit().code(), Some(0));
}

#[test]
fn a_slow_start_extends_the_timeout_until_ready() {
    let notify = Notify::new();
    let mut service = notify.spawn(&["--start-delay", "3500"], &[]);
    // Once a second while starting, the wait hint as the new timeout; then READY=1.
    let mut extends = 0;
    loop {
        match notify.next().as_slice() {
            [ready] if ready == "READY=1" => break,
            [extend] => {
                assert_eq!(extend, "EXTEND_TIMEOUT_USEC=10000000");
                extends += 1;
            }
            other => panic!("unexpected while starting: {other:?}"),
        }
    }
    // Three ticks fit in 3.5 s; a loaded machine may run one late, after the start.
    assert!(extends >= 2, "{extends} extensions");
    service.expect_prefix("ready");
    service.signal(libc::SIGTERM);
    assert_eq!(service.exit().code(), Some(0));
}

#[test]
fn the_watchdog_is_pinged_at_half_its_timeout() {
    let notify = Notify::new();
    let service = notify.spawn(&[], &[("WATCHDOG_USEC", "400000")]);
    notify.until("READY=1");
    let start = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(notify.next(), ["WATCHDOG=1"]);
    }
    // Three pings 200 ms apart: at least 400 ms after the first could have come.
    assert!(start.elapsed() >= Duration::from_millis(350), "{:?}", start.elapsed());
    drop(service);
}

#[test]
fn a_watchdog_for_another_pid_is_not_ours() {
    let notify = Notify::new();
    let mut service = notify.spawn(&[], &[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")]);
    notify.until("READY=1");
    service.signal(libc::SIGTERM);
    // No WATCHDOG=1 in between: the next message is the stop.
    assert_eq!(notify.next()[0], "STOPPING=1");
    assert_eq!(service.exit().code(), Some(0));
}
