//! Linux: a cgroup per program where steward can make one, and records for the sweep.
//!
//! A process group holds only the processes that stay in it: a program that calls `setsid()`
//! or `setpgid()` (a self-daemonizing one) leaves it, and `PR_SET_PDEATHSIG` covers neither
//! grandchildren nor a program that changed its uid (the kernel clears it then). A cgroup
//! holds every descendant, whatever it does, short of a privileged move.
//!
//! - Where: steward's own cgroup2 group (the `0::` line of `/proc/self/cgroup`, under the
//!   cgroup2 mount: `/sys/fs/cgroup` on a v2 system, `/sys/fs/cgroup/unified` on a hybrid
//!   one) gets `steward-<pid>/`, with `supervisor/` for steward itself and
//!   `program.<name>.<task>.<run>/` for each run of a program (see `for_program` why).
//!   Moving steward into a leaf keeps the "no internal processes" rule of cgroup v2 (a group
//!   whose children have controllers must hold no process itself), so this also works in a
//!   systemd unit with `Delegate=yes`. It needs write access, so root or a delegated unit;
//!   else steward falls back to process groups and says so.
//! - Joining: the child is born in its group (`clone3` with `CLONE_INTO_CGROUP`, see
//!   `process/linux.rs`), or where that is refused writes itself into the group's
//!   `cgroup.procs` before exec: either way before it can fork anything.
//! - Killing: `cgroup.kill` (Linux 5.14) SIGKILLs everything in the group at once and needs
//!   no controller. steward writes it after every exit of the program, as it sweeps the
//!   process group.
//! - Records: a line in `<state_dir>/trees.journal` (`records.rs`) names the program's group
//!   and start time and its cgroup (`steward_core::sweep`), appended at each start; another
//!   line ends it when the program's task ends. A steward that finds records at startup ends
//!   what they name.

use std::fs;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_core::sweep::{self, ProcStat, Record};

use super::{records, Swept};

/// How long a group may take to empty after `cgroup.kill` before steward gives up removing
/// it. SIGKILLed processes go within milliseconds, unless stuck in the kernel (D state).
const EMPTY_DEADLINE: Duration = Duration::from_secs(5);

/// This steward's `steward-<pid>` group, while containment is set up.
static ROOT: Mutex<Option<Roots>> = Mutex::new(None);

#[derive(Clone)]
struct Roots {
    /// Where steward was started (it moves back there at the end).
    own: PathBuf,
    /// `<own>/steward-<pid>`.
    base: PathBuf,
}

/// Cgroup containment, set up by [`Containment::set_up`] and undone on drop.
pub struct Containment {
    description: String,
    active: bool,
}

