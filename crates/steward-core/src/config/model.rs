//! The resolved config: what the parser produces once every value has been checked,
//! interpolated, given its default and had its paths made absolute.
//!
//! Equality on these types is what hot reload uses to decide whether a program's
//! definition changed, so every field that affects how a program runs is part of it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::release::{Version, RELEASE_MARK};

/// A whole config file, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Absolute path of the file this came from (or a label such as `<demo>` for embedded text).
    pub source: PathBuf,
    pub supervisor: SupervisorSettings,
    /// Programs by name. A `BTreeMap` so that every listing is in a stable order.
    /// Shared: each program's task holds the same spec (a copy each cost a KB a program).
    pub programs: BTreeMap<String, std::sync::Arc<ProgramSpec>>,
    /// `[api]`: the remote API, off (`None`) unless the table is there.
    pub api: Option<ApiSettings>,
    /// `[dashboard]`: the web dashboard on a listener of its own, off (`None`) unless the
    /// table is there. Its tokens are `[api]`'s; the remote API serves it under `/ui/` too.
    pub dashboard: Option<DashboardSettings>,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[[alerts]]`, in file order; names are unique.
    pub alerts: Vec<AlertSpec>,
    /// `[[ship]]`, in file order; names are unique. Empty: nothing is shipped, and shipping
    /// costs nothing.
    pub ship: Vec<ShipSpec>,
    /// Programs with `instances` or `sockets`, by program name: what their processes share.
    /// Their processes are in `programs` as `NAME:0`.. (or `NAME` without `instances`).
    pub groups: BTreeMap<String, GroupSpec>,
    /// `[programs.NAME.release]`, by program name (without an instance number): where the
    /// program's signed releases come from. Kept out of [`ProgramSpec`] so that changing it
    /// restarts no process on reload.
    pub releases: BTreeMap<String, ReleaseSpec>,
    /// `[self_update]`: where steward's own releases come from (`steward self-update`).
    pub self_update: Option<SelfUpdateSpec>,
    /// The text the config was parsed from: scaling a program up parses its table again
    /// for the new instance numbers, from the same text (not the file, which may have
    /// changed since).
    pub text: SourceText,
    /// What the parser warns about (a valid config that likely does not do what was meant),
    /// sorted by position: `steward check` prints them, `run` and a reload log them.
    pub warnings: super::Diagnostics,
}

/// The text of a config file. Never shown (it may hold secrets), and not part of what a
/// config means: two configs that differ only in how they are written are equal.
#[derive(Clone, Default)]
pub struct SourceText(pub std::sync::Arc<str>);

impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl PartialEq for SourceText {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SourceText {}

impl Config {
    /// Where control actions are recorded: `[api] audit_log`, else `<state_dir>/audit.log`
    /// (the local socket's actions are recorded too, with or without `[api]`).
    pub fn audit_log(&self) -> PathBuf {
        match &self.api {
            Some(api) => api.audit_log.clone(),
            None => self.supervisor.state_dir.join(defaults::AUDIT_LOG),
        }
    }
}

/// `[supervisor]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorSettings {
    /// Absolute. Default: `.steward` beside the config file.
    pub state_dir: PathBuf,
    /// Absolute. Default: `<state_dir>/logs`.
    pub log_dir: PathBuf,
    /// `watchdog = "30s"`: under systemd, the unit gets `WatchdogSec` and steward pings it.
    pub watchdog: Option<Duration>,
    /// `watch_config = true`: reload when the config file changes on disk (default false).
    pub watch_config: bool,
}

/// `[api]`: the same API as the local socket, over TCP (TLS unless on loopback), for
/// callers with a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// `listen = "ADDR:PORT"`. Without `tls`, always a loopback address. `None` only with
    /// `[dashboard]`: then `[api]` holds the dashboard's tokens and no remote API listens.
    pub listen: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
    /// Absolute. Default: `<state_dir>/audit.log`.
    pub audit_log: PathBuf,
    /// Never empty: every remote request needs a token.
    pub tokens: Vec<ApiToken>,
}

