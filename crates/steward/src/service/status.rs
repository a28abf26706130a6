//! steward telling its service manager how it is doing: the supervisor's status sink
//! ([`crate::supervise::StatusSink`]), which `daemon` hands to the supervisor.
//!
//! Under systemd it speaks the sd_notify protocol (`Type=notify` units). systemd passes `NOTIFY_SOCKET` (and, with `WatchdogSec=`, `WATCHDOG_USEC` and
//! `WATCHDOG_PID`) to the service. steward then sends:
//! - `READY=1`, once every autostart program has come up (reached `running` once), or has
//!   settled without coming up: it exited for good, went fatal, or waits on a dependency that
//!   did. `systemctl start` returns at that moment. With no autostart program, at once.
//! - `STATUS=...`, a one-line summary ("3 running, 1 fatal: flaky"), whenever it changes;
//!   `systemctl status` shows the last one.
//! - `STOPPING=1` when shutdown begins.
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, from a task on the supervisor's own (single)
//!   runtime thread: if that thread hangs, the pings stop and systemd restarts steward.
//!
//! Without `NOTIFY_SOCKET` every call returns at once and no watchdog task exists, so steward
//! run by hand or by another init pays nothing. Programs never inherit these variables (the
//! program task removes them from each program's environment).
//!
//! On Windows the same moments go to the Service Control Manager instead, when steward runs
//! as a service: the service host (`host/windows.rs`) makes a [`Notifier`] with itself as the
//! [`Manager`]. `READY=1` is when the service reports RUNNING, `STATUS=` changes advance its
//! START_PENDING checkpoint, and `STOPPING=1` is STOP_PENDING. There is no watchdog there.

use std::collections::{BTreeMap, BTreeSet};

use steward_core::config::Config;
use steward_core::fsm::State;
use tokio::task::JoinHandle;

use crate::supervise::StatusSink;

/// One assignment of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    Ready,
    Stopping,
    Status(&'a str),
    Watchdog,
}

