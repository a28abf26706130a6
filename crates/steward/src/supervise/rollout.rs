//! Rolling restarts: the runtime around the pure planner ([`steward_core::rollout`]).
//!
//! A roll replaces the process of each slot (instance) of a program by a new one, a few at a
//! time (`[programs.NAME.update]`): the new process of a slot runs in a task of its own
//! beside the slot's current one (same log files, the other notify socket name), must become
//! ready (`Running`: `ready = "notify"` sent READY=1, or it is up) and stay so for
//! `min_ready`, and only then does the old one get its stop signal. A new process that exits
//! or misses `ready_timeout` is stopped, never the old one, and the roll pauses or rolls back
//! (`on_failure`).
//!
//! The planner decides; this file carries out its actions on program tasks, turns their state
//! changes into the planner's events, and wakes it at its deadline (one timer in the
//! supervisor's loop, armed only while a roll runs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use steward_core::config::ProgramSpec;
use steward_core::fsm::{self, State};
use steward_core::health::{Health, HealthCheck};
use steward_core::rollout::{self, Action, Event, Phase, Rev, RollSpec, Rollout};
use tokio::sync::{mpsc, oneshot};

use crate::health::ProbeReport;

use super::control::ControlError;
use super::event::{Event as Published, EventKind};
use super::program::{Notice, ProgramHandle};
use super::Supervisor;

/// How a roll ended, for whoever asked for it (`steward restart`).
#[derive(Clone, Debug)]
pub struct RollReport {
    pub program: String,
    /// Every slot replaced (or none needed it).
    pub ok: bool,
    /// "complete", "paused" or "rolled back", with the slot and reason of a failure.
    pub message: String,
    /// (process name, pid) of each slot after the roll.
    pub processes: Vec<(String, Option<u32>)>,
}

/// A roll in progress.
pub(super) struct Roll {
    plan: Rollout,
    /// The spec of each slot's process, before (`Old`) and after (`New`) the roll.
    specs: BTreeMap<u32, [Arc<ProgramSpec>; 2]>,
    /// Slot → the process name (`web:2`, or `web` for a program without `instances`).
    names: BTreeMap<u32, String>,
    /// The replacement of each slot the planner started and has not promoted or seen die.
    replacements: BTreeMap<u32, ProgramHandle>,
    /// Serving processes told to stop: their next down state is `OldDown`.
    stopping: BTreeSet<u32>,
    /// Replacements told to stop because they failed: their down state is `NewDown`.
    killing: BTreeSet<u32>,
    /// Who waits for the end.
    waiters: Vec<oneshot::Sender<RollReport>>,
    /// The health check of each replacement running with one: ready once it passes.
    checks: BTreeMap<u32, HealthCheck>,
}

/// Probes of the replacements of programs with a health check: the observers probe the
/// processes that serve, by name; a replacement has the same name, so it gets probes of its
/// own, made at the first roll that needs them.
pub(super) struct RollProbes {
    probes: crate::health::Probes,
    reports: mpsc::UnboundedReceiver<ProbeReport>,
}

impl RollProbes {
    fn new() -> RollProbes {
        let (tx, reports) = mpsc::unbounded_channel();
        RollProbes { probes: crate::health::Probes::new(tx), reports }
    }
}

