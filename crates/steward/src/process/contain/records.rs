//! The records of running process trees in `<state_dir>/trees/`, one file per run, and the
//! kill of what a record names: shared by the Unix platforms that can tell a process's start
//! time (Linux from `/proc`, macOS from `proc_pidinfo`). Which processes a record may kill
//! is decided in `steward_core::sweep`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use steward_core::sweep::{self, Group, ProcStat, Record};

fn trees(state_dir: &Path) -> PathBuf {
    state_dir.join("trees")
}

/// Write `record` as the record of `tree`, atomically.
pub(super) fn write(state_dir: &Path, tree: &str, record: &Record) -> io::Result<()> {
    let dir = trees(state_dir);
    match fs::create_dir(&dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let tmp = dir.join(format!(".{tree}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(record.to_text().as_bytes())?;
    // Renamed into place: a reader sees the old record or the new one, never half of one.
    fs::rename(&tmp, dir.join(tree))
}

/// Remove the record of `tree`: its task ended and swept it.
pub(super) fn forget(state_dir: &Path, tree: &str) {
    let _ = fs::remove_file(trees(state_dir).join(tree));
}

/// Every record in `state_dir`, each file removed once read. A file that is not a record (torn,
/// foreign) names nothing to kill and goes too.
pub(super) fn take_all(state_dir: &Path) -> Vec<Record> {
    let Ok(entries) = fs::read_dir(trees(state_dir)) else { return Vec::new() };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(record) = fs::read_to_string(&path).ok().and_then(|text| Record::parse(&text)) {
            records.push(record);
        }
        let _ = fs::remove_file(&path);
    }
    records
}

/// SIGKILL the processes of `procs` that `group` names; returns their pids.
pub(super) fn kill_group(group: Group, procs: &[ProcStat]) -> Vec<u32> {
    let mut pids = sweep::victims(group, procs);
    pids.retain(|&pid| pid > 1 && pid != std::process::id());
    for &pid in &pids {
        // SAFETY: plain system call on a pid > 1 (never a group, never everything).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    pids
}
