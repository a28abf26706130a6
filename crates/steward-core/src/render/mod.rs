//! The files a service manager reads, rendered as text: a systemd unit ([`systemd`]), a
//! launchd property list ([`launchd`]), the settings registered with the Windows Service
//! Control Manager ([`windows`]), and the generated config of a wrapped program ([`wrap`]).
//!
//! Everything here is pure: a [`ServiceSpec`] (or a [`wrap::WrapSpec`]) in, text out. No file
//! is read or written and no OS is asked anything, so every renderer is compiled and tested on
//! every OS, and `steward service render` can produce a Linux unit on a Mac for packaging.
//! Where the text goes ([`install_path`], [`wrap_dir`]) is also decided here, from the home
//! folder the caller passes in. The `steward` crate does the I/O: it writes the text and calls
//! `systemctl` or `launchctl`, or hands the Windows settings to the SCM.

pub mod launchd;
pub mod systemd;
pub mod windows;
pub mod wrap;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;

/// A service manager steward can be installed into. Each has a renderer; Windows services
/// are registered with the Service Control Manager instead of a file, and their renderer
/// prints the settings install registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    Systemd,
    Launchd,
    Windows,
}

impl Init {
    pub const NAMES: &'static [&'static str] = &["systemd", "launchd", "windows"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "systemd" => Some(Self::Systemd),
            "launchd" => Some(Self::Launchd),
            "windows" => Some(Self::Windows),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
            Self::Windows => "windows",
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Machine-wide service (systemd system unit, LaunchDaemon), or one that runs as the user
/// who installs it (systemd `--user` unit, LaunchAgent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    System,
    User,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
        }
    }
}

/// Everything a service definition says about steward itself.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The service name: `NAME.service`, the launchd label, the Windows service name.
    pub name: String,
    pub description: String,
    /// Absolute path of the steward executable.
    pub exe: PathBuf,
    /// Absolute path of the config, run as `steward run -c CONFIG`.
    pub config: PathBuf,
    pub scope: Scope,
    /// The account to run as (system scope only; a user service runs as its user).
    pub account: Option<String>,
    /// The folder steward starts in: the config's folder.
    pub working_dir: PathBuf,
    /// Variables for steward itself (and so, inherited, for every program).
    pub env: BTreeMap<String, String>,
    /// `[supervisor] watchdog`.
    pub watchdog: Option<Duration>,
    /// How long the service manager waits for steward to stop before it kills everything:
    /// see [`stop_budget`].
    pub stop_timeout: Duration,
    /// Where steward's own output goes when the service manager has no journal (launchd,
    /// Windows).
    pub log_file: PathBuf,
    /// What only a Windows service has (start type, dependencies, display name).
    pub windows: windows::WindowsOptions,
}

// Hand-written so that the values of `env` never reach a log line.
impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env.keys().collect();
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("exe", &self.exe)
            .field("config", &self.config)
            .field("scope", &self.scope)
            .field("account", &self.account)
            .field("working_dir", &self.working_dir)
            .field("env(keys only)", &env_keys)
            .field("watchdog", &self.watchdog)
            .field("stop_timeout", &self.stop_timeout)
            .field("log_file", &self.log_file)
            .field("windows", &self.windows)
            .finish()
    }
}

/// What the person installing chooses; the rest of a [`ServiceSpec`] comes from the config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    pub name: String,
    /// Default: `steward: CONFIG`.
    pub description: Option<String>,
    pub exe: PathBuf,
    pub scope: Scope,
    pub account: Option<String>,
    pub env: BTreeMap<String, String>,
    pub windows: windows::WindowsOptions,
}

/// Extra time on top of the programs' stop timeouts for steward's own shutdown (the last
/// log lines, the final sweep of each process group).
pub const STOP_MARGIN: Duration = Duration::from_secs(5);

/// The default service name.
pub const DEFAULT_NAME: &str = "steward";

