//! Linux pipe tuning.
//!
//! A pipe holds 64 KiB by default. A bigger one lets a program write in bursts while the
//! log file is busy (a rotation, a slow disk) without blocking, and lets each read take
//! more at once. Raising it is capped by `/proc/sys/fs/pipe-max-size` (1 MiB by default
//! for unprivileged processes) and by the per-user pipe page limits; past those the call
//! fails, and the pipe simply keeps its size.

use std::os::fd::RawFd;

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
