//! Log rotation decisions.
//!
//! Everything the log writer in the `steward` crate has to decide, as pure functions: no
//! I/O and no clock. The time of a write comes in as an argument (`now: SystemTime`, a
//! value like any other), the state of the live file comes in as a [`FileState`], and the
//! answers go out as values.
//!
//! - [`next_step`]: given what is about to be written, write how much, or rotate first?
//!   Rotation happens at a line boundary: by size, before a line would make the file
//!   exceed `max_size`; by time, on the first write after a UTC hour/day boundary
//!   ([`period_crossed`]). Nothing is decided between writes, so an idle program costs no
//!   wakeups. The one exception is a line longer than `max_size` (a `\r`-only progress bar
//!   never ends its line): it is cut after `max_size` bytes, [`CUT_MARKER`] ends that
//!   file, and the line goes on in the next one ([`Step::CutLine`]). So no file holds more
//!   than `max_size` bytes of log, plus the marker when it ends in one.
//! - [`Stamp`], [`rotated_name`], [`parse_rotated`]: how rotated files are named.
//! - [`expired`]: which rotated files to delete so that `keep` are left.
//!
//! # Naming
//!
//! The live file keeps its name (`web.out.log`). A rotated file is the live file's name,
//! a dot and the UTC time of the rotation to the millisecond:
//! `web.out.log.20261122T031500.123Z`, and `web.out.log.20261122T031500.123Z.gz` once
//! compressed (`….gz.tmp` while the compression is being written). Every stamp has the
//! same width, so the rotated files sort oldest first by name, and the glob `web.out.log*`
//! matches the live file and all of its rotated files. When two rotations would get the
//! same stamp (two within a millisecond, or the clock went back), the later one takes the
//! previous stamp plus one millisecond ([`next_stamp`]): names never collide and their
//! order is always the order of rotation, at the price of a stamp that may be a little
//! late.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{LogSpec, RotateEvery};

/// What the writer knows about the live file it appends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileState {
    /// Bytes that count toward `max_size`: the file's length (the writer starts counting
    /// from zero again after a rotation that failed, so that it retries only after another
    /// `max_size` bytes).
    pub len: u64,
    /// When the oldest data in the file was written: the time of the first write into an
    /// empty file, or the modification time of a file found on disk. `None` if unknown.
    pub started: Option<SystemTime>,
    /// The last byte written was `\n` (or nothing was written yet).
    pub at_line_start: bool,
}

impl FileState {
    /// An empty file.
    pub const EMPTY: FileState = FileState { len: 0, started: None, at_line_start: true };
}

/// What to do with the data waiting to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Append the first `n` bytes to the live file (then ask again for the rest).
    Write(usize),
    /// Rotate the live file first (then ask again with an empty file).
    Rotate,
    /// The file is in the middle of a line and holds `max_size` bytes: append
    /// [`CUT_MARKER`], rotate, then ask again (the rest of the line starts the new file).
    CutLine,
}

/// Ends a file where a line longer than `max_size` was cut; the line goes on at the start
/// of the next file.
pub const CUT_MARKER: &[u8] = b" [steward: line cut at max_size; it goes on in the next file]\n";

/// Decides how to go on with `pending`, the bytes that are to be appended at `now`.
///
/// `pending` is normally whole lines; a piece of a line longer than the writer's buffer
/// is fine too: the file is then in the middle of a line, and rotates only at that line's
/// end, or when the line fills the file ([`Step::CutLine`]). Writing everything the answers
/// say, one after the other, appends all of `pending`, every byte once and in order (and
/// [`CUT_MARKER`]s where lines are cut). For an empty `pending` the answer is `Write(0)`.
pub fn next_step(spec: &LogSpec, file: &FileState, pending: &[u8], now: SystemTime) -> Step {
    let all = pending.len();
    if all == 0 || (spec.max_size == 0 && spec.rotate_every.is_none()) {
        return Step::Write(all);
    }
    // Bytes that still fit under max_size (all of them with no size limit).
    let room = if spec.max_size == 0 {
        all
    } else {
        usize::try_from(spec.max_size.saturating_sub(file.len)).unwrap_or(usize::MAX).min(all)
    };
    if !file.at_line_start {
        // Finish the line the file is in; rotation waits for its end. If what follows
        // would not rotate either, it all goes in one write.
        match line_end(pending) {
            Some(end) if end <= room || spec.max_size == 0 => {
                let after =
                    FileState { len: file.len.saturating_add(end as u64), at_line_start: true, ..*file };
                return match next_step(spec, &after, &pending[end..], now) {
                    Step::Write(n) if n == all - end => Step::Write(all),
                    _ => Step::Write(end),
                };
            }
            // The line would overflow the file: fill it, then cut.
            _ if room == 0 => return Step::CutLine,
            _ => return Step::Write(room),
        }
    }
    if file.len > 0 {
        if let (Some(every), Some(started)) = (spec.rotate_every, file.started) {
            if period_crossed(every, started, now) {
                return Step::Rotate;
            }
        }
    }
    if spec.max_size == 0 || file.len.saturating_add(all as u64) <= spec.max_size {
        return Step::Write(all);
    }
    // Not everything fits: the whole lines that end within the room left do.
    if let Some(last_newline) = pending[..room].iter().rposition(|&b| b == b'\n') {
        return Step::Write(last_newline + 1);
    }
    if file.len > 0 {
        return Step::Rotate;
    }
    // The first line alone is bigger than max_size: it fills this file and is cut.
    Step::Write(room)
}

