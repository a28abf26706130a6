//! What a steward service writes to the Windows Event Log, decided without calling Windows:
//! which supervisor events become entries, with which severity, event id and text. Pure, so it
//! is compiled and unit-tested on every OS; `eventlog/windows.rs` writes the
//! entries (`ReportEventW`) and registers the source.
//!
//! The entries come from the supervisor's typed event stream (the one `steward events`
//! shows), so they are exactly the state changes, not a re-reading of log lines:
//!
//! | change | severity | id | example |
//! |---|---|---|---|
//! | to `running` | information | 100 | `web is running (pid 4711)` |
//! | to `backoff` | error | 101 | `web crashed: exited with exit code 3, restarting in 1s` |
//! | `backoff` to `starting` | warning | 102 | `web is restarting` |
//! | to `fatal` | error | 103 | `web gave up: 10 restarts within 60s; ...` |
//! | to `exited` | information (exit code 0) or error | 104 | `web exited with exit code 0 and is not restarted (restart policy)` |
//! | to `stopped` | information | 105 | `web stopped (exit code 1)` |
//!
//! Every text ends with the service's name, so side-by-side services sharing the source
//! `steward` can be told apart. The service's own start, stop and failure use ids 1 to 4.

#[cfg(windows)]
pub mod windows;

use steward_core::fsm::State;

use crate::protocol::ExitInfo;
use crate::supervise::{Event, EventKind};

/// How bad an entry is: the Event Log's event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Information,
    Warning,
    Error,
}

impl Severity {
    /// The `wType` of `ReportEventW` (`EVENTLOG_*_TYPE`).
    pub fn event_type(self) -> u16 {
        match self {
            Severity::Error => EVENTLOG_ERROR_TYPE,
            Severity::Warning => EVENTLOG_WARNING_TYPE,
            Severity::Information => EVENTLOG_INFORMATION_TYPE,
        }
    }
}

// From the Windows SDK (winnt.h), repeated so this file compiles everywhere; checked against
// windows-sys in `eventlog/windows.rs`.
pub(crate) const EVENTLOG_ERROR_TYPE: u16 = 0x0001;
pub(crate) const EVENTLOG_WARNING_TYPE: u16 = 0x0002;
pub(crate) const EVENTLOG_INFORMATION_TYPE: u16 = 0x0004;

/// Event ids. The message file the source is registered with shows any id as its text.
pub mod id {
    pub const SERVICE_STARTING: u32 = 1;
    pub const SERVICE_RUNNING: u32 = 2;
    pub const SERVICE_STOPPED: u32 = 3;
    pub const SERVICE_FAILED: u32 = 4;
    pub const RELOAD: u32 = 5;
    pub const PROGRAM_RUNNING: u32 = 100;
    pub const PROGRAM_CRASHED: u32 = 101;
    pub const PROGRAM_RESTARTING: u32 = 102;
    pub const PROGRAM_FATAL: u32 = 103;
    pub const PROGRAM_EXITED: u32 = 104;
    pub const PROGRAM_STOPPED: u32 = 105;
    pub const EVENTS_LOST: u32 = 199;
}

/// One Event Log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub severity: Severity,
    pub id: u32,
    pub message: String,
}

impl Entry {
    fn new(severity: Severity, id: u32, message: String) -> Entry {
        Entry { severity, id, message }
    }
}

