//! Health probes: `http`, `tcp` and `exec`, run by one small task per program while its
//! process is up, and reported to the supervisor, which decides what they mean with the pure
//! `steward_core::health::HealthCheck`.
//!
//! Resources stay bounded however many programs have checks:
//! - a probe always ends by its `timeout` (`tokio::time::timeout` around the whole probe,
//!   connection and DNS included); an exec probe that overstays is killed with its whole
//!   process tree (`exec.rs`);
//! - at most [`MAX_CONCURRENT_PROBES`] probes run at once (a semaphore); a probe waiting for a
//!   slot has not started, so its timeout has not started either;
//! - the next probe is scheduled `interval` after the previous one *ended*, so a slow target
//!   never has two probes of the same program in flight;
//! - probe tasks never touch the supervisor's state: they send [`ProbeReport`]s on a channel,
//!   so a hung probe cannot block supervision.

mod exec;
pub(crate) mod http;
mod tcp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use steward_core::config::{HealthSpec, Probe, ProgramSpec};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// How many probes of all programs may run at the same moment.
pub const MAX_CONCURRENT_PROBES: usize = 32;

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub passed: bool,
    /// What was seen, for events and logs: "HTTP 200", "connection refused",
    /// "timed out after 1s", "exit code 1".
    pub detail: String,
}

impl ProbeResult {
    fn pass(detail: impl Into<String>) -> Self {
        ProbeResult { passed: true, detail: detail.into() }
    }

    fn fail(detail: impl Into<String>) -> Self {
        ProbeResult { passed: false, detail: detail.into() }
    }
}

/// A probe result on its way to the supervisor.
#[derive(Debug)]
pub struct ProbeReport {
    pub program: Arc<str>,
    /// Which run of the program it belongs to ([`Probes::start`]); stale runs are ignored.
    pub run: u64,
    pub result: ProbeResult,
}

/// Where an exec probe runs: the program's own folder and environment.
#[derive(Clone, Debug)]
struct ExecContext {
    cwd: PathBuf,
    env: BTreeMap<String, String>,
}

/// The probe tasks of all programs.
pub struct Probes {
    slots: Arc<Semaphore>,
    reports: mpsc::UnboundedSender<ProbeReport>,
    /// The probe loop of each program whose process is up. Aborted when it goes down.
    running: BTreeMap<String, JoinHandle<()>>,
}

impl Probes {
    /// Probes that report on `reports`.
    pub fn new(reports: mpsc::UnboundedSender<ProbeReport>) -> Self {
        Probes { slots: Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES)), reports, running: BTreeMap::new() }
    }

    /// Start probing `spec`'s program (its process just came up): at once, then every
    /// `interval`. Replaces a loop still running for it.
    pub fn start(&mut self, spec: &ProgramSpec, check: &HealthSpec, run: u64) {
        let ctx = ExecContext { cwd: spec.cwd.clone(), env: spec.env.clone() };
        let task = tokio::spawn(probe_loop(
            Arc::from(spec.name.as_str()),
            run,
            check.clone(),
            ctx,
            self.slots.clone(),
            self.reports.clone(),
        ));
        if let Some(old) = self.running.insert(spec.name.clone(), task) {
            old.abort();
        }
    }

    /// Stop probing `program` (its process went down). A probe in flight is dropped, which
    /// kills an exec probe's tree.
    pub fn stop(&mut self, program: &str) {
        if let Some(task) = self.running.remove(program) {
            task.abort();
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        for task in self.running.values() {
            task.abort();
        }
    }
}

async fn probe_loop(
    program: Arc<str>,
    run: u64,
    check: HealthSpec,
    ctx: ExecContext,
    slots: Arc<Semaphore>,
    reports: mpsc::UnboundedSender<ProbeReport>,
) {
    loop {
        let result = {
            // Closed only when the supervisor is gone.
            let Ok(_slot) = slots.acquire().await else { return };
            probe(&check.probe, check.timeout, &ctx).await
        };
        if reports.send(ProbeReport { program: program.clone(), run, result }).is_err() {
            return;
        }
        tokio::time::sleep(check.interval).await;
    }
}

/// Run one probe, within `timeout`.
async fn probe(probe: &Probe, timeout: Duration, ctx: &ExecContext) -> ProbeResult {
    let run = async {
        match probe {
            Probe::Http { url, expect_status } => http::probe(url, expect_status).await,
            Probe::Tcp { host, port } => tcp::probe(host, *port).await,
            Probe::Exec { command } => exec::probe(command, ctx).await,
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        // Dropping the probe future closed its socket, or killed its process tree.
        Err(_) => ProbeResult::fail(format!("timed out after {}", humantime::format_duration(timeout))),
    }
}
