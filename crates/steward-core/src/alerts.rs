//! Alert rules (`[[alerts]]`): the `when` conditions, parsed from their text, and a pure
//! evaluator that turns a stream of observations into firing, repeated and resolved
//! notifications.
//!
//! The evaluator never reads the clock: every observation comes with `now`, and
//! [`Evaluator::next_deadline`] tells the runtime when time alone would change something (a
//! restart leaving its window, an unhealthy period reaching its length, a repeat falling
//! due), so the runtime arms one timer instead of polling.
//!
//! Each rule is evaluated per program (only the programs it names, or all of them): one
//! alert per (rule, program), firing once when its condition starts to hold, again every
//! `repeat_every` while it holds (if set), and resolved once when it stops holding.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::config::AlertSpec;
use crate::fsm::State;
use crate::health::Health;
use crate::units;

/// A `when` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `restarts > N within D`: more than N automatic restarts in the last D.
    Restarts { more_than: u32, within: Duration },
    /// `state == "fatal"`: the program is in this state.
    State(State),
    /// `unhealthy for D`: the health check has said Unhealthy for at least D.
    UnhealthyFor(Duration),
    /// `memory > SIZE`: the program's process tree uses more resident memory than this.
    MemoryAbove(u64),
}

impl Condition {
    /// Whether resource samples are needed to evaluate it.
    pub fn needs_memory(&self) -> bool {
        matches!(self, Condition::MemoryAbove(_))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Restarts { more_than, within } => {
                write!(f, "restarts > {more_than} within {}", units::format_duration(*within))
            }
            Condition::State(s) => write!(f, "state == \"{s}\""),
            Condition::UnhealthyFor(d) => write!(f, "unhealthy for {}", units::format_duration(*d)),
            Condition::MemoryAbove(b) => write!(f, "memory > {}", crate::limits::format_bytes(*b)),
        }
    }
}

/// A mistake in a `when` text: where (a byte range of the text), what, and what to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    pub span: Range<usize>,
    pub message: String,
    pub hint: String,
}

/// The forms a condition can take, for hints.
pub const FORMS: &str =
    "`restarts > 3 within 10m`, `state == \"fatal\"`, `unhealthy for 5m` or `memory > 512MB`";

/// Parses a `when` text such as `restarts > 3 within 10m`.
pub fn parse_condition(text: &str) -> Result<Condition, ConditionError> {
    let mut c = Cursor { text, pos: 0 };
    let (span, subject) = c.word().ok_or_else(|| c.error_here("the condition is empty", FORMS))?;
    match subject.to_ascii_lowercase().as_str() {
        "restarts" => {
            c.expect_op(">", "write `restarts > N within D`, for example `restarts > 3 within 10m`")?;
            let (span, n) = c.word().ok_or_else(|| {
                c.error_here("a number of restarts is missing", "for example `restarts > 3 within 10m`")
            })?;
            let more_than = n.parse::<u32>().map_err(|_| ConditionError {
                span,
                message: format!("`{n}` is not a whole number of restarts"),
                hint: "for example `restarts > 3 within 10m`".into(),
            })?;
            c.expect_word("within", "say over what time: `restarts > 3 within 10m`")?;
            let (within, span) =
                c.rest_as("the window", units::parse_duration, "for example `within 10m`")?;
            if within.is_zero() {
                let message = "the window must be longer than 0".into();
                return Err(ConditionError { span, message, hint: "for example `within 10m`".into() });
            }
            Ok(Condition::Restarts { more_than, within })
        }
        "state" => {
            c.expect_op("==", "write `state == \"fatal\"`")?;
            let (span, raw) = c.rest();
            let name = raw.trim_matches('"');
            let names = State::ALL.map(State::name).join("\", \"");
            State::ALL.into_iter().find(|s| s.name() == name).map(Condition::State).ok_or(ConditionError {
                span,
                message: if name.is_empty() {
                    "the state is missing".into()
                } else {
                    format!("`{name}` is not a state")
                },
                hint: format!("the states are \"{names}\""),
            })
        }
        "unhealthy" => {
            c.expect_word("for", "write `unhealthy for D`, for example `unhealthy for 5m`")?;
            let (d, _) =
                c.rest_as("the duration", units::parse_duration, "for example `unhealthy for 5m`")?;
            Ok(Condition::UnhealthyFor(d))
        }
        "memory" => {
            c.expect_op(">", "write `memory > SIZE`, for example `memory > 512MB`")?;
            let (b, _) = c.rest_as("the size", units::parse_size, "for example `memory > 512MB`")?;
            Ok(Condition::MemoryAbove(b))
        }
        _ => Err(ConditionError {
            span,
            message: format!("unknown condition `{subject}`"),
            hint: format!("a condition is one of {FORMS}"),
        }),
    }
}

