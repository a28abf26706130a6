//! The memory limit of one program (`max_memory`, `memory_grace`): the leak guard.
//!
//! Pure: the runtime samples the memory of the program's whole process tree and feeds each
//! sample to [`MemoryGuard::observe`] with the current time. A program above its limit is
//! restarted once it has *stayed* above for the grace period, so a short spike (a GC, a
//! burst of requests) is forgiven and a leak is not.

use std::time::{Duration, Instant};

/// What a sample means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryVerdict {
    /// At or below the limit.
    Under,
    /// Above the limit since `since`, still within the grace period.
    Over { since: Instant },
    /// Above the limit for the whole grace period: restart the program. The guard starts
    /// over, so the next restart needs a full grace period again.
    Restart { since: Instant },
}

#[derive(Clone, Debug)]
pub struct MemoryGuard {
    limit: u64,
    grace: Duration,
    /// When the samples went above the limit (and have stayed there).
    over_since: Option<Instant>,
}

impl MemoryGuard {
    pub fn new(limit: u64, grace: Duration) -> Self {
        MemoryGuard { limit, grace, over_since: None }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// One sample of the tree's resident memory, in bytes.
    pub fn observe(&mut self, rss: u64, now: Instant) -> MemoryVerdict {
        if rss <= self.limit {
            self.over_since = None;
            return MemoryVerdict::Under;
        }
        let since = *self.over_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.grace {
            self.over_since = None;
            MemoryVerdict::Restart { since }
        } else {
            MemoryVerdict::Over { since }
        }
    }

    /// The process is gone (exited, stopped, restarted): start over.
    pub fn reset(&mut self) {
        self.over_since = None;
    }
}

/// A size for messages: exact in the largest unit that divides it (`512MB`, `3MiB`,
/// `1001B`), else rounded to one decimal in binary units (`117.7MiB`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "kB"),
    ];
    if let Some((size, unit)) = UNITS.iter().find(|(size, _)| bytes >= *size && bytes.is_multiple_of(*size)) {
        return format!("{}{unit}", bytes / size);
    }
    match UNITS.iter().step_by(2).find(|(size, _)| bytes >= *size) {
        Some(&(size, unit)) => {
            let (bytes, size) = (u128::from(bytes), u128::from(size));
            let mut tenths = (bytes * 10 + size / 2) / size;
            // Within a rounding of u64::MAX, rounding up would show more than a size can be
            // (a message's size must parse back): round down there.
            if tenths * size / 10 > u128::from(u64::MAX) {
                tenths = bytes * 10 / size;
            }
            format!("{}.{}{unit}", tenths / 10, tenths % 10)
        }
        None => format!("{bytes}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemoryVerdict::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(format_bytes(512_000_000), "512MB");
        assert_eq!(format_bytes(3 << 20), "3MiB");
        assert_eq!(format_bytes(1 << 30), "1GiB");
        assert_eq!(format_bytes(1001), "1001B");
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(123_456_789), "117.7MiB");
    }

    #[test]
    fn the_largest_sizes_show_as_sizes_that_parse() {
        // Rounded up, u64::MAX would show as 17179869184.0GiB: more than a size can be, so
        // `memory > …` in an alert message did not parse back (found by fuzzing).
        for bytes in [u64::MAX, u64::MAX - (1 << 20), u64::MAX / 10 * 9 + 7] {
            let shown = format_bytes(bytes);
            let back = crate::units::parse_size(&shown).unwrap_or_else(|e| panic!("{bytes}: {e}"));
            assert!(back.abs_diff(bytes) <= bytes / 20, "{bytes} shows as {shown}, which is {back}");
        }
        assert_eq!(format_bytes(u64::MAX), "17179869183.9GiB");
    }

    #[test]
    fn grace_table() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        #[rustfmt::skip]
        let samples: &[(u64, u64, MemoryVerdict)] = &[
            (0,    100, Under),
            (100,  101, Over { since: at(100) }),
            (200,  500, Over { since: at(100) }),
            // Back under: the clock starts again at the next excursion.
            (300,  100, Under),
            (400,  200, Over { since: at(400) }),
            (1300, 200, Over { since: at(400) }),
            (1400, 200, Restart { since: at(400) }),
            // After a restart decision the guard starts over.
            (1500, 200, Over { since: at(1500) }),
        ];
        let mut g = MemoryGuard::new(100, Duration::from_millis(1000));
        for &(ms, rss, want) in samples {
            assert_eq!(g.observe(rss, at(ms)), want, "at {ms}ms, {rss} bytes");
        }
        g.reset();
        assert_eq!(g.observe(200, at(2000)), Over { since: at(2000) });
    }

    #[test]
    fn zero_grace_restarts_at_the_first_sample_above() {
        let t0 = Instant::now();
        let mut g = MemoryGuard::new(10, Duration::ZERO);
        assert_eq!(g.observe(11, t0), Restart { since: t0 });
    }
}
