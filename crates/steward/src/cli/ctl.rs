//! `steward start|stop|restart NAME..|--all`: returns once every program reached the state
//! (exit 0), or says which did not and the state it reached (exit 1).

use std::process::ExitCode;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;
use crate::protocol::{ActionReply, ActionRequest, ActionResult};

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The programs.
    #[arg(required_unless_present = "all", add = ArgValueCompleter::new(program_names))]
    pub names: Vec<String>,
    /// Every program (stop: in reverse dependency order).
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Return once the request is sent, without waiting for the state.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait, e.g. "1m" (default: the program's stop_timeout + 30s).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

pub async fn ctl(client: &Client, verb: &str, args: &CtlArgs) -> anyhow::Result<ExitCode> {
    let req = ActionRequest {
        names: args.names.clone(),
        all: args.all,
        no_wait: args.no_wait,
        timeout: args.timeout.clone(),
    };
    let reply: ActionReply = client.post(&format!("/v1/{verb}"), &req).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    }
    print_results(&reply.results, args.json)
}

/// Each result: its error on stderr, or (without `json`) `NAME: STATE (pid N)`; exit 1 if
/// any failed. Shared by the verbs that wait on processes (`start`, `stop`, `restart`, `scale`).
pub fn print_results(results: &[ActionResult], json: bool) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for r in results {
        if let Some(e) = &r.error {
            ok = false;
            errln!("error: {e}");
        } else if !json {
            let pid = r.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            outln!("{}: {}{pid}", r.name, r.state)?;
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
