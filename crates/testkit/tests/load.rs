//! The load client against small fake servers (how each failure is counted), and
//! `steward-testserver` with `steward-loadgen` on a port the server binds itself.
//! Passed sockets, rolling swaps and the drain are in `handoff.rs` (Unix).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use testkit::load::{self, Config, FailureKind, Mode, Report, Target};
use testkit::{testserver, wait_until, wait_until_or_dump, Daemon, DEADLINE};

// ---- helpers shared with handoff.rs ----

/// What a server's `ready` line says.
pub struct Ready {
    pub pid: u32,
    /// The addresses after `addr=`, comma-separated in the line.
    pub addrs: Vec<String>,
}

/// Waits for the server's `ready pid=.. addr=..` line and parses it.
#[track_caller]
pub fn wait_ready(server: &Daemon) -> Ready {
    let out = server.wait_for_text("ready pid=", DEADLINE);
    let line = out.lines().find(|l| l.starts_with("ready pid=")).expect("the ready line");
    let rest = line.strip_prefix("ready pid=").unwrap();
    let (pid, addrs) = rest.split_once(" addr=").unwrap_or_else(|| panic!("no addr in {line:?}"));
    let pid = pid.parse().unwrap_or_else(|_| panic!("bad pid in {line:?}"));
    assert_eq!(pid, server.pid(), "the ready line's pid is the process's");
    Ready { pid, addrs: addrs.split(',').map(str::to_owned).collect() }
}

/// The address of the server's socket of `role` (`traffic` or `admin`), from its start lines.
#[track_caller]
pub fn socket_addr(server: &Daemon, role: &str) -> String {
    let prefix = format!("socket pid={} role={role} addr=", server.pid());
    let out = server.wait_for_text(&prefix, DEADLINE);
    out.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().to_owned()
}

/// A load config for `addr` (a TCP address or `unix:PATH`).
pub fn load_config(addr: &str, mode: Mode) -> Config {
    let mut config = Config::new(addr.parse().unwrap());
    config.mode = mode;
    config
}

/// Waits until the load has `n` more successes than it had when called, so that the next
/// step happens under load that is known to be flowing. Returns the count reached.
#[track_caller]
pub fn wait_for_more_ok(load: &load::Load, n: u64, what: &str, dump: impl Fn() -> String) -> u64 {
    let target = load.snapshot().ok + n;
    wait_until_or_dump(
        DEADLINE,
        what,
        || format!("{:?}\n{}", load.snapshot(), dump()),
        || {
            let ok = load.snapshot().ok;
            (ok >= target).then_some(ok)
        },
    )
}

/// One `GET path` with `Connection: close` on a new connection: (status, headers, body).
pub fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    parse_response(&text)
}

/// Splits a whole response into (status, headers lowercased, body).
pub fn parse_response(text: &str) -> (u16, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {text:?}"));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad head {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Asserts a clean run: no failure, and only the given pids answered.
#[track_caller]
pub fn assert_clean(report: &Report, pids: &[u32]) {
    assert_eq!(report.counts.failed(), 0, "{}", report.summary());
    assert!(report.counts.ok > 0, "{}", report.summary());
    assert_eq!(report.pid_set(), pids.iter().copied().collect(), "{}", report.summary());
}

// ---- fake servers: each failure counted as what it is ----

/// A TCP server on a thread that runs `answer` for each connection (each on a thread of its
/// own), until dropped.
struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(answer: impl Fn(TcpStream) + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let answer = Arc::clone(&answer);
                thread::spawn(move || answer(conn));
            }
        });
        FakeServer { addr, stop, thread: Some(thread) }
    }

    fn target(&self) -> Target {
        Target::Tcp(self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head; false at EOF.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return true,
            Ok(_) => {}
        }
    }
}

const OK_RESPONSE: &str = "HTTP/1.1 200 OK\r\nx-pid: 7\r\nContent-Length: 11\r\n\r\npid=7 rev=f";

/// Runs a load on `server` until `done` holds for its counts, and returns the report.
fn load_until(
    server: &FakeServer,
    mode: Mode,
    timeout: Duration,
    done: impl Fn(&load::Counts) -> bool,
) -> Report {
    let mut config = Config::new(server.target());
    config.mode = mode;
    config.concurrency = 2;
    config.timeout = timeout;
    let load = load::start(config).unwrap();
    wait_until(DEADLINE, "the expected counts", || done(&load.snapshot()).then_some(()));
    load.stop()
}

