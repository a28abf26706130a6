//! `steward-receiver`: [`testkit::receiver::Receiver`] as a program, for benchmarks and people.
//!
//! A fake Loki (`/loki/api/v1/push`), Elasticsearch (`/_bulk`) and OTLP/HTTP (`/v1/logs`)
//! receiver with the real rules (see the receiver's module doc). It prints
//! `listening on ADDR` as its first line, and a JSON summary line when stdin reaches its end,
//! on SIGTERM or SIGINT (Windows: Ctrl+C), or, with `--exit-when-done`, once `--expect N`
//! lines are stored:
//!
//! ```text
//! {"loki_lines":1000000,"elastic_docs":0,"otlp_records":0,"requests":200,"bytes":…,
//!  "errors":0,"loki_duplicates":0,"loki_out_of_order":0,"first_at_unix":…,
//!  "last_at_unix":…,"done_at_unix":…,"cpu_s":…,"max_rss_kib":…,"count_only":true}
//! ```
//!
//! `errors` counts requests answered other than 2xx; `first_at_unix` and `last_at_unix` are
//! when the first and the last request that stored something were handled; `done_at_unix`,
//! with `--expect N`, when the request that brought the Nth line was (also printed at once
//! as `done N lines at UNIX_SECONDS`). `cpu_s` is the receiver's own CPU time (user +
//! system) and `max_rss_kib` its peak resident memory (both Linux only; `null` elsewhere).
//! Storing every line costs about 1.8 KB a Loki entry as steward sends them (labels and
//! metadata kept per entry): 1M lines of 100 bytes peak at some 1.8 GB. `--count-only`
//! keeps a 64-bit hash per entry for the duplicate rule: the same million peak under 40 MB.
//!
//! Exit codes: 0, 2 for a bad command line or an address that cannot be bound.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde_json::json;
use testkit::receiver::{Endpoint, Receiver, State};

const USAGE: &str = "\
usage: steward-receiver [--listen ADDR] [--count-only] [--expect N [--exit-when-done]]
  --listen ADDR       where to listen (default 127.0.0.1:0); prints `listening on ADDR` first
  --count-only        decode, check and count, but keep no lines (memory stays flat)
  --expect N          print `done N lines at UNIX_SECONDS` once N lines (Loki entries,
                      Elasticsearch documents and OTLP records together) are stored
  --exit-when-done    then print the summary and exit
Prints a JSON summary line and exits at the end of stdin, on SIGTERM or SIGINT.
exit codes: 0, 2 for a bad command line or an address that cannot be bound";

/// Longer than any benchmark: `wait_for_async` wants a deadline.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

struct Options {
    listen: SocketAddr,
    count_only: bool,
    expect: Option<u64>,
    exit_when_done: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        count_only: false,
        expect: None,
        exit_when_done: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value()?;
                opts.listen = v.parse().map_err(|_| format!("--listen: {v:?} is not an IP:PORT"))?;
            }
            "--count-only" => opts.count_only = true,
            "--expect" => {
                let v = value()?;
                opts.expect = Some(v.parse().map_err(|_| format!("--expect: {v:?} is not a whole number"))?);
            }
            "--exit-when-done" => opts.exit_when_done = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.exit_when_done && opts.expect.is_none() {
        return Err("--exit-when-done needs --expect N".into());
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("steward-receiver: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    // Binding is the one thing that fails for reasons of the caller's: say so, not a panic
    // (the listener is closed at once, and bound again by the receiver).
    if let Err(e) = std::net::TcpListener::bind(opts.listen) {
        eprintln!("steward-receiver: cannot listen on {}: {e}", opts.listen);
        return ExitCode::from(2);
    }
    let rx = Receiver::builder().count_only(opts.count_only).listen(opts.listen).start();
    say(&format!("listening on {}", rx.addr()));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let done_at = rt.block_on(run(&rx, &opts));
    let summary = rx.with_state(|s| summary(s, done_at, opts.count_only));
    say(&summary.to_string());
    ExitCode::SUCCESS
}

/// Waits for the end (stdin's, a signal, or the expected lines with `--exit-when-done`);
/// returns when the expected lines were stored, if they were.
async fn run(rx: &Receiver, opts: &Options) -> Option<SystemTime> {
    // stdin is read on a thread of its own: a blocking read, left behind when main returns.
    let (eof_tx, mut eof) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        let _ = eof_tx.send(());
    });
    let expected = async {
        match opts.expect {
            Some(n) => {
                rx.wait_for_async(&format!("{n} lines"), FOREVER, |s| total(s) >= n).await;
                rx.with_state(|s| s.last_stored_at)
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expected);
    let terminated = terminated();
    tokio::pin!(terminated);
    let mut done_at = None;
    loop {
        tokio::select! {
            at = &mut expected, if done_at.is_none() => {
                let at = at.unwrap_or_else(SystemTime::now);
                done_at = Some(at);
                say(&format!("done {} lines at {:.6}", opts.expect.unwrap_or(0), unix(at)));
                if opts.exit_when_done {
                    return done_at;
                }
            }
            _ = &mut eof => return done_at,
            () = &mut terminated => return done_at,
        }
    }
}

/// SIGTERM or SIGINT.
#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Ctrl+C (or Ctrl+Break).
#[cfg(not(unix))]
async fn terminated() {
    let _ = tokio::signal::ctrl_c().await;
}

fn total(s: &State) -> u64 {
    s.stored(Endpoint::Loki) + s.stored(Endpoint::Elastic) + s.stored(Endpoint::Otlp)
}

fn summary(s: &State, done_at: Option<SystemTime>, count_only: bool) -> serde_json::Value {
    let errors: u64 =
        s.answered.iter().filter(|((_, status), _)| !(200..300).contains(status)).map(|(_, n)| n).sum();
    json!({
        "loki_lines": s.stored(Endpoint::Loki),
        "elastic_docs": s.stored(Endpoint::Elastic),
        "otlp_records": s.stored(Endpoint::Otlp),
        "requests": s.requests.values().sum::<u64>(),
        "bytes": s.bytes.values().sum::<u64>(),
        "errors": errors,
        "loki_duplicates": s.loki_duplicates,
        "loki_out_of_order": s.loki_out_of_order,
        "first_at_unix": s.first_stored_at.map(unix),
        "last_at_unix": s.last_stored_at.map(unix),
        "done_at_unix": done_at.map(unix),
        "cpu_s": cpu_s(),
        "max_rss_kib": max_rss_kib(),
        "count_only": count_only,
    })
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// User + system CPU time of this process, from `/proc/self/stat` (Linux only).
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

#[cfg(unix)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(not(unix))]
fn clock_ticks() -> f64 {
    100.0
}

/// Peak resident set size (`VmHWM`), Linux only.
fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One line on stdout, flushed: a script reads it as it comes. A closed stdout is ignored.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
