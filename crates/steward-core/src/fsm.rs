//! The state machine of one program.
//!
//! It is pure: [`Machine::handle`] takes an [`Event`] and the current time and returns a
//! [`Step`]: the [`Action`]s the runtime must carry out and the state change, if any. It never
//! spawns, sleeps or reads the clock, so every rule below is tested as a transition table.
//!
//! ```text
//!             Start                Spawned (+Ready)
//!  Stopped ─────────▶ Starting ───────────────────▶ Running
//!  Exited                │  ▲                          │
//!  Fatal                 │  │ TimerFired               │ Exited / SpawnFailed
//!                        │  │                          ▼
//!                        │  └──────────── Backoff ◀── restart wanted and budget left
//!                        │                             (else Exited, or Fatal when the
//!                        ▼ Stop                         budget is spent)
//!                    Stopping ── Exited ──▶ Stopped (or Starting again after a Restart)
//!                        └── TimerFired ──▶ KillTree (stays Stopping until the exit)
//! ```
//!
//! Two timers never overlap (backoff and stop timeout belong to different states), so a
//! program has at most one: [`Action::ArmTimer`] replaces it and [`Action::DisarmTimer`] clears
//! it. The "stable" reset of the backoff delay needs no timer at all: it is decided at exit
//! time from how long the run lasted, which keeps an idle supervisor free of wake-ups.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{ProgramSpec, Readiness, RestartPolicy, StopSignal};
use crate::units;

/// The states of a program, as users see them in `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not running, and nothing will start it but a command (or the dependency scheduler).
    Stopped,
    /// Spawned (or about to be), not yet ready.
    Starting,
    Running,
    /// Waiting out the restart delay after an exit.
    Backoff,
    /// A stop was asked for; waiting for the process to exit.
    Stopping,
    /// Exited and not restarting (its restart policy said no).
    Exited,
    /// The retry budget is spent; stays down until someone starts it.
    Fatal,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Stopped,
        State::Starting,
        State::Running,
        State::Backoff,
        State::Stopping,
        State::Exited,
        State::Fatal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Fatal => "fatal",
        }
    }

    /// No process is running and none will be started without a command.
    pub fn is_down(self) -> bool {
        matches!(self, State::Stopped | State::Exited | State::Fatal)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a process ended: an exit code, or the signal that killed it (Unix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What can happen to a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start it (a user command, autostart, or the dependency scheduler).
    Start,
    /// Stop it and keep it stopped.
    Stop,
    /// Stop it if it runs, then start it again.
    Restart,
    /// Restart it because a check outside the machine says so (a failed health check, a
    /// memory limit): like `Restart`, but counted as an automatic restart, with the cause in
    /// the reason. Ignored unless a process runs.
    AutoRestart { cause: String },
    /// The process was created.
    Spawned { pid: u32 },
    /// The process could not be created (missing file, no permission...).
    SpawnFailed { reason: String },
    /// The readiness gate passed (only used when [`Policy::wait_ready`] is set).
    Ready,
    /// The process exited and was reaped.
    Exited(ExitStatus),
    /// The armed timer is due.
    TimerFired,
}

/// What the runtime must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the process; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Ask the process tree to stop.
    Signal(StopSignal),
    /// Kill the whole process tree. Also sent after every exit, to sweep up children the
    /// program left behind in its group (like systemd's control-group cleanup).
    KillTree,
    /// Fire `TimerFired` at this instant (replaces any armed timer).
    ArmTimer(Instant),
    DisarmTimer,
}

/// Why the state changed: the words that go into the log and the event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    StartRequested,
    StopRequested,
    RestartRequested,
    /// An automatic restart for `cause` ("unhealthy", "memory limit").
    AutoRestart {
        cause: String,
    },
    Spawned {
        pid: u32,
    },
    Ready,
    SpawnFailed {
        reason: String,
    },
    /// Exited on its own; `restart_in` is the backoff delay when a restart follows.
    Exited {
        status: ExitStatus,
        restart_in: Option<Duration>,
    },
    /// Exited after a stop request.
    StoppedWith(ExitStatus),
    BackoffOver,
    /// The retry budget is spent.
    GaveUp {
        restarts: u32,
        window: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::StartRequested => f.write_str("start requested"),
            Reason::StopRequested => f.write_str("stop requested"),
            Reason::RestartRequested => f.write_str("restart requested"),
            Reason::AutoRestart { cause } => write!(f, "restarting: {cause}"),
            Reason::Spawned { pid } => write!(f, "spawned pid {pid}"),
            Reason::Ready => f.write_str("ready"),
            Reason::SpawnFailed { reason } => write!(f, "could not start: {reason}"),
            Reason::Exited { status, restart_in: Some(d) } => {
                write!(f, "exited with {status}, restarting in {d:?}")
            }
            Reason::Exited { status, restart_in: None } => write!(f, "exited with {status}"),
            Reason::StoppedWith(status) => write!(f, "stopped ({status})"),
            Reason::BackoffOver => f.write_str("restarting"),
            Reason::GaveUp { restarts, window } => {
                write!(f, "gave up: {restarts} restarts within {window:?}; start it again by hand")
            }
        }
    }
}

