//! The init half of steward as PID 1 (see the [module doc](super)).
//!
//! The OS behaviour it relies on:
//!
//! - Signals the init handles are blocked before the fork and taken with `sigwaitinfo`, so
//!   none is lost between the fork and the first wait, and none runs a handler: the init has
//!   one thread and one loop. The child unblocks them at once (a blocked mask is inherited
//!   across `fork` and `exec`, and the supervisor and its programs must not inherit it).
//! - SIGCHLD coalesces (two exits while blocked are one pending signal), so each one is
//!   followed by `waitpid(-1, WNOHANG)` until nothing is left. A zombie reparented to PID 1
//!   (its parent died before reaping it) raises SIGCHLD at PID 1 too.
//! - A signal is forwarded to the steward process alone, not to its process group: steward
//!   stops its programs itself, in reverse dependency order, and a SIGTERM sent to them all
//!   at once would undo that order.
//! - When PID 1 exits the kernel kills every process left in the namespace, so the init
//!   exits as soon as steward has ended: whatever steward left behind goes with it.

use std::mem::MaybeUninit;

use super::{exit_code, Ended};

/// What a container runtime or a person sends: stop (TERM, INT, QUIT), reload (HUP), and
/// the rest so that steward sees what it would see if it were not PID 1.
const FORWARDED: [libc::c_int; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

pub fn run_init() {
    use std::io::Write as _;
    let Some((handled, before)) = block_signals() else {
        // Not eprintln!, which panics when stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "steward: cannot block signals to act as PID 1 ({}); running without an init, so orphans will not be reaped",
            std::io::Error::last_os_error()
        );
        return;
    };
    // SAFETY: this process has one thread (see `take_pid1_duties`), so the child is a full
    // copy of it and may go on as any program does.
    match unsafe { libc::fork() } {
        -1 => {
            let e = std::io::Error::last_os_error();
            restore(&before);
            let _ = writeln!(
                std::io::stderr(),
                "steward: cannot fork to act as PID 1 ({e}); running without an init, so orphans will not be reaped"
            );
        }
        // The child: the real steward, with the signal mask it was started with.
        0 => restore(&before),
        child => serve(child, &handled),
    }
}

/// Blocks [`FORWARDED`] and SIGCHLD; returns that set and the mask before it.
fn block_signals() -> Option<(libc::sigset_t, libc::sigset_t)> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    let mut before = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises `set`; sigprocmask initialises `before` on success.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for signal in FORWARDED.into_iter().chain([libc::SIGCHLD]) {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), before.as_mut_ptr()) != 0 {
            return None;
        }
        Some((set.assume_init(), before.assume_init()))
    }
}

fn restore(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid set; this cannot fail with SIG_SETMASK and a valid set.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

/// The init's loop: wait for a signal; reap on SIGCHLD, forward anything else to `child`.
/// Exits with `child`'s code once it has ended.
fn serve(child: libc::pid_t, handled: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: `handled` is a valid set; a null siginfo pointer is allowed.
        let signal = unsafe { libc::sigwaitinfo(handled, std::ptr::null_mut()) };
        match signal {
            // EINTR: the wait was interrupted (the init was stopped and continued from the host).
            -1 => continue,
            libc::SIGCHLD => {
                if let Some(ended) = reap(child) {
                    std::process::exit(exit_code(ended));
                }
            }
            signal => {
                // SAFETY: kill has no memory-safety preconditions. ESRCH (the child is
                // gone, its SIGCHLD pending) is fine: the next wait reaps it.
                unsafe { libc::kill(child, signal) };
            }
        }
    }
}

/// Reaps every child that has ended, orphans included; returns how `child` ended if it is
/// among them.
fn reap(child: libc::pid_t) -> Option<Ended> {
    let mut ended = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            // 0: children left, none ended; -1: ECHILD, none left (EINTR cannot happen
            // with WNOHANG and every handled signal blocked).
            return ended;
        }
        if pid == child {
            ended = Some(if libc::WIFSIGNALED(status) {
                Ended::Signal(libc::WTERMSIG(status))
            } else {
                Ended::Code(libc::WEXITSTATUS(status))
            });
        }
    }
}