/// The entry for a supervisor event of service `service`, if it gets one (see the module doc).
pub fn program_entry(service: &str, e: &Event) -> Option<Entry> {
    let EventKind::State { change, pid } = &e.kind else { return None };
    let p = &e.program;
    let on = format!("(service {service})");
    // The exit as the API shows it ("code 3", "signal 9").
    let exit = e.exit().map(ExitInfo::from);
    let entry = match change.to {
        State::Running => {
            let pid = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            Entry::new(Severity::Information, id::PROGRAM_RUNNING, format!("{p} is running{pid} {on}"))
        }
        State::Backoff => {
            Entry::new(Severity::Error, id::PROGRAM_CRASHED, format!("{p} crashed: {} {on}", change.reason))
        }
        State::Starting if change.from == State::Backoff => {
            Entry::new(Severity::Warning, id::PROGRAM_RESTARTING, format!("{p} is restarting {on}"))
        }
        State::Fatal => Entry::new(Severity::Error, id::PROGRAM_FATAL, format!("{p} {} {on}", change.reason)),
        State::Exited => {
            let clean = exit.is_some_and(|e| e.code == Some(0));
            let severity = if clean { Severity::Information } else { Severity::Error };
            let how = exit.map(|e| format!(" with {e}")).unwrap_or_default();
            Entry::new(
                severity,
                id::PROGRAM_EXITED,
                format!("{p} exited{how} and is not restarted (restart policy) {on}"),
            )
        }
        State::Stopped if matches!(change.from, State::Stopping | State::Backoff) => {
            let how = exit.map(|e| format!(" ({e})")).unwrap_or_default();
            Entry::new(Severity::Information, id::PROGRAM_STOPPED, format!("{p} stopped{how} {on}"))
        }
        _ => return None,
    };
    Some(entry)
}

/// The service is starting with `config`.
pub fn service_starting(service: &str, config: &str, programs: usize) -> Entry {
    Entry::new(
        Severity::Information,
        id::SERVICE_STARTING,
        format!("service {service} is starting {programs} programs from {config}"),
    )
}

/// Startup has settled; `summary` is the supervisor's one-line status.
pub fn service_running(service: &str, summary: &str) -> Entry {
    Entry::new(Severity::Information, id::SERVICE_RUNNING, format!("service {service} is running: {summary}"))
}

/// The service stopped after an orderly shutdown.
pub fn service_stopped(service: &str) -> Entry {
    Entry::new(
        Severity::Information,
        id::SERVICE_STOPPED,
        format!("service {service} stopped; all its programs are down"),
    )
}

/// The service could not run, or ended with an error.
pub fn service_failed(service: &str, error: &str) -> Entry {
    Entry::new(Severity::Error, id::SERVICE_FAILED, format!("service {service} failed: {error}"))
}

/// A reload (the SCM's ParamChange control) and how it went.
pub fn reload(service: &str, outcome: Result<String, String>) -> Entry {
    match outcome {
        Ok(what) => {
            Entry::new(Severity::Information, id::RELOAD, format!("service {service} reloaded: {what}"))
        }
        Err(why) => {
            Entry::new(Severity::Error, id::RELOAD, format!("service {service} did not reload: {why}"))
        }
    }
}

/// The event stream ran ahead of the Event Log writer.
pub fn events_lost(service: &str, count: u64) -> Entry {
    Entry::new(
        Severity::Warning,
        id::EVENTS_LOST,
        format!("{count} supervisor events were not written to the Event Log (service {service}); `steward events` shows the recent ones"),
    )
}

/// The services sharing the event source after `name` is added: kept once, sorted.
pub fn source_users_with(mut users: Vec<String>, name: &str) -> Vec<String> {
    users.retain(|u| !u.eq_ignore_ascii_case(name));
    users.push(name.to_owned());
    users.sort();
    users
}

/// The services sharing the event source after `name` is removed. Service names are not case
/// sensitive on Windows.
pub fn source_users_without(mut users: Vec<String>, name: &str) -> Vec<String> {
    users.retain(|u| !u.eq_ignore_ascii_case(name));
    users
}

/// A `REG_MULTI_SZ` value: each string NUL-terminated, then one more NUL.
pub fn multi_sz(items: &[String]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for item in items {
        out.extend(item.encode_utf16());
        out.push(0);
    }
    out.push(0);
    out
}

