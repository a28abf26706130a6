//! End to end: sockets steward binds and passes to a program's processes the way systemd's
//! socket activation does (Linux).

use std::net::{TcpListener, TcpStream};

use crate::common::*;

fn config(listen: &str, autostart: bool) -> String {
    format!(
        r#"
[programs.web]
command = {cmd}
instances = 2
autostart = {autostart}

[programs.web.sockets.http]
listen = "{listen}"

[programs.web.sockets.admin]
listen = "127.0.0.1:0"
"#,
        cmd = child_cmd(&[
            "--env",
            "LISTEN_FDS",
            "--env",
            "LISTEN_FDNAMES",
            "--env",
            "LISTEN_PID",
            "--list-fds",
            "--print-ready",
            "--sleep",
            "1h"
        ]),
    )
}

/// The address of socket `name` of `web`, as status shows it.
fn bound(s: &Steward, name: &str) -> String {
    let st = s.status();
    let sockets = st["groups"][0]["sockets"].as_array().cloned().unwrap_or_default();
    let socket =
        sockets.iter().find(|x| x["name"] == name).unwrap_or_else(|| panic!("no socket {name} in {st}"));
    socket["listen"].as_str().unwrap().strip_prefix("tcp://").unwrap().to_owned()
}

#[test]
fn each_process_gets_the_sockets_as_systemd_passes_them() {
    let s = start(&config("tcp://127.0.0.1:0", true));
    s.wait_api();
    for i in 0..2 {
        let log = s.log_dir().join(format!("web.{i}.out.log"));
        // `fds` is the last line the child prints before it sleeps.
        let text = testkit::wait_until(DEADLINE, "the instance's fds line", || {
            std::fs::read_to_string(&log).ok().filter(|t| t.contains("fds ") && t.ends_with('\n'))
        });
        let pid = text.split("ready pid=").nth(1).unwrap().lines().next().unwrap().to_owned();
        assert!(text.contains("env LISTEN_FDS=2\n"), "{text}");
        // In name order, as the fds are.
        assert!(text.contains("env LISTEN_FDNAMES=admin:http\n"), "{text}");
        assert!(text.contains(&format!("env LISTEN_PID={pid}\n")), "{text}");
        // 0-2 and the two sockets, nothing else of steward's (no --trap-term here: its
        // signal pipe would be another fd).
        assert!(text.contains("fds 0 1 2 3 4\n"), "{text}");
    }
    // Both processes share one queue: a client connects whichever accepts.
    let addr = bound(&s, "http");
    TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
}

#[test]
fn connections_queue_while_no_process_runs() {
    let s = start(&config("tcp://127.0.0.1:0", false));
    s.wait_api();
    // Nothing runs, yet the kernel takes the connection into the socket's backlog.
    let addr = bound(&s, "http");
    TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr} with no process: {e}"));
}

#[test]
fn an_address_in_use_is_refused_at_start_and_at_reload() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();

    // `check` says so, and so does steward at start; both exit 1.
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.toml");
    std::fs::write(&path, config(&format!("tcp://{addr}"), true)).unwrap();
    let out = std::process::Command::new(STEWARD).arg("-c").arg(&path).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("[programs.web.sockets.http]: cannot listen on tcp://{addr}")), "{err}");

    let out = std::process::Command::new(STEWARD).arg("-c").arg(&path).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on tcp://{addr}")), "{err}");

    // At reload: the reload is refused and nothing changes.
    let s = start(&config("tcp://127.0.0.1:0", true));
    s.wait_api();
    let before = bound(&s, "http");
    std::fs::write(s.config_path(), config(&format!("tcp://{addr}"), true)).unwrap();
    let out = s.cli(["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", testkit::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on tcp://{addr}")), "{err}");
    assert_eq!(bound(&s, "http"), before);

    // A reload to a free address binds it; the processes move to it by a roll.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::write(s.config_path(), config(&format!("tcp://{free}"), true)).unwrap();
    s.cli_ok(["reload"]);
    s.wait_for_api_event("the roll onto the new socket", |e| e["kind"] == "rollout" && e["to"] == "complete");
    assert_eq!(bound(&s, "http"), free.to_string());
    TcpStream::connect(free).unwrap();
    // The address is in use now, by this steward: `check` knows it is its own.
    s.cli_ok(["check"]);
}

/// A Unix-domain socket and an IPv6 one, served by a real server through steward.
#[test]
fn unix_and_ipv6_sockets_are_served() {
    let has_v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let v6 = if has_v6 { "\n[programs.web.sockets.v6]\nlisten = \"tcp://[::1]:0\"\n" } else { "" };
    let config = format!(
        r#"
[programs.web]
command = [{server}]
ready = "notify"

[programs.web.sockets.local]
listen = "unix://web.sock"
{v6}"#,
        server = q(testkit::testserver().to_string_lossy()),
    );
    let s = start(&config);
    s.wait_api();
    testkit::wait_until_or_dump(
        DEADLINE,
        "web to run",
        || s.daemon().dump(),
        || (s.program("web")["state"] == "running").then_some(()),
    );
    let st = s.status();
    let sockets = st["groups"][0]["sockets"].as_array().unwrap().clone();
    let path = s.path("web.sock");
    assert!(sockets.iter().any(|x| x["listen"] == format!("unix://{}", path.display())), "{st}");
    let targets = std::iter::once(testkit::load::Target::Unix(path.clone())).chain(
        sockets
            .iter()
            .filter(|x| x["name"] == "v6")
            .map(|x| testkit::load::Target::Tcp(x["listen"].as_str().unwrap()[6..].parse().unwrap())),
    );
    for target in targets {
        let load = testkit::load::start(testkit::load::Config::new(target)).unwrap();
        testkit::wait_until(DEADLINE, "answers", || (load.snapshot().ok >= 50).then_some(()));
        let report = load.stop();
        assert_eq!(report.counts.failed(), 0, "{}", report.summary());
    }
    // The socket file goes with steward.
    s.shutdown();
    assert!(!path.exists(), "{} is left behind", path.display());
}
