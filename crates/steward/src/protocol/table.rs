//! The status table: the text form of a [`StatusReply`], as `steward status` prints it.
//!
//! The daemon writes it when a client asks `GET /v1/status` with `Accept: text/plain`, so
//! that for thousands of programs the CLI copies one compact reply to its output (a third the
//! size of the JSON) instead of parsing the JSON and formatting it again; the CLI formats
//! JSON with the same code when a steward from before this answers.

use std::fmt::{self, Write as _};

use super::{ExitInfo, StatusReply};

/// The status table, columns padded to their widest cell. A program with `instances` gets a
/// summary row ("running 3/4") before its instances' rows. A VERSION column appears when a
/// program runs a release; a table of `[[ship]]` sinks follows when there are any.
///
/// Written in two passes over cells that borrow from `reply` or hold a number, so that 5,000
/// programs cost one buffer, not a string per cell (docs/benchmarks.md, section 13).
pub fn status_table(reply: &StatusReply) -> String {
    let mut header = vec!["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "HEALTH"];
    if reply.programs.iter().any(|p| p.version.is_some()) {
        header.push("VERSION");
    }
    let columns = header.len();
    let mut cells: Vec<Cell<'_>> = Vec::with_capacity((reply.programs.len() + reply.groups.len()) * columns);
    let mut summarized: Vec<&str> = Vec::new();
    for p in &reply.programs {
        let group = p.program.as_deref().and_then(|g| reply.groups.iter().find(|x| x.name == g));
        if let Some(g) = group.filter(|g| !summarized.contains(&g.name.as_str())) {
            summarized.push(&g.name);
            let mut state = format!("running {}/{}", g.running, g.total);
            if let Some(roll) = &g.rollout {
                let _ = write!(state, " ({roll})");
            }
            cells.extend([Cell::Text(&g.name), Cell::Owned(state)]);
            cells.extend(std::iter::repeat_with(|| Cell::Text("-")).take(columns - 2));
        }
        let state = match p.waiting_for.is_empty() {
            true => Cell::Text(&p.state),
            false => Cell::Owned(format!("{} (waiting for {})", p.state, p.waiting_for.join(", "))),
        };
        let row = [
            Cell::Text(&p.name),
            state,
            p.pid.map_or(Cell::Text("-"), |p| Cell::Number(p.into())),
            p.uptime_secs.map_or(Cell::Text("-"), |s| Cell::Uptime(Uptime::of(s))),
            Cell::Number(p.restarts),
            p.last_exit.map_or(Cell::Text("-"), Cell::Exit),
            Cell::Text(p.health.as_deref().unwrap_or("-")),
            Cell::Text(p.version.as_deref().unwrap_or("-")),
        ];
        cells.extend(row.into_iter().take(columns));
    }
    let mut out = String::new();
    grid(&mut out, &header, &cells);
    if !reply.sinks.is_empty() {
        // `[[ship]]`: one row per sink, a sink that is down says why.
        let header = ["SINK", "KIND", "STATE", "SENT", "DROPPED", "LAG"];
        let mut cells = Vec::with_capacity(reply.sinks.len() * header.len());
        for s in &reply.sinks {
            let state = match (&s.error, s.up) {
                (Some(e), _) => Cell::Owned(format!("down: {e}")),
                (None, false) => Cell::Text("down"),
                (None, true) => Cell::Text("up"),
            };
            let dropped = s.dropped_refused + s.dropped_retention + s.rejected_by_receiver;
            let lag =
                if s.lag_seconds > 0.0 { Cell::Uptime(Uptime::of(s.lag_seconds)) } else { Cell::Text("-") };
            cells.extend([
                Cell::Text(&s.name),
                Cell::Text(&s.kind),
                state,
                Cell::Number(s.sent_lines),
                Cell::Number(dropped),
                lag,
            ]);
        }
        out.push('\n');
        grid(&mut out, &header, &cells);
    }
    out
}

/// A cell of the table: text it borrows, or a value written where the row is.
enum Cell<'a> {
    Text(&'a str),
    Owned(String),
    Number(u64),
    Uptime(Uptime),
    Exit(ExitInfo),
}

impl fmt::Display for Cell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Owned(s) => f.write_str(s),
            Cell::Number(n) => f.write_str(itoa::Buffer::new().format(*n)),
            Cell::Uptime(u) => write!(f, "{u}"),
            Cell::Exit(e) => write!(f, "{e}"),
        }
    }
}

impl Cell<'_> {
    /// How many characters the cell shows, found without writing it anywhere.
    fn width(&self) -> usize {
        match self {
            Cell::Text(s) => s.chars().count(),
            Cell::Owned(s) => s.chars().count(),
            Cell::Number(n) => itoa::Buffer::new().format(*n).len(),
            cell => {
                let mut count = Count(0);
                let _ = write!(count, "{cell}");
                count.0
            }
        }
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Cell::Text(s) => out.push_str(s),
            Cell::Owned(s) => out.push_str(s),
            Cell::Number(n) => out.push_str(itoa::Buffer::new().format(*n)),
            cell => {
                let _ = write!(out, "{cell}");
            }
        }
    }
}

/// A `fmt::Write` that counts the characters written to it.
struct Count(usize);

impl fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.chars().count();
        Ok(())
    }
}

/// `header` and the rows in `cells` (`header.len()` cells each) appended to `out`, columns
/// padded to their widest cell and two spaces apart, with no spaces at the ends of lines.
fn grid(out: &mut String, header: &[&str], cells: &[Cell<'_>]) {
    let columns = header.len();
    let shown: Vec<usize> = cells.iter().map(Cell::width).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in shown.chunks(columns) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(*cell);
        }
    }
    out.reserve((widths.iter().sum::<usize>() + 2 * widths.len()) * (cells.len() / columns + 1));
    let mut line = |row: &[Cell<'_>], shown: &mut dyn Iterator<Item = usize>| {
        let start = out.len();
        for ((cell, shown), width) in row.iter().zip(shown).zip(&widths) {
            cell.write_to(out);
            pad(out, width.saturating_sub(shown) + 2);
        }
        let end = out[start..].trim_end().len();
        out.truncate(start + end);
        out.push('\n');
    };
    let header: Vec<Cell<'_>> = header.iter().map(|h| Cell::Text(h)).collect();
    line(&header, &mut header.iter().map(Cell::width));
    for (row, shown) in cells.chunks(columns).zip(shown.chunks(columns)) {
        line(row, &mut shown.iter().copied());
    }
}

fn pad(out: &mut String, n: usize) {
    const SPACES: &str = "                                ";
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        left -= k;
    }
}

/// A duration as the table shows it: "42s", "3m07s", "5h02m", "12d04h".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Uptime(u64);

impl Uptime {
    fn of(secs: f64) -> Uptime {
        Uptime(secs as u64)
    }
}

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            0..60 => write!(f, "{s}s"),
            60..3600 => write!(f, "{}m{:02}s", s / 60, s % 60),
            3600..86400 => write!(f, "{}h{:02}m", s / 3600, s % 3600 / 60),
            _ => write!(f, "{}d{:02}h", s / 86400, s % 86400 / 3600),
        }
    }
}

/// "42s", "3m07s", "5h02m", "12d04h" (`steward top` writes them so too).
pub fn uptime(secs: f64) -> String {
    Uptime::of(secs).to_string()
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
