//! What a load run found: [`Counts`] while it runs, a [`Report`] at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{Config, Mode};

/// How the requests so far ended. Each request ends in exactly one of `ok`, `refused`,
/// `reset`, `timeout`, `bad`, `other`; `retried` counts the keep-alive retries on top (see
/// the module doc of [`crate::load`]), which are not failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// A 200 whose body named a pid and a revision.
    pub ok: u64,
    /// The connection was refused (`ECONNREFUSED`; for a Unix socket also a missing path):
    /// nothing was listening.
    pub refused: u64,
    /// The connection was reset, aborted or closed before the response was complete (and
    /// could not be retried).
    pub reset: u64,
    /// No complete response within the request timeout (connecting included).
    pub timeout: u64,
    /// A response that was not a 200 with a test server's body, or not valid HTTP/1.1.
    pub bad: u64,
    /// Any other error (say, no local port left).
    pub other: u64,
    /// Keep-alive requests sent again on a new connection, because the reused one was closed
    /// before any byte of the response came.
    pub retried: u64,
}

impl Counts {
    /// Requests that did not end in `ok`.
    pub fn failed(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.bad + self.other
    }

    /// Requests finished, ok or not.
    pub fn total(&self) -> u64 {
        self.ok + self.failed()
    }
}

/// One successful response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OkResponse {
    /// When the request was started (connecting included; for a retried keep-alive request,
    /// the first try), from the start of the run.
    #[serde(rename = "sent_s", serialize_with = "secs")]
    pub sent: Duration,
    /// When the response was complete, from the start of the run.
    #[serde(rename = "at_s", serialize_with = "secs")]
    pub at: Duration,
    pub pid: u32,
    pub rev: String,
    /// The worker that sent it, 0-based.
    pub worker: usize,
}

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Refused,
    Reset,
    Timeout,
    Bad,
    Other,
}

/// One failed request (a run keeps the first [`super::MAX_FAILURES_KEPT`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// When it failed, from the start of the run.
    #[serde(rename = "at_s", serialize_with = "secs")]
    pub at: Duration,
    pub kind: FailureKind,
    /// What happened, for people: the error or what was wrong with the response.
    pub message: String,
    pub worker: usize,
}

/// The responses of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PidSummary {
    pub ok: u64,
    /// The revisions it answered with (one, normally).
    pub revs: BTreeSet<String>,
    #[serde(rename = "first_s", serialize_with = "secs")]
    pub first: Duration,
    #[serde(rename = "last_s", serialize_with = "secs")]
    pub last: Duration,
}

/// The result of a load run, from [`super::Load::stop`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where the load went (`127.0.0.1:8080`, `unix:/path`).
    pub target: String,
    pub mode: Mode,
    pub concurrency: usize,
    /// From the start to the stop (requests in flight at the stop were finished after it).
    #[serde(rename = "elapsed_s", serialize_with = "secs")]
    pub elapsed: Duration,
    pub counts: Counts,
    /// `counts.failed()`, for readers of the JSON.
    pub failed: u64,
    /// Successful responses per pid.
    pub pids: BTreeMap<u32, PidSummary>,
    /// The longest time between two successive successful responses (zero with fewer than
    /// two): how long the service looked down, as near as K workers can tell.
    #[serde(rename = "longest_gap_s", serialize_with = "secs")]
    pub longest_gap: Duration,
    /// The width of the buckets of `ok_per_interval`.
    #[serde(rename = "interval_s", serialize_with = "secs")]
    pub interval: Duration,
    /// Successful responses in each interval from the start: bucket `i` covers
    /// `[i * interval, (i + 1) * interval)`.
    pub ok_per_interval: Vec<u64>,
    /// The first failures, in time order (all of them are counted in `counts`).
    pub failures: Vec<Failure>,
    /// Every successful response in time order (left out of the JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<OkResponse>,
}

impl Report {
    /// Builds the summary fields from the raw records.
    pub(crate) fn new(
        config: &Config,
        elapsed: Duration,
        counts: Counts,
        mut responses: Vec<OkResponse>,
        mut failures: Vec<Failure>,
    ) -> Report {
        let interval = config.interval;
        responses.sort_by_key(|r| r.at);
        failures.sort_by_key(|f| f.at);
        failures.truncate(super::MAX_FAILURES_KEPT);
        let mut pids: BTreeMap<u32, PidSummary> = BTreeMap::new();
        for r in &responses {
            let summary = pids.entry(r.pid).or_insert_with(|| PidSummary {
                ok: 0,
                revs: BTreeSet::new(),
                first: r.at,
                last: r.at,
            });
            summary.ok += 1;
            summary.last = r.at;
            if !summary.revs.contains(&r.rev) {
                summary.revs.insert(r.rev.clone());
            }
        }
        let longest_gap = responses.windows(2).map(|w| w[1].at - w[0].at).max().unwrap_or_default();
        let ok_per_interval = per_interval(&responses, elapsed, interval);
        Report {
            target: config.target.to_string(),
            mode: config.mode,
            concurrency: config.concurrency,
            elapsed,
            counts,
            failed: counts.failed(),
            pids,
            longest_gap,
            interval,
            ok_per_interval,
            failures,
            responses,
        }
    }

