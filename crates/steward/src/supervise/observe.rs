//! What the supervisor watches besides program states: health probes, resource samples
//! (for `max_memory` and memory alerts) and alert rules.
//!
//! [`Observers`] lives inside the supervisor loop. It is told about every state change
//! ([`Observers::on_state`]), gives the loop one more thing to wait on ([`Observers::next`]),
//! and answers each happening with [`Effect`]s that the loop carries out: publish an event,
//! restart a program with a cause, re-check what may start now that a program became ready.
//! The decisions are the pure ones of steward-core (`health::HealthCheck`,
//! `limits::MemoryGuard`, `alerts::Evaluator`); this file only feeds them and keeps timers.
//!
//! Timers exist only while something needs them, so an idle steward has no wake-ups:
//! - probes run (in their own tasks, `crate::health`) only while a program with a health
//!   check is running;
//! - resource samples are taken only while a running program has `max_memory` or is covered
//!   by a `memory >` alert, every `memory_grace / 4` (between 100 ms and 5 s; 5 s for alerts);
//! - the alert timer is armed only for what time alone can change (a restart leaving its
//!   window, `unhealthy for` reaching its length, a `repeat_every` falling due).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use steward_core::alerts::{AlertStatus, Condition, Evaluator, Notification, Observation};
use steward_core::config::{Config, HealthSpec, OnUnhealthy, ProgramSpec};
use steward_core::fsm::State;
use steward_core::health::{Health, HealthChange, HealthCheck};
use steward_core::limits::{format_bytes, MemoryGuard, MemoryVerdict};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::event::{Event, EventKind};
use super::program::{Notice, ProgramHandle};
use super::snapshot::{ProgramSnapshot, Snapshot};
use crate::alerts::Notifier;
use crate::health::{ProbeReport, Probes};
use crate::resources::{self, Usage};

/// Bounds of the sampling interval.
const MIN_SAMPLE_EVERY: Duration = Duration::from_millis(100);
const MAX_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Usage per program (`None` for a tree that was gone).
type Samples = Vec<(String, Option<Usage>)>;

/// What the supervisor loop must do after a happening.
#[derive(Debug)]
pub(super) enum Effect {
    /// Publish this event (and it has been logged already).
    Event(Event),
    /// Restart the program, an automatic restart for `cause`.
    Restart { program: String, cause: String },
    /// A program became ready or stopped being ready: see what may start now.
    Readiness,
}

/// Something [`Observers::next`] waited for.
pub(super) enum Happening {
    Probe(ProbeReport),
    /// Time to take a resource sample.
    SampleDue,
    /// A sample is done.
    Sampled(Samples),
    /// Time may have changed what an alert rule says.
    AlertsDue,
}

/// Health of one program with a check.
struct ProgramHealth {
    spec: HealthSpec,
    check: HealthCheck,
    /// Counts the program's runs; probe reports of an earlier run are stale.
    run: u64,
}

pub(super) struct Observers {
    started_at: SystemTime,
    health: BTreeMap<String, ProgramHealth>,
    probes: Probes,
    /// Where probe tasks report.
    probe_reports: mpsc::UnboundedReceiver<ProbeReport>,
    /// Programs with `max_memory`.
    guards: BTreeMap<String, MemoryGuard>,
    /// Of those, the ones above their limit now (to report when they are back under).
    over: BTreeSet<String>,
    /// Programs that are running now.
    up: BTreeSet<String>,
    sample_every: Option<Duration>,
    next_sample: Option<Instant>,
    /// The sample being taken, on a blocking thread.
    sampling: Option<JoinHandle<Samples>>,
    alerts: Evaluator,
    alerts_due: Option<Instant>,
    notifier: Notifier,
    /// The restart count last seen per program: an increase is an automatic restart.
    restarts_seen: BTreeMap<String, u64>,
    reloads_applied: u64,
    reloads_rejected: u64,
}

