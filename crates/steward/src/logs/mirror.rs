//! `steward run --mirror`: every line a program writes also goes to steward's stdout,
//! prefixed with the program's name (`web | listening on :8080`, `web:2 | ...` for an
//! instance), or as one JSON object per line with `--log-format json`
//! (`{"timestamp":..,"program":"web","stream":"stdout","line":".."}`). This is what
//! `docker logs` and `kubectl logs` users expect from a container's main process, while the
//! log files stay as they are. steward's own log stays on stderr.
//!
//! The mirror must never slow a program down. The pumps hand it whole lines right where
//! they write them to the file ([`super::capture`]); it formats them and queues them for one
//! writer thread, which alone writes stdout (so lines are never mixed, whatever the
//! programs do). The queue holds at most [`QUEUE_LIMIT`] bytes: when stdout is slower than
//! the programs (a full pipe, a stopped reader), what does not fit is dropped and counted,
//! and a marker line takes its place: `steward | [mirror: dropped 1234 lines, stdout was
//! not keeping up]`. Nothing blocks but the writer thread.
//!
//! A line longer than the pump's buffer (128 KiB) comes in pieces and is mirrored as
//! several lines. A stream whose log file cannot be opened is not mirrored either (its
//! output is read and discarded, see [`super::pump_opening`]).
//!
//! steward's stdout is one per process, so the mirror is too: [`install`] sets it once,
//! like the tracing subscriber. Not installed, it costs the pumps one check of a
//! `OnceLock` per stream.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// The most formatted bytes waiting for stdout; beyond it lines are dropped.
pub const QUEUE_LIMIT: usize = 4 * 1024 * 1024;

/// How mirrored lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `NAME | line`.
    Prefixed,
    /// `{"timestamp":..,"program":..,"stream":..,"line":..}`.
    Json,
}

static MIRROR: OnceLock<Mirror> = OnceLock::new();

/// Mirrors every program's output to `out` from now on (steward's stdout in `steward run`).
/// Starts the writer thread. A second call changes nothing.
pub fn install(format: Format, out: Box<dyn Write + Send>) -> io::Result<()> {
    if MIRROR.get().is_some() {
        return Ok(());
    }
    let _ = MIRROR.set(Mirror::start(format, out)?);
    Ok(())
}

/// The mirror of one stream of a program, or `None` when mirroring is off.
pub fn tee(program: Arc<str>, stream: &'static str) -> Option<Tee> {
    MIRROR.get().map(|mirror| Tee { mirror, program, stream })
}

struct Mirror {
    format: Format,
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

impl Mirror {
    /// A mirror to `out`, with its writer thread started.
    fn start(format: Format, out: Box<dyn Write + Send>) -> io::Result<Mirror> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let writer = Writer { rx, out, format, shared: shared.clone() };
        std::thread::Builder::new().name("mirror".into()).spawn(move || writer.run())?;
        Ok(Mirror { format, tx, shared })
    }
}

/// From the pumps to the writer.
enum Message {
    /// Formatted lines, counted as `accounted` bytes in [`Shared::queued`].
    Lines { bytes: Vec<u8>, accounted: usize },
    /// Lines were dropped here: write the marker.
    Dropped,
}

/// What the pumps and the writer both see.
#[derive(Default)]
struct Shared {
    /// Bytes queued and not written yet.
    queued: AtomicUsize,
    /// Lines dropped since the last marker.
    dropped: AtomicU64,
    /// stdout failed (closed): mirroring has ended.
    closed: AtomicBool,
}

/// One stream of one program, as its pump mirrors it.
pub struct Tee {
    mirror: &'static Mirror,
    program: Arc<str>,
    stream: &'static str,
}

impl Tee {
    /// Mirrors `lines`: whole lines, each ending in `\n`, except that the last may be a
    /// piece of a line longer than the pump's buffer. Never blocks.
    pub fn lines(&self, lines: &[u8]) {
        let shared = &self.mirror.shared;
        if lines.is_empty() || shared.closed.load(Ordering::Relaxed) {
            return;
        }
        let count = lines.split_inclusive(|&b| b == b'\n').count() as u64;
        // Bytes as they will be written: the text plus a prefix (or JSON framing) per line.
        let estimate = lines.len() + count as usize * (self.program.len() + 64);
        if shared.queued.fetch_add(estimate, Ordering::AcqRel) + estimate > QUEUE_LIMIT {
            shared.queued.fetch_sub(estimate, Ordering::AcqRel);
            // The first drop since the last marker queues the marker, right where the gap is.
            if shared.dropped.fetch_add(count, Ordering::AcqRel) == 0 {
                let _ = self.mirror.tx.send(Message::Dropped);
            }
            return;
        }
        let mut out = Vec::with_capacity(estimate);
        let timestamp = match self.mirror.format {
            Format::Json => Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
            Format::Prefixed => None,
        };
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            match &timestamp {
                None => prefixed(&mut out, &self.program, text),
                Some(t) => json(&mut out, t, &self.program, self.stream, text),
            }
        }
        let _ = self.mirror.tx.send(Message::Lines { bytes: out, accounted: estimate });
    }
}

fn prefixed(out: &mut Vec<u8>, program: &str, text: &[u8]) {
    out.extend_from_slice(program.as_bytes());
    out.extend_from_slice(b" | ");
    out.extend_from_slice(text);
    out.push(b'\n');
}

