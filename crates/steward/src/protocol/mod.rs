//! The JSON of the API (`/v1/...`): the wire types the daemon's API serves and the CLI reads.
//! A leaf: it imports nothing of the crate, so both sides share it without importing each
//! other. This is the stable `--json` output: fields may be added, never renamed or removed
//! (docs/api.md).

use serde::{Deserialize, Serialize};

mod table;
pub use table::{status_table, uptime};

/// `GET /v1/status`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusReply {
    /// Every process: a program, or one instance (`web:2`) of a program with `instances`.
    pub programs: Vec<ProgramInfo>,
    /// Programs with `instances` or `sockets`, summed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupInfo>,
    /// `[[ship]]` sinks, in config order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkInfo>,
}

/// A `[[ship]]` sink: whether it delivers, and what it has done since steward started.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SinkInfo {
    pub name: String,
    /// loki, otlp, elasticsearch or syslog.
    pub kind: String,
    /// Its last request was delivered (or none failed yet).
    pub up: bool,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sent_lines: u64,
    pub sent_bytes: u64,
    /// Requests sent again.
    pub retries: u64,
    /// Lines refused for good (in the sink's dead-letter file).
    pub dropped_refused: u64,
    /// Lines deleted before they were sent (past `max_unshipped`, or by hand).
    pub dropped_retention: u64,
    /// OTLP: records the collector said it rejected (`partial_success`).
    pub rejected_by_receiver: u64,
    /// How long the oldest unacknowledged line has waited (0 when caught up).
    pub lag_seconds: f64,
    /// Bytes of the log files not acknowledged yet (in `/metrics`; not in `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

/// A program with `instances` or `sockets`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupInfo {
    pub name: String,
    /// `instances` now, or null when the program has no `instances` key.
    pub instances: Option<u32>,
    /// Its processes in state running.
    pub running: u32,
    /// Its processes.
    pub total: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sockets: Vec<SocketInfo>,
    /// Where its rolling restart is, while one runs: "rolling, 2/4 replaced".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
}

/// A socket steward holds for a program.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SocketInfo {
    pub name: String,
    /// `tcp://127.0.0.1:8080` (the port bound, when the config said 0) or `unix:///path`.
    pub listen: String,
}

/// One program as `status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProgramInfo {
    pub name: String,
    /// For an instance (`web:2`): its program (`web`) and number (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// stopped | starting | running | backoff | stopping | exited | fatal
    pub state: String,
    pub pid: Option<u32>,
    /// RFC 3339, when the current process was spawned.
    pub started_at: Option<String>,
    pub uptime_secs: Option<f64>,
    /// Automatic restarts since steward started.
    pub restarts: u64,
    pub last_exit: Option<ExitInfo>,
    /// Why the last spawn failed, until the next successful one.
    pub last_error: Option<String>,
    /// unknown | healthy | unhealthy, or null when the program has no health check.
    pub health: Option<String>,
    /// Programs this one waits for before it can start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// The release version it runs, for a program with `[release]` once one is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How a process ended: exactly one of the two is set.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl From<steward_core::fsm::ExitStatus> for ExitInfo {
    fn from(s: steward_core::fsm::ExitStatus) -> Self {
        use steward_core::fsm::ExitStatus::*;
        match s {
            Code(c) => ExitInfo { code: Some(c), signal: None },
            Signal(s) => ExitInfo { code: None, signal: Some(s) },
        }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "code {c}"),
            (None, Some(s)) => write!(f, "signal {s}"),
            (None, None) => f.write_str("-"),
        }
    }
}

/// `POST /v1/start`, `/v1/stop`, `/v1/restart`
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ActionRequest {
    #[serde(default)]
    pub names: Vec<String>,
    /// Every program (names must then be empty).
    #[serde(default)]
    pub all: bool,
    /// Return at once instead of waiting for the target state.
    #[serde(default)]
    pub no_wait: bool,
    /// How long to wait for the target state, e.g. "30s" (default: each program's
    /// stop_timeout plus 30 s).
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ActionReply {
    pub results: Vec<ActionResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ActionResult {
    pub name: String,
    pub ok: bool,
    /// The state reached (or the state it was in when the wait gave up).
    pub state: String,
    pub pid: Option<u32>,
    pub error: Option<String>,
}

/// `POST /v1/scale`: exactly one of `instances` and `by`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ScaleRequest {
    pub name: String,
    /// The new count.
    #[serde(default)]
    pub instances: Option<u32>,
    /// Or the change: +2, -1.
    #[serde(default)]
    pub by: Option<i64>,
    /// Return at once instead of waiting for the new instances to run (and the removed
    /// ones to stop).
    #[serde(default)]
    pub no_wait: bool,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScaleReply {
    pub name: String,
    pub from: u32,
    pub to: u32,
    /// The instances started (state running) or stopped (stopped) by the scale.
    pub results: Vec<ActionResult>,
}

/// `POST /v1/deploy`: one of `version`, `latest` or `file`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeployRequest {
    pub program: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub latest: bool,
    /// A signed archive on steward's machine (`ARCHIVE.minisig` beside it), by absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default)]
    pub allow_downgrade: bool,
}

/// `POST /v1/rollback`
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RollbackRequest {
    pub program: String,
}

/// The answer to a deploy or a rollback that ran: `ok` false when the new version failed its
/// gate (and steward went back to the one before: `running`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeployReply {
    pub program: String,
    pub ok: bool,
    /// The version the program runs now.
    pub running: Option<String>,
    /// The version asked for.
    pub wanted: Option<String>,
    pub message: String,
    /// (process, pid) after it.
    #[serde(default)]
    pub processes: Vec<(String, Option<u32>)>,
}

/// `GET /v1/releases/{program}`: what is installed and what the history says.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleasesReply {
    pub program: String,
    /// The version the processes run now.
    pub running: Option<String>,
    pub current: Option<String>,
    pub previous: Option<String>,
    /// The newest version ever deployed: older ones need --allow-downgrade.
    pub floor: Option<String>,
    pub quarantined: Vec<String>,
    /// Every version unpacked on disk, oldest first.
    pub installed: Vec<String>,
    pub keep: u32,
    /// The release source, if any (a URL's query is left out).
    pub source: Option<String>,
}

/// `POST /v1/reload`
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReloadReply {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Settings that changed but only take effect when steward restarts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_restart: Vec<String>,
}

/// One line of `GET /v1/events` (newline-delimited JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// RFC 3339 with milliseconds.
    pub time: String,
    pub program: String,
    /// "state"; "health" (from/to: unknown, healthy, unhealthy); "limit" (memory limit);
    /// "alert" (to: firing, resolved); "log" (a log file could not be opened: that run's
    /// output on `stream` is discarded); "rollout" (to: the step); "deploy" (to: the step,
    /// with `version`). See docs/metrics.md.
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub message: String,
    pub pid: Option<u32>,
    pub exit: Option<ExitInfo>,
    /// "stdout" or "stderr", for a "log" event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The release version a "deploy" event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Every error reply: `{"error": "...", "details": "..."}` with a 4xx/5xx status.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorReply {
    pub error: String,
    /// For a rejected reload: the config diagnostics, as `steward check` prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// `GET /v1/version`: also the liveness probe the CLI uses.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VersionReply {
    pub version: String,
    pub pid: u32,
    pub config: String,
    /// The service manager that started this steward, when one did (`steward self-update`
    /// restarts it through that manager); absent for a `steward run` started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
}

/// A service manager's service: `{"manager": "systemd"|"launchd"|"scm", "name": ...}`, and
/// `"user": true` for a systemd user unit or a launchd agent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceRef {
    pub manager: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}
