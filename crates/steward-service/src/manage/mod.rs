//! The manage side: describing a service ([`ServiceSpec`]), rendering what its manager reads
//! ([`render`]), and installing, starting, stopping and querying it ([`Manager`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use steward_service::manage::{Manager, RestartPolicy, Scope, ServiceSpec};
//!
//! # fn main() -> Result<(), steward_service::manage::Error> {
//! let spec = ServiceSpec::new("myapp", std::env::current_exe().unwrap())
//!     .args(["run"])
//!     .description("My app")
//!     .restart(RestartPolicy::on_failure([Duration::from_secs(1)]))
//!     .stop_timeout(Duration::from_secs(30));
//! let manager = Manager::native("myapp", Scope::System)?;
//! manager.install(&spec)?;
//! manager.start(Some(Duration::from_secs(60)))?;
//! # Ok(()) }
//! ```
//!
//! Every option is typed, and an option a platform cannot honour is an
//! [`Error::Unsupported`] naming the option and the platform, at [`render::render`] and so at
//! [`Manager::install`]: never dropped silently. How each option maps:
//!
//! | option | systemd | launchd | Windows SCM |
//! |---|---|---|---|
//! | scope User | `~/.config/systemd/user`, `systemctl --user` | LaunchAgent, `gui/UID` | unsupported |
//! | account | `User=` | `UserName` | service account (+ password file) |
//! | start Auto / Manual | `WantedBy=` + enable / neither | `RunAtLoad` true / false | auto / demand |
//! | start Delayed / Disabled | unsupported | unsupported / `Disabled` | delayed auto / disabled |
//! | dependencies | `Wants=` + `After=` | unsupported | `lpDependencies` |
//! | restart | `Restart=`, `RestartSec=`, `RestartSteps=` | `KeepAlive`, `ThrottleInterval` | failure actions + non-crash flag |
//! | environment, working dir | `Environment=`, `WorkingDirectory=` | `EnvironmentVariables`, `WorkingDirectory` | registry `Environment`, `Parameters\WorkingDirectory` (applied by [`crate::run`]) |
//! | start / stop budget | `TimeoutStartSec=` / `TimeoutStopSec=` | unsupported / `ExitTimeOut` | unsupported (the run side's budget) / preshutdown timeout |
//! | readiness Notify | `Type=notify` | (no protocol: started is ready) | Running on `ready()` |
//! | watchdog | `WatchdogSec=` | unsupported | unsupported |
//! | log file | `StandardOutput=append:` | `StandardOutPath` | unsupported |
//! | delegate cgroups, kill mode mixed | `Delegate=yes`, `KillMode=mixed` | unsupported | unsupported |

#[cfg_attr(not(windows), allow(dead_code))] // the pure part of the Windows code, tested everywhere
mod event_source;
pub mod render;

#[cfg(unix)]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod launchd;
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod systemd;
#[cfg(unix)]
mod tool;
#[cfg(windows)]
mod windows;

#[cfg(windows)]
pub(crate) use windows::apply_registry_settings;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A service manager a service can be rendered for and installed into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// systemd (Linux): a unit file and `systemctl`.
    Systemd,
    /// launchd (macOS): a property list and `launchctl`.
    Launchd,
    /// The Windows Service Control Manager: settings registered through its API.
    Windows,
}

impl Platform {
    /// The names [`Platform::from_name`] accepts.
    pub const NAMES: &'static [&'static str] = &["systemd", "launchd", "windows"];

    /// `systemd`, `launchd` or `windows`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "systemd" => Some(Self::Systemd),
            "launchd" => Some(Self::Launchd),
            "windows" => Some(Self::Windows),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
            Self::Windows => "windows",
        }
    }

    /// The service manager of this OS, if the crate knows one.
    pub fn native() -> Option<Self> {
        if cfg!(target_os = "linux") {
            Some(Self::Systemd)
        } else if cfg!(target_os = "macos") {
            Some(Self::Launchd)
        } else if cfg!(windows) {
            Some(Self::Windows)
        } else {
            None
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A machine-wide service (systemd system unit, LaunchDaemon, Windows service), or one that
/// runs as the user who installs it (systemd `--user` unit, LaunchAgent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Scope {
    /// Started at boot, for the whole machine.
    #[default]
    System,
    /// Started at the user's login, as that user.
    User,
}

impl Scope {
    /// `system` or `user`.
    pub fn name(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
        }
    }
}