impl Containment {
    /// Make this steward's cgroups if it can. A failure is not an error: steward then
    /// contains programs by process group alone, and the description says why.
    pub fn set_up() -> Containment {
        match make_roots() {
            Ok(roots) => {
                let description =
                    format!("each program in a cgroup of its own under {}", roots.base.display());
                *lock() = Some(roots);
                Containment { description, active: true }
            }
            Err(why) => Containment {
                description: format!(
                    "process groups only ({why}); a program that leaves its process group can \
                     outlive its stop"
                ),
                active: false,
            },
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl Drop for Containment {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let Some(roots) = lock().take() else { return };
        // The programs' groups go first.
        remover::flush();
        // Back where steward was started, so that its leaf can go.
        let _ = fs::write(roots.own.join("cgroup.procs"), std::process::id().to_string());
        let _ = fs::remove_dir(roots.base.join("supervisor"));
        let _ = fs::remove_dir(&roots.base);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Roots>> {
    ROOT.lock().unwrap_or_else(|e| e.into_inner())
}

fn make_roots() -> Result<Roots, String> {
    let own = own_cgroup()?;
    remove_empty_leftovers(&own);
    let base = own.join(format!("steward-{}", std::process::id()));
    let supervisor = base.join("supervisor");
    let made = mkdir(&base)
        // A kernel before 5.14 has no cgroup.kill.
        .and_then(|()| fs::metadata(base.join("cgroup.kill")).map(drop))
        .and_then(|()| mkdir(&supervisor))
        .and_then(|()| fs::write(supervisor.join("cgroup.procs"), std::process::id().to_string()));
    match made {
        Ok(()) => Ok(Roots { own, base }),
        Err(e) => {
            let _ = fs::write(own.join("cgroup.procs"), std::process::id().to_string());
            let _ = fs::remove_dir(&supervisor);
            let _ = fs::remove_dir(&base);
            Err(format!("cannot make a cgroup under {}: {e}", own.display()))
        }
    }
}

/// Remove the empty groups of stewards that are gone (killed, say) from `own`. A group that
/// still holds a process is left for the sweep of its own state dir; `rmdir` refuses it.
fn remove_empty_leftovers(own: &Path) {
    let Ok(entries) = fs::read_dir(own) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("steward-")) else { continue };
        let Ok(pid) = pid.parse::<libc::pid_t>() else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let base = entry.path();
        for child in fs::read_dir(&base).into_iter().flatten().flatten() {
            let _ = fs::remove_dir(child.path());
        }
        let _ = fs::remove_dir(&base);
    }
}

fn mkdir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The directory of steward's own cgroup2 group.
fn own_cgroup() -> Result<PathBuf, String> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup2 hierarchy in /proc/self/cgroup")?;
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    // `id parent dev root mountpoint options... - fstype source superoptions`
    let (root, mountpoint) = mountinfo
        .lines()
        .find_map(|line| {
            let (fields, fs_part) = line.split_once(" - ")?;
            fs_part.starts_with("cgroup2 ").then_some(())?;
            let mut fields = fields.split(' ').skip(3);
            Some((fields.next()?, fields.next()?))
        })
        .ok_or("cgroup2 is not mounted")?;
    let rel = if root == "/" {
        own
    } else {
        own.strip_prefix(root).ok_or("steward's cgroup is outside the cgroup2 mount")?
    };
    Ok(Path::new(mountpoint).join(rel.trim_start_matches('/')))
}

/// A program's cgroup.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Drop for Cgroup {
    /// The run is over and its tree swept: the group goes if it is empty already (a process
    /// that was just killed may still be exiting; then the task's end removes it).
    fn drop(&mut self) {
        remover::send(remover::Job::Remove(std::mem::take(&mut self.dir)));
    }
}

impl Cgroup {
    /// SIGKILL everything in the group, soon: the remover does it (see there). A group that
    /// is gone is not an error.
    pub fn kill(&self) -> io::Result<()> {
        remover::send(remover::Job::Kill(self.dir.clone()));
        Ok(())
    }
}

/// The thread that kills and removes the groups of ended runs, in the order asked. On the
/// runtime's thread, removing a group (about 40 µs of the kernel's time each) was a third
/// of what stopping 5,000 programs cost; here it runs beside the next exits. Made at the
/// first job; it waits on its queue, so it costs no wakeups.
mod remover {
    use std::collections::{HashMap, HashSet};
    use std::path::PathBuf;
    use std::sync::{mpsc, Mutex, OnceLock};
    use std::{fs, io};

    pub(super) enum Job {
        /// The tree of a run is swept: most often its run has just ended and the group is
        /// empty, so it is removed (one system call, where `cgroup.kill` and the removal
        /// took four); if it holds a process, that is killed.
        Kill(PathBuf),
        /// The run is over: its group goes if empty, else it is kept for its tree's end.
        Remove(PathBuf),
        /// Tree `name`'s task ended: its groups still kept go once empty.
        EndTree(String),
        /// Answer once every job before this one is done.
        Flush(mpsc::Sender<()>),
    }

