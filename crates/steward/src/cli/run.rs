//! `steward run`: the supervisor in the foreground.
//!
//! It exits 0 after an orderly shutdown, [`EXIT_UNCLEAN`] when a program had to be killed
//! after its `stop_timeout` on the way, and 1 when steward itself failed.

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

    /// Also write every line the programs print to steward's stdout, as `NAME | line`
    /// (`{"program":..,"stream":..,"line":..}` with --log-format json): what `docker logs`
    /// shows. The log files are written as usual; lines stdout cannot take in time are
    /// dropped and counted, never waited for. See docs/containers.md.
    #[arg(long, env = "STEWARD_MIRROR", value_parser = clap::builder::BoolishValueParser::new())]
    pub mirror: bool,
}

/// `steward run`'s exit code when every program stopped, but some only because steward
/// killed them after their `stop_timeout`.
pub const EXIT_UNCLEAN: u8 = 5;

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = match load(cli, args) {
        Ok(c) => c,
        Err(diags) => {
            errln!("{diags}");
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
    if args.mirror {
        let format = match cli.log_format {
            super::LogFormat::Human => crate::logs::mirror::Format::Prefixed,
            super::LogFormat::Json => crate::logs::mirror::Format::Json,
        };
        crate::logs::mirror::install(format, Box::new(std::io::stdout()))
            .context("cannot start the thread that mirrors the programs' output")?;
    }
    crate::process::one_malloc_arena();
    // Parsing the config took several KB a program that it no longer needs; given back,
    // the programs' own state does not sit scattered over those pages (docs/benchmarks.md).
    crate::process::trim_heap();
    // One thread: every program is spawned from this thread, which lives as long as the
    // process; Linux's PR_SET_PDEATHSIG is tied to the spawning thread (see process/unix.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stopped = runtime.block_on(async {
        let shutdown = crate::signals::shutdown_requested()?;
        crate::daemon::run(config, shutdown).await
    })?;
    Ok(if stopped.clean() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_UNCLEAN) })
}

fn load(cli: &Cli, args: &RunArgs) -> Result<Config, config::Diagnostics> {
    if args.demo {
        let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
        config::parse_str(DEMO, &here.join("steward-demo.toml"), &crate::process::host_env())
    } else {
        config::load_with(&cli.config, &crate::process::host_env())
    }
}
