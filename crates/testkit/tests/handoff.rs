//! Unix: `steward-testserver` on sockets passed the systemd way, as steward will pass them;
//! a hand-made rolling swap on one shared socket under load (nothing may fail), the negative
//! control (a server that binds its own port, replaced under load: requests fail), and the
//! drain contract.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use socket2::{Domain, Socket, Type};
use testkit::load::{self, Mode};
use testkit::{testserver, wait_until_or_dump, Daemon, DEADLINE};

use crate::load::{
    assert_clean, get, load_config, parse_response, socket_addr, wait_for_more_ok, wait_ready,
};

/// Most sockets one start passes (the child side copies them without allocating).
const MAX_PASSED: usize = 4;

/// How the passed sockets' `LISTEN_PID` is set.
#[derive(Clone, Copy)]
enum ListenPid<'a> {
    /// The server's own pid, as systemd and steward set it.
    Own,
    /// A given value (to test the check).
    Fixed(&'a str),
}

/// Starts `steward-testserver args` with `sockets` (name, fd) as fds 3.. and `LISTEN_FDS`,
/// `LISTEN_FDNAMES`, `LISTEN_PID`, plus `env`.
///
/// `LISTEN_PID` must be the server's pid, unknown before the fork; setting the environment
/// between fork and exec is not safe in a threaded parent. So a shell sets it to its own pid
/// (`$$`) and execs the server, which keeps that pid: the trick steward's `__exec` shim plays.
fn start_with_sockets(
    dir: &Path,
    sockets: &[(&str, RawFd)],
    listen_pid: ListenPid<'_>,
    args: &[&str],
    env: &[(&str, &OsStr)],
) -> Daemon {
    assert!(sockets.len() <= MAX_PASSED);
    let mut cmd = match listen_pid {
        ListenPid::Own => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#).arg(testserver());
            cmd
        }
        ListenPid::Fixed(pid) => {
            let mut cmd = Command::new(testserver());
            cmd.env("LISTEN_PID", pid);
            cmd
        }
    };
    cmd.args(args)
        .env("LISTEN_FDS", sockets.len().to_string())
        .env("LISTEN_FDNAMES", sockets.iter().map(|s| s.0).collect::<Vec<_>>().join(":"))
        .envs(env.iter().copied());
    let mut fds = [-1; MAX_PASSED];
    for (slot, (_, fd)) in fds.iter_mut().zip(sockets) {
        *slot = *fd;
    }
    let count = sockets.len();
    // SAFETY: the closure runs in the forked child before exec and only makes system calls
    // that are async-signal-safe (fcntl, dup2) on a copied array: no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            // First copy every socket above the target range (close-on-exec, so the copies
            // vanish at exec), so that placing one on 3.. cannot overwrite another still to
            // be placed; then dup2 onto 3.., which clears close-on-exec on the new fd.
            let mut high = [-1; MAX_PASSED];
            for i in 0..count {
                high[i] = libc::fcntl(fds[i], libc::F_DUPFD_CLOEXEC, 64);
                if high[i] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, &fd) in high.iter().enumerate().take(count) {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Daemon::from_command(cmd, dir)
}

/// A listening TCP socket on 127.0.0.1, port 0, as steward binds them (`SO_REUSEADDR`,
/// close-on-exec, a long queue).
fn tcp_socket() -> (Socket, String) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.listen(1024).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap().to_string();
    (socket, addr)
}

#[test]
fn a_passed_tcp_socket_is_served_and_readiness_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, addr) = tcp_socket();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let server = start_with_sockets(
        dir.path(),
        &[("http", socket.as_raw_fd())],
        ListenPid::Own,
        &["--ready-after", "50ms"],
        &[("NOTIFY_SOCKET", notify_path.as_os_str())],
    );
    let ready = wait_ready(&server);
    assert_eq!(ready.addrs, std::slice::from_ref(&addr));
    let mut message = [0; 64];
    let n = notify.recv(&mut message).expect("READY=1 on NOTIFY_SOCKET");
    assert_eq!(&message[..n], b"READY=1\n");
    let (status, _, body) = get(&addr, "/");
    assert_eq!((status, body), (200, format!("pid={} rev=0", server.pid())));
}