/// The strings of a `REG_MULTI_SZ` value (tolerating a missing final NUL).
pub fn parse_multi_sz(data: &[u16]) -> Vec<String> {
    data.split(|c| *c == 0).filter(|s| !s.is_empty()).map(String::from_utf16_lossy).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use steward_core::fsm::{Change, ExitStatus, Reason};

    fn state(from: State, to: State, reason: Reason, pid: Option<u32>) -> Event {
        let change = Change { from, to, reason };
        Event { time: SystemTime::UNIX_EPOCH, program: "web".into(), kind: EventKind::State { change, pid } }
    }

    fn entry(from: State, to: State, reason: Reason, pid: Option<u32>) -> Option<(Severity, u32, String)> {
        program_entry("svc", &state(from, to, reason, pid)).map(|e| (e.severity, e.id, e.message))
    }

    #[test]
    fn program_events_by_severity() {
        use Severity::*;
        use State::*;
        let exited = |code, restart_in| Reason::Exited { status: ExitStatus::Code(code), restart_in };
        assert_eq!(
            entry(Starting, Running, Reason::Spawned { pid: 42 }, Some(42)),
            Some((Information, 100, "web is running (pid 42) (service svc)".into()))
        );
        assert_eq!(
            entry(Running, Backoff, exited(3, Some(Duration::from_secs(1))), None),
            Some((Error, 101, "web crashed: exited with exit code 3, restarting in 1s (service svc)".into()))
        );
        assert_eq!(
            entry(Starting, Backoff, Reason::SpawnFailed { reason: "not found".into() }, None).map(|e| e.0),
            Some(Error)
        );
        assert_eq!(
            entry(Backoff, Starting, Reason::BackoffOver, None),
            Some((Warning, 102, "web is restarting (service svc)".into()))
        );
        assert_eq!(
            entry(Running, Fatal, Reason::GaveUp { restarts: 10, window: Duration::from_secs(60) }, None),
            Some((
                Error,
                103,
                "web gave up: 10 restarts within 60s; start it again by hand (service svc)".into()
            ))
        );
        assert_eq!(
            entry(Running, Exited, exited(0, None), None),
            Some((
                Information,
                104,
                "web exited with code 0 and is not restarted (restart policy) (service svc)".into()
            ))
        );
        assert_eq!(entry(Running, Exited, exited(2, None), None).map(|e| e.0), Some(Error));
        assert_eq!(
            entry(Stopping, Stopped, Reason::StoppedWith(ExitStatus::Code(1)), None),
            Some((Information, 105, "web stopped (code 1) (service svc)".into()))
        );
    }

    #[test]
    fn routine_steps_are_not_written() {
        use steward_core::health::Health;
        assert_eq!(entry(State::Stopped, State::Starting, Reason::StartRequested, None), None);
        assert_eq!(entry(State::Running, State::Stopping, Reason::StopRequested, None), None);
        let kind =
            EventKind::Health { from: Health::Healthy, to: Health::Unhealthy, message: "unhealthy".into() };
        let health = Event { time: SystemTime::UNIX_EPOCH, program: "web".into(), kind };
        assert_eq!(program_entry("svc", &health), None);
    }

    #[test]
    fn service_entries() {
        assert_eq!(service_running("api", "2 running").message, "service api is running: 2 running");
        assert_eq!(service_failed("api", "boom").severity, Severity::Error);
        assert_eq!(service_stopped("api").id, id::SERVICE_STOPPED);
        assert_eq!(reload("api", Err("invalid".into())).severity, Severity::Error);
        assert_eq!(events_lost("api", 3).severity, Severity::Warning);
        assert_eq!(
            [Severity::Error, Severity::Warning, Severity::Information].map(Severity::event_type),
            [1, 2, 4]
        );
    }

    #[test]
    fn the_source_is_shared_and_counted() {
        let users = source_users_with(vec![], "steward");
        let users = source_users_with(users, "api");
        let users = source_users_with(users, "API");
        assert_eq!(users, ["API", "steward"]);
        assert_eq!(source_users_without(users.clone(), "api"), ["steward"]);
        assert!(source_users_without(vec!["steward".into()], "steward").is_empty());
        let raw = multi_sz(&users);
        assert_eq!(raw.iter().filter(|c| **c == 0).count(), 3);
        assert_eq!(parse_multi_sz(&raw), users);
        assert_eq!(parse_multi_sz(&[]), Vec::<String>::new());
        assert_eq!(parse_multi_sz(&"a".encode_utf16().collect::<Vec<_>>()), ["a"]);
    }
}
