//! steward telling its service manager how it is doing: the supervisor's status sink
//! ([`crate::supervise::StatusSink`]), which `daemon` hands to the supervisor.
//!
//! This file decides *when* and *what*; the protocols themselves are the `steward-service`
//! crate's. The moments:
//! - ready ([`Msg::Ready`]), once every autostart program has come up (reached `running`
//!   once), or has settled without coming up: it exited for good, went fatal, or waits on a
//!   dependency that did. With no autostart program, at once.
//! - a one-line summary ([`Msg::Status`], "3 running, 1 fatal: flaky"), whenever it changes,
//!   sent together with ready.
//! - stopping ([`Msg::Stopping`]) when shutdown begins.
//! - alive ([`Msg::Watchdog`]) every half `WATCHDOG_USEC`, from a task on the supervisor's own
//!   (single) runtime thread: if that thread hangs, the pings stop and systemd restarts steward.
//!
//! Under systemd (`Type=notify` units; systemd passes `NOTIFY_SOCKET` and, with
//! `WatchdogSec=`, `WATCHDOG_USEC`), these go out through `steward_service::systemd` as
//! `READY=1` + `STATUS=` in one message, `STATUS=`, `STOPPING=1` and `WATCHDOG=1`. `steward
//! run` keeps its own runtime and signal handling (`signals.rs`, SIGHUP in
//! `daemon/triggers.rs`), so it uses the crate's protocol alone rather than
//! `steward_service::run`, which would take SIGTERM, SIGINT and SIGHUP for itself: one owner
//! per signal.
//!
//! Without `NOTIFY_SOCKET` nothing is sent and no watchdog task exists, so steward run by hand
//! or by another init pays nothing. Programs never inherit these variables (the program task
//! removes them from each program's environment).
//!
//! On Windows the same moments go to the Service Control Manager instead, when steward runs
//! as a service: the service host (`host/windows.rs`, under `steward_service::run`) makes a
//! [`Notifier`] with itself as the [`Manager`], and ready becomes the crate's
//! `Context::ready` (RUNNING). There is no watchdog there.

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
        let (systemd, watchdog) = systemd().map_or((None, None), |(manager, period)| (Some(manager), period));
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
    fn update(&mut self, states: &BTreeMap<String, State>, changed: Option<&str>) {
        if self.manager.is_none() {
            return;
        }
        if let Some(waiting) = &mut self.startup {
            // Programs a reload removed are not waited for. Only the program that changed is
            // looked at when it is known: a look at every one waiting, at every change, made
            // starting 5,000 programs take 12 million lookups.
            let still = |n: &String| states.get(n).is_some_and(|s| *s != State::Running);
            match changed {
                Some(n) => {
                    if !waiting.get(n).is_none_or(still) {
                        waiting.remove(n);
                    }
                }
                None => waiting.retain(still),
            }
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
    /// Programs named per state, at most: a crash storm among thousands would otherwise make
    /// each `STATUS=` a list of them all, at each of their changes.
    const NAMED: usize = 5;
    // One pass over the programs, whatever their number.
    let mut counts = [0usize; ORDER.len()];
    let mut named: [Vec<&str>; ORDER.len()] = Default::default();
    for (name, state) in states {
        if let Some(i) = ORDER.iter().position(|s| s == state) {
            counts[i] += 1;
            if matches!(state, State::Fatal | State::Backoff) && named[i].len() < NAMED {
                named[i].push(name);
            }
        }
    }
    let mut parts = Vec::new();
    for (i, state) in ORDER.iter().enumerate() {
        let count = counts[i];
        if count == 0 {
            continue;
        }
        if named[i].is_empty() {
            parts.push(format!("{count} {}", state.name()));
        } else {
            let more = count - named[i].len();
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            parts.push(format!("{count} {}: {}{more}", state.name(), named[i].join(" ")));
        }
    }
    if parts.is_empty() {
        "no programs".to_owned()
    } else {
        parts.join(", ")
    }
}

/// systemd, when it passed `NOTIFY_SOCKET`, and how often it wants `WATCHDOG=1`.
#[cfg(unix)]
fn systemd() -> Option<(std::sync::Arc<dyn Manager>, Option<std::time::Duration>)> {
    let notify = steward_service::systemd::Notify::from_env()?;
    Some((std::sync::Arc::new(notify), notify.watchdog_period()))
}

/// Only Unix has systemd; the Windows service host hands its own [`Manager`] to
/// [`Notifier::new`].
#[cfg(not(unix))]
fn systemd() -> Option<(std::sync::Arc<dyn Manager>, Option<std::time::Duration>)> {
    None
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

/// systemd, through the crate's implementation of its protocol: each batch is one datagram.
#[cfg(unix)]
impl Manager for steward_service::systemd::Notify {
    fn send(&self, msgs: &[Msg<'_>]) {
        use steward_service::systemd::Message;
        let messages: Vec<Message<'_>> = msgs
            .iter()
            .map(|m| match *m {
                Msg::Ready => Message::Ready,
                Msg::Stopping => Message::Stopping,
                Msg::Status(s) => Message::Status(s),
                Msg::Watchdog => Message::Watchdog,
            })
            .collect();
        steward_service::systemd::Notify::send(self, &messages);
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
        let many: Vec<(String, State)> = (0..8).map(|i| (format!("p{i}"), State::Fatal)).collect();
        let many: BTreeMap<String, State> = many.into_iter().collect();
        assert_eq!(summary(&many), "8 fatal: p0 p1 p2 p3 p4 and 3 more");
    }
}