/// The account a system service runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Account {
    /// The manager's default: root (systemd, launchd), LocalSystem (Windows).
    #[default]
    Default,
    /// Windows' `NT AUTHORITY\LocalService`: few rights, anonymous on the network.
    LocalService,
    /// Windows' `NT AUTHORITY\NetworkService`: few rights, the computer on the network.
    NetworkService,
    /// A named account: systemd `User=`, launchd `UserName`; on Windows `DOMAIN\user`,
    /// `user@domain` or a local user (written `.\user`), which needs a password file.
    User(String),
}

impl Account {
    /// An account by name, recognising Windows' built-in names (`LocalSystem`, `LocalService`,
    /// `NetworkService`, with or without `NT AUTHORITY\`, in any case). Use [`Account::User`]
    /// directly for a Unix user that happens to have such a name.
    pub fn parse(name: &str) -> Result<Account, Error> {
        render::check_text("account", name)?;
        let builtin = name.strip_prefix(r"NT AUTHORITY\").unwrap_or(name).to_ascii_lowercase();
        Ok(match builtin.as_str() {
            "localsystem" | "system" => Account::Default,
            "localservice" | "local service" => Account::LocalService,
            "networkservice" | "network service" => Account::NetworkService,
            "" => return Err(Error::invalid("account", name, "it is empty")),
            _ => Account::User(name.to_owned()),
        })
    }
}

/// When the manager starts the service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartType {
    /// At boot (a user service: at login).
    #[default]
    Auto,
    /// At boot, shortly after the other automatic services (Windows only).
    Delayed,
    /// Only when asked.
    Manual,
    /// Not at all, until it is enabled again (Windows, launchd).
    Disabled,
}

impl StartType {
    /// The names [`StartType::from_name`] accepts.
    pub const NAMES: &'static [&'static str] = &["auto", "delayed", "manual", "disabled"];

    /// `auto`, `delayed`, `manual` or `disabled`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "delayed" => Some(Self::Delayed),
            "manual" => Some(Self::Manual),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Delayed => "delayed",
            Self::Manual => "manual",
            Self::Disabled => "disabled",
        }
    }
}

/// Something that must run before the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// Another service by its name (Windows: `+GROUP` names a load-order group).
    Service(String),
    /// The network is up (systemd's `network-online.target`, system services only).
    NetworkOnline,
}

/// When the manager starts the service again after it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartOn {
    /// Never.
    #[default]
    Never,
    /// When it failed: a crash, a kill, a non-zero exit (Windows: also a non-zero exit code
    /// reported with STOPPED, the "non-crash failure" flag).
    OnFailure,
    /// Whenever it ended (not on Windows: the SCM never restarts a clean stop).
    Always,
}

/// How the manager restarts the service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    /// When.
    pub on: RestartOn,
    /// The delay before the first restart, the second, ...; the last repeats. Empty: the
    /// manager's own default (systemd 100 ms, launchd 10 s; the SCM has none and needs one).
    pub delays: Vec<Duration>,
    /// After this long without a failure the count starts again (Windows' reset period;
    /// systemd and launchd have none, so with delays that differ it is unsupported there).
    pub reset_after: Option<Duration>,
}

impl RestartPolicy {
    /// Never restart.
    pub fn never() -> Self {
        Self::default()
    }

    /// Restart after a failure, after `delays` (the last repeats).
    pub fn on_failure(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self { on: RestartOn::OnFailure, delays: delays.into_iter().collect(), reset_after: None }
    }

    /// Restart whenever it ends, after `delays` (the last repeats).
    pub fn always(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self { on: RestartOn::Always, delays: delays.into_iter().collect(), reset_after: None }
    }

    /// Count failures from zero again after `window` without one.
    pub fn reset_after(mut self, window: Duration) -> Self {
        self.reset_after = Some(window);
        self
    }
}

/// How the manager learns that the service has started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// The program says so (`Context::ready`): systemd `Type=notify`, SCM Running. launchd has
    /// no such protocol: there, started is ready.
    #[default]
    Notify,
    /// Started is ready (systemd `Type=simple`).
    Immediate,
}

/// Which processes the manager signals when it stops the service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KillMode {
    /// The manager's default (systemd: every process of the unit at once).
    #[default]
    Default,
    /// The main process first, then, after the stop timeout, every process left (systemd
    /// `KillMode=mixed`): for a program that stops its own children in order.
    Mixed,
}