impl ServiceSpec {
    /// The service that runs `config` (whose `source` must be the absolute path the service
    /// will read it from).
    pub fn from_config(config: &Config, opts: ServiceOptions) -> ServiceSpec {
        let working_dir = config.source.parent().map(Path::to_path_buf).unwrap_or_default();
        let description = opts.description.unwrap_or_else(|| format!("steward: {}", config.source.display()));
        ServiceSpec {
            name: opts.name,
            description,
            exe: opts.exe,
            config: config.source.clone(),
            scope: opts.scope,
            account: opts.account,
            working_dir,
            env: opts.env,
            watchdog: config.supervisor.watchdog,
            stop_timeout: stop_budget(config),
            log_file: config.supervisor.log_dir.join("steward.log"),
            windows: opts.windows,
        }
    }
}

/// How long an orderly shutdown of `config` can take at worst: programs stop in reverse
/// dependency order, each within its `stop_timeout`, so the worst case is the longest chain
/// of `depends_on` summed up (independent programs stop at the same time), plus
/// [`STOP_MARGIN`]. The unit's `TimeoutStopSec` (launchd: `ExitTimeOut`) is this, so the
/// service manager never kills programs that steward is still stopping politely.
pub fn stop_budget(config: &Config) -> Duration {
    fn chain(config: &Config, name: &str, memo: &mut BTreeMap<String, Duration>) -> Duration {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let Some(p) = config.programs.get(name) else { return Duration::ZERO };
        // The graph is acyclic (the parser rejects cycles), so this recursion ends.
        let deps = p.depends_on.iter().map(|d| chain(config, d, memo)).max().unwrap_or_default();
        let total = p.stop_timeout.saturating_add(deps);
        memo.insert(name.to_owned(), total);
        total
    }
    let mut memo = BTreeMap::new();
    let longest = config.programs.keys().map(|n| chain(config, n, &mut memo)).max().unwrap_or_default();
    longest.saturating_add(STOP_MARGIN)
}

/// Why a service definition cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("invalid service name `{name}`: {why}")]
    BadName { name: String, why: String },
    #[error("{what} cannot contain {found}: {value:?}")]
    BadValue { what: String, value: String, found: &'static str },
    #[error(
        "invalid environment variable name `{0}`: use letters, digits and `_`, not starting with a digit"
    )]
    BadEnvName(String),
    #[error("an account (`--account`) is only for system services; a --user service runs as its user")]
    AccountForUserService,
    #[error("{0} needs the home folder, and HOME is not set")]
    NoHome(&'static str),
    #[error("the {0} renderer is not available in this build")]
    NotAvailable(Init),
    #[error("{init} services do not support {what}")]
    Unsupported { init: Init, what: &'static str },
}

/// Service names become file names and labels on every OS: letters, digits, `_`, `-` and
/// `.`, starting with a letter or digit, at most 100 characters.
pub fn check_name(name: &str) -> Result<(), RenderError> {
    let bad = |why: &str| Err(RenderError::BadName { name: name.to_owned(), why: why.to_owned() });
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
            return bad(&format!("give it without `{suffix}`, which steward adds"));
        }
    }
    Ok(())
}

/// The text for `init`. Windows services have no file: theirs is the list of settings given
/// to the Service Control Manager.
pub fn render(init: Init, spec: &ServiceSpec) -> Result<String, RenderError> {
    match init {
        Init::Systemd => systemd::unit(spec),
        Init::Launchd => launchd::plist(spec),
        Init::Windows => windows::render(spec),
    }
}

