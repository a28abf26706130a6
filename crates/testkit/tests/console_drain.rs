//! Windows: `steward-testserver` drains on Ctrl+C, the event steward sends a program's console
//! by default. Run under Wine on Linux (`cargo test -p testkit --target x86_64-pc-windows-gnu`,
//! after `cargo build -p testkit --bins` for that target: the event is sent by the helper
//! `steward-scmctl ctrl-c PID`, since the sender of a console event gets a copy too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::windows::process::CommandExt as _;
use std::process::{Command, Stdio};

use testkit::{testchild, testserver, wait_until_or_dump, Daemon, DEADLINE};
use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

use crate::load::{get, parse_response, wait_ready};

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