/// `[dashboard]`: the web dashboard's own plain-HTTP listener and its sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardSettings {
    /// `listen = "ADDR:PORT"`, always a loopback address. `None`: the dashboard is served
    /// only under `/ui/` on the remote API's listener.
    pub listen: Option<SocketAddr>,
    /// A session unused this long must sign in again (default 12 h).
    pub session_timeout: Duration,
}

/// `tls_cert` and `tls_key`: PEM files, absolute paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[[api.tokens]]`: who may call the remote API, and what they may do. Only the SHA-256
/// of the token is kept; the token itself never enters the model.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Names the caller in the audit log and in messages.
    pub name: String,
    pub role: ApiRole,
    pub sha256: [u8; 32],
}

// Hand-written: the hash stands for a secret, so it stays out of log lines too.
impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("sha256", &"<redacted>")
            .finish()
    }
}

/// `role = "viewer" | "operator" | "admin"`, each allowed what the one before may do, and more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiRole {
    /// Reads: status, logs, events, metrics, version.
    Viewer,
    /// Also start, stop, restart and reload.
    Operator,
    /// Also shutdown.
    Admin,
}

impl ApiRole {
    pub const NAMES: &'static [&'static str] = &["viewer", "operator", "admin"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

/// `[programs.NAME]`, or one instance of it (`NAME:3`) when it has `instances`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// `web`, or `web:3` for an instance.
    pub name: String,
    /// The instance number (slot) of a program with `instances`: 0..instances-1.
    pub instance: Option<u32>,
    /// argv; never empty. `command[0]` is looked up on PATH when it has no path separator.
    pub command: Vec<String>,
    /// Absolute working directory. Default: the config file's folder.
    pub cwd: PathBuf,
    /// Variables set on top of the inherited environment: `env_file` first, then `env`
    /// (so `env` wins).
    pub env: BTreeMap<String, String>,
    pub autostart: bool,
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    /// First delay before a restart (default 100ms), doubling up to `restart_max_delay`.
    pub restart_delay: Duration,
    pub restart_max_delay: Duration,
    /// The backoff delay resets once a run has lasted this long (default 10s).
    pub stable_after: Duration,
    /// Retry budget: at most this many restarts within `restart_window`, else Fatal.
    pub max_restarts: u32,
    pub restart_window: Duration,
    pub stop_signal: StopSignal,
    /// After this, the whole process tree is killed.
    pub stop_timeout: Duration,
    pub depends_on: Vec<String>,
    /// When the program counts as running: at once, or after it sends `READY=1`.
    pub ready: Readiness,
    pub log: LogSpec,
    /// `[programs.NAME.health]`: a probe that says whether the program works.
    /// Boxed: most programs have none, and the spec of each would be 128 bytes larger.
    pub health: Option<Box<HealthSpec>>,
    /// `max_memory`: restart when the tree's resident memory stays above this for
    /// `memory_grace`.
    pub max_memory: Option<u64>,
    pub memory_grace: Duration,
    /// `hard_memory_limit = true`: also make `max_memory` the Job Object's memory limit
    /// (Windows only; the OS then fails allocations above it).
    pub hard_memory_limit: bool,
    /// The release it runs, for a program with `[release]`: `None` as parsed (its strings
    /// still hold `%{release}`), set by [`ProgramSpec::with_release`].
    pub release: Option<Version>,
}

// Hand-written so that secrets in `env` never reach a log line.
impl fmt::Debug for ProgramSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env.keys().collect();
        f.debug_struct("ProgramSpec")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("command", &self.command)
            .field("cwd", &self.cwd)
            .field("env(keys only)", &env_keys)
            .field("autostart", &self.autostart)
            .field("restart", &self.restart)
            .field("success_exit_codes", &self.success_exit_codes)
            .field("restart_delay", &self.restart_delay)
            .field("restart_max_delay", &self.restart_max_delay)
            .field("stable_after", &self.stable_after)
            .field("max_restarts", &self.max_restarts)
            .field("restart_window", &self.restart_window)
            .field("stop_signal", &self.stop_signal)
            .field("stop_timeout", &self.stop_timeout)
            .field("depends_on", &self.depends_on)
            .field("ready", &self.ready)
            .field("log", &self.log)
            .field("health", &self.health)
            .field("max_memory", &self.max_memory)
            .field("memory_grace", &self.memory_grace)
            .field("hard_memory_limit", &self.hard_memory_limit)
            .field("release", &self.release)
            .finish()
    }
}

