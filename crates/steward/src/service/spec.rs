//! steward's own service, described to the `steward-service` library: what `steward service
//! install` and `render` ask `steward_service::manage` for, built from the config and the
//! options of the command line.
//!
//! What steward wants from each service manager:
//! - **systemd**: `steward run -c CONFIG` as `Type=notify` (steward sends `READY=1` once its
//!   autostart programs are up, see [`super::status`]); `KillMode=mixed`, so systemd sends
//!   SIGTERM to steward alone and steward stops its programs in reverse dependency order,
//!   and only after `TimeoutStopSec` (the [`stop_budget`]) does systemd kill what is left;
//!   `Delegate=yes`, so steward may make a cgroup per program and kill each with
//!   `cgroup.kill` (`crate::process::contain`); `Restart=on-failure` after 1 s (steward exits
//!   0 after an orderly shutdown, non-zero when it fails); `WatchdogSec=` from
//!   `[supervisor] watchdog`; a system unit waits for `network-online.target`.
//! - **launchd**: the same command, `KeepAlive` after a failure (launchd's own 10 s throttle),
//!   `ExitTimeOut` the stop budget, and steward's output in `<log_dir>/steward.log` (launchd
//!   has no journal). launchd has no watchdog and no readiness protocol: those are left out.
//! - **Windows**: the SCM runs `steward service host --name NAME -c CONFIG [--env K=V]..`
//!   (the hidden verb of `crate::host`, which applies the variables itself); failure actions
//!   restart after 5 s, 10 s, then 30 s, the count reset after a day; the preshutdown timeout
//!   is the stop budget. Install also registers the Event Log source
//!   [`EVENT_SOURCE`](steward_core::render::windows::EVENT_SOURCE).
//!
//! Everything here is pure; the glue in [`super`] hands the spec to a `Manager`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use steward_core::config::Config;
use steward_core::render::stop_budget;
use steward_service::manage::render::check_env_name;
use steward_service::manage::{
    Account, Dependency, Error, KillMode, Platform, RestartPolicy, Scope, ServiceSpec, StartType,
};

/// The hidden verb the SCM runs: `steward service host --name NAME -c CONFIG [--env K=V]..`.
pub const HOST_VERB: [&str; 2] = ["service", "host"];

/// systemd's delay before it starts a failed steward again.
pub const SYSTEMD_RESTART_DELAY: Duration = Duration::from_secs(1);

/// The SCM's restart delays: the first failure, the second, and every later one.
pub const WINDOWS_RESTART_DELAYS: [Duration; 3] =
    [Duration::from_secs(5), Duration::from_secs(10), Duration::from_secs(30)];

/// After this long without a failure, the SCM counts failures from zero again.
pub const WINDOWS_FAILURE_RESET: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything a service definition says about steward itself, whatever the manager.
#[derive(Clone, PartialEq, Eq)]
pub struct StewardService {
    /// The service name: `NAME.service`, the launchd label, the Windows service name.
    pub name: String,
    /// The description.
    pub description: String,
    /// Absolute path of the steward executable.
    pub exe: PathBuf,
    /// Absolute path of the config, run as `steward run -c CONFIG`.
    pub config: PathBuf,
    /// System or user.
    pub scope: Scope,
    /// The account to run as (`--account`; system scope only).
    pub account: Option<String>,
    /// The folder steward starts in: the config's folder.
    pub working_dir: PathBuf,
    /// Variables for steward itself (and so, inherited, for every program).
    pub env: BTreeMap<String, String>,
    /// `[supervisor] watchdog`.
    pub watchdog: Option<Duration>,
    /// How long the manager waits for steward to stop: the config's [`stop_budget`].
    pub stop_timeout: Duration,
    /// Where steward's own output goes when the manager has no journal (launchd).
    pub log_file: PathBuf,
    /// What only a Windows service has.
    pub windows: WindowsOptions,
}

// Hand-written so that the values of `env` never reach a log line.
impl fmt::Debug for StewardService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&String> = self.env.keys().collect();
        f.debug_struct("StewardService")
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

/// The options only a Windows service has (`--display-name`, `--start`, `--depends-on`,
/// `--password-file`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowsOptions {
    /// What the Services console shows. Default: the service name.
    pub display_name: Option<String>,
    /// When the SCM starts it.
    pub start: StartType,
    /// Services that must run before this one; `+NAME` is a load-order group.
    pub depends_on: Vec<String>,
    /// The file install reads a user account's password from. Only its path is kept here.
    pub password_file: Option<PathBuf>,
}

