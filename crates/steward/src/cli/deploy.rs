//! `steward deploy NAME [VERSION | --latest | --file ARCHIVE]`, `steward rollback NAME` and
//! `steward versions NAME`: the deploy flow of a program with `[release]` (docs/deploy.md).
//! A deploy returns once the new version proved itself (exit 0) or failed and was rolled back
//! (exit 1, saying why).

use std::path::PathBuf;
use std::process::ExitCode;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;
use crate::protocol::{DeployReply, DeployRequest, ReleasesReply, RollbackRequest};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["version", "latest", "file"])))]
pub struct DeployArgs {
    /// The program (one with a [programs.NAME.release] table).
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub name: String,
    /// This version: one installed already, or the one the release source offers.
    pub version: Option<String>,
    /// The version the release source offers now.
    #[arg(long)]
    pub latest: bool,
    /// A signed archive (.tar.gz or .zip) with its signature beside it (ARCHIVE.minisig);
    /// read by the steward that runs, on its machine.
    #[arg(long, value_name = "ARCHIVE")]
    pub file: Option<PathBuf>,
    /// Deploy a version older than the newest one the program has run.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The program to take back to the version it ran before.
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub name: String,
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    /// The program (one with a [programs.NAME.release] table).
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub name: String,
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

pub async fn deploy(client: &Client, args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let file = match &args.file {
        Some(f) => Some(
            std::path::absolute(f)
                .map_err(|e| anyhow::anyhow!("cannot make {} absolute: {e}", f.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let req = DeployRequest {
        program: args.name.clone(),
        version: args.version.clone(),
        latest: args.latest,
        file,
        allow_downgrade: args.allow_downgrade,
    };
    let reply: DeployReply = client.post("/v1/deploy", &req).await?;
    print(&reply, args.json)
}

pub async fn rollback(client: &Client, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let reply: DeployReply =
        client.post("/v1/rollback", &RollbackRequest { program: args.name.clone() }).await?;
    print(&reply, args.json)
}

pub async fn versions(client: &Client, args: &VersionsArgs) -> anyhow::Result<ExitCode> {
    let reply: ReleasesReply = client.get(&format!("/v1/releases/{}", args.name)).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reply)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if reply.installed.is_empty() {
        outln!("{}: no release installed (keep = {})", reply.program, reply.keep)?;
    }
    for v in reply.installed.iter().rev() {
        let mut marks = Vec::new();
        if reply.running.as_ref() == Some(v) {
            marks.push("running");
        }
        if reply.current.as_ref() == Some(v) && reply.running.as_ref() != Some(v) {
            marks.push("current");
        }
        if reply.previous.as_ref() == Some(v) {
            marks.push("previous (rollback goes here)");
        }
        if reply.quarantined.contains(v) {
            marks.push("quarantined (failed its gate)");
        }
        let marks = if marks.is_empty() { String::new() } else { format!("  {}", marks.join(", ")) };
        outln!("{} {v}{marks}", reply.program)?;
    }
    if let Some(source) = &reply.source {
        outln!("source: {source}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(reply: &DeployReply, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(reply)?)?;
    } else {
        outln!("{}", reply.message)?;
    }
    Ok(if reply.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