/// The next probe result of a replacement, or never when no roll probes.
pub(super) async fn next_probe(probes: &mut Option<RollProbes>) -> ProbeReport {
    match probes {
        Some(p) => match p.reports.recv().await {
            Some(report) => report,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

fn spec_index(rev: Rev) -> usize {
    match rev {
        Rev::Old => 0,
        Rev::New => 1,
    }
}

impl Supervisor {
    /// Refuses a request that would change the processes of `program` while it rolls.
    pub(super) fn refuse_if_rolling(&self, program: &str) -> Result<(), ControlError> {
        match self.rolls.get(program) {
            Some(roll) => Err(ControlError::Conflict(format!(
                "{program} is in a rolling restart ({}); wait until it ends (`steward events -f` shows it)",
                phase_text(&roll.plan.phase())
            ))),
            None => Ok(()),
        }
    }

    /// Whether a restart of `name`'s program rolls: its `[update]` says rolling (the
    /// default for programs with `instances` or `sockets`) and one of its processes runs.
    pub(super) fn rolls_on_restart(&self, group: &str) -> bool {
        self.config.groups.get(group).is_some_and(|g| g.rolls())
            && self.programs.iter().any(|(n, _)| {
                steward_core::config::group_of(n) == group && self.states.get(n).is_some_and(|s| !s.is_down())
            })
    }

    /// Starts a roll of `units` (processes of `group` now in `programs`) to `new` specs.
    pub(super) fn start_roll(
        &mut self,
        group: &str,
        new: BTreeMap<String, ProgramSpec>,
        waiter: Option<oneshot::Sender<RollReport>>,
    ) -> Result<(), ControlError> {
        let update = self.config.groups.get(group).map(|g| g.update.clone()).unwrap_or_default();
        let spec = RollSpec {
            max_surge: update.max_surge,
            max_unavailable: update.max_unavailable,
            min_ready: update.min_ready,
            ready_timeout: update.ready_timeout,
            progress_timeout: update.progress_timeout,
            on_failure: match update.on_failure {
                steward_core::config::OnFailure::Pause => rollout::OnFailure::Pause,
                steward_core::config::OnFailure::Rollback => rollout::OnFailure::Rollback,
            },
        };
        let mut specs = BTreeMap::new();
        let mut names = BTreeMap::new();
        let mut slots = Vec::new();
        for (name, new_spec) in new {
            let Some(handle) = self.programs.get(&name) else { continue };
            let slot = handle.spec.instance.unwrap_or(0);
            specs.insert(slot, [handle.spec.clone(), Arc::new(new_spec)]);
            slots.push((slot, self.states.get(&name) == Some(&State::Running)));
            names.insert(slot, name);
        }
        let (plan, actions) = Rollout::start(spec, &slots, now())
            .map_err(|e| ControlError::BadRequest(format!("{group}: {e}")))?;
        tracing::info!(
            program = group,
            event = "rollout-started",
            slots = slots.len(),
            "rolling restart of {group}: {} processes, at most {} extra and {} unavailable at once",
            slots.len(),
            update.max_surge,
            update.max_unavailable
        );
        self.publish_roll(group, "started", format!("rolling restart of {} processes", slots.len()));
        let roll = Roll {
            plan,
            specs,
            names,
            replacements: BTreeMap::new(),
            stopping: BTreeSet::new(),
            killing: BTreeSet::new(),
            waiters: waiter.into_iter().collect(),
            checks: BTreeMap::new(),
        };
        self.rolls.insert(group.to_owned(), roll);
        self.carry_out(group, actions);
        Ok(())
    }

    /// The earliest deadline of any roll (the loop sleeps until it).
    pub(super) fn roll_deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.rolls.values().filter_map(|r| r.plan.next_deadline()).min()?;
        let (now_std, now_tokio) = (now(), tokio::time::Instant::now());
        Some(now_tokio + at.saturating_duration_since(now_std))
    }

    /// The timer fired: every roll whose deadline passed gets a `Tick`.
    pub(super) fn on_roll_timer(&mut self) {
        let due: Vec<String> = self
            .rolls
            .iter()
            .filter(|(_, r)| r.plan.next_deadline().is_some_and(|d| d <= now()))
            .map(|(g, _)| g.clone())
            .collect();
        for group in due {
            self.feed(&group, Event::Tick);
        }
    }

    /// A state change of a replacement (which is in no other map). Returns whether it was one.
    pub(super) fn on_replacement_notice(&mut self, notice: &Notice) -> bool {
        let group = steward_core::config::group_of(&notice.program).to_owned();
        let Some(roll) = self.rolls.get_mut(&group) else { return false };
        let Some(slot) = roll.replacements.iter().find(|(_, h)| h.is(notice)).map(|(s, _)| *s) else {
            return false;
        };
        let killing = roll.killing.contains(&slot);
        super::log_change(notice);
        self.publish(notice);
        let to = notice.change.to;
        if to != State::Running {
            self.stop_roll_probe(&group, slot, &notice.program);
        }
        let event = if killing {
            to.is_down().then_some(Event::NewDown { slot })
        } else {
            match to {
                // With a health check, ready once it passes (`on_roll_probe`).
                State::Running if self.start_roll_probe(&group, slot, notice.generation) => None,
                State::Running => Some(Event::NewReady { slot }),
                State::Starting => None,
                _ => Some(Event::NewFailed { slot, reason: failure_of(notice) }),
            }
        };
        if let Some(event) = event {
            self.feed(&group, event);
        }
        true
    }

    /// Starts probing the replacement of `slot` if its spec has a health check; says whether.
    fn start_roll_probe(&mut self, group: &str, slot: u32, generation: u64) -> bool {
        let Some(roll) = self.rolls.get_mut(group) else { return false };
        let Some(handle) = roll.replacements.get(&slot) else { return false };
        let Some(check) = handle.spec.health.clone() else { return false };
        let mut state = HealthCheck::new(&check);
        state.started(now());
        roll.checks.insert(slot, state);
        let spec = handle.spec.clone();
        self.roll_probes.get_or_insert_with(RollProbes::new).probes.start(&spec, &check, generation);
        true
    }

    fn stop_roll_probe(&mut self, group: &str, slot: u32, name: &str) {
        if let Some(roll) = self.rolls.get_mut(group) {
            roll.checks.remove(&slot);
        }
        if let Some(p) = &mut self.roll_probes {
            p.probes.stop(name);
        }
    }

    /// A probe result of a replacement: passing makes it ready; failing as its check says
    /// (`retries` in a row) makes it not ready again.
    pub(super) fn on_roll_probe(&mut self, report: ProbeReport) {
        let group = steward_core::config::group_of(&report.program).to_owned();
        let Some(roll) = self.rolls.get_mut(&group) else { return };
        let current = roll
            .replacements
            .iter()
            .find(|(_, h)| h.spec.name == *report.program && h.generation() == report.run);
        let Some(slot) = current.map(|(s, _)| *s) else { return };
        let Some(check) = roll.checks.get_mut(&slot) else { return };
        let step = check.observe(report.result.passed, now());
        let event = match step.change.map(|c| c.to) {
            Some(Health::Healthy) => Some(Event::NewReady { slot }),
            Some(Health::Unhealthy) => Some(Event::NewUnready { slot }),
            _ => None,
        };
        if let Some(event) = event {
            tracing::info!(program = %report.program, event = "rollout-health",
                "the new process of {} is {}: {}", report.program,
                if matches!(event, Event::NewReady { .. }) { "healthy" } else { "unhealthy" }, report.result.detail);
            self.feed(&group, event);
        }
    }

    /// A state change of a serving process, once the loop has handled it.
    pub(super) fn on_serving_notice(&mut self, notice: &Notice) {
        let group = steward_core::config::group_of(&notice.program).to_owned();
        let Some(roll) = self.rolls.get_mut(&group) else { return };
        let Some(slot) = roll.names.iter().find(|(_, n)| **n == *notice.program).map(|(s, _)| *s) else {
            return;
        };
        let (from, to) = (notice.change.from, notice.change.to);
        let event = if roll.stopping.contains(&slot) {
            to.is_down().then(|| {
                roll.stopping.remove(&slot);
                Event::OldDown { slot }
            })
        } else if to == State::Running {
            Some(Event::OldReady { slot })
        } else if from == State::Running {
            Some(Event::OldUnready { slot })
        } else {
            None
        };
        if let Some(event) = event {
            self.feed(&group, event);
        }
    }

    fn feed(&mut self, group: &str, event: Event) {
        let Some(roll) = self.rolls.get_mut(group) else { return };
        let actions = roll.plan.handle(event, now());
        self.carry_out(group, actions);
    }

    fn carry_out(&mut self, group: &str, actions: Vec<Action>) {
        for action in actions {
            self.act(group, action);
        }
        self.finish_roll_if_done(group);
    }

    fn act(&mut self, group: &str, action: Action) {
        let Some(roll) = self.rolls.get_mut(group) else { return };
        match action {
            Action::Start { slot, rev } => {
                let (Some(specs), Some(name)) = (roll.specs.get(&slot), roll.names.get(&slot)) else {
                    return;
                };
                let spec = std::sync::Arc::clone(&specs[spec_index(rev)]);
                let name = name.clone();
                let listeners = self.sockets.of(group);
                let beside = self.programs.get(&name);
                let handle = ProgramHandle::spawn(spec, self.setup(listeners, beside));
                handle.send(fsm::Event::Start);
                tracing::info!(program = %name, event = "rollout-start",
                    "starting a new process for {name} beside the one that serves");
                if let Some(roll) = self.rolls.get_mut(group) {
                    roll.replacements.insert(slot, handle);
                }
            }
            Action::Stop { slot } => {
                let Some(name) = roll.names.get(&slot).cloned() else { return };
                roll.stopping.insert(slot);
                match self.programs.get(&name) {
                    Some(p) if !self.states.get(&name).is_none_or(|s| s.is_down()) => {
                        tracing::info!(program = %name, event = "rollout-stop",
                            "its replacement is ready: stopping the old process of {name}");
                        p.send(fsm::Event::Stop);
                    }
                    // Down already: nothing will report it.
                    _ => self.feed_later(group, Event::OldDown { slot }),
                }
            }
            Action::Kill { slot, reason } => {
                let name = roll.names.get(&slot).cloned().unwrap_or_default();
                tracing::warn!(program = %name, event = "rollout-failed", "the new process of {name} failed: {reason}; stopping it");
                self.publish_roll(group, "slot-failed", format!("{name}: {reason}"));
                let Some(roll) = self.rolls.get_mut(group) else { return };
                roll.killing.insert(slot);
                match roll.replacements.get(&slot) {
                    Some(h) if !h.status().state.is_down() => h.send(fsm::Event::Stop),
                    _ => self.feed_later(group, Event::NewDown { slot }),
                }
            }
            Action::Promote { slot } => self.promote(group, slot),
        }
    }

    /// An event the runtime owes the planner at once (the process was down already); fed
    /// after the current actions, as if it had been reported.
    fn feed_later(&mut self, group: &str, event: Event) {
        if let Some(roll) = self.rolls.get_mut(group) {
            let actions = roll.plan.handle(event, now());
            // Carried out by the caller's loop in order: append them by recursion.
            for action in actions {
                self.act(group, action);
            }
        }
    }

    /// The replacement of `slot` becomes the slot's process: it takes the name, and the old
    /// task (down by now) ends.
    fn promote(&mut self, group: &str, slot: u32) {
        let Some(roll) = self.rolls.get_mut(group) else { return };
        let Some(name) = roll.names.get(&slot).cloned() else { return };
        let killed = roll.killing.remove(&slot);
        let Some(handle) = roll.replacements.remove(&slot) else { return };
        roll.checks.remove(&slot);
        if let Some(p) = &mut self.roll_probes {
            p.probes.stop(&name);
        }
        if killed {
            // A failed replacement is never promoted; keep it from being lost anyway.
            self.retired.push(tokio::spawn(handle.finish()));
            return;
        }
        let state = handle.status().state;
        let spec = handle.spec.clone();
        let pid = handle.status().pid;
        if let Some(old) = self.programs.insert(name.clone(), handle) {
            self.retired.push(tokio::spawn(old.finish()));
        }
        let effects = self.observe.forget(&name);
        self.apply(effects);
        self.observe.add_program(&spec);
        self.config.programs.insert(name.clone(), spec);
        self.states.insert(name.clone(), state);
        tracing::info!(program = %name, event = "rollout-replaced", pid = pid.unwrap_or(0), "{name} replaced");
        let message = match pid {
            Some(pid) => format!("{name} replaced (pid {pid})"),
            None => format!("{name} replaced"),
        };
        self.publish_roll(group, "replaced", message);
        self.status.update(&self.states, Some(&name));
    }

    fn finish_roll_if_done(&mut self, group: &str) {
        let done = self.rolls.get(group).is_some_and(|r| r.plan.is_finished());
        if !done {
            return;
        }
        let Some(roll) = self.rolls.remove(group) else { return };
        let phase = roll.plan.phase();
        let ok = phase == Phase::Complete;
        let message = phase_text(&phase);
        if ok {
            tracing::info!(
                program = group,
                event = "rollout-complete",
                "rolling restart of {group}: {message}"
            );
        } else {
            tracing::error!(
                program = group,
                event = "rollout-failed",
                "rolling restart of {group}: {message}"
            );
        }
        let step = match phase {
            Phase::Complete => "complete",
            Phase::RolledBack { .. } => "rolled-back",
            _ => "paused",
        };
        self.publish_roll(group, step, message.clone());
        // Replacements left over (none, once finished) end with the roll.
        for (_, h) in roll.replacements {
            self.retired.push(tokio::spawn(h.finish()));
        }
        let processes = roll
            .names
            .values()
            .map(|n| (n.clone(), self.programs.get(n).and_then(|p| p.status().pid)))
            .collect::<Vec<_>>();
        for waiter in roll.waiters {
            let report = RollReport {
                program: group.to_owned(),
                ok,
                message: message.clone(),
                processes: processes.clone(),
            };
            let _ = waiter.send(report);
        }
        self.switch_rolled(group, if ok { Ok(()) } else { Err(message) });
        self.dispatch();
    }

    /// Ends every roll at once (shutdown, or the program is stopped): replacements stop with
    /// their tasks, and whoever waits is told why.
    pub(super) fn abort_rolls(&mut self, only: Option<&str>, why: &str) {
        let groups: Vec<String> =
            self.rolls.keys().filter(|g| only.is_none_or(|o| o == g.as_str())).cloned().collect();
        for group in groups {
            let Some(roll) = self.rolls.remove(&group) else { continue };
            self.publish_roll(&group, "aborted", why.to_owned());
            for (_, h) in roll.replacements {
                self.retired.push(tokio::spawn(h.finish()));
            }
            for waiter in roll.waiters {
                let report = RollReport {
                    program: group.clone(),
                    ok: false,
                    message: format!("aborted: {why}"),
                    processes: Vec::new(),
                };
                let _ = waiter.send(report);
            }
            self.switch_rolled(&group, Err(format!("aborted: {why}")));
        }
    }

    /// "rolling 2/4" for `status`, while `group` rolls.
    pub(super) fn roll_status(&self, group: &str) -> Option<String> {
        self.rolls.get(group).map(|r| phase_text(&r.plan.phase()))
    }

    fn publish_roll(&mut self, group: &str, step: &'static str, message: String) {
        self.push_event(Published::now(Arc::from(group), EventKind::Rollout { step, message }));
    }
}

/// A replacement's failure in words: how it exited, or the state it fell into.
fn failure_of(notice: &Notice) -> String {
    match (&notice.status.last_error, notice.status.last_exit) {
        (Some(e), _) => format!("could not start: {e}"),
        (None, Some(exit)) => format!("exited with {exit} before it was proven ready"),
        (None, None) => format!("went {} before it was proven ready", notice.change.to),
    }
}

fn phase_text(phase: &Phase) -> String {
    match phase {
        Phase::Progressing { replaced, total } => format!("rolling, {replaced}/{total} replaced"),
        Phase::Complete => "complete".into(),
        Phase::Pausing { slot, reason } => format!("pausing: slot {slot}: {reason}"),
        Phase::Paused { slot, reason } => format!("paused at slot {slot}: {reason}"),
        Phase::RollingBack { slot, reason, remaining } => {
            format!("rolling back ({remaining} to go) after slot {slot}: {reason}")
        }
        Phase::RolledBack { slot, reason } => format!("rolled back after slot {slot}: {reason}"),
    }
}

/// The planner's clock: `Instant`s from tokio's clock, so tests that pause time work too.
pub(super) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