#[test]
fn ok_responses_are_recorded_with_pid_and_rev() {
    let server = FakeServer::start(|conn| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        while read_request(&mut reader) {
            let _ = conn.write_all(OK_RESPONSE.as_bytes());
        }
    });
    let report = load_until(&server, Mode::KeepAlive, DEADLINE, |c| c.ok >= 20);
    assert_clean(&report, &[7]);
    assert_eq!(report.counts.retried, 0);
    assert!(report.responses.iter().all(|r| r.rev == "f" && r.pid == 7));
    assert!(report.responses.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn a_keep_alive_connection_closed_before_any_byte_is_retried_not_failed() {
    // Each connection answers one request, then closes when the next one comes, as a server
    // closing an idle connection while the client sends: the race the rule is for.
    let server = FakeServer::start(|conn| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        if read_request(&mut reader) {
            let _ = conn.write_all(OK_RESPONSE.as_bytes());
        }
        read_request(&mut reader);
    });
    let report = load_until(&server, Mode::KeepAlive, DEADLINE, |c| c.retried >= 10 && c.ok >= 10);
    assert_eq!(report.counts.failed(), 0, "{}", report.summary());
}

#[test]
fn a_close_after_part_of_the_response_is_a_reset_even_when_reused() {
    // The first request on each connection is answered; the second gets half an answer.
    let server = FakeServer::start(|conn| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        if read_request(&mut reader) {
            let _ = conn.write_all(OK_RESPONSE.as_bytes());
        }
        if read_request(&mut reader) {
            let _ = conn.write_all(&OK_RESPONSE.as_bytes()[..20]);
        }
    });
    let report = load_until(&server, Mode::KeepAlive, DEADLINE, |c| c.reset >= 5);
    assert_eq!(report.counts.retried, 0, "{}", report.summary());
    let failure = &report.failures[0];
    assert_eq!(failure.kind, FailureKind::Reset);
    assert!(failure.message.contains("closed after 20 bytes"), "{}", failure.message);
}

#[test]
fn no_answer_in_time_is_a_timeout() {
    let server = FakeServer::start(|conn| {
        let mut reader = BufReader::new(conn);
        read_request(&mut reader);
        // Hold the connection open without answering, until the client gives up.
        let _ = reader.read(&mut [0; 1]);
    });
    let report = load_until(&server, Mode::Close, Duration::from_millis(100), |c| c.timeout >= 2);
    assert_eq!(report.counts.failed(), report.counts.timeout, "{}", report.summary());
}

#[test]
fn wrong_answers_are_bad() {
    let server = FakeServer::start(|conn| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        if read_request(&mut reader) {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        }
    });
    let report = load_until(&server, Mode::Close, DEADLINE, |c| c.bad >= 3);
    assert_eq!(report.counts.failed(), report.counts.bad, "{}", report.summary());
    assert!(report.failures[0].message.contains("not a test server's body"), "{}", report.summary());
}

#[test]
fn a_closed_port_is_refused() {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = Config::new(Target::Tcp(addr));
    config.concurrency = 1;
    let load = load::start(config).unwrap();
    wait_until(DEADLINE, "a refused connect", || (load.snapshot().refused >= 3).then_some(()));
    let report = load.stop();
    assert_eq!(report.counts.failed(), report.counts.refused, "{}", report.summary());
    assert_eq!(report.failures[0].kind, FailureKind::Refused);
}

#[test]
fn load_goes_to_this_machine_only() {
    let err = load::start(Config::new("192.0.2.1:80".parse().unwrap())).err().unwrap();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    let mut config = Config::new("127.0.0.1:1".parse().unwrap());
    config.concurrency = 0;
    assert!(load::start(config).is_err());
}

// ---- steward-testserver binding its own port ----

#[test]
fn lookup_finds_the_testserver_cargo_built() {
    let expected = Path::new(env!("CARGO_BIN_EXE_steward-testserver"));
    assert_eq!(testserver().canonicalize().unwrap(), expected.canonicalize().unwrap());
}

fn serve_steady_load(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0", "--rev", "r1"], dir.path());
    let ready = wait_ready(&server);
    let load = load::start(load_config(&ready.addrs[0], mode)).unwrap();
    // A steady run: a good many requests, counted rather than timed.
    wait_for_more_ok(&load, 2000, "2000 answers", || server.dump());
    let report = load.stop();
    assert_clean(&report, &[ready.pid]);
    assert_eq!(report.pids[&ready.pid].revs.iter().collect::<Vec<_>>(), ["r1"]);
    assert_eq!(report.ok_per_interval.iter().sum::<u64>(), report.counts.ok, "{}", report.summary());
    assert!(server.try_status().is_none(), "{}", server.dump());
}

#[test]
fn a_server_on_its_own_port_serves_a_second_of_load_new_connections() {
    serve_steady_load(Mode::Close);
}

#[test]
fn a_server_on_its_own_port_serves_a_second_of_load_keep_alive() {
    serve_steady_load(Mode::KeepAlive);
}

