//! Systems other than Linux and macOS: no cgroups and no records. On Windows the Job Object
//! holds the whole tree and dies with steward (KILL_ON_JOB_CLOSE); on the BSDs a program is
//! contained by its process group alone.

use std::io;
use std::path::Path;

use super::Swept;

/// Nothing to set up.
pub struct Containment;

impl Containment {
    pub fn set_up() -> Containment {
        Containment
    }

    pub fn describe(&self) -> &str {
        if cfg!(windows) {
            "a Job Object per program"
        } else {
            "process groups only; a program that leaves its process group can outlive its stop"
        }
    }
}

/// A program's cgroup, which these systems do not have.
#[derive(Debug)]
pub enum Cgroup {}

impl Cgroup {
    pub fn kill(&self) -> io::Result<()> {
        match *self {}
    }
}

pub fn remove_program(_name: &str) {}

pub fn record(
    _state_dir: &Path,
    _tree: &str,
    _program: &str,
    _pid: u32,
    _start: Option<u64>,
    _cgroup: Option<&Cgroup>,
) -> io::Result<()> {
    Ok(())
}

pub fn forget(_state_dir: &Path, _tree: &str) {}

pub fn sweep(_state_dir: &Path) -> Vec<Swept> {
    Vec::new()
}
