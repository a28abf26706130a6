//! The audit log: one JSON line per control action (start, stop, restart, reload, shutdown),
//! from either transport, saying who asked, for what, when, and how it ended. Reads (status,
//! logs, events) are not recorded.
//!
//! ```text
//! {"time":"2025-06-01T12:00:00.123Z","who":"deploy-bot","transport":"https","peer":"10.0.0.7:50412","action":"stop","targets":["web"],"result":"ok","status":200,"elapsed_ms":412}
//! ```
//!
//! `result` is `ok`, `failed` (the request was carried out but a program did not reach its
//! state, or the request was invalid: see `error`), `denied` (401/403, written by
//! [`super::auth`]), `abandoned` (the caller hung up before the answer; the action may still
//! have been carried out) or `throttled`: one line, with `"action":"authenticate"`, for all the
//! requests of a peer refused with 429 after too many failed authentications (`refused` says
//! how many), written when the peer is let through again. The token itself is never written,
//! only the name of its entry.
//!
//! Lines are appended (`O_APPEND`) with one `write` each, so they never interleave. Control
//! actions are rare, so the append happens right on the request's task; the file is opened on
//! the first action and kept open. It is rotated as program logs are (`crate::logs::LogFile`):
//! at 10 MB, keeping the 5 newest rotated files ([`SPEC`]), so it never takes more than
//! about 60 MB. Refused requests cannot grow it fast: failed authentications are throttled
//! per peer, and the requests refused for that are summed up in one line ([`super::auth`]).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use steward_core::config::LogSpec;

use super::auth::Caller;
use super::ApiError;
use crate::logs::LogFile;
use crate::protocol::{ActionReply, ActionRequest, DeployReply, ErrorReply};

/// How the audit log is rotated.
pub const SPEC: LogSpec = LogSpec {
    max_size: 10_000_000,
    rotate_every: None,
    keep: 5,
    compress: false,
    format: steward_core::config::LogFormat::Plain,
    multiline: None,
};

/// A control request body (or its reply) larger than this is refused: a real one is a few
/// hundred bytes.
const MAX_BODY: usize = 1 << 20;

/// One line of the audit log. A stable format: fields may be added, never renamed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// When the request arrived, RFC 3339 with milliseconds.
    pub time: String,
    /// The name of the caller's `[[api.tokens]]` entry, `local` for the local socket, or
    /// `unauthenticated` for a remote request without a valid token.
    pub who: String,
    /// `local`, `http` or `https`.
    pub transport: String,
    /// The caller's address (remote transports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// start | stop | restart | reload | shutdown
    pub action: String,
    /// The programs named (start, stop, restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `--all` was given instead of names.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// ok | failed | denied | abandoned
    pub result: String,
    /// The HTTP status of the answer (0 when abandoned).
    pub status: u16,
    /// What went wrong, when `result` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the action took, waiting for the programs' states included.
    pub elapsed_ms: u64,
    /// How many requests a `throttled` line stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<u64>,
}

impl Entry {
    /// An entry for `action` arriving now; the result is filled in when it ends.
    pub fn begin(who: &str, transport: &str, peer: Option<SocketAddr>, action: &str) -> Entry {
        Entry {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            who: who.to_owned(),
            transport: transport.to_owned(),
            peer: peer.map(|p| p.to_string()),
            action: action.to_owned(),
            targets: Vec::new(),
            all: false,
            result: "abandoned".into(),
            status: 0,
            error: Some("the caller went away before the answer".into()),
            elapsed_ms: 0,
            refused: None,
        }
    }

    /// The summary of requests refused with 429 (`action` is `authenticate`): how many there
    /// were goes in `error`.
    pub fn throttled(mut self, refused: u64, why: &str) -> Entry {
        self.result = "throttled".into();
        self.status = 429;
        self.refused = Some(refused);
        self.error = Some(why.to_owned());
        self
    }

