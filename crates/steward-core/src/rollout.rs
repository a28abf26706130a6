//! The rolling-restart planner: replaces the process of every slot of a program
//! (`web:0..web:N-1`) by one of the target revision, a few slots at a time, and never takes
//! away a process that serves before its replacement has proved itself.
//!
//! Pure, like [`crate::fsm`]: [`Rollout::handle`] takes an [`Event`] and the current time and
//! returns the [`Action`]s the runtime carries out. It never spawns, stops, sleeps or reads
//! the clock; the runtime wakes it with [`Event::Tick`] at [`Rollout::next_deadline`].
//!
//! **Words.** In every slot the *serving* process is the one that answers for the slot now:
//! `Stop` goes to it and the `Old…` events are about it. Its *replacement* is the process a
//! `Start` created: the `New…` events are about it, and `Kill` goes to it. `Promote` makes
//! the replacement the serving process once the one it replaces is down. Rolling forward,
//! serving processes run [`Rev::Old`] and replacements [`Rev::New`]; rolling back, the other
//! way round.
//!
//! **One slot**, in one of two orders: the surge order whenever `max_surge` allows one more
//! process, else the unavailable order when `max_unavailable` allows one more unavailable
//! slot, else the slot waits.
//!
//! ```text
//! surge:        Start ─NewReady─▶ proving ─min_ready─▶ Stop ─OldDown─▶ Promote
//!               (the serving process serves all along)
//! unavailable:  Stop ─OldDown─▶ Start ─NewReady─▶ proving ─min_ready─▶ Promote
//! ```
//!
//! Slots go lowest index first. A slot whose serving process is unavailable anyway (it
//! crashed and the runtime restarts it) may be stopped ahead of a lower one that would have
//! to be made unavailable: otherwise a crash-looping old process could block the roll that
//! is meant to fix it.
//!
//! **Bounds**, at every point: processes alive (a serving process until `OldDown`, a
//! replacement until `NewDown` or its promotion) ≤ slots + `max_surge`; the planner never
//! stops a serving process when that would leave more than `max_unavailable` slots
//! unavailable (a slot is available when its serving process is ready, or its replacement
//! has proved itself and is ready). Crashes may push the count over; then it stops no more.
//!
//! **Failures.** A replacement fails when it exits or its check fails (`NewFailed`), or when
//! it stays not ready for `ready_timeout` (counted from its start, and again from every loss
//! of readiness; a loss before `min_ready` also restarts the `min_ready` count). It is
//! killed, and only it: **an old process is never stopped because of a timeout**. The one
//! way to a surge-order `Stop` is a replacement that has been ready for `min_ready`.
//! After the first failure:
//! - `on_failure = pause`: no slot starts any more. Replacements already started finish
//!   their slot: phase [`Phase::Pausing`], then [`Phase::Paused`] once nothing is in flight.
//!   Killing them would throw away work that may well succeed (the failure can be the
//!   slot's own), and meanwhile their serving processes still serve. A slot whose process
//!   was stopped first (unavailable order) but whose replacement had not started yet is
//!   restored instead (below).
//! - `on_failure = rollback`: unproven replacements are killed at once; that costs nothing,
//!   as they did not count as available yet (and a slot left empty is restored). Proven ones
//!   finish their step. Then every slot that runs the new revision goes back with the same
//!   gate and budgets, lowest first: in the surge order a failed-version process stays until
//!   its old-version replacement has proved itself. (With `max_surge = 0` there is no room
//!   for that: a slot goes back in the unavailable order, as it came.)
//! - No rollback of the rollback: an old-version replacement that fails, or the progress
//!   timeout passing again, pauses. A new-version process that was still finishing its step
//!   forward failing turns nothing around: its slot gets the old revision back anyway.
//! - A slot left without any process (unavailable order) that the roll no longer wants to
//!   change is *restored*: `Start` of the revision it served, and `Promote` right away. The
//!   runtime supervises that process like any slot's (restarts with backoff) and reports it
//!   with `OldReady`; the planner does not gate it, there is nothing to protect.
//!
//! `progress_timeout` counts from the start, and afresh when a rollback begins. When it
//! passes, every unproven replacement fails with it (while pausing too); if none is in
//! flight it is blamed on the lowest slot still waiting for its turn. When all that is left
//! is proven replacements waiting for their old processes to drain, it changes nothing: the
//! runtime bounds a drain with the stop timeout.

