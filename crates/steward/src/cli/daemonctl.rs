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
    // The reply's body ends when the supervisor is gone (or the connection does, with the
    // process).
    let reply = client.request(Method::POST, "/v1/shutdown?wait=true", Some(b"{}".to_vec())).await?;
    if reply.status() == hyper::StatusCode::ACCEPTED {
        // A steward from before `wait` answers at once: its event stream ends when it is gone.
        // If it is gone already, there is nothing left to wait for.
        if let Ok(events) = client.request(Method::GET, "/v1/events?follow=true", None).await {
            drain(events.into_body()).await;
        }
    } else {
        drain(reply.into_body()).await;
    }
    outln!("steward stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Read a body to its end, or until the connection breaks.
async fn drain(mut body: hyper::body::Incoming) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
}
