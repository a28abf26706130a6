//! `steward-testserver`: the HTTP server of steward's rolling-restart tests.
//!
//! It serves the listening sockets it is passed (systemd's `LISTEN_FDS` on Unix, the systemfd
//! protocol on Windows, both read by the `listenfd` crate) or binds its own (`--listen`, the
//! negative control), becomes ready after `--ready-after` (`READY=1` to `NOTIFY_SOCKET`, and a
//! `ready pid=<pid> addr=<addr>` line), answers `GET /` with `pid=<pid> rev=<rev>`, and keeps
//! the drain contract on the stop signal: close the listeners first, finish what is in
//! flight, exit 0. Flags make bad versions: never ready, crashing, answering 500. See `--help`
//! ([`args::USAGE`]) for all of it, with the exit codes.
//!
//! # Why not `axum::serve`
//!
//! axum's `with_graceful_shutdown` does drop its listener as soon as the signal comes, but its
//! connections end the same way hyper's do (below), and it leaves no room to change that.
//! hyper's HTTP/1 `graceful_shutdown` finishes a request being read or answered (answering it
//! with `Connection: close`) and closes a connection idle between requests, which is the
//! drain contract; but it also closes at once a connection it has read nothing from yet
//! (hyper-util's protocol-sniffing builder, axum's, cancels those too). Such a connection was
//! accepted just before the stop, and its client may well have sent the request already: it
//! waits unread in the socket. Closing it loses that request, the very failure the tests look
//! for. So [`serve_connection`] first lets such a connection deliver its first request.
//!
//! # Shape
//!
//! One current-thread tokio runtime. `run` owns the timeline (ready, stop, crash); each
//! listener has an accept task and each connection a task of its own. They are tied together
//! by three channels, described where they are made.

#[path = "testserver/args.rs"]
mod args;
#[path = "testserver/listeners.rs"]
mod listeners;

#[cfg_attr(unix, path = "testserver/os/unix.rs")]
#[cfg_attr(windows, path = "testserver/os/windows.rs")]
mod os;

use std::convert::Infallible;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use args::Options;
use listeners::{Accepted, Bound, Listener, Role};

