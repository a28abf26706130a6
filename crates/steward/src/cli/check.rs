//! `steward check`: validate a config file, for this OS or the one `--os` names.

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
            outln!("{}: ok ({} programs)", config.source.display(), config.programs.len())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprint!("{diags}");
            Ok(ExitCode::from(1))
        }
    }
}