impl ProgramSpec {
    /// The program this is an instance of (`web` for `web:3`), or its own name.
    pub fn group(&self) -> &str {
        group_of(&self.name)
    }

    /// The name as a file name: `web.3` for `web:3` (`:` is not allowed in Windows file
    /// names).
    pub fn file_stem(&self) -> String {
        self.name.replace(':', ".")
    }

    /// Whether the command still holds `%{release}`: for a program with `[release]`
    /// ([`Config::releases`]), its release must be resolved ([`ProgramSpec::with_release`])
    /// before it can start. (A program without one may hold the text as a literal,
    /// written `%%{release}`.)
    pub fn needs_release(&self) -> bool {
        self.command.iter().any(|word| word.contains(RELEASE_MARK))
    }

    /// This spec running `version`, unpacked in `dir` (absolute): `%{release}` replaced by
    /// `dir` in the command, `cwd`, env values and the health check, and
    /// `STEWARD_RELEASE_VERSION` and `STEWARD_RELEASE_DIR` set.
    pub fn with_release(&self, dir: &Path, version: &Version) -> ProgramSpec {
        let dir_text = dir.to_string_lossy();
        let fill = |s: &mut String| {
            if s.contains(RELEASE_MARK) {
                *s = s.replace(RELEASE_MARK, &dir_text);
            }
        };
        let mut spec = self.clone();
        spec.command.iter_mut().for_each(fill);
        // The parser keeps a `cwd` that starts with `%{release}` as written (not joined to the
        // config's folder), so the result is absolute like every other `cwd`.
        if let Some(cwd) = spec.cwd.to_str().filter(|c| c.contains(RELEASE_MARK)) {
            spec.cwd = PathBuf::from(cwd.replace(RELEASE_MARK, &dir_text));
        }
        spec.env.values_mut().for_each(fill);
        if let Some(health) = &mut spec.health {
            match &mut health.probe {
                Probe::Http { url, .. } => {
                    fill(&mut url.host);
                    fill(&mut url.path);
                }
                Probe::Tcp { host, .. } => fill(host),
                Probe::Exec { command } => command.iter_mut().for_each(fill),
            }
        }
        spec.env.insert("STEWARD_RELEASE_VERSION".into(), version.to_string());
        spec.env.insert("STEWARD_RELEASE_DIR".into(), dir_text.into_owned());
        spec.release = Some(version.clone());
        spec
    }
}

/// `web` for `web:3`; a name without an instance number is its own group.
pub fn group_of(name: &str) -> &str {
    name.split_once(':').map_or(name, |(g, _)| g)
}

/// The name of instance `index` of `program`.
pub fn instance_name(program: &str, index: u32) -> String {
    format!("{program}:{index}")
}

/// What the processes of a program with `instances` or `sockets` share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    /// `instances = N`; `None` when the key is absent (one process, named like the program).
    pub instances: Option<u32>,
    /// `[programs.NAME.sockets.SOCKET]`, in name order: bound by steward once and passed to
    /// every process (fds 3.. with `LISTEN_FDS` on Unix).
    pub sockets: Vec<SocketSpec>,
    /// `[programs.NAME.update]`: how a restart or a reload replaces the processes.
    pub update: UpdateSpec,
}

impl GroupSpec {
    /// Whether a restart replaces processes one by one, each new one proven ready before
    /// the old one stops (instead of stop-then-start).
    pub fn rolls(&self) -> bool {
        self.update.strategy == Strategy::Rolling
    }
}

