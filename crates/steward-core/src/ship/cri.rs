//! The timestamped line format (`[programs.NAME.log] format = "cri"`): the container
//! runtime interface's log format, which Promtail/Alloy, Fluent Bit, Vector and the
//! OpenTelemetry collector read natively.
//!
//! ```text
//! 2026-12-04T16:41:49.123456789Z stdout F the line as the program wrote it
//! ```
//!
//! `F` marks a whole line, `P` a piece of a line longer than steward's read buffer (the
//! pieces that follow it, up to an `F`, are the rest of that line). steward writes the time
//! with nine fraction digits, so every prefix has the same width; it reads any RFC 3339
//! time, as other writers trim trailing zeros or give an offset.
//!
//! Why a shipper wants it: the time a line was captured is kept with the line. A line sent
//! again after a crash then carries the same time, and Loki, which drops exact duplicates
//! (same stream, time and line), stores it once.

use crate::rotation::{civil_from_days, days_from_civil};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// Whether a record is a whole line or a piece of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `F`: the line ends here.
    Full,
    /// `P`: a piece; the line goes on in the next record of the stream.
    Partial,
}

/// Hands out capture times that strictly increase, one clock per file: two lines in the same
/// nanosecond (or after the system clock went back) still get distinct, ordered times, so
/// Loki never mistakes two equal lines for one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    last: Nanos,
}

impl Clock {
    /// Continues after `last` (the newest time found in the file).
    pub fn after(last: Nanos) -> Clock {
        Clock { last }
    }

    /// The time for the next record, given the wall clock `now`.
    pub fn next(&mut self, now: Nanos) -> Nanos {
        self.last = now.max(self.last.saturating_add(1));
        self.last
    }
}

/// Length of the prefix [`write_prefix`] writes for `stream` (`stdout` or `stderr`: 40).
pub fn prefix_len(stream: &str) -> usize {
    TIME_LEN + 1 + stream.len() + 3
}

/// `2026-12-04T16:41:49.123456789Z`
const TIME_LEN: usize = 30;

/// Appends `TIME STREAM TAG ` (a space last) to `out`.
pub fn write_prefix(out: &mut Vec<u8>, at: Nanos, stream: &str, tag: Tag) {
    write_time(out, at);
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(match tag {
        Tag::Full => b" F ",
        Tag::Partial => b" P ",
    });
}

/// Appends `at` as RFC 3339 UTC with nine fraction digits. Times before 1970 are written as
/// 1970-01-01T00:00:00.000000000Z.
pub fn write_time(out: &mut Vec<u8>, at: Nanos) {
    let at = u64::try_from(at).unwrap_or(0);
    let secs = at / 1_000_000_000;
    let nanos = at % 1_000_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let in_day = secs % 86_400;
    push_num(out, year, 4);
    out.push(b'-');
    push_num(out, month, 2);
    out.push(b'-');
    push_num(out, day, 2);
    out.push(b'T');
    push_num(out, in_day / 3600, 2);
    out.push(b':');
    push_num(out, in_day / 60 % 60, 2);
    out.push(b':');
    push_num(out, in_day % 60, 2);
    out.push(b'.');
    push_num(out, nanos, 9);
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, value: u64, width: u32) {
    for i in (0..width).rev() {
        out.push(b'0' + (value / 10u64.pow(i) % 10) as u8);
    }
}

/// One record of a CRI file, borrowed from its line (without the line's `\n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub at: Nanos,
    /// `stdout` or `stderr` as written (any word is accepted).
    pub stream: &'a [u8],
    pub tag: Tag,
    pub content: &'a [u8],
}

/// Reads `line` (without its `\n`) as a CRI record; `None` if it is not one (a plain line,
/// or the marker steward writes when it had to cut a line).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = fields.next()?;
    let stream = fields.next()?;
    let tag = match fields.next()? {
        b"F" => Tag::Full,
        b"P" => Tag::Partial,
        _ => return None,
    };
    // A record with empty content may end right after its tag.
    let content = fields.next().unwrap_or(b"");
    if stream.is_empty() {
        return None;
    }
    Some(Record { at: parse_time(time)?, stream, tag, content })
}