/// A scanner over a condition's text that keeps byte offsets for error spans.
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Cursor<'t> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> Option<(Range<usize>, &'t str)> {
        self.skip_space();
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        let span = self.pos..self.pos + len;
        self.pos += len;
        Some((span.clone(), &self.text[span]))
    }

    fn word(&mut self) -> Option<(Range<usize>, &'t str)> {
        self.take_while(|c| c.is_alphanumeric() || c == '_' || c == '.')
    }

    fn expect_op(&mut self, op: &str, hint: &str) -> Result<(), ConditionError> {
        match self.take_while(|c| matches!(c, '<' | '>' | '=' | '!')) {
            Some((_, found)) if found == op => Ok(()),
            Some((span, found)) => Err(ConditionError {
                span,
                message: format!("expected `{op}`, found `{found}`"),
                hint: hint.into(),
            }),
            None => Err(self.error_here(&format!("expected `{op}`"), hint)),
        }
    }

    fn expect_word(&mut self, word: &str, hint: &str) -> Result<(), ConditionError> {
        match self.word() {
            Some((_, found)) if found.eq_ignore_ascii_case(word) => Ok(()),
            Some((span, found)) => Err(ConditionError {
                span,
                message: format!("expected `{word}`, found `{found}`"),
                hint: hint.into(),
            }),
            None => Err(self.error_here(&format!("expected `{word}`"), hint)),
        }
    }

    /// The rest of the text, trimmed, with its span.
    fn rest(&mut self) -> (Range<usize>, &'t str) {
        self.skip_space();
        let rest = self.text[self.pos..].trim_end();
        let span = self.pos..self.pos + rest.len();
        self.pos = self.text.len();
        (span, rest)
    }

    fn rest_as<T>(
        &mut self,
        what: &str,
        parse: fn(&str) -> Result<T, String>,
        hint: &str,
    ) -> Result<(T, Range<usize>), ConditionError> {
        let (span, rest) = self.rest();
        if rest.is_empty() {
            return Err(ConditionError { span, message: format!("{what} is missing"), hint: hint.into() });
        }
        match parse(rest) {
            Ok(v) => Ok((v, span)),
            Err(e) => Err(ConditionError { span, message: e, hint: hint.into() }),
        }
    }

    fn error_here(&self, message: &str, hint: &str) -> ConditionError {
        let at = self.pos.min(self.text.len());
        ConditionError { span: at..at, message: message.into(), hint: hint.into() }
    }
}

// ---------------------------------------------------------------------------------------
// The evaluator.
// ---------------------------------------------------------------------------------------

/// What happened to a program, as far as alert rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Its state changed.
    State(State),
    /// It was restarted automatically (after a crash, a failed health check, a memory limit).
    Restarted,
    /// Its health changed.
    Health(Health),
    /// A sample of its tree's resident memory; `None` when no process runs.
    Memory(Option<u64>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn name(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One notification to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The rule's `name`.
    pub alert: String,
    pub program: String,
    pub status: AlertStatus,
    /// A firing alert sent again after `repeat_every`.
    pub repeat: bool,
    /// The condition and what was seen, in words.
    pub message: String,
}

/// What the evaluator knows of one program.
#[derive(Clone, Debug, Default)]
struct Facts {
    state: Option<State>,
    /// Times of recent automatic restarts, oldest first (only as far back as the longest
    /// `restarts ... within` window of any rule).
    restarts: VecDeque<Instant>,
    unhealthy_since: Option<Instant>,
    rss: Option<u64>,
}

/// A firing alert.
#[derive(Clone, Copy, Debug)]
struct Firing {
    last_sent: Instant,
}

#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    rules: Vec<AlertSpec>,
    programs: BTreeMap<String, Facts>,
    /// Firing alerts by (rule name, program).
    firing: BTreeMap<(String, String), Firing>,
}