impl Observers {
    pub(super) fn new(config: &Config) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut o = Observers {
            started_at: SystemTime::now(),
            health: BTreeMap::new(),
            probes: Probes::new(tx),
            probe_reports: rx,
            guards: BTreeMap::new(),
            over: BTreeSet::new(),
            up: BTreeSet::new(),
            sample_every: None,
            next_sample: None,
            sampling: None,
            alerts: Evaluator::new(config.alerts.clone()),
            alerts_due: None,
            notifier: Notifier::new(&config.alerts, &config_dir(config)),
            restarts_seen: BTreeMap::new(),
            reloads_applied: 0,
            reloads_rejected: 0,
        };
        o.sample_every = sample_every(config);
        o
    }

    /// A program (new, or replaced by a reload) to watch. It starts Stopped.
    pub(super) fn add_program(&mut self, spec: &ProgramSpec) {
        if let Some(check) = &spec.health {
            let ph = ProgramHealth { spec: (**check).clone(), check: HealthCheck::new(check), run: 0 };
            self.health.insert(spec.name.clone(), ph);
        }
        if let Some(limit) = spec.max_memory {
            self.guards.insert(spec.name.clone(), MemoryGuard::new(limit, spec.memory_grace));
        }
    }

    /// A program removed (or about to be replaced) by a reload: forget it; its alerts resolve.
    pub(super) fn forget(&mut self, name: &str) -> Vec<Effect> {
        self.probes.stop(name);
        self.health.remove(name);
        self.guards.remove(name);
        self.over.remove(name);
        self.up.remove(name);
        self.restarts_seen.remove(name);
        let notes = self.alerts.forget(name);
        let mut fx = Vec::new();
        self.notify(notes, &mut fx);
        fx
    }

    /// A reload was applied: new alert rules, new sampling needs. Programs were already
    /// forgotten and added one by one. The first rules start from every program's status
    /// now (nothing is kept for alerts while there are none).
    pub(super) fn reconfigure(
        &mut self,
        config: &Config,
        programs: &BTreeMap<String, ProgramHandle>,
    ) -> Vec<Effect> {
        self.reloads_applied += 1;
        self.sample_every = sample_every(config);
        let mut fx = Vec::new();
        if self.alerts.rules() != config.alerts.as_slice() {
            let first = self.alerts.rules().is_empty();
            self.notifier.set_rules(&config.alerts, &config_dir(config));
            let mut notes = self.alerts.set_rules(config.alerts.clone(), now_std());
            if config.alerts.is_empty() {
                self.restarts_seen.clear();
            } else if first {
                for (name, handle) in programs {
                    let status = handle.status();
                    self.restarts_seen.insert(name.clone(), status.restarts);
                    notes.extend(self.alerts.observe(name, Observation::State(status.state), now_std()));
                    if let Some(health) = self.health(name) {
                        notes.extend(self.alerts.observe(name, Observation::Health(health), now_std()));
                    }
                }
            }
            self.notify(notes, &mut fx);
        }
        self.rearm_sampling();
        fx
    }

    pub(super) fn reload_rejected(&mut self) {
        self.reloads_rejected += 1;
    }

    /// `None` when the program has no health check.
    pub(super) fn health(&self, name: &str) -> Option<Health> {
        self.health.get(name).map(|h| h.check.health())
    }

    /// Whether a running program is ready: it has no health check, or it passed.
    pub(super) fn is_ready(&self, name: &str) -> bool {
        self.health(name).is_none_or(|h| h == Health::Healthy)
    }

    /// Every state change of every program goes through here.
    pub(super) fn on_state(&mut self, spec: &ProgramSpec, notice: &Notice) -> Vec<Effect> {
        let now = now_std();
        let name = notice.program.to_string();
        let to = notice.change.to;
        let mut fx = Vec::new();

        let mut notes = Vec::new();
        // Without alert rules there is nothing to evaluate, and nothing kept per program.
        if !self.alerts.rules().is_empty() {
            notes = self.alerts.observe(&name, Observation::State(to), now);
            let seen = self.restarts_seen.insert(name.clone(), notice.status.restarts).unwrap_or(0);
            for _ in seen..notice.status.restarts {
                notes.extend(self.alerts.observe(&name, Observation::Restarted, now));
            }
        }

        let was_up = self.up.contains(&name);
        if to == State::Running && !was_up {
            self.up.insert(name.clone());
            if let Some(h) = self.health.get_mut(&name) {
                h.run += 1;
                let change = h.check.started(now);
                self.probes.start(spec, &h.spec, h.run);
                if let Some(change) = change {
                    self.health_changed(&name, change, "a new process started", &mut fx, &mut notes);
                }
            }
        } else if to != State::Running && was_up {
            self.up.remove(&name);
            self.probes.stop(&name);
            if let Some(change) = self.health.get_mut(&name).and_then(|h| h.check.stopped()) {
                self.health_changed(&name, change, &format!("the program is {to}"), &mut fx, &mut notes);
            }
            if let Some(guard) = self.guards.get_mut(&name) {
                guard.reset();
                self.over.remove(&name);
            }
            notes.extend(self.alerts.observe(&name, Observation::Memory(None), now));
        }
        self.rearm_sampling();
        self.notify(notes, &mut fx);
        fx
    }

    /// Wait for the next happening. Cancel-safe: the supervisor loop may drop it for another
    /// branch of its `select!` and call it again.
    pub(super) async fn next(&mut self) -> Happening {
        let sample_at = if self.sampling.is_none() { self.next_sample } else { None };
        tokio::select! {
            Some(report) = self.probe_reports.recv() => Happening::Probe(report),
            done = join(&mut self.sampling) => {
                self.sampling = None;
                Happening::Sampled(done)
            }
            () = sleep_until(sample_at) => {
                self.next_sample = None;
                Happening::SampleDue
            }
            () = sleep_until(self.alerts_due) => {
                self.alerts_due = None;
                Happening::AlertsDue
            }
        }
    }

    pub(super) fn on_happening(
        &mut self,
        h: Happening,
        programs: &BTreeMap<String, ProgramHandle>,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        match h {
            Happening::Probe(report) => self.on_probe(report, &mut fx),
            Happening::SampleDue => self.start_sample(programs),
            Happening::Sampled(samples) => self.on_sampled(samples, &mut fx),
            Happening::AlertsDue => {
                let notes = self.alerts.tick(now_std());
                self.notify(notes, &mut fx);
            }
        }
        fx
    }

    /// Every program's status with its health, and steward's own counters.
    /// `waiting_for(name)` is what the program waits for before it can start.
    pub(super) fn snapshot(
        &self,
        programs: &BTreeMap<String, ProgramHandle>,
        mut waiting_for: impl FnMut(&str) -> Vec<String>,
    ) -> Snapshot {
        let programs = programs
            .iter()
            .map(|(name, p)| ProgramSnapshot {
                name: name.clone(),
                status: p.status(),
                health: self.health(name),
                waiting_for: waiting_for(name),
                tree: p.tree(),
                log_open_failures: p.log_open_failures(),
                version: p.spec.release.clone(),
                max_memory: p.spec.max_memory,
            })
            .collect();
        Snapshot {
            programs,
            started_at: self.started_at,
            reloads_applied: self.reloads_applied,
            reloads_rejected: self.reloads_rejected,
            alerts_firing: self.alerts.firing().map(|(a, p)| (a.to_owned(), p.to_owned())).collect(),
            groups: Vec::new(),
        }
    }

    fn on_probe(&mut self, report: ProbeReport, fx: &mut Vec<Effect>) {
        let now = now_std();
        let name = report.program.to_string();
        let Some(h) = self.health.get_mut(&name) else { return };
        if h.run != report.run || !h.check.is_probing() {
            return; // from a process that is gone
        }
        let result = report.result;
        tracing::debug!(program = %name, event = "probe", passed = result.passed, "health probe: {}", result.detail);
        let step = h.check.observe(result.passed, now);
        let failures = h.check.failures();
        let restart = step.restart;
        let mut notes = Vec::new();
        if let Some(change) = step.change {
            let why = match change.to {
                Health::Unhealthy => {
                    format!("{failures} failed probes in a row, the last: {}", result.detail)
                }
                _ => result.detail.clone(),
            };
            self.health_changed(&name, change, &why, fx, &mut notes);
        }
        if restart {
            fx.push(Effect::Restart { program: name, cause: "unhealthy".into() });
        }
        self.notify(notes, fx);
    }

    fn health_changed(
        &mut self,
        name: &str,
        change: HealthChange,
        why: &str,
        fx: &mut Vec<Effect>,
        notes: &mut Vec<Notification>,
    ) {
        let (from, to) = (change.from.name(), change.to.name());
        let restarting = change.to == Health::Unhealthy
            && self.health.get(name).is_some_and(|h| h.spec.on_unhealthy == OnUnhealthy::Restart);
        let message = if restarting {
            format!("{to}: {why}; restarting (on_unhealthy)")
        } else {
            format!("{to}: {why}")
        };
        match change.to {
            Health::Unhealthy => tracing::warn!(program = %name, event = "health", from, to, "{message}"),
            _ => tracing::info!(program = %name, event = "health", from, to, "{message}"),
        }
        let kind = EventKind::Health { from: change.from, to: change.to, message };
        fx.push(Effect::Event(Event::now(Arc::from(name), kind)));
        fx.push(Effect::Readiness);
        notes.extend(self.alerts.observe(name, Observation::Health(change.to), now_std()));
    }

    /// Whether the resources of `name` are wanted: it has `max_memory` or a memory alert
    /// covers it.
    fn wants_sample(&self, name: &str) -> bool {
        self.guards.contains_key(name)
            || self.alerts.rules().iter().any(|r| {
                matches!(r.when, Condition::MemoryAbove(_))
                    && (r.programs.is_empty()
                        || r.programs.iter().any(|p| p == steward_core::config::group_of(name)))
            })
    }

    /// Arm the sample timer if a running program wants samples, disarm it if none does.
    fn rearm_sampling(&mut self) {
        // Nothing configured asks for samples: no need to look at every running program
        // (this runs at every state change of every program).
        let wanted = resources::SUPPORTED
            && self.sample_every.is_some()
            && self.up.iter().any(|n| self.wants_sample(n));
        match (wanted, self.sample_every) {
            (true, Some(every)) => {
                if self.next_sample.is_none() && self.sampling.is_none() {
                    self.next_sample = Some(Instant::now() + every);
                }
            }
            _ => self.next_sample = None,
        }
    }

    fn start_sample(&mut self, programs: &BTreeMap<String, ProgramHandle>) {
        let (names, trees): (Vec<String>, Vec<_>) = self
            .up
            .iter()
            .filter(|n| self.wants_sample(n))
            .filter_map(|n| Some((n.clone(), programs.get(n)?.tree()?)))
            .unzip();
        if names.is_empty() {
            self.rearm_sampling();
            return;
        }
        self.sampling = Some(tokio::task::spawn_blocking(move || {
            names.into_iter().zip(resources::sample(&trees)).collect()
        }));
    }

    fn on_sampled(&mut self, samples: Samples, fx: &mut Vec<Effect>) {
        let now = now_std();
        let mut notes = Vec::new();
        for (name, usage) in samples {
            if !self.up.contains(&name) {
                continue; // it went down while the sample was taken
            }
            let rss = usage.map(|u| u.rss_bytes);
            notes.extend(self.alerts.observe(&name, Observation::Memory(rss), now));
            let (Some(guard), Some(rss)) = (self.guards.get_mut(&name), rss) else { continue };
            let (limit, grace) = (format_bytes(guard.limit()), humantime::format_duration(guard.grace()));
            let used = format_bytes(rss);
            match guard.observe(rss, now) {
                MemoryVerdict::Under => {
                    if self.over.remove(&name) {
                        let message = format!("memory {used} is back under max_memory {limit}");
                        tracing::info!(program = %name, event = "limit", "{message}");
                        fx.push(Effect::Event(limit_event(&name, message)));
                    }
                }
                MemoryVerdict::Over { .. } => {
                    if self.over.insert(name.clone()) {
                        let message = format!(
                            "memory {used} is above max_memory {limit}; restarting if it stays above for {grace}"
                        );
                        tracing::warn!(program = %name, event = "limit", "{message}");
                        fx.push(Effect::Event(limit_event(&name, message)));
                    }
                }
                MemoryVerdict::Restart { .. } => {
                    self.over.remove(&name);
                    let message = format!(
                        "memory limit: {used} has stayed above max_memory {limit} for {grace}; restarting"
                    );
                    tracing::warn!(program = %name, event = "limit", "{message}");
                    fx.push(Effect::Event(limit_event(&name, message)));
                    fx.push(Effect::Restart { program: name.clone(), cause: "memory limit".into() });
                }
            }
        }
        self.rearm_sampling();
        self.notify(notes, fx);
    }

    /// Log, publish and send alert notifications, then re-arm the alert timer.
    fn notify(&mut self, notes: Vec<Notification>, fx: &mut Vec<Effect>) {
        for n in notes {
            let condition = self
                .alerts
                .rules()
                .iter()
                .find(|r| r.name == n.alert)
                .map(|r| r.when.to_string())
                .unwrap_or_default();
            let status = n.status.name();
            let repeat = if n.repeat { " (repeat)" } else { "" };
            let message = format!("alert {} {status}{repeat}: {}", n.alert, n.message);
            match n.status {
                AlertStatus::Firing => {
                    tracing::warn!(program = %n.program, event = "alert", alert = %n.alert, "{message}")
                }
                AlertStatus::Resolved => {
                    tracing::info!(program = %n.program, event = "alert", alert = %n.alert, "{message}")
                }
            }
            let kind = EventKind::Alert { status: n.status, message };
            fx.push(Effect::Event(Event::now(Arc::from(n.program.as_str()), kind)));
            self.notifier.send(&n, condition);
        }
        let now = now_std();
        self.alerts_due =
            self.alerts.next_deadline(now).map(|t| Instant::now() + t.saturating_duration_since(now));
    }
}

