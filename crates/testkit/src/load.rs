//! HTTP load for the rolling-restart tests: K workers sending `GET /` to a test server
//! (`steward-testserver`) until stopped, counting every way a request can fail.
//!
//! ```no_run
//! use testkit::load::{self, Config, Mode};
//!
//! let mut config = Config::new("127.0.0.1:8080".parse().unwrap());
//! config.mode = Mode::KeepAlive;
//! let load = load::start(config).unwrap();
//! // ... restart the server; watch load.snapshot() ...
//! let report = load.stop();
//! assert_eq!(report.counts.failed(), 0, "{}", report.summary());
//! ```
//!
//! Each worker is a thread with blocking std sockets (so it runs the same on Windows) that
//! sends one request at a time, each with its own deadline ([`Config::timeout`], connecting
//! included), and records how it ended: ok (a 200 whose body names the server's pid and
//! revision, `pid=<pid> rev=<rev>`, with a matching `x-pid` header), refused, reset, timeout,
//! bad or other ([`Counts`]). Each ok response is kept with its times (sent, complete), pid
//! and revision, so a test can check which process answered when ([`Report::sent_after`]),
//! the longest gap between successes and the rate per interval.
//!
//! # Modes
//!
//! - [`Mode::Close`]: a new connection per request, sent with `Connection: close`. After the
//!   response the worker waits for the server to close first, so the TIME_WAIT entries stay on
//!   the server's side and a long run does not use up this side's ephemeral ports.
//! - [`Mode::KeepAlive`]: one connection per worker, reused until the server closes it or
//!   answers with `Connection: close` (a draining server does both); then a new one.
//!
//! # When a keep-alive request counts as failed
//!
//! A server may close an idle keep-alive connection at any time (RFC 9112, 9.3.1), and a
//! draining one must: that is its part of the drain contract. A client cannot avoid sending a
//! request on a connection whose close is already on the way, so HTTP clients retry. The rule
//! here is curl's (a reused connection that "died" before any byte of the response arrived is
//! retried on a new one) and Go's `net/http` (an idempotent request on a reused connection
//! that failed before any byte of the response is retried):
//!
//! - on a **reused** connection, if writing the request fails, or the connection is closed or
//!   reset before **any byte** of the response arrives, the request is sent once more on a
//!   new connection; `retried` counts these, and the retry's outcome is the request's;
//! - anything else is the request's outcome: a close or reset after part of the response, or
//!   on a new connection (where no idle race exists), is `reset`; a timeout is `timeout`,
//!   even on a reused connection (no byte came, but the server did not close either: that is
//!   a hung server, not the race).
//!
//! (hyper's own client is stricter: it retries only requests not yet written. It would count
//! the idle-close race as a failure, which says nothing about the server under test.)
//!
//! # Bounds
//!
//! The load only goes to this machine ([`Target::check`]: loopback or a Unix socket), and a
//! run stops by itself after [`Config::max_duration`] even if nobody calls [`Load::stop`]. A
//! worker pauses [`Config::failure_pause`] after a failure, so one facing a closed port does
//! not spin a core. Dropping a [`Load`] stops it too.

mod http;
mod report;
mod stream;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use report::{Counts, Failure, FailureKind, OkResponse, PidSummary, Report};
pub use stream::Target;

use stream::Stream;

/// How many failures a run keeps with their details (all are counted).
pub const MAX_FAILURES_KEPT: usize = 1000;

/// How workers use connections: see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A new connection per request (`Connection: close`).
    Close,
    /// Reuse each worker's connection until the server closes it.
    KeepAlive,
}

/// What to load and how hard. [`Config::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub mode: Mode,
    /// Workers, each with one request in flight at a time. Default 32.
    pub concurrency: usize,
    /// Per request, connecting included. Default 5 s.
    pub timeout: Duration,
    /// The request path. Default `/`.
    pub path: String,
    /// The run stops by itself after this long. Default 60 s.
    pub max_duration: Duration,
    /// The bucket width of [`Report::ok_per_interval`]. Default 100 ms; zero for none.
    pub interval: Duration,
    /// A worker's pause after a failed request. Default 1 ms.
    pub failure_pause: Duration,
}

