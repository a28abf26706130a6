//! One sink's task: wait for lines, gather a batch from the files, send it until every line
//! is delivered or refused for good, then move the cursors.
//!
//! - It waits on its inbox (streams the log files say were written), never on a timer of
//!   its own; `linger` only delays a batch that is not full yet.
//! - One request at a time, so every stream's lines arrive in order. A sink that is down
//!   or slow holds only its own task: the programs write to their files as always, and the
//!   other sinks go on.
//! - The cursors move only after the receiver acknowledged the whole batch, so a crash at
//!   any moment sends at most that batch again.
//! - Retries go on without end, with backoff (or the receiver's `Retry-After`): the files
//!   are the buffer, bounded by retention (`max_unshipped`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use steward_core::config::{ShipSpec, SinkKind};
use steward_core::rotation::Stamp;
use steward_core::ship::cursor::{Cursor, Place};
use steward_core::ship::verdict::{self, Plan, Verdict};
use tokio::sync::{watch, Notify};

use super::batch::Batch;
use super::source::{Notice, Room, StreamReader};
use super::store::Store;
use super::transport::{self, SendError};
use super::{elastic, loki, otlp, syslog};
use crate::supervise::Control;

/// A sink, shared by its task, the log files' watches (through its [`Slot`]s) and whoever
/// reads its counters (metrics, status).
pub struct Sink {
    pub spec: ShipSpec,
    /// Streams with news, in the order they came; each at most once (its slot's `queued`).
    inbox: Mutex<VecDeque<usize>>,
    notify: Notify,
    /// Its streams, by index. Grows when a program's log appears that the sink ships (an
    /// instance scaled up, a program added by a reload).
    slots: std::sync::RwLock<Vec<Arc<Slot>>>,
    /// Readers of streams added since the task last looked, with their acknowledged
    /// cursors, in index order (see [`Sink::reserve`]).
    arrivals: Mutex<Vec<(usize, StreamReader, Cursor)>>,
    /// The sink's folder: cursors, dead letters.
    pub store: Arc<Store>,
    /// Goes into the line ids of streams without a cursor yet (`Store::epoch`).
    pub epoch: u64,
    pub stats: Stats,
    /// True while the task waits with nothing to do: steward's shutdown waits for it (a
    /// little) so that the programs' last lines go out before it exits.
    idle: watch::Sender<bool>,
    /// Set at shutdown: no lingering, send what there is.
    draining: AtomicBool,
    /// Cuts a linger short at shutdown.
    drain_now: Notify,
}

/// What a sink has done since steward started; read by `/metrics` and `steward status`.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent_lines: AtomicU64,
    pub sent_bytes: AtomicU64,
    /// Requests sent again (after an error, a timeout or a busy answer).
    pub retries: AtomicU64,
    /// Lines the receiver refused for good, written to the dead-letter file.
    pub dropped_refused: AtomicU64,
    /// Lines deleted by retention (past `max_unshipped`) or by hand before they were sent.
    pub dropped_retention: AtomicU64,
    /// OTLP `partial_success`: records the collector said it rejected.
    pub rejected_by_receiver: AtomicU64,
    /// Why the sink is down (its last request failed), or `None` when it is up.
    pub down: Mutex<Option<String>>,
    /// The capture time (ns) of the oldest line not yet acknowledged, as far as known: the
    /// oldest of the batch in flight, else (more waiting) the newest line delivered last.
    /// For a plain file a line's time is when the sink read it.
    pub oldest_unsent: Mutex<Option<i64>>,
}

/// One stream of a sink, as its log file sees it.
pub struct Slot {
    index: usize,
    sink: Weak<Sink>,
    queued: AtomicBool,
    /// The stamp of the newest rotated file acknowledged whole; `u64::MAX`: none.
    after: AtomicU64,
    /// Lines and bytes of rotated files deleted before they were sent, not yet reported.
    lost_lines: AtomicU64,
    lost_bytes: AtomicU64,
    /// The last few rotated files whose deletion counted lines as lost: the reader finding
    /// one of them missing is no news, the count was announced.
    counted: Mutex<VecDeque<Stamp>>,
    /// Lines of this stream are in the batch being sent.
    in_flight: AtomicBool,
    /// How far the reader has read (its lines before that are in a batch).
    read: Mutex<Option<ReadTo>>,
    /// The stream's live file, and what the receiver acknowledged of it (for the lag).
    live: std::sync::OnceLock<std::path::PathBuf>,
    acked: Mutex<Cursor>,
}

