//! What a receiver's answer means, and what to do with the rest of a batch.
//!
//! Each protocol says which answers may be retried (see docs/shipping.md):
//! - 2xx: delivered. (Elasticsearch says 200 even when items failed: its items are read by
//!   the runtime and come back here as [`Verdict::Items`].)
//! - 429, 502, 503, 504, and for Loki and Elasticsearch also 500: the receiver is busy or
//!   down; send the same batch again after a backoff, or after `Retry-After`.
//! - 401, 403, 404, 405, 407: the sink is set up wrong (token, URL), not the data. Splitting
//!   would dead-letter every line, so the batch waits and is sent again, and the sink is
//!   reported down with the status until someone fixes it.
//! - 413 and every other 4xx: some line is refused. Split the batch in halves, down to the
//!   one line that is refused, which goes to the dead-letter file.
//!
//! [`Plan`] holds the parts of one batch still to send, in order. A batch is finished (and
//! its cursors move) only when every line was delivered or dead-lettered.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::SinkKind;

/// What to do after one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every line of the part was delivered.
    Delivered,
    /// Send the same part again, after `after` if the receiver said so.
    Retry { after: Option<Duration> },
    /// The receiver refused the sink itself (wrong token or URL): send again after a long
    /// backoff; the sink is down until then.
    Misconfigured,
    /// Some line in the part is refused: split it.
    Refused,
    /// Per-item results (indices into the part): these were refused for good, those must be
    /// sent again; the others were delivered.
    Items { refused: Vec<usize>, retry: Vec<usize> },
}

/// The longest `Retry-After` honoured: a receiver asking for more gets asked again sooner.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The verdict on an HTTP status (for Elasticsearch, a 200 with errors is read item by item
/// instead).
pub fn http(kind: SinkKind, status: u16, retry_after: Option<Duration>) -> Verdict {
    let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
    match status {
        200..=299 => Verdict::Delivered,
        429 | 502 | 503 | 504 => Verdict::Retry { after: retry_after },
        // OTLP: a 500 is not retryable by the spec, so it is a refusal like other errors.
        500 if kind != SinkKind::Otlp => Verdict::Retry { after: retry_after },
        401 | 403 | 404 | 405 | 407 => Verdict::Misconfigured,
        400..=500 => Verdict::Refused,
        // Other 5xx, and statuses no protocol uses (1xx, 3xx: no redirect is followed):
        // keep the lines and try again.
        _ => Verdict::Retry { after: retry_after },
    }
}

/// The delay before retry number `attempt` (0 for the first): full jitter over an
/// exponential ceiling from 500 ms to 60 s. `random` is any random number.
pub fn backoff(attempt: u32, random: u64) -> Duration {
    const FIRST: u64 = 500;
    const LAST: u64 = 60_000;
    let ceiling = FIRST.saturating_mul(1u64 << attempt.min(20)).min(LAST);
    // At least a tenth of the ceiling: a zero delay would hammer a receiver that just failed.
    Duration::from_millis(ceiling / 10 + random % (ceiling - ceiling / 10 + 1))
}

/// The parts of one batch (line indices, in order) still to send.
#[derive(Debug)]
pub struct Plan {
    parts: VecDeque<Vec<usize>>,
    /// Refused for good, to the dead-letter file.
    dead: Vec<usize>,
}

impl Plan {
    /// The whole batch of `lines` lines as one part.
    pub fn new(lines: usize) -> Plan {
        let mut parts = VecDeque::new();
        if lines > 0 {
            parts.push_back((0..lines).collect());
        }
        Plan { parts, dead: Vec::new() }
    }

    /// The part to send now; `None` when the batch is finished.
    pub fn current(&self) -> Option<&[usize]> {
        self.parts.front().map(Vec::as_slice)
    }