/// Everything that describes a service to its manager. Build it with [`ServiceSpec::new`]
/// and the setters; check it against a platform with [`render::render`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// The service name: `NAME.service`, the launchd label, the Windows service name.
    pub name: String,
    /// What the Services console shows (Windows only). Default: the name.
    pub display_name: Option<String>,
    /// One line about the service.
    pub description: Option<String>,
    /// Comment lines put at the top of the rendered file (who generated it, how to redo it).
    pub notes: Vec<String>,
    /// The absolute path of the program.
    pub executable: PathBuf,
    /// The arguments the manager passes it.
    pub args: Vec<String>,
    /// Machine-wide or per user.
    pub scope: Scope,
    /// The account it runs as (system services only).
    pub account: Account,
    /// The file whose first line is a Windows user account's password, read at install.
    pub password_file: Option<PathBuf>,
    /// When it starts.
    pub start: StartType,
    /// What must run before it.
    pub dependencies: Vec<Dependency>,
    /// How it is restarted.
    pub restart: RestartPolicy,
    /// Variables set for it.
    pub env: BTreeMap<String, String>,
    /// The folder it starts in.
    pub working_dir: Option<PathBuf>,
    /// How long starting may take before the manager gives up.
    pub start_timeout: Option<Duration>,
    /// How long stopping may take before the manager kills it.
    pub stop_timeout: Option<Duration>,
    /// How the manager learns it started.
    pub readiness: Readiness,
    /// SIGHUP reloads it (the run side's default, `RunOptions::accept_reload`): systemd's
    /// `systemctl reload` sends it (`ExecReload=`). Off for a program that does not take Reload.
    pub reload_on_sighup: bool,
    /// The manager kills it when it does not ping within this period (systemd).
    pub watchdog: Option<Duration>,
    /// Where its stdout and stderr go where the manager has no journal.
    pub log_file: Option<PathBuf>,
    /// The Event Log source it writes as (Windows): registered at install, so the Event
    /// Viewer shows each entry's own text, and removed with the last service that shares it.
    /// Default: the service's name (what `steward_service::log` writes as).
    pub event_source: Option<String>,
    /// It may make control groups below its own (systemd `Delegate=yes`).
    pub delegate_cgroups: bool,
    /// Which processes a stop signals.
    pub kill_mode: KillMode,
}

// Hand-written so that the values of `env` never reach a log line.
impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env.keys().collect();
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("description", &self.description)
            .field("notes", &self.notes)
            .field("executable", &self.executable)
            .field("args", &self.args)
            .field("scope", &self.scope)
            .field("account", &self.account)
            .field("password_file", &self.password_file)
            .field("start", &self.start)
            .field("dependencies", &self.dependencies)
            .field("restart", &self.restart)
            .field("env(keys only)", &env_keys)
            .field("working_dir", &self.working_dir)
            .field("start_timeout", &self.start_timeout)
            .field("stop_timeout", &self.stop_timeout)
            .field("readiness", &self.readiness)
            .field("reload_on_sighup", &self.reload_on_sighup)
            .field("watchdog", &self.watchdog)
            .field("log_file", &self.log_file)
            .field("event_source", &self.event_source)
            .field("delegate_cgroups", &self.delegate_cgroups)
            .field("kill_mode", &self.kill_mode)
            .finish()
    }
}