    /// The successful responses completed at or after `t` (from the start of the run).
    pub fn responses_after(&self, t: Duration) -> impl Iterator<Item = &OkResponse> {
        let first = self.responses.partition_point(|r| r.at < t);
        self.responses[first..].iter()
    }

    /// The successful responses to requests started at or after `t`. To check that a stopped
    /// process answered nothing after it was gone, take `t` once its exit was seen: a request
    /// started later cannot have reached it, while a response it wrote just before exiting
    /// may still be read by a slow worker after `t`.
    pub fn sent_after(&self, t: Duration) -> impl Iterator<Item = &OkResponse> {
        self.responses.iter().filter(move |r| r.sent >= t)
    }

    /// The pids that answered.
    pub fn pid_set(&self) -> BTreeSet<u32> {
        self.pids.keys().copied().collect()
    }

    /// A few lines for a failing test's message: the counts, pids, gap and first failures
    /// (not every response).
    pub fn summary(&self) -> String {
        let mut text = format!(
            "load on {} ({:?}, {} workers, {:.2?}): {:?}\npids: {:?}\nlongest gap: {:.2?}",
            self.target,
            self.mode,
            self.concurrency,
            self.elapsed,
            self.counts,
            self.pids.iter().map(|(pid, s)| (*pid, s.ok, s.first, s.last)).collect::<Vec<_>>(),
            self.longest_gap
        );
        for f in self.failures.iter().take(10) {
            text += &format!("\n  {:.3?} worker {}: {:?}: {}", f.at, f.worker, f.kind, f.message);
        }
        text
    }
}

/// Successful responses per `interval` over `[0, elapsed)`; a response completed after the
/// stop (it was in flight) goes into the last bucket.
fn per_interval(responses: &[OkResponse], elapsed: Duration, interval: Duration) -> Vec<u64> {
    if interval.is_zero() {
        return Vec::new();
    }
    let buckets = (elapsed.as_nanos().div_ceil(interval.as_nanos())).max(1) as usize;
    let mut counts = vec![0; buckets];
    for r in responses {
        let i = (r.at.as_nanos() / interval.as_nanos()) as usize;
        counts[i.min(buckets - 1)] += 1;
    }
    counts
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u64, pid: u32) -> OkResponse {
        OkResponse {
            sent: Duration::from_millis(ms - 5),
            at: Duration::from_millis(ms),
            pid,
            rev: format!("r{pid}"),
            worker: 0,
        }
    }

    #[test]
    fn summaries() {
        let counts = Counts { ok: 5, refused: 1, retried: 2, ..Counts::default() };
        assert_eq!((counts.failed(), counts.total()), (1, 6));
        let config = Config {
            mode: Mode::KeepAlive,
            concurrency: 2,
            interval: Duration::from_millis(100),
            ..Config::new("127.0.0.1:1".parse().unwrap())
        };
        let report = Report::new(
            &config,
            Duration::from_millis(250),
            counts,
            vec![ok(210, 2), ok(10, 1), ok(20, 1), ok(150, 2), ok(260, 2)],
            vec![Failure {
                at: Duration::from_millis(100),
                kind: FailureKind::Refused,
                message: "refused".into(),
                worker: 1,
            }],
        );
        assert_eq!(
            report.responses.iter().map(|r| r.at.as_millis()).collect::<Vec<_>>(),
            [10, 20, 150, 210, 260]
        );
        assert_eq!(report.longest_gap, Duration::from_millis(130));
        assert_eq!(report.ok_per_interval, [2, 1, 2], "the response after the stop is in the last bucket");
        assert_eq!(report.pid_set(), BTreeSet::from([1, 2]));
        let two = &report.pids[&2];
        assert_eq!(
            (two.ok, two.first, two.last),
            (3, Duration::from_millis(150), Duration::from_millis(260))
        );
        assert_eq!(two.revs, BTreeSet::from(["r2".to_owned()]));
        assert_eq!(report.responses_after(Duration::from_millis(150)).count(), 3);
        assert_eq!(report.responses_after(Duration::from_secs(1)).count(), 0);
        assert_eq!(report.sent_after(Duration::from_millis(146)).count(), 2);
        assert_eq!(report.sent_after(Duration::from_millis(145)).count(), 3);
        assert_eq!(report.sent_after(Duration::from_millis(144)).count(), 3);
        assert_eq!(report.sent_after(Duration::from_millis(16)).count(), 3);
        assert_eq!(report.sent_after(Duration::from_millis(15)).count(), 4);
        assert!(report.summary().contains("Refused: refused"), "{}", report.summary());

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "keep_alive");
        assert_eq!(json["failed"], 1);
        assert_eq!(json["elapsed_s"], 0.25);
        assert_eq!(json["pids"]["2"]["ok"], 3);
        assert_eq!(json["failures"][0]["kind"], "refused");
        assert_eq!(json["responses"][0]["at_s"], 0.01);
        let config = Config { interval: Duration::ZERO, ..Config::new("127.0.0.1:1".parse().unwrap()) };
        let empty = Report::new(&config, Duration::ZERO, Counts::default(), vec![], vec![]);
        let json = serde_json::to_value(&empty).unwrap();
        assert!(json.get("responses").is_none());
        assert_eq!(empty.longest_gap, Duration::ZERO);
    }
}
