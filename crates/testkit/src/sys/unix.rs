//! Unix side of the kit.
//!
//! - The daemon runs in a process group of its own (its pgid is its pid), so one `killpg`
//!   reaches it and every descendant that did not move to another group.
//! - Descendants that did move (steward puts each program in a session of its own) are found
//!   by walking the parent links of the process table (`/proc` on Linux, `ps` elsewhere). They
//!   are frozen with SIGSTOP first, so nothing can restart or fork while the tree is killed.
//! - The daemon's exit is observed with `waitid(WNOWAIT)`, which leaves it a zombie: its pid,
//!   and so its process group id, cannot be reused by another process before the harness has
//!   killed the group and reaped it in `Drop`.
//! - A zombie still answers `kill(pid, 0)`, so [`pid_alive`] also looks at the process state.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};

/// True if a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // 0 and negative values would address process groups.
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let exists =
        unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

/// True if `pid` is a zombie (or vanished while we looked).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_zombie(pid: libc::pid_t) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain any
        // byte, so look after the last ')'.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            .is_none_or(|state| matches!(state, 'Z' | 'X' | 'x')),
        Err(_) => true,
    }
}

/// True if `pid` is a zombie (or vanished while we looked).
#[cfg(any(target_os = "macos", target_os = "ios"))]
fn is_zombie(pid: libc::pid_t) -> bool {
    // SAFETY: proc_bsdinfo is plain data; proc_pidinfo writes at most `size` bytes into it.
    unsafe {
        let mut info: libc::proc_bsdinfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        let got = libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size);
        got != size || info.pbi_status == libc::SZOMB
    }
}

/// Other Unixes: no cheap way to tell a zombie; `kill(pid, 0)` has to do.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios")))]
fn is_zombie(_pid: libc::pid_t) -> bool {
    false
}

/// Sends `signal` to the process `pid`.
pub(crate) fn signal(pid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call; the pid is the daemon's and still held (see the module doc).
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to the process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::killpg(pgid as libc::pid_t, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the daemon lead a process group of its own.
pub(crate) fn prepare_daemon(cmd: &mut Command) {
    cmd.process_group(0);
}

/// The daemon's process tree: its process group, and descendants found by walking the
/// process table when it is killed.
pub(crate) struct Tree {
    root: u32,
}

impl Tree {
    pub(crate) fn adopt(child: &Child) -> io::Result<Tree> {
        Ok(Tree { root: child.id() })
    }

    /// Kills the root, its process group and every descendant, even those in other groups.
    /// Best effort: errors (mostly "no such process") are ignored. Does not reap.
    pub(crate) fn kill(&self) {
        let root = self.root;
        // Freeze the root first so it cannot restart what is killed below.
        let _ = signal(root, libc::SIGSTOP);
        // Freeze descendants until a walk finds no new one: a process may fork between the
        // walk and the SIGSTOP, so walk again. A few rounds are plenty for a test's tree.
        let mut frozen = BTreeSet::new();
        for _ in 0..8 {
            let fresh: Vec<u32> =
                descendants(&process_table(), root).into_iter().filter(|pid| !frozen.contains(pid)).collect();
            if fresh.is_empty() {
                break;
            }
            for pid in fresh {
                let _ = signal(pid, libc::SIGSTOP);
                frozen.insert(pid);
            }
        }
        // SIGKILL also ends stopped processes.
        let _ = signal_group(root, libc::SIGKILL);
        let _ = signal(root, libc::SIGKILL);
        for pid in frozen {
            let _ = signal(pid, libc::SIGKILL);
        }
    }
}

/// The exit status of `child` if it has exited, without reaping it (see the module doc).
pub(crate) fn peek_exit(child: &mut Child) -> io::Result<Option<ExitStatus>> {
    // SAFETY: siginfo_t is plain data, zeroed so that si_pid reads 0 when nothing changed.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid siginfo_t to write into.
    if unsafe { libc::waitid(libc::P_PID, child.id() as libc::id_t, &mut info, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: for waitid the kernel fills the SIGCHLD fields (or leaves them zero).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // Rebuild the wait status word that ExitStatus::from_raw expects.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => return Ok(None),
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// Every process below `root` in `table` (pid, parent pid), not `root` itself.
fn descendants(table: &[(u32, u32)], root: u32) -> BTreeSet<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(pid, ppid) in table {
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(parent) = todo.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            if child != root && found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

/// (pid, parent pid) of every process: from `/proc` where there is one, else from `ps`.
fn process_table() -> Vec<(u32, u32)> {
    proc_table().or_else(|_| ps_table()).unwrap_or_default()
}

fn proc_table() -> io::Result<Vec<(u32, u32)>> {
    let mut table = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // Gone since the listing: skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse().ok());
        if let Some(ppid) = ppid {
            table.push((pid, ppid));
        }
    }
    Ok(table)
}

fn ps_table() -> io::Result<Vec<(u32, u32)>> {
    let out = Command::new("ps").args(["-A", "-o", "pid=", "-o", "ppid="]).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("ps failed: {}", out.status)));
    }
    Ok(parse_ps(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `ps -o pid= -o ppid=` output: two numbers a line.
fn parse_ps(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u32>);
            match (fields.next(), fields.next()) {
                (Some(Ok(pid)), Some(Ok(ppid))) => Some((pid, ppid)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_walk_the_tree() {
        let table = [(1, 0), (10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (21, 20)];
        assert_eq!(descendants(&table, 10), BTreeSet::from([11, 12, 13]));
        assert_eq!(descendants(&table, 12), BTreeSet::new());
        // A (bogus) loop back to the root ends the walk.
        assert_eq!(descendants(&[(5, 6), (6, 5)], 5), BTreeSet::from([6]));
    }

    #[test]
    fn ps_output_parses() {
        assert_eq!(parse_ps("    1     0\n  812     1\nPID PPID\n\n 9 x\n"), vec![(1, 0), (812, 1)]);
    }

    #[test]
    fn both_tables_see_this_process() {
        let me = std::process::id();
        // SAFETY: getppid cannot fail.
        let parent = unsafe { libc::getppid() } as u32;
        let ps = ps_table().expect("ps runs");
        assert!(ps.contains(&(me, parent)), "ps table lacks ({me}, {parent})");
        if cfg!(target_os = "linux") {
            assert!(proc_table().unwrap().contains(&(me, parent)));
        }
    }

    #[test]
    fn this_process_is_alive_and_nonsense_pids_are_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