/// What the person installing chooses; the rest of a [`StewardService`] comes from the config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    /// The service name.
    pub name: String,
    /// Default: `steward: CONFIG`.
    pub description: Option<String>,
    /// The steward executable the service runs.
    pub exe: PathBuf,
    /// System or user.
    pub scope: Scope,
    /// `--account`.
    pub account: Option<String>,
    /// `--env`.
    pub env: BTreeMap<String, String>,
    /// The Windows-only options.
    pub windows: WindowsOptions,
}

impl StewardService {
    /// The service that runs `config` (whose `source` must be the absolute path the service
    /// will read it from).
    pub fn from_config(config: &Config, opts: ServiceOptions) -> StewardService {
        let working_dir = config.source.parent().map(Path::to_path_buf).unwrap_or_default();
        let description = opts.description.unwrap_or_else(|| format!("steward: {}", config.source.display()));
        StewardService {
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

    /// The library's spec of this service for `platform` (see the module doc).
    pub fn spec(&self, platform: Platform) -> Result<ServiceSpec, Error> {
        let config = self.config.to_string_lossy().into_owned();
        let spec = ServiceSpec::new(self.name.clone(), self.exe.clone())
            .description(self.description.clone())
            .scope(self.scope)
            .stop_timeout(self.stop_timeout);
        Ok(match platform {
            Platform::Systemd => {
                let mut spec = spec
                    .note("Generated by `steward service install`; `steward service render --init systemd`")
                    .note("prints the same. Installing again overwrites this file.")
                    .args(["run", "-c", &config])
                    .working_dir(self.working_dir.clone())
                    .restart(RestartPolicy::on_failure([SYSTEMD_RESTART_DELAY]))
                    .kill_mode(KillMode::Mixed)
                    .delegate_cgroups(true);
                if self.scope == Scope::System {
                    // Programs usually want the network; a user manager has no such target.
                    spec = spec.depends_on(Dependency::NetworkOnline);
                }
                if let Some(watchdog) = self.watchdog {
                    spec = spec.watchdog(watchdog);
                }
                self.unix_common(spec)
            }
            Platform::Launchd => {
                let spec = spec
                    .note("Generated by `steward service install`; `steward service render` prints the same")
                    .note("for the launchd init. Installing again overwrites this file.")
                    .args(["run", "-c", &config])
                    .working_dir(self.working_dir.clone())
                    // launchd's own throttle (10 s) spaces the restarts.
                    .restart(RestartPolicy::on_failure([]))
                    .log_file(self.log_file.clone());
                self.unix_common(spec)
            }
            Platform::Windows => self.windows_spec(spec, config)?,
        })
    }

    fn unix_common(&self, mut spec: ServiceSpec) -> ServiceSpec {
        if let Some(account) = &self.account {
            spec = spec.account(Account::User(account.clone()));
        }
        spec.env = self.env.clone();
        spec
    }

    fn windows_spec(&self, spec: ServiceSpec, config: String) -> Result<ServiceSpec, Error> {
        let mut args: Vec<String> = HOST_VERB.iter().map(|s| (*s).to_owned()).collect();
        args.extend(["--name".to_owned(), self.name.clone(), "-c".to_owned(), config]);
        for (key, value) in &self.env {
            // Checked here, as the other managers check their variables: `service host`
            // applies them itself.
            check_env_name(key)?;
            args.extend(["--env".to_owned(), format!("{key}={value}")]);
        }
        let opts = &self.windows;
        let mut spec = spec
            .note("What `steward service install` registers with the Windows Service Control Manager;")
            .note("`steward service render --init windows` prints the same.")
            .args(args)
            .start(opts.start)
            .restart(RestartPolicy::on_failure(WINDOWS_RESTART_DELAYS).reset_after(WINDOWS_FAILURE_RESET))
            // Side-by-side stewards share one source; the library counts its users.
            .event_source(steward_core::render::windows::EVENT_SOURCE);
        if let Some(name) = &opts.display_name {
            spec = spec.display_name(name.clone());
        }
        if let Some(account) = &self.account {
            spec = spec.account(Account::parse(account)?);
        }
        if let Some(file) = &opts.password_file {
            spec = spec.password_file(file.clone());
        }
        for dep in &opts.depends_on {
            spec = spec.depends_on(Dependency::Service(dep.clone()));
        }
        Ok(spec)
    }
}

/// The folders of the user a `--user` service or wrap belongs to, read from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrapDirs {
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `XDG_DATA_HOME`, when set and absolute.
    pub xdg_data_home: Option<PathBuf>,
    /// `ProgramData` (Windows), when set.
    pub program_data: Option<PathBuf>,
}

impl WrapDirs {
    /// This process's `HOME`, `XDG_DATA_HOME` and `ProgramData`, each when set and absolute.
    pub fn from_env() -> WrapDirs {
        let abs = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
        WrapDirs { home: abs("HOME"), xdg_data_home: abs("XDG_DATA_HOME"), program_data: abs("ProgramData") }
    }
}

/// The folder that holds a wrapped program's generated config, state and logs.
///
/// | platform | system | user |
/// |---|---|---|
/// | systemd (Linux) | `/var/lib/steward/wrap/NAME` | `$XDG_DATA_HOME/steward/wrap/NAME` (default `~/.local/share`) |
/// | launchd (macOS) | `/Library/Application Support/steward/wrap/NAME` | `~/Library/Application Support/steward/wrap/NAME` |
/// | windows | `%ProgramData%\steward\wrap\NAME` (default `C:\ProgramData`) | none: Windows services are machine-wide |
pub fn wrap_dir(platform: Platform, scope: Scope, name: &str, dirs: &WrapDirs) -> Result<PathBuf, Error> {
    let home = || dirs.home.as_deref().ok_or(Error::NoHome("a --user service"));
    let base = match (platform, scope) {
        (Platform::Systemd, Scope::System) => PathBuf::from("/var/lib/steward"),
        (Platform::Systemd, Scope::User) => match &dirs.xdg_data_home {
            Some(dir) => dir.join("steward"),
            None => home()?.join(".local/share/steward"),
        },
        (Platform::Launchd, Scope::System) => PathBuf::from("/Library/Application Support/steward"),
        (Platform::Launchd, Scope::User) => home()?.join("Library/Application Support/steward"),
        (Platform::Windows, Scope::System) => {
            let base = dirs
                .program_data
                .as_deref()
                .map(|p| p.to_string_lossy().trim_end_matches(['\\', '/']).to_owned())
                .unwrap_or_else(|| r"C:\ProgramData".to_owned());
            return Ok(PathBuf::from(format!(r"{base}\steward\wrap\{name}")));
        }
        (Platform::Windows, Scope::User) => {
            return Err(Error::Unsupported {
                option: "scope User",
                platform: Platform::Windows,
                why: "--user: Windows services belong to the machine".into(),
            })
        }
    };
    Ok(base.join("wrap").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_dirs() {
        let dirs = WrapDirs { home: Some("/home/ann".into()), ..WrapDirs::default() };
        let dir = |p, scope, dirs: &WrapDirs| wrap_dir(p, scope, "api", dirs).unwrap();
        assert_eq!(dir(Platform::Systemd, Scope::System, &dirs), PathBuf::from("/var/lib/steward/wrap/api"));
        assert_eq!(
            dir(Platform::Systemd, Scope::User, &dirs),
            PathBuf::from("/home/ann/.local/share/steward/wrap/api")
        );
        let xdg = WrapDirs { xdg_data_home: Some("/data".into()), ..dirs.clone() };
        assert_eq!(dir(Platform::Systemd, Scope::User, &xdg), PathBuf::from("/data/steward/wrap/api"));
        assert_eq!(
            dir(Platform::Launchd, Scope::System, &dirs),
            PathBuf::from("/Library/Application Support/steward/wrap/api")
        );
        assert_eq!(
            dir(Platform::Launchd, Scope::User, &dirs),
            PathBuf::from("/home/ann/Library/Application Support/steward/wrap/api")
        );
        let windows = WrapDirs { program_data: Some(r"D:\Data\".into()), ..dirs.clone() };
        assert_eq!(
            dir(Platform::Windows, Scope::System, &windows),
            PathBuf::from(r"D:\Data\steward\wrap\api")
        );
        assert_eq!(
            dir(Platform::Windows, Scope::System, &dirs),
            PathBuf::from(r"C:\ProgramData\steward\wrap\api")
        );
        assert!(wrap_dir(Platform::Windows, Scope::User, "api", &dirs).is_err());
        assert!(wrap_dir(Platform::Launchd, Scope::User, "api", &WrapDirs::default()).is_err());
    }
}
