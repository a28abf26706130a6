//! What a log file tells the sinks that ship it (`[[ship]]`; without it no file has a
//! watch, and this costs nothing).
//!
//! The shipper reads the files itself (a sink never slows a program); the file only tells
//! it, without a syscall or a wakeup of its own:
//! - that it was written ([`Reader::wake`]), so a sink waiting for lines wakes up;
//! - that it was rotated ([`FileWatch::rotations`]), so a reader at the end of the file it
//!   has open knows that file is finished and looks for the next one, and what each recent
//!   rotation named the file ([`FileWatch::made_by`]): the file a reader was in may have been
//!   deleted already, and the folder would then show another one in its place;
//! - which rotated files a reader still needs ([`Reader::after`]): retention keeps them
//!   beyond `keep`, up to a byte budget. Past it, the oldest go anyway, and each reader that
//!   had not read it is told how many lines and bytes it lost ([`Reader::lost`]): the lines
//!   it had read already are in its batch, which is sent until the receiver takes it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use steward_core::rotation::Stamp;

/// One sink's reader of one stream, as the file sees it.
pub trait Reader: Send + Sync {
    /// The file was written to (or rotated, or lost a file): there may be lines to read.
    /// Called under the file's lock: must not block.
    fn wake(&self);
    /// The newest rotated file this reader has finished (`None`: it needs them all).
    fn after(&self) -> Option<Stamp>;
    /// How many bytes of the rotated file `stamp` (which it has not finished) this reader
    /// has read into a batch: 0 when none, `u64::MAX` when all. `rotation` is the number of
    /// the rotation that made the file, when the watch still remembers it: a reader that last
    /// saw its file live knows it by that number.
    fn read_of(&self, stamp: Stamp, rotation: Option<u64>) -> u64;
    /// The rotated file `stamp` was deleted before this reader read `lines` lines (`bytes`
    /// bytes) of it.
    fn lost(&self, stamp: Stamp, lines: u64, bytes: u64);
}

/// Shared by a log file and the readers of its stream.
pub struct FileWatch {
    readers: Vec<Arc<dyn Reader>>,
    /// Rotated files a reader still needs are kept up to this many bytes beyond `keep`.
    budget: u64,
    rotations: AtomicU64,
    /// The last [`REMEMBERED`] rotations: (number, the name it gave the file).
    made: Mutex<VecDeque<(u64, Stamp)>>,
}

/// How many rotations a watch remembers the names of. A reader further behind than that
/// while it holds or names a live file finds its file by listing the folder.
const REMEMBERED: usize = 64;

impl FileWatch {
    pub fn new(readers: Vec<Arc<dyn Reader>>, budget: u64) -> FileWatch {
        FileWatch { readers, budget, rotations: AtomicU64::new(0), made: Mutex::new(VecDeque::new()) }
    }

    /// How many times the file was rotated since steward started.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Acquire)
    }

    /// The name (stamp) rotation number `rotation` gave the live file, if still remembered.
    /// The live file a reader found when the count was `n` is the one rotation `n + 1` renamed.
    pub fn made_by(&self, rotation: u64) -> Option<Stamp> {
        let made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.iter().find(|(n, _)| *n == rotation).map(|&(_, stamp)| stamp)
    }

    /// The number of the rotation that made the rotated file `stamp`, if still remembered.
    fn rotation_of(&self, stamp: Stamp) -> Option<u64> {
        let made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.iter().find(|(_, s)| *s == stamp).map(|&(n, _)| n)
    }

    pub(super) fn written(&self) {
        for reader in &self.readers {
            reader.wake();
        }
    }

    pub(super) fn rotated(&self, stamp: Stamp) {
        {
            // The name first, then the count: a reader that sees the count finds the name.
            let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
            let number = self.rotations.load(Ordering::Acquire) + 1;
            made.push_back((number, stamp));
            if made.len() > REMEMBERED {
                made.pop_front();
            }
            self.rotations.store(number, Ordering::Release);
        }
        self.written();
    }

    /// Whether some reader has not finished the rotated file `stamp`.
    pub(super) fn needed(&self, stamp: Stamp) -> bool {
        self.readers.iter().any(|r| r.after().is_none_or(|after| after < stamp))
    }

    pub(super) fn budget(&self) -> u64 {
        self.budget
    }

    /// The rotated file `stamp` is deleted: tells each reader that needed it what it lost,
    /// the lines and bytes `count_from` finds past what it read. Returns the most any lost.
    pub(super) fn deleted_unsent(
        &self,
        stamp: Stamp,
        count_from: &mut dyn FnMut(u64) -> (u64, u64),
    ) -> (u64, u64) {
        let mut most = (0, 0);
        // Readers at the same place (most often none read it: 0) share one count, which
        // reads the file (under the log file's lock).
        let mut counted: Vec<(u64, (u64, u64))> = Vec::new();
        let rotation = self.rotation_of(stamp);
        for reader in &self.readers {
            if reader.after().is_none_or(|after| after < stamp) {
                let (lines, bytes) = match reader.read_of(stamp, rotation) {
                    u64::MAX => (0, 0),
                    from => match counted.iter().find(|(at, _)| *at == from) {
                        Some(&(_, count)) => count,
                        None => {
                            let count = count_from(from);
                            counted.push((from, count));
                            count
                        }
                    },
                };
                if lines > 0 || bytes > 0 {
                    reader.lost(stamp, lines, bytes);
                    most = most.max((lines, bytes));
                }
                reader.wake();
            }
        }
        most
    }
}