/// Parses an RFC 3339 time (`2026-12-04T16:41:49.123Z`, `…+02:00`, 0 to 9 fraction digits;
/// `t` and `z` in lower case too) into nanoseconds since the epoch. Years before 1970 are
/// refused.
pub fn parse_time(text: &[u8]) -> Option<Nanos> {
    let num = |from: usize, to: usize| -> Option<u64> {
        let digits = text.get(from..to)?;
        digits.iter().try_fold(0u64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| text.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (:60) reads as the second after :59.
    if second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u64;
    if text.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = at - start;
        if digits == 0 {
            return None;
        }
        // Beyond nanoseconds, further digits are dropped.
        let kept = digits.min(9);
        nanos = num(start, start + kept)? * 10u64.pow(9 - kept as u32);
    }
    let offset_secs: i64 = match text.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let hours = num(at + 1, at + 3)? as i64;
            let minutes = num(at + 4, at + 6)? as i64;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let off = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = (days * 86_400 + hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos as i64).filter(|t| *t >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(at: Nanos, stream: &str, tag: Tag) -> String {
        let mut out = Vec::new();
        write_prefix(&mut out, at, stream, tag);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_prefix_has_a_fixed_width_and_nine_fraction_digits() {
        let at = 1_795_000_000_123_456_789;
        assert_eq!(prefix(at, "stdout", Tag::Full), "2026-11-18T11:06:40.123456789Z stdout F ");
        assert_eq!(prefix(at, "stderr", Tag::Partial).len(), prefix_len("stderr"));
        assert_eq!(prefix(0, "stdout", Tag::Full), "1970-01-01T00:00:00.000000000Z stdout F ");
        assert_eq!(prefix(-5, "stdout", Tag::Full), "1970-01-01T00:00:00.000000000Z stdout F ");
        assert_eq!(prefix(1_000_000_000, "stdout", Tag::Full), "1970-01-01T00:00:01.000000000Z stdout F ");
    }

    #[test]
    fn what_is_written_reads_back() {
        for at in [0, 1, 999_999_999, 1_000_000_000, 951_782_400_000_000_007, 1_795_000_000_123_456_789] {
            for tag in [Tag::Full, Tag::Partial] {
                let mut line = Vec::new();
                write_prefix(&mut line, at, "stderr", tag);
                line.extend_from_slice(b"hello  world ");
                let r = parse(&line).unwrap();
                assert_eq!(
                    (r.at, r.stream, r.tag, r.content),
                    (at, &b"stderr"[..], tag, &b"hello  world "[..])
                );
            }
        }
    }

    #[test]
    fn other_writers_times_read_too() {
        assert_eq!(parse_time(b"1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(parse_time(b"1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(parse_time(b"1970-01-01t00:00:01.000000000123z"), Some(1_000_000_000));
        assert_eq!(parse_time(b"1970-01-01T02:00:01+02:00"), Some(1_000_000_000));
        assert_eq!(parse_time(b"1970-01-01T00:00:01-00:30"), Some(1_801_000_000_000));
        assert_eq!(parse(b"2026-01-01T00:00:00Z stdout F").unwrap().content, b"");
    }

    #[test]
    fn plain_lines_and_bad_times_are_not_records() {
        for line in [
            &b"just a line"[..],
            b"",
            b"2026-01-01T00:00:00Z stdout X text",
            b"2026-01-01T00:00:00Z  F text",
            b"2026-13-01T00:00:00Z stdout F text",
            b"1969-12-31T23:59:59Z stdout F text",
            b"2026-01-01T00:00:00. stdout F text",
            b"2026-01-01T00:00:00+2:00 stdout F text",
            b"2026-01-01T00:00:00 stdout F text",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn the_clock_never_repeats_or_goes_back() {
        let mut clock = Clock::after(100);
        assert_eq!(clock.next(50), 101);
        assert_eq!(clock.next(101), 102);
        assert_eq!(clock.next(500), 500);
        assert_eq!(clock.next(500), 501);
    }
}
