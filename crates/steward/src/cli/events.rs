//! `steward events [-f] [--json]`: state changes (and health, limit and alert events), as
//! lines or as JSON.

use std::io::Write as _;
use std::process::ExitCode;

use http_body_util::BodyExt as _;
use hyper::Method;

use super::client::Client;
use crate::protocol::EventRecord;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep printing events as they happen until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object per line (the stable form, see docs/api.md).
    #[arg(long)]
    pub json: bool,
}

pub async fn events(client: &Client, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/events?follow={}", args.follow);
    let mut body = client.request(Method::GET, &path, None).await?.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else { continue };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = if args.json {
                String::from_utf8_lossy(&line).into_owned()
            } else {
                match serde_json::from_slice::<EventRecord>(&line) {
                    Ok(e) => human(&e),
                    Err(_) => String::from_utf8_lossy(&line).into_owned(),
                }
            };
            if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human(e: &EventRecord) -> String {
    let change = match (&e.from, &e.to) {
        (Some(f), Some(t)) if e.kind == "state" => format!("{f} -> {t}"),
        // health: "health unknown -> healthy"
        (Some(f), Some(t)) => format!("{} {f} -> {t}", e.kind),
        // alert: "alert firing"; limit: "limit"
        (None, Some(t)) => format!("{} {t}", e.kind),
        _ => e.kind.clone(),
    };
    format!("{}  {:<12} {:<22} {}\n", e.time, e.program, change, e.message)
}
