//! Starting a program and stopping its whole process tree.
//!
//! The platform file is chosen once, here, so the rest of the daemon never sees a `#[cfg]`:
//! - `unix.rs`: each program leads its own session (so its own process group); graceful stop
//!   signals the group, kill is SIGKILL to the group; on Linux the child also gets
//!   PR_SET_PDEATHSIG so a supervisor killed with -9 takes it down.
//! - `linux.rs`: on Linux, programs are started by steward itself with a vfork-style
//!   clone instead of through tokio's `Command` (which has to fork for the setsid and
//!   PR_SET_PDEATHSIG above); the module doc says why and how.
//! - `windows/`: each program runs in its own Job Object with KILL_ON_JOB_CLOSE (`mod.rs`);
//!   graceful stop is a console control event (`console.rs`) or WM_CLOSE; kill terminates
//!   the job. `windows/stop.rs` holds the pure decisions, compiled on every OS.
//! - `contain/`: on Linux, a cgroup per program where steward may make one (which holds what
//!   leaves the process group too), and the records in the state dir from which a steward
//!   started after one that died ends what it left.

use std::ffi::OsString;
use std::io;

use steward_core::config::parse::OsEnv;
use steward_core::config::{OnPlatform, Platform, ProgramSpec, StopSignal};
use steward_core::fsm::ExitStatus;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows/mod.rs")]
mod platform;

#[cfg(windows)]
pub(crate) use platform::job_process_ids;
/// A weak reference to a program's process tree, for sampling its resources (`resources`)
/// from elsewhere: its process group on Unix, its Job Object on Windows (held weakly, so it
/// does not keep the job open). The tree may be gone by the time it is used.
pub use platform::TreeRef;

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
mod linux;

pub mod contain;
/// steward's own limit on open files: raised at start, given back to its programs.
#[cfg_attr(unix, path = "fd_limit/unix.rs")]
#[cfg_attr(not(unix), path = "fd_limit/unsupported.rs")]
pub mod fd_limit;

/// One malloc arena for all of steward's threads (glibc; elsewhere nothing). glibc gives each
/// thread that allocates an arena of its own, and the API's, cloning and cgroup threads each
/// kept pages of theirs resident for a few allocations: idle memory is the first goal, and
/// these threads allocate little, so sharing the main arena costs no measurable time.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before the other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives back to the OS the heap pages nothing uses any more (glibc; elsewhere nothing).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The Windows backend's pure decisions (stop signal mapping, creation flags), compiled on
/// every OS so that their tests run everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
#[path = "windows/stop.rs"]
mod windows_stop;

/// A started program: the child (for its pid, exit status and pipes) and a handle on its
/// whole process tree (process group / Job Object).
pub struct Spawned {
    pub child: Child,
    pub tree: ProcessTree,
}

/// A started process. Dropping it does not kill the process (unless its tokio `Command` asked
/// for `kill_on_drop`); a dropped child is reaped in the background once it exits.
pub struct Child {
    pid: u32,
    exit: Exit,
    /// The process's stdout, when it was piped.
    pub stdout: Option<Output>,
    /// The process's stderr, when it was piped.
    pub stderr: Option<Output>,
}

/// One of a child's output pipes.
pub type Output = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// How a child's exit is awaited, by how it was started.
enum Exit {
    /// By tokio's `Command`: `spawn_command`, and programs on systems other than Linux.
    /// Boxed: it is 168 bytes, and on Linux every program's task would be sized for it.
    Tokio(Box<tokio::process::Child>),
    /// By `linux.rs`: through a pidfd, or SIGCHLD where there are none.
    #[cfg(target_os = "linux")]
    LinuxSpawn(linux::Exit),
}

impl Child {
    fn from_tokio(mut child: tokio::process::Child) -> io::Result<Child> {
        let pid = child.id().ok_or_else(|| io::Error::other("the child was reaped before it was adopted"))?;
        let stdout = child.stdout.take().map(|pipe| Box::new(pipe) as Output);
        let stderr = child.stderr.take().map(|pipe| Box::new(pipe) as Output);
        Ok(Child { pid, exit: Exit::Tokio(Box::new(child)), stdout, stderr })
    }

    /// The process id. It stays valid until the child has been waited for.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// When the process started, in clock ticks since boot (as `/proc/PID/stat` says it),
    /// when the spawn could tell without reading it there.
    fn start(&self) -> Option<u64> {
        match &self.exit {
            #[cfg(target_os = "linux")]
            Exit::LinuxSpawn(exit) => exit.start(),
            Exit::Tokio(_) => None,
        }
    }

