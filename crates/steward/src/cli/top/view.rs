//! Draws the [`Model`] of `steward top`, and nothing else: a header, the table of processes,
//! the selected one's memory over the last hour, the log pane when open, a status line and
//! the keys. A terminal smaller than [`MIN_WIDTH`]×[`MIN_HEIGHT`] gets a one-line notice
//! instead.

use std::time::Instant;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::model::{Model, Usage};
use crate::protocol::uptime;
use crate::protocol::ProgramInfo;

/// Below this the table's columns do not fit.
pub const MIN_WIDTH: u16 = 60;
/// Header, table head and a row, memory line, status line, keys, and some air.
pub const MIN_HEIGHT: u16 = 10;

pub const KEYS: &str = "↑/↓ j/k select  s start  x stop  r restart  l log  e stderr  / filter  q quit";

/// What a value that is not known (yet, or from this steward) shows.
const UNKNOWN: &str = "–";

pub fn draw(frame: &mut Frame, model: &Model, now: Instant) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let log_open = model.log.is_some();
    let [header, body, memory, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_line(model)), header);
    let (table_area, log_area) = if log_open {
        let [t, l] = Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
        (t, Some(l))
    } else {
        (body, None)
    };
    table(frame, model, now, table_area);
    if let Some(log_area) = log_area {
        log_pane(frame, model, log_area);
    }
    frame.render_widget(Paragraph::new(memory_line(model, memory.width)), memory);
    frame.render_widget(Paragraph::new(status_line(model)), status);
    frame.render_widget(Paragraph::new(KEYS).style(Style::new().add_modifier(Modifier::REVERSED)), keys);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "terminal too small: need at least {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{}",
        area.width, area.height
    );
    // The middle row (or two, when the text wraps).
    let lines = if text.chars().count() as u16 > area.width { 2 } else { 1 };
    let top = area.height.saturating_sub(lines) / 2;
    let middle = Rect { y: area.y + top, height: lines.min(area.height), ..area };
    let paragraph = Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true });
    frame.render_widget(paragraph, middle);
}

fn header_line(model: &Model) -> Line<'static> {
    let running = model.programs.iter().filter(|p| p.state == "running").count();
    let usage = match model.usage {
        Usage::Unavailable => "  ·  memory and CPU: not from this steward",
        _ => "",
    };
    Line::from(vec![
        Span::styled("steward top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  ·  {}  ·  {} process{}, {running} running{usage}",
            model.target,
            model.programs.len(),
            if model.programs.len() == 1 { "" } else { "es" },
        )),
    ])
}

fn table(frame: &mut Frame, model: &Model, now: Instant, area: Rect) {
    let since = model.status_at.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
    let visible = model.visible();
    let rows: Vec<Vec<String>> = visible.iter().map(|p| cells(model, p, since)).collect();
    let header = ["NAME", "STATE", "PID", "UPTIME", "CPU", "MEM", "RESTARTS", "HEALTH"];
    // Each column as wide as its widest cell (the name and state within reason).
    let widths: Vec<Constraint> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let widest = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(h.len());
            match i {
                0 => Constraint::Length(widest.min(28) as u16),
                1 => Constraint::Length(widest.min(30) as u16),
                7 => Constraint::Min(6),
                _ => Constraint::Length(widest as u16),
            }
        })
        .collect();
    let rows = visible.iter().zip(rows).map(|(p, cells)| {
        let colour = match p.state.as_str() {
            "running" => Color::Green,
            "starting" | "stopping" | "backoff" => Color::Yellow,
            "fatal" | "exited" => Color::Red,
            _ => Color::Reset,
        };
        let mut cells: Vec<Cell> = cells.into_iter().map(Cell::from).collect();
        cells[1] = Cell::from(Span::styled(cells_state(p), Style::new().fg(colour)));
        Row::new(cells)
    });
    let title = if model.filter.is_empty() && !model.editing_filter {
        String::new()
    } else {
        format!(" filter: {} ", model.filter)
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(2)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        // Also in text, for terminals (and screen captures) without reverse video.
        .highlight_symbol("> ")
        .highlight_spacing(HighlightSpacing::Always)
        .block(Block::new().borders(Borders::TOP).title(title));
    let mut state = TableState::new().with_selected(model.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    if visible.is_empty() {
        let empty = if model.programs.is_empty() { "no programs" } else { "no program matches the filter" };
        let [_, _, line] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Length(1)])
                .areas(area);
        frame.render_widget(Paragraph::new(empty), line);
    }
}

fn cells_state(p: &ProgramInfo) -> String {
    if p.waiting_for.is_empty() {
        p.state.clone()
    } else {
        format!("{} (waiting for {})", p.state, p.waiting_for.join(", "))
    }
}

/// A row's cells; `since` is how long ago the status was read (uptimes go on from there).
fn cells(model: &Model, p: &ProgramInfo, since: f64) -> Vec<String> {
    let usage = match &model.usage {
        Usage::Live(now) => now.get(&p.name),
        _ => None,
    };
    let running = p.pid.is_some();
    vec![
        p.name.clone(),
        cells_state(p),
        p.pid.map_or(UNKNOWN.into(), |pid| pid.to_string()),
        p.uptime_secs.filter(|_| running).map_or(UNKNOWN.into(), |u| uptime(u + since)),
        usage.and_then(|u| u.cpu_percent).map_or(UNKNOWN.into(), |c| format!("{c:.1}%")),
        usage.map_or(UNKNOWN.into(), |u| bytes(u.rss_bytes)),
        p.restarts.to_string(),
        p.health.clone().unwrap_or_else(|| UNKNOWN.into()),
    ]
}