/// Exit code of `--exit-after`.
const CRASH_CODE: u8 = 3;

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args_os().skip(1)) {
        Ok(opts) => opts,
        Err(message) => return usage_error(&message),
    };
    if opts.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let rev = match opts.rev.clone().or_else(|| std::env::var("REV").ok()) {
        Some(text) => match args::rev(&text) {
            Ok(rev) => rev,
            Err(message) => return usage_error(&format!("$REV: {message}")),
        },
        None => "0".to_owned(),
    };
    // Before the runtime's threads exist: taking passed sockets edits the environment.
    let bound = match gather(&opts) {
        Ok(bound) => bound,
        Err(message) => return usage_error(&message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("steward-testserver: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(opts, rev, bound)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("steward-testserver: {message}");
            ExitCode::from(1)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("steward-testserver: {message} (see --help)");
    ExitCode::from(2)
}

/// The sockets to serve: `--listen` ones, else the passed ones; plus `--admin` ones.
fn gather(opts: &Options) -> Result<Vec<Bound>, String> {
    let mut bound = if opts.listen.is_empty() {
        listeners::passed()?
    } else {
        opts.listen.iter().map(|addr| listeners::bind(addr, Role::Traffic)).collect::<Result<_, _>>()?
    };
    for addr in &opts.admin {
        bound.push(listeners::bind(addr, Role::Admin)?);
    }
    if bound.is_empty() {
        return Err(
            "no socket to serve: pass sockets (LISTEN_FDS=n with fds from 3 and LISTEN_PID on Unix, \
                    SYSTEMFD_SOCKET_SERVER and SYSTEMFD_SOCKET_SECRET on Windows) or give --listen ADDR"
                .into(),
        );
    }
    Ok(bound)
}

/// What the request handlers read.
struct State {
    pid: u32,
    rev: String,
    delay: Duration,
    fail_status: bool,
    /// Set once, when the server becomes ready (`/healthz`).
    ready: AtomicBool,
    /// Set once, when the drain starts: every response made after it says
    /// `Connection: close`. hyper's `graceful_shutdown` adds that itself only to responses it
    /// has not started writing, and a request read in the same poll as the drain began is
    /// answered before it takes effect.
    draining: AtomicBool,
    /// `GET /` requests being answered (`/inflight`): lets a test know its requests reached
    /// the server before it sends the stop signal.
    inflight: AtomicUsize,
}

/// The server's timeline: wait for ready, then for the stop signal, then for the drain to end;
/// `--exit-after` cuts in anywhere.
async fn run(opts: Options, rev: String, bound: Vec<Bound>) -> Result<ExitCode, String> {
    let pid = std::process::id();
    let state = Arc::new(State {
        pid,
        rev,
        delay: opts.delay,
        fail_status: opts.fail_status,
        ready: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
    });
    // Installed before anything can be ready, so a stop at any moment drains rather than
    // killing the process by the default action.
    let mut stop = os::StopSignal::new().map_err(|e| format!("cannot handle the stop signals: {e}"))?;

    // `ready`: false until ready; traffic accept tasks wait for true before their first accept.
    let (ready_tx, ready_rx) = watch::channel(false);
    // `drain`: false until the stop signal. On true, accept tasks drop their listeners and
    // connection tasks shut down gracefully. A watch, not a broadcast: a task that starts
    // after the stop (a connection accepted just before it) still sees it.
    let (drain_tx, drain_rx) = watch::channel(false);
    // `alive`: every accept task and connection task holds a sender clone and drops it when it
    // ends. Once `run` drops its own, `recv` returns None exactly when all of them are done:
    // the listeners are closed and every connection answered (mini-redis's shutdown_complete).
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);

    let mut traffic_addrs = Vec::new();
    for b in bound {
        let addr = b.socket.addr();
        let listener = b.socket.into_tokio().map_err(|e| format!("cannot serve {addr}: {e}"))?;
        let gate = match b.role {
            Role::Traffic => {
                say(&format!("socket pid={pid} role=traffic addr={addr}"));
                traffic_addrs.push(addr);
                Some(ready_rx.clone())
            }
            Role::Admin => {
                say(&format!("socket pid={pid} role=admin addr={addr}"));
                None
            }
        };
        tokio::spawn(accept_loop(listener, gate, drain_rx.clone(), Arc::clone(&state), alive_tx.clone()));
    }

    let crash = async {
        match opts.exit_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(crash);
    let ready_timer = tokio::time::sleep(opts.ready_after);
    tokio::pin!(ready_timer);
    let mut ready_pending = !opts.never_ready;
    loop {
        tokio::select! {
            () = &mut ready_timer, if ready_pending => {
                ready_pending = false;
                become_ready(&state, &ready_tx, &traffic_addrs)?;
            }
            () = stop.recv() => break,
            () = &mut crash => return Ok(crash_exit(pid)),
        }
    }

    say(&format!("draining pid={pid}"));
    state.draining.store(true, Ordering::Relaxed);
    drain_tx.send_replace(true);
    drop(alive_tx);
    tokio::select! {
        _ = alive_rx.recv() => {}
        () = &mut crash => return Ok(crash_exit(pid)),
    }
    say(&format!("exit pid={pid} code=0"));
    Ok(ExitCode::SUCCESS)
}

/// Opens the gate of the traffic listeners, then tells steward and the test. In that order:
/// whoever hears "ready" may stop the old process at once, and by then this one accepts.
/// (Connections arriving meanwhile wait in the socket's queue in any case.)
fn become_ready(state: &State, ready_tx: &watch::Sender<bool>, addrs: &[String]) -> Result<(), String> {
    state.ready.store(true, Ordering::Relaxed);
    ready_tx.send_replace(true);
    os::notify_ready().map_err(|e| format!("cannot send READY=1 to NOTIFY_SOCKET: {e}"))?;
    say(&format!("ready pid={} addr={}", state.pid, addrs.join(",")));
    Ok(())
}

fn crash_exit(pid: u32) -> ExitCode {
    say(&format!("exit pid={pid} code={CRASH_CODE}"));
    ExitCode::from(CRASH_CODE)
}

/// Accepts on one listener until the drain, then drops it.
///
/// - `gate`: for traffic sockets, accepting starts only once it reads true (ready). Until
///   then connections wait in the socket's queue, where on a shared socket another process
///   takes them.
/// - Dropping the listener closes this process's copy of the socket at once. A socket bound
///   by this process closes with it (its queued connections are reset by the kernel: the
///   negative control). A passed socket stays open in steward and the other instances, and
///   its queue stays theirs.
async fn accept_loop(
    listener: Listener,
    gate: Option<watch::Receiver<bool>>,
    mut drain: watch::Receiver<bool>,
    state: Arc<State>,
    alive: mpsc::Sender<()>,
) {
    if let Some(mut gate) = gate {
        tokio::select! {
            () = became_true(&mut gate) => {}
            () = became_true(&mut drain) => return,
        }
    }
    let conn_drain = drain.clone();
    loop {
        tokio::select! {
            // Checked first: once draining, no further accept, even with connections queued.
            biased;
            () = became_true(&mut drain) => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => spawn_connection(conn, &state, &conn_drain, &alive),
                Err(e) => accept_failed(e).await,
            },
        }
    }
    drop(listener);
}

/// Completes once the watched flag is true (at once if it is already). A closed channel
/// counts as true: its sender, `run`, is gone, so the process is ending anyway.
async fn became_true(flag: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is dropped here, never held across an await.
    let _ = flag.wait_for(|set| *set).await;
}

/// An accept error: a connection that died in the queue is skipped; anything else (out of
/// file descriptors, say) is reported, and accepting resumes after a pause so as not to spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    ) {
        return;
    }
    eprintln!("steward-testserver: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn spawn_connection(
    conn: Accepted,
    state: &Arc<State>,
    drain: &watch::Receiver<bool>,
    alive: &mpsc::Sender<()>,
) {
    let (state, drain, alive) = (Arc::clone(state), drain.clone(), alive.clone());
    match conn {
        Accepted::Tcp(stream) => {
            // Answers are small and written whole; do not let Nagle delay them.
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_connection(stream, state, drain, alive));
        }
        #[cfg(unix)]
        Accepted::Unix(stream) => {
            tokio::spawn(serve_connection(stream, state, drain, alive));
        }
    }
}

