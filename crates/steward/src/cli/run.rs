//! `steward run`: the supervisor in the foreground.

use std::process::ExitCode;

use anyhow::Context as _;
use steward_core::config::{self, Config};

use super::Cli;

/// The demo config, embedded so that `steward run --demo` works from any folder.
pub const DEMO: &str = include_str!("../../../../examples/demo.toml");

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run the embedded demo config (the same as examples/demo.toml) instead of a file;
    /// its state and logs go to ./.steward.
    #[arg(long)]
    pub demo: bool,
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = match load(cli, args) {
        Ok(c) => c,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::from(1));
        }
    };
    tracing::info!(
        event = "config",
        "{}: {} programs; logs in {}",
        config.source.display(),
        config.programs.len(),
        config.supervisor.log_dir.display()
    );
    // One thread: every program is spawned from this thread, which lives as long as the
    // process; Linux's PR_SET_PDEATHSIG is tied to the spawning thread (see process/unix.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = crate::signals::shutdown_requested()?;
        crate::daemon::run(config, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn load(cli: &Cli, args: &RunArgs) -> Result<Config, config::Diagnostics> {
    if args.demo {
        let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
        config::parse_str(DEMO, &here.join("steward-demo.toml"), &crate::process::host_env())
    } else {
        config::load_with(&cli.config, &crate::process::host_env())
    }
}
