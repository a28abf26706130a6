//! Linux pipe tuning.
//!
//! A pipe holds 64 KiB by default. A bigger one lets a program write in bursts while the
//! log file is busy (a rotation, a slow disk) without blocking, and lets each read take
//! more at once. Raising it is capped by `/proc/sys/fs/pipe-max-size` (1 MiB by default
//! for unprivileged processes) and by the per-user pipe page limits; past those the call
//! fails, and the pipe simply keeps its size.
//!
//! The per-user limit needs care: once the pipes a user has open are sized at more than
//! `/proc/sys/fs/pipe-user-pages-soft` pages in all (64 MiB by default), every pipe that
//! user creates afterwards gets 8 KiB instead of 64 KiB, the programs' own pipes included. So
//! the supervisor enlarges its programs' output pipes through [`grow_pipe`], which stops
//! at [`GROWN_LIMIT`] bytes in all: with many programs, the first ones started get the big
//! pipes and the rest keep the default size.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Size asked for by [`tune_pipe`].
pub const PIPE_SIZE: libc::c_int = 1 << 20;

/// Asks the kernel to make the pipe `fd` [`PIPE_SIZE`] bytes big (`F_SETPIPE_SZ`). Best
/// effort: errors are ignored, and nothing happens if `fd` is not a pipe.
pub fn tune_pipe(fd: RawFd) {
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours; an fd that is not
    // an open pipe only makes the call fail.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

/// The most pipe bytes [`grow_pipe`] keeps enlarged at once (32 pipes of [`PIPE_SIZE`]),
/// half the default per-user soft limit.
pub const GROWN_LIMIT: usize = 32 << 20;

/// Pipe bytes currently enlarged by [`grow_pipe`].
static GROWN: AtomicUsize = AtomicUsize::new(0);

/// A pipe that [`grow_pipe`] enlarged. Its share of [`GROWN_LIMIT`] is given back when
/// this is dropped: drop it when the pipe closes (the program exited).
#[derive(Debug)]
pub struct GrownPipe(());

impl Drop for GrownPipe {
    fn drop(&mut self) {
        GROWN.fetch_sub(PIPE_SIZE as usize, Ordering::Relaxed);
    }
}

/// [`tune_pipe`] within the budget of [`GROWN_LIMIT`]: `None` when the budget is spent or
/// the kernel refused (the pipe keeps its size).
pub fn grow_pipe(fd: RawFd) -> Option<GrownPipe> {
    let size = PIPE_SIZE as usize;
    GROWN
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |grown| {
            (grown + size <= GROWN_LIMIT).then_some(grown + size)
        })
        .ok()?;
    let grown = GrownPipe(());
    // SAFETY: as in `tune_pipe`.
    let got = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
    (got >= PIPE_SIZE).then_some(grown)
}
