//! What the supervisor knows at one moment: every program's status, plus what `/metrics`
//! reports about steward itself. `status` and `/metrics` both read one; they format it.

use std::time::SystemTime;

use steward_core::health::Health;

use super::program::Status;
use crate::process::TreeRef;

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub programs: Vec<ProgramSnapshot>,
    /// When this steward started.
    pub started_at: SystemTime,
    pub reloads_applied: u64,
    pub reloads_rejected: u64,
    /// (alert, program) of every alert firing now.
    pub alerts_firing: Vec<(String, String)>,
    /// Programs with `instances` or `sockets`: what their processes share.
    pub groups: Vec<GroupSnapshot>,
}

/// A program with `instances` or `sockets` in a [`Snapshot`].
#[derive(Clone, Debug, Default)]
pub struct GroupSnapshot {
    pub name: String,
    /// `instances` now (after any `steward scale`), or `None` without the key.
    pub instances: Option<u32>,
    /// (socket name, address bound).
    pub sockets: Vec<(String, String)>,
    /// Where its rolling restart is, while one runs ("rolling, 2/4 replaced").
    pub rollout: Option<String>,
}

/// One program in a [`Snapshot`].
#[derive(Clone, Debug)]
pub struct ProgramSnapshot {
    pub name: String,
    pub status: Status,
    /// `None` when the program has no health check.
    pub health: Option<Health>,
    /// Programs this one waits for before it can start.
    pub waiting_for: Vec<String>,
    /// The running process's tree, to sample.
    pub tree: Option<TreeRef>,
    /// Runs whose stdout, stderr log file could not be opened (their output was discarded).
    pub log_open_failures: [u64; 2],
    /// The release version it runs, for a program with `[release]` (once one is installed).
    pub version: Option<steward_core::release::Version>,
    /// Its `max_memory`, in bytes.
    pub max_memory: Option<u64>,
}
