//! `steward wrap install|show|uninstall`: one program as a service, without writing a config.
//!
//! `wrap install NAME -- PROGRAM ARGS..` generates a config with that one program (named
//! NAME, with the restart, stop, readiness and log options given) in the wrap folder, then
//! installs it exactly as `steward service install` would, under the service name NAME.
//!
//! The wrap folder holds the generated `steward.toml`, steward's state and the logs:
//! - Linux: `/var/lib/steward/wrap/NAME`, --user `$XDG_DATA_HOME/steward/wrap/NAME`
//!   (default `~/.local/share/steward/wrap/NAME`)
//! - macOS: `/Library/Application Support/steward/wrap/NAME`, --user the same under `~`
//! - Windows: `%ProgramData%\steward\wrap\NAME` (services there are machine-wide: no --user)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::Subcommand;
use steward_core::config::{self, Readiness, RestartPolicy, RotateEvery, StopSignal};
use steward_core::render::wrap::{config_toml, WrapSpec};
use steward_core::units;
use steward_service::manage::{self, Platform, Scope};

use super::service::{self as service_cli, TargetArgs, UnitArgs, WindowsArgs};
use super::Cli;
use crate::service::spec::WrapDirs;
use crate::service::{self, spec};

#[derive(Debug, clap::Args)]
pub struct WrapArgs {
    #[command(subcommand)]
    pub verb: WrapVerb,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one run: a CLI call does
// not pay for the whole tree (docs/benchmarks.md, section 13).
#[command(defer = true)]
pub enum WrapVerb {
    /// Run one program as a service, without writing a config
    ///
    /// Generates a config with that one program in the wrap folder and installs it like
    /// `steward service install` (enabled, not started: `steward service start --name NAME`
    /// starts it). Installing again replaces both.
    #[command(after_help = WRAP_HELP)]
    Install(Box<WrapInstallArgs>),
    /// Print the generated config of a wrapped program.
    Show(WrapTargetArgs),
    /// Uninstall the service and delete its wrap folder
    ///
    /// The wrap folder holds the generated config, the state and the program's logs.
    Uninstall(WrapUninstallArgs),
}

const WRAP_HELP: &str = "\
Examples:
  sudo steward wrap install api --restart always --env PORT=8080 -- /usr/local/bin/api-server --verbose
  steward wrap install --user notes --cwd ~/notes --log-max-size 10MB -- python3 -m http.server 8000

The program is made absolute when installing (a bare name is looked up on PATH now,
since services run with a minimal PATH); its working directory defaults to the current one.
Wrap folder: Linux /var/lib/steward/wrap/NAME (--user ~/.local/share/steward/wrap/NAME),
             macOS /Library/Application Support/steward/wrap/NAME (--user the same under ~),
             Windows %ProgramData%\\steward\\wrap\\NAME";

#[derive(Debug, clap::Args)]
pub struct WrapTargetArgs {
    /// The service (and program) name.
    pub name: String,
    /// A wrap of your own user's (see `wrap install --user`).
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, clap::Args)]
pub struct WrapUninstallArgs {
    #[command(flatten)]
    pub target: WrapTargetArgs,
    /// Uninstall from the offline system image at DIR (see `service install --root`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct WrapInstallArgs {
    /// The service name, also the program's name in the generated config.
    pub name: String,
    /// A service of your own user, started at login (systemd --user, LaunchAgent).
    #[arg(long)]
    pub user: bool,

