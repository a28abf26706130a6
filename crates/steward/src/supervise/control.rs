//! The supervisor's control handle: how the API (and through it every CLI verb) asks the
//! supervisor loop for something. Requests go over one channel and are answered on a
//! oneshot, so the loop stays the only owner of the supervisor's state.
//!
//! Waiting for a target state ("start returns once the program is running") happens in the
//! caller, on the programs' status cells (`status_cell`), never inside the loop.

use std::time::Duration;

use steward_core::fsm::State;
use tokio::sync::{broadcast, mpsc, oneshot};

use steward_core::reload::Diff;

use super::event::Event;
use super::program::Status;
use super::snapshot::Snapshot;
use super::status_cell::StatusWatch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        }
    }
}

/// One program an action was sent to, with what the caller needs to wait for the result.
pub struct Target {
    pub name: String,
    pub status: StatusWatch,
    /// The pid before the action (a restart is done when a *new* process runs).
    pub pid_before: Option<u32>,
    /// How long a stop may take, so waits can allow for it.
    pub stop_timeout: Duration,
}

/// What an action was sent to: processes to wait on, and rolling restarts (a restart of a
/// program with `instances` or `sockets` that runs), each ending with a report.
pub struct Acted {
    pub targets: Vec<Target>,
    pub rolls: Vec<oneshot::Receiver<super::RollReport>>,
}

/// Why a request could not be carried out: becomes a 4xx reply.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no program named {0:?}; `steward status` lists them")]
    UnknownProgram(String),
    #[error("name the programs, or pass --all")]
    NothingNamed,
    #[error("a reload is in progress; try again when it is done")]
    ReloadInProgress,
    #[error("steward is shutting down")]
    ShuttingDown,
    #[error("the config is invalid; nothing was changed")]
    InvalidConfig(String),
    /// A request that cannot be carried out as asked (scaling a program without `instances`).
    #[error("{0}")]
    BadRequest(String),
    /// A request that clashes with one in progress (a roll).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Other(String),
}

/// The tail of a program's log and, when following, a live feed of what gets written next.
/// Where the tail ends and the feed starts is fixed under the log file's lock, so no line
/// falls between them or comes twice. The tail holds at most
/// [`crate::logs::tail::REPLY_LIMIT`] bytes.
pub struct LogAccess {
    pub tail: Vec<u8>,
    /// Whole lines as they are written, across rotations: one feed per process (several
    /// for a program with `instances`), empty unless following.
    pub feeds: Vec<Feed>,
}

/// One process's live log lines.
pub struct Feed {
    /// `[web:2] `, put before each line when several processes' logs are merged.
    pub prefix: Option<String>,
    pub rx: broadcast::Receiver<bytes::Bytes>,
}

/// `text` with `prefix` before each of its lines.
pub fn prefix_lines(prefix: &str, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + prefix.len() * 8);
    for line in text.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
    }
    out
}

pub(crate) enum Request {
    Snapshot(oneshot::Sender<Snapshot>),
    Action {
        verb: Verb,
        names: Vec<String>,
        all: bool,
        reply: oneshot::Sender<Result<Acted, ControlError>>,
    },
    Reload(oneshot::Sender<Result<Diff, ControlError>>),
    Scale {
        name: String,
        to: super::instances::ScaleTo,
        reply: oneshot::Sender<Result<super::instances::Scaled, ControlError>>,
    },
    Shutdown(oneshot::Sender<()>),
    Events(oneshot::Sender<(Vec<Event>, broadcast::Receiver<Event>)>),
    /// Switch every process of a program with a `[release]` to another installed version;
    /// answered at once with where the gate's verdict will come.
    Switch {
        program: String,
        to: super::Release,
        reply: oneshot::Sender<Result<oneshot::Receiver<super::Switched>, ControlError>>,
    },
    ReleaseInfo {
        program: String,
        reply: oneshot::Sender<Result<super::ReleaseInfo, ControlError>>,
    },
    /// A step of a deploy, published as an event of the program.
    PublishShip {
        program: String,
        sink: String,
        step: &'static str,
        message: String,
    },
    PublishDeploy {
        program: String,
        step: &'static str,
        version: String,
        message: String,
    },
    /// One reader per process `name` means (each instance of a program with `instances`).
    Logs {
        name: String,
        stderr: bool,
        reply: oneshot::Sender<Result<Vec<(String, super::program::LogReader)>, ControlError>>,
    },
}

/// A cheap, clonable handle on a running supervisor.
#[derive(Clone)]
pub struct Control {
    tx: mpsc::Sender<Request>,
}

/// The supervisor's end of the control channel.
pub struct ControlReceiver(pub(crate) mpsc::Receiver<Request>);

/// A new control channel: give the [`Control`] to the API, the receiver to
/// [`super::run`].
pub fn channel() -> (Control, ControlReceiver) {
    let (tx, rx) = mpsc::channel(64);
    (Control { tx }, ControlReceiver(rx))
}