use std::time::{Duration, Instant};

use crate::units;

/// A revision of the program: the one running before the roll, or the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rev {
    /// What the slots ran when the roll started.
    Old,
    /// What the roll moves them to.
    New,
}

impl Rev {
    fn other(self) -> Rev {
        match self {
            Rev::Old => Rev::New,
            Rev::New => Rev::Old,
        }
    }
}

/// What a failed replacement leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop where it is: a mixed fleet, each slot serving a proven process.
    Pause,
    /// Take every replaced slot back to the old revision, gated the same way.
    Rollback,
}

/// The settings of a roll (`[programs.x.update]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollSpec {
    /// Processes allowed beyond one per slot.
    pub max_surge: u32,
    /// Slots the planner may make unavailable at once.
    pub max_unavailable: u32,
    /// How long a replacement must stay ready before it counts.
    pub min_ready: Duration,
    /// How long a replacement may be not ready (after its start or a loss of readiness)
    /// before it fails.
    pub ready_timeout: Duration,
    /// The longest the roll may take (and, afresh, its rollback). Without it, a replacement
    /// whose readiness keeps flapping faster than `min_ready` holds the roll forever.
    pub progress_timeout: Option<Duration>,
    /// What a failed replacement leads to.
    pub on_failure: OnFailure,
}

impl RollSpec {
    /// Checks the settings: with both budgets at 0 no slot could ever change.
    pub fn validate(&self) -> Result<(), RollError> {
        if self.max_surge == 0 && self.max_unavailable == 0 {
            return Err(RollError::NoBudget);
        }
        Ok(())
    }
}

/// Why a roll cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RollError {
    /// `max_surge` and `max_unavailable` are both 0.
    #[error(
        "max_surge and max_unavailable are both 0, so the roll could neither start an extra \
         process nor stop one: set max_surge = 1 (or max_unavailable = 1 if the program \
         cannot run twice)"
    )]
    NoBudget,
    /// A slot appears twice in the list to roll.
    #[error("slot {slot} is listed twice: list each slot to roll once")]
    DuplicateSlot { slot: u32 },
}

/// What the runtime tells the planner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The replacement in `slot` is ready (READY=1, its health check passes, or it is up).
    NewReady { slot: u32 },
    /// The replacement lost readiness (before it counted: the `min_ready` count restarts).
    NewUnready { slot: u32 },
    /// The replacement exited or its health check declared it failed.
    NewFailed { slot: u32, reason: String },
    /// A replacement the planner killed is gone.
    NewDown { slot: u32 },
    /// The serving process of `slot` is ready (again).
    OldReady { slot: u32 },
    /// The serving process of `slot` is not ready (it crashed and is being restarted, or its
    /// health check fails).
    OldUnready { slot: u32 },
    /// The serving process of `slot`, which got `Stop`, is gone.
    OldDown { slot: u32 },
    /// The timer armed at [`Rollout::next_deadline`] fired.
    Tick,
}

impl Event {
    fn slot(&self) -> Option<u32> {
        match *self {
            Event::NewReady { slot }
            | Event::NewUnready { slot }
            | Event::NewFailed { slot, .. }
            | Event::NewDown { slot }
            | Event::OldReady { slot }
            | Event::OldUnready { slot }
            | Event::OldDown { slot } => Some(slot),
            Event::Tick => None,
        }
    }
}

/// What the runtime must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a replacement of revision `rev` for `slot`; report it with the `New…` events.
    /// (Followed at once by `Promote` when it restores a slot left without a process.)
    Start { slot: u32, rev: Rev },
    /// Send the stop signal to the slot's serving process. It drains within its
    /// `stop_timeout`, after which the runtime kills it; answer with `OldDown`. If it is
    /// being restarted after a crash, cancel that and answer with `OldDown`.
    Stop { slot: u32 },
    /// Kill the replacement now (it failed); answer with `NewDown` once it is gone.
    Kill { slot: u32, reason: String },
    /// The replacement is now the slot's serving process: supervise it as the slot's
    /// process, and report it with the `Old…` events from now on.
    Promote { slot: u32 },
}

