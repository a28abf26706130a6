//! Containment beyond the process group, and the sweep of what a dead steward left.
//!
//! - `linux.rs`: a cgroup per program (when steward may make one) killed with `cgroup.kill`,
//!   and records in the state dir that the next steward sweeps.
//! - `unsupported.rs`: elsewhere, nothing: Windows has its Job Objects, other Unix systems
//!   the process group alone.

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "unsupported.rs")]
mod platform;

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
