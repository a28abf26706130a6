//! `steward reload` and `steward shutdown`.

use std::process::ExitCode;

use http_body_util::BodyExt as _;
use hyper::Method;

use super::client::Client;
use crate::protocol::ReloadReply;

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

pub async fn reload(client: &Client, args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    let r: ReloadReply = client.post("/v1/reload", &serde_json::json!({})).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    outln!("added:     {}", list(&r.added))?;
    outln!("removed:   {}", list(&r.removed))?;
    outln!("changed:   {}", list(&r.changed))?;
    outln!("unchanged: {}", list(&r.unchanged))?;
    if !r.needs_restart.is_empty() {
        outln!("note: changes to {} take effect when steward restarts", r.needs_restart.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns once the daemon has stopped every program and exited.
pub async fn shutdown(client: &Client) -> anyhow::Result<ExitCode> {
    // The event stream ends when the supervisor is gone: subscribe first, then ask.
    let mut events = client.request(Method::GET, "/v1/events?follow=true", None).await?.into_body();
    client.request(Method::POST, "/v1/shutdown", Some(b"{}".to_vec())).await?;
    while let Some(frame) = events.frame().await {
        if frame.is_err() {
            break;
        }
    }
    outln!("steward stopped")?;
    Ok(ExitCode::SUCCESS)
}