#[test]
fn a_wrong_listen_pid_is_an_error_not_a_silent_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _) = tcp_socket();
    let server =
        start_with_sockets(dir.path(), &[("http", socket.as_raw_fd())], ListenPid::Fixed("1"), &[], &[]);
    assert_eq!(server.wait_exit(DEADLINE).code(), Some(2), "{}", server.dump());
    assert!(server.stderr().contains("LISTEN_PID=1 is not this process"), "{}", server.dump());
}

#[test]
fn an_admin_socket_answers_health_while_the_traffic_socket_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (http, http_addr) = tcp_socket();
    let (admin, admin_addr) = tcp_socket();
    let server = start_with_sockets(
        dir.path(),
        &[("http", http.as_raw_fd()), ("admin", admin.as_raw_fd())],
        ListenPid::Own,
        &["--never-ready"],
        &[],
    );
    assert_eq!(socket_addr(&server, "traffic"), http_addr);
    assert_eq!(socket_addr(&server, "admin"), admin_addr);
    let (status, _, body) = get(&admin_addr, "/healthz");
    assert_eq!((status, body.as_str()), (503, "starting"));
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(DEADLINE).success(), "{}", server.dump());
    assert!(!server.stdout().contains("ready"), "{}", server.dump());
}

#[test]
fn a_passed_unix_socket_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = start_with_sockets(dir.path(), &[("http", listener.as_raw_fd())], ListenPid::Own, &[], &[]);
    let ready = wait_ready(&server);
    let addr = format!("unix:{}", path.display());
    assert_eq!(ready.addrs, std::slice::from_ref(&addr));
    for mode in [Mode::Close, Mode::KeepAlive] {
        let load = load::start(load_config(&addr, mode)).unwrap();
        wait_for_more_ok(&load, 200, "load over the Unix socket", || server.dump());
        assert_clean(&load.stop(), &[ready.pid]);
    }
}

/// The swap steward's roll makes, by hand: a second server on the same socket, ready, then
/// the stop signal to the first, all under load. Nothing may fail; requests started after the
/// first server was seen gone are all answered by the second.
fn rolling_swap(mode: Mode, delay: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (socket, addr) = tcp_socket();
    let passed = [("http", socket.as_raw_fd())];
    let old =
        start_with_sockets(dir.path(), &passed, ListenPid::Own, &["--rev", "old", "--delay", delay], &[]);
    let old_pid = wait_ready(&old).pid;
    let load = load::start(load_config(&addr, mode)).unwrap();
    wait_for_more_ok(&load, 100, "the old server to serve load", || old.dump());

    let new = start_with_sockets(
        dir.path(),
        &passed,
        ListenPid::Own,
        &["--rev", "new", "--delay", delay, "--ready-after", "100ms"],
        &[],
    );
    let new_pid = wait_ready(&new).pid;
    let stopped = load.elapsed();
    old.signal(libc::SIGTERM);
    assert!(old.wait_exit(DEADLINE).success(), "{}", old.dump());
    let old_gone = load.elapsed();
    wait_for_more_ok(&load, 100, "the new server to serve load", || new.dump());
    let report = load.stop();

    assert_clean(&report, &[old_pid, new_pid]);
    let after: Vec<_> = report.sent_after(old_gone).collect();
    assert!(!after.is_empty(), "{}", report.summary());
    assert!(
        after.iter().all(|r| r.pid == new_pid && r.rev == "new"),
        "the old pid {old_pid} answered a request sent after its exit: {}",
        report.summary()
    );
    assert!(report.pids[&old_pid].last >= stopped, "the old server answered nothing after its stop signal?");
    let out = old.stdout();
    let draining = out.find(&format!("draining pid={old_pid}")).expect("draining line");
    let exit = out.find(&format!("exit pid={old_pid} code=0")).expect("exit line");
    assert!(draining < exit, "{out}");
    eprintln!("{}", report.summary());
}

#[test]
fn a_rolling_swap_on_a_shared_socket_drops_nothing_new_connections() {
    // With a delay, requests are in flight at the old server when it gets the signal.
    rolling_swap(Mode::Close, "100ms");
}

#[test]
fn a_rolling_swap_on_a_shared_socket_drops_nothing_keep_alive() {
    // Without a delay, connections are mostly idle between requests when the old server
    // closes them: the race the keep-alive retry rule is about.
    rolling_swap(Mode::KeepAlive, "0s");
}