/// A service manager that listens: it is told each batch of assignments.
pub trait Manager: Send + Sync {
    fn send(&self, msgs: &[Msg<'_>]);
}

/// steward's side of the protocol, owned by the supervisor loop.
pub struct Notifier {
    /// Who listens: systemd (`NOTIFY_SOCKET` was set when steward started), the SCM, or
    /// nobody.
    manager: Option<std::sync::Arc<dyn Manager>>,
    /// Until `READY=1` is sent: the autostart programs still on their way up.
    startup: Option<BTreeSet<String>>,
    deps: BTreeMap<String, Vec<String>>,
    /// The last `STATUS=` sent, to send only changes.
    last_status: String,
    /// The watchdog pings; aborted when the notifier is dropped.
    watchdog: Option<JoinHandle<()>>,
}

impl Notifier {
    /// systemd, if it passed `NOTIFY_SOCKET` (read once, here); otherwise nobody. Must be
    /// called inside the supervisor's tokio runtime (it starts the watchdog task when systemd
    /// asked for one).
    pub fn from_env(config: &Config) -> Notifier {
        let systemd = systemd();
        let watchdog = if systemd.is_some() { watchdog_period() } else { None };
        match (config.supervisor.watchdog, systemd.is_some(), watchdog) {
            (Some(_), true, None) => tracing::warn!(
                event = "watchdog",
                "`watchdog` is set in the config, but this unit has no WatchdogSec; install the service \
                 again (`steward service install`) so that systemd watches steward"
            ),
            (Some(_), false, _) => tracing::debug!(
                event = "watchdog",
                "`watchdog` has no effect: steward is not running as a systemd service"
            ),
            _ => {}
        }
        let mut notifier = Notifier::new(config, systemd);
        if let (Some(period), Some(manager)) = (watchdog, &notifier.manager) {
            notifier.watchdog = Some(tokio::spawn(ping(period, manager.clone())));
        }
        notifier
    }

    /// Report to `manager` (nobody with `None`), without a watchdog.
    pub fn new(config: &Config, manager: Option<std::sync::Arc<dyn Manager>>) -> Notifier {
        let startup = config.programs.values().filter(|p| p.autostart).map(|p| p.name.clone()).collect();
        Notifier {
            manager,
            startup: Some(startup),
            deps: config.programs.iter().map(|(n, p)| (n.clone(), p.depends_on.clone())).collect(),
            last_status: String::new(),
            watchdog: None,
        }
    }

    fn send(&self, msgs: &[Msg<'_>]) {
        if let Some(manager) = &self.manager {
            manager.send(msgs);
        }
    }
}

impl StatusSink for Notifier {
    /// After every state change: `READY=1` once startup has settled, `STATUS=` when the
    /// summary changed.
    fn update(&mut self, states: &BTreeMap<String, State>) {
        if self.manager.is_none() {
            return;
        }
        if let Some(waiting) = &mut self.startup {
            // Programs a reload removed are not waited for.
            waiting.retain(|n| states.get(n).is_some_and(|s| *s != State::Running));
            if waiting.iter().all(|n| gave_up(n, states, &self.deps)) {
                self.startup = None;
                let summary = summary(states);
                tracing::debug!(event = "sd-notify", "READY=1 ({summary})");
                self.send(&[Msg::Ready, Msg::Status(&summary)]);
                self.last_status = summary;
                return;
            }
        }
        let summary = match &self.startup {
            Some(_) => format!("starting: {}", summary(states)),
            None => summary(states),
        };
        if summary != self.last_status {
            self.send(&[Msg::Status(&summary)]);
            self.last_status = summary;
        }
    }

    /// Shutdown has begun.
    fn stopping(&mut self) {
        if self.manager.is_some() {
            self.send(&[Msg::Stopping, Msg::Status("stopping all programs")]);
            self.last_status = "stopping all programs".into();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.watchdog.take() {
            task.abort();
        }
    }
}

/// Whether `name` has settled without coming up: it ended for good, or it waits for a
/// dependency that did. (Running programs were taken out of the wait set before.)
fn gave_up(name: &str, states: &BTreeMap<String, State>, deps: &BTreeMap<String, Vec<String>>) -> bool {
    match states.get(name) {
        Some(State::Exited | State::Fatal) | None => true,
        Some(State::Stopped) => deps.get(name).is_some_and(|ds| {
            ds.iter().any(|d| states.get(d) != Some(&State::Running) && gave_up(d, states, deps))
        }),
        Some(_) => false,
    }
}

/// "3 running, 1 starting, 1 fatal: flaky": counts by state, in a fixed order, naming the
/// programs that are down against their will.
fn summary(states: &BTreeMap<String, State>) -> String {
    const ORDER: [State; 7] = [
        State::Running,
        State::Starting,
        State::Backoff,
        State::Stopping,
        State::Stopped,
        State::Exited,
        State::Fatal,
    ];
    let mut parts = Vec::new();
    for state in ORDER {
        let names: Vec<&str> = states.iter().filter(|(_, s)| **s == state).map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            continue;
        }
        if matches!(state, State::Fatal | State::Backoff) {
            parts.push(format!("{} {}: {}", names.len(), state.name(), names.join(" ")));
        } else {
            parts.push(format!("{} {}", names.len(), state.name()));
        }
    }
    if parts.is_empty() {
        "no programs".to_owned()
    } else {
        parts.join(", ")
    }
}

/// systemd, when it passed `NOTIFY_SOCKET`.
fn systemd() -> Option<std::sync::Arc<dyn Manager>> {
    #[cfg(unix)]
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        return Some(std::sync::Arc::new(Systemd));
    }
    None
}

/// Half the watchdog timeout systemd set for this process, as systemd's documentation
/// advises.
fn watchdog_period() -> Option<std::time::Duration> {
    #[cfg(unix)]
    return sd_notify::watchdog_enabled().map(|d| d / 2).filter(|d| !d.is_zero());
    #[cfg(not(unix))]
    return None;
}

async fn ping(period: std::time::Duration, manager: std::sync::Arc<dyn Manager>) {
    tracing::debug!(event = "watchdog", "sending WATCHDOG=1 every {period:?}");
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        manager.send(&[Msg::Watchdog]);
    }
}

/// systemd, over `NOTIFY_SOCKET`.
#[cfg(unix)]
struct Systemd;

#[cfg(unix)]
impl Manager for Systemd {
    fn send(&self, msgs: &[Msg<'_>]) {
        use sd_notify::NotifyState;
        let states: Vec<NotifyState<'_>> = msgs
            .iter()
            .map(|m| match *m {
                Msg::Ready => NotifyState::Ready,
                Msg::Stopping => NotifyState::Stopping,
                Msg::Status(s) => NotifyState::Status(s),
                Msg::Watchdog => NotifyState::Watchdog,
            })
            .collect();
        if let Err(e) = sd_notify::notify(&states) {
            tracing::debug!(event = "sd-notify", "cannot notify the service manager: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(pairs: &[(&str, State)]) -> BTreeMap<String, State> {
        pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn what_counts_as_given_up() {
        let d = deps(&[("db", &[]), ("web", &["db"]), ("edge", &["web"])]);
        // Still on its way: not settled.
        for s in [State::Stopped, State::Starting, State::Backoff] {
            assert!(!gave_up("db", &states(&[("db", s)]), &d), "{s:?}");
        }
        assert!(gave_up("db", &states(&[("db", State::Fatal)]), &d));
        assert!(gave_up("db", &states(&[("db", State::Exited)]), &d));
        // Waiting (transitively) on a fatal dependency: settled.
        let st = states(&[("db", State::Fatal), ("web", State::Stopped), ("edge", State::Stopped)]);
        assert!(gave_up("edge", &st, &d));
        // Waiting on one that is still starting: not settled.
        let st = states(&[("db", State::Starting), ("web", State::Stopped), ("edge", State::Stopped)]);
        assert!(!gave_up("edge", &st, &d));
    }

    #[test]
    fn summaries() {
        assert_eq!(summary(&states(&[])), "no programs");
        let st = states(&[
            ("a", State::Running),
            ("b", State::Running),
            ("c", State::Fatal),
            ("d", State::Backoff),
            ("e", State::Stopped),
        ]);
        assert_eq!(summary(&st), "2 running, 1 backoff: d, 1 stopped, 1 fatal: c");
    }
}
