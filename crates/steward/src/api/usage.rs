//! `GET /v1/usage[?follow=true]`: memory and CPU of each running program, for the dashboard
//! and `steward top`, and the last hour of it for their charts.
//!
//! The sampler runs only while someone watches: [`UsageHub::subscribe`] hands out a
//! [`Watch`] guard, and the sampling task starts with the first and ends a grace period
//! ([`GRACE_TICKS`] ticks, so that a reloaded page finds its charts) after the last is
//! dropped, taking its history with it. With no one watching there is no task, no timer and
//! no history: an idle steward pays nothing for this.
//!
//! - `GET /v1/usage`: one [`Sample`]: the sampler's latest while it runs, else a fresh one
//!   (whose `cpu_percent` is null: a rate needs two samples).
//! - `?follow=true`: NDJSON, first `{"history": History}`, then a [`Sample`] per tick.
//!
//! The arithmetic (CPU percent from two readings, the bounded history) is [`Tracker`], which
//! takes readings and times and keeps no clock of its own.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};

use super::ApiError;
use crate::process::TreeRef;
use crate::resources::{self, Usage};
use crate::supervise::{Control, Snapshot};

/// How often the sampler reads the process trees while someone watches.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Every how many ticks a point goes into the history (one per 10 s).
const HISTORY_EVERY: u32 = 5;
/// Points kept per program: an hour at one per 10 s.
const HISTORY_POINTS: usize = 360;
/// Ticks the sampler goes on after the last watcher left (a minute).
pub const GRACE_TICKS: u32 = 30;

/// One reading of every running program.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Sample {
    pub time: String,
    pub interval_secs: u64,
    pub programs: Vec<ProgramUsage>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProgramUsage {
    pub name: String,
    pub rss_bytes: u64,
    /// Of one core, over the last interval; `None` on a process's first reading.
    pub cpu_percent: Option<f64>,
    pub processes: u32,
}

/// The last hour, one point per `step_secs`, oldest first:
/// `[unix_secs, rss_bytes, cpu_percent or null, restarts]`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct History {
    pub step_secs: u64,
    pub programs: BTreeMap<String, Vec<Point>>,
}

pub type Point = (u64, u64, Option<f64>, u64);

/// A program as the sampler sees it at one tick.
pub struct Reading {
    pub name: String,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub usage: Option<Usage>,
}

/// CPU rates and the bounded history: pure, fed with readings and times.
#[derive(Default)]
pub struct Tracker {
    /// Per program: the pid and CPU seconds at the last reading, for the next rate.
    last: HashMap<String, (u32, f64, SystemTime)>,
    history: BTreeMap<String, VecDeque<Point>>,
    ticks: u32,
}

impl Tracker {
    /// Takes one tick's readings at `now` and returns the sample to publish.
    pub fn observe(&mut self, now: SystemTime, readings: Vec<Reading>) -> Sample {
        let keep_point = self.ticks.is_multiple_of(HISTORY_EVERY);
        self.ticks = self.ticks.wrapping_add(1);
        let unix = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut programs = Vec::new();
        let mut seen = HashMap::with_capacity(readings.len());
        for r in readings {
            let (Some(pid), Some(usage)) = (r.pid, r.usage) else {
                if keep_point {
                    self.point(&r.name, (unix, 0, None, r.restarts));
                }
                continue;
            };
            // A new process starts its CPU count from zero: no rate across a restart.
            let cpu_percent = match self.last.get(&r.name) {
                Some(&(last_pid, last_cpu, last_time)) if last_pid == pid => {
                    let secs = now.duration_since(last_time).map_or(0.0, |d| d.as_secs_f64());
                    (secs > 0.0).then(|| (usage.cpu_seconds - last_cpu).max(0.0) / secs * 100.0)
                }
                _ => None,
            };
            seen.insert(r.name.clone(), (pid, usage.cpu_seconds, now));
            if keep_point {
                self.point(&r.name, (unix, usage.rss_bytes, cpu_percent, r.restarts));
            }
            programs.push(ProgramUsage {
                name: r.name,
                rss_bytes: usage.rss_bytes,
                cpu_percent,
                processes: usage.processes,
            });
        }
        self.last = seen;
        Sample {
            time: humantime::format_rfc3339_millis(now).to_string(),
            interval_secs: INTERVAL.as_secs(),
            programs,
        }
    }