    /// Wait for the process to exit (reaping it), then return its status; again the same
    /// status after that. Cancel-safe: dropping the future before it is ready loses nothing.
    pub async fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        match &mut self.exit {
            Exit::Tokio(child) => child.wait().await,
            #[cfg(target_os = "linux")]
            Exit::LinuxSpawn(exit) => exit.wait().await,
        }
    }
}

impl Spawned {
    /// Record this tree in `state_dir` for the sweep by a later steward, should this one die
    /// (Linux; elsewhere it does nothing).
    pub fn record(&self, state_dir: &std::path::Path, tree: &str, program: &str) -> io::Result<()> {
        contain::record(state_dir, tree, program, self.child.id(), self.child.start(), self.tree.1.as_ref())
    }
}

/// Handle on a program's whole process tree: its process group or Job Object, and on Linux
/// its cgroup when it has one. Dropping it does not kill anything on Unix; on Windows it
/// closes the Job Object handle, which kills what is left in the job.
pub struct ProcessTree(platform::Tree, Option<contain::Cgroup>);

impl ProcessTree {
    /// Ask the program to stop the way `signal` says. `StopSignal::None` does nothing.
    pub fn signal(&self, signal: StopSignal) -> io::Result<()> {
        self.0.signal(signal)
    }

    /// Kill every process in the tree at once: the group, and with a cgroup also what left
    /// the group. Not finding any process is not an error.
    pub fn kill(&self) -> io::Result<()> {
        let group = self.0.kill();
        if let Some(cgroup) = &self.1 {
            cgroup.kill()?;
        }
        group
    }

    /// A reference for sampling the tree's resources from elsewhere (`resources`). It does
    /// not keep the tree alive.
    pub fn reference(&self) -> TreeRef {
        self.0.reference()
    }

    /// Make `bytes` a hard limit on the tree's memory, enforced by the OS: the Job Object's
    /// memory limit on Windows. Unix has no such limit for a process group (only cgroups),
    /// so there it does nothing.
    pub fn limit_memory(&self, bytes: u64) -> io::Result<()> {
        self.0.limit_memory(bytes)
    }
}

/// The platform this binary runs on: the config parser checks a config against it (the
/// pure core never asks the OS; `steward check --os` names another one).
pub const HOST_PLATFORM: Platform = if cfg!(target_os = "linux") {
    Platform::Linux
} else if cfg!(target_os = "macos") {
    Platform::MacOs
} else if cfg!(windows) {
    Platform::Windows
} else {
    Platform::OtherUnix
};

/// The parser's environment on this machine: its variables, its files, this platform.
pub fn host_env() -> OnPlatform<OsEnv> {
    OnPlatform { env: OsEnv, platform: HOST_PLATFORM }
}

/// Variables to set (`Some`) or remove (`None`) on top of a program's `env`.
pub type ExtraEnv<'a> = [(&'a str, Option<OsString>)];

/// Start `spec.command` with its cwd and env, stdin from the null device and stdout and
/// stderr on pipes, in a tree of its own. `extra_env` applies after `spec.env`: a value sets
/// a variable, `None` removes an inherited one (the program task removes the service
/// manager's variables this way). `tree` names its cgroup, where it gets one: unique to the
/// program's task, so that a reload's new task never shares it with the old one.
///
/// `listen` are listening sockets to pass (`extra_env` has `sockets::child_env`): on Linux as
/// systemd's socket activation does (fds 3.., and `LISTEN_PID`), on Windows through the
/// socket handoff (`sockets::Handoff`, which adds its own two variables). Elsewhere a
/// non-empty `listen` is an error.
///
/// `turn` is the start's place, from [`turn`].
pub async fn spawn(
    spec: &ProgramSpec,
    extra_env: &ExtraEnv<'_>,
    tree: &str,
    listen: &[&socket2::Socket],
    turn: Turn,
) -> io::Result<Spawned> {
    let spawned = spawn_program(spec, extra_env, tree, listen, turn).await?;
    if let (true, Some(bytes)) = (spec.hard_memory_limit, spec.max_memory) {
        if let Err(e) = spawned.tree.limit_memory(bytes) {
            let _ = spawned.tree.kill();
            return Err(io::Error::new(e.kind(), format!("cannot set hard_memory_limit: {e}")));
        }
    }
    Ok(spawned)
}

