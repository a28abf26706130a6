//! Starting programs on Linux without fork.
//!
//! A program must lead its own session and get `PR_SET_PDEATHSIG` (see `unix.rs`). With
//! tokio's `Command` that takes a `pre_exec` closure, which makes std `fork()` (copying
//! steward's page tables) and then wait on a pipe until the child has exec'd; posix_spawn,
//! which std uses otherwise, cannot ask for either. So steward does what glibc's posix_spawn
//! does, plus those two calls: `clone(CLONE_VM | CLONE_VFORK)`. The child runs on a stack of
//! its own in steward's memory while the calling thread is suspended, until the child has
//! exec'd or exited. That cut the restart gap by about a sixth (docs/benchmarks.md).
//!
//! Because the child shares steward's memory:
//! - Everything it needs (argv, envp, the paths to try, cwd, the three fds) is prepared
//!   before the clone. The child makes only raw system calls: no allocation, no locks, no
//!   panics. A failure is reported by storing errno in the shared `ChildArgs` and
//!   `_exit(127)`; the parent reads it after the clone returns.
//! - All signals are blocked in the calling thread around the clone, so none of steward's
//!   handlers can run in the child. The child resets every handled signal (and the SIGPIPE
//!   that Rust ignores) to its default before it unblocks them: exec would reset handlers,
//!   but a signal could arrive before that.
//! - The fd table is shared (CLONE_FILES) only until the child's first system call,
//!   `close_range(end, ~0, CLOSE_RANGE_UNSHARE)`, which gives it a table of its own holding
//!   only the descriptors below `end`. Before the clone, the parent puts the child's stdin,
//!   stdout and stderr into three low slots kept open for this ([`Slots`]), so they are
//!   among them. Copying steward's whole table instead (what fork, vfork and posix_spawn do)
//!   costs time for each descriptor steward holds, about five per program: with 5,000
//!   programs that made each start 2 ms slower, and starting them all quadratic. Kernels
//!   before 5.9 (no `CLOSE_RANGE_UNSHARE`), valgrind (no CLONE_FILES with CLONE_VM), and a
//!   program with listening sockets to pass get the copy, as before.
//!
//! With a cgroup per program (`contain/linux.rs`), the child is born in its cgroup: on
//! x86_64 by `clone3` with `CLONE_INTO_CGROUP` (`clone3_into_cgroup` says why it is not
//! moved there); on other architectures, or where clone3 is refused, the child writes itself
//! into the cgroup before it execs.
//!
//! The clone is made on one of a few threads kept for it ([`cloners`]), not on the runtime's:
//! the calling thread is suspended until the child has exec'd, and on a busy machine that
//! takes a while (0.8 ms median while 3,000 programs started on 2 cores, measured with
//! `perf trace`). On the runtime's thread that wait held up everything else, and programs
//! started one at a time. The cloning threads never end, because PR_SET_PDEATHSIG fires when
//! the *thread* that cloned a child exits.
//!
//! The exit is awaited on a pidfd (`pidfd_open`, Linux 5.3) and reaped with `waitpid` on the
//! pid, which the unreaped child keeps reserved. Where there are no pidfds (kernels before
//! 5.3, such as RHEL 8's 4.18, and valgrind), each SIGCHLD makes every waiting child try to
//! reap its own pid instead; `pidfds` decides which, once.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::OnceLock;

use libc::{c_char, c_int, c_void, pid_t};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::epoll::{PipeReader, Watched};
use super::{platform::Tree, Child, ExtraEnv, ProcessTree, Spawned};
pub(super) use cloners::{turn, Turn};

/// The child's stack. It only runs a few system call wrappers.
const STACK_SIZE: usize = 64 << 10;

/// The shell that runs an executable without a `#!` line, as `execvp` does.
const SHELL: &std::ffi::CStr = c"/bin/sh";

/// `close_range` flag: give the caller a table of its own first (Linux 5.9).
const CLOSE_RANGE_UNSHARE: libc::c_uint = 1 << 1;

/// Whether children may share the fd table until they unshare it; cleared for good the first
/// time the kernel (or valgrind) refuses.
static SHARE_TABLE: AtomicBool = AtomicBool::new(true);

/// Three descriptors, 3 or above and as low as were free when the cloning thread began,
/// kept open on /dev/null; each cloning thread has its own. Just before a clone the child's
/// stdin, stdout and stderr are put there, so that a child unsharing the fd table keeps
/// them by copying only the few below `end`. It may copy another thread's slots too: they
/// are close-on-exec, like every descriptor of steward's. Other threads never get these
/// numbers: they are always open.
struct Slots {
    fds: [RawFd; 3],
    null: OwnedFd,
    /// One past the highest slot.
    end: libc::c_uint,
}

impl Slots {
    /// `None` if they could not be made; this thread's children then copy the table.
    fn new() -> Option<Slots> {
        let null = open_null().ok()?;
        let mut fds = [0; 3];
        for slot in &mut fds {
            // Never closed: the numbers stay reserved for the life of steward.
            *slot = std::os::fd::IntoRawFd::into_raw_fd(dup_at_least(null.as_raw_fd(), 3).ok()?);
        }
        let end = fds.iter().max().map_or(0, |&fd| fd as libc::c_uint + 1);
        Some(Slots { fds, null, end })
    }
}

/// The child's three descriptors, put in the slots; they go back to /dev/null on drop, so
/// steward holds no copy of the pipes' write ends once the child has its own.
struct Filled<'a> {
    slots: &'a Slots,
}

impl Filled<'_> {
    fn new<'a>(slots: Option<&'a Slots>, fds: &[OwnedFd; 3]) -> Option<Filled<'a>> {
        if !SHARE_TABLE.load(Ordering::Relaxed) {
            return None;
        }
        let filled = Filled { slots: slots? };
        for (fd, &slot) in fds.iter().zip(&filled.slots.fds) {
            // SAFETY: replaces a slot (ours, always open) with a copy of an open fd.
            if unsafe { libc::dup3(fd.as_raw_fd(), slot, libc::O_CLOEXEC) } == -1 {
                return None; // the drop puts back /dev/null
            }
        }
        Some(filled)
    }
}

