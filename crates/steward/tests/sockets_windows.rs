//! End to end on Windows (under Wine in CI): steward's sockets reach a program's processes by
//! the systemfd protocol (`src/sockets/windows.rs`). A real HTTP server (`steward-testserver`,
//! which takes them with the `listenfd` crate) serves them from two instances and through a
//! rolling restart under load; a hostile client of the handoff server gets nothing and
//! changes nothing.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use testkit::load::{self, Load, Mode, Report, Target};

use crate::common::*;
use crate::http_server::read_reply;

/// `instances` test servers on a socket steward holds; `ready = "up"` (Windows has no
/// notify), so a new process must stay up `min_ready` before an old one stops.
fn web(instances: u32) -> String {
    web_on(instances, "127.0.0.1:0")
}

fn web_on(instances: u32, listen: &str) -> String {
    format!(
        r#"
[programs.web]
command = [{server}]
instances = {instances}
ready = "up"

[programs.web.sockets.http]
listen = "{listen}"

[programs.web.update]
min_ready = "500ms"
"#,
        server = q(testkit::testserver().to_string_lossy()),
    )
}

/// `web`'s entry in `status --json`'s groups.
fn web_group(st: &serde_json::Value) -> serde_json::Value {
    let groups = st["groups"].as_array().unwrap_or_else(|| panic!("no groups in {st}"));
    groups.iter().find(|g| g["name"] == "web").unwrap_or_else(|| panic!("no group web in {st}")).clone()
}

