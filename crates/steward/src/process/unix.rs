//! Unix process control.
//!
//! - Each program is made a session leader (`setsid` between fork and exec: in `prepare` for a
//!   tokio `Command`, in the child of `linux.rs` for programs on Linux), so it leads its
//!   own process group whose id is its pid. Everything it forks stays in that group unless it
//!   deliberately calls setsid/setpgid itself, so signalling the group reaches the whole tree.
//! - On Linux the child also asks for `PR_SET_PDEATHSIG = SIGKILL`: if the supervisor dies,
//!   even by `kill -9`, the kernel kills the program. The signal fires when the *thread* that
//!   forked exits, which is why the supervisor spawns from its single runtime thread (see
//!   `cli::run`), never from a short-lived blocking-pool thread. Descendants of the program
//!   are not covered by this, nor is a program that changed its uid (the kernel clears the
//!   setting then): the next steward on the same state dir sweeps them (`contain/`), and
//!   under systemd the unit's control group takes care of them.
//! - A group is signalled with `killpg`. After the leader has been reaped its pid could in
//!   theory be reused as a new group id; the supervisor sweeps the group right after the reap,
//!   and Linux hands out pids sequentially, so the window is a few microseconds wide.
//! - On Linux the child's stdout and stderr pipes are made 1 MiB big when it is adopted,
//!   within a budget for all programs (`logs::grow_pipe` explains why there is one).
//! - `SIGCONT` follows every stop signal so that a stopped (SIGSTOP'd) program can act on it,
//!   as runit and s6 do.

use std::io;

use steward_core::config::StopSignal;
use steward_core::fsm::ExitStatus;

pub(super) fn prepare(cmd: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    let parent = std::process::id() as libc::pid_t;
    let nofile = super::fd_limit::for_children();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, setrlimit, prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // The open-file limit steward started with, not the one it raised for itself.
            if let Some(limit) = &nofile {
                if libc::setrlimit(libc::RLIMIT_NOFILE, limit) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The supervisor may have died between fork and prctl: then nobody would
                // ever send the death signal, so give up now.
                if libc::getppid() != parent {
                    return Err(io::Error::other("the supervisor exited during spawn"));
                }
            }
            Ok(())
        });
    }
}

pub(super) struct Tree {
    group: TreeRef,
    /// The child's stdout and stderr pipes, enlarged (Linux) so that a program writing
    /// flat out is not held up by the 64 KiB default pipe while its log is written
    /// (docs/benchmarks.md: it cut capture CPU by ~15%). Holding these keeps their share
    /// of the supervisor's pipe budget until the process is gone.
    #[cfg(target_os = "linux")]
    _pipes: [Option<crate::logs::GrownPipe>; 2],
}

impl Tree {
    pub(super) fn adopt(child: &tokio::process::Child) -> io::Result<Tree> {
        use std::os::fd::AsRawFd;
        let pid =
            child.id().ok_or_else(|| io::Error::other("the child exited before it could be adopted"))?;
        let pipes =
            [child.stdout.as_ref().map(AsRawFd::as_raw_fd), child.stderr.as_ref().map(AsRawFd::as_raw_fd)];
        Ok(Tree::new(pid, pipes))
    }

    /// The tree of `pid`, a session leader, whose stdout and stderr are on `pipes` (our ends).
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(super) fn new(pid: u32, pipes: [Option<std::os::fd::RawFd>; 2]) -> Tree {
        Tree {
            group: TreeRef { pgid: pid as libc::pid_t },
            #[cfg(target_os = "linux")]
            _pipes: pipes.map(|fd| fd.and_then(crate::logs::grow_pipe)),
        }
    }

    pub(super) fn signal(&self, signal: StopSignal) -> io::Result<()> {
        let Some(signo) = signal_number(signal) else { return Ok(()) };
        killpg(self.group.pgid(), signo)?;
        if signo != libc::SIGKILL {
            killpg(self.group.pgid(), libc::SIGCONT)?;
        }
        Ok(())
    }

    pub(super) fn kill(&self) -> io::Result<()> {
        killpg(self.group.pgid(), libc::SIGKILL)
    }

    pub(super) fn reference(&self) -> TreeRef {
        self.group.clone()
    }

    /// No OS limit for a process group outside cgroups: `max_memory` (sampled) is the guard.
    pub(super) fn limit_memory(&self, _bytes: u64) -> io::Result<()> {
        Ok(())
    }
}

/// A program's process group, by id: what its tree is on Unix. The group may have ended
/// since. Not `Copy`, like the Windows one (which holds a handle), so that callers are
/// written the same way for every OS.
#[derive(Clone, Debug)]
pub struct TreeRef {
    pgid: libc::pid_t,
}

impl TreeRef {
    /// The group's id: the pid of the program, which leads its own session.
    pub(crate) fn pgid(&self) -> libc::pid_t {
        self.pgid
    }
}

/// The Unix signal for a stop request. The Windows mechanisms map to their nearest meaning:
/// Ctrl+C is SIGINT; Ctrl+Break and WM_CLOSE ask for termination, so SIGTERM.
pub(super) fn signal_number(signal: StopSignal) -> Option<libc::c_int> {
    Some(match signal {
        StopSignal::Term | StopSignal::CtrlBreak | StopSignal::Close => libc::SIGTERM,
        StopSignal::Int | StopSignal::CtrlC => libc::SIGINT,
        StopSignal::Hup => libc::SIGHUP,
        StopSignal::Quit => libc::SIGQUIT,
        StopSignal::Kill => libc::SIGKILL,
        StopSignal::Usr1 => libc::SIGUSR1,
        StopSignal::Usr2 => libc::SIGUSR2,
        StopSignal::None => return None,
    })
}

fn killpg(pgid: libc::pid_t, signo: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system call; pgid > 1 always (it is a child's pid).
    if pgid <= 1 || unsafe { libc::killpg(pgid, signo) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // ESRCH: the group is already gone, which is what we wanted.
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

pub(super) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(sig)) => ExitStatus::Signal(sig),
        // Neither: stopped/continued statuses, which wait() does not report. Be explicit.
        (None, None) => ExitStatus::Code(-1),
    }
}

/// Marks every descriptor above stderr close-on-exec: what steward inherited then never
/// reaches what it starts. Its own are close-on-exec already (Rust opens them so).
pub(super) fn hide_inherited_fds() -> io::Result<()> {
    // The open descriptors: /proc/self/fd on Linux, /dev/fd on macOS and the BSDs.
    let listing = if cfg!(target_os = "linux") { "/proc/self/fd" } else { "/dev/fd" };
    let fds: Vec<libc::c_int> = std::fs::read_dir(listing)?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD change only the descriptor's flags. The listing's own
        // descriptor is closed by now: EBADF, skipped.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags != -1 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stop_signal_maps() {
        assert_eq!(signal_number(StopSignal::Term), Some(libc::SIGTERM));
        assert_eq!(signal_number(StopSignal::CtrlC), Some(libc::SIGINT));
        assert_eq!(signal_number(StopSignal::Usr2), Some(libc::SIGUSR2));
        assert_eq!(signal_number(StopSignal::None), None);
    }
}
