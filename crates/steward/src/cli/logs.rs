//! `steward logs NAME [-n N] [-f] [--stderr]`

use std::io::Write as _;
use std::process::ExitCode;

use http_body_util::BodyExt as _;
use hyper::Method;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The program.
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub name: String,
    /// How many lines from the end to show first.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: usize,
    /// Keep printing lines as they are written (across rotations) until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// The program's stderr log instead of its stdout log.
    #[arg(long)]
    pub stderr: bool,
}

pub async fn logs(client: &Client, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let name = percent_encode(&args.name);
    let path = format!("/v1/logs/{name}?lines={}&follow={}&stderr={}", args.lines, args.follow, args.stderr);
    let mut body = client.request(Method::GET, &path, None).await?.into_body();
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            // A closed stdout (`| head`) ends the command quietly.
            if out.write_all(data).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A name for a URL path: program names are restricted to [A-Za-z0-9_.-] (an instance's `:`
/// is escaped), but a typo may hold anything. `steward top` follows logs with it too.
pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
