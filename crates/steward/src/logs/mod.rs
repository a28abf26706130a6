//! Log capture: pipe -> line framer -> rotating file.
//!
//! Each program's stdout and stderr go to a file of their own, `<log_dir>/NAME.out.log`
//! and `NAME.err.log` (the runtime picks the paths). The parts:
//!
//! - [`pump`] (`capture.rs`) reads one pipe into a fixed 128 KiB buffer (allocated at the
//!   stream's first output) and hands whole lines to a [`SharedLog`], one write per read;
//!   [`pump_opening`] also opens the file only then. A write that rotates runs on a
//!   blocking thread (see Rotation).
//! - [`LogFile`] (`file.rs`) appends them, rotating where the pure decisions of
//!   [`steward_core::rotation`] say, deletes the rotated files beyond `keep`, and rides out
//!   write failures.
//! - [`compress`] gzips rotated files on one background thread.
//! - `tune_pipe` (Linux only) makes a pipe 1 MiB big; `grow_pipe` does so within a budget
//!   for all programs (the child's stdout and stderr, see `process`).
//! - [`history`] reads a log back, rotated files first.
//! - [`mirror`] copies the lines to steward's stdout too, with the program's name
//!   (`steward run --mirror`), without ever blocking a pump.
//!
//! A [`SharedLog`] outlives one child: every run of a program appends to the same file, and
//! pumps that share a file never mix inside a line.
//!
//! # Rotation
//!
//! Rotation renames the live file at a line boundary and starts a new one, so no line is
//! lost, duplicated or split across two files (copy-then-truncate, as PM2 does, loses or
//! repeats what is written during the copy). It happens on a write, never on a timer:
//!
//! - by size: before a line would make the file bigger than `max_size` (0 = never). A
//!   line longer than `max_size` (a `\r`-only progress bar is one endless line) is cut
//!   when it has filled the file: the file ends in the line
//!   `… [steward: line cut at max_size; it goes on in the next file]`, and the rest of
//!   the line starts the next file. Disk use stays bounded whatever a program prints.
//! - by time (`rotate_every`): on the first write after a UTC hour or day boundary since
//!   the file's first write (for a file found on disk: since it was last modified). An idle
//!   program therefore costs no wakeups, and its file rotates when it next writes.
//!
//! A line longer than the read buffer is written in pieces, and rotation waits for its end
//! (or for it to fill the file, as above).
//!
//! Rotation's file system work (the rename, the deletes beyond `keep`) never runs on the
//! runtime's thread, which is the supervisor's only one: before each write a pump asks the
//! file whether it may rotate ([`LogFile`]'s `may_block`, from the same pure decisions). If
//! not, the lines are written right there, as one `write`. If so, the pump takes the file's
//! (async) lock and runs that whole write, rotations included, on tokio's blocking pool, and
//! awaits it with the lock held. So:
//!
//! - no line is lost, doubled or reordered: it is the same write, run elsewhere;
//! - pumps sharing the file wait for the lock without blocking the thread, and never mix
//!   inside a line;
//! - backpressure stays: the rotating pump reads nothing more until the write is done, and
//!   copies at most one read (128 KiB) for it;
//! - a file that never rotates costs no thread, no wakeup and no copy;
//! - the file is closed before the rename (Windows cannot rename an open file).
//!
//! Writes through [`LogFile::write_lines`] (the audit log, tests) rotate where they are
//! called.
//!
//! # File names
//!
//! A rotated file is named after the live file plus the UTC time of the rotation, to the
//! millisecond: `web.out.log.20261122T031500.123Z`, then
//! `web.out.log.20261122T031500.123Z.gz` once compressed (`….gz.tmp` while the gzip is
//! being written). The stamps all have the same width, so `ls web.out.log.*` lists the
//! rotated files oldest first, and `web.out.log*` matches the live file and all of its
//! rotated files; reading everything in order is: the rotated files by name, then the live
//! file. Stamps are unique and increase: a rotation within the same millisecond as the one
//! before (or after the clock went back) takes the previous stamp plus 1 ms.
//!
//! `keep` counts rotated files, compressed or not; after each rotation (and on open) the
//! oldest beyond `keep` are deleted. `keep = 0` keeps only the live file. The folder is
//! listed once, when the file is opened; after that the file remembers its rotations, so
//! a rotation costs a rename and (beyond `keep`) a delete, however many files there are.
//!
//! # When writing fails
//!
//! A full disk (or any other write error) never panics, never blocks the program and never
//! grows memory without bound. The file keeps at most 64 KiB of the oldest unwritten
//! lines, drops and counts the rest (lines and bytes, [`LogFile::dropped`]), and logs one
//! `tracing` warning naming the file and the error. It tries again at most once a second
//! (reopening the file by path), and when a write works it writes what it kept, then a
//! marker line where the gap is, and logs at info level:
//!
//! ```text
//! [steward] dropped 1234 lines (56789 bytes) while writing failed: No space left on device
//! ```
//!
//! A rotation that fails (the rename is refused) is logged, and the live file keeps
//! growing until the next attempt, after another `max_size` bytes or at the next period.
//!
//! A file that cannot be opened at all (at the stream's first output) is the caller's to
//! report: [`pump_opening`] then reads the stream to its end and discards it, and the
//! supervisor logs, publishes and counts each such run (`supervise::program`).

pub mod capture;
pub mod compress;
mod file;
pub mod history;
#[cfg(target_os = "linux")]
mod linux;
pub mod mirror;
pub mod tail;
pub mod watch;

use std::sync::Arc;

pub use capture::{pump, pump_from, pump_opening, pump_to, Destination};
pub use file::{LogFile, PENDING_LIMIT, RETRY_INTERVAL};
#[cfg(target_os = "linux")]
pub use linux::{grow_pipe, tune_pipe, GrownPipe, GROWN_LIMIT, PIPE_SIZE};
pub use watch::{FileWatch, Watches};

/// A log file shared by the pumps that write to it.
///
/// An async mutex: a pump whose write rotates the file holds it while the rename runs on a
/// blocking thread, and the other pumps of the file wait for it without holding up the
/// runtime's thread. Readers on blocking threads take it with `blocking_lock`.
pub type SharedLog = Arc<tokio::sync::Mutex<LogFile>>;

impl LogFile {
    /// Wraps the file for [`pump`].
    pub fn shared(self) -> SharedLog {
        Arc::new(tokio::sync::Mutex::new(self))
    }
}