/// Length of the first line of `bytes` including its `\n`, if it has one.
fn line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n').map(|i| i + 1)
}

/// Whether `now` lies in a later UTC hour (or day) than `started`.
///
/// Periods are aligned to UTC (Unix time has no leap seconds, so every hour and day is a
/// whole multiple of its length since the epoch). A clock that went back never counts as
/// a crossing.
pub fn period_crossed(every: RotateEvery, started: SystemTime, now: SystemTime) -> bool {
    period_index(every, now) > period_index(every, started)
}

fn period_index(every: RotateEvery, t: SystemTime) -> u64 {
    unix_secs(t) / every.period().as_secs()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The UTC time of a rotation, to the millisecond, as it appears in a rotated file's name:
/// `20261122T031500.123Z`. Times before 1970 count as 1970.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub millis: u64,
}

impl Stamp {
    /// Length of the text form.
    pub const LEN: usize = 20;

    pub fn from_time(t: SystemTime) -> Stamp {
        let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Stamp { millis: u64::try_from(millis).unwrap_or(u64::MAX) }
    }

    /// Parses exactly the text that [`Stamp`]'s `Display` writes, and nothing else.
    pub fn parse(text: &str) -> Option<Stamp> {
        let b = text.as_bytes();
        if b.len() != Self::LEN || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u64> {
            b[from..to]
                .iter()
                .try_fold(0u64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0')))
        };
        let (year, month, day) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
        let (hour, minute, second) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
        let milli = num(16, 19)?;
        if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        let stamp = Stamp { millis: secs * 1000 + milli };
        // Rejects dates that do not exist (Feb 30 would come back as Mar 2).
        (stamp.to_string() == text).then_some(stamp)
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.millis / 1000;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let in_day = secs % 86_400;
        write!(
            f,
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60,
            self.millis % 1000
        )
    }
}

// Conversions between days since 1970-01-01 and the proleptic Gregorian calendar, by
// counting 400-year eras from 0000-03-01 (a year that starts in March puts the leap day
// last). Only dates from 1970 on are needed.
const DAYS_PER_ERA: u64 = 146_097;
const DAYS_0000_03_01_TO_EPOCH: u64 = 719_468;

pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + DAYS_0000_03_01_TO_EPOCH;
    let era = z / DAYS_PER_ERA;
    let day_of_era = z % DAYS_PER_ERA;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_0000_03_01_TO_EPOCH
}

/// The stamp for a rotation at `now`, given the newest stamp already used for this file:
/// `now`, or one millisecond after the newest if that is not later.
pub fn next_stamp(now: SystemTime, newest: Option<Stamp>) -> Stamp {
    let at_now = Stamp::from_time(now);
    match newest {
        Some(newest) if newest >= at_now => Stamp { millis: newest.millis.saturating_add(1) },
        _ => at_now,
    }
}

/// The file name of the live file `base` rotated at `stamp`: `base.STAMP`.
pub fn rotated_name(base: &str, stamp: Stamp) -> String {
    format!("{base}.{stamp}")
}

/// Suffix of a compressed rotated file.
pub const GZIP_SUFFIX: &str = ".gz";
/// Suffix of a compressed rotated file while it is being written.
pub const GZIP_TEMP_SUFFIX: &str = ".gz.tmp";

/// The forms a rotated file takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotatedKind {
    /// `base.STAMP`
    Plain,
    /// `base.STAMP.gz`
    Gzip,
    /// `base.STAMP.gz.tmp`: a compression in progress, or cut short.
    GzipTemp,
}