impl Control {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| ControlError::ShuttingDown)?;
        rx.await.map_err(|_| ControlError::ShuttingDown)
    }

    /// Every program's status, and what `/metrics` reports about steward itself.
    pub async fn snapshot(&self) -> Result<Snapshot, ControlError> {
        self.ask(Request::Snapshot).await
    }

    /// Send `verb` to the programs; returns at once with what to wait on.
    pub async fn action(&self, verb: Verb, names: Vec<String>, all: bool) -> Result<Acted, ControlError> {
        self.ask(|reply| Request::Action { verb, names, all, reply }).await?
    }

    /// Re-read the config file and apply the difference.
    pub async fn reload(&self) -> Result<Diff, ControlError> {
        self.ask(Request::Reload).await?
    }

    /// Start or stop instances of `name` until it has what `to` says; only the difference
    /// changes. Returns at once with what to wait on.
    pub async fn scale(
        &self,
        name: String,
        to: super::instances::ScaleTo,
    ) -> Result<super::instances::Scaled, ControlError> {
        self.ask(|reply| Request::Scale { name, to, reply }).await?
    }

    /// Switch `program` (every instance) to the installed release `to`. Returns once the
    /// switch began, with a receiver of its verdict (ready in time, then up for
    /// `healthy_for`).
    pub async fn switch(
        &self,
        program: String,
        to: super::Release,
    ) -> Result<oneshot::Receiver<super::Switched>, ControlError> {
        self.ask(|reply| Request::Switch { program, to, reply }).await?
    }

    /// What a deploy of `program` needs to know: its `[release]`, the state dir, the version
    /// in use.
    pub async fn release_info(&self, program: String) -> Result<super::ReleaseInfo, ControlError> {
        self.ask(|reply| Request::ReleaseInfo { program, reply }).await?
    }

    /// Publish a step of log shipping as an event of `program` (see [`super::EventKind::Ship`]).
    pub async fn publish_ship(&self, program: &str, sink: &str, step: &'static str, message: String) {
        let request =
            Request::PublishShip { program: program.to_owned(), sink: sink.to_owned(), step, message };
        let _ = self.tx.send(request).await;
    }

    /// Publish a deploy step as an event of `program`.
    pub async fn publish_deploy(&self, program: &str, step: &'static str, version: String, message: String) {
        let request = Request::PublishDeploy { program: program.to_owned(), step, version, message };
        let _ = self.tx.send(request).await;
    }

    pub async fn shutdown(&self) -> Result<(), ControlError> {
        self.ask(Request::Shutdown).await
    }

    /// Returns once the supervisor is gone: every program stopped and its task ended.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Recent events and a subscription to the next ones, with nothing lost in between.
    pub async fn events(&self) -> Result<(Vec<Event>, broadcast::Receiver<Event>), ControlError> {
        self.ask(Request::Events).await
    }

    pub async fn logs(
        &self,
        name: String,
        stderr: bool,
        lines: usize,
        follow: bool,
    ) -> Result<LogAccess, ControlError> {
        let readers = self.ask(|reply| Request::Logs { name: name.clone(), stderr, reply }).await??;
        // The logs of several instances: each one's last `lines` lines in instance order,
        // then their live lines as they come, each line marked with its process.
        let merged = readers.len() > 1 || readers.iter().any(|(unit, _)| *unit != name);
        let mut out = LogAccess { tail: Vec::new(), feeds: Vec::new() };
        for (unit, reader) in readers {
            let access = reader
                .access(lines, follow)
                .await
                .map_err(|e| ControlError::Other(format!("cannot read the log of {unit}: {e}")))?;
            let prefix = merged.then(|| format!("[{unit}] "));
            match &prefix {
                Some(p) => out.tail.extend(prefix_lines(p, &access.tail)),
                None => out.tail.extend(access.tail),
            }
            out.feeds.extend(access.feeds.into_iter().map(|f| Feed { prefix: prefix.clone(), rx: f.rx }));
        }
        Ok(out)
    }
}

/// Wait until `target` reaches what `verb` asked for. `Ok` with the final status, or `Err`
/// with the status it ended in (a failure state, or whatever it was in at the deadline).
pub async fn wait_for(
    verb: Verb,
    target: &mut Target,
    deadline: Duration,
) -> Result<Status, (Status, String)> {
    let pid_before = target.pid_before;
    // Decides on a status: Some(Ok) done, Some(Err) failed, None keep waiting. `changed`
    // says whether the program has moved since the request (a Stopped seen before the
    // program task even got the Start is not a failure).
    let judge = |s: &Status, changed: bool| -> Option<Result<(), String>> {
        match verb {
            Verb::Start | Verb::Restart => match s.state {
                State::Running if verb == Verb::Start || s.pid != pid_before => Some(Ok(())),
                // Before the program has moved, these are where it was when asked.
                State::Backoff | State::Fatal | State::Exited if changed => Some(Err(failure(s))),
                State::Stopped if changed => Some(Err("it was stopped again".into())),
                _ => None,
            },
            Verb::Stop => s.state.is_down().then_some(Ok(())),
        }
    };
    let sleep = tokio::time::sleep(deadline);
    tokio::pin!(sleep);
    // The receiver was marked unchanged when the request was taken: it may have moved since.
    let mut changed = target.status.has_changed().unwrap_or(true);
    loop {
        let status = target.status.get_and_update();
        if let Some(verdict) = judge(&status, changed) {
            return verdict.map(|()| status.clone()).map_err(|e| (status, e));
        }
        tokio::select! {
            r = target.status.changed() => {
                if r.is_err() {
                    let s = target.status.get();
                    return Err((s, "the program was removed by a reload".into()));
                }
                changed = true;
            }
            () = &mut sleep => {
                let s = target.status.get();
                let msg = format!("still {} after {}", s.state, humantime::format_duration(deadline));
                return Err((s, msg));
            }
        }
    }
}

fn failure(s: &Status) -> String {
    let mut msg = format!("it is {}", s.state);
    if let Some(e) = &s.last_error {
        msg.push_str(&format!(": could not start: {e}"));
    } else if let Some(exit) = s.last_exit {
        msg.push_str(&format!(": exited with {exit}"));
    }
    msg
}
