//! `steward check`: validate a config file.

use std::process::ExitCode;

use super::Cli;

pub fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    match steward_core::config::load(&cli.config) {
        Ok(config) => {
            println!("{}: ok ({} programs)", config.source.display(), config.programs.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprint!("{diags}");
            Ok(ExitCode::from(1))
        }
    }
}