impl Config {
    pub fn new(target: Target) -> Config {
        Config {
            target,
            mode: Mode::Close,
            concurrency: 32,
            timeout: Duration::from_secs(5),
            path: "/".to_owned(),
            max_duration: Duration::from_secs(60),
            interval: Duration::from_millis(100),
            failure_pause: Duration::from_millis(1),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad load configuration: {0}")]
    Config(String),
    #[error("cannot start load worker {worker}")]
    Spawn {
        worker: usize,
        #[source]
        source: io::Error,
    },
}

/// Starts `config.concurrency` workers at once; they run until [`Load::stop`], the drop of the
/// returned [`Load`], or [`Config::max_duration`].
pub fn start(config: Config) -> Result<Load, LoadError> {
    config.target.check().map_err(LoadError::Config)?;
    if config.concurrency == 0 {
        return Err(LoadError::Config("concurrency must be at least 1".into()));
    }
    if config.timeout.is_zero() {
        return Err(LoadError::Config("the request timeout must not be zero".into()));
    }
    if !config.path.starts_with('/') || config.path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(LoadError::Config(format!("{:?} is not a request path", config.path)));
    }
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        counters: Counters::default(),
    });
    let mut load = Load { config: Arc::clone(&config), shared: Arc::clone(&shared), workers: Vec::new() };
    for id in 0..config.concurrency {
        let worker = Worker::new(id, Arc::clone(&config), Arc::clone(&shared));
        let handle = thread::Builder::new()
            .name(format!("load-{id}"))
            // Workers keep their buffers on the heap; 32 default 2 MiB stacks would be waste.
            .stack_size(256 * 1024)
            .spawn(move || worker.run())
            // `load` is dropped on the error path, which stops and joins the workers started.
            .map_err(|source| LoadError::Spawn { worker: id, source })?;
        load.workers.push(handle);
    }
    Ok(load)
}

/// A running load; see the module doc.
pub struct Load {
    config: Arc<Config>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<WorkerLog>>,
}

impl Load {
    /// How the requests finished so far ended.
    pub fn snapshot(&self) -> Counts {
        self.shared.counters.get()
    }

    /// Time since the start, on the clock of [`OkResponse::at`]: note it before an action
    /// (say, a stop signal) to look at the responses after it.
    pub fn elapsed(&self) -> Duration {
        self.shared.start.elapsed()
    }

    /// Stops the workers and returns the report. Requests in flight are finished (or time
    /// out) first and counted, so this takes up to [`Config::timeout`].
    ///
    /// # Panics
    /// If a worker panicked (a bug in this module).
    pub fn stop(mut self) -> Report {
        let elapsed = self.shared.start.elapsed();
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut responses = Vec::new();
        let mut failures = Vec::new();
        for handle in self.workers.drain(..) {
            let log = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            responses.extend(log.responses);
            failures.extend(log.failures);
        }
        Report::new(&self.config, elapsed, self.shared.counters.get(), responses, failures)
    }
}

impl Drop for Load {
    /// Stops and joins the workers (a test that failed before [`Load::stop`] leaves no load
    /// behind). Worker panics are ignored here: this may run during a test's unwinding.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// What the workers share.
struct Shared {
    /// The origin of every time in the report.
    start: Instant,
    /// Set by `stop` (or drop); each worker checks it before each request.
    stop: AtomicBool,
    /// Live counts for `snapshot`; the records themselves stay in each worker until joined.
    counters: Counters,
}

impl Shared {
    fn should_stop(&self, config: &Config) -> bool {
        self.stop.load(Ordering::Relaxed) || self.start.elapsed() >= config.max_duration
    }
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    timeout: AtomicU64,
    bad: AtomicU64,
    other: AtomicU64,
    retried: AtomicU64,
}

impl Counters {
    fn get(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            ok: get(&self.ok),
            refused: get(&self.refused),
            reset: get(&self.reset),
            timeout: get(&self.timeout),
            bad: get(&self.bad),
            other: get(&self.other),
            retried: get(&self.retried),
        }
    }

    fn failure(&self, kind: FailureKind) -> &AtomicU64 {
        match kind {
            FailureKind::Refused => &self.refused,
            FailureKind::Reset => &self.reset,
            FailureKind::Timeout => &self.timeout,
            FailureKind::Bad => &self.bad,
            FailureKind::Other => &self.other,
        }
    }
}

/// One worker's records, handed over when it is joined.
#[derive(Default)]
struct WorkerLog {
    responses: Vec<OkResponse>,
    failures: Vec<Failure>,
}