    /// When to restart the program after it exits.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(RestartPolicy::NAMES)
        .map(|s| RestartPolicy::from_name(&s).expect("a listed name")))]
    pub restart: Option<RestartPolicy>,
    /// First delay before a restart, doubling after each (default 100ms).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub restart_delay: Option<Duration>,
    /// The longest delay between restarts (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub restart_max_delay: Option<Duration>,
    /// At most this many restarts within a minute, or the program goes fatal (default 10).
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// How to ask the program to stop: TERM, INT, HUP, QUIT, KILL, USR1, USR2, none (default TERM).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_stop_signal)]
    pub stop_signal: Option<StopSignal>,
    /// After this, the program's whole process tree is killed (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub stop_timeout: Option<Duration>,
    /// `notify`: the program counts as running once it sends READY=1 to NOTIFY_SOCKET.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Readiness::NAMES)
        .map(|s| Readiness::from_name(&s).expect("a listed name")))]
    pub ready: Option<Readiness>,
    /// Set a variable for the program. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = service_cli::parse_env)]
    pub env: Vec<(String, String)>,
    /// The program's working directory. Default: the current one.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Rotate its log files at this size (default 50MB; 0: never by size).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub log_max_size: Option<u64>,
    /// How many rotated log files to keep (default 10).
    #[arg(long, value_name = "N")]
    pub log_keep: Option<u32>,
    /// Also rotate its logs every hour or day.
    #[arg(long, value_name = "PERIOD", value_parser = clap::builder::PossibleValuesParser::new(RotateEvery::NAMES)
        .map(|s| RotateEvery::from_name(&s).expect("a listed name")))]
    pub log_rotate_every: Option<RotateEvery>,
    /// gzip rotated log files.
    #[arg(long)]
    pub log_compress: bool,

    /// Run steward as this account (system services only).
    #[arg(long, value_name = "USER")]
    pub account: Option<String>,
    /// The steward executable the service runs. Default: this one.
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,
    /// Install into the offline system image at DIR (see `service install --root`); PROGRAM
    /// and --cwd are then paths inside the image, taken as given.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub windows: WindowsArgs,

    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
    pub command: Vec<String>,
}

fn parse_stop_signal(s: &str) -> Result<StopSignal, String> {
    StopSignal::from_name(s).ok_or_else(|| format!("{s:?} is not one of {}", StopSignal::NAMES.join(", ")))
}

pub fn wrap(_cli: &Cli, args: &WrapArgs) -> anyhow::Result<ExitCode> {
    match &args.verb {
        WrapVerb::Install(a) => install(a),
        WrapVerb::Show(a) => {
            let (config, _) = config_path(&a.name, a.user, None)?;
            let text = std::fs::read_to_string(&config).map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("; `steward wrap install {} -- PROGRAM` creates it (check --user)", a.name)
                } else {
                    String::new()
                };
                anyhow::anyhow!("no wrapped service {}: cannot read {}: {e}{hint}", a.name, config.display())
            })?;
            out!("{text}")?;
            Ok(ExitCode::SUCCESS)
        }
        WrapVerb::Uninstall(a) => uninstall(a),
    }
}

/// The generated config of wrap `name`, and its folder, as seen on this machine (inside
/// `root` when given).
fn config_path(name: &str, user: bool, root: Option<&Path>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = wrap_dir(name, user)?;
    let dir = match root {
        Some(root) => root.join(dir.strip_prefix("/").unwrap_or(&dir)),
        None => dir,
    };
    Ok((dir.join("steward.toml"), dir))
}

/// The wrap folder of `name` as the service will see it.
fn wrap_dir(name: &str, user: bool) -> anyhow::Result<PathBuf> {
    manage::check_name(name)?;
    let platform = Platform::native().ok_or_else(|| {
        anyhow::anyhow!(
            "`wrap` is not available on {}: steward knows no service manager there",
            std::env::consts::OS
        )
    })?;
    let scope = if user { Scope::User } else { Scope::System };
    Ok(spec::wrap_dir(platform, scope, name, &WrapDirs::from_env())?)
}

