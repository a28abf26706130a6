//! `steward service install|uninstall|start|stop|status|render`: steward as a native service
//! (systemd on Linux, launchd on macOS) running `steward run -c CONFIG`, or on Windows a
//! service of the Service Control Manager running `steward service host --name NAME -c CONFIG`
//! (a hidden verb: only the SCM runs it).
//!
//! `render` prints exactly the file `install` writes, for any init system on any OS, so
//! packagers can generate units without installing anything. See docs/services.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::{Subcommand, ValueEnum};
use steward_core::config::parse::OsEnv;
use steward_core::config::{self, Config, OnPlatform, Platform};
use steward_core::render;
use steward_service::manage::{self, Manager, Platform as Init, Scope, StartType};

use super::Cli;
use crate::process::HOST_PLATFORM;
use crate::service::spec::{ServiceOptions, StewardService, WindowsOptions};
use crate::service::{self, native_platform};

/// How long `service start` waits for steward to run (systemd: after `systemctl start`
/// returned, which for a Type=notify unit is already after READY=1; Windows: steward reports
/// RUNNING after at most its start budget, `host::windows`, plus the time to come up).
const START_WAIT: Duration = Duration::from_secs(150);

#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub verb: ServiceVerb,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one run: a CLI call does
// not pay for the whole tree (docs/benchmarks.md, section 13).
#[command(defer = true)]
pub enum ServiceVerb {
    /// Install steward as a service started at boot (with --user: at login)
    ///
    /// The service runs `steward run -c CONFIG`. install writes the unit (systemd) or plist
    /// (launchd), then runs `systemctl daemon-reload` and `systemctl enable` (launchd:
    /// `launchctl enable`). On Windows it registers the service with the Service Control
    /// Manager, with failure actions and an Event Log source. It does not start it: `steward
    /// service start` does. Installing again replaces the file (or the settings).
    #[command(after_help = INSTALL_HELP)]
    Install(InstallArgs),
    /// Stop and disable the service, and remove its unit or plist
    ///
    /// The config, steward's state and the logs stay.
    Uninstall(UninstallArgs),
    /// Start the installed service
    ///
    /// With systemd and on Windows this returns once steward's autostart programs are up.
    Start(TargetArgs),
    /// Stop the installed service
    ///
    /// steward stops its programs in reverse dependency order, then exits.
    Stop(TargetArgs),
    /// Show whether the service is installed, enabled and running
    ///
    /// Exits 0 when it runs, 3 when it does not.
    Status(TargetArgs),
    /// Print the unit or plist install would write, installing nothing
    ///
    /// Works for every init system on every OS: for packaging, review and config management.
    Render(RenderArgs),
    /// Run as a Windows service: what the Service Control Manager starts (not for use by hand)
    #[command(hide = true)]
    Host(HostArgs),
}