/// A failed request: its kind and what happened.
type Failed = (FailureKind, String);

struct Worker {
    id: usize,
    config: Arc<Config>,
    shared: Arc<Shared>,
    /// The request's bytes, the same every time.
    request: Vec<u8>,
    /// The keep-alive connection, while the server keeps it open.
    conn: Option<Stream>,
    log: WorkerLog,
}

impl Worker {
    fn new(id: usize, config: Arc<Config>, shared: Arc<Shared>) -> Worker {
        let request = http::request(&config.path, &config.target.host(), config.mode == Mode::KeepAlive);
        Worker { id, config, shared, request, conn: None, log: WorkerLog::default() }
    }

    fn run(mut self) -> WorkerLog {
        while !self.shared.should_stop(&self.config) {
            let sent = self.shared.start.elapsed();
            let outcome = self.request(self.shared.start + sent + self.config.timeout);
            let at = self.shared.start.elapsed();
            match outcome {
                Ok((pid, rev)) => {
                    self.shared.counters.ok.fetch_add(1, Ordering::Relaxed);
                    self.log.responses.push(OkResponse { sent, at, pid, rev, worker: self.id });
                }
                Err((kind, message)) => {
                    self.shared.counters.failure(kind).fetch_add(1, Ordering::Relaxed);
                    if self.log.failures.len() < MAX_FAILURES_KEPT {
                        self.log.failures.push(Failure { at, kind, message, worker: self.id });
                    }
                    thread::sleep(self.config.failure_pause);
                }
            }
        }
        self.log
    }

    /// One request, retried once under the keep-alive rule of the module doc.
    fn request(&mut self, deadline: Instant) -> Result<(u32, String), Failed> {
        let keep_alive = self.config.mode == Mode::KeepAlive;
        loop {
            let (mut stream, reused) = match self.conn.take() {
                Some(stream) => (stream, true),
                None => (self.connect(deadline)?, false),
            };
            match http::exchange(&mut stream, &self.request, deadline, !keep_alive) {
                Ok(response) => {
                    if keep_alive && !response.close {
                        self.conn = Some(stream);
                    }
                    return judge(response);
                }
                // `self.conn` is empty now, so the retry connects anew and is not retried.
                Err(failed) if reused && failed.closed_before_response() => {
                    self.shared.counters.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(failed) => return Err(exchange_failure(failed)),
            }
        }
    }

    fn connect(&self, deadline: Instant) -> Result<Stream, Failed> {
        let remaining = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or((FailureKind::Timeout, "no time left to connect".to_owned()))?;
        Stream::connect(&self.config.target, remaining).map_err(|e| {
            let kind = match e.kind() {
                // A Unix socket's path gone is a listener gone, like a refused TCP connect.
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => FailureKind::Refused,
                _ if http::is_timeout(&e) => FailureKind::Timeout,
                _ if http::is_reset(&e) => FailureKind::Reset,
                _ => FailureKind::Other,
            };
            (kind, format!("connect: {e}"))
        })
    }
}

fn exchange_failure(failed: http::Failed) -> Failed {
    match failed {
        http::Failed::Write(e) => (FailureKind::Reset, format!("sending the request: {e}")),
        http::Failed::Closed { received, error: None } => {
            (FailureKind::Reset, format!("connection closed after {received} bytes of the response"))
        }
        http::Failed::Closed { received, error: Some(e) } => {
            (FailureKind::Reset, format!("after {received} bytes of the response: {e}"))
        }
        http::Failed::TimedOut { received } => {
            (FailureKind::Timeout, format!("timed out after {received} bytes of the response"))
        }
        http::Failed::Malformed(why) => (FailureKind::Bad, why),
        http::Failed::Io(e) => (FailureKind::Other, e.to_string()),
    }
}

/// A 200 from a test server, or why not.
fn judge(response: http::Response) -> Result<(u32, String), Failed> {
    let body = || String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        return Err((FailureKind::Bad, format!("status {}: {:?}", response.status, body())));
    }
    let (pid, rev) = http::parse_body(&response.body)
        .ok_or_else(|| (FailureKind::Bad, format!("not a test server's body: {:?}", body())))?;
    if response.x_pid.as_deref() != Some(pid.to_string().as_str()) {
        return Err((
            FailureKind::Bad,
            format!("x-pid {:?} does not match the body {:?}", response.x_pid, body()),
        ));
    }
    Ok((pid, rev))
}