impl ServiceSpec {
    /// A system service `name` that runs `executable` without arguments, starts at boot,
    /// says when it is ready, and is not restarted; everything else is the manager's default.
    pub fn new(name: impl Into<String>, executable: impl Into<PathBuf>) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            display_name: None,
            description: None,
            notes: Vec::new(),
            executable: executable.into(),
            args: Vec::new(),
            scope: Scope::System,
            account: Account::Default,
            password_file: None,
            start: StartType::Auto,
            dependencies: Vec::new(),
            restart: RestartPolicy::never(),
            env: BTreeMap::new(),
            working_dir: None,
            start_timeout: None,
            stop_timeout: None,
            readiness: Readiness::Notify,
            reload_on_sighup: true,
            watchdog: None,
            log_file: None,
            event_source: None,
            delegate_cgroups: false,
            kill_mode: KillMode::Default,
        }
    }

    /// See [`ServiceSpec::display_name`](field@ServiceSpec::display_name).
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// See [`ServiceSpec::description`](field@ServiceSpec::description).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Adds a comment line to the top of the rendered file.
    pub fn note(mut self, line: impl Into<String>) -> Self {
        self.notes.push(line.into());
        self
    }

    /// Sets the arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// See [`ServiceSpec::scope`](field@ServiceSpec::scope).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// See [`ServiceSpec::account`](field@ServiceSpec::account).
    pub fn account(mut self, account: Account) -> Self {
        self.account = account;
        self
    }

    /// See [`ServiceSpec::password_file`](field@ServiceSpec::password_file).
    pub fn password_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.password_file = Some(path.into());
        self
    }

    /// See [`ServiceSpec::start`](field@ServiceSpec::start).
    pub fn start(mut self, start: StartType) -> Self {
        self.start = start;
        self
    }

    /// Adds a dependency.
    pub fn depends_on(mut self, dependency: Dependency) -> Self {
        self.dependencies.push(dependency);
        self
    }

    /// See [`ServiceSpec::restart`](field@ServiceSpec::restart).
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Sets one variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// See [`ServiceSpec::working_dir`](field@ServiceSpec::working_dir).
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// See [`ServiceSpec::start_timeout`](field@ServiceSpec::start_timeout).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// See [`ServiceSpec::stop_timeout`](field@ServiceSpec::stop_timeout).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = Some(timeout);
        self
    }

    /// See [`ServiceSpec::readiness`](field@ServiceSpec::readiness).
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// See [`ServiceSpec::reload_on_sighup`](field@ServiceSpec::reload_on_sighup).
    pub fn reload_on_sighup(mut self, yes: bool) -> Self {
        self.reload_on_sighup = yes;
        self
    }

    /// See [`ServiceSpec::watchdog`](field@ServiceSpec::watchdog).
    pub fn watchdog(mut self, period: Duration) -> Self {
        self.watchdog = Some(period);
        self
    }

    /// See [`ServiceSpec::log_file`](field@ServiceSpec::log_file).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// See [`ServiceSpec::event_source`](field@ServiceSpec::event_source).
    pub fn event_source(mut self, source: impl Into<String>) -> Self {
        self.event_source = Some(source.into());
        self
    }

    /// See [`ServiceSpec::delegate_cgroups`](field@ServiceSpec::delegate_cgroups).
    pub fn delegate_cgroups(mut self, yes: bool) -> Self {
        self.delegate_cgroups = yes;
        self
    }

    /// See [`ServiceSpec::kill_mode`](field@ServiceSpec::kill_mode).
    pub fn kill_mode(mut self, mode: KillMode) -> Self {
        self.kill_mode = mode;
        self
    }
}

/// Service names become file names and labels on every platform: letters, digits, `_`, `-`
/// and `.`, starting with a letter or digit, at most 100 characters.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::BadName { name: name.to_owned(), why: why.to_owned() });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 100 {
        return bad("it is longer than 100 characters");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return bad(&format!("{c:?} is not allowed; use letters, digits, `_`, `-` and `.`"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or a digit");
    }
    for suffix in [".service", ".plist"] {
        if name.ends_with(suffix) {
            return bad(&format!("give it without `{suffix}`, which is added"));
        }
    }
    Ok(())
}

