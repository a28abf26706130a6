//! macOS: no cgroups, so a program is contained by its process group; records for the sweep.
//!
//! A program that leaves its process group (`setsid()`, a self-daemonizing one) is not
//! reached by a stop here, and nothing kills the programs when steward is killed with
//! `kill -9` (macOS has no `PR_SET_PDEATHSIG`). What a dead steward left in the programs'
//! process groups is ended by the next steward on the same state dir, before it starts
//! anything, from the records in `<state_dir>/trees.journal` (the group and its leader's start
//! time from `proc_pidinfo`, so a reused pid is never hit).
//!
//! Type-checked in CI for both macOS targets, not run: no macOS machine is at hand.

use std::io;
use std::path::Path;

use steward_core::sweep::ProcStat;

use super::{records, Swept};

/// Nothing to set up.
pub struct Containment;

impl Containment {
    pub fn set_up() -> Containment {
        Containment
    }

    pub fn describe(&self) -> &str {
        "process groups only; a program that leaves its process group can outlive its stop"
    }
}

/// A program's cgroup, which macOS does not have.
#[derive(Debug)]
pub enum Cgroup {}

impl Cgroup {
    pub fn kill(&self) -> io::Result<()> {
        match *self {}
    }
}

pub fn remove_program(_name: &str) {}

/// Record `tree`, of `program`, just started as `pid` (its group leader), for the sweep.
pub fn record(
    state_dir: &Path,
    tree: &str,
    program: &str,
    pid: u32,
    _start: Option<u64>,
    _cgroup: Option<&Cgroup>,
) -> io::Result<()> {
    let stat =
        proc_stat(pid).ok_or_else(|| io::Error::other(format!("cannot read the start time of {pid}")))?;
    records::write_group(state_dir, tree, program, pid, stat.start, None)
}

pub fn forget(state_dir: &Path, tree: &str) {
    records::forget(state_dir, tree);
}

/// End what the records in `state_dir` name: the process groups of a steward that died.
pub fn sweep(state_dir: &Path) -> Vec<Swept> {
    records::sweep(state_dir, all_processes, |_, _| {})
}

/// The process group and start time (in microseconds since the epoch) of `pid`.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: the buffer is a proc_bsdinfo of `size` bytes, which PROC_PIDTBSDINFO fills.
    let n = unsafe {
        libc::proc_pidinfo(pid as libc::c_int, libc::PROC_PIDTBSDINFO, 0, info.as_mut_ptr().cast(), size)
    };
    if n != size {
        return None;
    }
    // SAFETY: proc_pidinfo filled all of it (n == size); zeroed before in any case.
    let info = unsafe { info.assume_init() };
    Some(ProcStat {
        pid,
        pgid: info.pbi_pgid,
        start: info.pbi_start_tvsec.saturating_mul(1_000_000).saturating_add(info.pbi_start_tvusec),
    })
}

/// Every process the caller may see. Ones that vanish while read are skipped.
fn all_processes() -> Vec<ProcStat> {
    // SAFETY: a NULL buffer asks for the number of pids.
    let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    if count <= 0 {
        return Vec::new();
    }
    // Room for processes started meanwhile.
    let mut pids = vec![0 as libc::pid_t; count as usize + 64];
    let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
    // SAFETY: the buffer holds `bytes` bytes of pids.
    let filled = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
    pids.truncate(filled.max(0) as usize);
    pids.iter().filter_map(|&pid| u32::try_from(pid).ok()).filter_map(proc_stat).collect()
}
