//! What the supervisor publishes: typed events, kept in a short history and broadcast to
//! whoever follows them (the API's `/v1/events`, the Windows Event Log feed). Subscribers
//! turn them into their own form (JSON lines, Event Log entries); the supervisor only records
//! what happened, so no text is built for an event nobody reads.

use std::sync::Arc;
use std::time::SystemTime;

use steward_core::alerts::AlertStatus;
use steward_core::fsm::{Change, ExitStatus, Reason};
use steward_core::health::Health;

/// Something that happened to one program.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Wall-clock time it happened.
    pub time: SystemTime,
    pub program: Arc<str>,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A state change; `pid` is the program's process after it, if one runs.
    State { change: Change, pid: Option<u32> },
    /// The result of its health check changed; `message` says why.
    Health { from: Health, to: Health, message: String },
    /// Its memory went above or back under `max_memory`, or made it restart.
    Limit { message: String },
    /// An alert rule fired or resolved for it.
    Alert { status: AlertStatus, message: String },
    /// Its log file for `stream` could not be opened: `message` says which file and why; that
    /// run's output on the stream is read and discarded.
    LogOpenFailed { stream: Stream, message: String },
    /// A step of a rolling restart of the program: `step` is started, replaced,
    /// slot-failed, complete, paused, rolled-back or aborted.
    Rollout { step: &'static str, message: String },
    /// A step of a deploy or rollback of the program's release (`deploy/`): `step` is
    /// started, refused, deployed, failed, rolled-back or interrupted.
    Deploy { step: &'static str, version: String, message: String },
    /// Log shipping to the `[[ship]]` sink `sink`: `step` is down, up, dropped (lines lost to
    /// retention or refused for good), recovered (a cursor read from its backup) or reset (a
    /// cursor lost, or a log file gone or truncated by hand). Sink-wide steps (down, up) name
    /// the program `ship:SINK`.
    Ship { sink: String, step: &'static str, message: String },
}

/// One of a program's two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    /// As events, logs and metric labels name it.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl Event {
    /// An event that happens now.
    pub fn now(program: Arc<str>, kind: EventKind) -> Event {
        Event { time: SystemTime::now(), program, kind }
    }

    /// How the process ended, for a state change caused by its exit.
    pub fn exit(&self) -> Option<ExitStatus> {
        match &self.kind {
            EventKind::State { change, .. } => match change.reason {
                Reason::Exited { status, .. } | Reason::StoppedWith(status) => Some(status),
                _ => None,
            },
            _ => None,
        }
    }
}