impl Drop for Filled<'_> {
    fn drop(&mut self) {
        for &slot in &self.slots.fds {
            // SAFETY: as in `new`; /dev/null is open for as long as the slots exist.
            unsafe { libc::dup3(self.slots.null.as_raw_fd(), slot, libc::O_CLOEXEC) };
        }
    }
}

/// Whether this kernel has pidfds (and lets us use them): asked once.
fn pidfds() -> bool {
    static PIDFDS: OnceLock<bool> = OnceLock::new();
    // SAFETY: getpid has no preconditions.
    *PIDFDS.get_or_init(|| pidfd_open(unsafe { libc::getpid() }).is_ok())
}

/// Start `command` in `cwd` with steward's environment changed by `env` and then `extra_env`,
/// stdin from /dev/null and stdout and stderr on pipes, as the leader of a new session, in
/// the cgroup whose directory is open as `cgroup` if one is given.
/// `listen` are the listening sockets to pass (fds 3.., with `LISTEN_PID` set to the child's
/// pid; `extra_env` carries `LISTEN_FDS` and `LISTEN_FDNAMES`).
pub(super) async fn spawn(
    command: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    extra_env: &ExtraEnv<'_>,
    cgroup: Option<OwnedFd>,
    listen: &[RawFd],
    turn: Turn,
) -> io::Result<Spawned> {
    // Held until the child has exec'd (`process::Turn` says why).
    let _turn = turn;
    spawn_watched(command, cwd, env, extra_env, cgroup, listen, pidfds()).await
}

/// `spawn`, its exit noticed through a pidfd or, without `pidfd`, through SIGCHLD.
async fn spawn_watched(
    command: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    extra_env: &ExtraEnv<'_>,
    cgroup: Option<OwnedFd>,
    listen: &[RawFd],
    pidfd: bool,
) -> io::Result<Spawned> {
    let plan = Plan::new(command, cwd, env, extra_env, !listen.is_empty())?;
    // Copies at 3 + n and above, so that no dup2 to 3.. in the child overwrites one not yet
    // moved; closed again once the child has its own.
    let listen = listen
        .iter()
        .map(|&fd| dup_at_least(fd, 3 + listen.len() as c_int))
        .collect::<io::Result<Vec<_>>>()?;
    // Listening before the clone, so that no SIGCHLD of this child can be missed.
    let sigchld = if pidfd { None } else { Some(signal(SignalKind::child())?) };
    let stdin = open_null()?;
    let (stdout, stdout_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;
    let fds = [above_stdio(stdin)?, above_stdio(stdout_w)?, above_stdio(stderr_w)?];
    let pipes = [Some(stdout.as_raw_fd()), Some(stderr.as_raw_fd())];
    let stdout = receiver(stdout)?;
    let stderr = receiver(stderr)?;
    let before = boot_ticks();
    let pid = cloners::clone(Job { plan, fds, listen, cgroup }).await?;
    let after = boot_ticks();
    let mut exit = Exit::new(pid, sigchld).inspect_err(|_| abandon(pid))?;
    // The kernel stamps the child's start during the clone: when the clock's tick did not
    // change across it, that tick is the start `/proc/PID/stat` shows. Reading it there
    // instead made `/proc` keep entries for every child, which each exit then had to
    // invalidate (5% of stopping 5,000 programs).
    exit.start = before.filter(|_| before == after);
    let tree = Tree::new(pid as u32, pipes);
    let child = Child {
        pid: pid as u32,
        exit: super::Exit::LinuxSpawn(exit),
        stdout: Some(Box::new(stdout)),
        stderr: Some(Box::new(stderr)),
    };
    Ok(Spawned { child, tree: ProcessTree(tree, None) })
}

/// One child to clone: what it runs and the descriptors it gets, all owned, so that the
/// clone is safe whatever happens meanwhile to the task that asked for it.
struct Job {
    plan: Plan,
    /// stdin, stdout and stderr (each 3 or above).
    fds: [OwnedFd; 3],
    /// Listening sockets to pass, copied at 3 + their count or above.
    listen: Vec<OwnedFd>,
    /// The directory of the cgroup to start the child in.
    cgroup: Option<OwnedFd>,
}

impl Job {
    /// Clone the child (on the calling thread, suspended meanwhile) with `slots` if there are
    /// any, then close the descriptors it got copies of: else the pipes would never report EOF.
    fn run(mut self, slots: Option<&Slots>) -> io::Result<pid_t> {
        let cgroup = self.cgroup.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        // Sockets to pass would be above the slots: those children copy the whole table.
        let filled = if self.listen.is_empty() { Filled::new(slots, &self.fds) } else { None };
        match &filled {
            Some(f) => clone_exec(&mut self.plan, f.slots.fds, &self.listen, cgroup, f.slots.end),
            None => {
                let fds = self.fds.each_ref().map(AsRawFd::as_raw_fd);
                clone_exec(&mut self.plan, fds, &self.listen, cgroup, 0)
            }
        }
    }
}

// SAFETY: the plan's raw pointers point into the heap bytes of the `CString`s it owns, which
// move with it and are never shared; nothing else is thread-bound.
unsafe impl Send for Plan {}

/// The threads that clone children (the module doc says why), made as needed up to
/// [`cloners::max`], each with its own slots; they wait on a queue, so an idle one costs no
/// wakeups.
mod cloners {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Mutex, OnceLock};

    use super::{io, pid_t, Job, Slots};

    pub(crate) type Turn = Option<tokio::sync::SemaphorePermit<'static>>;

    /// Children that may be exec'ing at once: one for every two CPUs steward may use, 1 to
    /// 4. A child keeps a CPU busy through its exec and its own start-up, and each leads a
    /// session, which the kernel's autogroups (where on) give as much CPU as the whole of
    /// steward. With four on 2 cores, a crash storm of 5,000 programs made `status` ×3 to
    /// ×8 slower than idle; with one, ×1.1 to ×1.7, while starting 5,000 kept the
    /// baseline's pace (docs/benchmarks.md, section 16).
    pub(super) fn max() -> usize {
        static MAX: OnceLock<usize> = OnceLock::new();
        *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2).clamp(1, 4))
    }

    /// A place among the starts being prepared or cloned, of which there are at most twice
    /// as many as threads.
    pub(crate) async fn turn() -> Turn {
        static TURNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
        // Never closed, so acquiring cannot fail; were it to, the start goes ahead unbounded.
        TURNS.get_or_init(|| tokio::sync::Semaphore::new(2 * max())).acquire().await.ok()
    }

    struct Pool {
        queue: Mutex<mpsc::Sender<(Job, tokio::sync::oneshot::Sender<io::Result<pid_t>>)>>,
        jobs: Mutex<mpsc::Receiver<(Job, tokio::sync::oneshot::Sender<io::Result<pid_t>>)>>,
        threads: AtomicUsize,
        idle: AtomicUsize,
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let (queue, jobs) = mpsc::channel();
            Pool {
                queue: Mutex::new(queue),
                jobs: Mutex::new(jobs),
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }
        })
    }

    /// Clone `job`'s child on a cloning thread and return its pid once it has exec'd. If no
    /// thread can be made, the calling thread clones it (and is suspended meanwhile).
    pub(super) async fn clone(job: Job) -> io::Result<pid_t> {
        let pool = pool();
        let threads = pool.threads.load(Ordering::Acquire);
        if pool.idle.load(Ordering::Acquire) == 0
            && threads < max()
            && pool
                .threads
                .compare_exchange(threads, threads + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let made = std::thread::Builder::new()
                .name("steward-clone".into())
                .stack_size(256 << 10)
                .spawn(move || serve(pool));
            if let Err(e) = made {
                pool.threads.fetch_sub(1, Ordering::AcqRel);
                if threads == 0 {
                    tracing::debug!(
                        event = "spawn",
                        "no thread to start programs on ({e}); starting on this one"
                    );
                    return job.run(None);
                }
            }
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = pool.queue.lock().unwrap_or_else(|e| e.into_inner()).send((job, answer));
        if let Err(mpsc::SendError((job, _))) = sent {
            return job.run(None);
        }
        answered.await.map_err(|_| io::Error::other("the thread starting the program ended"))?
    }

    /// A cloning thread: takes jobs until steward ends.
    fn serve(pool: &'static Pool) {
        let slots = Slots::new();
        loop {
            pool.idle.fetch_add(1, Ordering::AcqRel);
            let next = pool.jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
            pool.idle.fetch_sub(1, Ordering::AcqRel);
            let Ok((job, answer)) = next else { return };
            let result = job.run(slots.as_ref());
            // The task that asked is gone (it was cancelled): nobody will wait for this child.
            if let Err(Ok(pid)) = answer.send(result) {
                super::abandon(pid);
            }
        }
    }
}

