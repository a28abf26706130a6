//! What a log file tells the sinks that ship it (`[[ship]]`; without it no file has a
//! watch, and this costs nothing).
//!
//! The shipper reads the files itself (a sink never slows a program); the file only tells
//! it, without a syscall or a wakeup of its own:
//! - that it was written ([`Reader::wake`]), so a sink waiting for lines wakes up;
//! - that it was rotated ([`FileWatch::rotations`]), so a reader at the end of the file it
//!   has open knows that file is finished and looks for the next one;
//! - which rotated files a reader still needs ([`Reader::after`]): retention keeps them
//!   beyond `keep`, up to a byte budget. Past it, the oldest go anyway, and each reader that
//!   had not sent it is told how many lines and bytes it lost ([`Reader::lost`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use steward_core::rotation::Stamp;

/// One sink's reader of one stream, as the file sees it.
pub trait Reader: Send + Sync {
    /// The file was written to (or rotated, or lost a file): there may be lines to read.
    /// Called under the file's lock: must not block.
    fn wake(&self);
    /// The newest rotated file this reader has finished (`None`: it needs them all).
    fn after(&self) -> Option<Stamp>;
    /// The rotated file `stamp` was deleted before this reader sent it.
    fn lost(&self, stamp: Stamp, lines: u64, bytes: u64);
}

/// Shared by a log file and the readers of its stream.
pub struct FileWatch {
    readers: Vec<Arc<dyn Reader>>,
    /// Rotated files a reader still needs are kept up to this many bytes beyond `keep`.
    budget: u64,
    rotations: AtomicU64,
}

impl FileWatch {
    pub fn new(readers: Vec<Arc<dyn Reader>>, budget: u64) -> FileWatch {
        FileWatch { readers, budget, rotations: AtomicU64::new(0) }
    }

    /// How many times the file was rotated since steward started.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Acquire)
    }

    pub(super) fn written(&self) {
        for reader in &self.readers {
            reader.wake();
        }
    }

    pub(super) fn rotated(&self, _stamp: Stamp) {
        self.rotations.fetch_add(1, Ordering::AcqRel);
        self.written();
    }

    /// Whether some reader has not finished the rotated file `stamp`.
    pub(super) fn needed(&self, stamp: Stamp) -> bool {
        self.readers.iter().any(|r| r.after().is_none_or(|after| after < stamp))
    }

    pub(super) fn budget(&self) -> u64 {
        self.budget
    }

    /// The rotated file `stamp` (of `lines` lines, `bytes` bytes) is deleted: tells each
    /// reader that needed it.
    pub(super) fn deleted_unsent(&self, stamp: Stamp, lines: u64, bytes: u64) {
        for reader in &self.readers {
            if reader.after().is_none_or(|after| after < stamp) {
                reader.lost(stamp, lines, bytes);
                reader.wake();
            }
        }
    }
}

/// Finds the watch of a program's log file at a path (made by the shipper, handed down to
/// the supervisor): `None` when no sink ships that file.
pub type Watches = Option<
    Arc<dyn Fn(&steward_core::config::ProgramSpec, &std::path::Path) -> Option<Arc<FileWatch>> + Send + Sync>,
>;
