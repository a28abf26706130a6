//! `GET /v1/usage`: memory and CPU of real programs, read over the local socket, once and
//! as a live stream with its history (what the dashboard and `steward top` draw).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use testkit::{child_cmd, toml_str, DEADLINE};

const MIB: u64 = 1024 * 1024;

fn config() -> String {
    format!(
        "[programs.mem]\ncommand = {}\n\n[programs.busy]\ncommand = {}\n\n[programs.idle]\ncommand = {}\n",
        child_cmd(&["--alloc-mb", "24", "--sleep", "1h"]),
        toml_str("/bin/sh -c 'while :; do :; done'"),
        child_cmd(&["--sleep", "1h"]),
    )
}

/// Sends a GET and returns the reader, past the head, with the status code.
fn request(socket: &Path, path: &str) -> (u16, BufReader<UnixStream>) {
    let mut conn = UnixStream::connect(socket).expect("connect to the API socket");
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: steward\r\nConnection: close\r\n\r\n").unwrap();
    let mut reader = BufReader::new(conn);
    let mut status = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read the reply head");
        if status == 0 {
            status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        }
        if line == "\r\n" || line.is_empty() {
            return (status, reader);
        }
    }
}

/// The next NDJSON line of a chunked body (steward writes each line as its own chunk).
fn next_line(reader: &mut BufReader<UnixStream>) -> Value {
    let mut size = String::new();
    reader.read_line(&mut size).expect("read a chunk size");
    let n = usize::from_str_radix(size.trim(), 16).unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
    assert!(n > 0, "the stream ended");
    let mut chunk = vec![0; n + 2];
    reader.read_exact(&mut chunk).expect("read a chunk");
    serde_json::from_slice(&chunk[..n]).unwrap_or_else(|e| panic!("not JSON ({e}): {chunk:?}"))
}

fn program<'a>(sample: &'a Value, name: &str) -> Option<&'a Value> {
    sample["programs"].as_array()?.iter().find(|p| p["name"] == name)
}

#[test]
fn usage_once_and_live_with_history() {
    let s = crate::common::start(&config());
    s.wait_for("mem", "started");
    s.wait_for("busy", "started");
    s.wait_api();
    let socket = s.path(".steward/steward.sock");
    // The allocation is resident once the child says so.
    testkit::wait_until(DEADLINE, "mem to have allocated its memory", || {
        std::fs::read_to_string(s.log_dir().join("mem.out.log"))
            .ok()
            .filter(|t| t.contains("allocated 24 MiB"))
    });

    // Once, with no sampler running: a fresh reading, with no CPU rate yet.
    let (code, mut reader) = request(&socket, "/v1/usage");
    assert_eq!(code, 200);
    // A JSON reply has a Content-Length: the rest of the connection is the body.
    let mut body = String::new();
    reader.read_to_string(&mut body).unwrap();
    let sample: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /v1/usage is not JSON ({e}): {body}"));
    let mem = program(&sample, "mem").unwrap_or_else(|| panic!("no mem in {sample}"));
    assert!(mem["rss_bytes"].as_u64().unwrap() >= 24 * MIB, "{mem}");
    assert!(mem["cpu_percent"].is_null(), "a first reading has no rate: {mem}");
    assert_eq!(sample["interval_secs"], 2);

    // Live: the history first (empty: nobody was watching), then a sample per tick.
    let (code, mut live) = request(&socket, "/v1/usage?follow=true");
    assert_eq!(code, 200);
    let first = next_line(&mut live);
    assert_eq!(first["history"]["step_secs"], 10, "{first}");
    let deadline = Instant::now() + DEADLINE;
    let busy_cpu = loop {
        assert!(Instant::now() < deadline, "busy never showed a CPU rate");
        let sample = next_line(&mut live);
        if let Some(cpu) = program(&sample, "busy").and_then(|p| p["cpu_percent"].as_f64()) {
            let idle = program(&sample, "idle").and_then(|p| p["cpu_percent"].as_f64());
            assert!(idle.is_some_and(|c| c < 20.0), "idle uses CPU? {sample}");
            break cpu;
        }
    };
    // A busy loop gets most of a core; a loaded 2-core machine still gives it a fair share.
    assert!(busy_cpu > 20.0, "busy at {busy_cpu}%");

    // A second watcher, while the first still watches, gets the history so far.
    let (_, mut second) = request(&socket, "/v1/usage?follow=true");
    let history = next_line(&mut second);
    let points = history["history"]["programs"]["mem"].as_array().cloned().unwrap_or_default();
    assert!(!points.is_empty(), "no history for mem: {history}");
    let [_, rss, _, restarts] = points[0].as_array().unwrap().as_slice() else { panic!("{points:?}") };
    assert!(rss.as_u64().unwrap() >= 24 * MIB && restarts == 0, "{points:?}");
    assert!(program(&next_line(&mut second), "mem").is_some());

    drop((live, second));
    s.shutdown();
}
