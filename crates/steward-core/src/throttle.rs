//! Failed authentications, per peer: how many a peer may make before it is refused for a
//! while (answered 429 without its token being looked at), and what to report about it.
//!
//! Each peer has a budget of [`FailureLimit::burst`] failures that refills by one every
//! [`FailureLimit::every`]: the generic cell rate algorithm, which keeps one instant per
//! peer (when its budget is full again) instead of a counter and a timer. A success costs
//! nothing and forgives nothing: a stolen token does not buy more guesses.
//!
//! Refusals are counted per peer, and reported once the peer is let through again
//! ([`Check::Allowed::refused_before`]), so a flood writes one summary, not a line per
//! request. The number of peers remembered is bounded: peers whose budget is full are
//! forgotten first, and past [`FailureLimit::max_peers`] new peers share one budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many failed authentications a peer may make, and how fast it earns new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failures in a row before the peer is refused (0 counts as 1).
    pub burst: u32,
    /// One more failure is allowed per this much time.
    pub every: Duration,
    /// Peers remembered at once; more share one budget.
    pub max_peers: usize,
}

impl FailureLimit {
    /// The remote API's: 10 failures, then one a second.
    pub const DEFAULT: FailureLimit =
        FailureLimit { burst: 10, every: Duration::from_secs(1), max_peers: 4096 };
}

/// What to do with a request from a peer, before its token is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Check its token. `refused_before` requests of this peer were refused since it was last
    /// let through (0 usually): worth one line in the audit log.
    Allowed { refused_before: u64 },
    /// Refuse it; the peer may try again after `retry_after`. `first` is true for the first
    /// refusal of a run, the one worth a warning.
    Refused { retry_after: Duration, first: bool },
}

#[derive(Debug)]
struct Peer {
    /// When the peer's budget is full again (GCRA's "theoretical arrival time").
    full_at: Instant,
    /// Refusals since the peer was last let through.
    refused: u64,
}

/// The failure budgets of the peers seen, keyed by `K` (an IP address, say).
#[derive(Debug)]
pub struct Throttle<K> {
    limit: FailureLimit,
    peers: HashMap<Option<K>, Peer>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(limit: FailureLimit) -> Throttle<K> {
        Throttle { limit, peers: HashMap::new() }
    }

    /// How far ahead of `now` a peer's `full_at` may be while it still has a failure left.
    fn tolerance(&self) -> Duration {
        self.limit.every.saturating_mul(self.limit.burst.saturating_sub(1))
    }

    /// Whether a request of `peer` arriving at `now` may have its token checked.
    pub fn check(&mut self, peer: &K, now: Instant) -> Check {
        let tolerance = self.tolerance();
        let key = self.key(peer, now);
        let Some(state) = self.peers.get_mut(&key) else {
            return Check::Allowed { refused_before: 0 };
        };
        let ahead = state.full_at.saturating_duration_since(now);
        if ahead > tolerance {
            state.refused += 1;
            let retry_after = ahead.saturating_sub(tolerance).max(Duration::from_secs(1));
            return Check::Refused { retry_after, first: state.refused == 1 };
        }
        Check::Allowed { refused_before: std::mem::take(&mut state.refused) }
    }

    /// `peer` presented no token, or a wrong one, at `now`: one failure off its budget.
    pub fn failed(&mut self, peer: &K, now: Instant) {
        let every = self.limit.every;
        let key = self.key(peer, now);
        let state = self.peers.entry(key).or_insert(Peer { full_at: now, refused: 0 });
        state.full_at = state.full_at.max(now) + every;
    }

    /// The key `peer` is kept under: itself, or the shared one when too many are remembered.
    fn key(&mut self, peer: &K, now: Instant) -> Option<K> {
        let key = Some(peer.clone());
        if self.peers.contains_key(&key) || self.peers.len() < self.limit.max_peers {
            return key;
        }
        // A peer whose budget is full again and who has nothing to report is like one never
        // seen: forget those first.
        self.peers.retain(|_, p| p.full_at > now || p.refused > 0);
        if self.peers.len() < self.limit.max_peers {
            key
        } else {
            None
        }
    }

    /// Peers remembered now (for tests and bounds).
    pub fn remembered(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: FailureLimit = FailureLimit { burst: 3, every: Duration::from_secs(2), max_peers: 2 };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Fail as fast as allowed at `now`, and return how many were let through.
    fn burst(t: &mut Throttle<&'static str>, peer: &'static str, now: Instant, tries: u32) -> u32 {
        let mut allowed = 0;
        for _ in 0..tries {
            if let Check::Allowed { .. } = t.check(&peer, now) {
                t.failed(&peer, now);
                allowed += 1;
            }
        }
        allowed
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMIT);
        assert_eq!(burst(&mut t, "a", t0, 100), 3);
        // Refused with how long to wait: the budget has one more failure in 2 s.
        assert_eq!(t.check(&"a", t0), Check::Refused { retry_after: secs(2.0), first: false });
        assert_eq!(t.check(&"a", t0 + secs(1.0)), Check::Refused { retry_after: secs(1.0), first: false });
        // Another peer has its own budget.
        assert_eq!(burst(&mut t, "b", t0, 100), 3);
        // One more after each interval, never a new burst while failing at that pace.
        for n in 1..10 {
            assert_eq!(burst(&mut t, "a", t0 + secs(2.0 * f64::from(n)), 100), 1, "interval {n}");
        }
        // After a quiet time as long as the whole burst, the burst is back.
        assert_eq!(burst(&mut t, "a", t0 + secs(18.0 + 6.0), 100), 3);
    }

    #[test]
    fn refusals_are_reported_once_when_the_peer_is_let_through_again() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMIT);
        burst(&mut t, "a", t0, 3);
        assert!(matches!(t.check(&"a", t0), Check::Refused { first: true, .. }));
        for _ in 0..41 {
            assert!(matches!(t.check(&"a", t0), Check::Refused { first: false, .. }));
        }
        assert_eq!(t.check(&"a", t0 + secs(2.0)), Check::Allowed { refused_before: 42 });
        assert_eq!(t.check(&"a", t0 + secs(2.0)), Check::Allowed { refused_before: 0 });
        // A success costs nothing: checking alone never uses up the budget.
        for _ in 0..100 {
            assert_eq!(t.check(&"c", t0), Check::Allowed { refused_before: 0 });
        }
        assert_eq!(t.remembered(), 1, "a peer that never failed is not remembered");
    }

    #[test]
    fn peers_past_the_bound_share_one_budget_and_idle_ones_are_forgotten() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMIT);
        burst(&mut t, "a", t0, 1);
        burst(&mut t, "b", t0, 1);
        // Two remembered: "c" and "d" share the overflow budget of 3.
        assert_eq!(burst(&mut t, "c", t0, 2) + burst(&mut t, "d", t0, 100), 3);
        assert!(t.remembered() <= LIMIT.max_peers + 1);
        // Once "a" and "b" have their budgets back (and nothing to report), they make room.
        let later = t0 + secs(60.0);
        assert_eq!(t.check(&"a", later), Check::Allowed { refused_before: 0 });
        assert_eq!(burst(&mut t, "e", later, 100), 3, "a new peer gets its own budget again");
    }
}