impl ServiceArgs {
    /// `service host`, which sets up its own log (a file and the Event Log; it has no stderr).
    pub fn is_host(&self) -> bool {
        matches!(self.verb, ServiceVerb::Host(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// The service name the SCM knows this service by.
    #[arg(long)]
    pub name: String,
    /// A variable to set before anything else (from `service install --env`). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
}

const INSTALL_HELP: &str = "\
Examples:
  sudo steward service install -c /etc/steward/steward.toml
  steward service install --user -c ~/dev/steward.toml --name dev-stack
  sudo steward service install -c /srv/app/steward.toml --name app --account app --env STEWARD_LOG=debug
  steward service install --root /mnt/image -c /etc/steward/steward.toml --exe /usr/bin/steward

  steward service install -c C:\\ProgramData\\app\\steward.toml --name app --start delayed --depends-on Tcpip
  steward service install -c C:\\app\\steward.toml --account CORP\\svc-app --password-file C:\\secure\\pw.txt

Paths: systemd  /etc/systemd/system/NAME.service, --user ~/.config/systemd/user/NAME.service
       launchd  /Library/LaunchDaemons/NAME.plist, --user ~/Library/LaunchAgents/NAME.plist
       windows  registered with the Service Control Manager (HKLM\\SYSTEM\\CurrentControlSet\\Services\\NAME)";

/// Which service.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The service name: the unit is NAME.service, the launchd label NAME.
    #[arg(long, default_value = render::DEFAULT_NAME)]
    pub name: String,
    /// A service of your own user (systemd --user unit, launchd LaunchAgent), started at
    /// login, instead of a machine-wide one started at boot.
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Uninstall from the offline system image at DIR (see `install --root`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// What the service file says, besides the config.
#[derive(Debug, Clone, clap::Args)]
pub struct UnitArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run steward as this account (system services only; systemd `User=`, launchd
    /// `UserName`; Windows: LocalSystem (default), LocalService, NetworkService, or a user with
    /// --password-file). It must be able to read the config and write the state_dir and log_dir.
    #[arg(long, value_name = "USER")]
    pub account: Option<String>,
    /// Set a variable for steward (and so for every program). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// The steward executable the service runs. Default: this one.
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,
    /// The service's description. Default: `steward: CONFIG`.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Work on the offline system image at DIR (systemd's `--root`): -c, --exe and every path
    /// are as seen inside the image; the config is read from DIR; install writes the unit
    /// under DIR, enables it there with `systemctl --root`, and reloads or starts nothing.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub windows: WindowsArgs,
}

/// The options only a Windows service has.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Windows services")]
pub struct WindowsArgs {
    /// The name the Services console shows. Default: the service name.
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// When the service starts: auto (at boot, the default), delayed (at boot, after the other
    /// automatic services), manual, disabled.
    #[arg(long, value_name = "WHEN", value_parser = clap::builder::PossibleValuesParser::new(StartType::NAMES)
        .map(|s| StartType::from_name(&s).expect("a listed name")))]
    pub start: Option<StartType>,
    /// The file whose first line is the password of a user --account.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Services that must run before this one (`+GROUP`: a load-order group). Repeatable.
    #[arg(long, value_name = "SERVICE", num_args = 1..)]
    pub depends_on: Vec<String>,
}

impl WindowsArgs {
    fn given(&self) -> bool {
        self.display_name.is_some()
            || self.start.is_some()
            || self.password_file.is_some()
            || !self.depends_on.is_empty()
    }

    fn options(&self) -> anyhow::Result<WindowsOptions> {
        Ok(WindowsOptions {
            display_name: self.display_name.clone(),
            start: self.start.unwrap_or_default(),
            depends_on: self.depends_on.clone(),
            password_file: self.password_file.as_deref().map(absolute).transpose()?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub unit: UnitArgs,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Which init system to render for. Default: this OS's.
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,
    #[command(flatten)]
    pub unit: UnitArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// A systemd unit (Linux).
    Systemd,
    /// A launchd property list (macOS).
    Launchd,
    /// A Windows service.
    Windows,
}

impl From<InitArg> for Init {
    fn from(a: InitArg) -> Init {
        match a {
            InitArg::Systemd => Init::Systemd,
            InitArg::Launchd => Init::Launchd,
            InitArg::Windows => Init::Windows,
        }
    }
}

pub fn service(cli: &Cli, args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    match &args.verb {
        ServiceVerb::Render(a) => render_verb(cli, a),
        ServiceVerb::Install(a) => {
            let manager = manager(&a.unit.target, a.unit.root.clone())?;
            match load_config(&cli.config, a.unit.root.as_deref(), HOST_PLATFORM)? {
                Ok(config) => install(&manager, &config, &a.unit).map(|()| ExitCode::SUCCESS),
                Err(code) => Ok(code),
            }
        }
        ServiceVerb::Uninstall(a) => {
            let manager = manager(&a.target, a.root.clone())?;
            let file = manager.file()?;
            manager.uninstall()?;
            outln!("uninstalled {} ({}): removed {}", manager.name(), manager.platform(), file.display())?;
            Ok(ExitCode::SUCCESS)
        }
        ServiceVerb::Start(a) => {
            let manager = manager(a, None)?;
            // launchd has no readiness: `launchctl bootstrap` is the whole start.
            let wait = (manager.platform() != Init::Launchd).then_some(START_WAIT);
            manager.start(wait).map_err(|e| {
                let code = match &e {
                    manage::Error::Stopped { exit: Some(code), .. } => Some(*code),
                    _ => None,
                };
                let e = anyhow::Error::new(e);
                match code {
                    // What steward itself said, by its exit codes (docs/cli.md).
                    Some(code) => e.context(format!(
                        "steward exit code {code}; see the Event Log (Application, source steward) and \
                         steward.log in the config's log_dir"
                    )),
                    None => e,
                }
            })?;
            outln!("started {}", a.name)?;
            Ok(ExitCode::SUCCESS)
        }
        ServiceVerb::Stop(a) => {
            let manager = manager(a, None)?;
            // While stopping, steward keeps the manager informed for up to its stop budget
            // (systemd's TimeoutStopSec, the SCM's checkpoints); launchd's bootout is the stop.
            let wait = (manager.platform() != Init::Launchd).then_some(Duration::MAX);
            manager.stop(wait)?;
            outln!("stopped {}", a.name)?;
            Ok(ExitCode::SUCCESS)
        }
        ServiceVerb::Status(a) => status(&manager(a, None)?),
        ServiceVerb::Host(a) => crate::host::run(&a.name, &cli.config, &a.env),
    }
}

fn render_verb(cli: &Cli, args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let init = args.init.map(Init::from).unwrap_or_else(native_platform);
    // The config is checked for the OS the file is rendered for.
    let platform = args.init.map_or(HOST_PLATFORM, platform_of);
    let config = match load_config(&cli.config, args.unit.root.as_deref(), platform)? {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let steward = steward_service(&config, &args.unit, init)?;
    out!("{}", steward_service::manage::render::render(init, &steward.spec(init)?)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The platform an init system runs on.
fn platform_of(init: InitArg) -> Platform {
    match init {
        InitArg::Systemd => Platform::Linux,
        InitArg::Launchd => Platform::MacOs,
        InitArg::Windows => Platform::Windows,
    }
}

/// Installs `config` as a service: shared by `service install` and `wrap install`.
pub(super) fn install(manager: &Manager, config: &Config, args: &UnitArgs) -> anyhow::Result<()> {
    let init = manager.platform();
    let steward = steward_service(config, args, init)?;
    if args.root.is_none() && !steward.exe.is_file() {
        anyhow::bail!(
            "the steward executable {} does not exist; give the installed one with --exe",
            steward.exe.display()
        );
    }
    let spec = steward.spec(init)?;
    manager.install(&spec)?;
    let file = manager.file()?;
    let scope = manager.scope();
    let user = if scope == Scope::User { " --user" } else { "" };
    let when = if scope == Scope::User { "login" } else { "boot" };
    let name = manager.name();
    outln!("installed {name} ({init}, {}): {}", scope.name(), file.display())?;
    if init == Init::Windows {
        let settings = manage::render::windows::settings(&spec)?;
        outln!("  runs:   {}", settings.command_line)?;
        match settings.start {
            StartType::Disabled => {
                outln!("  starts: never (disabled); install again with --start to enable it")?
            }
            start => {
                outln!("  starts: {}; start it now with `steward service start --name {name}`", start.name())?
            }
        }
        outln!("  steward's log: {}; Event Log: Application, source steward", steward.log_file.display())?;
        return Ok(());
    }
    outln!("  runs:   {} run -c {}", steward.exe.display(), steward.config.display())?;
    if steward.exe.components().any(|c| c.as_os_str() == "target") {
        outln!("  note: the service runs a build from a cargo target folder; --exe names an installed copy")?;
    }
    if manager.root().is_some() {
        outln!("  enabled in the image; it starts when the image boots")?;
        return Ok(());
    }
    outln!("  starts at {when}; start it now with `steward service start{user} --name {name}`")?;
    match init {
        Init::Systemd => outln!("  steward's log: `journalctl{user} -u {name}`")?,
        _ => outln!("  steward's log: {}", steward.log_file.display())?,
    }
    Ok(())
}

fn status(manager: &Manager) -> anyhow::Result<ExitCode> {
    let s = manager.status()?;
    outln!("{} ({}, {}): {}", manager.name(), manager.platform(), manager.scope().name(), s.detail)?;
    match (&s.file, &s.enabled) {
        (Some(file), Some(enabled)) => outln!("  file:    {} ({enabled})", file.display())?,
        (Some(file), None) => outln!("  file:    {}", file.display())?,
        (None, _) => {}
    }
    if let Some(pid) = s.pid {
        outln!("  pid:     {pid}")?;
    }
    if let Some(command) = &s.command {
        outln!("  runs:    {command}")?;
    }
    if let Some(text) = &s.status_text {
        outln!("  steward: {text}")?;
    }
    Ok(if s.running() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

/// steward's service for `config` with the options of the command line, for `init`.
fn steward_service(config: &Config, args: &UnitArgs, init: Init) -> anyhow::Result<StewardService> {
    manage::check_name(&args.target.name)?;
    if init != Init::Windows && args.windows.given() {
        anyhow::bail!(
            "--display-name, --start, --password-file and --depends-on are for Windows services only"
        );
    }
    let exe = match &args.exe {
        Some(exe) => absolute(exe)?,
        None => std::env::current_exe()
            .context("cannot find the path of this steward executable; give it with --exe")?,
    };
    let env: BTreeMap<String, String> = args.env.iter().cloned().collect();
    let opts = ServiceOptions {
        name: args.target.name.clone(),
        description: args.description.clone(),
        exe,
        scope: scope(&args.target),
        account: args.account.clone(),
        env,
        windows: args.windows.options()?,
    };
    Ok(StewardService::from_config(config, opts))
}

pub(super) fn scope(args: &TargetArgs) -> Scope {
    if args.user {
        Scope::User
    } else {
        Scope::System
    }
}

/// The service manager of this OS for `args`, on the offline image `root` when given.
pub(super) fn manager(args: &TargetArgs, root: Option<PathBuf>) -> Result<Manager, manage::Error> {
    service::manager(&args.name, scope(args), root)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Loads the config for a service on `platform`: the path made absolute (the service starts
/// elsewhere), or, with `root`, the file inside that image. An invalid config prints its
/// errors and gives exit code 1 (the `Err` side of the inner result).
pub(super) fn load_config(
    path: &Path,
    root: Option<&Path>,
    platform: Platform,
) -> anyhow::Result<Result<Config, ExitCode>> {
    let result = match root {
        None => config::load_with(&absolute(path)?, &OnPlatform { env: OsEnv, platform }),
        Some(root) => {
            if !path.is_absolute() {
                anyhow::bail!(
                    "with --root, give -c as an absolute path inside the image (such as /etc/steward/steward.toml), \
                     not {}",
                    path.display()
                );
            }
            let env = RootEnv { root };
            let on_host = env.host_path(path);
            let text = std::fs::read_to_string(&on_host)
                .with_context(|| format!("cannot read the config {} (from --root)", on_host.display()))?;
            config::parse_str(&text, path, &OnPlatform { env, platform })
        }
    };
    match result {
        Ok(config) => {
            if !config.warnings.is_empty() {
                errln!("{}", config.warnings);
            }
            Ok(Ok(config))
        }
        Err(diags) => {
            errln!("{diags}");
            Ok(Err(ExitCode::from(1)))
        }
    }
}

/// The config's outside world inside an image: env files are read under the root; variables
/// come from this environment, as they will at build time.
struct RootEnv<'a> {
    root: &'a Path,
}

impl RootEnv<'_> {
    fn host_path(&self, path: &Path) -> PathBuf {
        let inside: PathBuf = path
            .components()
            .filter(|c| !matches!(c, std::path::Component::RootDir | std::path::Component::Prefix(_)))
            .collect();
        self.root.join(inside)
    }
}

impl config::Env for RootEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.host_path(path))
    }
}

/// `KEY=VALUE`.
pub(super) fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}