/// Everything the child needs, prepared by the parent. The pointer arrays point into the
/// `CString`s kept alongside, and end with a null pointer where exec wants one.
struct Plan {
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    /// The paths to exec, in order: the program itself when it has a slash, else the
    /// program in each PATH entry.
    candidates: Vec<*const c_char>,
    /// `/bin/sh <candidate> argv[1..]`, for a file without `#!`; slot 1 is filled in by
    /// the child.
    script_argv: Vec<*const c_char>,
    cwd: CString,
    /// `LISTEN_PID=` and room for the pid, which the child writes in (it is in `envp`).
    listen_pid: Option<Box<[u8]>>,
}

/// `LISTEN_PID=` plus room for any pid and the final NUL.
const LISTEN_PID: &[u8] = b"LISTEN_PID=";
const PID_ROOM: usize = 11;

impl Plan {
    fn new(
        command: &[String],
        cwd: &Path,
        env: &BTreeMap<String, String>,
        extra_env: &ExtraEnv<'_>,
        listen_pid: bool,
    ) -> io::Result<Plan> {
        let program = command.first().ok_or_else(|| invalid("empty command"))?;
        if program.is_empty() {
            return Err(io::ErrorKind::NotFound.into());
        }
        // The environment as std builds it: inherited, then the changes, sorted by name.
        let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        for (name, value) in env {
            vars.insert(name.into(), value.into());
        }
        for (name, value) in extra_env {
            match value {
                Some(value) => vars.insert(name.into(), value.clone()),
                None => vars.remove(OsStr::new(name)),
            };
        }
        vars.remove(OsStr::new("LISTEN_PID"));
        let candidates: Vec<CString> = if program.contains('/') {
            vec![cstring(program.as_bytes().to_vec())?]
        } else {
            // An unset PATH means glibc's default, as for execvp; an empty entry is the cwd.
            let path = vars.get(OsStr::new("PATH")).map_or(&b"/bin:/usr/bin"[..], |p| p.as_bytes());
            path.split(|&b| b == b':')
                .map(|dir| {
                    let dir = if dir.is_empty() { &b"."[..] } else { dir };
                    cstring([dir, b"/", program.as_bytes()].concat())
                })
                .collect::<io::Result<_>>()?
        };
        let args: Vec<CString> =
            command.iter().map(|a| cstring(a.as_bytes().to_vec())).collect::<io::Result<_>>()?;
        let envs: Vec<CString> = vars
            .into_iter()
            .map(|(name, value)| {
                let mut pair = name.into_vec();
                pair.push(b'=');
                pair.extend(value.into_vec());
                cstring(pair)
            })
            .collect::<io::Result<_>>()?;
        let with_null =
            |strings: &[CString]| strings.iter().map(|s| s.as_ptr()).chain([ptr::null()]).collect::<Vec<_>>();
        let argv = with_null(&args);
        let mut envp = with_null(&envs);
        let mut listen_pid = listen_pid.then(|| {
            let mut var = LISTEN_PID.to_vec();
            var.resize(LISTEN_PID.len() + PID_ROOM, 0);
            var.into_boxed_slice()
        });
        if let Some(var) = &mut listen_pid {
            envp.insert(envp.len() - 1, var.as_ptr().cast());
        }
        let mut script_argv = vec![SHELL.as_ptr(), ptr::null()];
        script_argv.extend_from_slice(&argv[1..]);
        let candidates_ptrs = candidates.iter().map(|c| c.as_ptr()).collect();
        // Moving a CString does not move its heap bytes, so the pointers stay valid.
        let _strings = args.into_iter().chain(envs).chain(candidates).collect();
        Ok(Plan {
            _strings,
            argv,
            envp,
            candidates: candidates_ptrs,
            script_argv,
            cwd: cstring(cwd.as_os_str().as_bytes().to_vec())?,
            listen_pid,
        })
    }
}

