//! `steward-shipclient`: pushes the lines of a file to a Loki endpoint the way steward's
//! shipper batches them, and nothing else: the baseline of `bench/ship.sh`, the most a
//! receiver takes from one client sending one request at a time.
//!
//! ```text
//! steward-shipclient --url http://127.0.0.1:PORT/loki/api/v1/push --file lines.txt
//! ```
//!
//! The file is read whole, then cut into batches of at most `--max-lines` lines (default
//! 5000) and `--max-bytes` bytes of line text (default 1 MiB), steward's defaults. Each batch
//! is one `logproto.PushRequest` (protobuf, snappy block format, encoded with
//! [`testkit::receiver::loki`]) in one stream labelled like steward's (`host`, `program`,
//! `stream`), each entry with steward's structured metadata (`pid`, and a 32-hex-digit `id`),
//! the timestamps strictly increasing. The requests go one after the other on one keep-alive
//! HTTP/1.1 connection; anything but a 2xx answer is an error. At the end it prints one JSON
//! line: `{"lines":…,"requests":…,"body_bytes":…,"seconds":…}` (the time from the start of
//! reading the file to the last answer).
//!
//! Exit codes: 0, 1 when a request fails, 2 for a bad command line.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use testkit::receiver::loki::{self, EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};

const USAGE: &str = "\
usage: steward-shipclient --url http://HOST:PORT/PATH --file PATH [--max-lines N] [--max-bytes N]
                          [--program NAME]
  --url URL        the Loki push endpoint (plain http)
  --file PATH      the lines to send, one per line
  --max-lines N    lines per request at most (default 5000, as steward)
  --max-bytes N    bytes of line text per request at most (default 1048576, as steward)
  --program NAME   the `program` label (default bench)
Prints {\"lines\",\"requests\",\"body_bytes\",\"seconds\"} as JSON.
exit codes: 0, 1 when a request fails, 2 for a bad command line";

struct Options {
    url: hyper::Uri,
    file: std::path::PathBuf,
    max_lines: usize,
    max_bytes: usize,
    program: String,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let (mut url, mut file) = (None, None);
    let mut opts_lines = 5000;
    let mut opts_bytes = 1 << 20;
    let mut program = "bench".to_owned();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{arg}: {v:?} is not a positive whole number"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => {
                let v = value()?;
                let uri: hyper::Uri = v.parse().map_err(|_| format!("--url: {v:?} is not a URL"))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err(format!("--url: {v:?} is not http://HOST:PORT/PATH"));
                }
                url = Some(uri);
            }
            "--file" => file = Some(value()?.into()),
            "--max-lines" => opts_lines = number(value()?)?,
            "--max-bytes" => opts_bytes = number(value()?)?,
            "--program" => program = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Options {
        url: url.ok_or("--url is required")?,
        file: file.ok_or("--file is required")?,
        max_lines: opts_lines,
        max_bytes: opts_bytes,
        program,
    }))
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("steward-shipclient: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match rt.block_on(send(&opts)) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{report}").and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("steward-shipclient: {message}");
            ExitCode::from(1)
        }
    }
}

async fn send(opts: &Options) -> Result<serde_json::Value, String> {
    let start = Instant::now();
    let text = std::fs::read(&opts.file).map_err(|e| format!("{}: {e}", opts.file.display()))?;
    let text = String::from_utf8_lossy(&text);
    let authority = opts.url.authority().expect("checked in parse").as_str().to_owned();
    let stream =
        tokio::net::TcpStream::connect(&authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // Drives the connection; ends when `sender` is dropped.
    tokio::spawn(conn);

    let labels = format!(r#"{{host="{}", program="{}", stream="stdout"}}"#, host(), opts.program);
    let pid = std::process::id().to_string();
    let base_ns =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
    let (mut lines, mut requests, mut body_bytes) = (0u64, 0u64, 0u64);
    let mut all = text.lines().peekable();
    while all.peek().is_some() {
        let mut batch = Vec::with_capacity(opts.max_lines);
        let mut batch_bytes = 0;
        while let Some(line) = all.peek() {
            if batch.len() == opts.max_lines
                || (!batch.is_empty() && batch_bytes + line.len() > opts.max_bytes)
            {
                break;
            }
            batch_bytes += line.len();
            lines += 1;
            batch.push(EntryAdapter {
                timestamp: Some(Timestamp::from_ns(base_ns + i128::from(lines))),
                line: (*line).to_owned(),
                structured_metadata: vec![
                    LabelPairAdapter { name: "pid".into(), value: pid.clone() },
                    LabelPairAdapter { name: "id".into(), value: id(lines) },
                ],
            });
            all.next();
        }
        let push =
            PushRequest { streams: vec![StreamAdapter { labels: labels.clone(), entries: batch, hash: 0 }] };
        let body = loki::encode_protobuf(&push);
        body_bytes += body.len() as u64;
        let request = hyper::Request::post(opts.url.clone())
            .header(hyper::header::HOST, &authority)
            .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let response =
            sender.send_request(request).await.map_err(|e| format!("request {}: {e}", requests + 1))?;
        let status = response.status();
        let answer =
            response.into_body().collect().await.map_err(|e| format!("answer {}: {e}", requests + 1))?;
        if !status.is_success() {
            return Err(format!(
                "request {} answered {status}: {}",
                requests + 1,
                String::from_utf8_lossy(&answer.to_bytes())
            ));
        }
        requests += 1;
    }
    Ok(serde_json::json!({
        "lines": lines,
        "requests": requests,
        "body_bytes": body_bytes,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}

/// This machine's name, as steward labels its lines (`localhost` when unknown).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A 32-hex-digit id as random-looking as steward's (a SHA-256 prefix), so that bodies
/// compress alike: two rounds of splitmix64 over the line number.
fn id(n: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let a = mix(n);
    format!("{a:016x}{:016x}", mix(a))
}