/// The folders of the user a [`Scope::User`] service belongs to: only what the caller read
/// from the environment ([`UserDirs::from_env`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDirs {
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` (systemd user units), when set and absolute.
    pub xdg_config_home: Option<PathBuf>,
}

impl UserDirs {
    /// `HOME` and `XDG_CONFIG_HOME` of this process, each when set and absolute.
    pub fn from_env() -> UserDirs {
        let abs = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
        UserDirs { home: abs("HOME"), xdg_config_home: abs("XDG_CONFIG_HOME") }
    }

    fn home(&self, what: &'static str) -> Result<&Path, Error> {
        self.home.as_deref().ok_or(Error::NoHome(what))
    }
}

/// Where install writes the service file; `None` for Windows, which has none.
///
/// | platform | system | user |
/// |---|---|---|
/// | systemd | `/etc/systemd/system/NAME.service` | `$XDG_CONFIG_HOME/systemd/user/NAME.service` (default `~/.config`) |
/// | launchd | `/Library/LaunchDaemons/NAME.plist` | `~/Library/LaunchAgents/NAME.plist` |
pub fn install_path(
    platform: Platform,
    scope: Scope,
    name: &str,
    dirs: &UserDirs,
) -> Result<Option<PathBuf>, Error> {
    let path = match (platform, scope) {
        (Platform::Systemd, Scope::System) => {
            PathBuf::from("/etc/systemd/system").join(format!("{name}.service"))
        }
        (Platform::Systemd, Scope::User) => {
            let config_home = match &dirs.xdg_config_home {
                Some(dir) => dir.clone(),
                None => dirs.home("a user unit")?.join(".config"),
            };
            config_home.join("systemd/user").join(format!("{name}.service"))
        }
        (Platform::Launchd, Scope::System) => {
            PathBuf::from("/Library/LaunchDaemons").join(format!("{name}.plist"))
        }
        (Platform::Launchd, Scope::User) => {
            dirs.home("a LaunchAgent")?.join("Library/LaunchAgents").join(format!("{name}.plist"))
        }
        (Platform::Windows, _) => return Ok(None),
    };
    Ok(Some(path))
}

/// Why a service could not be described, installed or controlled. Every message says what
/// to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The platform cannot honour an option of the spec (or a verb, such as `pause`).
    #[error("{platform} cannot honour {option}: {why}")]
    Unsupported {
        /// The option, as the spec names it.
        option: &'static str,
        /// The platform.
        platform: Platform,
        /// Why, and what to use instead.
        why: String,
    },
    /// A value no service manager can take.
    #[error("invalid {option} {value:?}: {why}")]
    Invalid {
        /// The option.
        option: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A service name that cannot be a file name and a label everywhere.
    #[error("invalid service name `{name}`: {why}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// A user service's file goes under the home folder, which is not known.
    #[error("{0} needs the home folder, and HOME is not set")]
    NoHome(&'static str),
    /// This build has no backend for the platform (a Linux build cannot install a Windows
    /// service); [`render::render`] still works.
    #[error("{0} services cannot be managed from this OS; rendering them works everywhere")]
    Unavailable(Platform),
    /// This OS has no service manager the crate knows.
    #[error("this crate knows no service manager on {0}; rendering for systemd, launchd or Windows works")]
    NoServiceManager(&'static str),
    /// The service is not installed.
    #[error("service `{name}` is not installed: {} does not exist; check the name and the scope", path.display())]
    NotInstalled {
        /// The name.
        name: String,
        /// Where it was looked for (Windows: the registry key).
        path: PathBuf,
    },
    /// The manager's tool ran and failed: its output, verbatim.
    #[error("`{command}` failed ({status}):\n{output}\nhint: {hint}")]
    Tool {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// Its stderr and stdout.
        output: String,
        /// What to do next.
        hint: String,
    },
    /// The manager's tool could not be run.
    #[error("cannot run `{command}`; {hint}")]
    Spawn {
        /// The command line.
        command: String,
        /// What to do next.
        hint: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A service file or folder could not be written or removed.
    #[error("cannot {what} {}; {hint}", path.display())]
    Io {
        /// What was tried.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// What to do next.
        hint: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A call into the OS's service manager failed (Windows: the SCM's API).
    #[error("cannot {what}; {hint}")]
    Os {
        /// What was tried.
        what: String,
        /// What to do next.
        hint: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The service ended while a verb waited for it to run.
    #[error("the service `{name}` stopped while the {op} waited for it ({detail}); {hint}")]
    Stopped {
        /// The verb that waited.
        op: &'static str,
        /// The service.
        name: String,
        /// How it ended, in the manager's words.
        detail: String,
        /// The exit code the program itself reported (Windows: the service-specific code),
        /// when there is one.
        exit: Option<i64>,
        /// Where to look.
        hint: String,
    },
    /// A wait for a state ended without it.
    #[error("the service `{name}` is {state} after waiting {}s to {op} it; {hint}", waited.as_secs())]
    Timeout {
        /// The verb that waited.
        op: &'static str,
        /// The service.
        name: String,
        /// The state it was left in, in the manager's words.
        state: String,
        /// How long it waited.
        waited: Duration,
        /// Where to look.
        hint: String,
    },
}

impl Error {
    pub(crate) fn unsupported(option: &'static str, platform: Platform, why: impl Into<String>) -> Error {
        Error::Unsupported { option, platform, why: why.into() }
    }

    pub(crate) fn invalid(
        option: impl Into<String>,
        value: impl Into<String>,
        why: impl Into<String>,
    ) -> Error {
        Error::Invalid { option: option.into(), value: value.into(), why: why.into() }
    }

    /// An I/O error on a service file or folder, with the usual hint for its kind.
    pub fn io(what: &'static str, path: &Path, source: io::Error) -> Error {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "run it as root (sudo), or install a service of your own user".to_owned()
            }
            io::ErrorKind::NotFound => "check that the folder exists".to_owned(),
            _ => "check the path and its permissions".to_owned(),
        };
        Error::Io { what, path: path.to_path_buf(), hint, source }
    }
}

/// The state of an installed service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Not installed.
    NotInstalled,
    /// Installed and not running.
    #[default]
    Stopped,
    /// Starting.
    StartPending,
    /// Running.
    Running,
    /// Stopping.
    StopPending,
    /// Pausing (Windows).
    PausePending,
    /// Paused (Windows).
    Paused,
    /// Continuing (Windows).
    ContinuePending,
    /// Ended with a failure (systemd `failed`).
    Failed,
    /// Reloading (systemd).
    Reloading,
}

/// What [`Manager::status`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The state.
    pub state: State,
    /// The manager's own words for it, such as `active (running)`.
    pub detail: String,
    /// The service file (Windows: its registry key), when it exists.
    pub file: Option<PathBuf>,
    /// Whether it starts at boot (or login), in the manager's words: `enabled`, `auto`, ...
    pub enabled: Option<String>,
    /// The main process.
    pub pid: Option<u32>,
    /// How the last run ended: its exit code (Windows: the service-specific code, else the
    /// Win32 one), when the manager keeps it.
    pub last_exit: Option<i64>,
    /// The service's last status line (systemd `STATUS=`).
    pub status_text: Option<String>,
    /// The command line the manager runs, as it stored it (Windows).
    pub command: Option<String>,
}

impl Status {
    /// Running (or reloading).
    pub fn running(&self) -> bool {
        matches!(self.state, State::Running | State::Reloading)
    }
}

/// One installed (or to be installed) service of one manager. Everything that asks the OS is
/// here; everything pure is in [`render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    platform: Platform,
    name: String,
    scope: Scope,
    dirs: UserDirs,
    root: Option<PathBuf>,
}