/// What the child reads, and where it writes its errno. Shared with it (CLONE_VM).
struct ChildArgs {
    parent: pid_t,
    fds: [RawFd; 3],
    /// The directory of the cgroup to join, or -1.
    cgroup: RawFd,
    /// Whether the child must join `cgroup` by writing to its `cgroup.procs` (else clone3
    /// started it there).
    join_by_write: AtomicBool,
    cwd: *const c_char,
    candidates: *const *const c_char,
    candidates_len: usize,
    argv: *const *const c_char,
    envp: *const *const c_char,
    script_argv: *mut *const c_char,
    /// The open-file limit to give the program (steward's own was raised), if any.
    nofile: Option<libc::rlimit>,
    /// Listening sockets, to become fds 3.. (each at 3 + `listen_len` or above).
    listen: *const RawFd,
    listen_len: usize,
    /// Where the child writes its pid, after `LISTEN_PID=` in `envp`; null without sockets.
    listen_pid: *mut u8,
    /// 0 until the child fails before or at exec.
    errno: AtomicI32,
    /// With a shared fd table (CLONE_FILES): what the child keeps when it unshares it (the
    /// descriptors below this); 0 when the table was copied at the clone.
    copy_end: AtomicU32,
    /// Set when the child could not unshare the table, before it changed anything in it.
    unshare_failed: AtomicBool,
}

/// Clone the child and let it exec; the calling thread is suspended meanwhile. Returns the
/// pid of a child that has exec'd (it may have exited since), or the error that stopped it.
/// With `copy_end` (not 0) the child shares the fd table until it unshares it, keeping the
/// descriptors below `copy_end`, which must include `fds`; if the kernel refuses either
/// step, sharing is turned off for good and the child is cloned again with a copy.
fn clone_exec(
    plan: &mut Plan,
    fds: [RawFd; 3],
    listen: &[OwnedFd],
    cgroup: RawFd,
    copy_end: libc::c_uint,
) -> io::Result<pid_t> {
    if copy_end > 0 {
        match clone_once(plan, fds, listen, cgroup, copy_end) {
            Err(Attempt::SharingRefused) => {
                SHARE_TABLE.store(false, Ordering::Relaxed);
                tracing::debug!(event = "spawn", "children copy the fd table: this kernel cannot unshare it");
            }
            other => return other.map_err(Attempt::into_io),
        }
    }
    clone_once(plan, fds, listen, cgroup, 0).map_err(Attempt::into_io)
}

/// Why one clone gave no child.
enum Attempt {
    /// CLONE_FILES or `CLOSE_RANGE_UNSHARE` was refused; nothing was changed.
    SharingRefused,
    Failed(io::Error),
}

impl Attempt {
    fn into_io(self) -> io::Error {
        match self {
            Attempt::SharingRefused => io::Error::other("the fd table could not be unshared"),
            Attempt::Failed(e) => e,
        }
    }
}

