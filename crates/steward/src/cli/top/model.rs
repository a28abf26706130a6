//! What `steward top` knows and how it changes: [`Event`]s in (keys, lines of the API's
//! streams, replies, the terminal's size), [`Command`]s out (requests to make, streams to open
//! or close). Pure: no terminal, no I/O and no clock (the time of a status reply comes in
//! with it), so the tests below drive it with plain values.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use serde::Deserialize;

use crate::protocol::{ActionResult, ProgramInfo, StatusReply};

/// Lines of the log tail asked for when the pane opens, and kept while it follows.
pub const LOG_LINES: usize = 200;
/// Points of the memory sparkline kept per program (an hour at the history's 10 s step).
pub const MEMORY_POINTS: usize = 360;

/// A key, as the model sees it (the I/O loop translates the terminal's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Home,
    End,
    Enter,
    Esc,
    Backspace,
    Char(char),
    CtrlC,
}

/// The control verbs the keys send (`name` is the word in the API's path, `POST /v1/stop`).
pub use crate::supervise::Verb;

/// The first line of `GET /v1/usage?follow=true`: the last hour, one point per `step_secs`,
/// each `[unix_secs, rss_bytes, cpu_percent, restarts]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct History {
    pub step_secs: u64,
    #[serde(default)]
    pub programs: BTreeMap<String, Vec<Point>>,
}

/// `[unix_secs, rss_bytes, cpu_percent, restarts]`.
pub type Point = (u64, u64, Option<f64>, u64);

/// A line of `GET /v1/usage?follow=true` after the first: every running program now.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Sample {
    pub time: String,
    #[serde(default)]
    pub programs: Vec<ProgramUsage>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProgramUsage {
    pub name: String,
    pub rss_bytes: u64,
    /// Null on a process's first reading (a rate needs two).
    pub cpu_percent: Option<f64>,
}

/// A line of the usage stream.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UsageLine {
    History { history: History },
    Sample(Sample),
}

#[derive(Debug)]
pub enum Event {
    Key(Key),
    Resize {
        width: u16,
        height: u16,
    },
    /// A reply of `GET /v1/status`, received at `at` (uptimes count on from there).
    Status {
        reply: StatusReply,
        at: Instant,
    },
    StatusFailed(String),
    /// A line of `/v1/events?follow=true`: something changed, the status is stale.
    Changed,
    /// The event stream ended (steward shut down, the connection broke).
    EventsEnded(String),
    Usage(UsageLine),
    /// `/v1/usage` is not there (404: a steward older than it).
    UsageUnavailable,
    UsageEnded(String),
    /// A line of the log stream `id`.
    LogLine {
        id: u64,
        line: String,
    },
    LogEnded {
        id: u64,
        error: Option<String>,
    },
    /// A start, stop or restart came back: each process's result, or why the request failed.
    ActionDone {
        verb: Verb,
        name: String,
        result: Result<Vec<ActionResult>, String>,
    },
}

/// What the I/O loop does for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    FetchStatus,
    Action {
        verb: Verb,
        name: String,
    },
    /// Follow the tail of `name`'s log as stream `id`, replacing any open one.
    OpenLog {
        id: u64,
        name: String,
        stderr: bool,
        lines: usize,
    },
    CloseLog,
    Quit,
}

/// Memory and CPU, as far as they are known.
#[derive(Clone, Debug, PartialEq)]
pub enum Usage {
    /// No sample yet.
    Waiting,
    /// This steward has no `/v1/usage`, or its stream ended.
    Unavailable,
    Live(HashMap<String, ProgramUsage>),
}

/// The log pane: the tail of one program's stdout or stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct LogPane {
    pub name: String,
    pub stderr: bool,
    /// The stream's id: lines of a stream replaced since are dropped.
    pub id: u64,
    pub lines: VecDeque<String>,
    /// Why the stream ended, once it has.
    pub ended: Option<String>,
}

#[derive(Debug)]
pub struct Model {
    /// What the header says this is a view of (the config file, or the remote URL).
    pub target: String,
    pub programs: Vec<ProgramInfo>,
    /// When `programs` was read.
    pub status_at: Option<Instant>,
    /// The selected process, by name (it keeps its place as rows come and go).
    pub selected: Option<String>,
    pub usage: Usage,
    /// Resident memory over time, per process, oldest first, with the time of the last point.
    pub memory: HashMap<String, (u64, VecDeque<u64>)>,
    memory_step: u64,
    pub log: Option<LogPane>,
    pub filter: String,
    /// Typing into the filter (after `/`).
    pub editing_filter: bool,
    /// The status line: the result of the last action, or what went wrong.
    pub message: Option<String>,
    pub size: (u16, u16),
    /// A status request is out.
    fetching: bool,
    /// Something changed while it was out: ask again when it returns.
    stale: bool,
    next_log_id: u64,
}