/// The pids of `web`'s running processes, once there are `n` of them and no more.
fn wait_running(s: &Steward, n: usize) -> BTreeSet<u32> {
    testkit::wait_until_or_dump(
        DEADLINE,
        "the instances to run",
        || s.daemon().dump(),
        || {
            let st = s.status();
            let pids: BTreeSet<u32> = st["programs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["program"] == "web" && p["state"] == "running")
                .filter_map(|p| p["pid"].as_u64().map(|p| p as u32))
                .collect();
            (pids.len() == n && web_group(&st)["total"] == n as u64).then_some(pids)
        },
    )
}

/// The address steward bound for `web`'s socket, from `status --json`.
fn bound(s: &Steward) -> SocketAddr {
    let web = web_group(&s.status());
    let listen = web["sockets"][0]["listen"].as_str().unwrap_or_else(|| panic!("no socket in {web}"));
    listen.strip_prefix("tcp://").unwrap().parse().unwrap()
}

/// `GET /` answered 200 by one of `pids`; returns the pid.
#[track_caller]
fn served_by_one_of(addr: SocketAddr, pids: &BTreeSet<u32>) -> u32 {
    let mut conn =
        TcpStream::connect_timeout(&addr, DEADLINE).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(conn, "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let (status, body) = read_reply(conn);
    assert_eq!(status, 200, "{body}");
    let pid: u32 = body.strip_prefix("pid=").and_then(|b| b.split(' ').next()).unwrap().parse().unwrap();
    assert!(pids.contains(&pid), "answered by {pid}, not one of {pids:?}");
    pid
}

#[test]
fn each_instance_serves_the_socket_steward_passed() {
    let s = start(&web(2));
    s.wait_api();
    let pids = wait_running(&s, 2);
    let addr = bound(&s);
    for i in 0..2 {
        let log = s.log_dir().join(format!("web.{i}.out.log"));
        let text = testkit::wait_until(DEADLINE, "the instance's ready line", || {
            std::fs::read_to_string(&log).ok().filter(|t| t.contains("ready pid="))
        });
        // The server took the socket steward bound (it would refuse to start without one).
        assert!(text.contains(&format!("role=traffic addr={addr}\n")), "{text}");
    }
    for _ in 0..10 {
        served_by_one_of(addr, &pids);
    }
}

#[test]
fn an_address_in_use_is_refused_and_a_reload_moves_to_a_new_one() {
    // Held by another process's socket: refused at start, with the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.toml");
    std::fs::write(&path, web_on(1, &format!("tcp://{addr}"))).unwrap();
    let out = std::process::Command::new(STEWARD).arg("-c").arg(&path).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on tcp://{addr}")), "{err}");

    let s = start(&web(1));
    s.wait_api();
    let old = wait_running(&s, 1);
    let before = bound(&s);
    // SO_EXCLUSIVEADDRUSE: not even a socket with SO_REUSEADDR may bind steward's address
    // (Windows would allow that without it; Wine, on Linux's rules, refuses it either way).
    let thief = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    thief.set_reuse_address(true).unwrap();
    assert!(thief.bind(&before.into()).is_err(), "another socket bound {before}");

    // A reload onto a free address binds it; the process moves there by a roll.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::write(s.config_path(), web_on(1, &format!("tcp://{free}"))).unwrap();
    s.cli_ok(["reload"]);
    s.wait_for_api_event("the roll onto the new socket", |e| e["kind"] == "rollout" && e["to"] == "complete");
    assert_eq!(bound(&s), free);
    let new = wait_running(&s, 1);
    assert!(new.is_disjoint(&old), "{old:?} -> {new:?}");
    served_by_one_of(free, &new);
}

fn start_load(addr: SocketAddr, mode: Mode) -> Load {
    let mut config = load::Config::new(Target::Tcp(addr));
    config.mode = mode;
    let load = load::start(config).unwrap();
    flowing(&load);
    load
}

/// Waits for 200 more successes: load is flowing.
fn flowing(load: &Load) {
    let target = load.snapshot().ok + 200;
    testkit::wait_until_or_dump(
        DEADLINE,
        "load to flow",
        || format!("{:?}", load.snapshot()),
        || (load.snapshot().ok >= target).then_some(()),
    );
}

/// No request failed; every request sent after `after` was answered by one of `pids`. A
/// failure shows steward's log and the servers' output too.
#[track_caller]
fn assert_clean_after(s: &Steward, report: &Report, after: Duration, pids: &BTreeSet<u32>) {
    let late: BTreeSet<u32> = report.sent_after(after).map(|r| r.pid).collect();
    let clean = report.counts.failed() == 0 && !late.is_empty() && late.is_subset(pids);
    if !clean {
        let mut servers = String::new();
        for entry in std::fs::read_dir(s.log_dir()).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            servers.push_str(&format!("--- {} ---\n{text}", entry.file_name().to_string_lossy()));
        }
        panic!(
            "{} failed, answered after the change by {late:?} (new: {pids:?})\n{}\n{}\n{servers}",
            report.counts.failed(),
            report.summary(),
            s.daemon().dump()
        );
    }
}

/// A roll: new processes take the same socket from steward, the old ones drain on Ctrl+C.
fn roll_under_load(instances: usize, mode: Mode) {
    let s = start(&web(instances as u32));
    s.wait_api();
    let old = wait_running(&s, instances);
    let load = start_load(bound(&s), mode);
    s.cli_ok(["restart", "web"]);
    let after = load.elapsed();
    let new = wait_running(&s, instances);
    flowing(&load);
    let report = load.stop();
    assert!(new.is_disjoint(&old), "{old:?} -> {new:?}");
    assert_clean_after(&s, &report, after, &new);
    eprintln!("{}", report.summary());
}

#[test]
fn a_rolling_restart_of_two_instances_drops_nothing() {
    roll_under_load(2, Mode::Close);
}

#[test]
fn one_instance_with_a_socket_restarts_without_downtime() {
    // Keep-alive: the old server closes idle connections as it drains.
    roll_under_load(1, Mode::KeepAlive);
}

/// Sends `request` to the handoff server as `listenfd` does; returns the whole answer.
fn ask(server: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    // A refusal may come as a reset rather than a clean close: both are "nothing".
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn the_handoff_answers_only_its_process_and_ignores_hostile_clients() {
    // `probe` has sockets but never asks for them: it shows what a process is given. `plain`
    // has none, and must see none of the variables.
    let vars = [
        "SYSTEMFD_SOCKET_SERVER",
        "SYSTEMFD_SOCKET_SECRET",
        "STEWARD_SOCKET_NAMES",
        "LISTEN_FDNAMES",
        "LISTEN_FDS",
        "LISTEN_PID",
    ];
    let mut args = Vec::new();
    for var in vars {
        args.extend(["--env", var]);
    }
    args.extend(["--print-ready", "--sleep", "1h"]);
    let config = format!(
        r#"{web}
[programs.probe]
command = {probe}
[programs.probe.sockets.http]
listen = "127.0.0.1:0"
[programs.probe.sockets.admin]
listen = "127.0.0.1:0"

[programs.plain]
command = {probe}
"#,
        web = web(1),
        probe = child_cmd(&args),
    );
    let s = start(&config);
    s.wait_api();
    let last = |program: &str| {
        let log = s.log_dir().join(format!("{program}.out.log"));
        testkit::wait_until(DEADLINE, &format!("{program}'s last env line"), || {
            std::fs::read_to_string(&log).ok().filter(|t| t.contains("env LISTEN_PID") && t.ends_with('\n'))
        })
    };
    let plain = last("plain");
    for var in vars {
        assert!(plain.contains(&format!("env {var} unset\n")), "{plain}");
    }
    let probe = last("probe");
    let var = |name: &str| {
        let prefix = format!("env {name}=");
        let line = probe.lines().find_map(|l| l.strip_prefix(&prefix));
        line.unwrap_or_else(|| panic!("no {name} in:\n{probe}")).to_owned()
    };
    assert_eq!(var("STEWARD_SOCKET_NAMES"), "admin,http");
    assert_eq!(var("LISTEN_FDNAMES"), "admin:http");
    assert!(probe.contains("env LISTEN_FDS unset\n") && probe.contains("env LISTEN_PID unset\n"), "{probe}");
    let server: SocketAddr = var("SYSTEMFD_SOCKET_SERVER").parse().unwrap();
    assert!(server.ip().is_loopback(), "{server}");
    let secret = var("SYSTEMFD_SOCKET_SECRET");
    let probe_pid = s.program("probe")["pid"].as_u64().unwrap();
    let web_pids = wait_running(&s, 1);
    let web_addr = bound(&s);

    // A client that connects and says nothing holds no one up.
    let _silent = TcpStream::connect(server).unwrap();
    let hostile = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        format!("67e55044-10b1-426f-9247-bb680e5fe0c8|{probe_pid}").into_bytes(),
        format!("{secret}|{}", std::process::id()).into_bytes(),
        format!("{secret}|{probe_pid}0").into_bytes(),
        format!("{secret}|{probe_pid}|{probe_pid}").into_bytes(),
        vec![b'x'; 4096],
        vec![0xff; 40],
        Vec::new(),
    ];
    for request in &hostile {
        let answer = ask(server, request);
        assert!(answer.is_empty(), "{} bytes for {:?}", answer.len(), String::from_utf8_lossy(request));
    }
    // The real secret from another pid was worth a warning: the usual cause is a wrapper.
    let warning = s.wait_for_event("the wrong-pid warning", |e| {
        e.event.as_deref() == Some("socket-handoff-refused") && e.program.as_deref() == Some("probe")
    });
    assert_eq!(warning.pid, Some(probe_pid as u32), "{warning:?}");

    // steward kept serving: the web process answers, and a new one gets the socket.
    served_by_one_of(web_addr, &web_pids);
    s.cli_ok(["restart", "web"]);
    let new = wait_running(&s, 1);
    assert!(new.is_disjoint(&web_pids));
    served_by_one_of(web_addr, &new);

    // Nothing above used the probe's offer up: its own request still gets one description per
    // socket (copies made for it, which it never opens), once.
    let request = format!("{secret}|{probe_pid}");
    assert_eq!(ask(server, request.as_bytes()).len(), 2 * 628);
    assert!(ask(server, request.as_bytes()).is_empty(), "answered twice");
}