/// One clone of [`clone_exec`].
fn clone_once(
    plan: &mut Plan,
    fds: [RawFd; 3],
    listen: &[OwnedFd],
    cgroup: RawFd,
    copy_end: libc::c_uint,
) -> Result<pid_t, Attempt> {
    let mut script_argv = plan.script_argv.clone();
    let listen: Vec<RawFd> = listen.iter().map(AsRawFd::as_raw_fd).collect();
    let listen_pid = plan.listen_pid.as_mut().map_or(ptr::null_mut(), |v| v[LISTEN_PID.len()..].as_mut_ptr());
    let args = ChildArgs {
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        fds,
        cgroup,
        join_by_write: AtomicBool::new(false),
        cwd: plan.cwd.as_ptr(),
        candidates: plan.candidates.as_ptr(),
        candidates_len: plan.candidates.len(),
        argv: plan.argv.as_ptr(),
        envp: plan.envp.as_ptr(),
        script_argv: script_argv.as_mut_ptr(),
        nofile: super::fd_limit::for_children(),
        listen: listen.as_ptr(),
        listen_len: listen.len(),
        listen_pid,
        errno: AtomicI32::new(0),
        copy_end: AtomicU32::new(copy_end),
        unshare_failed: AtomicBool::new(false),
    };
    let files = if copy_end > 0 { libc::CLONE_FILES } else { 0 };
    // u128 makes the top 16-byte aligned, as the ABI wants. Never read from Rust, so it
    // need not be initialised.
    let mut stack: Vec<MaybeUninit<u128>> = Vec::with_capacity(STACK_SIZE / 16);
    // SAFETY: one past the end of the allocation; the stack grows down from there.
    let stack_top = unsafe { stack.as_mut_ptr().add(stack.capacity()) }.cast::<c_void>();
    // SAFETY: sigset_t is plain data, filled by sigfillset; the masks are this thread's.
    let pid = unsafe {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        // SAFETY: `child_main` only reads `args` (and the plan it points into) and stores
        // into `args.errno`; all of it outlives the call, since CLONE_VFORK returns only once
        // the child has exec'd or exited. The stack is ours alone.
        let arg = ptr::from_ref(&args).cast_mut().cast();
        let mut pid = -libc::ENOSYS;
        if cgroup >= 0 {
            pid = clone3_into_cgroup(cgroup, stack.as_mut_ptr().cast(), STACK_SIZE, arg, files);
        }
        let clone_error = if pid == -libc::ENOSYS {
            // No clone3 (an older kernel, or a seccomp filter that refuses it, as Docker's
            // does): the child joins its cgroup itself (`child_exec`), through the cgroup's
            // fd, which is not below `copy_end`: this child copies the table.
            args.join_by_write.store(cgroup >= 0, Ordering::Relaxed);
            let files = if cgroup >= 0 { 0 } else { files };
            args.copy_end.store(if files == 0 { 0 } else { copy_end }, Ordering::Relaxed);
            pid = libc::clone(
                child_main,
                stack_top,
                libc::CLONE_VM | libc::CLONE_VFORK | files | libc::SIGCHLD,
                arg,
            );
            io::Error::last_os_error()
        } else if pid < 0 {
            let error = io::Error::from_raw_os_error(-pid);
            pid = -1;
            error
        } else {
            io::Error::last_os_error()
        };
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut());
        if pid == -1 {
            // valgrind, for one, takes CLONE_VM with CLONE_FILES for a thread and refuses it.
            if files != 0 && clone_error.raw_os_error() == Some(libc::EINVAL) {
                return Err(Attempt::SharingRefused);
            }
            return Err(Attempt::Failed(clone_error));
        }
        pid
    };
    drop(stack);
    match args.errno.load(Ordering::Acquire) {
        0 => Ok(pid),
        errno => {
            reap(pid);
            if args.unshare_failed.load(Ordering::Relaxed) {
                return Err(Attempt::SharingRefused);
            }
            Err(Attempt::Failed(io::Error::from_raw_os_error(errno)))
        }
    }
}

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP)`: the child is born in the cgroup
/// whose directory is open as `cgroup`, and runs `child_main(arg)` on `stack`. Returns the
/// pid, or minus the errno.
///
/// Born there, not moved: moving a process (a write to `cgroup.procs`) takes the kernel's
/// cgroup threadgroup lock for writing, which waits for an RCU grace period, about 10 ms
/// after a quiet spell (measured), while this thread is suspended by the vfork.
///
/// libc has no clone3 wrapper; the child returns from the system call on its new stack,
/// where no Rust frame exists, so the call and the child's first steps are assembly.
///
/// # Safety
/// As for `libc::clone`: `stack` is `stack_size` bytes of memory nobody else uses until the
/// child has exec'd or exited, and `child_main` with `arg` may run in the child.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_into_cgroup(
    cgroup: RawFd,
    stack: *mut c_void,
    stack_size: usize,
    arg: *mut c_void,
    files: c_int,
) -> pid_t {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let clone_args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | files) as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: stack_size as u64,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup as u64,
    };
    let entry: extern "C" fn(*mut c_void) -> c_int = child_main;
    let ret: i64;
    // In the child (rax = 0) the stack pointer is the top of `stack` (16-byte aligned) and
    // every other register is the parent's: call child_main(arg), then exit with its value.
    // It never comes back here, so what it clobbers does not matter.
    std::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        "xor ebp, ebp",
        "mov rdi, r12",
        "call r13",
        "mov edi, eax",
        "mov eax, 60", // SYS_exit
        "syscall",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone3 => ret,
        in("rdi") ptr::from_ref(&clone_args),
        in("rsi") std::mem::size_of::<CloneArgs>(),
        in("r12") arg,
        in("r13") entry as usize,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret as pid_t
}

/// Elsewhere the child joins its cgroup itself, by a write (see the x86_64 version).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone3_into_cgroup(_: RawFd, _: *mut c_void, _: usize, _: *mut c_void, _: c_int) -> pid_t {
    -libc::ENOSYS
}

/// The child, on its own stack in the parent's memory: set up, then exec.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` of `clone_exec`, alive until we exec or exit.
    let args = unsafe { &*arg.cast::<ChildArgs>() };
    // SAFETY: as documented on `child_exec`; we are the vfork child.
    let errno = unsafe { child_exec(args) };
    args.errno.store(errno, Ordering::Release);
    // SAFETY: ends the child without running anything of the parent's (no atexit, no flush).
    unsafe { libc::_exit(127) }
}

/// Set the child up and exec the program; returns the errno that stopped it.
///
/// # Safety
/// Only in the vfork child of `clone_exec`, with `args` as it built it. Everything here is a
/// system call wrapper: async-signal-safe, no allocation, nothing that can panic.
unsafe fn child_exec(args: &ChildArgs) -> c_int {
    // First, before anything touches the shared table: a table of our own, with the
    // descriptors below `copy_end` (the slots among them).
    let copy_end = args.copy_end.load(Ordering::Relaxed);
    if copy_end > 0
        && libc::syscall(libc::SYS_close_range, copy_end, libc::c_uint::MAX, CLOSE_RANGE_UNSHARE) == -1
    {
        args.unshare_failed.store(true, Ordering::Relaxed);
        return errno();
    }
    if libc::setsid() == -1 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
        return errno();
    }
    // If the supervisor died before prctl, nobody would ever send the death signal.
    if libc::getppid() != args.parent {
        return libc::ESRCH;
    }
    // The open-file limit steward started with, not the one it raised for itself.
    if let Some(limit) = &args.nofile {
        if libc::setrlimit(libc::RLIMIT_NOFILE, limit) == -1 {
            return errno();
        }
    }
    // "0" is the writing process: the child moves itself before it can fork anything.
    if args.join_by_write.load(Ordering::Relaxed) {
        let procs = libc::openat(args.cgroup, c"cgroup.procs".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if procs == -1 || libc::write(procs, c"0".as_ptr().cast(), 1) == -1 {
            return errno();
        }
        libc::close(procs);
    }
    // The parent made every source fd >= 3, so no dup2 can overwrite a later source.
    for (target, &fd) in (0..).zip(&args.fds) {
        if libc::dup2(fd, target) == -1 {
            return errno();
        }
    }
    // The listening sockets as 3.. (dup2 clears close-on-exec on the copy), and the pid they
    // are for, as socket activation wants it: only the child knows it.
    for i in 0..args.listen_len {
        if libc::dup2(*args.listen.add(i), 3 + i as c_int) == -1 {
            return errno();
        }
    }
    if !args.listen_pid.is_null() {
        write_decimal(args.listen_pid, libc::getpid());
    }
    // Only stdin, stdout and stderr (and the sockets) reach the program. steward's other
    // descriptors are close-on-exec already (its own, and what it inherited:
    // `hide_inherited_fds`); closing them here keeps that true for one opened without the
    // flag. Kernels before 5.9 have no close_range (ENOSYS): there the flag alone does it.
    let first = 3 + args.listen_len as libc::c_uint;
    let (first, last, flags): (libc::c_uint, libc::c_uint, libc::c_uint) = (first, libc::c_uint::MAX, 0);
    libc::syscall(libc::SYS_close_range, first, last, flags);
    if libc::chdir(args.cwd) == -1 {
        return errno();
    }
    reset_signals();
    // Try each candidate as execvp does: go on while the file is missing or not ours to run,
    // report EACCES if any said so, else the last error; stop at any other error.
    let mut eacces = false;
    let mut last = libc::ENOENT;
    for i in 0..args.candidates_len {
        let path = *args.candidates.add(i);
        libc::execve(path, args.argv, args.envp);
        last = errno();
        if last == libc::ENOEXEC {
            *args.script_argv.add(1) = path;
            libc::execve(SHELL.as_ptr(), args.script_argv, args.envp);
            last = errno();
        }
        match last {
            libc::EACCES => eacces = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return last,
        }
    }
    if eacces {
        libc::EACCES
    } else {
        last
    }
}

