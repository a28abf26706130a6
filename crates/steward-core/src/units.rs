//! Durations ("150ms", "10s", "5m", "1h30m") and sizes ("10MB", "1GiB") as written in the
//! config file, and how durations are shown back in messages.
//!
//! The error strings say what was wrong with the text; the config parser adds which key it
//! was and where.

use std::time::{Duration, Instant};

/// The longest duration a config value may have: one year (365.25 days, humantime's `1y`).
///
/// Nothing steward times (a stop timeout, a restart delay, a window) means more than that,
/// and a cap keeps every deadline computed from a config value far inside what a clock
/// can represent: `stop_timeout = "300000000000y"` would otherwise overflow the addition
/// that arms its timer.
pub const MAX_DURATION: Duration = Duration::from_secs(31_557_600);

/// Parses a duration such as `150ms`, `10s`, `5m`, `1h30m` or `1h 30m`, at most
/// [`MAX_DURATION`].
///
/// A bare number without a unit is refused: `10` could mean seconds or milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; a duration cannot be"));
    }
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e})"))?;
    if d > MAX_DURATION {
        return Err(format!("`{text}` is longer than a year, the longest duration steward accepts"));
    }
    Ok(d)
}

/// Parses a size in bytes: `50MB` is 50 000 000, `1GiB` is 2^30, a plain integer is bytes.
/// Units are case-insensitive and the `B` is optional (`10k` = 10 000).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("the size is empty".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; a size cannot be"));
    }
    // parse-size 1.1 wraps to 0 (a debug build panics) when the digits reach u64::MAX and
    // go on with a 5 or more (`1844674407370955161.55`). A size has at most 20 digits.
    let digits = text
        .bytes()
        .take_while(|b| !matches!(b, b'e' | b'E'))
        .skip_while(|b| !b.is_ascii_digit() || *b == b'0')
        .filter(u8::is_ascii_digit)
        .count();
    if digits > 20 {
        return Err(format!("`{text}` has {digits} digits; a size has at most 20 (2^64 bytes is the most)"));
    }
    parse_size::parse_size(text).map_err(|e| format!("`{text}` is not a size ({e})"))
}

/// `t + d`, or the latest instant the clock can represent on the way there instead of a
/// panic. Config durations are capped at [`MAX_DURATION`], so this only matters for values
/// that did not come through the parser; deadlines computed from config values use it all
/// the same.
pub fn later(t: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(at) = t.checked_add(d) {
            return at;
        }
        // Halving finds a representable instant in at most ~100 steps.
        d /= 2;
    }
}

/// Formats a duration for messages, compactly: `100ms`, `30s`, `1m 30s`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations() {
        assert!(parse_duration("10").unwrap_err().contains("time unit needed"));
        assert!(parse_duration("5x").unwrap_err().contains("`5x` is not a duration"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn durations_are_capped_at_a_year() {
        assert_eq!(parse_duration("1y"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(365 * 86_400)));
        for huge in ["1y 1s", "366d", "300000000000y", "9223372036854775807s", "18446744073709551615s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("longer than a year") || e.contains("is not a duration"), "{huge}: {e}");
        }
        assert!(parse_duration("300000000000y").unwrap_err().contains("longer than a year"));
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let t = Instant::now();
        assert_eq!(later(t, Duration::from_secs(5)), t + Duration::from_secs(5));
        let far = later(t, Duration::MAX);
        assert!(far > t + MAX_DURATION);
        assert!(later(far, Duration::MAX) >= far);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10kb"), Ok(10_000));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("0000018446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("0.000000000000000000000001 EB"), Ok(0));
        // The crate alone would wrap these to 0.
        for huge in ["1844674407370955161.55", "184467440737095516155e-1", "18_446_744_073_709_551_615_5 kB"]
        {
            let e = parse_size(huge).unwrap_err();
            assert!(e.contains("at most 20"), "{huge}: {e}");
        }
    }

    #[test]
    fn bad_sizes() {
        assert!(parse_size("10 parsecs").unwrap_err().contains("`10 parsecs` is not a size"));
        assert!(parse_size("").unwrap_err().contains("empty"));
        assert!(parse_size("-5MB").unwrap_err().contains("negative"));
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
    }
}
