//! The deploy gate: whether the processes of a program that just switched to a new version
//! proved themselves. Every process must become ready within `ready_timeout`, then all of them
//! must stay up for `healthy_for` without exiting, restarting or being stopped. The first
//! failure decides, with a reason that names the process.
//!
//! Pure, like [`crate::rollout`]: the runtime tells it what each process is doing
//! ([`Gate::observe`], after every state or readiness change) and wakes it at
//! [`Gate::deadline`] ([`Gate::tick`]).
//!
//! A switch that rolls (a program with `instances` or `sockets`) gates each process itself on
//! the way (the roll's `ready_timeout` and `min_ready`), so the gate waits for the roll's end
//! ([`Gate::rolled`]) and then only holds for `healthy_for`. Before [`Gate::switched`] or
//! [`Gate::rolled`], while the old processes stop, nothing counts.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::fsm::State;

/// What the runtime sees of one process: its state, and whether it counts as ready (running,
/// and its health check passed if it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub state: State,
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// The old processes are being stopped, or a roll runs.
    Switching,
    /// Waiting for every process to be ready by `by`.
    Ready {
        by: Instant,
    },
    /// Every process was ready at `since`; passes at `since + healthy_for`.
    Holding {
        since: Instant,
    },
    Done(Verdict),
}

#[derive(Clone, Debug)]
pub struct Gate {
    ready_timeout: Duration,
    healthy_for: Duration,
    phase: Phase,
    /// Processes seen up (starting or running) since the switch: a later `Stopped` is a stop,
    /// not "not started yet".
    seen_up: BTreeSet<String>,
}

impl Gate {
    pub fn new(ready_timeout: Duration, healthy_for: Duration) -> Gate {
        Gate { ready_timeout, healthy_for, phase: Phase::Switching, seen_up: BTreeSet::new() }
    }

    /// The new processes were put in place and told to start (stop-then-start).
    pub fn switched(&mut self, now: Instant) {
        if self.phase == Phase::Switching {
            self.phase = Phase::Ready { by: now + self.ready_timeout };
        }
    }

    /// A roll of every process to the new version ended: `Err` with its message when it
    /// did not replace them all.
    pub fn rolled(&mut self, outcome: Result<(), String>, now: Instant) {
        if self.phase != Phase::Switching {
            return;
        }
        self.phase = match outcome {
            Ok(()) => Phase::Holding { since: now },
            Err(why) => Phase::Done(Verdict::Failed(format!("the rolling restart failed: {why}"))),
        };
    }

    /// The processes of the program as they are now, after a change.
    pub fn observe<'a>(&mut self, processes: impl IntoIterator<Item = (&'a str, Seen)>, now: Instant) {
        let mut all_ready = true;
        let mut failure = None;
        let phase = self.phase.clone();
        if matches!(phase, Phase::Switching | Phase::Done(_)) {
            return;
        }
        for (name, seen) in processes {
            if matches!(seen.state, State::Starting | State::Running) {
                self.seen_up.insert(name.to_owned());
            }
            all_ready &= seen.ready && seen.state == State::Running;
            if failure.is_some() {
                continue;
            }
            failure = match (&phase, seen.state) {
                (_, State::Backoff | State::Exited | State::Fatal) => Some(match phase {
                    Phase::Holding { since } => format!(
                        "{name} went down ({}) {} after it was ready, before {} passed",
                        seen.state,
                        secs(now.saturating_duration_since(since)),
                        secs(self.healthy_for)
                    ),
                    _ => format!("{name} went down ({}) before it was ready", seen.state),
                }),
                (_, State::Stopping | State::Stopped) if self.seen_up.contains(name) => {
                    Some(format!("{name} was stopped before the new version proved itself"))
                }
                (Phase::Holding { .. }, State::Starting) => {
                    Some(format!("{name} stopped being ready before {} passed", secs(self.healthy_for)))
                }
                _ => None,
            };
        }
        if let Some(why) = failure {
            self.phase = Phase::Done(Verdict::Failed(why));
            return;
        }
        match phase {
            Phase::Ready { .. } if all_ready => self.phase = Phase::Holding { since: now },
            Phase::Holding { .. } if !all_ready => {
                self.phase = Phase::Done(Verdict::Failed(format!(
                    "a process stopped being ready before {} passed",
                    secs(self.healthy_for)
                )))
            }
            _ => {}
        }
        self.tick(now);
    }

    /// Time passed: the ready wait may have run out, or the hold passed.
    pub fn tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Ready { by } if now >= by => {
                self.phase = Phase::Done(Verdict::Failed(format!(
                    "not every process was ready within {}",
                    secs(self.ready_timeout)
                )))
            }
            Phase::Holding { since } if now >= since + self.healthy_for => {
                self.phase = Phase::Done(Verdict::Passed)
            }
            _ => {}
        }
    }

    /// When [`Gate::tick`] is due next, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ready { by } => Some(by),
            Phase::Holding { since } => Some(since + self.healthy_for),
            _ => None,
        }
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.phase {
            Phase::Done(v) => Some(v),
            _ => None,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
