//! An HTTP service on tokio and axum, through the async form (`run_async`): it serves a
//! greeting, re-reads it on Reload, and on Stop finishes the requests in flight before it
//! ends. Run it from a console (Ctrl+C stops it, `kill -HUP` reloads it), or install it as a
//! service.
//!
//! ```text
//! cargo run -p steward-service --features tokio --example http -- \
//!     [--listen ADDR] [--greeting-file FILE] [--log FILE]
//! ```
//! - `GET /` answers the greeting: the text of `--greeting-file`, read at the start and again
//!   on each Reload (SIGHUP at a console, ParamChange under the SCM, `systemctl reload`). A
//!   file that cannot be read rejects the reload and keeps the old greeting.
//! - `GET /slow?ms=N` answers after N ms: stop the service meanwhile to see it stop accepting
//!   and still finish the request (axum's graceful shutdown).
//!
//! `--listen` defaults to `127.0.0.1:0`, a free port; the line `listening on ADDR` says which.
//! What it does goes to stdout, one line each, and also to `--log` (a Windows service has no
//! console).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use steward_service::{BoxError, Context, Control, RunOptions};
use tokio::net::{TcpListener, TcpStream};

/// The greeting without `--greeting-file`.
const DEFAULT_GREETING: &str = "Hello from steward-service.\n";

struct Args {
    listen: String,
    greeting_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| args.iter().position(|a| a == name).and_then(|at| args.get(at + 1)).cloned();
    let say = Say { log: option("--log").map(PathBuf::from).map(Arc::from) };
    let args = Args {
        listen: option("--listen").unwrap_or_else(|| "127.0.0.1:0".into()),
        greeting_file: option("--greeting-file").map(PathBuf::from),
    };

    steward_service::run_async(RunOptions::new("http"), move |ctx| async move {
        let result = serve(ctx, args, say.clone()).await;
        if let Err(e) = &result {
            say.line(&format!("failed: {e}"));
        }
        result
    })
}

async fn serve(ctx: Context, args: Args, say: Say) -> Result<(), BoxError> {
    say.line(&format!("starting ({:?}), pid {}", ctx.mode(), std::process::id()));
    let greeting = match &args.greeting_file {
        Some(path) => read_greeting(path).await?,
        None => DEFAULT_GREETING.to_owned(),
    };
    let greeting = Arc::new(RwLock::new(greeting));
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    say.line(&format!("listening on {}", listener.local_addr()?));
    let app = Router::new()
        .route("/", get(greet))
        .route("/slow", get(slow))
        .with_state(App { greeting: greeting.clone(), say: say.clone() });
    // On its own task, so that requests run on the runtime's workers while this one waits for
    // controls. Once the stop is asked, it closes the listener and waits for the requests in
    // flight (answered with `Connection: close`).
    let listener =
        Announced { listener, _closed: Said { say: say.clone(), line: "not accepting connections" } };
    let server = tokio::spawn(
        axum::serve(listener, app).with_graceful_shutdown(ctx.stopping().wait_async()).into_future(),
    );

    let mut controls = ctx.controls_async();
    ctx.ready();
    say.line("ready");
    while let Some(request) = controls.next().await {
        match request.control() {
            Control::Stop(reason) => {
                say.line(&format!("stopping ({reason:?})"));
                break;
            }
            Control::Reload => {
                let Some(path) = &args.greeting_file else {
                    say.line("reloaded");
                    request.ack();
                    continue;
                };
                match read_greeting(path).await {
                    Ok(text) => {
                        *greeting.write().unwrap_or_else(PoisonError::into_inner) = text;
                        say.line("reloaded");
                        request.ack();
                    }
                    Err(e) => {
                        say.line(&format!("reload failed: {e}"));
                        request.reject();
                    }
                }
            }
            _ => request.ack(),
        }
    }
    server.await??;
    say.line("drained");
    Ok(())
}

#[derive(Clone)]
struct App {
    greeting: Arc<RwLock<String>>,
    say: Say,
}

async fn greet(State(app): State<App>) -> String {
    app.greeting.read().unwrap_or_else(PoisonError::into_inner).clone()
}

async fn slow(State(app): State<App>, Query(query): Query<HashMap<String, u64>>) -> String {
    let ms = query.get("ms").copied().unwrap_or(1000);
    app.say.line(&format!("slow request for {ms} ms"));
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

async fn read_greeting(path: &Path) -> std::io::Result<String> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

/// The listener, saying when it is closed: from then on, new connections are refused.
struct Announced {
    listener: TcpListener,
    /// Fields are dropped in order: the line comes after the socket is closed.
    _closed: Said,
}

impl axum::serve::Listener for Announced {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        // axum's own accept loop for a TcpListener, which rides out errors such as EMFILE.
        axum::serve::Listener::accept(&mut self.listener).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A line said when dropped.
struct Said {
    say: Say,
    line: &'static str,
}

impl Drop for Said {
    fn drop(&mut self) {
        self.say.line(self.line);
    }
}

/// One line on stdout, at once (a pipe would hold it back), and in the log file if any.
#[derive(Clone)]
struct Say {
    log: Option<Arc<Path>>,
}

impl Say {
    fn line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        if let Some(path) = &self.log {
            if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(file, "{line}");
            }
        }
    }
}