    /// A refused request (401, 403).
    pub fn denied(mut self, status: StatusCode, why: &str) -> Entry {
        self.result = "denied".into();
        self.status = status.as_u16();
        self.error = Some(why.to_owned());
        self
    }
}

/// The control action a request is, if it is one: `POST /v1/<action>`.
pub fn control_action(method: &Method, path: &str) -> Option<&'static str> {
    if method != Method::POST {
        return None;
    }
    ["start", "stop", "restart", "reload", "scale", "deploy", "rollback", "shutdown"]
        .into_iter()
        .find(|a| path.strip_prefix("/v1/") == Some(a))
}

/// Where the audit lines go. Cheap to clone; every clone appends to the same file.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    spec: LogSpec,
    /// Opened on the first line (or by [`AuditLog::open_now`]) and kept open. The lock makes
    /// each line one `write` with nothing between; appends are atomic on a local file anyway.
    file: Mutex<Option<LogFile>>,
}

impl AuditLog {
    /// An audit log at `path`; nothing is created until the first line.
    pub fn new(path: PathBuf) -> AuditLog {
        Self::with_spec(path, SPEC)
    }

    /// An audit log rotated by `spec` instead of [`SPEC`].
    pub fn with_spec(path: PathBuf, spec: LogSpec) -> AuditLog {
        AuditLog { inner: Arc::new(Inner { path, spec, file: Mutex::new(None) }) }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Opens (and creates) the file now, so a path that cannot work fails at startup rather
    /// than on the first action.
    pub fn open_now(&self) -> io::Result<()> {
        let mut file = self.inner.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            *file = Some(LogFile::open(self.inner.path.clone(), self.inner.spec.clone())?);
        }
        Ok(())
    }

    /// Appends `entry` as one line. A failure is logged, never passed to the caller: the
    /// action has happened by now either way.
    pub fn record(&self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).expect("audit entries serialize");
        line.push(b'\n');
        let mut file = self.inner.file.lock().unwrap_or_else(|e| e.into_inner());
        // A write that fails once the file is open is reported by the file itself (and
        // retried), as for program logs.
        let result = match &mut *file {
            Some(f) => f.write_lines(&line, SystemTime::now()),
            None => LogFile::open(self.inner.path.clone(), self.inner.spec.clone())
                .and_then(|f| file.insert(f).write_lines(&line, SystemTime::now())),
        };
        if let Err(e) = result {
            tracing::error!(
                event = "audit",
                "cannot write the audit log {}: {e}; the {} by {} was not recorded",
                self.inner.path.display(),
                entry.action,
                entry.who
            );
        }
    }
}

/// `router` with every control action recorded in `log`. `transport` names the way in
/// (`local`, `http`, `https`); the caller is the [`Caller`] that [`super::auth`] put on the
/// request, or `local` when there is none.
pub fn audited(router: Router, log: AuditLog, transport: &'static str) -> Router {
    router.layer(axum::middleware::from_fn_with_state(Recorder { log, transport }, record))
}

#[derive(Clone)]
struct Recorder {
    log: AuditLog,
    transport: &'static str,
}

/// Writes the entry when dropped: with the result once it is known, or as `abandoned` when
/// the request's task is dropped first (the client hung up while the action was waiting).
struct Pending {
    log: AuditLog,
    entry: Entry,
    started: Instant,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.entry.elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.log.record(&self.entry);
    }
}