/// A state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// The result of one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub actions: Vec<Action>,
    pub change: Option<Change>,
}

/// The part of a program's definition the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub restart_delay: Duration,
    pub restart_max_delay: Duration,
    pub stable_after: Duration,
    pub max_restarts: u32,
    pub restart_window: Duration,
    pub stop_signal: StopSignal,
    pub stop_timeout: Duration,
    /// Stay Starting after the spawn until a `Ready` event (readiness gates).
    pub wait_ready: bool,
}

impl Policy {
    pub fn from_spec(spec: &ProgramSpec) -> Self {
        Policy {
            restart: spec.restart,
            success_exit_codes: spec.success_exit_codes.clone(),
            restart_delay: spec.restart_delay,
            restart_max_delay: spec.restart_max_delay,
            stable_after: spec.stable_after,
            max_restarts: spec.max_restarts,
            restart_window: spec.restart_window,
            stop_signal: spec.stop_signal,
            stop_timeout: spec.stop_timeout,
            wait_ready: spec.ready == Readiness::Notify,
        }
    }

    /// The most restarts per second this policy lets a program keep up for good, whatever
    /// its runs do: `None` when nothing limits it, `Some(0.0)` when it never restarts.
    ///
    /// Two rules limit it, and the lower limit wins:
    /// - the retry budget: one restart more than `max_restarts` within `restart_window` is
    ///   Fatal, so a program that keeps going restarts at most `max_restarts` per
    ///   `restart_window`. A zero window never fills: no limit.
    /// - the backoff: restarts wait `restart_delay`, doubling up to `restart_max_delay`, and
    ///   a run that lasted `stable_after` starts the doubling over. The fastest a program can
    ///   go is to repeat one stable run followed by some quick failures (waits of `d`, `2d`,
    ///   …), or never to run stably (waits of `restart_max_delay`). A zero `restart_delay`
    ///   never grows: no limit.
    pub fn sustained_restart_rate(&self) -> Option<f64> {
        if self.restart == RestartPolicy::Never || self.max_restarts == 0 {
            return Some(0.0);
        }
        let budget = (!self.restart_window.is_zero())
            .then(|| f64::from(self.max_restarts) / self.restart_window.as_secs_f64());
        let backoff = (!self.restart_delay.is_zero()).then(|| {
            let stable = self.stable_after.as_secs_f64();
            let (mut wait, mut waited, mut best) = (self.restart_delay, 0.0, 0.0_f64);
            // k quick failures after a stable run; once the wait stops growing, more of them
            // only bring the rate closer to 1 / that wait, which is counted last.
            for k in 1..=200u32 {
                waited += wait.as_secs_f64();
                best = best.max(f64::from(k) / (stable + waited));
                let next = self.next_delay(wait);
                if next == wait {
                    break;
                }
                wait = next;
            }
            best.max(1.0 / wait.as_secs_f64())
        });
        match (budget, backoff) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (one, other) => one.or(other),
        }
    }

    /// The wait before the restart after one that waited `delay` (without a stable run
    /// between them).
    fn next_delay(&self, delay: Duration) -> Duration {
        delay.saturating_mul(2).min(self.restart_max_delay).max(self.restart_delay)
    }

    fn is_success(&self, status: ExitStatus) -> bool {
        matches!(status, ExitStatus::Code(c) if self.success_exit_codes.contains(&c))
    }

    fn wants_restart(&self, failed: bool) -> bool {
        match self.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Never => false,
        }
    }
}

/// One program's state and the bookkeeping behind its restart decisions.
#[derive(Clone, Debug)]
pub struct Machine {
    policy: Policy,
    state: State,
    /// Delay the next restart will wait (doubles after each use, up to the max).
    next_delay: Duration,
    /// When recent restarts happened, oldest first, for the retry budget.
    restarts_in_window: VecDeque<Instant>,
    /// A Restart arrived while stopping: start again after the exit.
    start_after_stop: bool,
    pid: Option<u32>,
    started_at: Option<Instant>,
    restarts_total: u64,
    last_exit: Option<ExitStatus>,
    last_error: Option<String>,
}

