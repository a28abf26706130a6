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
                    eprintln!("{}", config.warnings);
                    format!(", {n} warning{}", if n == 1 { "" } else { "s" })
                }
            };
            outln!("{}: ok ({} programs{warnings})", config.source.display(), config.programs.len())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprintln!("{diags}");
            Ok(ExitCode::from(1))
        }
    }
}