/// Where the roll is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Rolling forward: `replaced` of `total` slots run the new revision.
    Progressing { replaced: u32, total: u32 },
    /// Every slot runs the new revision.
    Complete,
    /// A failure (in `slot`) stopped the roll; replacements already started still finish.
    Pausing { slot: u32, reason: String },
    /// Stopped after a failure in `slot`, nothing in flight: a mixed fleet.
    Paused { slot: u32, reason: String },
    /// A failure in `slot` turned the roll around; `remaining` slots are not back yet.
    RollingBack { slot: u32, reason: String, remaining: u32 },
    /// Every slot runs the old revision again after a failure in `slot`.
    RolledBack { slot: u32, reason: String },
}

/// A slot as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// The revision of its serving process (while it has none: of the last one).
    pub rev: Rev,
    /// How far its replacement got.
    pub stage: SlotStage,
}

/// Where one slot is in its replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotStage {
    /// Only its serving process runs: the slot waits for its turn, or is done.
    Steady,
    /// Unavailable order: its serving process got `Stop`; the replacement starts when it is
    /// down.
    Stopping,
    /// Its replacement runs and is not ready (yet, or any more).
    Starting,
    /// Its replacement is ready and must stay so for `min_ready`.
    Proving,
    /// Its replacement proved itself; the process it replaces got `Stop`.
    Draining,
    /// Its replacement failed or was given up, and was killed; waiting for it to be gone.
    Killing,
    /// Like `Steady`, after its replacement failed: it still serves its previous revision.
    Failed,
}

/// The slot's serving process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Serving {
    Up {
        ready: bool,
    },
    /// Got `Stop`, not down yet.
    Stopping,
    Down,
}

/// The slot's replacement (its revision is always the other one than the slot's `rev`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repl {
    /// Not ready; fails at `deadline`.
    NotReady { deadline: Instant },
    /// Ready since `since`; proven at `since + min_ready`.
    Ready { since: Instant },
    /// Was ready for `min_ready`; `ready` is whether it still is.
    Proven { ready: bool },
    /// Got `Kill`; waiting for `NewDown`.
    Killed,
}

#[derive(Clone, Debug)]
struct Slot {
    id: u32,
    /// The revision of the serving process (of the last one while the slot has none).
    rev: Rev,
    serving: Serving,
    repl: Option<Repl>,
    /// A replacement of this slot failed.
    failed: bool,
}

impl Slot {
    /// Only the serving process runs, and it was not told to stop.
    fn is_steady(&self) -> bool {
        matches!(self.serving, Serving::Up { .. }) && self.repl.is_none()
    }

    fn is_available(&self) -> bool {
        matches!(self.serving, Serving::Up { ready: true }) || self.repl == Some(Repl::Proven { ready: true })
    }

    fn is_unproven(&self) -> bool {
        matches!(self.repl, Some(Repl::NotReady { .. } | Repl::Ready { .. }))
    }

    fn alive(&self) -> u64 {
        u64::from(self.serving != Serving::Down) + u64::from(self.repl.is_some())
    }
}

/// The roll's direction, or that it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    RollingBack { slot: u32, reason: String },
    Halted { slot: u32, reason: String },
}

/// A rolling restart in progress: the slots and what each one waits for.
#[derive(Clone, Debug)]
pub struct Rollout {
    spec: RollSpec,
    /// Sorted by id.
    slots: Vec<Slot>,
    mode: Mode,
    progress_deadline: Option<Instant>,
}

