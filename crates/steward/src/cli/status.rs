//! `steward status [NAME..] [--json]`

use std::process::ExitCode;

use super::client::Client;
use crate::protocol::{ProgramInfo, StatusReply};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only these programs (default: all).
    pub names: Vec<String>,
    /// Print the stable JSON form (see docs/api.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(client: &Client, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let mut reply: StatusReply = client.get("/v1/status").await?;
    if let Some(unknown) = args.names.iter().find(|n| !reply.programs.iter().any(|p| &p.name == *n)) {
        anyhow::bail!("no program named {unknown:?}; `steward status` lists them");
    }
    if !args.names.is_empty() {
        reply.programs.retain(|p| args.names.contains(&p.name));
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    } else {
        out!("{}", table(&reply.programs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The status table, columns padded to their widest cell.
pub fn table(programs: &[ProgramInfo]) -> String {
    let header = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "HEALTH"];
    let rows: Vec<[String; 7]> = programs
        .iter()
        .map(|p| {
            let mut state = p.state.clone();
            if !p.waiting_for.is_empty() {
                state.push_str(&format!(" (waiting for {})", p.waiting_for.join(", ")));
            }
            [
                p.name.clone(),
                state,
                p.pid.map_or("-".into(), |p| p.to_string()),
                p.uptime_secs.map_or("-".into(), uptime),
                p.restarts.to_string(),
                p.last_exit.map_or("-".into(), |e| e.to_string()),
                p.health.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// "42s", "3m07s", "5h02m", "12d04h".
fn uptime(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_compactly() {
        assert_eq!(uptime(0.4), "0s");
        assert_eq!(uptime(187.0), "3m07s");
        assert_eq!(uptime(5.0 * 3600.0 + 125.0), "5h02m");
        assert_eq!(uptime(12.0 * 86400.0 + 4.0 * 3600.0), "12d04h");
    }

    #[test]
    fn the_table_aligns_columns() {
        let p = |name: &str, state: &str| ProgramInfo {
            name: name.into(),
            state: state.into(),
            pid: Some(42),
            started_at: None,
            uptime_secs: Some(3.0),
            restarts: 1,
            last_exit: None,
            last_error: None,
            health: None,
            waiting_for: vec![],
        };
        let t = table(&[p("web", "running"), p("database", "backoff")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME      STATE    PID  UPTIME  RESTARTS  LAST EXIT  HEALTH");
        assert_eq!(lines[1], "web       running  42   3s      1         -          -");
        assert_eq!(lines[2], "database  backoff  42   3s      1         -          -");
    }
}