impl Model {
    pub fn new(target: String) -> Model {
        Model {
            target,
            programs: Vec::new(),
            status_at: None,
            selected: None,
            usage: Usage::Waiting,
            memory: HashMap::new(),
            memory_step: 10,
            log: None,
            filter: String::new(),
            editing_filter: false,
            message: None,
            size: (0, 0),
            fetching: false,
            stale: false,
            next_log_id: 0,
        }
    }

    /// The rows shown: the processes whose name holds the filter.
    pub fn visible(&self) -> Vec<&ProgramInfo> {
        let filter = self.filter.to_lowercase();
        self.programs.iter().filter(|p| p.name.to_lowercase().contains(&filter)).collect()
    }

    /// The row of the selection among [`Model::visible`].
    pub fn selected_index(&self) -> Option<usize> {
        let selected = self.selected.as_deref()?;
        self.visible().iter().position(|p| p.name == selected)
    }

    pub fn update(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Resize { width, height } => {
                self.size = (width, height);
                vec![]
            }
            Event::Status { reply, at } => {
                self.programs = reply.programs;
                self.status_at = Some(at);
                self.fetching = false;
                let mut commands = self.keep_selection();
                // Events came in while the request was out: one more covers them all.
                if std::mem::take(&mut self.stale) {
                    commands.extend(self.fetch());
                }
                commands
            }
            Event::StatusFailed(e) => {
                self.fetching = false;
                self.message = Some(format!("cannot read the status: {e}"));
                if std::mem::take(&mut self.stale) {
                    return self.fetch();
                }
                vec![]
            }
            Event::Changed => self.fetch(),
            Event::EventsEnded(why) => {
                self.message = Some(format!("no more updates from steward ({why}); q quits"));
                vec![]
            }
            Event::Usage(UsageLine::History { history }) => {
                self.memory_step = history.step_secs.max(1);
                for (name, points) in history.programs {
                    let last = points.last().map_or(0, |p| p.0);
                    let mut values: VecDeque<u64> = points.iter().map(|p| p.1).collect();
                    while values.len() > MEMORY_POINTS {
                        values.pop_front();
                    }
                    self.memory.insert(name, (last, values));
                }
                vec![]
            }
            Event::Usage(UsageLine::Sample(sample)) => {
                let unix = humantime::parse_rfc3339_weak(&sample.time)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs());
                for p in &sample.programs {
                    let Some(unix) = unix else { break };
                    let (last, values) = self.memory.entry(p.name.clone()).or_default();
                    // A point per step of the history, so that the line keeps one scale.
                    if values.is_empty() || unix >= *last + self.memory_step {
                        *last = unix;
                        values.push_back(p.rss_bytes);
                        if values.len() > MEMORY_POINTS {
                            values.pop_front();
                        }
                    }
                }
                self.usage = Usage::Live(sample.programs.into_iter().map(|p| (p.name.clone(), p)).collect());
                vec![]
            }
            Event::UsageUnavailable => {
                self.usage = Usage::Unavailable;
                vec![]
            }
            Event::UsageEnded(why) => {
                self.usage = Usage::Unavailable;
                self.message = Some(format!("memory and CPU: the stream ended ({why})"));
                vec![]
            }
            Event::LogLine { id, line } => {
                if let Some(log) = self.log.as_mut().filter(|l| l.id == id) {
                    log.lines.push_back(line);
                    if log.lines.len() > LOG_LINES {
                        log.lines.pop_front();
                    }
                }
                vec![]
            }
            Event::LogEnded { id, error } => {
                if let Some(log) = self.log.as_mut().filter(|l| l.id == id) {
                    log.ended = Some(error.unwrap_or_else(|| "the stream ended".into()));
                }
                vec![]
            }
            Event::ActionDone { verb, name, result } => {
                self.message = Some(action_message(verb, &name, result));
                vec![]
            }
        }
    }

    fn key(&mut self, key: Key) -> Vec<Command> {
        if key == Key::CtrlC {
            return vec![Command::Quit];
        }
        if self.editing_filter {
            match key {
                Key::Char(c) => self.filter.push(c),
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Enter => self.editing_filter = false,
                Key::Esc => {
                    self.filter.clear();
                    self.editing_filter = false;
                }
                Key::Up | Key::Down | Key::Home | Key::End => return self.move_selection(key),
                Key::CtrlC => {}
            }
            return self.keep_selection();
        }
        match key {
            Key::Char('q') => vec![Command::Quit],
            Key::Up | Key::Char('k') => self.move_selection(Key::Up),
            Key::Down | Key::Char('j') => self.move_selection(Key::Down),
            Key::Home | Key::Char('g') => self.move_selection(Key::Home),
            Key::End | Key::Char('G') => self.move_selection(Key::End),
            Key::Char('s') => self.action(Verb::Start),
            Key::Char('x') => self.action(Verb::Stop),
            Key::Char('r') => self.action(Verb::Restart),
            Key::Char('l') => {
                if self.log.take().is_some() {
                    return vec![Command::CloseLog];
                }
                self.open_log(false)
            }
            Key::Char('e') => {
                let stderr = !self.log.as_ref().is_some_and(|l| l.stderr);
                self.open_log(stderr)
            }
            Key::Char('/') => {
                self.editing_filter = true;
                vec![]
            }
            Key::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.keep_selection()
            }
            Key::Esc if self.log.take().is_some() => vec![Command::CloseLog],
            _ => vec![],
        }
    }

    /// Asks for the status, unless a request is out (then once more when it returns).
    fn fetch(&mut self) -> Vec<Command> {
        if self.fetching {
            self.stale = true;
            return vec![];
        }
        self.fetching = true;
        vec![Command::FetchStatus]
    }

    fn move_selection(&mut self, key: Key) -> Vec<Command> {
        let visible = self.visible();
        if visible.is_empty() {
            return vec![];
        }
        let last = visible.len() - 1;
        let at = self.selected_index();
        let to = match (key, at) {
            (Key::Home, _) | (_, None) => 0,
            (Key::End, _) => last,
            (Key::Up, Some(i)) => i.saturating_sub(1),
            (_, Some(i)) => (i + 1).min(last),
        };
        let name = visible[to].name.clone();
        self.select(Some(name))
    }

    /// After the rows changed: the selection stays if it is still shown, else the first row.
    fn keep_selection(&mut self) -> Vec<Command> {
        if self.selected_index().is_some() {
            return vec![];
        }
        let first = self.visible().first().map(|p| p.name.clone());
        self.select(first)
    }

    /// Selects `name`; an open log pane follows the selection.
    fn select(&mut self, name: Option<String>) -> Vec<Command> {
        if self.selected == name {
            return vec![];
        }
        self.selected = name;
        match (&self.log, &self.selected) {
            (Some(log), Some(_)) => {
                let stderr = log.stderr;
                self.open_log(stderr)
            }
            (Some(_), None) => {
                self.log = None;
                vec![Command::CloseLog]
            }
            (None, _) => vec![],
        }
    }

    fn open_log(&mut self, stderr: bool) -> Vec<Command> {
        let Some(name) = self.selected.clone() else {
            return vec![];
        };
        self.next_log_id += 1;
        let id = self.next_log_id;
        self.log = Some(LogPane { name: name.clone(), stderr, id, lines: VecDeque::new(), ended: None });
        vec![Command::OpenLog { id, name, stderr, lines: LOG_LINES }]
    }

    fn action(&mut self, verb: Verb) -> Vec<Command> {
        let Some(name) = self.selected.clone() else {
            return vec![];
        };
        self.message = Some(format!("{} {name}…", verb.name()));
        vec![Command::Action { verb, name }]
    }
}