/// Writes `n` (> 0) in decimal at `at`, then a NUL: at most `PID_ROOM` bytes.
///
/// # Safety
/// `at` points to `PID_ROOM` writable bytes. No allocation: it runs in the vfork child.
unsafe fn write_decimal(at: *mut u8, n: pid_t) {
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (n.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        *at.add(i) = digits[len - 1 - i];
    }
    *at.add(len) = 0;
}

/// A close-on-exec copy of `fd` numbered `min` or above.
fn dup_at_least(fd: RawFd, min: c_int) -> io::Result<OwnedFd> {
    // SAFETY: duplicates an open fd into a new one that nothing else owns.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if copy == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Give every signal that has a handler its default action back, and SIGPIPE too (Rust
/// ignores it; std resets it for children), then unblock all signals. glibc's two internal
/// signals cannot be changed through its `sigaction`; they are only ever sent to a thread
/// of steward, never to the child.
///
/// # Safety
/// As `child_exec`.
unsafe fn reset_signals() {
    let mut default: libc::sigaction = std::mem::zeroed();
    default.sa_sigaction = libc::SIG_DFL;
    let mut current: libc::sigaction = std::mem::zeroed();
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if libc::sigaction(sig, ptr::null(), &mut current) == 0
            && current.sa_sigaction != libc::SIG_DFL
            && (current.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
        {
            libc::sigaction(sig, &default, ptr::null_mut());
        }
    }
    let empty: libc::sigset_t = std::mem::zeroed();
    libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno; in the child that is the parent thread's slot,
    // which the suspended parent does not use.
    unsafe { *libc::__errno_location() }
}

/// The exit of a child started here: watched until it is reaped, then its status.
pub(super) struct Exit {
    pid: pid_t,
    /// Its start time in clock ticks since boot, when known without `/proc`.
    start: Option<u64>,
    /// Dropped once the child is reaped.
    watch: Option<Watch>,
    status: Option<ExitStatus>,
}

/// What tells that a child may have exited.
enum Watch {
    /// Its pidfd, which turns readable when it has exited.
    Pidfd(Watched),
    /// Any SIGCHLD, without pidfds: the child may or may not be the one that exited.
    Sigchld(Signal),
}

impl Watch {
    /// Wait for the next sign that the child may have exited.
    async fn changed(&mut self) -> io::Result<()> {
        match self {
            Watch::Pidfd(pidfd) => {
                // Cleared, not returned: a pidfd stays readable once its process has exited,
                // and the caller reaps before it waits again.
                let tick = pidfd.ready().await;
                pidfd.clear_ready(tick);
                Ok(())
            }
            Watch::Sigchld(signal) => match signal.recv().await {
                Some(()) => Ok(()),
                None => Err(io::Error::other("the SIGCHLD stream ended")),
            },
        }
    }
}

impl Exit {
    fn new(pid: pid_t, sigchld: Option<Signal>) -> io::Result<Exit> {
        let watch = match sigchld {
            Some(signal) => Watch::Sigchld(signal),
            None => Watch::Pidfd(Watched::new(pidfd_open(pid)?)?),
        };
        Ok(Exit { pid, start: None, watch: Some(watch), status: None })
    }

    pub(super) fn start(&self) -> Option<u64> {
        self.start
    }

    /// See `process::Child::wait`: reap if the child has exited, else wait for a sign that
    /// it may have, and try again. Cancel-safe, as both waits are.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let pid = self.pid;
            let reaped = match &mut self.watch {
                None => return Err(io::Error::other("the child is no longer watched")),
                // Reaped once the pidfd says the child exited, not before: the program's task
                // polls this wait anew at each of its events, and a reap that finds nothing
                // was a system call each time (5,000 of them when all stop).
                Some(Watch::Pidfd(pidfd)) => {
                    let tick = pidfd.ready().await;
                    let reaped = try_reap(pid)?;
                    if reaped.is_none() {
                        pidfd.clear_ready(tick);
                    }
                    reaped
                }
                Some(watch @ Watch::Sigchld(_)) => match try_reap(pid)? {
                    Some(status) => Some(status),
                    None => {
                        watch.changed().await?;
                        None
                    }
                },
            };
            if let Some(status) = reaped {
                self.status = Some(status);
                self.watch = None;
            }
        }
    }
}