/// `[programs.NAME.release]`: where a program's signed releases come from, and how many
/// stay installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// `None`: only `steward deploy NAME --file ARCHIVE` installs a release.
    pub source: Option<ReleaseSource>,
    /// Minisign public keys, each the base64 line of a `.pub` file (`RW...`); never empty,
    /// each checked to decode. A release signed by any of them is trusted.
    pub public_keys: Vec<String>,
    /// Versions kept installed, counting the current and previous ones (at least 2).
    pub keep: u32,
    /// A switched-to release must stay up this long to succeed.
    pub healthy_for: Duration,
    /// `ca_file`: a PEM certificate (or CA) trusted for an `https://` source besides the
    /// built-in roots, for a release server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Every process of a switched-to release must be ready within this (stop-then-start;
    /// a rolling switch gates each process with `[update] ready_timeout` on the way).
    pub ready_timeout: Duration,
    /// Look for a new release at `source` this often (at least a minute); `None`: only
    /// when asked.
    pub check_every: Option<Duration>,
}

/// `[self_update]`: steward's own releases, for `steward self-update`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfUpdateSpec {
    /// `None`: `steward self-update --source` names it.
    pub source: Option<ReleaseSource>,
    /// Minisign public keys (`RW...`); may be empty when `--key` gives them.
    pub public_keys: Vec<String>,
    /// How long a new steward may take to settle after an update before its start counts
    /// as failed.
    pub confirm_within: Duration,
}

/// `source = "..."`: a folder or a manifest file, or an http(s) URL of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseSource {
    /// `http://` or `https://`, as written.
    Url(String),
    /// Absolute: a `file://` URL or a path, resolved from the config file's folder. A
    /// folder holds `manifest.json`; a path ending in `.json` is the manifest.
    Path(PathBuf),
}

impl fmt::Display for ReleaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseSource::Url(url) => f.write_str(url),
            ReleaseSource::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `[programs.NAME.sockets.SOCKET]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketSpec {
    /// The table's name: what `LISTEN_FDNAMES` calls it.
    pub name: String,
    pub listen: ListenAddr,
    /// `backlog = 1024`: connections the kernel queues while no process accepts.
    pub backlog: u32,
}

/// `listen = "tcp://HOST:PORT" | "unix:///path"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    /// Absolute.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// `[programs.NAME.update]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateSpec {
    pub strategy: Strategy,
    /// Processes a roll may run beyond `instances` (default 1).
    pub max_surge: u32,
    /// Instances a roll may take out of service at once (default 0).
    pub max_unavailable: u32,
    /// A new process must stay ready this long before the old one it replaces stops.
    pub min_ready: Duration,
    /// A new process not ready within this fails the roll (only it is killed).
    pub ready_timeout: Duration,
    /// The whole roll; exceeding it counts as a failure of what is in flight.
    pub progress_timeout: Option<Duration>,
    pub on_failure: OnFailure,
}

impl Default for UpdateSpec {
    fn default() -> Self {
        UpdateSpec {
            strategy: Strategy::Rolling,
            max_surge: 1,
            max_unavailable: 0,
            min_ready: Duration::ZERO,
            ready_timeout: defaults::READY_TIMEOUT,
            progress_timeout: None,
            on_failure: OnFailure::Pause,
        }
    }
}

/// `strategy = "rolling" | "recreate"`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Replace processes a few at a time, each new one proven ready before an old one stops.
    Rolling,
    /// Stop them all, then start them all (for programs that cannot run two copies).
    Recreate,
}

impl Strategy {
    pub const NAMES: &'static [&'static str] = &["rolling", "recreate"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "rolling" => Some(Self::Rolling),
            "recreate" => Some(Self::Recreate),
            _ => None,
        }
    }
}

/// `on_failure = "pause" | "rollback"`: what a roll does when a new process fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Keep what runs (old and new processes), start nothing more, and report.
    Pause,
    /// Put the old version back in every replaced slot, gated the same way.
    Rollback,
}

