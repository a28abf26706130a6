//! The HTTP API, as the local socket serves it: raw bytes from a client, parsed by hyper
//! and answered by steward's router (with its audit layer) in front of a real supervisor.
//!
//! The supervisor runs two programs that are never started by themselves and whose
//! command does not exist, so that `start` and `restart` fail fast and nothing runs. A
//! `shutdown` ends it; the next input gets a new one. The runtime's clock is paused and
//! jumps ahead whenever everything waits, so a request that follows a stream forever (or
//! an action that waits for a state) ends as soon as nothing more can happen.
//!
//! What must hold: no panic (hyper polls the router on this thread, so a panic in a
//! handler is a crash here); the connection ends or waits quietly; every answer is an
//! HTTP/1 response (1.0 to a 1.0 request), never a 500.

use std::cell::RefCell;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use steward::api;
use steward::protocol::VersionReply;
use steward::supervise;
use steward_core::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::{JoinHandle, LocalSet};

const CONFIG: &str = r#"
[supervisor]
state_dir = "state"
log_dir = "logs"

[programs.web]
command = ["/nonexistent/steward-fuzz/web", "--port", "${PORT:-8080}"]
autostart = false
restart = "never"

[programs.worker]
command = ["/nonexistent/steward-fuzz/worker"]
autostart = false
restart = "on-failure"
max_restarts = 1
depends_on = ["web"]
"#;

/// How long (on the paused clock) one input may keep its connection open.
const PER_INPUT: Duration = Duration::from_secs(600);

struct Harness {
    runtime: tokio::runtime::Runtime,
    local: LocalSet,
    config: Config,
    /// The router of the supervisor now running, and its task.
    running: Option<(axum::Router, JoinHandle<()>)>,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

pub fn check(data: &[u8]) {
    HARNESS.with(|h| {
        let mut h = h.borrow_mut();
        h.get_or_insert_with(Harness::new).serve(data);
    });
}

impl Harness {
    fn new() -> Harness {
        // One folder per fuzzing process, in TMPDIR (scripts/fuzz.sh points it at a folder
        // it removes afterwards).
        let dir = std::env::temp_dir().join(format!("steward-fuzz-api-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz target's folder in TMPDIR");
        let path = dir.join("steward.toml");
        std::fs::write(&path, CONFIG).expect("cannot write the fuzz target's config");
        let config = steward_core::config::load(&path).expect("the fuzz target's config is valid");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a tokio runtime");
        Harness { runtime, local: LocalSet::new(), config, running: None }
    }

    /// The router of a running supervisor, started now if there is none (or it shut down).
    fn router(&mut self) -> axum::Router {
        if let Some((router, task)) = &self.running {
            if !task.is_finished() {
                return router.clone();
            }
        }
        let (control, control_rx) = supervise::control::channel();
        let config = self.config.clone();
        let task = self.local.spawn_local(async move {
            supervise::run(config, control_rx, Box::new(()), None, std::future::pending())
                .await
                .expect("the supervisor starts");
        });
        let info = VersionReply {
            version: "fuzz".into(),
            pid: std::process::id(),
            config: self.config.source.display().to_string(),
            service: None,
        };
        let audit = api::audit::AuditLog::new(self.config.audit_log());
        let state = api::ApiState {
            deployer: steward::deploy::Deployer::new(control.clone()),
            usage: api::usage::UsageHub::new(control.clone()),
            // The local socket's API, as the daemon serves it without a dashboard.
            tokens: None,
            sinks: Default::default(),
            control,
        };
        let router = api::audit::audited(api::router(state, info), audit, "local");
        self.running = Some((router.clone(), task));
        router
    }

    fn serve(&mut self, data: &[u8]) {
        let router = self.router();
        let reply = self.local.block_on(&self.runtime, async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let connection = hyper::server::conn::http1::Builder::new()
                // A client that has sent its request may close its side and still wait for
                // the answer.
                .half_close(true)
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(router));
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let send = async {
                // The server may close first (a request it refuses): then the rest is moot.
                let _ = to_server.write_all(data).await;
                let _ = to_server.shutdown().await;
            };
            let mut reply = Vec::new();
            let receive = from_server.read_to_end(&mut reply);
            let talk = async { tokio::join!(connection, send, receive) };
            // Following a stream never ends by itself: the paused clock gets here at once.
            let _ = tokio::time::timeout(PER_INPUT, talk).await;
            reply
        });
        check_reply(&reply);
    }
}

fn check_reply(reply: &[u8]) {
    if reply.is_empty() {
        // Nothing complete was asked, or the stream is still open with nothing in it.
        return;
    }
    let head = &reply[..reply.len().min(12)];
    // hyper answers an HTTP/1.0 request in HTTP/1.0.
    assert!(
        head.starts_with(b"HTTP/1.1 ") || head.starts_with(b"HTTP/1.0 "),
        "not an HTTP/1 response: {:?}",
        String::from_utf8_lossy(head)
    );
    let status = &reply[9..12.min(reply.len())];
    assert!(status != b"500", "500: {}", String::from_utf8_lossy(&reply[..reply.len().min(2000)]));
}
