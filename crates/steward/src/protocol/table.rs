//! The status table: the text form of a [`StatusReply`], as `steward status` prints it.
//!
//! The daemon writes it when a client asks `GET /v1/status` with `Accept: text/plain`, so
//! that for thousands of programs the CLI copies one compact reply to its output (a third the
//! size of the JSON) instead of parsing the JSON and formatting it again; the CLI formats
//! JSON with the same code when a steward from before this answers.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::StatusReply;

/// The status table, columns padded to their widest cell. A program with `instances` gets a
/// summary row ("running 3/4") before its instances' rows. A VERSION column appears when a
/// program runs a release; a table of `[[ship]]` sinks follows when there are any.
pub fn status_table(reply: &StatusReply) -> String {
    let mut header = vec!["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "HEALTH"];
    if reply.programs.iter().any(|p| p.version.is_some()) {
        header.push("VERSION");
    }
    let dash = || Cow::Borrowed("-");
    let mut rows: Vec<Vec<Cow<'_, str>>> = Vec::with_capacity(reply.programs.len() + reply.groups.len());
    let mut summarized: Vec<&str> = Vec::new();
    for p in &reply.programs {
        let group = p.program.as_deref().and_then(|g| reply.groups.iter().find(|x| x.name == g));
        if let Some(g) = group.filter(|g| !summarized.contains(&g.name.as_str())) {
            summarized.push(&g.name);
            let mut state = format!("running {}/{}", g.running, g.total);
            if let Some(roll) = &g.rollout {
                let _ = write!(state, " ({roll})");
            }
            let mut row = vec![Cow::Borrowed(g.name.as_str()), state.into()];
            row.resize(header.len(), dash());
            rows.push(row);
        }
        let state = match p.waiting_for.is_empty() {
            true => Cow::Borrowed(p.state.as_str()),
            false => format!("{} (waiting for {})", p.state, p.waiting_for.join(", ")).into(),
        };
        let mut row = vec![
            Cow::Borrowed(p.name.as_str()),
            state,
            p.pid.map_or_else(dash, |p| p.to_string().into()),
            p.uptime_secs.map_or_else(dash, |s| uptime(s).into()),
            p.restarts.to_string().into(),
            p.last_exit.map_or_else(dash, |e| e.to_string().into()),
            p.health.as_deref().map_or_else(dash, Cow::Borrowed),
            p.version.as_deref().map_or_else(dash, Cow::Borrowed),
        ];
        row.truncate(header.len());
        rows.push(row);
    }
    let mut out = String::new();
    grid(&mut out, &header, &rows);
    if !reply.sinks.is_empty() {
        // `[[ship]]`: one row per sink, a sink that is down says why.
        let header = ["SINK", "KIND", "STATE", "SENT", "DROPPED", "LAG"];
        let rows: Vec<Vec<Cow<'_, str>>> = reply
            .sinks
            .iter()
            .map(|s| {
                let state = match (&s.error, s.up) {
                    (Some(e), _) => format!("down: {e}").into(),
                    (None, false) => Cow::Borrowed("down"),
                    (None, true) => Cow::Borrowed("up"),
                };
                let dropped = s.dropped_refused + s.dropped_retention + s.rejected_by_receiver;
                let lag = if s.lag_seconds > 0.0 { uptime(s.lag_seconds).into() } else { dash() };
                vec![
                    Cow::Borrowed(s.name.as_str()),
                    Cow::Borrowed(s.kind.as_str()),
                    state,
                    s.sent_lines.to_string().into(),
                    dropped.to_string().into(),
                    lag,
                ]
            })
            .collect();
        out.push('\n');
        grid(&mut out, &header, &rows);
    }
    out
}

/// `header` and `rows` appended to `out`, columns padded to their widest cell and two spaces
/// apart, with no spaces at the ends of lines.
fn grid(out: &mut String, header: &[&str], rows: &[Vec<Cow<'_, str>>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.reserve((widths.iter().sum::<usize>() + 2 * widths.len()) * (rows.len() + 1));
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let start = out.len();
        for (cell, width) in cells.zip(&widths) {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count()) + 2));
        }
        let end = out[start..].trim_end().len();
        out.truncate(start + end);
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(|c| c.as_ref()));
    }
}

/// "42s", "3m07s", "5h02m", "12d04h" (`steward top` writes them so too).
pub fn uptime(secs: f64) -> String {
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
    use crate::protocol::ProgramInfo;

    fn table(reply: &StatusReply) -> String {
        status_table(reply)
    }

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