/// Finds the watch of a program's log file at a path (made by the shipper, handed down to
/// the supervisor): `None` when no sink ships that file.
pub type Watches = Option<
    Arc<dyn Fn(&steward_core::config::ProgramSpec, &std::path::Path) -> Option<Arc<FileWatch>> + Send + Sync>,
>;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A reader that finished the files up to `after` and read `read` bytes of the next.
    struct Fake {
        after: Option<Stamp>,
        read: u64,
        lost: Mutex<Vec<(Stamp, u64, u64)>>,
    }

    impl Reader for Fake {
        fn wake(&self) {}
        fn after(&self) -> Option<Stamp> {
            self.after
        }
        fn read_of(&self, _: Stamp, _: Option<u64>) -> u64 {
            self.read
        }
        fn lost(&self, stamp: Stamp, lines: u64, bytes: u64) {
            self.lost.lock().unwrap().push((stamp, lines, bytes));
        }
    }

    #[test]
    fn a_deleted_file_costs_each_reader_only_what_it_had_not_read() {
        let stamp = Stamp { millis: 20 };
        let fake = |after, read| Arc::new(Fake { after, read, lost: Mutex::new(Vec::new()) });
        let (unread, also_unread, half, all, past) = (
            fake(None, 0),
            fake(None, 0),
            fake(None, 500),
            fake(None, u64::MAX),
            fake(Some(Stamp { millis: 20 }), 0),
        );
        let readers: Vec<Arc<dyn Reader>> =
            vec![unread.clone(), also_unread.clone(), half.clone(), all.clone(), past.clone()];
        let watch = FileWatch::new(readers, 0);
        // A file of 10 lines of 100 bytes.
        let mut reads = 0;
        let most = watch.deleted_unsent(stamp, &mut |from| {
            reads += 1;
            let left = 1000u64.saturating_sub(from);
            (left / 100, left)
        });
        assert_eq!(most, (10, 1000));
        assert_eq!(reads, 2, "one count per place read to, not per reader");
        assert_eq!(*unread.lost.lock().unwrap(), [(stamp, 10, 1000)]);
        assert_eq!(*also_unread.lost.lock().unwrap(), [(stamp, 10, 1000)]);
        assert_eq!(*half.lost.lock().unwrap(), [(stamp, 5, 500)]);
        assert!(all.lost.lock().unwrap().is_empty(), "its lines are in its batch");
        assert!(past.lost.lock().unwrap().is_empty(), "it had finished the file");
    }

    #[test]
    fn the_names_of_recent_rotations_are_remembered_by_number() {
        let watch = FileWatch::new(Vec::new(), 0);
        assert_eq!(watch.made_by(1), None);
        for n in 1..=(REMEMBERED as u64 + 5) {
            watch.rotated(Stamp { millis: n * 10 });
            assert_eq!(watch.rotations(), n);
        }
        assert_eq!(
            watch.made_by(REMEMBERED as u64 + 5),
            Some(Stamp { millis: (REMEMBERED as u64 + 5) * 10 })
        );
        assert_eq!(watch.rotation_of(Stamp { millis: 60 }), Some(6));
        assert_eq!(watch.made_by(5), None, "older than the last {REMEMBERED}");
        assert_eq!(watch.rotation_of(Stamp { millis: 50 }), None);
    }
}
