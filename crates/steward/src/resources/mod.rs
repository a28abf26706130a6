//! How much memory and CPU each program's whole process tree uses, and steward's own.
//!
//! - Linux (`linux.rs`): one pass over `/proc/*/stat` per sample, for all programs at once.
//!   Each program leads its own process group (`process/unix.rs`), so its tree is every
//!   process whose group id is the program's pid.
//! - Windows (`windows.rs`): the Job Object's accounting (CPU of every process that ever ran
//!   in it) and the working sets of the processes in it now.
//! - Elsewhere (`unsupported.rs`): nothing is sampled; the config refuses `max_memory` and
//!   memory alerts there.
//!
//! Sampling reads files or makes system calls: run it on a blocking thread. It happens only
//! when something needs it (a program with `max_memory` or a memory alert is running, or
//! `/metrics` is scraped), so an idle steward never wakes up for it.

use crate::process::TreeRef;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(windows, path = "windows.rs")]
#[cfg_attr(not(any(target_os = "linux", windows)), path = "unsupported.rs")]
mod platform;

/// Resource use of a process tree at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Resident memory of all its processes, in bytes (pages shared between them counted
    /// once per process, as `ps` does).
    pub rss_bytes: u64,
    /// CPU time, user and system, in seconds. On Linux: of the processes in the tree now and
    /// of the children they have reaped; on Windows: of every process that was ever in the
    /// job. It starts from zero with each new process of the program.
    pub cpu_seconds: f64,
    /// How many processes the tree has.
    pub processes: u32,
}

/// Whether this OS can sample trees.
pub const SUPPORTED: bool = platform::SUPPORTED;

/// Samples each tree (in one pass where the OS allows); `None` for a tree that is gone.
pub fn sample(trees: &[TreeRef]) -> Vec<Option<Usage>> {
    platform::sample(trees)
}

/// steward's own process.
pub fn own() -> Option<Usage> {
    platform::own()
}