impl Rollout {
    /// Starts a roll of `slots` (each with whether its process is ready now), lowest index
    /// first whatever their order here. Returns the first actions.
    pub fn start(
        spec: RollSpec,
        slots: &[(u32, bool)],
        now: Instant,
    ) -> Result<(Rollout, Vec<Action>), RollError> {
        spec.validate()?;
        let mut slots: Vec<Slot> = slots
            .iter()
            .map(|&(id, ready)| Slot {
                id,
                rev: Rev::Old,
                serving: Serving::Up { ready },
                repl: None,
                failed: false,
            })
            .collect();
        slots.sort_by_key(|s| s.id);
        if let Some(w) = slots.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RollError::DuplicateSlot { slot: w[0].id });
        }
        let progress_deadline = spec.progress_timeout.map(|d| units::later(now, d));
        let mut rollout = Rollout { spec, slots, mode: Mode::Forward, progress_deadline };
        let mut actions = Vec::new();
        rollout.settle(now, &mut actions);
        Ok((rollout, actions))
    }

    /// Feeds one event. Events that do not fit the slot's state (late, duplicate, or for a
    /// slot outside the roll) change nothing; timers due by `now` fire with any event.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        self.apply(event, now, &mut actions);
        self.expire(now, &mut actions);
        self.settle(now, &mut actions);
        actions
    }

    /// The settings the roll runs with.
    pub fn spec(&self) -> &RollSpec {
        &self.spec
    }

    /// Where the roll is, for `status`, events and the exit code of `steward restart`.
    pub fn phase(&self) -> Phase {
        let count = |f: &dyn Fn(&Slot) -> bool| self.slots.iter().filter(|s| f(s)).count() as u32;
        let in_flight = self.slots.iter().any(|s| !s.is_steady());
        match &self.mode {
            Mode::Forward => {
                let replaced = count(&|s| s.is_steady() && s.rev == Rev::New);
                let total = self.slots.len() as u32;
                if replaced == total {
                    Phase::Complete
                } else {
                    Phase::Progressing { replaced, total }
                }
            }
            Mode::RollingBack { slot, reason } => {
                let remaining = count(&|s| !s.is_steady() || s.rev != Rev::Old);
                let (slot, reason) = (*slot, reason.clone());
                if remaining == 0 {
                    Phase::RolledBack { slot, reason }
                } else {
                    Phase::RollingBack { slot, reason, remaining }
                }
            }
            Mode::Halted { slot, reason } if in_flight => {
                Phase::Pausing { slot: *slot, reason: reason.clone() }
            }
            Mode::Halted { slot, reason } => Phase::Paused { slot: *slot, reason: reason.clone() },
        }
    }

    /// When to send [`Event::Tick`]: the earliest `ready_timeout`, `min_ready` or
    /// `progress_timeout` still running. `None` once the roll is finished.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let slots = self.slots.iter().filter_map(|s| match s.repl {
            Some(Repl::NotReady { deadline }) => Some(deadline),
            Some(Repl::Ready { since }) => Some(units::later(since, self.spec.min_ready)),
            _ => None,
        });
        slots.chain(self.progress_deadline).min()
    }

    /// Complete, Paused or RolledBack, with nothing in flight: no event will change anything
    /// any more but the readiness of serving processes.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase(), Phase::Complete | Phase::Paused { .. } | Phase::RolledBack { .. })
    }

    /// Every slot of the roll, lowest index first.
    pub fn slot_states(&self) -> impl Iterator<Item = (u32, SlotState)> + '_ {
        self.slots.iter().map(|s| {
            let stage = match (s.repl, s.serving) {
                (Some(Repl::Killed), _) => SlotStage::Killing,
                (Some(Repl::NotReady { .. }), _) => SlotStage::Starting,
                (Some(Repl::Ready { .. }), _) => SlotStage::Proving,
                (Some(Repl::Proven { .. }), _) => SlotStage::Draining,
                (None, Serving::Up { .. }) if s.failed => SlotStage::Failed,
                (None, Serving::Up { .. }) => SlotStage::Steady,
                (None, Serving::Stopping | Serving::Down) => SlotStage::Stopping,
            };
            (s.id, SlotState { rev: s.rev, stage })
        })
    }

    /// The revision the roll moves slots to; `None` once it stopped.
    fn target(&self) -> Option<Rev> {
        match self.mode {
            Mode::Forward => Some(Rev::New),
            Mode::RollingBack { .. } => Some(Rev::Old),
            Mode::Halted { .. } => None,
        }
    }

    /// The event's effect on its slot's processes.
    fn apply(&mut self, event: Event, now: Instant, actions: &mut Vec<Action>) {
        let Some(i) = event.slot().and_then(|id| self.slots.binary_search_by_key(&id, |s| s.id).ok()) else {
            return;
        };
        let ready_timeout = self.spec.ready_timeout;
        let slot = &mut self.slots[i];
        match (event, slot.repl, slot.serving) {
            (Event::NewReady { .. }, Some(Repl::NotReady { .. }), _) => {
                slot.repl = Some(Repl::Ready { since: now });
            }
            (Event::NewReady { .. }, Some(Repl::Proven { ready: false }), _) => {
                slot.repl = Some(Repl::Proven { ready: true });
            }
            // Before it counted, a loss starts the wait over; after, it only makes the slot
            // unavailable (the process it replaces is stopping already).
            (Event::NewUnready { .. }, Some(Repl::Ready { .. }), _) => {
                slot.repl = Some(Repl::NotReady { deadline: units::later(now, ready_timeout) });
            }
            (Event::NewUnready { .. }, Some(Repl::Proven { ready: true }), _) => {
                slot.repl = Some(Repl::Proven { ready: false });
            }
            (Event::NewFailed { reason, .. }, Some(r), _) if r != Repl::Killed => {
                self.fail(&[i], reason, now, actions);
            }
            (Event::NewDown { .. }, Some(Repl::Killed), _) => slot.repl = None,
            (Event::OldReady { .. }, _, Serving::Up { .. }) => slot.serving = Serving::Up { ready: true },
            (Event::OldUnready { .. }, _, Serving::Up { .. }) => slot.serving = Serving::Up { ready: false },
            (Event::OldDown { .. }, _, Serving::Stopping) => slot.serving = Serving::Down,
            _ => {}
        }
    }

    /// Fires the timers due by `now`. Proofs go first: a replacement that was ready for
    /// `min_ready` by now counts, even if a timeout of the same instant fails another.
    fn expire(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let min_ready = self.spec.min_ready;
        for slot in &mut self.slots {
            if let Some(Repl::Ready { since }) = slot.repl {
                if units::later(since, min_ready) <= now {
                    slot.repl = Some(Repl::Proven { ready: true });
                }
            }
        }
        let late: Vec<usize> = (0..self.slots.len())
            .filter(|&i| matches!(self.slots[i].repl, Some(Repl::NotReady { deadline }) if deadline <= now))
            .collect();
        if !late.is_empty() {
            let reason = format!("not ready within {}", units::format_duration(self.spec.ready_timeout));
            self.fail(&late, reason, now, actions);
        }
        if self.progress_deadline.is_some_and(|at| at <= now) && !self.is_finished() {
            self.progress_deadline = None;
            self.progress_timed_out(now, actions);
        }
    }

    /// The roll took too long: every unproven replacement fails. With none, the lowest slot
    /// still waiting for its turn takes the blame; with none of those either, all that is
    /// left is draining, which the runtime bounds.
    fn progress_timed_out(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let limit = self.spec.progress_timeout.unwrap_or_default();
        let reason = format!("the roll took longer than {}", units::format_duration(limit));
        let unproven: Vec<usize> = (0..self.slots.len()).filter(|&i| self.slots[i].is_unproven()).collect();
        if !unproven.is_empty() {
            return self.fail(&unproven, reason, now, actions);
        }
        let Some(target) = self.target() else { return };
        if let Some(id) = self.slots.iter().find(|s| s.is_steady() && s.rev != target).map(|s| s.id) {
            self.failed(id, reason, now, actions);
        }
    }

    /// The replacements of `slots` failed for `reason`: kill them, then apply `on_failure`,
    /// blaming the first one that was moving its slot towards the roll's target. (While
    /// rolling back, a new-revision replacement that was still finishing its step forward
    /// turns nothing around: its slot gets its old revision back anyway.)
    fn fail(&mut self, slots: &[usize], reason: String, now: Instant, actions: &mut Vec<Action>) {
        for &i in slots {
            let slot = &mut self.slots[i];
            actions.push(Action::Kill { slot: slot.id, reason: reason.clone() });
            slot.repl = Some(Repl::Killed);
            slot.failed = true;
        }
        let target = self.target();
        let blamed = slots.iter().map(|&i| &self.slots[i]).find(|s| Some(s.rev.other()) == target);
        if let Some(id) = blamed.map(|s| s.id) {
            self.failed(id, reason, now, actions);
        }
    }

    /// `slot` failed: pause, roll back, or (while rolling back) pause.
    fn failed(&mut self, slot: u32, reason: String, now: Instant, actions: &mut Vec<Action>) {
        match &self.mode {
            Mode::Forward if self.spec.on_failure == OnFailure::Rollback => {
                self.begin_rollback(slot, reason, now, actions)
            }
            Mode::Forward => self.mode = Mode::Halted { slot, reason },
            Mode::RollingBack { slot: first, reason: why } => {
                let reason = format!("{reason} (while rolling back after slot {first} failed: {why})");
                self.mode = Mode::Halted { slot, reason };
            }
            Mode::Halted { .. } => {}
        }
    }

    /// Turns the roll around: unproven new-revision replacements are killed now (their
    /// serving processes still serve, or get their revision back); proven ones finish and
    /// are then rolled back like every replaced slot.
    fn begin_rollback(&mut self, slot: u32, reason: String, now: Instant, actions: &mut Vec<Action>) {
        let why = format!("rolling back: slot {slot} failed");
        for s in &mut self.slots {
            if s.is_unproven() {
                actions.push(Action::Kill { slot: s.id, reason: why.clone() });
                s.repl = Some(Repl::Killed);
            }
        }
        self.mode = Mode::RollingBack { slot, reason };
        self.progress_deadline = self.spec.progress_timeout.map(|d| units::later(now, d));
    }

    /// Moves every slot as far as it can go now, then starts what the budgets allow.
    fn settle(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let target = self.target();
        let ready_timeout = self.spec.ready_timeout;
        for slot in &mut self.slots {
            let id = slot.id;
            match (slot.serving, slot.repl) {
                // The surge order's gate: the replacement has been ready for `min_ready`.
                (Serving::Up { .. }, Some(Repl::Proven { ready: true })) => {
                    actions.push(Action::Stop { slot: id });
                    slot.serving = Serving::Stopping;
                }
                (Serving::Down, Some(Repl::Proven { ready })) => {
                    actions.push(Action::Promote { slot: id });
                    slot.rev = slot.rev.other();
                    slot.serving = Serving::Up { ready };
                    slot.repl = None;
                }
                // Unavailable order: the serving process is down, its replacement starts.
                (Serving::Down, None) if target.is_some_and(|t| t != slot.rev) => {
                    actions.push(Action::Start { slot: id, rev: slot.rev.other() });
                    slot.repl = Some(Repl::NotReady { deadline: units::later(now, ready_timeout) });
                }
                // Left without a process and no longer to be changed: restore it.
                (Serving::Down, None) => {
                    actions.push(Action::Start { slot: id, rev: slot.rev });
                    actions.push(Action::Promote { slot: id });
                    slot.serving = Serving::Up { ready: false };
                }
                _ => {}
            }
        }
        self.plan(now, actions);
    }

    /// Starts the next slots, lowest first, as far as the budgets allow: the surge order
    /// while one more process fits, else the unavailable order while one more unavailable
    /// slot fits.
    fn plan(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let Some(target) = self.target() else { return };
        let max_alive = self.slots.len() as u64 + u64::from(self.spec.max_surge);
        let mut alive: u64 = self.slots.iter().map(Slot::alive).sum();
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if !slot.is_steady() || slot.rev == target {
                continue;
            }
            let id = slot.id;
            if alive < max_alive {
                actions.push(Action::Start { slot: id, rev: target });
                let deadline = units::later(now, self.spec.ready_timeout);
                self.slots[i].repl = Some(Repl::NotReady { deadline });
                alive += 1;
            } else if self.unavailable_with(i) <= u64::from(self.spec.max_unavailable) {
                actions.push(Action::Stop { slot: id });
                self.slots[i].serving = Serving::Stopping;
            }
        }
    }

    /// Unavailable slots if slot `i` were unavailable too.
    fn unavailable_with(&self, i: usize) -> u64 {
        let others = self.slots.iter().enumerate().filter(|&(j, s)| j != i && !s.is_available()).count();
        others as u64 + 1
    }
}