/// Where a stream's reader is: its cursor, and the file it is in if known.
#[derive(Clone, Copy)]
struct ReadTo {
    read: Cursor,
    at: Option<super::source::At>,
}

impl Slot {
    fn new(index: usize, sink: Weak<Sink>) -> Slot {
        Slot {
            index,
            sink,
            queued: AtomicBool::new(false),
            after: AtomicU64::new(u64::MAX),
            lost_lines: AtomicU64::new(0),
            lost_bytes: AtomicU64::new(0),
            counted: Mutex::new(VecDeque::new()),
            in_flight: AtomicBool::new(false),
            read: Mutex::new(None),
            live: std::sync::OnceLock::new(),
            acked: Mutex::new(Cursor::new(0, None)),
        }
    }

    fn queue(&self, sink: &Sink) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            sink.inbox.lock().unwrap_or_else(|e| e.into_inner()).push_back(self.index);
            sink.notify.notify_one();
        }
    }

    /// The receiver acknowledged the stream up to `cursor`: retention keeps the rotated files
    /// newer than its `after`.
    pub(super) fn set_acked(&self, live: &std::path::Path, cursor: Cursor) {
        let _ = self.live.set(live.to_path_buf());
        *self.acked.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        self.after.store(cursor.after.map_or(u64::MAX, |s| s.millis), Ordering::Release);
    }

    /// Bytes of the stream's files not acknowledged yet (compressed files count as their size
    /// on disk). Blocking: lists the folder, but only for a stream that is behind.
    pub fn lag_bytes(&self) -> u64 {
        if !self.queued.load(Ordering::Acquire) && !self.in_flight.load(Ordering::Acquire) {
            return 0;
        }
        let Some(live) = self.live.get() else { return 0 };
        let cursor = *self.acked.lock().unwrap_or_else(|e| e.into_inner());
        let rotated: u64 = crate::logs::history::rotated(live)
            .unwrap_or_default()
            .into_iter()
            .filter(|(stamp, _)| cursor.after.is_none_or(|after| *stamp > after))
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum();
        let total = rotated + std::fs::metadata(live).map_or(0, |m| m.len());
        total.saturating_sub(cursor.offset)
    }
}

impl crate::logs::watch::Reader for Slot {
    fn wake(&self) {
        if let Some(sink) = self.sink.upgrade() {
            self.queue(&sink);
        }
    }

    fn after(&self) -> Option<Stamp> {
        match self.after.load(Ordering::Acquire) {
            u64::MAX => None,
            millis => Some(Stamp { millis }),
        }
    }

    fn read_of(&self, stamp: Stamp, rotation: Option<u64>) -> u64 {
        let Some(ReadTo { read, at }) = *self.read.lock().unwrap_or_else(|e| e.into_inner()) else {
            return 0;
        };
        if read.after.is_some_and(|after| after >= stamp) {
            return u64::MAX;
        }
        let Some(at) = at else { return 0 };
        let in_it = match at.place {
            Place::Rotated(s) => s == stamp,
            // Last seen live, then renamed by the next rotation.
            Place::Live => rotation == Some(at.rotations + 1),
        };
        match (in_it, at.open) {
            // Open, it is read to its end from the open handle.
            (true, true) => u64::MAX,
            (true, false) => read.offset,
            (false, _) => 0,
        }
    }

    fn lost(&self, stamp: Stamp, lines: u64, bytes: u64) {
        {
            let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            counted.push_back(stamp);
            if counted.len() > 16 {
                counted.pop_front();
            }
        }
        self.lost_lines.fetch_add(lines, Ordering::AcqRel);
        self.lost_bytes.fetch_add(bytes, Ordering::AcqRel);
    }
}

impl Sink {
    /// A sink without streams yet ([`Sink::reserve`] and [`Sink::arrive`] add them).
    pub fn new(spec: ShipSpec, store: Arc<Store>, epoch: u64) -> Arc<Sink> {
        Arc::new(Sink {
            spec,
            inbox: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            slots: std::sync::RwLock::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            store,
            epoch,
            stats: Stats::default(),
            idle: watch::Sender::new(false),
            draining: AtomicBool::new(false),
            drain_now: Notify::new(),
        })
    }