/// A file recognised as a rotated file of `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotated {
    pub stamp: Stamp,
    pub kind: RotatedKind,
}

/// Recognises `file_name` as a rotated file of the live file `base`, or says `None`.
pub fn parse_rotated(base: &str, file_name: &str) -> Option<Rotated> {
    let rest = file_name.strip_prefix(base)?.strip_prefix('.')?;
    let (stamp, suffix) = rest.split_at_checked(Stamp::LEN)?;
    let kind = match suffix {
        "" => RotatedKind::Plain,
        GZIP_SUFFIX => RotatedKind::Gzip,
        GZIP_TEMP_SUFFIX => RotatedKind::GzipTemp,
        _ => return None,
    };
    Some(Rotated { stamp: Stamp::parse(stamp)?, kind })
}

/// The stamps whose files must go so that only the newest `keep` rotations are left.
///
/// `found` is every rotated file on disk; the forms of one rotation (plain, `.gz`,
/// `.gz.tmp`) count once, compressed or not. The answer is sorted oldest first and names
/// each stamp once; delete every form of each.
pub fn expired(found: &[Rotated], keep: u32) -> Vec<Stamp> {
    let mut stamps: Vec<Stamp> = found.iter().map(|r| r.stamp).collect();
    stamps.sort_unstable();
    stamps.dedup();
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let cut = stamps.len().saturating_sub(keep);
    stamps.truncate(cut);
    stamps
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-11-22T03:15:00Z
    const T0: u64 = 1_795_317_300;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn spec(max_size: u64, rotate_every: Option<RotateEvery>) -> LogSpec {
        LogSpec { max_size, rotate_every, keep: 3, compress: false, ..LogSpec::default() }
    }

    fn file(len: u64, at_line_start: bool) -> FileState {
        FileState { len, started: Some(at(T0)), at_line_start }
    }

    #[test]
    fn size_steps() {
        /// (case, max_size, file len, at line start, pending, expected)
        type Row = (&'static str, u64, u64, bool, &'static [u8], Step);
        let table: &[Row] = &[
            ("no limits", 0, 1 << 40, true, b"a\nb\n", Step::Write(4)),
            ("fits", 10, 0, true, b"abc\ndef\n", Step::Write(8)),
            ("fits exactly", 10, 2, true, b"abc\ndef\n", Step::Write(8)),
            ("only first line fits", 10, 4, true, b"abc\ndef\n", Step::Write(4)),
            ("nothing fits", 10, 8, true, b"abc\n", Step::Rotate),
            ("full file", 10, 10, true, b"a\n", Step::Rotate),
            ("long line alone fills the file", 4, 0, true, b"abcdefgh\nij\n", Step::Write(4)),
            ("long line then short", 4, 9, true, b"ij\n", Step::Rotate),
            ("piece without newline", 4, 0, true, b"abcdefgh", Step::Write(4)),
            ("mid-line: file full, cut", 10, 10, false, b"a\n", Step::CutLine),
            ("mid-line: over full (found so on disk)", 10, 12, false, b"xyz\nabc\n", Step::CutLine),
            ("mid-line: no end, fill up", 10, 5, false, b"xyzxyz", Step::Write(5)),
            ("mid-line: end beyond max_size, fill up", 10, 5, false, b"abcdefgh\n", Step::Write(5)),
            ("mid-line: line ends in room", 10, 5, false, b"xy\nabcdefgh\n", Step::Write(3)),
            ("mid-line but fits", 100, 12, false, b"xyz\nabc\n", Step::Write(8)),
            ("mid-line, no size limit", 0, 1 << 40, false, b"xyzxyz", Step::Write(6)),
            ("empty pending", 10, 3, true, b"", Step::Write(0)),
            ("room ends in a line", 10, 3, true, b"abcdef\nxy\n", Step::Write(7)),
        ];
        for &(case, max_size, len, at_line_start, pending, want) in table {
            let got = next_step(&spec(max_size, None), &file(len, at_line_start), pending, at(T0));
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn writing_every_step_appends_everything_and_respects_the_limit() {
        let data = b"1\n22\n333\n4444\n55555\n666666\n7777777\n88888888\n1\n".repeat(3);
        for max_size in [0, 1, 3, 5, 8, 9, 10, 20, 1000] {
            let spec = spec(max_size, None);
            let mut files: Vec<Vec<u8>> = vec![Vec::new()];
            let mut rest = &data[..];
            while !rest.is_empty() {
                let live = files.last_mut().unwrap();
                let state = FileState {
                    len: live.len() as u64,
                    started: None,
                    at_line_start: live.last().is_none_or(|&b| b == b'\n'),
                };
                match next_step(&spec, &state, rest, at(T0)) {
                    Step::Write(n) => {
                        assert!(n > 0, "max_size {max_size}: no progress");
                        live.extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                    }
                    Step::Rotate => files.push(Vec::new()),
                    Step::CutLine => {
                        live.extend_from_slice(CUT_MARKER);
                        files.push(Vec::new());
                    }
                }
            }
            let mut unmarked = Vec::new();
            for f in &files {
                assert!(f.ends_with(b"\n"), "max_size {max_size}: file ends mid-line");
                let log = f.strip_suffix(CUT_MARKER).unwrap_or(f);
                if max_size > 0 {
                    assert!(log.len() as u64 <= max_size, "max_size {max_size}: {f:?}");
                }
                unmarked.extend_from_slice(log);
            }
            assert_eq!(unmarked, data, "max_size {max_size}");
        }
    }

    /// A `\r`-only progress bar never ends its line: the files still stay at max_size.
    #[test]
    fn a_line_without_end_is_cut_at_max_size() {
        let spec = spec(100, None);
        let mut state = FileState::EMPTY;
        const BAR: &[u8] = b"\r 42% [=====>    ]";
        let mut files = 1;
        for _ in 0..1000 {
            let mut piece = BAR;
            while !piece.is_empty() {
                match next_step(&spec, &state, piece, at(T0)) {
                    Step::Write(n) => {
                        state = FileState { len: state.len + n as u64, started: None, at_line_start: false };
                        piece = &piece[n..];
                    }
                    Step::CutLine => {
                        assert_eq!(state.len, 100);
                        state = FileState::EMPTY;
                        files += 1;
                    }
                    Step::Rotate => panic!("a rotation in the middle of a line"),
                }
            }
        }
        assert_eq!(files, (1000 * BAR.len()).div_ceil(100));
    }

    #[test]
    fn time_steps() {
        let hourly = spec(0, Some(RotateEvery::Hourly));
        let daily = spec(0, Some(RotateEvery::Daily));
        // 03:15:00 -> hour boundary at +2700 s, day boundary at +74700 s
        let table: &[(&str, &LogSpec, FileState, u64, Step)] = &[
            ("same hour", &hourly, file(5, true), T0 + 2699, Step::Write(2)),
            ("next hour", &hourly, file(5, true), T0 + 2700, Step::Rotate),
            ("many hours later", &hourly, file(5, true), T0 + 100_000, Step::Rotate),
            ("next hour, empty file", &hourly, file(0, true), T0 + 2700, Step::Write(2)),
            ("next hour, mid-line", &hourly, file(5, false), T0 + 2700, Step::Write(2)),
            (
                "next hour, start unknown",
                &hourly,
                FileState { len: 5, started: None, at_line_start: true },
                T0 + 2700,
                Step::Write(2),
            ),
            ("clock went back", &hourly, file(5, true), T0 - 7200, Step::Write(2)),
            ("same day", &daily, file(5, true), T0 + 74_699, Step::Write(2)),
            ("next day", &daily, file(5, true), T0 + 74_700, Step::Rotate),
        ];
        for (case, spec, state, now, want) in table {
            assert_eq!(next_step(spec, state, b"x\n", at(*now)), *want, "{case}");
        }
    }

    #[test]
    fn time_and_size_together() {
        let both = spec(10, Some(RotateEvery::Hourly));
        assert_eq!(next_step(&both, &file(9, true), b"ab\n", at(T0)), Step::Rotate);
        assert_eq!(next_step(&both, &file(1, true), b"ab\n", at(T0 + 3600)), Step::Rotate);
        assert_eq!(next_step(&both, &file(1, true), b"ab\n", at(T0)), Step::Write(3));
    }

    #[test]
    fn periods_are_utc_aligned() {
        let table: &[(RotateEvery, u64, u64, bool)] = &[
            (RotateEvery::Hourly, 3599, 3600, true),
            (RotateEvery::Hourly, 3600, 7199, false),
            (RotateEvery::Hourly, 0, 1, false),
            (RotateEvery::Daily, 86_399, 86_400, true),
            (RotateEvery::Daily, 86_400, 172_799, false),
            (RotateEvery::Daily, 3600, 80_000, false),
            (RotateEvery::Daily, 80_000, 3600, false),
        ];
        for &(every, started, now, want) in table {
            assert_eq!(period_crossed(every, at(started), at(now)), want, "{every:?} {started} {now}");
        }
    }

    #[test]
    fn stamps_format_and_parse() {
        let table: &[(u64, &str)] = &[
            (0, "19700101T000000.000Z"),
            (T0 * 1000 + 123, "20261122T031500.123Z"),
            (951_782_400_000, "20000229T000000.000Z"),
            (4_102_444_799_999, "20991231T235959.999Z"),
            (1_709_164_800_001, "20240229T000000.001Z"),
        ];
        for &(millis, text) in table {
            assert_eq!(Stamp { millis }.to_string(), text);
            assert_eq!(Stamp::parse(text), Some(Stamp { millis }), "{text}");
        }
        for bad in [
            "",
            "20261122T031500.123",
            "20261122T031500.123ZZ",
            "20261122-031500.123Z",
            "2026112xT031500.123Z",
            "20261322T031500.123Z",
            "20230229T000000.000Z",
            "20261122T241500.123Z",
            "19691231T235959.999Z",
            "+0261122T031500.123Z",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_round_trips() {
        for day in 0..(400 * 366) {
            let stamp = Stamp { millis: day * 86_400_000 + 45_296_789 };
            assert_eq!(Stamp::parse(&stamp.to_string()), Some(stamp));
        }
    }

    #[test]
    fn stamps_never_repeat_or_go_back() {
        let now = at(T0);
        let s = Stamp::from_time(now);
        let later = Stamp { millis: s.millis + 5000 };
        let table: &[(Option<Stamp>, Stamp)] = &[
            (None, s),
            (Some(Stamp { millis: s.millis - 1 }), s),
            (Some(s), Stamp { millis: s.millis + 1 }),
            (Some(later), Stamp { millis: later.millis + 1 }),
        ];
        for &(newest, want) in table {
            assert_eq!(next_stamp(now, newest), want, "{newest:?}");
        }
    }

    #[test]
    fn rotated_names_sort_oldest_first() {
        let mut names: Vec<String> = [0u64, 1, 999, 1000, 59_999, 86_400_000, 1 << 40]
            .iter()
            .map(|&millis| rotated_name("web.out.log", Stamp { millis }))
            .collect();
        // A compressed form sorts right after its plain form and before the next rotation.
        let gz = format!("{}{GZIP_SUFFIX}", names[2]);
        names.insert(3, gz);
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
    }

    #[test]
    fn recognises_rotated_files() {
        let s = Stamp { millis: T0 * 1000 + 123 };
        let rotated = |kind| Some(Rotated { stamp: s, kind });
        let table: &[(&str, Option<Rotated>)] = &[
            ("web.out.log.20261122T031500.123Z", rotated(RotatedKind::Plain)),
            ("web.out.log.20261122T031500.123Z.gz", rotated(RotatedKind::Gzip)),
            ("web.out.log.20261122T031500.123Z.gz.tmp", rotated(RotatedKind::GzipTemp)),
            ("web.out.log", None),
            ("web.out.log.", None),
            ("web.out.log.old", None),
            ("web.out.log.20261122T031500.123Z.bak", None),
            ("web.err.log.20261122T031500.123Z", None),
            ("xweb.out.log.20261122T031500.123Z", None),
            ("web.out.logx20261122T031500.123Z", None),
            ("web.out.log.20261122T031500.123Zé", None),
        ];
        for &(name, want) in table {
            assert_eq!(parse_rotated("web.out.log", name), want, "{name}");
        }
        assert_eq!(rotated_name("web.out.log", s), "web.out.log.20261122T031500.123Z");
    }

    #[test]
    fn retention() {
        let r = |millis, kind| Rotated { stamp: Stamp { millis }, kind };
        let stamps = |list: &[u64]| list.iter().map(|&millis| Stamp { millis }).collect::<Vec<_>>();
        use RotatedKind::*;
        let found = [r(30, Plain), r(10, Gzip), r(20, Plain), r(20, GzipTemp), r(40, Gzip), r(10, Plain)];
        let table: &[(u32, Vec<Stamp>)] = &[
            (0, stamps(&[10, 20, 30, 40])),
            (1, stamps(&[10, 20, 30])),
            (2, stamps(&[10, 20])),
            (3, stamps(&[10])),
            (4, stamps(&[])),
            (10, stamps(&[])),
        ];
        for (keep, want) in table {
            assert_eq!(&expired(&found, *keep), want, "keep {keep}");
        }
        assert_eq!(expired(&[], 0), Vec::<Stamp>::new());
    }
}
