//! The boot counter: what a starting daemon does about a self-update in flight
//! (`pending.json`), from `daemon::run_with`.
//!
//! - No record: nothing to do (on Windows, leftover `steward.exe.old-*` files are deleted).
//! - A record for another version than this one: the old binary runs again (a rollback, or
//!   a swap that never happened, or was killed before its rename): the record is cleared.
//! - A record for this version: one more attempt is counted (and saved before anything can
//!   fail). Beyond [`MAX_ATTEMPTS`], the backup is put back over the recorded `exe` (the
//!   installed path, never this process's own, which may be a wrapper), the version is
//!   quarantined, and the restored binary runs: on Unix this process execs it (same pid, so the
//!   service manager sees one start going on, and its start limit is not spent); on Windows
//!   the service fails, and the SCM's failure actions start it.
//!   Otherwise the daemon runs, and confirms the update once startup has settled (the moment
//!   it tells systemd READY=1 or the SCM RUNNING): the record is removed, the backup kept.
//!   A watchdog thread ends the process if, within `confirm_within`, the supervisor has not
//!   even dispatched the autostart programs: a hung start is a failed start. Programs still
//!   on their way up at the deadline do not fail steward (a program slow to start is not
//!   steward's fault, and a rollback would not help it): the update is confirmed then, with
//!   a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use steward_core::config::Config;
use steward_core::fsm::State;

use super::pending::{self, Pending};
use crate::service::status::{Manager, Msg, Notifier};
use crate::supervise::StatusSink;

/// Starts of a new binary that may fail before it is rolled back.
pub const MAX_ATTEMPTS: u32 = 2;

/// A new binary on probation: confirmed by [`confirm_when_settled`]'s sink or the watchdog.
pub struct Boot {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    pending: Pending,
    stage: Mutex<Stage>,
    changed: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Stage {
    Starting,
    /// The supervisor dispatched the autostart programs.
    Dispatched,
    Confirmed,
}

/// The new binary failed to start [`MAX_ATTEMPTS`] times and the old one was put back.
#[derive(Debug, thiserror::Error)]
#[error(
    "steward {to} failed to start {attempts} times after `steward self-update`: the previous binary \
     ({from}) was restored at {}, and {to} is quarantined ({}); exiting so the service manager starts it",
    exe.display(), quarantined.display()
)]
pub struct RolledBack {
    pub from: String,
    pub to: String,
    pub attempts: u32,
    pub exe: PathBuf,
    pub quarantined: PathBuf,
}

/// The boot counter step at daemon startup, for the state folder `state_dir`.
pub fn at_startup(state_dir: &Path, config: &Path) -> anyhow::Result<Option<Boot>> {
    let dir = super::dir(state_dir);
    let mine = super::running_version();
    if let Ok(exe) = std::env::current_exe() {
        for removed in super::swap::sweep(&exe) {
            tracing::info!(
                event = "self-update",
                "removed {}, left by an earlier self-update",
                removed.display()
            );
        }
    }
    let boot = match pending::read(&dir) {
        Ok(None) => None,
        Err(e) => {
            tracing::error!(event = "self-update", "{e}; ignoring it");
            let _ = std::fs::rename(dir.join(pending::PENDING), dir.join("pending.json.damaged"));
            None
        }
        Ok(Some(p)) if p.to != mine => {
            let what = if p.from == mine { "the previous binary runs" } else { "another binary runs" };
            tracing::warn!(
                event = "self-update",
                "the self-update from {} to {} (step {}) did not take: {what} (steward {mine}); clearing it",
                p.from,
                p.to,
                p.step.name()
            );
            super::swap::sweep(&p.exe);
            pending::remove(&dir)?;
            None
        }
        Ok(Some(mut p)) => {
            p.attempts += 1;
            if p.attempts > MAX_ATTEMPTS {
                let failed = roll_back(&dir, &p);
                if failed.is::<RolledBack>() {
                    // Unix: become the restored binary at once (same pid: the service manager
                    // sees its start go on, and no restart counts against its start limit).
                    // Where that is not possible, exiting makes the manager start it.
                    reexec(&p.exe);
                }
                return Err(failed);
            }
            pending::write(&dir, &p)?;
            tracing::info!(
                event = "self-update",
                "steward {mine} starting after a self-update from {} (attempt {} of {MAX_ATTEMPTS}); \
                 it is confirmed once startup settles",
                p.from,
                p.attempts
            );
            let confirm_within = match super::settings::read(config) {
                Ok(s) => s.confirm_within,
                Err(e) => {
                    tracing::warn!(event = "self-update", "{e}; confirming within the default");
                    super::settings::CONFIRM_WITHIN
                }
            };
            let shared = Arc::new(Shared {
                dir,
                pending: p,
                stage: Mutex::new(Stage::Starting),
                changed: Condvar::new(),
            });
            spawn_watchdog(shared.clone(), confirm_within)?;
            Some(Boot { shared })
        }
    };
    if super::test_hook("STEWARD_TEST_CRASH_AT_START").as_deref() == Some("1") {
        panic!("STEWARD_TEST_CRASH_AT_START=1: crashing right after the boot counter");
    }
    Ok(boot)
}