impl super::Supervisor {
    /// Something an observer waited for happened.
    pub(super) fn on_observed(&mut self, happening: Happening) {
        let effects = self.observe.on_happening(happening, &self.programs);
        self.apply(effects);
        self.check_switches();
    }

    /// Carry out what the observers decided.
    pub(super) fn apply(&mut self, effects: Vec<Effect>) {
        let mut readiness = false;
        for effect in effects {
            match effect {
                Effect::Event(record) => self.push_event(record),
                Effect::Restart { program, cause } => {
                    if let (Some(p), false) = (self.programs.get(&program), self.shutting_down) {
                        p.send(steward_core::fsm::Event::AutoRestart { cause });
                    }
                }
                Effect::Readiness => readiness = true,
            }
        }
        if readiness {
            self.dispatch();
            if !self.shutting_down {
                self.status.update(&self.states, None);
            }
        }
    }

    /// A program's state as the dependency scheduler sees it.
    pub(super) fn view(&self, name: &str) -> Option<State> {
        ready_view(&self.states, &self.observe, name)
    }
}

/// Running means ready to the scheduler: a running program whose health check has not
/// passed (yet) shows as Starting, so what depends on it waits.
pub(super) fn ready_view(states: &BTreeMap<String, State>, observe: &Observers, name: &str) -> Option<State> {
    match states.get(name).copied() {
        Some(State::Running) if !observe.is_ready(name) => Some(State::Starting),
        other => other,
    }
}

/// A note about a program's memory limit.
fn limit_event(program: &str, message: String) -> Event {
    Event::now(Arc::from(program), EventKind::Limit { message })
}

/// How often to sample, if anything ever needs it.
fn sample_every(config: &Config) -> Option<Duration> {
    let limits = config
        .programs
        .values()
        .filter(|p| p.max_memory.is_some())
        .map(|p| (p.memory_grace / 4).clamp(MIN_SAMPLE_EVERY, MAX_SAMPLE_EVERY));
    let alerts = config.alerts.iter().filter(|a| a.when.needs_memory()).map(|_| MAX_SAMPLE_EVERY);
    limits.chain(alerts).min()
}

fn config_dir(config: &Config) -> std::path::PathBuf {
    config.source.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
}

/// The runtime's clock as the pure core takes it (a paused tokio clock in tests).
fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The result of the blocking sample, or never when none runs. A sample that panicked
/// counts as empty.
async fn join(task: &mut Option<JoinHandle<Samples>>) -> Samples {
    match task {
        Some(t) => t.await.unwrap_or_default(),
        None => std::future::pending().await,
    }
}
