//! `steward scale NAME COUNT|+N|-N`: start or stop only the difference; the instances that
//! stay keep their processes. Returns once the new instances run and the removed ones are
//! down (exit 0), or says which did not (exit 1).

use std::process::ExitCode;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;
use crate::protocol::{ScaleReply, ScaleRequest};

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// The program (one with `instances`).
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub name: String,
    /// The new number of instances (6), or the change (+2, -1).
    #[arg(allow_hyphen_values = true)]
    pub count: String,
    /// Return once the request is sent, without waiting for the instances.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait, e.g. "1m" (default: the program's stop_timeout + 30s).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Print the stable JSON reply.
    #[arg(long)]
    pub json: bool,
}

/// `6` is a count, `+2` and `-1` are changes.
fn parse_count(text: &str) -> anyhow::Result<(Option<u32>, Option<i64>)> {
    let bad = || anyhow::anyhow!("`{text}` is not a count: write a number (6) or a change (+2, -1)");
    if text.starts_with(['+', '-']) {
        Ok((None, Some(text.parse::<i64>().map_err(|_| bad())?)))
    } else {
        Ok((Some(text.parse::<u32>().map_err(|_| bad())?), None))
    }
}

pub async fn scale(client: &Client, args: &ScaleArgs) -> anyhow::Result<ExitCode> {
    let (instances, by) = parse_count(&args.count)?;
    let req = ScaleRequest {
        name: args.name.clone(),
        instances,
        by,
        no_wait: args.no_wait,
        timeout: args.timeout.clone(),
    };
    let reply: ScaleReply = client.post("/v1/scale", &req).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    } else {
        outln!("{}: {} -> {} instances", reply.name, reply.from, reply.to)?;
    }
    super::ctl::print_results(&reply.results, args.json)
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_and_changes() {
        assert_eq!(parse_count("6").unwrap(), (Some(6), None));
        assert_eq!(parse_count("+2").unwrap(), (None, Some(2)));
        assert_eq!(parse_count("-1").unwrap(), (None, Some(-1)));
        assert!(parse_count("six").is_err());
        assert!(parse_count("--1").is_err());
    }
}
