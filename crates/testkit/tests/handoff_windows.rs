//! Windows: `steward-testserver` on a socket handed over by the systemfd protocol (what
//! steward plans for Windows and the `listenfd` crate reads), a rolling swap on that shared
//! socket under load, and the drain on Ctrl+C, the event steward sends a program's console by
//! default.
//!
//! Run under Wine on Linux: `cargo build -p testkit --bins` then `cargo test -p testkit`, both
//! with `--target x86_64-pc-windows-gnu` (the stop signal is sent by the helper
//! `steward-scmctl ctrl-c PID`, since the sender of a console event gets a copy too).
//!
//! The systemfd protocol, as `listenfd` speaks it: the program finds `SYSTEMFD_SOCKET_SERVER`
//! (a TCP address on 127.0.0.1) and `SYSTEMFD_SOCKET_SECRET` (a UUID) in its environment,
//! connects, sends `<secret>|<its pid>` and shuts down its side; the server answers with one
//! `WSAPROTOCOL_INFOW` per socket, made by `WSADuplicateSocketW(socket, pid)`, and closes. The
//! program makes its sockets from those with `WSASocketW(FROM_PROTOCOL_INFO, ...)`.

use std::io::{Read, Write};
use std::mem;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::windows::io::AsRawSocket;
use std::os::windows::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};

use testkit::load::{self, Mode};
use testkit::{testchild, testserver, wait_until_or_dump, Daemon, DEADLINE};
use windows_sys::Win32::Networking::WinSock::{
    WSADuplicateSocketW, WSAGetLastError, SOCKET, WSAPROTOCOL_INFOW,
};
use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

use crate::load::{assert_clean, get, load_config, parse_response, wait_for_more_ok, wait_ready};

/// The one-shot secret of a handoff (a UUID, as `listenfd` expects).
const SECRET: &str = "0b6d1a52-3c1e-4f0a-9d51-6a2f0e8c7b43";