impl Drop for Exit {
    /// The supervisor always waits, but should a running child be dropped, a task reaps it
    /// when it exits (as tokio does for its own children), so it does not stay a zombie.
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let (Some(mut watch), Ok(runtime)) = (self.watch.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let pid = self.pid;
        runtime.spawn(async move {
            while let Ok(None) = try_reap(pid) {
                if watch.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// CLOCK_BOOTTIME in the clock ticks (`sysconf(_SC_CLK_TCK)`) of `/proc/PID/stat`'s start
/// time, which the kernel gets by dividing the same clock's nanoseconds. Both see this
/// process's time namespace. `None` if the tick does not divide a second.
fn boot_ticks() -> Option<u64> {
    static NS_PER_TICK: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let per_tick = (*NS_PER_TICK.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&hz| hz > 0)?;
        (1_000_000_000 % hz == 0).then(|| 1_000_000_000 / hz)
    }))?;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let ns = u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?;
    Some(ns / per_tick)
}

/// Reap `pid` if it has exited.
fn try_reap(pid: pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    // SAFETY: `pid` is our unreaped child (its pidfd or the caller holds it).
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(Some(ExitStatus::from_raw(status))),
    }
}

/// Wait for a child that has exited or is about to.
fn reap(pid: pid_t) {
    let mut status = 0;
    // SAFETY: `pid` is our child; no signal can interrupt for long (EINTR is retried).
    while unsafe { libc::waitpid(pid, &mut status, 0) } == -1 && errno() == libc::EINTR {}
}

/// Kill and reap a child we could not take charge of.
fn abandon(pid: pid_t) {
    // SAFETY: `pid` is our unreaped child, so the pid is still its.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

fn pidfd_open(pid: pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn open_null() -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated path and plain flags.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new pipe, both ends close-on-exec: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fd`, moved to a number of 3 or more if it is 0, 1 or 2 (steward itself started with
/// some of those closed), so that the child's dup2 onto 0, 1 and 2 cannot clobber it.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicates an open fd into a new one that nothing else owns.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// Our end of an output pipe, non-blocking, for the runtime to read.
fn receiver(fd: OwnedFd) -> io::Result<PipeReader> {
    // SAFETY: plain fcntl on an open fd (only our end: the child's stays blocking).
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(PipeReader(Watched::new(fd)?))
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| invalid("nul byte found in provided data"))
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use tokio::io::AsyncReadExt;

    use super::*;

    async fn start(
        command: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
        extra_env: &ExtraEnv<'_>,
    ) -> io::Result<Spawned> {
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        spawn(&command, cwd, &env, extra_env, None, &[], turn().await).await
    }

    async fn run(command: &[&str]) -> io::Result<Spawned> {
        start(command, Path::new("/"), &[], &[]).await
    }

    /// Wait for the child and return (status, stdout, stderr).
    async fn finish(mut spawned: Spawned) -> (ExitStatus, String, String) {
        let mut out = spawned.child.stdout.take().unwrap();
        let mut err = spawned.child.stderr.take().unwrap();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let (status, r1, r2) =
            tokio::join!(spawned.child.wait(), out.read_to_end(&mut o), err.read_to_end(&mut e));
        r1.unwrap();
        r2.unwrap();
        (status.unwrap(), String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    /// The start time the spawn knows is the one `/proc` shows: the sweep compares them.
    #[tokio::test]
    async fn the_start_time_known_at_spawn_is_the_one_proc_shows() {
        let mut known = 0;
        for _ in 0..20 {
            let mut spawned = run(&["sleep", "10"]).await.unwrap();
            let pid = spawned.child.id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let proc_start = steward_core::sweep::parse_stat(&stat).unwrap().start;
            if let Some(start) = spawned.child.start() {
                assert_eq!(start, proc_start, "child {pid}");
                known += 1;
            }
            spawned.tree.kill().unwrap();
            spawned.child.wait().await.unwrap();
        }
        // A tick is 10 ms and a spawn well under one, so most fall within one tick; on a
        // loaded machine fewer do, and those read /proc.
        assert!(known >= 1, "known for none of 20 spawns");
    }

    /// Many starts at once share at most `cloners::max()` cloning threads: one for every two
    /// CPUs, so that a storm of starts leaves CPU to the rest (docs/benchmarks.md, section 16).
    #[tokio::test]
    async fn many_starts_at_once_share_a_few_cloning_threads() {
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..24 {
            starts.spawn(async { finish(run(&["true"]).await.unwrap()).await.0 });
        }
        while let Some(status) = starts.join_next().await {
            assert!(status.unwrap().success());
        }
        let cloners = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "steward-clone")
            })
            .count();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(cloners::max(), (cpus / 2).clamp(1, 4));
        assert!((1..=cloners::max()).contains(&cloners), "{cloners} cloning threads on {cpus} CPUs");
    }

    #[tokio::test]
    async fn exit_codes_and_output_come_back() {
        let (status, out, err) =
            finish(run(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]).await.unwrap()).await;
        assert_eq!((status.code(), out.as_str(), err.as_str()), (Some(3), "out\n", "err\n"));
        let mut spawned = run(&["/bin/sh", "-c", "kill -TERM $$"]).await.unwrap();
        let status = spawned.child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        // Asking again gives the same status.
        assert_eq!(spawned.child.wait().await.unwrap(), status);
    }

    /// Without pidfds (old kernels, valgrind), every SIGCHLD wakes every waiting child and
    /// each reaps only its own pid: a child that is still running when another exits keeps
    /// waiting, and gets its own status later.
    #[tokio::test]
    async fn without_pidfds_each_child_gets_its_own_exit_through_sigchld() {
        let start = |script: &str| {
            let command = ["/bin/sh".to_string(), "-c".into(), script.into()];
            async move { spawn_watched(&command, Path::new("/"), &BTreeMap::new(), &[], None, &[], false).await }
        };
        let mut long = start("exec sleep 1000").await.unwrap();
        let mut short = start("exit 3").await.unwrap();
        assert!(matches!(
            &long.child.exit,
            super::super::Exit::LinuxSpawn(Exit { watch: Some(Watch::Sigchld(_)), .. })
        ));
        let tree = &long.tree;
        let (long_status, short_status) = tokio::join!(long.child.wait(), async {
            let status = short.child.wait().await.unwrap();
            tree.kill().unwrap();
            status
        });
        assert_eq!(short_status.code(), Some(3));
        assert_eq!(long_status.unwrap().signal(), Some(libc::SIGKILL));
    }

    /// Many descriptors open in steward: the child shares the table only until it unshares
    /// it, and gets just its stdin, stdout and stderr; the slots go back to /dev/null, so
    /// the pipe still ends when the child does (else `finish` would time out).
    #[tokio::test]
    async fn the_child_unshares_the_fd_table_and_gets_only_its_three() {
        let held: Vec<OwnedFd> = (0..500).map(|_| open_null().unwrap()).collect();
        let spawned = run(&["/bin/sh", "-c", "exec ls /proc/self/fd"]).await.unwrap();
        let (status, out, _) = tokio::time::timeout(testkit::DEADLINE, finish(spawned))
            .await
            .expect("the pipes did not end with the child: a slot still holds a write end");
        assert!(status.success());
        // 0, 1, 2, and the directory `ls` has open while it lists.
        let fds: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fds.len(), 4, "{out}");
        assert_eq!(&fds[..3], ["0", "1", "2"], "{out}");
        // Linux 5.9 or later (not valgrind) takes the shared table.
        assert!(SHARE_TABLE.load(Ordering::Relaxed), "sharing the fd table was refused");
        drop(held);
    }

    #[tokio::test]
    async fn the_child_leads_its_own_session_and_its_tree_can_be_killed() {
        let mut spawned = run(&["sleep", "1000"]).await.unwrap();
        let pid = spawned.child.id() as pid_t;
        // SAFETY: plain system call.
        assert_eq!(unsafe { libc::getsid(pid) }, pid);
        spawned.tree.kill().unwrap();
        assert_eq!(spawned.child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    }

    /// The child starts in the cgroup it is given, when this user may make one (root).
    #[tokio::test]
    async fn the_child_starts_in_its_cgroup() {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").to_owned();
        let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .find(|m| Path::new(m).join("cgroup.controllers").exists());
        let Some(mount) = mount else { return };
        let name = format!("steward-unit-test-{}", std::process::id());
        let dir = Path::new(mount).join(own.trim_start_matches('/')).join(&name);
        if std::fs::create_dir(&dir).is_err() {
            eprintln!("skipped: cannot make a cgroup here");
            return;
        }
        let fd = std::fs::File::open(&dir).unwrap();
        let command = ["cat".to_string(), "/proc/self/cgroup".into()];
        let spawned =
            spawn(&command, Path::new("/"), &BTreeMap::new(), &[], Some(fd.into()), &[], turn().await)
                .await
                .unwrap();
        let (status, out, _) = finish(spawned).await;
        std::fs::remove_dir(&dir).unwrap();
        assert!(status.success());
        let line = out.lines().find(|l| l.starts_with("0::")).unwrap();
        assert!(line.ends_with(&format!("/{name}")), "{out}");
    }

    #[tokio::test]
    async fn signals_are_unblocked_and_sigpipe_is_not_ignored() {
        // Exec'd directly, so its status shows what it inherited from the spawn.
        let (status, out, _) = finish(run(&["cat", "/proc/self/status"]).await.unwrap()).await;
        assert!(status.success());
        let field = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {out}"));
            u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
        };
        assert_eq!(field("SigBlk:"), 0, "{out}");
        assert_eq!(field("SigCgt:"), 0, "{out}");
        assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    /// PR_SET_PDEATHSIG fires when the thread that cloned exits: children are cloned on
    /// threads that never end, so one outlives the thread (and runtime) that asked for it.
    #[test]
    fn the_child_outlives_the_thread_that_asked_for_it() {
        let (pid, tid) = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let spawned = runtime.block_on(run(&["sleep", "1000"])).unwrap();
            let pid = spawned.child.id() as pid_t;
            drop(runtime);
            // Outside a runtime, dropping the child closes its pidfd and leaves it to us.
            drop(spawned);
            // SAFETY: gettid has no preconditions.
            (pid, unsafe { libc::gettid() })
        })
        .join()
        .unwrap();
        // Gone from /proc only after the kernel has sent any death signal.
        testkit::wait_until(testkit::DEADLINE, "the thread to be gone", || {
            (!Path::new(&format!("/proc/self/task/{tid}")).exists()).then_some(())
        });
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
        };
        let kill = 1 << (libc::SIGKILL - 1);
        assert_eq!(field("ShdPnd:") & kill, 0, "the child was sent SIGKILL:\n{status}");
        assert_eq!(field("SigPnd:") & kill, 0, "the child was sent SIGKILL:\n{status}");
        assert!(!status.contains("State:\tZ"), "the child has ended:\n{status}");
        // SAFETY: our unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(
            testkit::wait_until(testkit::DEADLINE, "the child to end", || try_reap(pid).unwrap()).signal(),
            Some(libc::SIGKILL)
        );
    }

    #[tokio::test]
    async fn the_environment_is_inherited_then_changed() {
        let (_, out, _) = finish(
            start(
                &["/bin/sh", "-c", r#"echo "$A-$B-${HOME-unset}-${PATH:+path}""#],
                Path::new("/"),
                &[("A", "1"), ("B", "overridden")],
                &[("B", Some("2".into())), ("HOME", None)],
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(out, "1-2-unset-path\n");
    }

    #[tokio::test]
    async fn a_bare_name_is_looked_up_on_the_childs_path() {
        let (status, out, _) = finish(run(&["sh", "-c", "echo found"]).await.unwrap()).await;
        assert_eq!((status.code(), out.as_str()), (Some(0), "found\n"));
        // An empty PATH entry is the cwd, and a file without `#!` runs with /bin/sh.
        let dir = testkit::tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "echo script ran in \"$PWD\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = Some(":/no/such/dir".into());
        let (status, out, _) =
            finish(start(&["script"], dir.path(), &[], &[("PATH", path)]).await.unwrap()).await;
        assert_eq!(status.code(), Some(0));
        assert_eq!(out, format!("script ran in {}\n", dir.path().display()));
        // The PATH searched is the child's: without a usable entry, nothing is found.
        let path = Some("/no/such/dir".into());
        let err = start(&["sh"], Path::new("/"), &[], &[("PATH", path)]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn spawn_errors_keep_their_kind() {
        let err = run(&["/no/such/program"]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let err = run(&["no-such-program-anywhere"]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let dir = testkit::tempfile::tempdir().unwrap();
        let file = dir.path().join("not-executable");
        std::fs::write(&file, "echo no\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = run(&[file.to_str().unwrap()]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = start(&["sh", "-c", "true"], &dir.path().join("missing"), &[], &[]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let err = run(&["sh", "-c", "a\0b"]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let err = run(&[]).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
}