/// The folders of the user a `--user` service is installed for. Only what the caller read
/// from the environment; nothing here looks it up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDirs {
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` (systemd user units), when set and absolute.
    pub xdg_config_home: Option<PathBuf>,
    /// `XDG_DATA_HOME` (wrap data on Linux), when set and absolute.
    pub xdg_data_home: Option<PathBuf>,
    /// `ProgramData` (wrap data on Windows), when set.
    pub program_data: Option<PathBuf>,
}

impl UserDirs {
    fn home(&self, what: &'static str) -> Result<&Path, RenderError> {
        self.home.as_deref().ok_or(RenderError::NoHome(what))
    }
}

/// Where install writes the service file. `None` for Windows, which has no file.
///
/// | init | system | user |
/// |---|---|---|
/// | systemd | `/etc/systemd/system/NAME.service` | `$XDG_CONFIG_HOME/systemd/user/NAME.service` (default `~/.config`) |
/// | launchd | `/Library/LaunchDaemons/NAME.plist` | `~/Library/LaunchAgents/NAME.plist` |
pub fn install_path(
    init: Init,
    scope: Scope,
    name: &str,
    dirs: &UserDirs,
) -> Result<Option<PathBuf>, RenderError> {
    let path = match (init, scope) {
        (Init::Systemd, Scope::System) => {
            PathBuf::from("/etc/systemd/system").join(format!("{name}.service"))
        }
        (Init::Systemd, Scope::User) => {
            let config_home = match &dirs.xdg_config_home {
                Some(dir) => dir.clone(),
                None => dirs.home("a --user unit")?.join(".config"),
            };
            config_home.join("systemd/user").join(format!("{name}.service"))
        }
        (Init::Launchd, Scope::System) => {
            PathBuf::from("/Library/LaunchDaemons").join(format!("{name}.plist"))
        }
        (Init::Launchd, Scope::User) => {
            dirs.home("a LaunchAgent")?.join("Library/LaunchAgents").join(format!("{name}.plist"))
        }
        (Init::Windows, _) => return Ok(None),
    };
    Ok(Some(path))
}

/// The folder that holds a wrapped program's generated config, state and logs.
///
/// | init | system | user |
/// |---|---|---|
/// | systemd (Linux) | `/var/lib/steward/wrap/NAME` | `$XDG_DATA_HOME/steward/wrap/NAME` (default `~/.local/share`) |
/// | launchd (macOS) | `/Library/Application Support/steward/wrap/NAME` | `~/Library/Application Support/steward/wrap/NAME` |
/// | windows | `%ProgramData%\steward\wrap\NAME` (default `C:\ProgramData`) | none: Windows services are machine-wide |
///
/// The result is always `Some`; the `Option` is kept for a service manager without a wrap
/// folder.
pub fn wrap_dir(
    init: Init,
    scope: Scope,
    name: &str,
    dirs: &UserDirs,
) -> Result<Option<PathBuf>, RenderError> {
    let base = match (init, scope) {
        (Init::Systemd, Scope::System) => PathBuf::from("/var/lib/steward"),
        (Init::Systemd, Scope::User) => match &dirs.xdg_data_home {
            Some(dir) => dir.join("steward"),
            None => dirs.home("a --user service")?.join(".local/share/steward"),
        },
        (Init::Launchd, Scope::System) => PathBuf::from("/Library/Application Support/steward"),
        (Init::Launchd, Scope::User) => {
            dirs.home("a --user service")?.join("Library/Application Support/steward")
        }
        (Init::Windows, Scope::System) => {
            return Ok(Some(windows::wrap_dir(dirs.program_data.as_deref(), name)))
        }
        (Init::Windows, Scope::User) => {
            return Err(RenderError::Unsupported {
                init: Init::Windows,
                what: "--user: Windows services belong to the machine",
            })
        }
    };
    Ok(Some(base.join("wrap").join(name)))
}

/// Rejects values that no service file format can carry: line breaks and other control
/// characters.
pub(crate) fn check_text(what: &str, value: &str) -> Result<(), RenderError> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(RenderError::BadValue {
            what: what.to_owned(),
            value: value.to_owned(),
            found: match c {
                '\n' | '\r' => "a line break",
                '\0' => "a NUL character",
                _ => "a control character",
            },
        }),
    }
}

/// Environment variable names the renderers accept (portable shell names).
pub(crate) fn check_env_name(name: &str) -> Result<(), RenderError> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RenderError::BadEnvName(name.to_owned()))
    }
}

/// A path as text, checked for control characters.
pub(crate) fn path_text(what: &str, path: &Path) -> Result<String, RenderError> {
    let text = path.to_string_lossy().into_owned();
    check_text(what, &text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::{parse_str, EmptyEnv as NoEnv};

    fn config(src: &str) -> Config {
        parse_str(src, Path::new("/srv/app/steward.toml"), &NoEnv).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn stop_budget_is_the_longest_chain_plus_margin() {
        // No programs: only the margin.
        assert_eq!(stop_budget(&config("")), STOP_MARGIN);
        // web -> api -> db stop one after the other: 5 + 10 + 30; cron (60) stops alongside.
        let c = config(
            r#"
[programs.db]
command = "db"
stop_timeout = "30s"
[programs.api]
command = "api"
depends_on = ["db"]
[programs.web]
command = "web"
stop_timeout = "5s"
depends_on = ["api", "db"]
[programs.cron]
command = "cron"
stop_timeout = "40s"
"#,
        );
        assert_eq!(stop_budget(&c), Duration::from_secs(45) + STOP_MARGIN);
    }

    #[test]
    fn names() {
        for ok in ["steward", "my-app", "com.example.api", "a_1", "9lives"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "x.service", "x.plist", "ünï", &"a".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn install_paths() {
        let dirs = UserDirs { home: Some("/home/ann".into()), ..UserDirs::default() };
        let path = |init, scope, dirs: &UserDirs| install_path(init, scope, "app", dirs).unwrap();
        assert_eq!(path(Init::Systemd, Scope::System, &dirs), Some("/etc/systemd/system/app.service".into()));
        assert_eq!(
            path(Init::Systemd, Scope::User, &dirs),
            Some("/home/ann/.config/systemd/user/app.service".into())
        );
        let xdg = UserDirs { xdg_config_home: Some("/cfg".into()), ..dirs.clone() };
        assert_eq!(path(Init::Systemd, Scope::User, &xdg), Some("/cfg/systemd/user/app.service".into()));
        assert_eq!(
            path(Init::Launchd, Scope::System, &dirs),
            Some("/Library/LaunchDaemons/app.plist".into())
        );
        assert_eq!(
            path(Init::Launchd, Scope::User, &dirs),
            Some("/home/ann/Library/LaunchAgents/app.plist".into())
        );
        assert_eq!(path(Init::Windows, Scope::System, &dirs), None);
        // A system unit needs no home; a user unit does.
        let none = UserDirs::default();
        assert!(install_path(Init::Systemd, Scope::System, "app", &none).is_ok());
        assert_eq!(
            install_path(Init::Launchd, Scope::User, "app", &none),
            Err(RenderError::NoHome("a LaunchAgent"))
        );
    }

    #[test]
    fn wrap_dirs() {
        let dirs = UserDirs { home: Some("/home/ann".into()), ..UserDirs::default() };
        let dir = |init, scope, dirs: &UserDirs| wrap_dir(init, scope, "api", dirs).unwrap();
        assert_eq!(dir(Init::Systemd, Scope::System, &dirs), Some("/var/lib/steward/wrap/api".into()));
        assert_eq!(
            dir(Init::Systemd, Scope::User, &dirs),
            Some("/home/ann/.local/share/steward/wrap/api".into())
        );
        let xdg = UserDirs { xdg_data_home: Some("/data".into()), ..dirs.clone() };
        assert_eq!(dir(Init::Systemd, Scope::User, &xdg), Some("/data/steward/wrap/api".into()));
        assert_eq!(
            dir(Init::Launchd, Scope::System, &dirs),
            Some("/Library/Application Support/steward/wrap/api".into())
        );
        assert_eq!(
            dir(Init::Launchd, Scope::User, &dirs),
            Some("/home/ann/Library/Application Support/steward/wrap/api".into())
        );
        let windows = UserDirs { program_data: Some(r"D:\Data".into()), ..dirs.clone() };
        assert_eq!(dir(Init::Windows, Scope::System, &windows), Some(r"D:\Data\steward\wrap\api".into()));
        assert_eq!(dir(Init::Windows, Scope::System, &dirs), Some(r"C:\ProgramData\steward\wrap\api".into()));
        assert!(wrap_dir(Init::Windows, Scope::User, "api", &dirs).is_err());
    }

    #[test]
    fn text_checks() {
        assert!(check_text("x", "plain text, with % and $").is_ok());
        assert!(matches!(check_text("x", "a\nb"), Err(RenderError::BadValue { found: "a line break", .. })));
        assert!(check_env_name("RUST_LOG").is_ok());
        assert!(check_env_name("_X1").is_ok());
        for bad in ["", "1X", "A-B", "A=B", "A B"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }
}