impl OnFailure {
    pub const NAMES: &'static [&'static str] = &["pause", "rollback"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "pause" => Some(Self::Pause),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

/// `restart = "always" | "on-failure" | "never"`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    Always,
    #[default]
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub const NAMES: &'static [&'static str] = &["always", "on-failure", "never"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "always" => Some(Self::Always),
            "on-failure" => Some(Self::OnFailure),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// `ready = "up" | "notify"`: when a started program counts as running (and its dependents
/// may start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Readiness {
    /// As soon as the process has been started.
    #[default]
    Up,
    /// Once it sends `READY=1` to the `NOTIFY_SOCKET` steward gives it (the sd_notify
    /// protocol, so systemd-aware programs work unchanged). Unix only.
    Notify,
}

impl Readiness {
    pub const NAMES: &'static [&'static str] = &["up", "notify"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "up" => Some(Self::Up),
            "notify" => Some(Self::Notify),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Notify => "notify",
        }
    }
}

/// How a graceful stop is asked for. Unix signals by name; the last four are the Windows
/// console/window mechanisms. Each platform maps what it cannot deliver to its nearest
/// equivalent (documented in the platform's process module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StopSignal {
    #[default]
    Term,
    Int,
    Hup,
    Quit,
    Kill,
    Usr1,
    Usr2,
    CtrlC,
    CtrlBreak,
    Close,
    /// Send nothing: wait `stop_timeout`, then kill the tree.
    None,
}

impl StopSignal {
    pub const NAMES: &'static [&'static str] =
        &["TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2", "ctrl-c", "ctrl-break", "close", "none"];

    /// Accepts `TERM`, `SIGTERM`, `term` and so on, and the Windows names.
    pub fn from_name(s: &str) -> Option<Self> {
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Some(match bare {
            "TERM" => Self::Term,
            "INT" => Self::Int,
            "HUP" => Self::Hup,
            "QUIT" => Self::Quit,
            "KILL" => Self::Kill,
            "USR1" => Self::Usr1,
            "USR2" => Self::Usr2,
            "CTRL-C" => Self::CtrlC,
            "CTRL-BREAK" => Self::CtrlBreak,
            "CLOSE" => Self::Close,
            "NONE" => Self::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Int => "INT",
            Self::Hup => "HUP",
            Self::Quit => "QUIT",
            Self::Kill => "KILL",
            Self::Usr1 => "USR1",
            Self::Usr2 => "USR2",
            Self::CtrlC => "ctrl-c",
            Self::CtrlBreak => "ctrl-break",
            Self::Close => "close",
            Self::None => "none",
        }
    }
}

/// `[programs.NAME.log]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSpec {
    /// Rotate when the file would grow past this many bytes (default 50MB). 0 = never by size.
    pub max_size: u64,
    pub rotate_every: Option<RotateEvery>,
    /// How many rotated files to keep (default 10).
    pub keep: u32,
    /// gzip rotated files, off the hot path (default false).
    pub compress: bool,
    /// How each line is stored (default plain).
    pub format: LogFormat,
    /// `multiline_start`: shipped lines are grouped into records, each beginning with a line
    /// that matches (a stack trace stays with the line that logged it).
    pub multiline: Option<Multiline>,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            max_size: 50_000_000,
            rotate_every: None,
            keep: 10,
            compress: false,
            format: LogFormat::Plain,
            multiline: None,
        }
    }
}

/// How shipping groups lines into multi-line records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multiline {
    /// A regular expression (checked by the parser) that matches the first line of a record.
    pub start: String,
    /// A record whose next line has not come this long after it was first seen is sent as
    /// it is (default 1 s): the last record of a quiet program is never stuck.
    pub timeout: Duration,
    /// A record holds at most this many lines (default 500).
    pub max_lines: u32,
}

/// `format = "plain" | "cri"`: how a log file stores each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// The line as the program wrote it.
    #[default]
    Plain,
    /// `TIME STREAM F|P LINE`: the capture time kept with each line (the container runtime
    /// format, see `ship::cri`).
    Cri,
}

