//! Containment beyond the process group, and the sweep of what a dead steward left.
//!
//! - `linux.rs`: a cgroup per program (when steward may make one) killed with `cgroup.kill`,
//!   and records in the state dir that the next steward sweeps.
//! - `macos.rs`: the process group alone, and the same records, read with `proc_pidinfo`.
//! - `records.rs`: the records of both, in `<state_dir>/trees/`.
//! - `unsupported.rs`: elsewhere, nothing: Windows has its Job Objects, other Unix systems
//!   the process group alone.

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(target_os = "macos", path = "macos.rs")]
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), path = "unsupported.rs")]
mod platform;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod records;

#[cfg(target_os = "linux")]
pub(super) use platform::for_program;
pub use platform::{forget, record, remove_program, sweep, Cgroup, Containment};

/// What the sweep at startup ended for one program of a dead steward.
#[derive(Debug)]
pub struct Swept {
    pub program: String,
    /// How many processes were killed.
    pub killed: usize,
}
