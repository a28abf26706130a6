//! `steward status [NAME..] [--json]`

use std::process::ExitCode;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;
use crate::protocol::{status_table, ProgramInfo, StatusReply};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only these programs (default: all).
    #[arg(add = ArgValueCompleter::new(program_names))]
    pub names: Vec<String>,
    /// Print the stable JSON form (see docs/api.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(client: &Client, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    if args.names.is_empty() && !args.json {
        // The whole table: the daemon writes it (protocol/table.rs says why).
        let (content_type, body) = client.get_accepting("/v1/status", "text/plain").await?;
        out!("{}", table_from(&content_type, &body)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut reply: StatusReply = client.get("/v1/status").await?;
    // A name is a process (`web:2`, `api`) or a program with all its instances (`web`).
    let named = |p: &ProgramInfo, n: &String| &p.name == n || p.program.as_ref() == Some(n);
    if let Some(unknown) = args.names.iter().find(|n| !reply.programs.iter().any(|p| named(p, n))) {
        anyhow::bail!("no program named {unknown:?}; `steward status` lists them");
    }
    if !args.names.is_empty() {
        reply.programs.retain(|p| args.names.iter().any(|n| named(p, n)));
        let kept: Vec<String> = reply.programs.iter().filter_map(|p| p.program.clone()).collect();
        reply.groups.retain(|g| kept.contains(&g.name));
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    } else {
        out!("{}", status_table(&reply))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table from a reply to `Accept: text/plain`: the text itself, or, from a steward that
/// answers JSON whatever is asked (one from before the daemon wrote tables), formatted here.
fn table_from(content_type: &str, body: &[u8]) -> anyhow::Result<String> {
    if content_type.starts_with("text/plain") {
        return String::from_utf8(body.to_vec())
            .map_err(|_| anyhow::anyhow!("the daemon's status table is not UTF-8 (a version mismatch?)"));
    }
    let reply: StatusReply = serde_json::from_slice(body).map_err(|_| {
        anyhow::anyhow!("the daemon's reply is not the JSON this CLI expects (a version mismatch?)")
    })?;
    Ok(status_table(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_printed_as_sent_and_json_from_an_older_steward_is_formatted() {
        let reply = StatusReply { programs: vec![], groups: vec![], sinks: vec![] };
        let text = status_table(&reply);
        assert_eq!(table_from("text/plain; charset=utf-8", text.as_bytes()).unwrap(), text);
        let json = serde_json::to_vec(&reply).unwrap();
        assert_eq!(table_from("application/json", &json).unwrap(), text);
        let err = table_from("application/json", b"<html>").unwrap_err().to_string();
        assert!(err.contains("version mismatch"), "{err}");
    }
}