impl LogFormat {
    pub const NAMES: &'static [&'static str] = &["plain", "cri"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "plain" => Some(Self::Plain),
            "cri" => Some(Self::Cri),
            _ => None,
        }
    }
}

/// `rotate_every = "hourly" | "daily"`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotateEvery {
    Hourly,
    Daily,
}

impl RotateEvery {
    pub const NAMES: &'static [&'static str] = &["hourly", "daily"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "hourly" => Some(Self::Hourly),
            "daily" => Some(Self::Daily),
            _ => None,
        }
    }

    pub fn period(self) -> Duration {
        match self {
            Self::Hourly => Duration::from_secs(3600),
            Self::Daily => Duration::from_secs(86_400),
        }
    }
}

/// `[programs.NAME.health]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    pub probe: Probe,
    /// Between the end of one probe and the start of the next (default 10s).
    pub interval: Duration,
    /// A probe that takes longer fails (default 5s).
    pub timeout: Duration,
    /// Failures in a row before the program is Unhealthy (default 3, at least 1).
    pub retries: u32,
    /// Failures this soon after a start do not count (default 0s).
    pub start_period: Duration,
    pub on_unhealthy: OnUnhealthy,
}

/// The one probe of a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `http = "URL"`: a GET that passes on a 2xx, or on one of `expect_status` if given.
    Http { url: HttpUrl, expect_status: Vec<u16> },
    /// `tcp = "HOST:PORT"`: passes if a TCP connection opens.
    Tcp { host: String, port: u16 },
    /// `exec = [..]`: passes if the command exits with 0. It runs in the program's `cwd`
    /// with its `env`, in a process tree of its own that is killed on timeout.
    Exec { command: Vec<String> },
}

/// A plain `http://` URL, taken apart (https is not supported by the probe or webhooks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// A name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query]`. The error says what is wrong.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err("https is not supported (no TLS client is built in)".into());
        }
        let rest = match lower.strip_prefix("http://") {
            Some(_) => &text["http://".len()..],
            None => return Err("the URL must start with `http://`".into()),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if path.contains('#') || path.contains(char::is_whitespace) {
            return Err("the path cannot contain spaces or `#`".into());
        }
        if authority.contains('@') {
            return Err("user names and passwords in the URL are not supported".into());
        }
        let (host, port) = split_host_port(authority, Some(80))?;
        Ok(HttpUrl { host, port, path })
    }

    /// `host:port`, with brackets around an IPv6 address (the `Host` header).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// Splits `host:port`, `[v6]:port` (or a bare host when `default_port` is given).
pub fn split_host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address needs its closing `]`")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after the address")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(format!("`{p}` is not a port number (1-65535)"))?,
        (None, Some(p)) => p,
        (None, None) => return Err("the port is missing: write HOST:PORT".into()),
    };
    Ok((host.to_owned(), port))
}

/// `on_unhealthy = "none" | "restart"`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    /// Report it (status, events, metrics, alerts) and do nothing else.
    #[default]
    None,
    Restart,
}

impl OnUnhealthy {
    pub const NAMES: &'static [&'static str] = &["none", "restart"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "restart" => Some(Self::Restart),
            _ => None,
        }
    }
}

/// `[metrics]`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `listen = "127.0.0.1:9100"`: serve `GET /metrics` on a plain-HTTP listener of its
    /// own, besides the API. A loopback address unless `allow_remote = true`.
    pub listen: Option<SocketAddr>,
}

/// `[[alerts]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSpec {
    pub name: String,
    pub when: crate::alerts::Condition,
    /// POST a JSON payload here (retried with backoff).
    pub webhook: Option<HttpUrl>,
    /// Run this, with `STEWARD_ALERT_*` variables describing the alert.
    pub command: Option<Vec<String>>,
    /// Send a firing alert again this often while it holds.
    pub repeat_every: Option<Duration>,
    /// Only these programs; empty means every program.
    pub programs: Vec<String>,
}