    /// Applies the verdict on the current part. Retries leave it current.
    pub fn apply(&mut self, verdict: &Verdict) {
        let Some(part) = self.parts.front() else { return };
        match verdict {
            Verdict::Delivered => {
                self.parts.pop_front();
            }
            Verdict::Retry { .. } | Verdict::Misconfigured => {}
            Verdict::Refused if part.len() == 1 => {
                self.dead.push(part[0]);
                self.parts.pop_front();
            }
            Verdict::Refused => {
                let mut first = self.parts.pop_front().unwrap_or_default();
                let second = first.split_off(first.len() / 2);
                self.parts.push_front(second);
                self.parts.push_front(first);
            }
            Verdict::Items { refused, retry } => {
                let part = self.parts.pop_front().unwrap_or_default();
                self.dead.extend(refused.iter().filter_map(|&i| part.get(i)));
                let again: Vec<usize> = retry.iter().filter_map(|&i| part.get(i).copied()).collect();
                if !again.is_empty() {
                    self.parts.push_front(again);
                }
            }
        }
    }

    /// The lines refused for good so far (batch indices), to dead-letter.
    pub fn take_dead(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_each_protocol_says() {
        let after = Some(Duration::from_secs(3));
        for kind in [SinkKind::Loki, SinkKind::Elasticsearch, SinkKind::Otlp] {
            assert_eq!(http(kind, 200, None), Verdict::Delivered);
            assert_eq!(http(kind, 204, None), Verdict::Delivered);
            assert_eq!(http(kind, 429, after), Verdict::Retry { after });
            assert_eq!(http(kind, 503, None), Verdict::Retry { after: None });
            assert_eq!(http(kind, 400, None), Verdict::Refused);
            assert_eq!(http(kind, 413, None), Verdict::Refused);
            assert_eq!(http(kind, 401, None), Verdict::Misconfigured);
            assert_eq!(http(kind, 404, None), Verdict::Misconfigured);
            assert_eq!(http(kind, 302, None), Verdict::Retry { after: None });
        }
        assert_eq!(http(SinkKind::Loki, 500, None), Verdict::Retry { after: None });
        assert_eq!(http(SinkKind::Elasticsearch, 500, None), Verdict::Retry { after: None });
        assert_eq!(http(SinkKind::Otlp, 500, None), Verdict::Refused);
        assert_eq!(
            http(SinkKind::Loki, 429, Some(Duration::from_secs(86_400))),
            Verdict::Retry { after: Some(MAX_RETRY_AFTER) }
        );
    }

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        for attempt in 0..40 {
            for random in [0, 1, 12_345, u64::MAX] {
                let d = backoff(attempt, random);
                assert!(d >= Duration::from_millis(50) && d <= Duration::from_secs(60), "{attempt} {d:?}");
            }
        }
        assert!(backoff(0, u64::MAX) <= Duration::from_millis(500));
        assert!(backoff(30, 0) >= Duration::from_secs(6));
    }

    #[test]
    fn a_refused_batch_splits_down_to_the_bad_line() {
        // Lines 0..8; line 5 is refused whenever it is in a part.
        let mut plan = Plan::new(8);
        let mut sent = Vec::new();
        while let Some(part) = plan.current() {
            let part = part.to_vec();
            let verdict = if part.contains(&5) { Verdict::Refused } else { Verdict::Delivered };
            if verdict == Verdict::Delivered {
                sent.extend(part.iter().copied());
            }
            plan.apply(&verdict);
        }
        assert_eq!(sent, [0, 1, 2, 3, 4, 6, 7], "every good line, in order");
        assert_eq!(plan.take_dead(), [5]);
    }

    #[test]
    fn retries_keep_the_part_and_items_narrow_it() {
        let mut plan = Plan::new(4);
        plan.apply(&Verdict::Retry { after: None });
        assert_eq!(plan.current(), Some(&[0, 1, 2, 3][..]));
        plan.apply(&Verdict::Misconfigured);
        assert_eq!(plan.current(), Some(&[0, 1, 2, 3][..]));
        plan.apply(&Verdict::Items { refused: vec![0], retry: vec![2, 3] });
        assert_eq!(plan.current(), Some(&[2, 3][..]));
        plan.apply(&Verdict::Items { refused: vec![], retry: vec![1] });
        assert_eq!(plan.current(), Some(&[3][..]), "indices are into the part sent");
        plan.apply(&Verdict::Delivered);
        assert_eq!(plan.current(), None);
        assert_eq!(plan.take_dead(), [0]);
        assert_eq!(Plan::new(0).current(), None);
    }
}