/// Serves one connection until the client closes it, or until the drain has finished it.
///
/// On the drain, hyper's `graceful_shutdown` closes the connection if it is idle between
/// requests; if a request is being read or answered, it finishes that one, answers it with
/// `Connection: close`, then closes. A connection no request has come on yet gets up to
/// [`FIRST_REQUEST_GRACE`] for its first one before that (see the module doc). hyper's
/// default 30 s header read timeout (it needs the timer) bounds a client that sends half a
/// request.
async fn serve_connection<I>(
    io: I,
    state: Arc<State>,
    mut drain: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Set once the first request has been read.
    let (seen_tx, mut seen) = watch::channel(false);
    let service = service_fn(move |request| {
        seen_tx.send_replace(true);
        answer(request, Arc::clone(&state))
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Errors are the clients' doing (resets, garbage) and end only their own connection.
    tokio::select! {
        _ = conn.as_mut() => {}
        () = became_true(&mut drain) => {
            // hyper's graceful shutdown closes at once a connection it has read nothing from
            // yet, although its client may have sent the request already (it waits in the
            // socket, unread): a request lost. So a connection accepted just before the
            // drain first gets its request read (or a moment to send it).
            if !*seen.borrow() {
                tokio::select! {
                    _ = conn.as_mut() => return,
                    () = became_true(&mut seen) => {}
                    () = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
                }
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// How long a connection accepted just before the drain may take to send its first request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);

async fn answer(request: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/" => {
            let _inflight = Inflight::enter(&state.inflight);
            if !state.delay.is_zero() {
                tokio::time::sleep(state.delay).await;
            }
            (StatusCode::OK, format!("pid={} rev={}", state.pid, state.rev))
        }
        "/healthz" if state.ready.load(Ordering::Relaxed) => (StatusCode::OK, "ready".to_owned()),
        "/healthz" => (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned()),
        "/inflight" => (StatusCode::OK, state.inflight.load(Ordering::Relaxed).to_string()),
        _ => (StatusCode::NOT_FOUND, "not found".to_owned()),
    };
    let (status, body) = if state.fail_status {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("failing on purpose (--fail-status), pid={}", state.pid))
    } else {
        (status, body)
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .header("x-pid", state.pid)
        .header("x-rev", &state.rev);
    if state.draining.load(Ordering::Relaxed) {
        // hyper closes the connection after a response that says so.
        response = response.header("connection", "close");
    }
    let response = response
        .body(Full::new(Bytes::from(body)))
        .expect("the status and headers are valid: the revision was checked at the start");
    Ok(response)
}

/// Counts a `GET /` as in flight for as long as it lives (a dropped connection included).
struct Inflight<'a>(&'a AtomicUsize);

impl<'a> Inflight<'a> {
    fn enter(count: &'a AtomicUsize) -> Inflight<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Inflight(count)
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Prints one line on stdout and flushes it. A closed stdout is no reason to stop serving,
/// so errors are ignored.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