#[test]
fn server_answers_health_inflight_and_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0"], dir.path());
    let ready = wait_ready(&server);
    let addr = &ready.addrs[0];
    let (status, head, body) = get(addr, "/");
    assert_eq!((status, body), (200, format!("pid={} rev=0", ready.pid)));
    assert!(head.contains(&format!("x-pid: {}", ready.pid)) && head.contains("x-rev: 0"), "{head}");
    let (status, _, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ready"));
    assert_eq!(get(addr, "/inflight").2, "0");
    assert_eq!(get(addr, "/nope").0, 404);
}

#[test]
fn rev_comes_from_the_environment_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(testserver());
    cmd.args(["--listen", "127.0.0.1:0"]).env("REV", "from-env");
    let server = Daemon::from_command(cmd, dir.path());
    let ready = wait_ready(&server);
    assert_eq!(get(&ready.addrs[0], "/").2, format!("pid={} rev=from-env", ready.pid));
}

#[test]
fn a_bad_version_answering_500_is_counted_bad() {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0", "--fail-status"], dir.path());
    let ready = wait_ready(&server);
    assert_eq!(get(&ready.addrs[0], "/healthz").0, 500);
    let mut config = load_config(&ready.addrs[0], Mode::KeepAlive);
    config.concurrency = 2;
    let load = load::start(config).unwrap();
    wait_until(DEADLINE, "bad answers", || (load.snapshot().bad >= 10).then_some(()));
    let report = load.stop();
    assert_eq!((report.counts.ok, report.counts.failed()), (0, report.counts.bad), "{}", report.summary());
    assert!(report.failures[0].message.starts_with("status 500"), "{}", report.summary());
}

#[test]
fn a_crashing_version_exits_3_after_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Daemon::start(testserver(), ["--listen", "127.0.0.1:0", "--exit-after", "200ms"], dir.path());
    wait_ready(&server);
    assert_eq!(server.wait_exit(DEADLINE).code(), Some(3), "{}", server.dump());
    assert!(server.stdout().contains(&format!("exit pid={} code=3", server.pid())), "{}", server.dump());
}

#[test]
fn a_never_ready_version_holds_its_port_but_answers_only_on_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(
        testserver(),
        ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--never-ready"],
        dir.path(),
    );
    let traffic = socket_addr(&server, "traffic");
    let admin = socket_addr(&server, "admin");
    let (status, _, body) = get(&admin, "/healthz");
    assert_eq!((status, body.as_str()), (503, "starting"));
    // The traffic port takes the connection into its queue, but nothing accepts it: no
    // answer. (Asserting an absence needs some wait; 300 ms is plenty for a local answer.)
    let mut stream = TcpStream::connect(&traffic).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let err = stream.read(&mut [0; 64]).unwrap_err();
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
    assert!(!server.stdout().contains("ready"), "{}", server.dump());
}

#[test]
fn bad_command_lines_and_no_socket_exit_2() {
    let run = |args: &[&str]| {
        Command::new(testserver())
            .args(args)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("SYSTEMFD_SOCKET_SERVER")
            .output()
            .unwrap()
    };
    for (args, message) in [
        (&[][..], "no socket to serve"),
        (&["--bogus"], "unknown flag --bogus"),
        (&["--listen", "127.0.0.1:0", "--delay", "5"], "not a duration"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let help = run(&["--help"]);
    assert!(help.status.success());
    for flag in
        ["--listen", "--ready-after", "--never-ready", "--exit-after", "--fail-status", "--delay", "--rev"]
    {
        assert!(String::from_utf8_lossy(&help.stdout).contains(flag), "{flag}");
    }
}

// ---- steward-loadgen ----

const LOADGEN: &str = env!("CARGO_BIN_EXE_steward-loadgen");

#[test]
fn loadgen_prints_a_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = Daemon::start(testserver(), ["--listen", "127.0.0.1:0"], dir.path());
    let ready = wait_ready(&server);
    let out = Command::new(LOADGEN)
        .args([
            "--addr",
            &ready.addrs[0],
            "--concurrency",
            "4",
            "--duration",
            "300ms",
            "--keep-alive",
            "--records",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "keep_alive");
    assert_eq!(report["concurrency"], 4);
    assert_eq!(report["failed"], 0);
    let ok = report["counts"]["ok"].as_u64().unwrap();
    assert!(ok > 0);
    assert_eq!(report["pids"][ready.pid.to_string()]["ok"].as_u64(), Some(ok));
    assert_eq!(report["responses"].as_array().unwrap().len() as u64, ok);
    assert!(report["longest_gap_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn loadgen_exits_1_on_failures_and_2_on_mistakes() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = Command::new(LOADGEN)
        .args(["--addr", &closed, "--concurrency", "1", "--duration", "50ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["counts"]["refused"].as_u64().unwrap() > 0);
    assert!(report.get("responses").is_none(), "responses only with --records");

    for args in
        [&["--duration", "1s"][..], &["--addr", "192.0.2.1:80"], &["--addr", "127.0.0.1:1", "--bogus"]]
    {
        let out = Command::new(LOADGEN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let help = Command::new(LOADGEN).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--keep-alive"));
}