/// The status line after an action: `stop web: stopped`, or why it failed.
fn action_message(verb: Verb, name: &str, result: Result<Vec<ActionResult>, String>) -> String {
    let verb = verb.name();
    match result {
        Err(e) => format!("{verb} {name} failed: {e}"),
        Ok(results) if results.is_empty() => format!("{verb} {name}: nothing to do"),
        Ok(results) => {
            let parts: Vec<String> = results
                .iter()
                .map(|r| match &r.error {
                    Some(e) => format!("{} failed: {e}", r.name),
                    None => {
                        let pid = r.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                        format!("{}: {}{pid}", r.name, r.state)
                    }
                })
                .collect();
            format!("{verb} {}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, state: &str) -> ProgramInfo {
        ProgramInfo {
            name: name.into(),
            program: None,
            instance: None,
            state: state.into(),
            pid: (state == "running").then_some(100),
            started_at: None,
            uptime_secs: Some(1.0),
            restarts: 0,
            last_exit: None,
            last_error: None,
            health: None,
            waiting_for: vec![],
            version: None,
        }
    }

    fn status(names: &[&str]) -> Event {
        let programs = names.iter().map(|n| info(n, "running")).collect();
        Event::Status { reply: StatusReply { programs, groups: vec![], sinks: vec![] }, at: Instant::now() }
    }

    fn model(names: &[&str]) -> Model {
        let mut m = Model::new("steward.toml".into());
        m.update(Event::Changed);
        m.update(status(names));
        m
    }

    fn keys(m: &mut Model, keys: &str) -> Vec<Command> {
        keys.chars().flat_map(|c| m.update(Event::Key(Key::Char(c)))).collect()
    }

    #[test]
    fn the_first_row_is_selected_and_keys_move_within_the_rows() {
        let mut m = model(&["api", "db", "web"]);
        assert_eq!(m.selected.as_deref(), Some("api"));
        keys(&mut m, "jj");
        assert_eq!(m.selected.as_deref(), Some("web"));
        keys(&mut m, "j"); // stays on the last row
        assert_eq!(m.selected.as_deref(), Some("web"));
        m.update(Event::Key(Key::Up));
        assert_eq!(m.selected.as_deref(), Some("db"));
        keys(&mut m, "g");
        assert_eq!(m.selected.as_deref(), Some("api"));
        keys(&mut m, "G");
        assert_eq!(m.selected.as_deref(), Some("web"));
        // The selection follows its program when rows come and go, and falls back to the first.
        m.update(status(&["aaa", "web"]));
        assert_eq!(m.selected.as_deref(), Some("web"));
        m.update(status(&["aaa", "db"]));
        assert_eq!(m.selected.as_deref(), Some("aaa"));
    }

    #[test]
    fn keys_send_actions_on_the_selection() {
        let mut m = model(&["api", "web"]);
        keys(&mut m, "j");
        let act = |verb| vec![Command::Action { verb, name: "web".into() }];
        assert_eq!(keys(&mut m, "x"), act(Verb::Stop));
        assert_eq!(m.message.as_deref(), Some("stop web…"));
        assert_eq!(keys(&mut m, "s"), act(Verb::Start));
        assert_eq!(keys(&mut m, "r"), act(Verb::Restart));
        assert_eq!(keys(&mut m, "q"), vec![Command::Quit]);
        assert_eq!(m.update(Event::Key(Key::CtrlC)), vec![Command::Quit]);
        // Nothing selected, nothing sent.
        assert!(keys(&mut model(&[]), "xsr").is_empty());
    }

    #[test]
    fn action_results_go_to_the_status_line() {
        let mut m = model(&["web"]);
        let result = |error: Option<&str>| ActionResult {
            name: "web".into(),
            ok: error.is_none(),
            state: "stopped".into(),
            pid: None,
            error: error.map(Into::into),
        };
        let done = |result| Event::ActionDone { verb: Verb::Stop, name: "web".into(), result };
        m.update(done(Ok(vec![result(None)])));
        assert_eq!(m.message.as_deref(), Some("stop web: stopped"));
        m.update(done(Ok(vec![result(Some("timed out"))])));
        assert_eq!(m.message.as_deref(), Some("stop web failed: timed out"));
        m.update(done(Err("not allowed (HTTP 403): needs operator".into())));
        assert_eq!(m.message.as_deref(), Some("stop web failed: not allowed (HTTP 403): needs operator"));
    }

    #[test]
    fn changes_while_a_status_request_is_out_make_one_more_request() {
        let mut m = Model::new("t".into());
        assert_eq!(m.update(Event::Changed), vec![Command::FetchStatus]);
        // A burst of events (the history at connect, a restart's several state changes).
        for _ in 0..10 {
            assert_eq!(m.update(Event::Changed), vec![]);
        }
        // The reply comes: one more request covers the burst.
        assert_eq!(m.update(status(&["web"])), vec![Command::FetchStatus]);
        assert_eq!(m.update(status(&["web"])), vec![]);
        assert_eq!(m.update(Event::Changed), vec![Command::FetchStatus]);
        // A failed request frees the way too.
        m.update(Event::StatusFailed("connection reset".into()));
        assert!(m.message.as_deref().unwrap().contains("connection reset"));
        assert_eq!(m.update(Event::Changed), vec![Command::FetchStatus]);
    }

    #[test]
    fn the_log_pane_follows_the_selection_and_drops_old_streams() {
        let mut m = model(&["api", "web"]);
        let open = |id, name: &str, stderr| {
            vec![Command::OpenLog { id, name: name.into(), stderr, lines: LOG_LINES }]
        };
        assert_eq!(keys(&mut m, "l"), open(1, "api", false));
        m.update(Event::LogLine { id: 1, line: "api says hi".into() });
        assert_eq!(keys(&mut m, "j"), open(2, "web", false));
        // A late line of the first stream does not land in web's pane.
        m.update(Event::LogLine { id: 1, line: "late".into() });
        m.update(Event::LogLine { id: 2, line: "web says hi".into() });
        assert_eq!(m.log.as_ref().unwrap().lines, ["web says hi"]);
        // e toggles stderr, then back.
        assert_eq!(keys(&mut m, "e"), open(3, "web", true));
        assert_eq!(keys(&mut m, "e"), open(4, "web", false));
        m.update(Event::LogEnded { id: 4, error: None });
        assert!(m.log.as_ref().unwrap().ended.is_some());
        assert_eq!(keys(&mut m, "l"), vec![Command::CloseLog]);
        assert!(m.log.is_none());
        // e with no pane opens stderr's.
        assert_eq!(keys(&mut m, "e"), open(5, "web", true));
        assert_eq!(m.update(Event::Key(Key::Esc)), vec![Command::CloseLog]);
        // The tail is bounded.
        keys(&mut m, "l");
        for i in 0..LOG_LINES + 5 {
            m.update(Event::LogLine { id: 6, line: i.to_string() });
        }
        let lines = &m.log.as_ref().unwrap().lines;
        assert_eq!((lines.len(), lines.front().map(String::as_str)), (LOG_LINES, Some("5")));
    }

    #[test]
    fn the_filter_narrows_the_rows_and_keys_type_into_it() {
        let mut m = model(&["api", "web:0", "web:1", "worker"]);
        keys(&mut m, "/");
        // While typing, letters are the filter's, not commands.
        assert!(keys(&mut m, "web").is_empty());
        assert_eq!(m.filter, "web");
        let names: Vec<&str> = m.visible().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web:0", "web:1"]);
        assert_eq!(m.selected.as_deref(), Some("web:0"));
        m.update(Event::Key(Key::Backspace));
        assert_eq!(m.filter, "we");
        m.update(Event::Key(Key::Enter));
        assert!(!m.editing_filter);
        assert_eq!(keys(&mut m, "x"), vec![Command::Action { verb: Verb::Stop, name: "web:0".into() }]);
        // Esc clears it; the selection stays.
        m.update(Event::Key(Key::Esc));
        assert_eq!((m.filter.as_str(), m.visible().len()), ("", 4));
        assert_eq!(m.selected.as_deref(), Some("web:0"));
    }

    #[test]
    fn usage_lines_parse_and_feed_the_columns_and_the_memory_line() {
        let mut m = model(&["web"]);
        assert_eq!(m.usage, Usage::Waiting);
        let line = |json: &str| {
            let parsed: UsageLine = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            Event::Usage(parsed)
        };
        m.update(line(
            r#"{"history":{"step_secs":10,"programs":{"web":[[1000,100,null,0],[1010,200,1.5,0]]}}}"#,
        ));
        assert_eq!(m.memory["web"], (1010, VecDeque::from([100, 200])));
        let sample = |time: &str, rss: u64| {
            line(&format!(
                r#"{{"time":"{time}","interval_secs":2,"programs":[{{"name":"web","rss_bytes":{rss},"cpu_percent":null,"processes":1}}]}}"#
            ))
        };
        // 1970-01-01T00:16:50Z is 1010: within the step, no new point; 1020 adds one.
        m.update(sample("1970-01-01T00:16:52.000Z", 300));
        assert_eq!(m.memory["web"].1.len(), 2);
        m.update(sample("1970-01-01T00:17:00Z", 400));
        assert_eq!(m.memory["web"].1, [100, 200, 400]);
        let Usage::Live(now) = &m.usage else { panic!("{:?}", m.usage) };
        assert_eq!((now["web"].rss_bytes, now["web"].cpu_percent), (400, None));
        // An older steward: no usage route.
        m.update(Event::UsageUnavailable);
        assert_eq!(m.usage, Usage::Unavailable);
    }
}