#[test]
fn negative_control_a_server_on_its_own_port_replaced_under_load_drops_requests() {
    let dir = tempfile::tempdir().unwrap();
    let old = Daemon::start(testserver(), ["--listen", "127.0.0.1:0", "--rev", "old"], dir.path());
    let ready = wait_ready(&old);
    let addr = ready.addrs[0].clone();
    let load = load::start(load_config(&addr, Mode::Close)).unwrap();
    wait_for_more_ok(&load, 100, "the old server to serve load", || old.dump());

    old.signal(libc::SIGTERM);
    assert!(old.wait_exit(DEADLINE).success(), "{}", old.dump());
    // Between the old server's exit and the new one's bind nothing listens on the port.
    wait_until_or_dump(
        DEADLINE,
        "a refused connection",
        || format!("{:?}", load.snapshot()),
        || (load.snapshot().refused > 0).then_some(()),
    );
    let new = Daemon::start(testserver(), ["--listen", &addr, "--rev", "new"], dir.path());
    let new_pid = wait_ready(&new).pid;
    wait_for_more_ok(&load, 100, "the new server to serve load", || new.dump());
    let report = load.stop();

    assert!(report.counts.refused > 0, "{}", report.summary());
    assert!(report.counts.failed() > 0, "{}", report.summary());
    assert_eq!(report.pid_set(), [ready.pid, new_pid].into(), "{}", report.summary());
    eprintln!("{}", report.summary());
}

/// Reads exactly one response (head and `Content-Length` body) without waiting for a close.
fn read_one_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0; 1024];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed mid-response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                .and_then(|v| v.parse().ok())
                .expect("Content-Length");
            if body.len() >= length {
                return text.into_owned();
            }
        }
    }
}

#[test]
fn the_drain_closes_the_listener_first_then_finishes_requests_in_flight() {
    const IN_FLIGHT: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0", "--delay", "2s"], dir.path());
    let ready = wait_ready(&server);
    let addr = ready.addrs[0].clone();

    // An idle keep-alive connection: one answered request (not delayed), then nothing.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(DEADLINE)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let first = read_one_response(&mut idle);
    assert!(!first.to_ascii_lowercase().contains("connection: close"), "{first}");

    // Keep-alive requests that wait out the delay: in flight when the signal comes.
    let mut waiting: Vec<TcpStream> = (0..IN_FLIGHT)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s
        })
        .collect();
    wait_until_or_dump(
        DEADLINE,
        "the requests to be in flight",
        || server.dump(),
        || (get(&addr, "/inflight").2 == IN_FLIGHT.to_string()).then_some(()),
    );

    server.signal(libc::SIGTERM);
    // The listener closes at once: new connections are refused while the requests in flight
    // still wait out their delay (the server has not exited).
    wait_until_or_dump(
        DEADLINE,
        "the listener to close",
        || server.dump(),
        || match TcpStream::connect(&addr) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        },
    );
    assert!(server.try_status().is_none(), "exited before finishing its requests: {}", server.dump());
    // The idle connection is closed.
    assert_eq!(idle.read(&mut [0; 64]).unwrap(), 0, "the idle keep-alive connection was not closed");

    for stream in &mut waiting {
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (status, head, body) = parse_response(&text);
        assert_eq!((status, body), (200, format!("pid={} rev=0", ready.pid)));
        assert!(head.contains("connection: close"), "{head}");
    }
    assert!(server.wait_exit(DEADLINE).success(), "{}", server.dump());
    let out = server.stdout();
    assert!(out.contains(&format!("draining pid={}", ready.pid)), "{out}");
    assert!(out.ends_with(&format!("exit pid={} code=0\n", ready.pid)), "{out}");
}

#[test]
fn a_connection_accepted_just_before_the_drain_still_gets_its_request_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0"], dir.path());
    let addr = wait_ready(&server).addrs[0].clone();
    // A connection that has sent nothing yet. The socket's queue is first in, first out, and
    // one task accepts from it: once a later connection is answered, this one was accepted.
    let mut early = TcpStream::connect(&addr).unwrap();
    early.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(get(&addr, "/inflight").0, 200);

    server.signal(libc::SIGTERM);
    server.wait_for_text("draining pid=", DEADLINE);
    early.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    early.read_to_string(&mut text).unwrap();
    let (status, head, _) = parse_response(&text);
    assert_eq!(status, 200, "{text}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(server.wait_exit(DEADLINE).success(), "{}", server.dump());
}