/// Sends Ctrl+C to every process on the console of process `pid`, from a helper process.
fn ctrl_c_to_console_of(pid: u32) {
    let helper = testchild().with_file_name(format!("steward-scmctl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        helper.is_file(),
        "{} is missing: build it with `cargo build -p testkit --bins`",
        helper.display()
    );
    let status = Command::new(&helper)
        .args(["ctrl-c", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own console, so that leaving it disturbs nobody.
        .creation_flags(CREATE_NO_WINDOW)
        .status()
        .expect("run steward-scmctl");
    assert!(status.success(), "steward-scmctl ctrl-c {pid}: {status}");
}

/// Serves one systemfd handoff of `socket` on a thread: returns the server's address and the
/// thread, which ends with the pid the socket was duplicated for.
fn systemfd_server(socket: &TcpListener) -> (String, JoinHandle<Result<u32, String>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let raw = socket.as_raw_socket() as SOCKET;
    let thread = thread::spawn(move || {
        let (mut conn, _) = server.accept().map_err(|e| format!("accept: {e}"))?;
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut hello = String::new();
        conn.read_to_string(&mut hello).map_err(|e| format!("read: {e}"))?;
        let (secret, pid) = hello.split_once('|').ok_or_else(|| format!("bad hello {hello:?}"))?;
        if secret != SECRET {
            return Err(format!("wrong secret {secret:?}"));
        }
        let pid: u32 = pid.parse().map_err(|_| format!("bad pid in {hello:?}"))?;
        // SAFETY: WSAPROTOCOL_INFOW is plain data, filled by the call below.
        let mut info: WSAPROTOCOL_INFOW = unsafe { mem::zeroed() };
        // SAFETY: `raw` is a live socket owned by the caller's listener, which outlives this
        // thread's use of it (the test joins the thread before dropping the listener);
        // `info` is a valid place to write.
        if unsafe { WSADuplicateSocketW(raw, pid, &mut info) } != 0 {
            // SAFETY: plain call, reads this thread's last Winsock error.
            return Err(format!("WSADuplicateSocketW for pid {pid}: error {}", unsafe { WSAGetLastError() }));
        }
        // SAFETY: the bytes of a plain-data struct, for as long as `info` lives.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const info).cast::<u8>(), mem::size_of::<WSAPROTOCOL_INFOW>())
        };
        conn.write_all(bytes).map_err(|e| format!("write: {e}"))?;
        conn.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
        Ok(pid)
    });
    (addr, thread)
}

/// Starts `steward-testserver args` with a console of its own (as steward starts programs)
/// and `socket` handed over by systemfd; returns once the handoff is done.
fn start_with_socket(dir: &std::path::Path, socket: &TcpListener, args: &[&str]) -> Daemon {
    let (addr, handoff) = systemfd_server(socket);
    let mut cmd = Command::new(testserver());
    cmd.args(args)
        .env("SYSTEMFD_SOCKET_SERVER", addr)
        .env("SYSTEMFD_SOCKET_SECRET", SECRET)
        .creation_flags(CREATE_NO_WINDOW);
    let server = Daemon::from_command(cmd, dir);
    let pid = handoff.join().unwrap().unwrap_or_else(|e| panic!("systemfd handoff: {e}\n{}", server.dump()));
    assert_eq!(pid, server.pid());
    server
}

#[test]
fn a_socket_handed_over_by_systemfd_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let server = start_with_socket(dir.path(), &socket, &[]);
    let ready = wait_ready(&server);
    assert_eq!(ready.addrs, std::slice::from_ref(&addr));
    let (status, _, body) = get(&addr, "/");
    assert_eq!((status, body), (200, format!("pid={} rev=0", server.pid())));
}

#[test]
fn a_rolling_swap_on_a_systemfd_socket_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let old = start_with_socket(dir.path(), &socket, &["--rev", "old", "--delay", "50ms"]);
    let old_pid = wait_ready(&old).pid;
    let load = load::start(load_config(&addr, Mode::Close)).unwrap();
    wait_for_more_ok(&load, 100, "the old server to serve load", || old.dump());

    let new = start_with_socket(dir.path(), &socket, &["--rev", "new", "--delay", "50ms"]);
    let new_pid = wait_ready(&new).pid;
    ctrl_c_to_console_of(old_pid);
    assert!(old.wait_exit(DEADLINE).success(), "{}", old.dump());
    let old_gone = load.elapsed();
    wait_for_more_ok(&load, 100, "the new server to serve load", || new.dump());
    let report = load.stop();

    assert_clean(&report, &[old_pid, new_pid]);
    assert!(report.sent_after(old_gone).all(|r| r.pid == new_pid), "{}", report.summary());
    eprintln!("{}", report.summary());
}

#[test]
fn ctrl_c_drains_the_server_and_finishes_the_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(testserver());
    cmd.args(["--listen", "127.0.0.1:0", "--delay", "1500ms"])
        // A console of its own, without a window, as a program gets from steward.
        .creation_flags(CREATE_NO_WINDOW);
    let server = Daemon::from_command(cmd, dir.path());
    let ready = wait_ready(&server);
    let addr = ready.addrs[0].clone();

    let mut waiting = TcpStream::connect(&addr).unwrap();
    waiting.set_read_timeout(Some(DEADLINE)).unwrap();
    waiting.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    wait_until_or_dump(
        DEADLINE,
        "the request to be in flight",
        || server.dump(),
        || (get(&addr, "/inflight").2 == "1").then_some(()),
    );

    ctrl_c_to_console_of(server.pid());
    let mut text = String::new();
    waiting.read_to_string(&mut text).unwrap();
    let (status, head, body) = parse_response(&text);
    assert_eq!((status, body), (200, format!("pid={} rev=0", ready.pid)));
    assert!(head.contains("connection: close"), "{head}");
    assert!(server.wait_exit(DEADLINE).success(), "{}", server.dump());
    let out = server.stdout();
    assert!(out.contains(&format!("draining pid={}", ready.pid)), "{out}");
    assert!(out.contains(&format!("exit pid={} code=0", ready.pid)), "{out}");
}