impl Evaluator {
    pub fn new(rules: Vec<AlertSpec>) -> Self {
        Evaluator { rules, ..Default::default() }
    }

    pub fn rules(&self) -> &[AlertSpec] {
        &self.rules
    }

    /// Whether any rule needs memory samples.
    pub fn needs_memory(&self) -> bool {
        self.rules.iter().any(|r| r.when.needs_memory())
    }

    /// The alerts firing now, as (rule name, program).
    pub fn firing(&self) -> impl Iterator<Item = (&str, &str)> {
        self.firing.keys().map(|(a, p)| (a.as_str(), p.as_str()))
    }

    /// Replace the rules (a reload). Alerts of rules that kept their name, condition and
    /// programs stay firing without a new notification; the others are dropped silently.
    pub fn set_rules(&mut self, rules: Vec<AlertSpec>, now: Instant) -> Vec<Notification> {
        let same = |old: &AlertSpec| {
            rules.iter().any(|r| r.name == old.name && r.when == old.when && r.programs == old.programs)
        };
        let kept: Vec<String> = self.rules.iter().filter(|r| same(r)).map(|r| r.name.clone()).collect();
        self.firing.retain(|(alert, _), _| kept.contains(alert));
        if rules.is_empty() {
            self.programs.clear();
        }
        self.rules = rules;
        self.tick(now)
    }

    /// Feed what happened to `program`. Without rules nothing is kept: the caller feeds
    /// what is current when rules come (a reload).
    pub fn observe(&mut self, program: &str, obs: Observation, now: Instant) -> Vec<Notification> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let keep = self.longest_restart_window();
        let facts = self.programs.entry(program.to_owned()).or_default();
        match obs {
            Observation::State(s) => facts.state = Some(s),
            Observation::Restarted => {
                if keep.is_some() {
                    facts.restarts.push_back(now);
                }
            }
            Observation::Health(h) => {
                if h != Health::Unhealthy {
                    facts.unhealthy_since = None;
                } else if facts.unhealthy_since.is_none() {
                    facts.unhealthy_since = Some(now);
                }
            }
            Observation::Memory(rss) => facts.rss = rss,
        }
        let mut out = Vec::new();
        self.evaluate(program, now, &mut out);
        out
    }

    /// The program is gone (removed by a reload): its firing alerts resolve.
    pub fn forget(&mut self, program: &str) -> Vec<Notification> {
        self.programs.remove(program);
        let gone: Vec<(String, String)> = self.firing.keys().filter(|(_, p)| p == program).cloned().collect();
        gone.into_iter()
            .map(|key| {
                self.firing.remove(&key);
                let (alert, program) = key;
                Notification {
                    alert,
                    program,
                    status: AlertStatus::Resolved,
                    repeat: false,
                    message: "the program was removed from the config".into(),
                }
            })
            .collect()
    }

    /// Time passed: re-evaluate everything.
    pub fn tick(&mut self, now: Instant) -> Vec<Notification> {
        let keep = self.longest_restart_window();
        for facts in self.programs.values_mut() {
            match keep {
                Some(window) => {
                    while facts.restarts.front().is_some_and(|&t| now.saturating_duration_since(t) >= window)
                    {
                        facts.restarts.pop_front();
                    }
                }
                None => facts.restarts.clear(),
            }
        }
        let mut out = Vec::new();
        let names: Vec<String> = self.programs.keys().cloned().collect();
        for program in &names {
            self.evaluate(program, now, &mut out);
        }
        out
    }

    /// When time alone will next change something: call [`Evaluator::tick`] then. May be
    /// at or before `now` if a tick is overdue.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for rule in &self.rules {
            for (program, facts) in self.programs.iter().filter(|(p, _)| applies(rule, p)) {
                let firing = self.firing.get(&(rule.name.clone(), program.clone()));
                match rule.when {
                    // While firing, the oldest restart in the window leaving it may resolve it.
                    Condition::Restarts { within, .. } if firing.is_some() => {
                        if let Some(&t) =
                            facts.restarts.iter().find(|&&t| now.saturating_duration_since(t) < within)
                        {
                            consider(units::later(t, within));
                        }
                    }
                    Condition::UnhealthyFor(d) if firing.is_none() => {
                        if let Some(t) = facts.unhealthy_since {
                            consider(units::later(t, d));
                        }
                    }
                    _ => {}
                }
                if let (Some(f), Some(every)) = (firing, rule.repeat_every) {
                    consider(units::later(f.last_sent, every));
                }
            }
        }
        next
    }

    fn longest_restart_window(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|r| match r.when {
                Condition::Restarts { within, .. } => Some(within),
                _ => None,
            })
            .max()
    }

    fn evaluate(&mut self, program: &str, now: Instant, out: &mut Vec<Notification>) {
        let Some(facts) = self.programs.get(program) else { return };
        for rule in self.rules.iter().filter(|r| applies(r, program)) {
            let (holds, seen) = check(&rule.when, facts, now);
            let key = (rule.name.clone(), program.to_owned());
            let notify = |status, repeat, message: String| Notification {
                alert: rule.name.clone(),
                program: program.to_owned(),
                status,
                repeat,
                message,
            };
            match (holds, self.firing.get_mut(&key)) {
                (true, None) => {
                    self.firing.insert(key, Firing { last_sent: now });
                    out.push(notify(AlertStatus::Firing, false, format!("{}: {seen}", rule.when)));
                }
                (true, Some(f)) => {
                    if rule
                        .repeat_every
                        .is_some_and(|every| now.saturating_duration_since(f.last_sent) >= every)
                    {
                        f.last_sent = now;
                        out.push(notify(AlertStatus::Firing, true, format!("{}: {seen}", rule.when)));
                    }
                }
                (false, Some(_)) => {
                    self.firing.remove(&key);
                    out.push(notify(
                        AlertStatus::Resolved,
                        false,
                        format!("no longer {}: {seen}", rule.when),
                    ));
                }
                (false, None) => {}
            }
        }
    }
}