    /// A slot for a new stream: the log file's watch needs it before the stream's reader
    /// (which needs the watch) exists. Its reader follows with [`Sink::arrive`].
    pub fn reserve(self: &Arc<Sink>) -> Arc<Slot> {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let slot = Arc::new(Slot::new(slots.len(), Arc::downgrade(self)));
        slots.push(slot.clone());
        slot
    }

    /// The reader of `slot`'s stream, read from `acked` on: queued at once, since the stream
    /// may hold lines from before (a crash, a sink that was down).
    pub fn arrive(&self, slot: &Slot, reader: StreamReader, acked: Cursor) {
        self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).push((slot.index, reader, acked));
        slot.queue(self);
    }

    fn slot(&self, index: usize) -> Arc<Slot> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())[index].clone()
    }

    pub fn is_down(&self) -> Option<String> {
        self.stats.down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Seconds the oldest unacknowledged line has waited (0 when caught up).
    pub fn lag_seconds(&self, now: SystemTime) -> f64 {
        let oldest = *self.stats.oldest_unsent.lock().unwrap_or_else(|e| e.into_inner());
        let now = nanos(now);
        oldest.map_or(0.0, |t| (now.saturating_sub(t)).max(0) as f64 / 1e9)
    }

    /// What `/metrics` and `steward status` show. `lag_bytes` lists the folders of the
    /// streams that are behind: only on a blocking thread (`with_lag_bytes`).
    pub fn report(&self, now: SystemTime, with_lag_bytes: bool) -> crate::protocol::SinkInfo {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let stats = &self.stats;
        crate::protocol::SinkInfo {
            name: self.spec.name.clone(),
            kind: self.spec.kind.name().to_owned(),
            up: self.is_down().is_none(),
            error: self.is_down(),
            sent_lines: load(&stats.sent_lines),
            sent_bytes: load(&stats.sent_bytes),
            retries: load(&stats.retries),
            dropped_refused: load(&stats.dropped_refused),
            dropped_retention: load(&stats.dropped_retention),
            rejected_by_receiver: load(&stats.rejected_by_receiver),
            lag_seconds: self.lag_seconds(now),
            lag_bytes: with_lag_bytes.then(|| {
                let slots: Vec<Arc<Slot>> = self.slots.read().unwrap_or_else(|e| e.into_inner()).clone();
                slots.iter().map(|s| s.lag_bytes()).sum()
            }),
        }
    }

    /// Sends what is waiting without lingering, and returns once the task is idle (or after
    /// `within`: a sink that is down does not hold up steward's exit).
    pub async fn drain(&self, within: Duration) {
        self.draining.store(true, Ordering::Release);
        self.drain_now.notify_one();
        let mut idle = self.idle.subscribe();
        let _ = tokio::time::timeout(within, idle.wait_for(|idle| *idle && self.inbox_empty())).await;
    }

    fn take_inbox(&self) -> Vec<usize> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
    }

    fn inbox_empty(&self) -> bool {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

/// A sink's connection.
pub enum Conn {
    Http(transport::Http),
    Syslog(transport::Syslog),
}

/// What the task needs besides the sink.
pub struct Task {
    pub sink: Arc<Sink>,
    pub readers: Vec<StreamReader>,
    /// What the receiver acknowledged, per stream (as saved).
    pub acked: Vec<Cursor>,
    /// The cursor files of the last batch, being written (in the background, while the next
    /// batch goes out).
    pub saving: Option<tokio::task::JoinHandle<Vec<Saved>>>,
    /// Cursors whose save failed: saved again with the next batch's, or, idle, after
    /// `retry.1`. (On Windows another process reading the cursor file, an indexer or a
    /// virus scanner, makes the rename over it fail for a moment.)
    pub unsaved: Vec<(usize, Cursor, Cursor)>,
    /// When to save `unsaved` again while idle, and the wait after that.
    pub retry: Option<(tokio::time::Instant, Duration)>,
    pub conn: Conn,
    pub host: String,
    pub control: Control,
}

/// A cursor saved (or not) after a batch: the stream, the cursor, the one saved before it,
/// how it went.
pub type Saved = (usize, Cursor, Cursor, std::io::Result<()>);

/// The first wait before a failed cursor save is tried again while idle; it doubles up to
/// [`SAVE_RETRY_MAX`].
const SAVE_RETRY: Duration = Duration::from_millis(100);
const SAVE_RETRY_MAX: Duration = Duration::from_secs(10);

/// A batch read from the files, and where each stream it visited got to.
struct Gathered {
    batch: Batch,
    ends: Vec<(usize, Cursor)>,
    notices: Vec<(usize, Notice)>,
    errors: Vec<(usize, String)>,
    /// The room ran out: more lines wait.
    full: bool,
    readers: Vec<StreamReader>,
}

impl Task {
    /// Runs until `stop` turns true. Whatever was not acknowledged by then is sent by the
    /// next steward (the cursors did not move past it).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut full = false;
        // Streams whose last multi-line record waits for its next line, and until when
        // (only with `multiline_start`: without it, this stays empty and no timer runs).
        let mut flushes: std::collections::BTreeMap<usize, tokio::time::Instant> = Default::default();
        loop {
            while self.sink.inbox_empty() {
                // Idle means saved too: steward's shutdown waits for that.
                self.finish_saving().await;
                self.sink.idle.send_replace(true);
                let next_flush = flushes.values().min().copied();
                tokio::select! {
                    () = self.sink.notify.notified() => {}
                    () = sleep_until(self.retry.map(|(at, _)| at)) => self.save_again(),
                    () = sleep_until(next_flush) => {
                        let now = tokio::time::Instant::now();
                        for (&index, _) in flushes.iter().filter(|(_, due)| **due <= now) {
                            self.sink.slot(index).queue(&self.sink);
                        }
                        flushes.retain(|_, due| *due > now);
                    }
                    _ = stop.changed() => return,
                }
            }
            self.sink.idle.send_replace(false);
            self.adopt();
            if !full && !self.sink.draining.load(Ordering::Acquire) {
                // Let a batch fill up a little, unless the last one was full already.
                tokio::select! {
                    () = tokio::time::sleep(self.sink.spec.linger) => {}
                    () = self.sink.drain_now.notified() => {}
                    _ = stop.changed() => return,
                }
            }
            let Some(gathered) = self.gather().await else { return };
            full = gathered.full;
            for &(index, _) in &gathered.ends {
                match self.readers[index].flush_due() {
                    Some(due) => flushes.insert(index, due.into()),
                    None => flushes.remove(&index),
                };
            }
            self.report_notices(&gathered).await;
            let Gathered { batch, ends, .. } = gathered;
            if !batch.lines.is_empty() && !self.deliver(&batch, &mut stop).await {
                return;
            }
            self.commit(ends).await;
            // The oldest line not acknowledged now is the first one not read yet: captured
            // after the newest line just delivered, so that line's time bounds its wait (exact
            // for a program that writes on). With nothing queued, nothing waits.
            let newest = batch.lines.iter().map(|l| l.at).max();
            *self.sink.stats.oldest_unsent.lock().unwrap_or_else(|e| e.into_inner()) =
                if self.sink.inbox_empty() { None } else { newest };
        }
    }

    /// Takes over the readers of streams added since (in index order; one whose slot is
    /// reserved but whose reader has not come yet waits, with those after it).
    fn adopt(&mut self) {
        let mut arrivals = self.sink.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        arrivals.sort_by_key(|(index, _, _)| *index);
        let mut rest = Vec::new();
        for (index, reader, acked) in arrivals.drain(..) {
            if index == self.readers.len() {
                self.readers.push(reader);
                self.acked.push(acked);
            } else {
                rest.push((index, reader, acked));
            }
        }
        *arrivals = rest;
    }

    /// Reads a batch on the blocking pool (file I/O never runs on the runtime's thread).
    async fn gather(&mut self) -> Option<Gathered> {
        let sink = self.sink.clone();
        let readers = std::mem::take(&mut self.readers);
        let host = self.host.clone();
        let gathered = tokio::task::spawn_blocking(move || gather(&sink, readers, &host)).await.ok()?;
        if let Some(oldest) = gathered.batch.lines.iter().map(|l| l.at).min() {
            let mut slot = self.sink.stats.oldest_unsent.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(slot.map_or(oldest, |o| o.min(oldest)));
        }
        let mut gathered = gathered;
        self.readers = std::mem::take(&mut gathered.readers);
        Some(gathered)
    }

    /// Sends `batch` until every line is delivered or dead-lettered. `false`: stopped first.
    async fn deliver(&mut self, batch: &Batch, stop: &mut watch::Receiver<bool>) -> bool {
        let mut plan = Plan::new(batch.lines.len());
        let mut attempt = 0u32;
        let mut reasons: Vec<(usize, String)> = Vec::new();
        while let Some(part) = plan.current() {
            let part = part.to_vec();
            let outcome = tokio::select! {
                outcome = send(&mut self.conn, &self.sink.spec, batch, &part) => outcome,
                _ = stop.changed() => return false,
            };
            let (verdict, refused_reasons, wait) = match outcome {
                Ok(Outcome { verdict, reasons, rejected }) => {
                    if let Some((count, message)) = rejected {
                        self.sink
                            .stats
                            .rejected_by_receiver
                            .fetch_add(count.max(0) as u64, Ordering::Relaxed);
                        tracing::warn!(sink = %self.sink.spec.name, event = "ship-partial",
                            "the receiver rejected {count} of the records it accepted: {message}");
                    }
                    let wait = match &verdict {
                        Verdict::Retry { after } => {
                            Some((*after, "the receiver is busy or failing".to_owned()))
                        }
                        Verdict::Misconfigured => Some((
                            None,
                            "the receiver refuses the sink itself (check its url, token_file and headers)"
                                .to_owned(),
                        )),
                        _ => None,
                    };
                    (verdict, reasons, wait)
                }
                Err(e) => (Verdict::Retry { after: None }, Vec::new(), Some((None, e.to_string()))),
            };
            match wait {
                Some((after, why)) => {
                    self.mark_down(&why).await;
                    self.sink.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = after.unwrap_or_else(|| verdict::backoff(attempt, super::random()));
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return false,
                    }
                    continue;
                }
                None => {
                    attempt = 0;
                    self.mark_up().await;
                }
            }
            // Reasons name indices into the part: keep them as batch indices.
            reasons.extend(refused_reasons.into_iter().filter_map(|(i, r)| part.get(i).map(|&b| (b, r))));
            let delivered: Vec<usize> = match &verdict {
                Verdict::Delivered => part.clone(),
                Verdict::Items { refused, retry } => (0..part.len())
                    .filter(|i| !refused.contains(i) && !retry.contains(i))
                    .map(|i| part[i])
                    .collect(),
                _ => Vec::new(),
            };
            let bytes: usize = delivered.iter().map(|&i| batch.lines[i].text.len()).sum();
            self.sink.stats.sent_lines.fetch_add(delivered.len() as u64, Ordering::Relaxed);
            self.sink.stats.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            plan.apply(&verdict);
            let dead = plan.take_dead();
            if !dead.is_empty() {
                self.dead_letter(batch, &dead, &reasons).await;
            }
        }
        true
    }

    /// Refused lines go to the dead-letter file, counted and announced.
    async fn dead_letter(&mut self, batch: &Batch, dead: &[usize], reasons: &[(usize, String)]) {
        let records: Vec<serde_json::Value> = dead
            .iter()
            .map(|&i| {
                let line = &batch.lines[i];
                let origin = &batch.origins[line.origin];
                let reason = reasons.iter().rev().find(|(j, _)| *j == i).map_or("refused by the receiver", |(_, r)| r.as_str());
                serde_json::json!({
                    "time": humantime::format_rfc3339_nanos(SystemTime::UNIX_EPOCH + Duration::from_nanos(line.at.max(0) as u64)).to_string(),
                    "sink": self.sink.spec.name,
                    "program": origin.program,
                    "instance": origin.instance,
                    "stream": origin.stream.name(),
                    "id": line.id,
                    "reason": reason,
                    "line": String::from_utf8_lossy(&line.text),
                })
            })
            .collect();
        self.sink.stats.dropped_refused.fetch_add(dead.len() as u64, Ordering::Relaxed);
        let store = self.sink.store.clone();
        let written = tokio::task::spawn_blocking(move || store.dead_letter(&records)).await;
        let path = self.sink.store.dir().join("deadletter.log");
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!(sink = %self.sink.spec.name, file = %path.display(),
                "cannot write refused lines to the dead-letter file; they are lost (counted as dropped)");
        }
        let mut by_program: Vec<(&str, usize)> = Vec::new();
        for &i in dead {
            let program = batch.origins[batch.lines[i].origin].program.as_str();
            match by_program.iter_mut().find(|(p, _)| *p == program) {
                Some((_, n)) => *n += 1,
                None => by_program.push((program, 1)),
            }
        }
        for (program, n) in by_program {
            let message = format!("{n} line(s) refused for good by the receiver; kept in {}", path.display());
            tracing::warn!(sink = %self.sink.spec.name, program, event = "ship-dropped", "{message}");
            self.control.publish_ship(program, &self.sink.spec.name, "dropped", message).await;
        }
    }

    async fn mark_down(&self, why: &str) {
        let first = {
            let mut down = self.sink.stats.down.lock().unwrap_or_else(|e| e.into_inner());
            let first = down.is_none();
            *down = Some(why.to_owned());
            first
        };
        if first {
            let message = format!(
                "cannot ship logs: {why}; retrying with backoff, nothing is lost while the files last"
            );
            tracing::warn!(sink = %self.sink.spec.name, event = "ship-down", "{message}");
            self.control
                .publish_ship(&format!("ship:{}", self.sink.spec.name), &self.sink.spec.name, "down", message)
                .await;
        }
    }

    async fn mark_up(&self) {
        let was = self.sink.stats.down.lock().unwrap_or_else(|e| e.into_inner()).take();
        if was.is_some() {
            let message = "shipping again".to_owned();
            tracing::info!(sink = %self.sink.spec.name, event = "ship-up", "{message}");
            self.control
                .publish_ship(&format!("ship:{}", self.sink.spec.name), &self.sink.spec.name, "up", message)
                .await;
        }
    }

    /// Logs and announces what reading found (lost files, resets, read errors).
    async fn report_notices(&self, gathered: &Gathered) {
        let slots: Vec<Arc<Slot>> = self.sink.slots.read().unwrap_or_else(|e| e.into_inner()).clone();
        for (index, notice) in &gathered.notices {
            let origin = &self.readers[*index].origin;
            if let (Notice::Missing { stamp }, Some(slot)) = (notice, slots.get(*index)) {
                // Retention deleted it and counted what this sink lost: announced below.
                if slot.counted.lock().unwrap_or_else(|e| e.into_inner()).contains(stamp) {
                    continue;
                }
            }
            let (step, message) = match notice {
                Notice::Reset { file } => (
                    "reset",
                    format!("{} is shorter than this sink's cursor (removed or truncated by hand?): reading it again from the start", file.display()),
                ),
                Notice::Missing { stamp } => (
                    "dropped",
                    format!("the rotated log file of {} stamped {stamp} was deleted before it was shipped", self.readers[*index].stem),
                ),
            };
            tracing::warn!(sink = %self.sink.spec.name, program = %origin.program, event = "ship-reset", "{message}");
            self.control.publish_ship(&origin.program, &self.sink.spec.name, step, message).await;
        }
        for (index, error) in &gathered.errors {
            tracing::warn!(sink = %self.sink.spec.name, stream = %self.readers[*index].stem, event = "ship-read",
                "cannot read the log file to ship it: {error}; trying again at its next write");
        }
        // A slot whose reader has not arrived yet has lost nothing it could report.
        for (index, slot) in slots.iter().enumerate().take(self.readers.len()) {
            let lines = slot.lost_lines.swap(0, Ordering::AcqRel);
            let bytes = slot.lost_bytes.swap(0, Ordering::AcqRel);
            if lines > 0 || bytes > 0 {
                self.sink.stats.dropped_retention.fetch_add(lines, Ordering::Relaxed);
                let origin = &self.readers[index].origin;
                let message = format!(
                    "{lines} line(s) ({bytes} bytes) of {} were deleted unsent: the unsent files passed max_unshipped",
                    self.readers[index].stem
                );
                self.control.publish_ship(&origin.program, &self.sink.spec.name, "dropped", message).await;
            }
        }
    }

    /// Moves the cursors the batch moved, and saves them in the background (each save is
    /// flushed to disk, which takes a while): the next batch is read and sent meanwhile. The
    /// saves of two batches never overlap, so cursor files are written in order; retention
    /// hears of a cursor only once it is on disk.
    async fn commit(&mut self, ends: Vec<(usize, Cursor)>) {
        self.finish_saving().await;
        let mut changed: Vec<(usize, Cursor, Cursor)> = ends
            .into_iter()
            .filter(|(i, c)| self.acked[*i] != *c)
            .map(|(i, c)| (i, c, self.acked[i]))
            .collect();
        for (i, cursor, _) in &changed {
            self.acked[*i] = *cursor;
        }
        for slot in self.sink.slots.read().unwrap_or_else(|e| e.into_inner()).iter() {
            slot.in_flight.store(false, Ordering::Release);
        }
        // A cursor that failed to save goes with this batch's, unless this one moves it on.
        for (i, cursor, before) in std::mem::take(&mut self.unsaved) {
            match changed.iter_mut().find(|(j, _, _)| *j == i) {
                Some(newer) => newer.2 = before,
                None => changed.push((i, cursor, before)),
            }
        }
        self.save(changed);
    }

    /// Writes `cursors` (stream, cursor, the one on disk before) in the background.
    fn save(&mut self, cursors: Vec<(usize, Cursor, Cursor)>) {
        if cursors.is_empty() {
            return;
        }
        let store = self.sink.store.clone();
        let stems: Vec<String> = cursors.iter().map(|(i, _, _)| self.readers[*i].stem.clone()).collect();
        self.saving = Some(tokio::task::spawn_blocking(move || {
            cursors
                .into_iter()
                .zip(stems)
                .map(|((i, c, before), stem)| (i, c, before, store.save(&stem, c, Some(before))))
                .collect()
        }));
    }

    /// Idle, with cursors whose save failed: tries again.
    fn save_again(&mut self) {
        let cursors = std::mem::take(&mut self.unsaved);
        self.save(cursors);
    }

    /// Waits for the cursors being saved, and tells retention of those on disk. One that
    /// failed is kept to be saved again.
    async fn finish_saving(&mut self) {
        let Some(saving) = self.saving.take() else { return };
        let mut failed = false;
        for (i, cursor, before, result) in saving.await.unwrap_or_default() {
            match result {
                Ok(()) => {
                    self.sink.slot(i).set_acked(std::path::Path::new(&self.readers[i].origin.path), cursor)
                }
                Err(e) => {
                    // Said once per failing stretch, not at every attempt.
                    if self.retry.is_none() {
                        tracing::warn!(sink = %self.sink.spec.name, stream = %self.readers[i].stem, event = "ship-cursor-unsaved",
                        "cannot save the shipping cursor in {}: {e}; trying again (if steward stops first, what was sent since the last save is sent again)",
                        self.sink.store.dir().display());
                    }
                    self.unsaved.push((i, cursor, before));
                    failed = true;
                }
            }
        }
        self.retry = match (failed, self.retry) {
            (false, _) => None,
            (true, None) => Some((tokio::time::Instant::now() + SAVE_RETRY, SAVE_RETRY)),
            (true, Some((_, wait))) => {
                let wait = (wait * 2).min(SAVE_RETRY_MAX);
                Some((tokio::time::Instant::now() + wait, wait))
            }
        };
    }
}