async fn record(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let Some(action) = control_action(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let (who, peer) = match req.extensions().get::<Caller>() {
        Some(c) => (c.name.as_str(), c.peer),
        None => ("local", None),
    };
    let mut pending = Pending {
        entry: Entry::begin(who, rec.transport, peer, action),
        log: rec.log.clone(),
        started: Instant::now(),
    };
    // The body names the targets; read it here and hand the same bytes on.
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            set_result(&mut pending.entry, status, Some(format!("unreadable request body: {e}")));
            return ApiError::new(status, "the request body is too large or broken").into_response();
        }
    };
    if let Ok(r) = serde_json::from_slice::<ActionRequest>(&bytes) {
        pending.entry.targets = r.names;
        pending.entry.all = r.all;
    } else if let Ok(r) = serde_json::from_slice::<Named>(&bytes) {
        // scale names `name`; deploy and rollback name `program`.
        pending.entry.targets = r.name.or(r.program).into_iter().collect();
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;

    // The reply says how it went; read it and hand the same bytes on.
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let error = if parts.status.is_success() {
        match serde_json::from_slice::<ActionReply>(&bytes) {
            Ok(r) => {
                let failed: Vec<String> = r.results.into_iter().filter_map(|r| r.error).collect();
                (!failed.is_empty()).then(|| failed.join("; "))
            }
            // A deploy that ran and was rolled back.
            Err(_) => serde_json::from_slice::<DeployReply>(&bytes).ok().filter(|r| !r.ok).map(|r| r.message),
        }
    } else {
        Some(
            serde_json::from_slice::<ErrorReply>(&bytes)
                .map(|r| r.error)
                .unwrap_or_else(|_| format!("HTTP {}", parts.status)),
        )
    };
    set_result(&mut pending.entry, parts.status, error);
    Response::from_parts(parts, Body::from(bytes))
}

/// The one program a scale, deploy or rollback request names.
#[derive(serde::Deserialize)]
struct Named {
    name: Option<String>,
    program: Option<String>,
}

fn set_result(entry: &mut Entry, status: StatusCode, error: Option<String>) {
    entry.result = if error.is_none() { "ok" } else { "failed" }.into();
    entry.status = status.as_u16();
    entry.error = error;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_control_posts_are_actions() {
        assert_eq!(control_action(&Method::POST, "/v1/stop"), Some("stop"));
        assert_eq!(control_action(&Method::POST, "/v1/shutdown"), Some("shutdown"));
        assert_eq!(control_action(&Method::POST, "/v1/reload"), Some("reload"));
        assert_eq!(control_action(&Method::GET, "/v1/stop"), None);
        assert_eq!(control_action(&Method::GET, "/v1/status"), None);
        assert_eq!(control_action(&Method::POST, "/v1/stopped"), None);
        assert_eq!(control_action(&Method::POST, "/stop"), None);
    }

    #[test]
    fn lines_are_appended_as_json_and_a_dropped_request_is_recorded_as_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.log");
        let log = AuditLog::new(path.clone());
        assert!(!path.exists(), "nothing is created before the first line");
        let mut ok = Entry::begin("ci", "https", Some("127.0.0.1:9".parse().unwrap()), "stop");
        ok.targets = vec!["web".into()];
        set_result(&mut ok, StatusCode::OK, None);
        log.record(&ok);
        drop(Pending {
            log: log.clone(),
            entry: Entry::begin("local", "local", None, "restart"),
            started: Instant::now(),
        });

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Entry> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], ok);
        assert!(text.lines().next().unwrap().contains(r#""who":"ci","transport":"https","peer":"127.0.0.1:9","action":"stop","targets":["web"],"result":"ok","status":200"#), "{text}");
        assert_eq!(
            (lines[1].who.as_str(), lines[1].result.as_str(), lines[1].status),
            ("local", "abandoned", 0)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn the_log_is_rotated_and_every_live_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let spec =
            LogSpec { max_size: 2_000, rotate_every: None, keep: 2, compress: false, ..Default::default() };
        let log = AuditLog::with_spec(path.clone(), spec);
        for i in 0..200 {
            let mut entry = Entry::begin("unauthenticated", "https", None, "stop");
            entry.targets = vec![format!("web-{i}")];
            log.record(&entry.denied(StatusCode::UNAUTHORIZED, "no token"));
        }
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert_eq!(files.len(), 3, "the live file and 2 rotated ones: {files:?}");
        for file in &files {
            let len = std::fs::metadata(file).unwrap().len();
            assert!(len <= 2_000, "{} is {len} bytes", file.display());
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.lines().all(|l| serde_json::from_str::<Entry>(l).is_ok()), "{text}");
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.contains("web-199"), "{last}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