/// Puts the backup back over the recorded exe and quarantines the version. The error is what
/// the daemon fails with (or, when the restore itself failed, says so).
fn roll_back(dir: &Path, p: &Pending) -> anyhow::Error {
    tracing::error!(
        event = "self-update",
        "steward {} failed to start {} times; restoring {} from {}",
        p.to,
        p.attempts - 1,
        p.exe.display(),
        p.backup.display()
    );
    if let Err(e) = super::swap::replace(&p.backup, &p.exe, &p.to) {
        // The record stays: the next start tries the restore again.
        let _ = pending::write(dir, p);
        return anyhow::Error::new(e).context(format!(
            "cannot restore steward {} after its update to {} failed; copy {} over {} by hand",
            p.from,
            p.to,
            p.backup.display(),
            p.exe.display()
        ));
    }
    if let Err(e) = pending::quarantine(dir, &p.to) {
        tracing::error!(event = "self-update", "{e}");
    }
    if let Err(e) = pending::remove(dir) {
        tracing::error!(event = "self-update", "{e}");
    }
    RolledBack {
        from: p.from.clone(),
        to: p.to.clone(),
        attempts: p.attempts - 1,
        exe: p.exe.clone(),
        quarantined: dir.join(pending::QUARANTINED),
    }
    .into()
}

/// Replaces this process with `exe`, with the same arguments (returns only when that failed,
/// after logging why). The debug-only test hooks set for the failed binary are not passed on.
#[cfg(unix)]
fn reexec(exe: &Path) {
    use std::os::unix::process::CommandExt as _;
    tracing::info!(event = "self-update", "running the restored {} in this process", exe.display());
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for hook in ["STEWARD_TEST_VERSION", "STEWARD_TEST_CRASH_AT_START"] {
        cmd.env_remove(hook);
    }
    // Every descriptor steward opened is close-on-exec (Rust's default), the instance lock's
    // too: the restored binary takes the lock again.
    let e = cmd.exec();
    tracing::error!(event = "self-update", "cannot run the restored {}: {e}; exiting instead", exe.display());
}

/// Windows cannot replace a process image: the service fails, and the SCM's failure actions
/// start the restored binary.
#[cfg(not(unix))]
fn reexec(_exe: &Path) {}

impl Shared {
    /// Moves to `stage` (never back); confirms when it is [`Stage::Confirmed`].
    fn reach(&self, stage: Stage, why: &str) {
        let mut now = self.stage.lock().unwrap_or_else(|p| p.into_inner());
        if *now >= stage {
            return;
        }
        *now = stage;
        if stage == Stage::Confirmed {
            match pending::remove(&self.dir) {
                Ok(()) => tracing::info!(
                    event = "self-update",
                    "steward {} confirmed ({why}); the previous binary stays at {}",
                    self.pending.to,
                    self.pending.backup.display()
                ),
                Err(e) => tracing::error!(event = "self-update", "cannot confirm the self-update: {e}"),
            }
        }
        self.changed.notify_all();
    }
}

/// The watchdog: waits (on a condition variable, not a poll) until confirmed or
/// `confirm_within` has passed.
fn spawn_watchdog(shared: Arc<Shared>, confirm_within: Duration) -> anyhow::Result<()> {
    std::thread::Builder::new().name("self-update-watchdog".into()).spawn(move || {
        let stage = shared.stage.lock().unwrap_or_else(|p| p.into_inner());
        let (stage, _) = shared
            .changed
            .wait_timeout_while(stage, confirm_within, |s| *s != Stage::Confirmed)
            .unwrap_or_else(|p| p.into_inner());
        let stage = *stage;
        match stage {
            Stage::Confirmed => {}
            Stage::Dispatched => shared.reach(
                Stage::Confirmed,
                &format!(
                    "the supervisor runs, but startup had not settled within {}s: see `steward status`",
                    confirm_within.as_secs()
                ),
            ),
            Stage::Starting => {
                tracing::error!(
                    event = "self-update",
                    "steward {} did not get its programs started within {}s of starting; exiting so \
                         the service manager starts it again (attempt {} of {MAX_ATTEMPTS})",
                    shared.pending.to,
                    confirm_within.as_secs(),
                    shared.pending.attempts
                );
                // A hang is a failed start: only leaving the process tells the manager.
                std::process::exit(1);
            }
        }
    })?;
    Ok(())
}

/// `status` as the supervisor's sink, and beside it the confirmation of `boot` (if any) once
/// startup has settled: the same moment as READY=1 ([`Notifier`] decides it).
pub fn confirm_when_settled(
    boot: Option<Boot>,
    status: Box<dyn StatusSink>,
    config: &Config,
) -> Box<dyn StatusSink> {
    match boot {
        None => status,
        Some(boot) => {
            let settled = Notifier::new(config, Some(Arc::new(Settled(boot.shared.clone()))));
            Box::new(Confirming { status, settled, shared: boot.shared })
        }
    }
}

struct Confirming {
    status: Box<dyn StatusSink>,
    settled: Notifier,
    shared: Arc<Shared>,
}

impl StatusSink for Confirming {
    fn update(&mut self, states: &BTreeMap<String, State>, changed: Option<&str>) {
        self.status.update(states, changed);
        self.shared.reach(Stage::Dispatched, "dispatched");
        self.settled.update(states, changed);
    }

    fn stopping(&mut self) {
        self.status.stopping();
    }
}

/// The notifier's "ready" moment, as the confirmation.
struct Settled(Arc<Shared>);

impl Manager for Settled {
    fn send(&self, msgs: &[Msg<'_>]) {
        if msgs.contains(&Msg::Ready) {
            self.0.reach(Stage::Confirmed, "startup settled");
        }
    }
}