/// The blocking part of [`Task::gather`]: reads the queued streams into one batch.
fn gather(sink: &Sink, mut readers: Vec<StreamReader>, host: &str) -> Gathered {
    let spec = &sink.spec;
    let mut room =
        Room { bytes: usize::try_from(spec.max_bytes).unwrap_or(usize::MAX), lines: spec.max_lines as usize };
    let now = nanos(SystemTime::now());
    let mut batch = Batch::default();
    let (mut ends, mut notices, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut full = false;
    let queued = sink.take_inbox();
    // A stream added while this batch was being made: its reader comes with the next one.
    let (queued, later): (Vec<usize>, Vec<usize>) = queued.into_iter().partition(|&i| i < readers.len());
    if !later.is_empty() {
        sink.inbox.lock().unwrap_or_else(|e| e.into_inner()).extend(later);
        full = true;
    }
    for (k, &index) in queued.iter().enumerate() {
        if room.lines == 0 || room.bytes == 0 {
            // Still queued (their flags stay set): next batch.
            let mut inbox = sink.inbox.lock().unwrap_or_else(|e| e.into_inner());
            for &rest in queued[k..].iter().rev() {
                inbox.push_front(rest);
            }
            full = true;
            break;
        }
        let slot = sink.slot(index);
        // Cleared before reading: a write while we read queues the stream again.
        slot.queued.store(false, Ordering::Release);
        let reader = &mut readers[index];
        let origin_index = batch.origins.len();
        let before = batch.lines.len();
        let mut found = Vec::new();
        match reader.read_lines(host, origin_index, &mut batch.lines, &mut room, now, &mut found) {
            Ok(true) => {
                slot.queue(sink);
                full = true;
            }
            Ok(false) => {}
            Err(e) => errors.push((index, e.to_string())),
        }
        notices.extend(found.into_iter().map(|n| (index, n)));
        *slot.read.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(ReadTo { read: reader.read, at: reader.known_place() });
        if batch.lines.len() > before {
            batch.origins.push(reader.origin.clone());
            slot.in_flight.store(true, Ordering::Release);
        }
        ends.push((index, reader.read));
    }
    Gathered { batch, ends, notices, errors, full, readers }
}

/// What one request came back with.
struct Outcome {
    verdict: Verdict,
    /// Why items were refused (indices into the part).
    reasons: Vec<(usize, String)>,
    /// OTLP `partial_success`: how many records were rejected, and why.
    rejected: Option<(i64, String)>,
}

/// Encodes the lines `part` of `batch` for the sink's protocol and sends them.
async fn send(conn: &mut Conn, spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Result<Outcome, SendError> {
    match conn {
        Conn::Syslog(stream) => {
            stream.send(&syslog::encode(spec, batch, part)).await?;
            Ok(Outcome { verdict: Verdict::Delivered, reasons: Vec::new(), rejected: None })
        }
        Conn::Http(http) => {
            let body = match spec.kind {
                SinkKind::Loki => loki::encode(spec, batch, part),
                SinkKind::Otlp => otlp::encode(spec, batch, part),
                SinkKind::Elasticsearch => elastic::encode(spec, batch, part),
                SinkKind::Syslog => unreachable!("syslog sinks have a syslog connection"),
            };
            let answer = http.post(&body).await?;
            let outcome = match spec.kind {
                SinkKind::Otlp => {
                    let (verdict, rejected) = otlp::read_response(
                        answer.status,
                        answer.retry_after,
                        answer.content_type.as_deref(),
                        &answer.body,
                    );
                    Outcome { verdict, reasons: Vec::new(), rejected }
                }
                SinkKind::Elasticsearch => {
                    let bulk =
                        elastic::read_response(answer.status, answer.retry_after, &answer.body, part.len());
                    Outcome { verdict: bulk.verdict, reasons: bulk.reasons, rejected: None }
                }
                _ => Outcome {
                    verdict: loki::verdict(answer.status, answer.retry_after),
                    reasons: Vec::new(),
                    rejected: None,
                },
            };
            let mut outcome = outcome;
            if outcome.verdict == Verdict::Refused && part.len() == 1 {
                let text = String::from_utf8_lossy(&answer.body);
                let text = text.trim();
                let reason =
                    format!("HTTP {}: {}", answer.status, text.chars().take(500).collect::<String>());
                outcome.reasons.push((0, reason));
            }
            Ok(outcome)
        }
    }
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::watch::Reader;
    use crate::ship::source::At;

    fn slot_at(read: Cursor, at: Option<At>) -> Slot {
        let slot = Slot::new(0, Weak::new());
        *slot.read.lock().unwrap() = Some(ReadTo { read, at });
        slot
    }

    #[test]
    fn what_a_reader_read_of_a_deleted_file_is_found_by_name_or_by_the_rotation_that_made_it() {
        let (s1, s2) = (Stamp { millis: 1_000 }, Stamp { millis: 2_000 });
        let read = Cursor { epoch: 1, after: None, offset: 40 };
        let at = |place, open, rotations| Some(At { place, open, rotations });
        // In the file, by its name: all of it when open (read to its end), else the offset.
        assert_eq!(slot_at(read, at(Place::Rotated(s1), true, 3)).read_of(s1, None), u64::MAX);
        assert_eq!(slot_at(read, at(Place::Rotated(s1), false, 3)).read_of(s1, None), 40);
        assert_eq!(slot_at(read, at(Place::Rotated(s1), false, 3)).read_of(s2, None), 0);
        // Last seen live at rotation 3: the file rotation 4 made is the one it was in.
        assert_eq!(slot_at(read, at(Place::Live, true, 3)).read_of(s1, Some(4)), u64::MAX);
        assert_eq!(slot_at(read, at(Place::Live, false, 3)).read_of(s1, Some(4)), 40);
        assert_eq!(slot_at(read, at(Place::Live, false, 3)).read_of(s2, Some(5)), 0);
        assert_eq!(slot_at(read, at(Place::Live, false, 3)).read_of(s1, None), 0);
        // Past it: every line of it is in a batch.
        let past = Cursor { after: Some(s2), ..read };
        assert_eq!(slot_at(past, None).read_of(s1, None), u64::MAX);
    }
}
