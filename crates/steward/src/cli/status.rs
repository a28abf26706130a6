//! `steward status [NAME..] [--json]`

use std::process::ExitCode;

use clap_complete::engine::ArgValueCompleter;

use super::client::Client;
use super::completions::program_names;
use crate::protocol::{ProgramInfo, StatusReply};

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
        out!("{}", table(&reply))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The status table, columns padded to their widest cell. A program with `instances` gets a
/// summary row ("running 3/4") before its instances' rows. A VERSION column appears when a
/// program runs a release.
pub fn table(reply: &StatusReply) -> String {
    let mut header = vec!["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "HEALTH"];
    let versions = reply.programs.iter().any(|p| p.version.is_some());
    if versions {
        header.push("VERSION");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut summarized: Vec<&str> = Vec::new();
    for p in &reply.programs {
        let group = p.program.as_deref().and_then(|g| reply.groups.iter().find(|x| x.name == g));
        if let Some(g) = group.filter(|g| !summarized.contains(&g.name.as_str())) {
            summarized.push(&g.name);
            let dash = || "-".to_string();
            let mut state = format!("running {}/{}", g.running, g.total);
            if let Some(roll) = &g.rollout {
                state.push_str(&format!(" ({roll})"));
            }
            rows.push(vec![g.name.clone(), state, dash(), dash(), dash(), dash(), dash(), dash()]);
        }
        let mut state = p.state.clone();
        if !p.waiting_for.is_empty() {
            state.push_str(&format!(" (waiting for {})", p.waiting_for.join(", ")));
        }
        rows.push(vec![
            p.name.clone(),
            state,
            p.pid.map_or("-".into(), |p| p.to_string()),
            p.uptime_secs.map_or("-".into(), uptime),
            p.restarts.to_string(),
            p.last_exit.map_or("-".into(), |e| e.to_string()),
            p.health.clone().unwrap_or_else(|| "-".into()),
            p.version.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    for row in &mut rows {
        row.truncate(header.len());
    }
    let mut out = grid(&header, &rows);
    if !reply.sinks.is_empty() {
        // `[[ship]]`: one row per sink, a sink that is down says why.
        let header = ["SINK", "KIND", "STATE", "SENT", "DROPPED", "LAG"];
        let rows: Vec<Vec<String>> = reply
            .sinks
            .iter()
            .map(|s| {
                let state = match (&s.error, s.up) {
                    (Some(e), _) => format!("down: {e}"),
                    (None, false) => "down".to_owned(),
                    (None, true) => "up".to_owned(),
                };
                let dropped = s.dropped_refused + s.dropped_retention + s.rejected_by_receiver;
                let lag = if s.lag_seconds > 0.0 { uptime(s.lag_seconds) } else { "-".to_owned() };
                vec![
                    s.name.clone(),
                    s.kind.clone(),
                    state,
                    s.sent_lines.to_string(),
                    dropped.to_string(),
                    lag,
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&grid(&header, &rows));
    }
    out
}

/// `header` and `rows`, columns padded to their widest cell.
fn grid(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// "42s", "3m07s", "5h02m", "12d04h" (`steward top` writes them so too).
pub(super) fn uptime(secs: f64) -> String {
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
            program: None,
            instance: None,
            state: state.into(),
            pid: Some(42),
            started_at: None,
            uptime_secs: Some(3.0),
            restarts: 1,
            last_exit: None,
            last_error: None,
            health: None,
            waiting_for: vec![],
            version: None,
        };
        let t = table(&StatusReply {
            programs: vec![p("web", "running"), p("database", "backoff")],
            groups: vec![],
            sinks: vec![],
        });
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME      STATE    PID  UPTIME  RESTARTS  LAST EXIT  HEALTH");
        assert_eq!(lines[1], "web       running  42   3s      1         -          -");
        assert_eq!(lines[2], "database  backoff  42   3s      1         -          -");

        // A program that runs a release adds a VERSION column.
        let mut api = p("api", "running");
        api.version = Some("1.4.0".into());
        let t =
            table(&StatusReply { programs: vec![p("web", "running"), api], groups: vec![], sinks: vec![] });
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME  STATE    PID  UPTIME  RESTARTS  LAST EXIT  HEALTH  VERSION");
        assert_eq!(lines[1], "web   running  42   3s      1         -          -       -");
        assert_eq!(lines[2], "api   running  42   3s      1         -          -       1.4.0");
    }

    #[test]
    fn a_program_with_instances_gets_a_summary_row() {
        let instance = |i: u32, state: &str| ProgramInfo {
            name: format!("web:{i}"),
            program: Some("web".into()),
            instance: Some(i),
            state: state.into(),
            pid: Some(40 + i),
            started_at: None,
            uptime_secs: Some(3.0),
            restarts: 0,
            last_exit: None,
            last_error: None,
            health: None,
            waiting_for: vec![],
            version: None,
        };
        let group = crate::protocol::GroupInfo {
            name: "web".into(),
            instances: Some(2),
            running: 1,
            total: 2,
            sockets: vec![],
            rollout: Some("rolling, 1/2 replaced".into()),
        };
        let reply = StatusReply {
            programs: vec![instance(0, "running"), instance(1, "starting")],
            groups: vec![group],
            sinks: vec![],
        };
        let t = table(&reply);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].starts_with("web ") && lines[1].contains("running 1/2 (rolling, 1/2 replaced)"),
            "{t}"
        );
        assert!(lines[2].starts_with("web:0") && lines[3].starts_with("web:1"), "{t}");
    }
}
