//! What a steward service writes to the Windows Event Log, decided without calling Windows:
//! which supervisor events become entries, with which severity, event id and text. Pure, so it
//! is compiled and unit-tested on every OS. `steward_service::log::EventLog` writes them;
//! the library registers the source at install (`steward_service::manage`).
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

use steward_core::fsm::State;

use crate::protocol::ExitInfo;
use crate::supervise::{Event, EventKind};

pub use steward_service::log::{Entry, Severity};

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

fn entry(severity: Severity, id: u32, text: String) -> Entry {
    Entry { severity, id, text }
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
            entry(Severity::Information, id::PROGRAM_RUNNING, format!("{p} is running{pid} {on}"))
        }
        State::Backoff => {
            entry(Severity::Error, id::PROGRAM_CRASHED, format!("{p} crashed: {} {on}", change.reason))
        }
        State::Starting if change.from == State::Backoff => {
            entry(Severity::Warning, id::PROGRAM_RESTARTING, format!("{p} is restarting {on}"))
        }
        State::Fatal => entry(Severity::Error, id::PROGRAM_FATAL, format!("{p} {} {on}", change.reason)),
        State::Exited => {
            let clean = exit.is_some_and(|e| e.code == Some(0));
            let severity = if clean { Severity::Information } else { Severity::Error };
            let how = exit.map(|e| format!(" with {e}")).unwrap_or_default();
            entry(
                severity,
                id::PROGRAM_EXITED,
                format!("{p} exited{how} and is not restarted (restart policy) {on}"),
            )
        }
        State::Stopped if matches!(change.from, State::Stopping | State::Backoff) => {
            let how = exit.map(|e| format!(" ({e})")).unwrap_or_default();
            entry(Severity::Information, id::PROGRAM_STOPPED, format!("{p} stopped{how} {on}"))
        }
        _ => return None,
    };
    Some(entry)
}

/// The service is starting with `config`.
pub fn service_starting(service: &str, config: &str, programs: usize) -> Entry {
    entry(
        Severity::Information,
        id::SERVICE_STARTING,
        format!("service {service} is starting {programs} programs from {config}"),
    )
}

/// Startup has settled; `summary` is the supervisor's one-line status.
pub fn service_running(service: &str, summary: &str) -> Entry {
    entry(Severity::Information, id::SERVICE_RUNNING, format!("service {service} is running: {summary}"))
}

/// The service stopped after an orderly shutdown.
pub fn service_stopped(service: &str) -> Entry {
    entry(
        Severity::Information,
        id::SERVICE_STOPPED,
        format!("service {service} stopped; all its programs are down"),
    )
}

/// The service could not run, or ended with an error.
pub fn service_failed(service: &str, error: &str) -> Entry {
    entry(Severity::Error, id::SERVICE_FAILED, format!("service {service} failed: {error}"))
}

/// A reload (the SCM's ParamChange control) and how it went.
pub fn reload(service: &str, outcome: Result<String, String>) -> Entry {
    match outcome {
        Ok(what) => entry(Severity::Information, id::RELOAD, format!("service {service} reloaded: {what}")),
        Err(why) => entry(Severity::Error, id::RELOAD, format!("service {service} did not reload: {why}")),
    }
}

/// The event stream ran ahead of the Event Log writer.
pub fn events_lost(service: &str, count: u64) -> Entry {
    entry(
        Severity::Warning,
        id::EVENTS_LOST,
        format!("{count} supervisor events were not written to the Event Log (service {service}); `steward events` shows the recent ones"),
    )
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
        program_entry("svc", &state(from, to, reason, pid)).map(|e| (e.severity, e.id, e.text))
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
        assert_eq!(service_running("api", "2 running").text, "service api is running: 2 running");
        assert_eq!(service_failed("api", "boom").severity, Severity::Error);
        assert_eq!(service_stopped("api").id, id::SERVICE_STOPPED);
        assert_eq!(reload("api", Err("invalid".into())).severity, Severity::Error);
        assert_eq!(events_lost("api", 3).severity, Severity::Warning);
    }
}