/// `[[ship]]`: one place the programs' logs are sent to.
#[derive(Clone, PartialEq, Eq)]
pub struct ShipSpec {
    /// Unique; names its cursors' folder (`<state_dir>/ship/NAME`), its metrics and events.
    pub name: String,
    pub kind: SinkKind,
    pub endpoint: ShipEndpoint,
    /// The programs (by `[programs.NAME]`, all their instances) whose logs go there; empty:
    /// every program.
    pub programs: Vec<String>,
    /// Loki and OTLP: protobuf (default) or JSON bodies.
    pub encoding: ShipEncoding,
    /// gzip the bodies of OTLP, Elasticsearch and Loki JSON (default true; Loki's protobuf
    /// is snappy-compressed by the protocol).
    pub gzip: bool,
    /// Sent with every request. Values may be secrets: never shown.
    pub headers: BTreeMap<String, String>,
    /// A file holding a token, sent as `Authorization: Bearer TOKEN` (read at start and on
    /// reload).
    pub token_file: Option<PathBuf>,
    /// Trust this CA (PEM) for `https://` and `tls://`, instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Static labels added to every line (Loki labels, OTLP resource attributes, ES fields,
    /// syslog structured data).
    pub labels: BTreeMap<String, String>,
    /// `parse = "json"`: a line that is a JSON object is sent as structured fields.
    pub parse_json: bool,
    /// Elasticsearch: the index or data stream (default `logs-steward-default`).
    pub index: String,
    /// A batch holds at most this many bytes of lines (default 1 MiB) ...
    pub max_bytes: u64,
    /// ... and this many lines (default 5000) ...
    pub max_lines: u32,
    /// ... and waits at most this long for more lines once it has one (default 1 s).
    pub linger: Duration,
    /// Rotated files this sink has not sent are kept beyond the log's `keep` up to this many
    /// bytes per stream (default 1 GiB); past it the oldest go, counted and announced.
    pub max_unshipped: u64,
}

// Hand-written: header values may be secrets.
impl fmt::Debug for ShipSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&String> = self.headers.keys().collect();
        f.debug_struct("ShipSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("programs", &self.programs)
            .field("encoding", &self.encoding)
            .field("gzip", &self.gzip)
            .field("headers(names only)", &header_names)
            .field("token_file", &self.token_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("labels", &self.labels)
            .field("parse_json", &self.parse_json)
            .field("index", &self.index)
            .field("max_bytes", &self.max_bytes)
            .field("max_lines", &self.max_lines)
            .field("linger", &self.linger)
            .field("max_unshipped", &self.max_unshipped)
            .finish()
    }
}

impl ShipSpec {
    /// Whether the logs of `program` (a name as in [`Config::programs`], `web:3` included)
    /// go to this sink.
    pub fn covers(&self, program: &str) -> bool {
        self.programs.is_empty() || self.programs.iter().any(|p| p == group_of(program))
    }
}

/// `kind = "loki" | "otlp" | "elasticsearch" | "syslog"`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Loki,
    Otlp,
    Elasticsearch,
    Syslog,
}

impl SinkKind {
    pub const NAMES: &'static [&'static str] = &["loki", "otlp", "elasticsearch", "syslog"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "loki" => Some(Self::Loki),
            "otlp" => Some(Self::Otlp),
            "elasticsearch" | "opensearch" => Some(Self::Elasticsearch),
            "syslog" => Some(Self::Syslog),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Loki => "loki",
            Self::Otlp => "otlp",
            Self::Elasticsearch => "elasticsearch",
            Self::Syslog => "syslog",
        }
    }

    /// The path requests go to when the URL gives none.
    pub fn default_path(self) -> &'static str {
        match self {
            Self::Loki => "/loki/api/v1/push",
            Self::Otlp => "/v1/logs",
            Self::Elasticsearch => "/_bulk",
            Self::Syslog => "",
        }
    }
}

/// `encoding = "protobuf" | "json"`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShipEncoding {
    Protobuf,
    Json,
}