fn install(a: &WrapInstallArgs) -> anyhow::Result<ExitCode> {
    let manager = service_cli::manager(&TargetArgs { name: a.name.clone(), user: a.user }, a.root.clone())?;
    let dir = wrap_dir(&a.name, a.user)?;
    let root = a.root.as_deref();
    let cwd = match (&a.cwd, root) {
        (Some(cwd), None) => {
            std::path::absolute(cwd).with_context(|| format!("cannot make {} absolute", cwd.display()))?
        }
        (Some(cwd), Some(_)) => cwd.clone(),
        (None, None) => std::env::current_dir().context("cannot read the current directory; give --cwd")?,
        (None, Some(_)) => {
            anyhow::bail!("with --root, give the program's working directory inside the image with --cwd")
        }
    };
    let mut command = a.command.clone();
    if root.is_none() {
        command[0] = resolve_program(&command[0])?.to_string_lossy().into_owned();
    }
    let spec = WrapSpec {
        name: a.name.clone(),
        command,
        cwd,
        state_dir: dir.clone(),
        env: a.env.iter().cloned().collect::<BTreeMap<_, _>>(),
        restart: a.restart,
        restart_delay: a.restart_delay,
        restart_max_delay: a.restart_max_delay,
        max_restarts: a.max_restarts,
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
        ready: a.ready,
        log_max_size: a.log_max_size,
        log_keep: a.log_keep,
        log_rotate_every: a.log_rotate_every,
        log_compress: a.log_compress,
    };
    let text = config_toml(&spec);
    let config_in_service = dir.join("steward.toml");
    let config = match config::parse_str(&text, &config_in_service, &crate::process::host_env()) {
        Ok(config) => config,
        Err(diags) => {
            eprint!("{diags}");
            anyhow::bail!("the options make an invalid config (shown above); nothing was installed");
        }
    };
    let (config_on_host, dir_on_host) = config_path(&a.name, a.user, root)?;
    let existed = dir_on_host.exists();
    service::write_file(&config_on_host, &text)?;
    let unit = UnitArgs {
        target: TargetArgs { name: a.name.clone(), user: a.user },
        account: a.account.clone(),
        env: Vec::new(),
        exe: a.exe.clone(),
        description: Some(format!("steward wrap: {} ({})", a.name, spec.command[0])),
        root: a.root.clone(),
        windows: a.windows.clone(),
    };
    if let Err(e) = service_cli::install(&manager, &config, &unit) {
        // Leave nothing behind from a wrap that did not get installed.
        if !existed {
            let _ = std::fs::remove_dir_all(&dir_on_host);
        }
        return Err(e);
    }
    outln!("  config: {} (`steward wrap show{} {}`)", config_on_host.display(), user_flag(a.user), a.name)?;
    Ok(ExitCode::SUCCESS)
}

fn uninstall(a: &WrapUninstallArgs) -> anyhow::Result<ExitCode> {
    let (_, dir) = config_path(&a.target.name, a.target.user, a.root.as_deref())?;
    let manager = service_cli::manager(
        &TargetArgs { name: a.target.name.clone(), user: a.target.user },
        a.root.clone(),
    )?;
    let mut removed_any = false;
    match manager.uninstall() {
        Ok(()) => {
            removed_any = true;
            outln!("uninstalled {} ({})", a.target.name, manager.platform())?;
        }
        // The folder may still be there (say, after a failed install): go on and remove it.
        Err(e) if service::is_not_installed(&e) => {}
        Err(e) => return Err(e.into()),
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove the wrap folder {}", dir.display()))?;
        removed_any = true;
        outln!("removed {}", dir.display())?;
    }
    if !removed_any {
        anyhow::bail!(
            "no wrapped service {}: neither the service nor {} exists (check --user)",
            a.target.name,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn user_flag(user: bool) -> &'static str {
    if user {
        " --user"
    } else {
        ""
    }
}

/// The program as an absolute path: services start with a minimal PATH and their own
/// working directory, so what the person installing meant is decided now, the way their
/// shell would: a path from the current directory, a bare name from PATH.
fn resolve_program(program: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(program);
    if path.components().count() > 1 || path.is_absolute() {
        let relative: PathBuf =
            path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
        let full =
            std::path::absolute(&relative).with_context(|| format!("cannot make {program} absolute"))?;
        if !full.is_file() {
            anyhow::bail!("the program {} does not exist", full.display());
        }
        return Ok(full);
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .flat_map(|dir| executable_names(program).into_iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("`{program}` was not found on PATH; give the program's path"))
}

fn executable_names(program: &str) -> Vec<String> {
    if cfg!(windows) && Path::new(program).extension().is_none() {
        vec![format!("{program}.exe"), program.to_owned()]
    } else {
        vec![program.to_owned()]
    }
}