fn json(out: &mut Vec<u8>, timestamp: &str, program: &str, stream: &str, text: &[u8]) {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        timestamp: &'a str,
        program: &'a str,
        stream: &'a str,
        line: &'a str,
    }
    let line = String::from_utf8_lossy(text);
    // Serializing plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &Line { timestamp, program, stream, line: &line });
    out.push(b'\n');
}

/// The thread that alone writes stdout.
struct Writer {
    rx: mpsc::Receiver<Message>,
    out: Box<dyn Write + Send>,
    format: Format,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) {
        while let Ok(message) = self.rx.recv() {
            let written = match message {
                Message::Lines { bytes, accounted } => {
                    let written = self.out.write_all(&bytes);
                    self.shared.queued.fetch_sub(accounted, Ordering::AcqRel);
                    written
                }
                Message::Dropped => {
                    let dropped = self.shared.dropped.swap(0, Ordering::AcqRel);
                    self.out.write_all(&self.marker(dropped))
                }
            };
            if written.and_then(|()| self.out.flush()).is_err() {
                // stdout is closed or broken: the log files still have everything.
                self.shared.closed.store(true, Ordering::Relaxed);
                tracing::warn!(
                    event = "mirror",
                    "cannot write the programs' output to stdout; mirroring stops"
                );
                return;
            }
        }
    }

    fn marker(&self, dropped: u64) -> Vec<u8> {
        let text = format!("[mirror: dropped {dropped} lines, stdout was not keeping up]");
        let mut out = Vec::new();
        match self.format {
            Format::Prefixed => prefixed(&mut out, "steward", text.as_bytes()),
            Format::Json => {
                let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                json(&mut out, &now, "steward", "mirror", text.as_bytes())
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A stdout that takes nothing until the test opens it, then keeps what it is given.
    #[derive(Clone)]
    struct Gated {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, opened) = &*self.open;
            let _open = opened.wait_while(lock.lock().unwrap(), |open| !*open).unwrap();
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn tee(mirror: Mirror, program: &str) -> Tee {
        Tee { mirror: Box::leak(Box::new(mirror)), program: program.into(), stream: "stdout" }
    }

    /// A stdout that takes nothing never holds up a pump: what does not fit in the queue is
    /// dropped and counted, and once stdout moves again the marker says how much, where the
    /// gap is. Every line is either written whole or counted.
    #[test]
    fn a_stuck_stdout_drops_and_counts_instead_of_blocking() {
        let out = Gated { open: Default::default(), got: Default::default() };
        let web = tee(Mirror::start(Format::Prefixed, Box::new(out.clone())).unwrap(), "web");
        let line = |n: usize| format!("line {n:06} {}\n", "x".repeat(50));
        let total = 200_000; // ~13 MiB of lines, about 3 times the queue
        for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
            let lines: String = chunk.iter().map(|&n| line(n)).collect();
            web.lines(lines.as_bytes());
        }
        // Everything was handed over while stdout took nothing: no call blocked.
        *out.open.0.lock().unwrap() = true;
        out.open.1.notify_all();
        // Once the queue has drained and the marker is out, one more line goes through.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let shared = &web.mirror.shared;
        while shared.queued.load(Ordering::Acquire) > 0 || shared.dropped.load(Ordering::Acquire) > 0 {
            assert!(std::time::Instant::now() < deadline, "the queue never drained");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        web.lines(b"after\n");
        let text = loop {
            let text = String::from_utf8(out.got.lock().unwrap().clone()).unwrap();
            if text.ends_with("web | after\n") {
                break text;
            }
            assert!(std::time::Instant::now() < deadline, "the mirror never caught up");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let written: Vec<&str> = text.lines().filter(|l| l.starts_with("web | line ")).collect();
        let markers: Vec<&str> =
            text.lines().filter(|l| l.starts_with("steward | [mirror: dropped ")).collect();
        assert_eq!(markers.len(), 1, "{markers:?}");
        let dropped: usize =
            markers[0]["steward | [mirror: dropped ".len()..].split(' ').next().unwrap().parse().unwrap();
        assert!(
            dropped > 0 && written.len() + dropped == total,
            "{} written, {dropped} dropped",
            written.len()
        );
        // The lines that went through are whole, the first ones, in order; the marker follows them.
        for (n, l) in written.iter().enumerate() {
            assert_eq!(format!("{l}\n"), format!("web | {}", line(n)));
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[written.len()], markers[0]);
        assert_eq!(lines.len(), written.len() + 2);
    }

    #[test]
    fn json_lines() {
        let out = Gated { open: Arc::new((Mutex::new(true), Default::default())), got: Default::default() };
        let api = tee(Mirror::start(Format::Json, Box::new(out.clone())).unwrap(), "api:2");
        api.lines(b"plain\r\n\"quoted\" \xff\npiece");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while out.got.lock().unwrap().iter().filter(|&&b| b == b'\n').count() < 3 {
            assert!(std::time::Instant::now() < deadline, "not written");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let text = String::from_utf8(out.got.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let got: Vec<(&str, &str, &str)> = lines
            .iter()
            .map(|v| {
                (v["program"].as_str().unwrap(), v["stream"].as_str().unwrap(), v["line"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("api:2", "stdout", "plain"),
                ("api:2", "stdout", "\"quoted\" \u{fffd}"),
                ("api:2", "stdout", "piece")
            ]
        );
        assert!(lines.iter().all(|v| v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z'))), "{text}");
    }
}