    fn point(&mut self, name: &str, p: Point) {
        let points = self.history.entry(name.to_owned()).or_default();
        if points.len() == HISTORY_POINTS {
            points.pop_front();
        }
        points.push_back(p);
    }

    /// Drops the history of programs no longer configured.
    pub fn retain(&mut self, configured: impl Fn(&str) -> bool) {
        self.history.retain(|name, _| configured(name));
    }

    pub fn history(&self) -> History {
        History {
            step_secs: INTERVAL.as_secs() * u64::from(HISTORY_EVERY),
            programs: self.history.iter().map(|(k, v)| (k.clone(), v.iter().copied().collect())).collect(),
        }
    }
}

/// The sampler, shared by every API listener. Cheap to clone; nothing runs until
/// [`subscribe`](Self::subscribe).
#[derive(Clone)]
pub struct UsageHub {
    control: Control,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    watchers: usize,
    /// While the sampler runs.
    running: Option<Running>,
}

struct Running {
    tx: broadcast::Sender<Arc<Sample>>,
    tracker: Tracker,
    latest: Option<Arc<Sample>>,
}

/// Keeps the sampler running while it lives.
pub struct Watch {
    shared: Arc<Mutex<Shared>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock(&self.shared).watchers -= 1;
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl UsageHub {
    pub fn new(control: Control) -> UsageHub {
        UsageHub { control, shared: Arc::default() }
    }

    /// The history so far and the live samples, with the guard that keeps them coming.
    /// Starts the sampler if it is not running.
    pub fn subscribe(&self) -> (History, broadcast::Receiver<Arc<Sample>>, Watch) {
        let mut shared = lock(&self.shared);
        shared.watchers += 1;
        let watch = Watch { shared: self.shared.clone() };
        if let Some(running) = &shared.running {
            return (running.tracker.history(), running.tx.subscribe(), watch);
        }
        let (tx, rx) = broadcast::channel(16);
        shared.running = Some(Running { tx, tracker: Tracker::default(), latest: None });
        drop(shared);
        tokio::spawn(sample_loop(self.control.clone(), self.shared.clone()));
        (
            History { step_secs: INTERVAL.as_secs() * u64::from(HISTORY_EVERY), ..History::default() },
            rx,
            watch,
        )
    }

    /// The sampler's latest sample, or a fresh one when it is not running.
    pub async fn now(&self) -> Result<Arc<Sample>, ApiError> {
        if let Some(latest) = lock(&self.shared).running.as_ref().and_then(|r| r.latest.clone()) {
            return Ok(latest);
        }
        let readings = read(&self.control).await?;
        // A throwaway tracker: no previous reading, so no CPU rate.
        Ok(Arc::new(Tracker::default().observe(SystemTime::now(), readings)))
    }
}

/// Samples every [`INTERVAL`] until no one has watched for [`GRACE_TICKS`] ticks (or
/// steward is shutting down), then drops its history.
async fn sample_loop(control: Control, shared: Arc<Mutex<Shared>>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_ticks = 0;
    loop {
        ticker.tick().await;
        let readings = match read(&control).await {
            Ok(r) => r,
            Err(_) => break, // shutting down
        };
        let mut guard = lock(&shared);
        let watchers = guard.watchers;
        let Some(running) = guard.running.as_mut() else { return };
        let names: std::collections::HashSet<String> = readings.iter().map(|r| r.name.clone()).collect();
        running.tracker.retain(|n| names.contains(n));
        let sample = Arc::new(running.tracker.observe(SystemTime::now(), readings));
        running.latest = Some(sample.clone());
        let _ = running.tx.send(sample);
        idle_ticks = if watchers == 0 { idle_ticks + 1 } else { 0 };
        // Decided under the lock, so a watcher arriving now finds either a sampler that goes
        // on or none (and starts one).
        if idle_ticks >= GRACE_TICKS {
            guard.running = None;
            return;
        }
    }
    lock(&shared).running = None;
}

/// A snapshot of the programs and a reading of their trees (on a blocking thread: it
/// reads `/proc` or asks the Job Objects).
async fn read(control: &Control) -> Result<Vec<Reading>, ApiError> {
    let snapshot: Snapshot = control.snapshot().await?;
    tokio::task::spawn_blocking(move || {
        let trees: Vec<TreeRef> = snapshot.programs.iter().filter_map(|p| p.tree.clone()).collect();
        let mut sampled = resources::sample(&trees).into_iter();
        snapshot
            .programs
            .into_iter()
            .map(|p| Reading {
                usage: p.tree.as_ref().and_then(|_| sampled.next().flatten()),
                name: p.name,
                pid: p.status.pid,
                restarts: p.status.restarts,
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("sampling failed: {e}")))
}

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/usage`.
pub async fn usage(State(hub): State<UsageHub>, Query(p): Query<Params>) -> Result<Response, ApiError> {
    if !p.follow {
        let sample = hub.now().await?;
        return Ok(Json(&*sample).into_response());
    }
    #[derive(Serialize)]
    struct First {
        history: History,
    }
    let (history, rx, watch) = hub.subscribe();
    let first = stream::once(async move { Ok::<_, std::convert::Infallible>(ndjson(&First { history })) });
    let live = stream::unfold((rx, watch), |(mut rx, watch)| async move {
        loop {
            match rx.recv().await {
                Ok(sample) => return Some((Ok(ndjson(&*sample)), (rx, watch))),
                // A slow reader skips to the newest: a sample replaces the ones before it.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(first.chain(live)))
        .expect("static headers are valid"))
}

fn ndjson(value: &impl Serialize) -> Bytes {
    let mut v = serde_json::to_vec(value).expect("usage serializes");
    v.push(b'\n');
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, pid: u32, cpu: f64, rss: u64, restarts: u64) -> Reading {
        Reading {
            name: name.into(),
            pid: Some(pid),
            restarts,
            usage: Some(Usage { rss_bytes: rss, cpu_seconds: cpu, processes: 1 }),
        }
    }

    #[test]
    fn cpu_percent_needs_two_readings_of_the_same_process() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut tracker = Tracker::default();
        let first = tracker.observe(t0, vec![reading("web", 10, 5.0, 100, 0)]);
        assert_eq!(first.programs[0].cpu_percent, None);
        let second = tracker.observe(t0 + INTERVAL, vec![reading("web", 10, 6.0, 200, 0)]);
        assert_eq!(second.programs[0].cpu_percent, Some(50.0));
        assert_eq!(second.programs[0].rss_bytes, 200);
        // Restarted: a new pid, its count from zero; no rate, and never a negative one.
        let third = tracker.observe(t0 + INTERVAL * 2, vec![reading("web", 11, 0.1, 50, 1)]);
        assert_eq!(third.programs[0].cpu_percent, None);
    }

    #[test]
    fn a_stopped_program_is_absent_from_the_sample_but_kept_in_the_history() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut tracker = Tracker::default();
        let stopped = Reading { name: "db".into(), pid: None, restarts: 2, usage: None };
        let sample = tracker.observe(t0, vec![reading("web", 10, 1.0, 100, 0), stopped]);
        assert_eq!(sample.programs.len(), 1);
        let history = tracker.history();
        assert_eq!(history.programs["db"], vec![(1_000, 0, None, 2)]);
        assert_eq!(history.programs["web"], vec![(1_000, 100, None, 0)]);
    }

    #[test]
    fn history_keeps_one_point_per_step_and_an_hour_at_most() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut tracker = Tracker::default();
        let ticks = HISTORY_POINTS as u32 * HISTORY_EVERY + 7;
        for i in 0..ticks {
            tracker.observe(t0 + INTERVAL * i, vec![reading("web", 10, f64::from(i), 1, 0)]);
        }
        let history = tracker.history();
        let points = &history.programs["web"];
        assert_eq!(points.len(), HISTORY_POINTS);
        assert_eq!(history.step_secs, 10);
        // Oldest first, a step apart, ending at the last tick that kept a point.
        assert!(points.windows(2).all(|w| w[1].0 - w[0].0 == 10));
        let last_kept = u64::from((ticks - 1) / HISTORY_EVERY * HISTORY_EVERY) * INTERVAL.as_secs();
        assert_eq!(points.last().unwrap().0, last_kept);
        tracker.retain(|n| n != "web");
        assert!(tracker.history().programs.is_empty());
    }
}