fn log_pane(frame: &mut Frame, model: &Model, area: Rect) {
    let Some(log) = &model.log else { return };
    let stream = if log.stderr { "stderr" } else { "stdout" };
    let other = if log.stderr { "stdout" } else { "stderr" };
    let mut title = format!(" log of {} ({stream})  ·  e: {other}  ·  l: close ", log.name);
    if let Some(ended) = &log.ended {
        title.push_str(&format!("·  {ended} "));
    }
    let inner_height = area.height.saturating_sub(1) as usize;
    let skip = log.lines.len().saturating_sub(inner_height);
    let lines: Vec<Line> = log.lines.iter().skip(skip).map(|l| Line::raw(l.as_str())).collect();
    let block = Block::new().borders(Borders::TOP).title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `mem web (last hour)  ▁▂▃▅▇  12.0 MiB`: the selected process's resident memory.
fn memory_line(model: &Model, width: u16) -> String {
    let Some(name) = model.selected.as_deref() else { return String::new() };
    let Some((_, points)) = model.memory.get(name).filter(|(_, p)| p.len() >= 2) else {
        return String::new();
    };
    let values: Vec<u64> = points.iter().copied().collect();
    let latest = bytes(*values.last().unwrap_or(&0));
    let label = format!("mem {name} (last hour)  ");
    let tail = format!("  {latest}");
    let room = (width as usize).saturating_sub(label.chars().count() + tail.chars().count());
    format!("{label}{}{tail}", sparkline(&values, room))
}

fn status_line(model: &Model) -> Line<'static> {
    if model.editing_filter {
        return Line::from(format!("filter: {}▏  (Enter keeps it, Esc clears it)", model.filter));
    }
    match &model.message {
        Some(m) => Line::styled(m.clone(), Style::new().add_modifier(Modifier::BOLD)),
        None => Line::default(),
    }
}

/// The last `width` values as block characters, scaled from 0 to the largest.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().max().unwrap_or(0).max(1);
    shown.iter().map(|&v| BARS[((v as u128 * 7) / max as u128) as usize]).collect()
}

/// "512 B", "12.0 KiB", "340.5 MiB", "1.25 GiB".
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else if f < KIB * KIB * KIB {
        format!("{:.1} MiB", f / KIB / KIB)
    } else {
        format!("{:.2} GiB", f / KIB / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::model::{Event, Model};
    use super::*;
    use crate::protocol::StatusReply;

    fn screen(model: &Model, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, model, Instant::now())).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..height {
            for x in 0..width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn model() -> Model {
        let p = |name: &str, state: &str, pid| ProgramInfo {
            name: name.into(),
            program: None,
            instance: None,
            state: state.into(),
            pid,
            started_at: None,
            uptime_secs: pid.map(|_| 187.0),
            restarts: 2,
            last_exit: None,
            last_error: None,
            health: Some("healthy".into()).filter(|_| pid.is_some()),
            waiting_for: vec![],
            version: None,
        };
        let mut m = Model::new("steward.toml".into());
        let reply = StatusReply {
            programs: vec![p("web", "running", Some(4242)), p("db", "stopped", None)],
            groups: vec![],
            sinks: vec![],
        };
        m.update(Event::Status { reply, at: Instant::now() });
        m
    }

    #[test]
    fn the_table_shows_each_process_and_dashes_for_what_is_not_known() {
        let s = screen(&model(), 100, 12);
        let row = s.lines().find(|l| l.contains("web")).unwrap();
        for cell in ["running", "4242", "3m07s", "–", "2", "healthy"] {
            assert!(row.contains(cell), "{cell} in {row:?}\n{s}");
        }
        assert!(s.lines().any(|l| l.contains("db") && l.contains("stopped")), "{s}");
        assert!(s.contains("2 processes, 1 running"), "{s}");
        assert!(s.contains("q quit"), "{s}");
    }

    #[test]
    fn a_small_terminal_gets_a_notice() {
        let s = screen(&model(), 30, 6);
        assert!(!s.contains("web"), "{s}");
        let text: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("terminal too small: need at least 60x10, have 30x6"), "{s}");
        // Wide enough for one line, too short.
        let s = screen(&model(), 80, 5);
        assert!(s.contains("terminal too small: need at least 60x10, have 80x5"), "{s}");
    }

    #[test]
    fn numbers_read_compactly() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12 * 1024 * 1024 + 512 * 1024), "12.5 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.50 GiB");
        assert_eq!(uptime(187.0), "3m07s");
        assert_eq!(sparkline(&[0, 50, 100], 10), "▁▄█");
        assert_eq!(sparkline(&[0, 50, 100], 2), "▄█");
        assert_eq!(sparkline(&[0, 0], 5), "▁▁");
    }
}