impl ShipEncoding {
    pub const NAMES: &'static [&'static str] = &["protobuf", "json"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "protobuf" => Some(Self::Protobuf),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A sink's `url`, taken apart: `http[s]://host[:port][/path]` for the HTTP kinds,
/// `tcp://host:port` or `tls://host:port` for syslog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipEndpoint {
    pub tls: bool,
    /// A name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/` (empty for syslog).
    pub path: String,
}

impl ShipEndpoint {
    /// Parses `url` for a sink of `kind`; the error says what is wrong.
    pub fn parse(kind: SinkKind, url: &str) -> Result<ShipEndpoint, String> {
        let (scheme, rest) = url.split_once("://").ok_or("it has no scheme (such as http://)")?;
        let scheme = scheme.to_ascii_lowercase();
        let (tls, default_port) = match (kind, scheme.as_str()) {
            (SinkKind::Syslog, "tcp") => (false, 514),
            (SinkKind::Syslog, "tls") => (true, 6514),
            (SinkKind::Syslog, _) => {
                return Err(format!("a syslog sink's URL starts with tcp:// or tls://, not {scheme}://"))
            }
            (_, "http") => (false, 80),
            (_, "https") => (true, 443),
            (_, _) => return Err(format!("the URL must start with http:// or https://, not {scheme}://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not supported: use `token_file` or `headers`".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("an IPv6 address needs its closing `]`")?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(format!("unexpected `{after}` after the address")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("it names no host".into());
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a port (1-65535)"))?,
            None if kind == SinkKind::Syslog => default_port,
            None => default_port,
        };
        let path = match (kind, path) {
            (SinkKind::Syslog, "" | "/") => String::new(),
            (SinkKind::Syslog, _) => return Err("a syslog URL has no path".into()),
            (_, "" | "/") => kind.default_path().to_owned(),
            (_, p) if p.starts_with('?') => format!("{}{p}", kind.default_path()),
            (_, p) => p.to_owned(),
        };
        Ok(ShipEndpoint { tls, host: host.to_owned(), port, path })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Defaults, in one place so that the parser, the docs and the tests agree.
pub mod defaults {
    use std::time::Duration;

    pub const RESTART_DELAY: Duration = Duration::from_millis(100);
    pub const RESTART_MAX_DELAY: Duration = Duration::from_secs(30);
    pub const STABLE_AFTER: Duration = Duration::from_secs(10);
    pub const MAX_RESTARTS: u32 = 10;
    pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
    pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
    pub const MEMORY_GRACE: Duration = Duration::from_secs(30);
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
    pub const HEALTH_RETRIES: u32 = 3;
    pub const STATE_DIR: &str = ".steward";
    pub const LOG_SUBDIR: &str = "logs";
    /// In the state dir.
    pub const AUDIT_LOG: &str = "audit.log";
    pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
    pub const BACKLOG: u32 = 1024;
    /// The largest `instances`: each instance is a process with its own log files.
    pub const MAX_INSTANCES: u32 = 1024;
    /// `[release] keep`: the current and previous versions, and one more.
    pub const RELEASE_KEEP: u32 = 3;
    pub const RELEASE_MIN_KEEP: u32 = 2;
    /// `[release] healthy_for`
    pub const HEALTHY_FOR: Duration = Duration::from_secs(10);
    /// `[self_update] confirm_within`
    pub const CONFIRM_WITHIN: Duration = Duration::from_secs(120);
    /// The shortest `[release] check_every`: a release server is not a health check.
    pub const MIN_CHECK_EVERY: Duration = Duration::from_secs(60);
    /// `[dashboard] session_timeout`
    pub const SESSION_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
    /// `[[ship]]`
    pub const SHIP_MAX_BYTES: u64 = 1 << 20;
    pub const SHIP_MAX_LINES: u32 = 5000;
    pub const SHIP_LINGER: Duration = Duration::from_secs(1);
    pub const SHIP_MAX_UNSHIPPED: u64 = 1 << 30;
    pub const SHIP_INDEX: &str = "logs-steward-default";
    /// In the state dir: cursors and dead letters, a folder per sink.
    pub const SHIP_SUBDIR: &str = "ship";
}
