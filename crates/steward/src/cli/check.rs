//! `steward check`: validate a config file, for this OS or the one `--os` names.
//!
//! Errors and warnings go to stderr, as a compiler shows them; the verdict to stdout. Exit 1
//! when there is an error; warnings alone exit 0.

use std::process::ExitCode;

use clap::ValueEnum;
use steward_core::config::parse::OsEnv;
use steward_core::config::{OnPlatform, Platform};

use super::Cli;
use crate::process::HOST_PLATFORM;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Check for this OS instead of this machine's: some settings need what only some
    /// systems have (`ready = "notify"`, `max_memory`).
    #[arg(long, value_enum)]
    pub os: Option<OsArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OsArg {
    Linux,
    Macos,
    Windows,
}

impl From<OsArg> for Platform {
    fn from(os: OsArg) -> Platform {
        match os {
            OsArg::Linux => Platform::Linux,
            OsArg::Macos => Platform::MacOs,
            OsArg::Windows => Platform::Windows,
        }
    }
}

pub fn check(cli: &Cli, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let platform = args.os.map_or(HOST_PLATFORM, Platform::from);
    match steward_core::config::load_with(&cli.config, &OnPlatform { env: OsEnv, platform }) {
        Ok(config) => {
            // Warnings go where errors go, and do not fail the check: the file runs.
            let warnings = match config.warnings.len() {
                0 => String::new(),
                n => {
                    errln!("{}", config.warnings);
                    format!(", {n} warning{}", if n == 1 { "" } else { "s" })
                }
            };
            // On this machine, every socket must be free to bind (or be held by the steward
            // that runs this config).
            if platform == HOST_PLATFORM {
                let failures = bind_failures(cli, &config);
                for failure in &failures {
                    errln!("error: {failure}");
                }
                if !failures.is_empty() {
                    return Ok(ExitCode::from(1));
                }
            }
            outln!("{}: ok ({} programs{warnings})", config.source.display(), config.programs.len())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            errln!("{diags}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The sockets of `config` that cannot be bound now, in words. One in use is fine when the
/// steward running this config holds it (its status lists the address).
fn bind_failures(cli: &Cli, config: &steward_core::config::Config) -> Vec<String> {
    let mut failures = Vec::new();
    let mut held: Option<Vec<String>> = None;
    for group in config.groups.values() {
        for spec in &group.sockets {
            let Err(e) = crate::sockets::Listener::bind(spec) else { continue };
            if e.kind() == std::io::ErrorKind::AddrInUse {
                let held = held.get_or_insert_with(|| held_by_running_steward(cli));
                if held.iter().any(|a| *a == spec.listen.to_string()) {
                    continue;
                }
            }
            failures.push(format!("[programs.{}.sockets.{}]: {e}", group.name, spec.name));
        }
    }
    failures
}

/// The socket addresses the steward running this config holds (none if none runs).
fn held_by_running_steward(cli: &Cli) -> Vec<String> {
    let Ok(client) = super::client::Client::locate(cli) else { return Vec::new() };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    let status: Option<crate::protocol::StatusReply> = runtime.block_on(client.get("/v1/status")).ok();
    status
        .map(|s| s.groups.into_iter().flat_map(|g| g.sockets).map(|socket| socket.listen).collect())
        .unwrap_or_default()
}