/// A place among the programs being started at once. Only a few starts are prepared at a
/// time: thousands of programs starting together would otherwise each hold a start's state
/// (a copy of the environment, the spawn's future: over a KB) while they wait, and the
/// heap keeps the pages it grew to, with the programs' lasting state scattered over them
/// (docs/benchmarks.md, section 15). So a start waits for its turn before any of that is
/// made, and holds it until its child has exec'd. Linux only; elsewhere every start goes.
pub struct Turn(#[cfg(target_os = "linux")] linux::Turn);

/// Waits for a [`Turn`].
pub async fn turn() -> Turn {
    #[cfg(target_os = "linux")]
    return Turn(linux::turn().await);
    #[cfg(not(target_os = "linux"))]
    Turn()
}

/// Linux starts programs itself (`linux.rs`), each in its cgroup when containment has one.
#[cfg(target_os = "linux")]
async fn spawn_program(
    spec: &ProgramSpec,
    extra_env: &ExtraEnv<'_>,
    tree: &str,
    listen: &[&socket2::Socket],
    turn: Turn,
) -> io::Result<Spawned> {
    use std::os::fd::AsRawFd;
    // The child starts in the cgroup: nothing it forks can be missed.
    let cgroup = contain::for_program(tree)?;
    let (cgroup, dir) = cgroup.unzip();
    let listen: Vec<std::os::fd::RawFd> = listen.iter().map(|s| s.as_raw_fd()).collect();
    let mut spawned =
        linux::spawn(&spec.command, &spec.cwd, &spec.env, extra_env, dir, &listen, turn.0).await?;
    spawned.tree.1 = cgroup;
    Ok(spawned)
}

/// Windows goes through tokio's `Command`; the sockets go to the process it creates, and to
/// no other, through the handoff server (`sockets::Handoff`).
#[cfg(windows)]
async fn spawn_program(
    spec: &ProgramSpec,
    extra_env: &ExtraEnv<'_>,
    _tree: &str,
    listen: &[&socket2::Socket],
    _turn: Turn,
) -> io::Result<Spawned> {
    let cmd = program_command(spec, extra_env)?;
    if listen.is_empty() {
        return spawn_command(cmd);
    }
    let (child, tree) = platform::spawn_offering(&spec.name, cmd, listen)?;
    Ok(Spawned { child: Child::from_tokio(child)?, tree: ProcessTree(tree, None) })
}

/// Other systems go through tokio's `Command`, and pass no sockets.
#[cfg(all(unix, not(target_os = "linux")))]
async fn spawn_program(
    spec: &ProgramSpec,
    extra_env: &ExtraEnv<'_>,
    _tree: &str,
    listen: &[&socket2::Socket],
    _turn: Turn,
) -> io::Result<Spawned> {
    if !listen.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "passing sockets to programs is supported on Linux and Windows only, for now",
        ));
    }
    spawn_command(program_command(spec, extra_env)?)
}

/// A program's command for tokio: its args, cwd and env, `extra_env` on top; stdin from the
/// null device, stdout and stderr on pipes.
#[cfg(not(target_os = "linux"))]
fn program_command(spec: &ProgramSpec, extra_env: &ExtraEnv) -> io::Result<tokio::process::Command> {
    use std::process::Stdio;
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    for (name, value) in extra_env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    Ok(cmd)
}

/// Start an already configured command in a tree of its own, as programs are (health-check
/// commands and alert commands use this, so that a timeout can kill all they started).
pub fn spawn_command(mut cmd: tokio::process::Command) -> io::Result<Spawned> {
    platform::prepare(&mut cmd);
    let child = cmd.spawn()?;
    let tree = platform::Tree::adopt(&child)?;
    Ok(Spawned { child: Child::from_tokio(child)?, tree: ProcessTree(tree, None) })
}

/// Keep the descriptors steward was started with, other than stdin, stdout and stderr, from
/// every process it starts (programs, health checks, alert commands): a parent that leaks
/// one to steward must not leak it to them all. Call once at startup. Unix only: Windows
/// programs get only the handles steward passes them on purpose.
pub fn hide_inherited_fds() -> io::Result<()> {
    #[cfg(unix)]
    return platform::hide_inherited_fds();
    #[cfg(not(unix))]
    Ok(())
}

/// The portable form of how a process ended.
pub fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    platform::exit_status(status)
}