/// Whether `rule` covers `program`.
fn applies(rule: &AlertSpec, program: &str) -> bool {
    // A rule naming `web` covers its instances `web:0`...
    rule.programs.is_empty() || rule.programs.iter().any(|p| p == crate::config::group_of(program))
}

/// Whether the condition holds, and what was seen, in words.
fn check(when: &Condition, facts: &Facts, now: Instant) -> (bool, String) {
    match *when {
        Condition::Restarts { more_than, within } => {
            let n = facts.restarts.iter().filter(|&&t| now.saturating_duration_since(t) < within).count();
            let s = if n == 1 { "" } else { "s" };
            (n > more_than as usize, format!("{n} restart{s} in the last {}", units::format_duration(within)))
        }
        Condition::State(want) => {
            let state = facts.state.map_or("unknown", State::name);
            (facts.state == Some(want), format!("state {state}"))
        }
        Condition::UnhealthyFor(d) => match facts.unhealthy_since {
            Some(t) => {
                let for_ = now.saturating_duration_since(t);
                (for_ >= d, format!("unhealthy for {}", units::format_duration(round_ms(for_))))
            }
            None => (false, "not unhealthy".into()),
        },
        Condition::MemoryAbove(limit) => match facts.rss {
            Some(rss) => (rss > limit, format!("memory {}", crate::limits::format_bytes(rss))),
            None => (false, "no process running".into()),
        },
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertStatus::*;

    #[test]
    fn conditions_parse() {
        let min = |m: u64| Duration::from_secs(60 * m);
        #[rustfmt::skip]
        let table: &[(&str, Condition)] = &[
            ("restarts > 3 within 10m",    Condition::Restarts { more_than: 3, within: min(10) }),
            ("  restarts>0 within 1h 30m ", Condition::Restarts { more_than: 0, within: min(90) }),
            ("Restarts > 5 WITHIN 1m",     Condition::Restarts { more_than: 5, within: min(1) }),
            ("state == \"fatal\"",         Condition::State(State::Fatal)),
            ("state == backoff",           Condition::State(State::Backoff)),
            ("unhealthy for 5m",           Condition::UnhealthyFor(min(5))),
            ("unhealthy for 0s",           Condition::UnhealthyFor(Duration::ZERO)),
            ("memory > 512MB",             Condition::MemoryAbove(512_000_000)),
            ("memory > 1GiB",              Condition::MemoryAbove(1 << 30)),
        ];
        for (text, want) in table {
            assert_eq!(parse_condition(text).as_ref(), Ok(want), "{text}");
            // What is shown parses back to the same.
            assert_eq!(parse_condition(&want.to_string()).as_ref(), Ok(want), "{want}");
        }
    }

    #[test]
    fn condition_mistakes_point_at_the_part() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str)] = &[
            // text, the part underlined, words in the message
            ("",                          "",       "empty"),
            ("restart > 3 within 1m",     "restart", "unknown condition `restart`"),
            ("restarts >= 3 within 1m",   ">=",     "expected `>`"),
            ("restarts > three within 1m", "three", "not a whole number"),
            ("restarts > 3 in 1m",        "in",     "expected `within`"),
            ("restarts > 3 within",       "",       "the window is missing"),
            ("restarts > 3 within 10",    "10",     "time unit"),
            ("restarts > 3 within 0s",    "0s",     "longer than 0"),
            ("state = \"fatal\"",         "=",      "expected `==`"),
            ("state == \"dead\"",         "\"dead\"", "`dead` is not a state"),
            ("unhealthy 5m",              "5m",     "expected `for`"),
            ("memory > lots",             "lots",   "not a size"),
        ];
        for (text, part, words) in table {
            let e = parse_condition(text).unwrap_err();
            assert_eq!(&text[e.span.clone()], *part, "{text:?}: {e:?}");
            assert!(e.message.contains(words), "{text:?}: {}", e.message);
        }
    }

    fn rule(name: &str, when: &str, repeat: Option<u64>, programs: &[&str]) -> AlertSpec {
        AlertSpec {
            name: name.into(),
            when: parse_condition(when).unwrap(),
            webhook: None,
            command: None,
            repeat_every: repeat.map(Duration::from_secs),
            programs: programs.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// (seconds, program, observation or None for a tick) -> (alert, program, status, repeat)
    type Script<'a> =
        &'a [(u64, &'a str, Option<Observation>, &'a [(&'a str, &'a str, AlertStatus, bool)])];

    fn run(rules: Vec<AlertSpec>, script: Script<'_>) {
        let t0 = Instant::now();
        let mut e = Evaluator::new(rules);
        for (i, &(at, program, obs, want)) in script.iter().enumerate() {
            let now = t0 + Duration::from_secs(at);
            let got = match obs {
                Some(o) => e.observe(program, o, now),
                None => e.tick(now),
            };
            let got: Vec<(&str, &str, AlertStatus, bool)> =
                got.iter().map(|n| (n.alert.as_str(), n.program.as_str(), n.status, n.repeat)).collect();
            assert_eq!(got, want, "step {i} at {at}s");
        }
    }

    #[test]
    fn restarts_within_a_sliding_window() {
        use Observation::Restarted as R;
        run(
            vec![rule("flapping", "restarts > 2 within 60s", None, &[])],
            &[
                (0, "web", Some(R), &[]),
                (10, "web", Some(R), &[]),
                (20, "api", Some(R), &[]),
                (30, "web", Some(R), &[("flapping", "web", Firing, false)]),
                (40, "web", Some(R), &[]),
                // 0s and 10s leave the window at 60s and 70s: 3 then 2 left.
                (60, "", None, &[]),
                (70, "", None, &[("flapping", "web", Resolved, false)]),
                (71, "web", Some(R), &[("flapping", "web", Firing, false)]),
            ],
        );
    }

    #[test]
    fn state_alerts_fire_and_resolve_and_repeat() {
        use Observation::State as S;
        run(
            vec![rule("dead", "state == \"fatal\"", Some(300), &["web"])],
            &[
                (0, "web", Some(S(State::Running)), &[]),
                (1, "api", Some(S(State::Fatal)), &[]), // not covered by the rule
                (2, "web", Some(S(State::Fatal)), &[("dead", "web", Firing, false)]),
                (100, "", None, &[]),
                (302, "", None, &[("dead", "web", Firing, true)]),
                (303, "web", Some(S(State::Fatal)), &[]),
                (602, "", None, &[("dead", "web", Firing, true)]),
                (700, "web", Some(S(State::Starting)), &[("dead", "web", Resolved, false)]),
            ],
        );
    }

    #[test]
    fn unhealthy_for_a_while() {
        use Health::*;
        use Observation::Health as H;
        run(
            vec![rule("sick", "unhealthy for 30s", None, &[])],
            &[
                (0, "web", Some(H(Unhealthy)), &[]),
                (20, "web", Some(H(Healthy)), &[]),
                (25, "web", Some(H(Unhealthy)), &[]),
                (40, "web", Some(H(Unhealthy)), &[]), // still counting from 25s
                (55, "", None, &[("sick", "web", Firing, false)]),
                (60, "web", Some(H(Unknown)), &[("sick", "web", Resolved, false)]),
            ],
        );
    }

    #[test]
    fn memory_above() {
        use Observation::Memory as M;
        run(
            vec![rule("fat", "memory > 100", None, &[])],
            &[
                (0, "web", Some(M(Some(100))), &[]),
                (1, "web", Some(M(Some(101))), &[("fat", "web", Firing, false)]),
                (2, "web", Some(M(Some(500))), &[]),
                (3, "web", Some(M(None)), &[("fat", "web", Resolved, false)]),
            ],
        );
    }

    #[test]
    fn deadlines_say_when_time_matters() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut e = Evaluator::new(vec![
            rule("flapping", "restarts > 0 within 60s", Some(100), &[]),
            rule("sick", "unhealthy for 30s", None, &[]),
        ]);
        assert_eq!(e.next_deadline(t0), None);
        e.observe("web", Observation::Health(Health::Unhealthy), s(5));
        assert_eq!(e.next_deadline(s(5)), Some(s(35)));
        e.observe("web", Observation::Restarted, s(10));
        // The restart leaves the window at 70s; the repeat would be due at 110s; the
        // unhealthy period is long enough at 35s.
        assert_eq!(e.next_deadline(s(10)), Some(s(35)));
        assert_eq!(e.tick(s(35)).len(), 1);
        assert_eq!(e.next_deadline(s(35)), Some(s(70)));
        let resolved = e.tick(s(70));
        assert_eq!(resolved[0].status, Resolved);
        assert_eq!(e.next_deadline(s(70)), None, "nothing left that time can change");
        // A program removed by a reload: its alerts resolve.
        let gone = e.forget("web");
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].alert.as_str(), gone[0].status), ("sick", Resolved));
        assert_eq!(e.firing().count(), 0);
    }

    #[test]
    fn a_reload_keeps_unchanged_rules_firing() {
        let t0 = Instant::now();
        let mut e = Evaluator::new(vec![rule("dead", "state == fatal", None, &[])]);
        e.observe("web", Observation::State(State::Fatal), t0);
        // Same rule, another one added: no second notification for the first.
        let out = e.set_rules(
            vec![rule("dead", "state == fatal", None, &[]), rule("stuck", "state == fatal", None, &[])],
            t0,
        );
        assert_eq!(out.iter().map(|n| n.alert.as_str()).collect::<Vec<_>>(), ["stuck"]);
        // A changed rule starts over.
        let out = e.set_rules(vec![rule("dead", "state == fatal", None, &["web"])], t0);
        assert_eq!(out.iter().map(|n| (n.alert.as_str(), n.status)).collect::<Vec<_>>(), [("dead", Firing)]);
    }

    #[test]
    fn without_rules_nothing_is_kept() {
        let t0 = Instant::now();
        let mut e = Evaluator::new(Vec::new());
        assert!(e.observe("web", Observation::State(State::Fatal), t0).is_empty());
        assert!(e.programs.is_empty());
        // Rules start from what they are fed then (the supervisor feeds what is current).
        assert!(e.set_rules(vec![rule("dead", "state == fatal", None, &[])], t0).is_empty());
        assert_eq!(e.observe("web", Observation::State(State::Fatal), t0).len(), 1);
        assert!(e.set_rules(Vec::new(), t0).is_empty());
        assert!(e.programs.is_empty(), "what the rules needed goes with them");
    }

    #[test]
    fn messages_say_what_was_seen() {
        let t0 = Instant::now();
        let mut e = Evaluator::new(vec![rule("fat", "memory > 1MiB", None, &[])]);
        let out = e.observe("web", Observation::Memory(Some(3 << 20)), t0);
        assert_eq!(out[0].message, "memory > 1MiB: memory 3MiB");
        let out = e.observe("web", Observation::Memory(Some(1001)), t0);
        assert_eq!(out[0].message, "no longer memory > 1MiB: memory 1001B");
    }
}
