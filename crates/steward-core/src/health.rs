//! The health of one program, decided from its probe results.
//!
//! Pure: the runtime runs the probes (`steward::health`) and feeds each result to
//! [`HealthCheck::observe`] with the current time; the check answers with the change of
//! health, if any, and whether the program must be restarted. It never probes, sleeps or
//! reads the clock.
//!
//! ```text
//!            process up                 success
//!  (any) ───────────────▶ Unknown ───────────────▶ Healthy ◀──┐
//!                           │  ▲                     │        │ success
//!        `retries` failures │  │ process up          │        │
//!        in a row, after    ▼  │                     ▼        │
//!        start_period     Unhealthy ◀─────────── `retries` failures in a row
//! ```
//!
//! - Failures during `start_period` (counted from the process start) do not count, so a
//!   slow starter is not restarted before it had a chance. A success ends the start period
//!   early: from then on every failure counts (as Docker does).
//! - One success is enough to be Healthy and clears the failure count.
//! - The restart (with `on_unhealthy = "restart"`) is asked for once, when the program turns
//!   Unhealthy; the new process starts over as Unknown.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{HealthSpec, OnUnhealthy};

/// What `status`, events and metrics show for a program with a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    /// Not probed yet since the process started (or no process runs).
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub const ALL: [Health; 3] = [Health::Unknown, Health::Healthy, Health::Unhealthy];

    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A change of health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub from: Health,
    pub to: Health,
}

/// What one probe result means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthStep {
    pub change: Option<HealthChange>,
    /// Restart the program now (it just turned Unhealthy and `on_unhealthy = "restart"`).
    pub restart: bool,
}

/// The health state of one program.
#[derive(Clone, Debug)]
pub struct HealthCheck {
    retries: u32,
    start_period: Duration,
    on_unhealthy: OnUnhealthy,
    health: Health,
    /// Failures in a row that counted (outside the start period).
    failures: u32,
    /// A probe passed since the process started: the start period is over early.
    passed_once: bool,
    /// When the current process started; `None` while no process runs.
    up_since: Option<Instant>,
}

impl HealthCheck {
    pub fn new(spec: &HealthSpec) -> Self {
        HealthCheck {
            retries: spec.retries.max(1),
            start_period: spec.start_period,
            on_unhealthy: spec.on_unhealthy,
            health: Health::Unknown,
            failures: 0,
            passed_once: false,
            up_since: None,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Failures in a row so far (for messages).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether probes should run: a process is up.
    pub fn is_probing(&self) -> bool {
        self.up_since.is_some()
    }

    /// A new process is up: start over as Unknown.
    pub fn started(&mut self, now: Instant) -> Option<HealthChange> {
        self.up_since = Some(now);
        self.failures = 0;
        self.passed_once = false;
        self.go(Health::Unknown)
    }

    /// The process is gone: nothing to probe, health Unknown.
    pub fn stopped(&mut self) -> Option<HealthChange> {
        self.up_since = None;
        self.failures = 0;
        self.go(Health::Unknown)
    }

    /// One probe result. Results while no process is up are stale and ignored.
    pub fn observe(&mut self, passed: bool, now: Instant) -> HealthStep {
        let Some(up_since) = self.up_since else { return HealthStep::default() };
        if passed {
            self.failures = 0;
            self.passed_once = true;
            return HealthStep { change: self.go(Health::Healthy), restart: false };
        }
        if !self.passed_once && now.saturating_duration_since(up_since) < self.start_period {
            return HealthStep::default();
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < self.retries || self.health == Health::Unhealthy {
            return HealthStep::default();
        }
        let change = self.go(Health::Unhealthy);
        HealthStep { change, restart: self.on_unhealthy == OnUnhealthy::Restart }
    }

    fn go(&mut self, to: Health) -> Option<HealthChange> {
        let from = std::mem::replace(&mut self.health, to);
        (from != to).then_some(HealthChange { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Probe;
    use Health::*;

    fn spec(retries: u32, start_period: Duration, on_unhealthy: OnUnhealthy) -> HealthSpec {
        HealthSpec {
            probe: Probe::Tcp { host: "127.0.0.1".into(), port: 1 },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries,
            start_period,
            on_unhealthy,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Probe results (seconds after the start, passed) and the health after each, with
    /// whether a restart was asked for.
    #[test]
    fn health_table() {
        struct Case {
            retries: u32,
            start_period: u64,
            restart: OnUnhealthy,
            results: &'static [(u64, bool, Health, bool)],
        }
        #[rustfmt::skip]
        let cases = [
            // One success is enough; failures below `retries` change nothing.
            Case { retries: 3, start_period: 0, restart: OnUnhealthy::None, results: &[
                (0, false, Unknown, false), (1, true, Healthy, false), (2, false, Healthy, false),
                (3, false, Healthy, false), (4, false, Unhealthy, false), (5, false, Unhealthy, false),
                (6, true, Healthy, false),
            ]},
            // A success in between resets the count.
            Case { retries: 2, start_period: 0, restart: OnUnhealthy::Restart, results: &[
                (0, true, Healthy, false), (1, false, Healthy, false), (2, true, Healthy, false),
                (3, false, Healthy, false), (4, false, Unhealthy, true),
                // Asked once: still failing does not ask again.
                (5, false, Unhealthy, false),
            ]},
            // Failures inside start_period do not count; a success there does.
            Case { retries: 1, start_period: 10, restart: OnUnhealthy::Restart, results: &[
                (0, false, Unknown, false), (9, false, Unknown, false), (10, false, Unhealthy, true),
            ]},
            Case { retries: 1, start_period: 10, restart: OnUnhealthy::Restart, results: &[
                (2, true, Healthy, false), (5, false, Unhealthy, true),
            ]},
            // Unknown straight to Unhealthy, without ever passing.
            Case { retries: 2, start_period: 0, restart: OnUnhealthy::None, results: &[
                (0, false, Unknown, false), (1, false, Unhealthy, false),
            ]},
        ];
        for (i, case) in cases.iter().enumerate() {
            let t0 = Instant::now();
            let mut h = HealthCheck::new(&spec(case.retries, s(case.start_period), case.restart));
            h.started(t0);
            for &(at, passed, want, restart) in case.results {
                let before = h.health();
                let step = h.observe(passed, t0 + s(at));
                assert_eq!((h.health(), step.restart), (want, restart), "case {i} at {at}s");
                let change = (before != want).then_some(HealthChange { from: before, to: want });
                assert_eq!(step.change, change, "case {i} at {at}s");
            }
        }
    }

    #[test]
    fn a_new_process_starts_over() {
        let t0 = Instant::now();
        let mut h = HealthCheck::new(&spec(1, s(0), OnUnhealthy::Restart));
        h.started(t0);
        assert!(h.observe(false, t0).restart);
        assert_eq!(h.stopped(), Some(HealthChange { from: Unhealthy, to: Unknown }));
        // Results while down are stale.
        assert_eq!(h.observe(true, t0), HealthStep::default());
        assert_eq!(h.health(), Unknown);
        assert_eq!(h.started(t0 + s(1)), None);
        assert!(h.is_probing());
        assert_eq!(h.observe(true, t0 + s(2)).change, Some(HealthChange { from: Unknown, to: Healthy }));
    }

    #[test]
    fn retries_of_zero_mean_one() {
        let t0 = Instant::now();
        let mut h = HealthCheck::new(&spec(0, s(0), OnUnhealthy::None));
        h.started(t0);
        h.observe(false, t0);
        assert_eq!(h.health(), Unhealthy);
    }
}
