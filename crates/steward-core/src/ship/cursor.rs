//! Where a sink is in one log stream, and how that place survives a crash.
//!
//! A stream is its live file and its rotated files (`web.out.log`, then
//! `web.out.log.STAMP[.gz]`, see `logs` in the steward crate). A cursor names a place in it
//! without naming a file that is about to be renamed: `after` is the stamp of the newest
//! rotated file the sink had *finished* when it started reading the file it is in, and
//! `offset` is the byte offset in that file (uncompressed). The file it is in is therefore
//! the oldest rotated file newer than `after`, or the live file if there is none
//! ([`locate`]). That stays true when the live file is rotated, compressed, or when older
//! files are deleted, so no inode, fingerprint or manifest is needed.
//!
//! `epoch` is drawn at random when a cursor is made and again when its file turns out to be
//! gone or shorter than the cursor (someone deleted the logs). It goes into each line's id,
//! so lines written after such a reset never share an id with lines sent before it.
//!
//! The runtime saves a cursor after each batch the sink acknowledged, atomically (a
//! temporary file, fsync, rename), and keeps the copy it replaces as a backup. [`recover`]
//! decides what a load found.

use serde::{Deserialize, Serialize};

use crate::rotation::Stamp;

/// A sink's place in one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: u64,
    /// The newest rotated file finished before the current one; `None`: none was.
    pub after: Option<Stamp>,
    /// Bytes of the current file already sent (and acknowledged).
    pub offset: u64,
}

impl Cursor {
    /// The start of the first file newer than `after`.
    pub fn new(epoch: u64, after: Option<Stamp>) -> Cursor {
        Cursor { epoch, after, offset: 0 }
    }

    /// The start of the file after the rotated file `finished`.
    pub fn next_file(self, finished: Stamp) -> Cursor {
        Cursor { epoch: self.epoch, after: Some(finished), offset: 0 }
    }

    /// The cursor as saved: `{"epoch":…,"after":"20261122T031500.123Z","offset":…}`.
    pub fn to_json(self) -> Vec<u8> {
        let saved =
            Saved { epoch: self.epoch, after: self.after.map(|s| s.to_string()), offset: self.offset };
        let mut out = serde_json::to_vec(&saved).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads [`Cursor::to_json`]'s output back; the error says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Cursor, String> {
        let saved: Saved = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let after = match saved.after {
            Some(text) => {
                Some(Stamp::parse(&text).ok_or_else(|| format!("`after` is not a stamp: {text:?}"))?)
            }
            None => None,
        };
        Ok(Cursor { epoch: saved.epoch, after, offset: saved.offset })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    epoch: u64,
    after: Option<String>,
    offset: u64,
}

/// Which file of a stream a cursor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The rotated file with this stamp (plain or gzipped).
    Rotated(Stamp),
    /// The live file.
    Live,
}

/// The file a cursor with `after` is in, given the stamps of the rotated files on disk
/// (any order).
pub fn locate(after: Option<Stamp>, rotated: &[Stamp]) -> Place {
    rotated.iter().copied().filter(|s| after.is_none_or(|a| *s > a)).min().map_or(Place::Live, Place::Rotated)
}

/// What loading a cursor found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No cursor was ever saved: a new sink (or stream).
    Fresh,
    Found(Cursor),
    /// The cursor file was missing or damaged, and its backup was good: at most the batch
    /// after the backup is sent again. `problem` says what was wrong, for an event.
    FromBackup {
        cursor: Cursor,
        problem: String,
    },
    /// Both were damaged: the caller starts over from the oldest file it still has (sending
    /// again rather than losing), and reports `problem`.
    Lost {
        problem: String,
    },
}

/// Decides from the bytes of the cursor file and of its backup (`None`: the file does not
/// exist).
pub fn recover(primary: Option<&[u8]>, backup: Option<&[u8]>) -> Loaded {
    let primary_problem = match primary {
        Some(bytes) => match Cursor::from_json(bytes) {
            Ok(cursor) => return Loaded::Found(cursor),
            Err(e) => format!("the cursor file is damaged ({e})"),
        },
        None if backup.is_none() => return Loaded::Fresh,
        None => "the cursor file is missing".to_owned(),
    };
    match backup.map(Cursor::from_json) {
        Some(Ok(cursor)) => Loaded::FromBackup { cursor, problem: primary_problem },
        Some(Err(e)) => Loaded::Lost { problem: format!("{primary_problem}, and so is its backup ({e})") },
        None => Loaded::Lost { problem: format!("{primary_problem}, and it has no backup") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(millis: u64) -> Stamp {
        Stamp { millis }
    }

    #[test]
    fn a_cursor_is_in_the_oldest_file_newer_than_after() {
        let on_disk = [stamp(30), stamp(10), stamp(20)];
        assert_eq!(locate(None, &on_disk), Place::Rotated(stamp(10)));
        assert_eq!(locate(Some(stamp(10)), &on_disk), Place::Rotated(stamp(20)));
        assert_eq!(locate(Some(stamp(15)), &on_disk), Place::Rotated(stamp(20)));
        assert_eq!(locate(Some(stamp(30)), &on_disk), Place::Live);
        assert_eq!(locate(None, &[]), Place::Live);
    }

    #[test]
    fn the_place_survives_a_rotation_and_deletions() {
        // Reading the live file after 20; it is rotated to 40 and 10, 20 are deleted.
        let cursor = Cursor { epoch: 1, after: Some(stamp(20)), offset: 99 };
        assert_eq!(locate(cursor.after, &[stamp(10), stamp(20)]), Place::Live);
        assert_eq!(locate(cursor.after, &[stamp(40)]), Place::Rotated(stamp(40)));
        assert_eq!(locate(cursor.next_file(stamp(40)).after, &[stamp(40)]), Place::Live);
    }

    #[test]
    fn a_cursor_round_trips_through_json() {
        for c in [
            Cursor { epoch: u64::MAX, after: None, offset: 0 },
            Cursor { epoch: 7, after: Some(stamp(1_795_000_000_123)), offset: 1 << 40 },
        ] {
            assert_eq!(Cursor::from_json(&c.to_json()), Ok(c));
        }
        assert!(Cursor::from_json(br#"{"epoch":1,"after":"yesterday","offset":0}"#).is_err());
        assert!(Cursor::from_json(br#"{"epoch":1,"after":null,"offset":-1}"#).is_err());
        assert!(Cursor::from_json(br#"{"epoch":1,"after":null,"offset":0,"x":1}"#).is_err());
    }

    #[test]
    fn damage_is_recovered_from_the_backup_and_never_silent() {
        let good = Cursor { epoch: 3, after: None, offset: 10 };
        let older = Cursor { epoch: 3, after: None, offset: 5 };
        assert_eq!(recover(None, None), Loaded::Fresh);
        assert_eq!(recover(Some(&good.to_json()), Some(b"junk")), Loaded::Found(good));
        let torn = &good.to_json()[..7];
        match recover(Some(torn), Some(&older.to_json())) {
            Loaded::FromBackup { cursor, problem } => {
                assert_eq!(cursor, older);
                assert!(problem.contains("damaged"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        match recover(None, Some(&older.to_json())) {
            Loaded::FromBackup { problem, .. } => assert!(problem.contains("missing"), "{problem}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(recover(Some(b""), Some(b"{")), Loaded::Lost { .. }));
        assert!(matches!(recover(Some(b"\0\0"), None), Loaded::Lost { .. }));
    }
}
