//! The resolved config: what the parser produces once every value has been checked,
//! interpolated, given its default and had its paths made absolute.
//!
//! Equality on these types is what hot reload uses to decide whether a program's
//! definition changed, so every field that affects how a program runs is part of it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A whole config file, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Absolute path of the file this came from (or a label such as `<demo>` for embedded text).
    pub source: PathBuf,
    pub supervisor: SupervisorSettings,
    /// Programs by name. A `BTreeMap` so that every listing is in a stable order.
    pub programs: BTreeMap<String, ProgramSpec>,
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

/// `[programs.NAME]`
#[derive(Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    pub name: String,
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
}

// Hand-written so that secrets in `env` never reach a log line.
impl fmt::Debug for ProgramSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env.keys().collect();
        f.debug_struct("ProgramSpec")
            .field("name", &self.name)
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
            .finish()
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
}

impl Default for LogSpec {
    fn default() -> Self {
        Self { max_size: 50_000_000, rotate_every: None, keep: 10, compress: false }
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

/// Defaults, in one place so that the parser, the docs and the tests agree.
pub mod defaults {
    use std::time::Duration;

    pub const RESTART_DELAY: Duration = Duration::from_millis(100);
    pub const RESTART_MAX_DELAY: Duration = Duration::from_secs(30);
    pub const STABLE_AFTER: Duration = Duration::from_secs(10);
    pub const MAX_RESTARTS: u32 = 10;
    pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
    pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
    pub const STATE_DIR: &str = ".steward";
    pub const LOG_SUBDIR: &str = "logs";
}