impl Machine {
    pub fn new(policy: Policy) -> Self {
        Machine {
            next_delay: policy.restart_delay,
            policy,
            state: State::Stopped,
            restarts_in_window: VecDeque::new(),
            start_after_stop: false,
            pid: None,
            started_at: None,
            restarts_total: 0,
            last_exit: None,
            last_error: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// The running process, while there is one.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
    /// When the current process was spawned.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }
    /// Automatic restarts since the supervisor started (manual starts do not count).
    pub fn restarts_total(&self) -> u64 {
        self.restarts_total
    }
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }
    /// The last spawn error, until the next successful spawn.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Replace the policy (used when a reload changes only settings that need no restart).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Feed one event. Events that make no sense in the current state (a stale timer, a
    /// second Stop) are ignored: they return an empty step.
    pub fn handle(&mut self, event: Event, now: Instant) -> Step {
        use State::*;
        match (self.state, event) {
            // --- commands ------------------------------------------------------------
            (Stopped | Exited | Fatal, Event::Start | Event::Restart) => {
                // A start by hand forgives the past: fresh budget, fresh backoff.
                self.restarts_in_window.clear();
                self.next_delay = self.policy.restart_delay;
                self.spawn(Reason::StartRequested)
            }
            (Backoff, Event::Start | Event::Restart) => {
                let mut step = self.spawn(Reason::StartRequested);
                step.actions.insert(0, Action::DisarmTimer);
                step
            }
            (Starting | Running, Event::Stop) => self.begin_stop(now, Reason::StopRequested),
            (Starting | Running, Event::Restart) => {
                self.start_after_stop = true;
                self.begin_stop(now, Reason::RestartRequested)
            }
            (Starting | Running, Event::AutoRestart { cause }) => {
                self.restarts_total += 1;
                self.start_after_stop = true;
                self.begin_stop(now, Reason::AutoRestart { cause })
            }
            (Stopping, Event::Restart | Event::Start) => {
                self.start_after_stop = true;
                Step::default()
            }
            (Stopping, Event::Stop) => {
                self.start_after_stop = false;
                Step::default()
            }
            (Backoff, Event::Stop) => {
                Self::step(vec![Action::DisarmTimer], self.go(Stopped, Reason::StopRequested))
            }
            // Fatal and Exited are already down; a Stop just makes that explicit.
            (Exited | Fatal, Event::Stop) => Self::step(vec![], self.go(Stopped, Reason::StopRequested)),

            // --- process life ----------------------------------------------------------
            (Starting, Event::Spawned { pid }) => {
                self.pid = Some(pid);
                self.started_at = Some(now);
                self.last_error = None;
                if self.policy.wait_ready {
                    Step::default()
                } else {
                    Self::step(vec![], self.go(Running, Reason::Spawned { pid }))
                }
            }
            (Starting, Event::Ready) => Self::step(vec![], self.go(Running, Reason::Ready)),
            (Starting, Event::SpawnFailed { reason }) => {
                self.last_error = Some(reason.clone());
                self.after_run(now, None, Reason::SpawnFailed { reason })
            }
            (Starting | Running, Event::Exited(status)) => {
                self.last_exit = Some(status);
                let mut step = self.after_run(now, Some(status), Reason::Exited { status, restart_in: None });
                step.actions.insert(0, Action::KillTree);
                step
            }
            (Stopping, Event::Exited(status)) => {
                self.last_exit = Some(status);
                self.pid = None;
                self.started_at = None;
                let mut actions = vec![Action::DisarmTimer, Action::KillTree];
                if std::mem::take(&mut self.start_after_stop) {
                    self.restarts_in_window.clear();
                    self.next_delay = self.policy.restart_delay;
                    let step = self.spawn(Reason::RestartRequested);
                    actions.extend(step.actions);
                    return Self::step(actions, step.change);
                }
                Self::step(actions, self.go(Stopped, Reason::StoppedWith(status)))
            }
            (Stopping, Event::TimerFired) => Self::step(vec![Action::KillTree], None),
            (Backoff, Event::TimerFired) => {
                self.restarts_total += 1;
                self.spawn(Reason::BackoffOver)
            }

            // Anything else is stale or impossible in this state: ignore it.
            _ => Step::default(),
        }
    }

    fn step(actions: Vec<Action>, change: Option<Change>) -> Step {
        Step { actions, change }
    }

    fn go(&mut self, to: State, reason: Reason) -> Option<Change> {
        let from = std::mem::replace(&mut self.state, to);
        Some(Change { from, to, reason })
    }

    fn spawn(&mut self, reason: Reason) -> Step {
        Self::step(vec![Action::Spawn], self.go(State::Starting, reason))
    }

    fn begin_stop(&mut self, now: Instant, reason: Reason) -> Step {
        let mut actions = Vec::with_capacity(2);
        if self.policy.stop_signal == StopSignal::Kill {
            actions.push(Action::KillTree);
        } else {
            actions.push(Action::Signal(self.policy.stop_signal));
        }
        actions.push(Action::ArmTimer(units::later(now, self.policy.stop_timeout)));
        Self::step(actions, self.go(State::Stopping, reason))
    }

    /// A run ended on its own (`status` is None when it never got going): decide between
    /// Backoff, Exited and Fatal.
    fn after_run(&mut self, now: Instant, status: Option<ExitStatus>, reason: Reason) -> Step {
        let ran_for = self.started_at.map(|t| now.saturating_duration_since(t));
        self.pid = None;
        self.started_at = None;
        let failed = status.is_none_or(|s| !self.policy.is_success(s));
        if !self.policy.wants_restart(failed) {
            return Self::step(vec![], self.go(State::Exited, reason));
        }

        // The retry budget: count restarts inside the sliding window.
        let window = self.policy.restart_window;
        while let Some(&t) = self.restarts_in_window.front() {
            if now.saturating_duration_since(t) >= window {
                self.restarts_in_window.pop_front();
            } else {
                break;
            }
        }
        if self.restarts_in_window.len() >= self.policy.max_restarts as usize {
            let restarts = self.policy.max_restarts;
            return Self::step(vec![], self.go(State::Fatal, Reason::GaveUp { restarts, window }));
        }
        self.restarts_in_window.push_back(now);

        // A run that lasted `stable_after` earns a fresh, short delay.
        if ran_for.is_some_and(|d| d >= self.policy.stable_after) {
            self.next_delay = self.policy.restart_delay;
        }
        let delay = self.next_delay;
        self.next_delay = self.policy.next_delay(delay);
        let reason = match reason {
            Reason::Exited { status, .. } => Reason::Exited { status, restart_in: Some(delay) },
            other => other,
        };
        Self::step(vec![Action::ArmTimer(units::later(now, delay))], self.go(State::Backoff, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use State::*;

    fn policy() -> Policy {
        Policy {
            restart: RestartPolicy::OnFailure,
            success_exit_codes: vec![0],
            restart_delay: Duration::from_millis(100),
            restart_max_delay: Duration::from_millis(1000),
            stable_after: Duration::from_secs(10),
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
            stop_signal: StopSignal::Term,
            stop_timeout: Duration::from_secs(5),
            wait_ready: false,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A machine brought into `state` the way the runtime would get it there.
    fn machine_in(state: State, p: Policy, t0: Instant) -> Machine {
        let mut m = Machine::new(p);
        match state {
            Stopped => {}
            Starting => {
                m.handle(Event::Start, t0);
            }
            Running => {
                m.handle(Event::Start, t0);
                m.handle(Event::Spawned { pid: 42 }, t0);
            }
            Backoff => {
                m.handle(Event::Start, t0);
                m.handle(Event::Spawned { pid: 42 }, t0);
                m.handle(Event::Exited(ExitStatus::Code(1)), t0);
            }
            Stopping => {
                m.handle(Event::Start, t0);
                m.handle(Event::Spawned { pid: 42 }, t0);
                m.handle(Event::Stop, t0);
            }
            Exited => {
                m.handle(Event::Start, t0);
                m.handle(Event::Spawned { pid: 42 }, t0);
                m.handle(Event::Exited(ExitStatus::Code(0)), t0);
            }
            Fatal => {
                let mut p0 = m.policy.clone();
                p0.max_restarts = 0;
                m = Machine::new(p0);
                m.handle(Event::Start, t0);
                m.handle(Event::Spawned { pid: 42 }, t0);
                m.handle(Event::Exited(ExitStatus::Code(1)), t0);
                m.set_policy(policy());
            }
        }
        assert_eq!(m.state(), state, "setup for {state}");
        m
    }

    /// Which of the nine kinds of event `e` is. No wildcard: a new kind of event does not
    /// compile until it has a number here, and then the table misses its rows.
    fn kind(e: &Event) -> usize {
        match e {
            Event::Start => 0,
            Event::Stop => 1,
            Event::Restart => 2,
            Event::AutoRestart { .. } => 3,
            Event::Spawned { .. } => 4,
            Event::SpawnFailed { .. } => 5,
            Event::Ready => 6,
            Event::Exited(_) => 7,
            Event::TimerFired => 8,
        }
    }
    const KINDS: usize = 9;

    /// The whole transition table: (from, event) -> (to, actions), for the policy of
    /// [`policy`] (restart on failure, no readiness gate), at `now`, from a machine set up by
    /// [`machine_in`] at `t0`. Every (state, kind of event) pair has a row: see
    /// `the_transition_table_covers_every_state_and_event`.
    fn table(now: Instant) -> Vec<(State, Event, State, Vec<Action>)> {
        let stop_deadline = now + Duration::from_secs(5);
        let backoff_deadline = now + ms(100);
        let stop = || vec![Signal(StopSignal::Term), ArmTimer(stop_deadline)];
        let code = |c| Event::Exited(ExitStatus::Code(c));
        let auto = || Event::AutoRestart { cause: "memory limit".into() };
        let spawned = || Event::Spawned { pid: 7 };
        let failed = || Event::SpawnFailed { reason: "nope".into() };
        #[rustfmt::skip]
        let table = vec![
            // Down by hand: only a start (or a restart) does anything.
            (Stopped,  Event::Start,      Starting, vec![Spawn]),
            (Stopped,  Event::Stop,       Stopped,  vec![]),
            (Stopped,  Event::Restart,    Starting, vec![Spawn]),
            (Stopped,  auto(),            Stopped,  vec![]),
            (Stopped,  spawned(),         Stopped,  vec![]),
            (Stopped,  failed(),          Stopped,  vec![]),
            (Stopped,  Event::Ready,      Stopped,  vec![]),
            (Stopped,  code(1),           Stopped,  vec![]),
            (Stopped,  Event::TimerFired, Stopped,  vec![]),
            // Spawning: the spawn's answer, a stop, or an early exit.
            (Starting, Event::Start,      Starting, vec![]),
            (Starting, Event::Stop,       Stopping, stop()),
            (Starting, Event::Restart,    Stopping, stop()),
            (Starting, auto(),            Stopping, stop()),
            (Starting, spawned(),         Running,  vec![]),
            (Starting, failed(),          Backoff,  vec![ArmTimer(backoff_deadline)]),
            (Starting, Event::Ready,      Running,  vec![]),
            (Starting, code(1),           Backoff,  vec![KillTree, ArmTimer(backoff_deadline)]),
            (Starting, Event::TimerFired, Starting, vec![]),
            // Up: stops, restarts and exits; a second start or a stale timer change nothing.
            (Running,  Event::Start,      Running,  vec![]),
            (Running,  Event::Stop,       Stopping, stop()),
            (Running,  Event::Restart,    Stopping, stop()),
            (Running,  auto(),            Stopping, stop()),
            (Running,  spawned(),         Running,  vec![]),
            (Running,  failed(),          Running,  vec![]),
            (Running,  Event::Ready,      Running,  vec![]),
            (Running,  code(1),           Backoff,  vec![KillTree, ArmTimer(backoff_deadline)]),
            (Running,  Event::TimerFired, Running,  vec![]),
            // Waiting to restart: a command cuts the wait short, the timer ends it.
            (Backoff,  Event::Start,      Starting, vec![DisarmTimer, Spawn]),
            (Backoff,  Event::Stop,       Stopped,  vec![DisarmTimer]),
            (Backoff,  Event::Restart,    Starting, vec![DisarmTimer, Spawn]),
            (Backoff,  auto(),            Backoff,  vec![]),
            (Backoff,  spawned(),         Backoff,  vec![]),
            (Backoff,  failed(),          Backoff,  vec![]),
            (Backoff,  Event::Ready,      Backoff,  vec![]),
            (Backoff,  code(1),           Backoff,  vec![]),
            (Backoff,  Event::TimerFired, Starting, vec![Spawn]),
            // Stopping: only the exit or the stop timeout move it; starts are remembered.
            (Stopping, Event::Start,      Stopping, vec![]),
            (Stopping, Event::Stop,       Stopping, vec![]),
            (Stopping, Event::Restart,    Stopping, vec![]),
            (Stopping, auto(),            Stopping, vec![]),
            (Stopping, spawned(),         Stopping, vec![]),
            (Stopping, failed(),          Stopping, vec![]),
            (Stopping, Event::Ready,      Stopping, vec![]),
            (Stopping, code(143),         Stopped,  vec![DisarmTimer, KillTree]),
            (Stopping, Event::TimerFired, Stopping, vec![KillTree]),
            // Down on its own: a start starts it, a stop makes "down" explicit.
            (Exited,   Event::Start,      Starting, vec![Spawn]),
            (Exited,   Event::Stop,       Stopped,  vec![]),
            (Exited,   Event::Restart,    Starting, vec![Spawn]),
            (Exited,   auto(),            Exited,   vec![]),
            (Exited,   spawned(),         Exited,   vec![]),
            (Exited,   failed(),          Exited,   vec![]),
            (Exited,   Event::Ready,      Exited,   vec![]),
            (Exited,   code(1),           Exited,   vec![]),
            (Exited,   Event::TimerFired, Exited,   vec![]),
            // Gave up: the same as Exited.
            (Fatal,    Event::Start,      Starting, vec![Spawn]),
            (Fatal,    Event::Stop,       Stopped,  vec![]),
            (Fatal,    Event::Restart,    Starting, vec![Spawn]),
            (Fatal,    auto(),            Fatal,    vec![]),
            (Fatal,    spawned(),         Fatal,    vec![]),
            (Fatal,    failed(),          Fatal,    vec![]),
            (Fatal,    Event::Ready,      Fatal,    vec![]),
            (Fatal,    code(1),           Fatal,    vec![]),
            (Fatal,    Event::TimerFired, Fatal,    vec![]),
        ];
        table
    }

    #[test]
    fn transition_table() {
        let t0 = Instant::now();
        let now = t0 + ms(50);
        for (from, event, to, actions) in table(now) {
            let mut m = machine_in(from, policy(), t0);
            let step = m.handle(event.clone(), now);
            assert_eq!(m.state(), to, "{from} + {event:?}");
            assert_eq!(step.actions, actions, "{from} + {event:?}");
            match &step.change {
                Some(c) => assert_eq!((c.from, c.to), (from, to), "{from} + {event:?}"),
                None => assert_eq!(from, to, "{from} + {event:?}: a change must be reported"),
            }
        }
    }

    /// The table has exactly one row per (state, kind of event): 7 x 9.
    #[test]
    fn the_transition_table_covers_every_state_and_event() {
        let rows = table(Instant::now());
        let mut missing = Vec::new();
        for state in State::ALL {
            for k in 0..KINDS {
                match rows.iter().filter(|(s, e, ..)| *s == state && kind(e) == k).count() {
                    1 => {}
                    0 => missing.push(format!("{state} + event kind {k}")),
                    n => panic!("{n} rows for {state} + event kind {k}"),
                }
            }
        }
        assert!(missing.is_empty(), "the transition table has no row for: {missing:?}");
        assert_eq!(rows.len(), State::ALL.len() * KINDS);
    }

    /// More than one exit for the states an exit can come in: signals and successes.
    #[test]
    fn exits_by_signal_and_success_while_running() {
        let t0 = Instant::now();
        let now = t0 + ms(50);
        let mut m = machine_in(Running, policy(), t0);
        let step = m.handle(Event::Exited(ExitStatus::Signal(9)), now);
        assert_eq!((m.state(), step.actions), (Backoff, vec![KillTree, ArmTimer(now + ms(100))]));
        let mut m = machine_in(Running, policy(), t0);
        let step = m.handle(Event::Exited(ExitStatus::Code(0)), now);
        assert_eq!((m.state(), step.actions), (Exited, vec![KillTree]));
    }

    #[test]
    fn restart_policies() {
        let t0 = Instant::now();
        #[rustfmt::skip]
        let table = [
            (RestartPolicy::Always,    ExitStatus::Code(0),   Backoff),
            (RestartPolicy::Always,    ExitStatus::Code(3),   Backoff),
            (RestartPolicy::OnFailure, ExitStatus::Code(0),   Exited),
            (RestartPolicy::OnFailure, ExitStatus::Code(3),   Backoff),
            (RestartPolicy::OnFailure, ExitStatus::Signal(9), Backoff),
            (RestartPolicy::Never,     ExitStatus::Code(3),   Exited),
            (RestartPolicy::Never,     ExitStatus::Signal(9), Exited),
        ];
        for (restart, status, want) in table {
            let mut m = machine_in(Running, Policy { restart, ..policy() }, t0);
            m.handle(Event::Exited(status), t0 + ms(1));
            assert_eq!(m.state(), want, "{restart:?} {status}");
        }
        // success_exit_codes decide what "failure" means.
        let p = Policy { success_exit_codes: vec![0, 3], ..policy() };
        let mut m = machine_in(Running, p, t0);
        m.handle(Event::Exited(ExitStatus::Code(3)), t0);
        assert_eq!(m.state(), Exited);
    }

    /// Crash in a loop: delays double up to the max, then the budget runs out.
    #[test]
    fn backoff_doubles_then_budget_runs_out() {
        let t0 = Instant::now();
        let p = Policy { max_restarts: 5, ..policy() };
        let mut m = machine_in(Running, p, t0);
        let mut now = t0;
        let mut delays = vec![];
        loop {
            let step = m.handle(Event::Exited(ExitStatus::Code(1)), now);
            match m.state() {
                Backoff => {
                    let [KillTree, ArmTimer(at)] = step.actions[..] else { panic!("{step:?}") };
                    delays.push(at - now);
                    now = at;
                    assert_eq!(m.handle(Event::TimerFired, now).actions, vec![Spawn]);
                    m.handle(Event::Spawned { pid: 1 }, now);
                    now += ms(1);
                }
                Fatal => {
                    let reason = step.change.unwrap().reason;
                    assert_eq!(reason, Reason::GaveUp { restarts: 5, window: Duration::from_secs(60) });
                    break;
                }
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
        assert_eq!(m.restarts_total(), 5);
        // A manual start forgives: a fresh budget and the first delay again.
        m.handle(Event::Start, now);
        m.handle(Event::Spawned { pid: 2 }, now);
        let step = m.handle(Event::Exited(ExitStatus::Code(1)), now);
        assert_eq!(step.actions, vec![KillTree, ArmTimer(now + ms(100))]);
    }

    #[test]
    fn restarts_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let p = Policy { max_restarts: 2, restart_window: Duration::from_secs(10), ..policy() };
        let mut m = machine_in(Running, p, t0);
        let mut now = t0;
        // Crash every 6 s: never more than 2 restarts inside any 10 s window.
        for _ in 0..10 {
            m.handle(Event::Exited(ExitStatus::Code(1)), now);
            assert_eq!(m.state(), Backoff);
            m.handle(Event::TimerFired, now);
            m.handle(Event::Spawned { pid: 1 }, now);
            now += Duration::from_secs(6);
        }
        // Three crashes within 10 s: the third one is over budget.
        m.handle(Event::Exited(ExitStatus::Code(1)), now);
        m.handle(Event::TimerFired, now);
        m.handle(Event::Spawned { pid: 1 }, now);
        m.handle(Event::Exited(ExitStatus::Code(1)), now + ms(1));
        m.handle(Event::TimerFired, now + ms(1));
        m.handle(Event::Spawned { pid: 1 }, now + ms(1));
        m.handle(Event::Exited(ExitStatus::Code(1)), now + ms(2));
        assert_eq!(m.state(), Fatal);
    }

    #[test]
    fn a_stable_run_resets_the_delay() {
        let t0 = Instant::now();
        let mut m = machine_in(Running, Policy { max_restarts: 10, ..policy() }, t0);
        let mut now = t0;
        for _ in 0..3 {
            let step = m.handle(Event::Exited(ExitStatus::Code(1)), now);
            let Some(ArmTimer(at)) = step.actions.last().cloned() else { panic!() };
            now = at;
            m.handle(Event::TimerFired, now);
            m.handle(Event::Spawned { pid: 1 }, now);
        }
        // The next delay would be 800 ms, but this run lasted stable_after.
        now += Duration::from_secs(10);
        let step = m.handle(Event::Exited(ExitStatus::Code(1)), now);
        assert_eq!(step.actions.last(), Some(&ArmTimer(now + ms(100))));
    }

    #[test]
    fn spawn_failures_count_against_the_budget() {
        let t0 = Instant::now();
        let p = Policy { max_restarts: 2, ..policy() };
        let mut m = machine_in(Starting, p, t0);
        for _ in 0..2 {
            m.handle(Event::SpawnFailed { reason: "No such file".into() }, t0);
            assert_eq!(m.state(), Backoff);
            assert_eq!(m.last_error(), Some("No such file"));
            m.handle(Event::TimerFired, t0);
        }
        let step = m.handle(Event::SpawnFailed { reason: "No such file".into() }, t0);
        assert_eq!(m.state(), Fatal);
        assert!(matches!(step.change.unwrap().reason, Reason::GaveUp { .. }));
    }

    #[test]
    fn restart_while_running_stops_then_starts() {
        let t0 = Instant::now();
        let mut m = machine_in(Running, policy(), t0);
        m.handle(Event::Restart, t0);
        assert_eq!(m.state(), Stopping);
        let step = m.handle(Event::Exited(ExitStatus::Signal(15)), t0 + ms(3));
        assert_eq!(step.actions, vec![DisarmTimer, KillTree, Spawn]);
        assert_eq!(m.state(), Starting);
        // A Stop after the Restart wins.
        let mut m = machine_in(Running, policy(), t0);
        m.handle(Event::Restart, t0);
        m.handle(Event::Stop, t0);
        m.handle(Event::Exited(ExitStatus::Signal(15)), t0);
        assert_eq!(m.state(), Stopped);
    }

    #[test]
    fn an_automatic_restart_counts_and_says_why() {
        let t0 = Instant::now();
        let mut m = machine_in(Running, policy(), t0);
        let step = m.handle(Event::AutoRestart { cause: "unhealthy".into() }, t0);
        let change = step.change.unwrap();
        assert_eq!(change.reason.to_string(), "restarting: unhealthy");
        assert_eq!(m.restarts_total(), 1);
        let step = m.handle(Event::Exited(ExitStatus::Signal(15)), t0);
        assert_eq!(step.actions, vec![DisarmTimer, KillTree, Spawn]);
        assert_eq!(m.state(), Starting);
        // A stop in between wins, as with a Restart.
        let mut m = machine_in(Running, policy(), t0);
        m.handle(Event::AutoRestart { cause: "unhealthy".into() }, t0);
        m.handle(Event::Stop, t0);
        m.handle(Event::Exited(ExitStatus::Signal(15)), t0);
        assert_eq!(m.state(), Stopped);
    }

    #[test]
    fn stop_with_kill_signal_kills_at_once() {
        let t0 = Instant::now();
        let mut m = machine_in(Running, Policy { stop_signal: StopSignal::Kill, ..policy() }, t0);
        let step = m.handle(Event::Stop, t0);
        assert_eq!(step.actions, vec![KillTree, ArmTimer(t0 + Duration::from_secs(5))]);
    }

    #[test]
    fn readiness_gate_holds_starting() {
        let t0 = Instant::now();
        let mut m = Machine::new(Policy { wait_ready: true, ..policy() });
        m.handle(Event::Start, t0);
        let step = m.handle(Event::Spawned { pid: 9 }, t0);
        assert_eq!((m.state(), step.change), (Starting, None));
        assert_eq!(m.pid(), Some(9));
        m.handle(Event::Ready, t0);
        assert_eq!(m.state(), Running);
    }

    /// Durations no config can hold any more (they are capped at parse time), handed to the
    /// machine directly: arming a timer saturates instead of overflowing the `Instant`, and
    /// the backoff doubling saturates instead of overflowing the `Duration`.
    /// Restarts in `secs` seconds of a program that repeats one run of `stable_after`
    /// followed by `quick` runs that fail at once; panics if it goes Fatal.
    fn restarts_of_pattern(p: &Policy, quick: usize, secs: u64) -> u64 {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(secs);
        let mut m = machine_in(Running, p.clone(), t0);
        let mut now = t0;
        let mut run = 0;
        while now < end {
            if run % (quick + 1) == 0 {
                now += p.stable_after;
            }
            run += 1;
            let step = m.handle(Event::Exited(ExitStatus::Code(1)), now);
            assert_ne!(m.state(), Fatal, "{p:?} with {quick} quick failures gave up");
            let Some(ArmTimer(at)) = step.actions.last().cloned() else { panic!("{step:?}") };
            now = at;
            m.handle(Event::TimerFired, now);
            m.handle(Event::Spawned { pid: 42 }, now);
        }
        m.restarts_total()
    }

    #[test]
    fn sustained_restart_rate_is_what_the_machine_allows() {
        let unlimited = |p: Policy| Policy { max_restarts: u32::MAX, restart_window: Duration::ZERO, ..p };
        let with = |delay: u64, max: u64, stable: u64| Policy {
            restart_delay: ms(delay),
            restart_max_delay: ms(max),
            stable_after: ms(stable),
            ..policy()
        };
        let never = Policy { restart: RestartPolicy::Never, ..policy() };
        assert_eq!(never.sustained_restart_rate(), Some(0.0));
        assert_eq!(Policy { max_restarts: 0, ..policy() }.sustained_restart_rate(), Some(0.0));
        // The budget: 3 per minute.
        assert_eq!(policy().sustained_restart_rate(), Some(3.0 / 60.0));
        // No delay and a window that never fills: nothing limits it.
        assert_eq!(unlimited(with(0, 1000, 10_000)).sustained_restart_rate(), None);
        // No delay: the budget alone, 3 per nanosecond.
        let tiny = Policy { restart_window: Duration::from_nanos(1), ..with(0, 1000, 10_000) };
        assert_eq!(tiny.sustained_restart_rate(), Some(3e9));
        // Every run counts as stable: one restart per delay.
        assert_eq!(unlimited(with(10, 1000, 0)).sustained_restart_rate(), Some(100.0));

        // The backoff's bound is what a program can reach, and no more: the best pattern of
        // quick failures after a stable run, driven through the machine for 100 s.
        for p in [with(1, 30_000, 150), with(100, 30_000, 10_000), with(10, 40, 1000), with(50, 50, 0)] {
            let p = unlimited(p);
            let rate = p.sustained_restart_rate().unwrap();
            // (A million quick failures: one stable run, then never again.)
            let patterns = (0..40).chain([1_000_000]);
            let best =
                patterns.map(|quick| restarts_of_pattern(&p, quick, 100)).max().unwrap() as f64 / 100.0;
            assert!((best - rate).abs() <= rate * 0.02 + 0.05, "{p:?}: computed {rate}/s, reached {best}/s");
        }
        // A short delay with a long `stable_after` is no hot loop: the doubling slows it.
        assert!(unlimited(with(1, 30_000, 10_000)).sustained_restart_rate().unwrap() < 1.0);
        // ... but with a short `stable_after` it is (about 28 a second, not 1000 / 151).
        let hot = unlimited(with(1, 30_000, 150)).sustained_restart_rate().unwrap();
        assert!(hot > 20.0, "{hot}");
    }

    #[test]
    fn extreme_durations_never_overflow() {
        let t0 = Instant::now();
        let huge = Policy {
            restart_delay: Duration::MAX,
            restart_max_delay: Duration::MAX,
            stop_timeout: Duration::MAX,
            stable_after: Duration::MAX,
            restart_window: Duration::MAX,
            max_restarts: u32::MAX,
            ..policy()
        };
        let mut m = machine_in(Running, huge, t0);
        for _ in 0..3 {
            let step = m.handle(Event::Exited(ExitStatus::Code(1)), t0);
            let Some(&ArmTimer(at)) = step.actions.last() else { panic!("{step:?}") };
            assert!(at > t0 + units::MAX_DURATION);
            m.handle(Event::TimerFired, at);
            m.handle(Event::Spawned { pid: 1 }, at);
        }
        let step = m.handle(Event::Stop, t0);
        assert!(matches!(step.actions[..], [Signal(StopSignal::Term), ArmTimer(at)] if at > t0));
    }
}
