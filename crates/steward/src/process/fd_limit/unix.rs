//! Unix: steward raises its soft `RLIMIT_NOFILE` to the hard limit at start, since it holds
//! a few descriptors per program (pipes, pidfds) and per API connection, and the usual soft
//! limit of 1024 (or a `ulimit -n` of a hundred) would make program starts fail with "Too
//! many open files" long before the hard limit is reached. Its programs get the soft limit
//! steward started with, set back between fork (or clone) and exec (`for_children`), so
//! running under steward changes nothing for them.

use std::io;
use std::sync::OnceLock;

/// The limit steward started with, once it has raised its own.
static ORIGINAL: OnceLock<libc::rlimit> = OnceLock::new();

/// A raise that happened: the soft limit before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Raise the soft limit to the hard one. `Ok(None)`: it already was (or a raise happened
/// before, in this process). macOS refuses more than `OPEN_MAX` (10240) even under a higher
/// or unlimited hard limit, so there that is tried next.
pub fn raise() -> io::Result<Option<Raised>> {
    if ORIGINAL.get().is_some() {
        return Ok(None);
    }
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to an rlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } == -1 {
        return Err(io::Error::last_os_error());
    }
    if current.rlim_cur >= current.rlim_max {
        return Ok(None);
    }
    let mut last = None;
    for target in [current.rlim_max, 10240] {
        if target <= current.rlim_cur {
            continue;
        }
        let wanted = libc::rlimit { rlim_cur: target, rlim_max: current.rlim_max };
        // SAFETY: a valid rlimit; raising the soft limit up to the hard one is always allowed
        // (except above OPEN_MAX on macOS, the reason for the second try).
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            let _ = ORIGINAL.set(current);
            return Ok(Some(Raised { from: current.rlim_cur, to: target }));
        }
        last = Some(io::Error::last_os_error());
    }
    Err(last.unwrap_or_else(|| io::Error::other("no higher limit to try")))
}

/// The limit to set in a child before exec: the soft limit steward started with (and the
/// hard limit, unchanged). `None` when steward did not raise its own.
pub(in crate::process) fn for_children() -> Option<libc::rlimit> {
    ORIGINAL.get().copied()
}
