//! The tokio example (`examples/http.rs`) from a console: it serves its greeting, re-reads it
//! on SIGHUP (or keeps the old one when the file cannot be read), and on SIGTERM stops
//! accepting but finishes the request in flight before it ends.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{example, Service, PATIENCE};

struct Http {
    service: Service,
    addr: SocketAddr,
    greeting: PathBuf,
    _dir: tempfile::TempDir,
}

impl Http {
    /// The example on a free port, serving `greeting`, ready.
    fn start(greeting: &str) -> Http {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("greeting.txt");
        std::fs::write(&file, greeting).expect("write the greeting");
        let mut command = Command::new(example("http"));
        command
            .args(["--listen", "127.0.0.1:0", "--greeting-file"])
            .arg(&file)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        let service = Service::start(&mut command);
        service.expect_prefix("starting (Console)");
        let line = service.expect_prefix("listening on ");
        let addr = line["listening on ".len()..].parse().expect("an address after `listening on`");
        service.expect("ready");
        Http { service, addr, greeting: file, _dir: dir }
    }

    fn get(&self, path: &str) -> (u16, String) {
        get(self.addr, path)
    }

    /// SIGTERM, then the end: `drained`, exit 0.
    fn stop(mut self) {
        self.service.signal(libc::SIGTERM);
        self.service.expect_prefix("drained");
        assert_eq!(self.service.exit().code(), Some(0));
    }
}

/// `GET path` over plain HTTP/1.1, one request per connection: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {response:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (status.unwrap_or_else(|| panic!("no status: {head:?}")), body.to_owned())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the greeting");
}

#[test]
fn sighup_rereads_the_greeting() {
    let http = Http::start("hello, one\n");
    assert_eq!(http.get("/"), (200, "hello, one\n".to_owned()));
    write(&http.greeting, "hello, two\n");
    http.service.signal(libc::SIGHUP);
    http.service.expect("reloaded");
    assert_eq!(http.get("/"), (200, "hello, two\n".to_owned()));
    http.stop();
}

#[test]
fn a_reload_that_cannot_read_the_file_keeps_the_old_greeting() {
    let http = Http::start("hello, one\n");
    std::fs::remove_file(&http.greeting).expect("remove the greeting");
    http.service.signal(libc::SIGHUP);
    let line = http.service.expect_prefix("reload");
    assert!(line.starts_with("reload failed: cannot read "), "{line}");
    assert_eq!(http.get("/"), (200, "hello, one\n".to_owned()));
    // Still reloadable once the file is back.
    write(&http.greeting, "hello, again\n");
    http.service.signal(libc::SIGHUP);
    http.service.expect("reloaded");
    assert_eq!(http.get("/"), (200, "hello, again\n".to_owned()));
    http.stop();
}

#[test]
fn a_stop_refuses_new_connections_and_finishes_the_request_in_flight() {
    let mut http = Http::start("hello\n");
    let addr = http.addr;
    let slow = std::thread::spawn(move || get(addr, "/slow?ms=1500"));
    http.service.expect("slow request for 1500 ms");
    // The request is in flight (its handler sleeps): now the stop.
    http.service.signal(libc::SIGTERM);
    // `stopping (Terminate)` from the control loop may come before or after.
    http.service.expect_prefix("not accepting connections");
    match TcpStream::connect(addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a connection was accepted after the stop began"),
    }
    assert_eq!(slow.join().expect("the slow request"), (200, "slept 1500 ms\n".to_owned()));
    http.service.expect_prefix("drained");
    assert_eq!(http.service.exit().code(), Some(0));
}