    pub(super) fn send(job: Job) {
        static QUEUE: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
        let queue = QUEUE.get_or_init(|| {
            let (queue, jobs) = mpsc::channel();
            let made = std::thread::Builder::new()
                .name("steward-cgroups".into())
                .stack_size(256 << 10)
                .spawn(move || serve(&jobs));
            match made {
                Ok(_) => Some(Mutex::new(queue)),
                Err(e) => {
                    tracing::warn!(
                        event = "cgroup",
                        "no thread for removing cgroups ({e}); removing them on this one"
                    );
                    None
                }
            }
        });
        let job = match queue {
            Some(queue) => match queue.lock().unwrap_or_else(|e| e.into_inner()).send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        do_job(job, &mut Kept::default());
    }

    /// What the remover keeps between jobs.
    #[derive(Default)]
    struct Kept {
        /// The groups whose run ended while they still held a process, by tree. Kept here
        /// rather than found by listing the groups at each task's end, which made stopping n
        /// programs read n² directory entries.
        left: HashMap<String, Vec<PathBuf>>,
        /// The groups a `Kill` removed, until their `Remove` comes (always after it): that
        /// one then has nothing to do. A second `rmdir` of each was a failed lookup a run
        /// (10,000 of them when 5,000 programs stopped).
        removed: HashSet<PathBuf>,
    }

    fn serve(jobs: &mpsc::Receiver<Job>) {
        let mut kept = Kept::default();
        // Waits for groups to empty (`EndTree`), each on a thread of its own: a process stuck
        // in the kernel can hold one for seconds, and the others must not queue behind it.
        let mut waits = Vec::new();
        while let Ok(job) = jobs.recv() {
            match job {
                Job::EndTree(tree) => {
                    let dirs = kept.left.remove(&tree).unwrap_or_default();
                    if !dirs.is_empty() {
                        let wait = move || dirs.iter().for_each(|dir| super::remove_when_empty(dir));
                        match std::thread::Builder::new().name("steward-cgroup-wait".into()).spawn(wait) {
                            Ok(thread) => waits.push(thread),
                            Err(e) => tracing::warn!(
                                event = "cgroup",
                                "no thread to remove {tree}'s cgroups ({e}); the next steward removes them"
                            ),
                        }
                    }
                    waits.retain(|w: &std::thread::JoinHandle<()>| !w.is_finished());
                }
                Job::Flush(done) => {
                    waits.drain(..).for_each(|w| drop(w.join()));
                    let _ = done.send(());
                }
                job => do_job(job, &mut kept),
            }
        }
    }

    /// A job without a thread of its own to run it on, or `Kill` or `Remove` from `serve`.
    fn do_job(job: Job, kept: &mut Kept) {
        match job {
            Job::Kill(dir) => match fs::remove_dir(&dir) {
                Ok(()) => {
                    kept.removed.insert(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => match fs::write(dir.join("cgroup.kill"), "1") {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        tracing::warn!(event = "cgroup", "cannot kill what {} holds: {e}", dir.display());
                    }
                    _ => {}
                },
            },
            Job::Remove(dir) if kept.removed.remove(&dir) => {}
            Job::Remove(dir) => match fs::remove_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    let tree = dir.file_name().and_then(|n| n.to_str()).and_then(|n| {
                        let (tree, _run) = n.strip_prefix("program.")?.rsplit_once('.')?;
                        Some(tree.to_owned())
                    });
                    if let Some(tree) = tree {
                        kept.left.entry(tree).or_default().push(dir);
                    }
                }
                _ => {}
            },
            Job::EndTree(tree) => {
                for dir in kept.left.remove(&tree).unwrap_or_default() {
                    super::remove_when_empty(&dir);
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Wait until every job sent so far is done.
    pub(super) fn flush() {
        let (done, finished) = mpsc::channel();
        send(Job::Flush(done));
        let _ = finished.recv();
    }
}

/// A new cgroup for one run of tree `name` (a program's task), and its directory open for
/// the child to be started in; `None` without cgroup containment.
///
/// One per run, not one per program: on Linux 6.18 a child that `clone3` starts in a cgroup
/// that has been killed before (`cgroup.kill` bumps the group's kill count) is killed at
/// once, as the kernel compares that count with the one of the parent's cgroup.
pub fn for_program(name: &str) -> io::Result<Option<(Cgroup, OwnedFd)>> {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(roots) = lock().clone() else { return Ok(None) };
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = roots.base.join(format!("program.{name}.{run}"));
    let opened = mkdir(&dir).and_then(|()| fs::File::open(&dir));
    let fd = opened.map_err(|e| io::Error::new(e.kind(), format!("cgroup {}: {e}", dir.display())))?;
    Ok(Some((Cgroup { dir }, fd.into())))
}

/// Remove the cgroups of tree `name`'s runs once they are empty (bounded by EMPTY_DEADLINE
/// each), on the remover's thread: this returns at once. Most went already, when their run
/// ended (`Cgroup`'s drop); this takes those that were still busy then.
pub fn remove_program(name: &str) {
    // Without containment there is nothing to remove, and no thread to wake for it.
    if lock().is_none() {
        return;
    }
    remover::send(remover::Job::EndTree(name.to_owned()));
}

/// Wait until the group at `dir` holds no process, then remove it. `cgroup.events` says
/// `populated 0` then; the kernel wakes a `poll` for POLLPRI on it at each change.
fn remove_when_empty(dir: &Path) {
    let Ok(mut events) = fs::File::open(dir.join("cgroup.events")) else { return };
    let deadline = Instant::now() + EMPTY_DEADLINE;
    loop {
        let mut text = String::new();
        if events.rewind().and_then(|_| events.read_to_string(&mut text)).is_err() {
            return;
        }
        if text.lines().any(|l| l == "populated 0") {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(event = "cgroup", "{} still holds processes; left in place", dir.display());
            return;
        }
        let mut fd = libc::pollfd { fd: events.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fd, 1, left.as_millis().min(1000) as libc::c_int) };
    }
    let _ = fs::remove_dir(dir);
}

/// Record `tree`, of `program`, just started as `pid` (its group leader), for the sweep.
/// `start` is its start time when the spawn knew it; else it is read from `/proc`.
pub fn record(
    state_dir: &Path,
    tree: &str,
    program: &str,
    pid: u32,
    start: Option<u64>,
    cgroup: Option<&Cgroup>,
) -> io::Result<()> {
    let start = match start {
        Some(start) => start,
        None => {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
            sweep::parse_stat(&stat)
                .ok_or_else(|| io::Error::other(format!("cannot read /proc/{pid}/stat")))?
                .start
        }
    };
    records::write_group(state_dir, tree, program, pid, start, cgroup.map(|c| c.dir.display().to_string()))
}

/// Remove the record of `tree`: its task ended and swept it.
pub fn forget(state_dir: &Path, tree: &str) {
    records::forget(state_dir, tree);
}

/// End what the records in `state_dir` name: the trees of a steward that died. Called at
/// startup, before any program starts; each record is removed once it has been swept.
pub fn sweep(state_dir: &Path) -> Vec<Swept> {
    records::sweep(state_dir, all_processes, sweep_cgroup)
}

/// Kill what is left in the record's cgroup, and remove the dead steward's groups.
fn sweep_cgroup(record: &Record, pids: &mut Vec<u32>) {
    let Some(dir) = record.cgroup.as_deref().map(Path::new) else { return };
    let members = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    pids.extend(members.lines().filter_map(|l| l.parse::<u32>().ok()));
    let cgroup = Cgroup { dir: dir.to_path_buf() };
    let _ = cgroup.kill();
    remove_when_empty(dir);
    // The dead steward's own groups, if it made them and nothing else is left in them.
    if let Some(base) =
        dir.parent().filter(|b| b.file_name().is_some_and(|n| n.to_string_lossy().starts_with("steward-")))
    {
        let _ = fs::remove_dir(base.join("supervisor"));
        let _ = fs::remove_dir(base);
    }
}

/// Every process, from `/proc`. Ones that vanish while read are skipped.
fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| sweep::parse_stat(&text))
        .collect()
}
