//! Log rotation decisions (`steward_core::rotation`), driven the way the log writer drives
//! them, and the names of rotated files.
//!
//! The input: a spec (small sizes, so that rotations happen), the state of a file found
//! on disk, then writes: each a time step and a chunk of bytes, whole lines or a piece of
//! one. Then a file name and stamps for the naming functions.
//!
//! What must hold: following the answers writes every byte once and in order, in a
//! bounded number of steps; a rotation happens only at a line end, of a file that is not
//! empty, never twice in a row; a line is cut only once it fills the file; no write takes
//! a file past `max_size`; a write after a period boundary rotates first. A stamp's text
//! parses back to it; a name recognised as a rotated file is rebuilt from its parts;
//! stamps only increase; `expired` deletes the oldest and keeps `keep`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use steward_core::config::{LogSpec, RotateEvery};
use steward_core::rotation::{
    expired, next_stamp, next_step, parse_rotated, period_crossed, rotated_name, FileState, Rotated,
    RotatedKind, Stamp, Step, GZIP_SUFFIX, GZIP_TEMP_SUFFIX,
};

use crate::Bytes;

/// The first millisecond of the year 10000, when stamps grow a digit.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

pub fn check(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let spec = LogSpec {
        max_size: match bytes.u8() % 4 {
            0 => 0,
            1 => u64::from(bytes.u8()),
            2 => u64::from(bytes.u16()),
            _ => bytes.u64(),
        },
        rotate_every: match bytes.u8() % 3 {
            0 => None,
            1 => Some(RotateEvery::Hourly),
            _ => Some(RotateEvery::Daily),
        },
        keep: u32::from(bytes.u8()),
        compress: false,
        ..LogSpec::default()
    };
    let mut now = UNIX_EPOCH + Duration::from_secs(bytes.u64() % (1 << 40));
    let found_len = if bytes.bool() { u64::from(bytes.u16()) } else { 0 };
    let mut file = FileState {
        len: found_len,
        started: (found_len > 0 && bytes.bool()).then(|| now - Duration::from_secs(u64::from(bytes.u16()))),
        at_line_start: found_len == 0 || bytes.bool(),
    };
    let writes = usize::from(bytes.u8() % 32);
    for _ in 0..writes {
        if bytes.is_empty() {
            break;
        }
        now += Duration::from_secs(u64::from(bytes.u16()) * u64::from(bytes.u8() % 4));
        let len = usize::from(bytes.u8());
        let chunk = bytes.take(len);
        write(&spec, &mut file, chunk, now);
    }
    names(&mut bytes);
}

/// Writes `chunk` the way `LogFile` does: asks, then writes or rotates, until all is written.
fn write(spec: &LogSpec, file: &mut FileState, chunk: &[u8], now: SystemTime) {
    let mut pending = chunk;
    let mut written = Vec::with_capacity(chunk.len());
    let mut just_rotated = false;
    // Each answer writes at least one byte or rotates, and never two rotations in a row.
    for _ in 0..=2 * chunk.len() + 1 {
        match next_step(spec, file, pending, now) {
            Step::Write(n) => {
                assert!(n <= pending.len(), "Write({n}) of {} pending bytes", pending.len());
                if pending.is_empty() {
                    assert_eq!(n, 0);
                    break;
                }
                assert!(n > 0, "Write(0) with {} bytes pending", pending.len());
                let piece = &pending[..n];
                let before = *file;
                if before.at_line_start && before.len > 0 {
                    if let (Some(every), Some(started)) = (spec.rotate_every, before.started) {
                        assert!(!period_crossed(every, started, now), "wrote into a file of a past period");
                    }
                }
                let after = before.len + n as u64;
                // A line longer than the file may hold is cut (`CutLine`), never written whole.
                assert!(
                    spec.max_size == 0 || after <= spec.max_size,
                    "{before:?} + {n} bytes passes max_size {} (pending {:?})",
                    spec.max_size,
                    String::from_utf8_lossy(pending)
                );
                written.extend_from_slice(piece);
                *file = FileState {
                    len: after,
                    started: if before.len == 0 { Some(now) } else { before.started },
                    at_line_start: piece.ends_with(b"\n"),
                };
                pending = &pending[n..];
                just_rotated = false;
            }
            Step::Rotate => {
                assert!(!just_rotated, "rotated twice in a row");
                assert!(file.at_line_start, "rotated in the middle of a line");
                assert!(file.len > 0, "rotated an empty file");
                *file = FileState::EMPTY;
                just_rotated = true;
            }
            Step::CutLine => {
                // The writer appends the marker, then rotates; the line goes on in the next file.
                assert!(!just_rotated, "cut a line in a file just rotated");
                assert!(spec.max_size > 0, "cut a line with no max_size");
                assert!(!file.at_line_start, "cut at a line start: {file:?}");
                assert!(file.len >= spec.max_size, "cut a line before it filled the file: {file:?}");
                *file = FileState::EMPTY;
                just_rotated = true;
            }
        }
    }
    assert!(pending.is_empty(), "{} bytes never written: the answers went round in circles", pending.len());
    assert!(written == chunk, "what was written is not the chunk");
}

fn names(bytes: &mut Bytes<'_>) {
    let base = "web.out.log";
    let millis = bytes.u64() % YEAR_10000_MS;
    let stamp = Stamp { millis };
    let text = stamp.to_string();
    assert_eq!(text.len(), Stamp::LEN, "{text}");
    assert_eq!(Stamp::parse(&text), Some(stamp), "{text} does not parse back");
    let newest = bytes.bool().then(|| Stamp { millis: bytes.u64() });
    let now = UNIX_EPOCH + Duration::from_millis(bytes.u64() % YEAR_10000_MS);
    let next = next_stamp(now, newest);
    if let Some(newest) = newest {
        assert!(next > newest || newest.millis == u64::MAX, "{next:?} is not after {newest:?}");
    }

    let mut found = Vec::new();
    for _ in 0..usize::from(bytes.u8() % 16) {
        let kind =
            [RotatedKind::Plain, RotatedKind::Gzip, RotatedKind::GzipTemp][usize::from(bytes.u8() % 3)];
        found.push(Rotated { stamp: Stamp { millis: u64::from(bytes.u16()) }, kind });
    }
    let keep = u32::from(bytes.u8() % 8);
    let gone = expired(&found, keep);
    let mut all: Vec<Stamp> = found.iter().map(|r| r.stamp).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(gone.len(), all.len().saturating_sub(keep as usize), "{found:?} keep {keep}");
    assert_eq!(gone[..], all[..gone.len()], "not the oldest");

    let Ok(name) = std::str::from_utf8(bytes.rest()) else { return };
    if let Some(r) = parse_rotated(base, name) {
        let suffix = match r.kind {
            RotatedKind::Plain => "",
            RotatedKind::Gzip => GZIP_SUFFIX,
            RotatedKind::GzipTemp => GZIP_TEMP_SUFFIX,
        };
        assert_eq!(format!("{}{suffix}", rotated_name(base, r.stamp)), name, "recognised, but not rebuilt");
    }
    // Every name built from a stamp is recognised.
    let built = format!("{}{GZIP_SUFFIX}", rotated_name(base, stamp));
    assert_eq!(parse_rotated(base, &built), Some(Rotated { stamp, kind: RotatedKind::Gzip }));
}