impl Manager {
    /// The service `name` of this OS's manager, with the user folders from the environment.
    pub fn native(name: &str, scope: Scope) -> Result<Manager, Error> {
        let platform = Platform::native().ok_or(Error::NoServiceManager(std::env::consts::OS))?;
        Manager::new(platform, name, scope)
    }

    /// The service `name` of `platform`'s manager. Any platform can be named (for
    /// [`Manager::render`] and [`Manager::file`]); the verbs that ask the OS need its own.
    pub fn new(platform: Platform, name: &str, scope: Scope) -> Result<Manager, Error> {
        check_name(name)?;
        Ok(Manager { platform, name: name.to_owned(), scope, dirs: UserDirs::from_env(), root: None })
    }

    /// Uses `dirs` for a user service's files instead of the environment's.
    pub fn with_dirs(mut self, dirs: UserDirs) -> Manager {
        self.dirs = dirs;
        self
    }

    /// Works on the offline system image at `root` (systemd only: `systemctl --root`): the
    /// file is written under it and enabled there; nothing is started or reloaded.
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Result<Manager, Error> {
        if self.platform != Platform::Systemd {
            return Err(Error::unsupported(
                "an offline image (root)",
                self.platform,
                "only systemd has --root",
            ));
        }
        if self.scope == Scope::User {
            return Err(Error::unsupported(
                "an offline image (root)",
                self.platform,
                "an image takes system units only, not user ones",
            ));
        }
        self.root = Some(root.into());
        Ok(self)
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The offline image, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `path` inside the offline image, or `path` itself.
    pub fn in_root(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    /// Where the service file goes (inside the image, with one); for Windows, the registry
    /// key that stands in for it.
    pub fn file(&self) -> Result<PathBuf, Error> {
        match install_path(self.platform, self.scope, &self.name, &self.dirs)? {
            Some(path) => Ok(self.in_root(&path)),
            None => Ok(PathBuf::from(format!(r"{}\{}", render::windows::SERVICES_KEY, self.name))),
        }
    }

    /// The text install writes (Windows: the settings it registers), for this manager.
    pub fn render(&self, spec: &ServiceSpec) -> Result<String, Error> {
        self.check_spec(spec)?;
        render::render(self.platform, spec)
    }

    fn check_spec(&self, spec: &ServiceSpec) -> Result<(), Error> {
        if spec.name != self.name || spec.scope != self.scope {
            return Err(Error::invalid(
                "spec",
                format!("{} ({})", spec.name, spec.scope.name()),
                format!("this manager is for {} ({})", self.name, self.scope.name()),
            ));
        }
        Ok(())
    }

    /// Installs the service, or updates it when it exists: writes the file (Windows:
    /// registers the settings), makes the manager read it, and enables it when it starts
    /// automatically. Does not start it. A failure leaves the previous state.
    pub fn install(&self, spec: &ServiceSpec) -> Result<(), Error> {
        self.check_spec(spec)?;
        let text = render::render(self.platform, spec)?;
        backend::install(self, spec, &text)
    }

    /// Like [`Manager::install`], but only for a service that is installed already.
    pub fn update(&self, spec: &ServiceSpec) -> Result<(), Error> {
        self.check_spec(spec)?;
        if !self.is_installed()? {
            return Err(Error::NotInstalled { name: self.name.clone(), path: self.file()? });
        }
        self.install(spec)
    }

    /// Whether the service is installed.
    pub fn is_installed(&self) -> Result<bool, Error> {
        backend::is_installed(self)
    }

    /// Stops the service, keeps it from starting again, and removes it.
    pub fn uninstall(&self) -> Result<(), Error> {
        backend::uninstall(self)
    }

    /// Starts the service. With `wait`, returns once it runs, failing when it ended or did
    /// not get there within `wait`; without, once the manager took the request.
    pub fn start(&self, wait: Option<Duration>) -> Result<Status, Error> {
        self.live_only("start")?;
        backend::start(self, wait)
    }

    /// Stops the service. With `wait`, returns once it stopped, failing when it did not
    /// within `wait`.
    pub fn stop(&self, wait: Option<Duration>) -> Result<Status, Error> {
        self.live_only("stop")?;
        backend::stop(self, wait)
    }

    /// Pauses the service (Windows; elsewhere [`Error::Unsupported`]).
    pub fn pause(&self) -> Result<Status, Error> {
        self.live_only("pause")?;
        backend::pause(self, true)
    }

    /// Continues a paused service (Windows; elsewhere [`Error::Unsupported`]).
    pub fn resume(&self) -> Result<Status, Error> {
        self.live_only("continue")?;
        backend::pause(self, false)
    }

    /// Asks the service to reload its configuration: SIGHUP to its main process (systemd,
    /// launchd), the ParamChange control (Windows).
    pub fn reload(&self) -> Result<(), Error> {
        self.live_only("reload")?;
        backend::reload(self)
    }

    /// The state, pid and last exit of the service. Needs no root.
    pub fn status(&self) -> Result<Status, Error> {
        self.live_only("status")?;
        backend::status(self)
    }

    fn live_only(&self, verb: &'static str) -> Result<(), Error> {
        if self.root.is_some() {
            return Err(Error::unsupported(
                verb,
                self.platform,
                "it acts on the running system; an offline image (root) is only for install and uninstall",
            ));
        }
        Ok(())
    }
}

/// The backends, chosen once: systemd and launchd on every Unix (so the macOS code is
/// compiled on Linux too), the SCM on Windows.
mod backend {
    use super::*;

    #[cfg(unix)]
    macro_rules! dispatch {
        ($m:expr, $f:ident($($arg:expr),*)) => {
            match $m.platform {
                Platform::Systemd => super::systemd::$f($m, $($arg),*),
                Platform::Launchd => super::launchd::$f($m, $($arg),*),
                Platform::Windows => Err(Error::Unavailable(Platform::Windows)),
            }
        };
    }

    #[cfg(windows)]
    macro_rules! dispatch {
        ($m:expr, $f:ident($($arg:expr),*)) => {
            match $m.platform {
                Platform::Windows => super::windows::$f($m, $($arg),*),
                other => Err(Error::Unavailable(other)),
            }
        };
    }

    #[cfg(not(any(unix, windows)))]
    macro_rules! dispatch {
        ($m:expr, $f:ident($($arg:expr),*)) => {{
            $(let _ = $arg;)*
            Err(Error::Unavailable($m.platform))
        }};
    }

    pub(super) fn install(m: &Manager, spec: &ServiceSpec, text: &str) -> Result<(), Error> {
        dispatch!(m, install(spec, text))
    }
    pub(super) fn is_installed(m: &Manager) -> Result<bool, Error> {
        dispatch!(m, is_installed())
    }
    pub(super) fn uninstall(m: &Manager) -> Result<(), Error> {
        dispatch!(m, uninstall())
    }
    pub(super) fn start(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
        dispatch!(m, start(wait))
    }
    pub(super) fn stop(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
        dispatch!(m, stop(wait))
    }
    pub(super) fn pause(m: &Manager, pause: bool) -> Result<Status, Error> {
        dispatch!(m, pause(pause))
    }
    pub(super) fn reload(m: &Manager) -> Result<(), Error> {
        dispatch!(m, reload())
    }
    pub(super) fn status(m: &Manager) -> Result<Status, Error> {
        dispatch!(m, status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["steward", "my-app", "com.example.api", "a_1", "9lives"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "x.service", "x.plist", "ünï", &"a".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn install_paths() {
        let dirs = UserDirs { home: Some("/home/ann".into()), ..UserDirs::default() };
        let path = |p, scope, dirs: &UserDirs| install_path(p, scope, "app", dirs).unwrap();
        assert_eq!(
            path(Platform::Systemd, Scope::System, &dirs),
            Some("/etc/systemd/system/app.service".into())
        );
        assert_eq!(
            path(Platform::Systemd, Scope::User, &dirs),
            Some("/home/ann/.config/systemd/user/app.service".into())
        );
        let xdg = UserDirs { xdg_config_home: Some("/cfg".into()), ..dirs.clone() };
        assert_eq!(path(Platform::Systemd, Scope::User, &xdg), Some("/cfg/systemd/user/app.service".into()));
        assert_eq!(
            path(Platform::Launchd, Scope::System, &dirs),
            Some("/Library/LaunchDaemons/app.plist".into())
        );
        assert_eq!(
            path(Platform::Launchd, Scope::User, &dirs),
            Some("/home/ann/Library/LaunchAgents/app.plist".into())
        );
        assert_eq!(path(Platform::Windows, Scope::System, &dirs), None);
        let none = UserDirs::default();
        assert!(install_path(Platform::Systemd, Scope::System, "app", &none).is_ok());
        assert!(matches!(
            install_path(Platform::Launchd, Scope::User, "app", &none),
            Err(Error::NoHome("a LaunchAgent"))
        ));
    }

    #[test]
    fn managers_know_their_files_and_roots() {
        let m = Manager::new(Platform::Systemd, "app", Scope::System).unwrap();
        assert_eq!(m.file().unwrap(), PathBuf::from("/etc/systemd/system/app.service"));
        let m = m.with_root("/mnt/image").unwrap();
        assert_eq!(m.file().unwrap(), PathBuf::from("/mnt/image/etc/systemd/system/app.service"));
        assert!(matches!(m.status(), Err(Error::Unsupported { option: "status", .. })));
        let w = Manager::new(Platform::Windows, "app", Scope::System).unwrap();
        assert_eq!(w.file().unwrap(), PathBuf::from(r"HKLM\SYSTEM\CurrentControlSet\Services\app"));
        assert!(w.clone().with_root("/x").is_err());
        assert!(Manager::new(Platform::Systemd, "my app", Scope::System).is_err());
    }

    #[test]
    fn accounts_parse_windows_builtins() {
        assert_eq!(Account::parse("LocalSystem").unwrap(), Account::Default);
        assert_eq!(Account::parse("localservice").unwrap(), Account::LocalService);
        assert_eq!(Account::parse(r"NT AUTHORITY\NetworkService").unwrap(), Account::NetworkService);
        assert_eq!(Account::parse(r"CORP\svc").unwrap(), Account::User(r"CORP\svc".into()));
        assert!(Account::parse("").is_err());
        assert!(Account::parse("a\nb").is_err());
    }

    #[test]
    fn debug_keeps_env_values_out() {
        let spec = ServiceSpec::new("app", "/bin/app").env("TOKEN", "secret-value");
        let text = format!("{spec:?}");
        assert!(text.contains("TOKEN") && !text.contains("secret-value"), "{text}");
    }
}
