//! The live log file of one stream: appending, rotating, pruning, and riding out write
//! failures.
//!
//! What to do next is decided by the pure [`steward_core::rotation`]; this file carries
//! it out. Writes go straight to the file with one `write` call per run of lines (no
//! buffer of our own: the caller already hands over big chunks, and nothing is left in
//! memory if steward is killed). Everything here is synchronous; the pumps choose the
//! thread (`LogFile::may_block`, `capture.rs`).

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use steward_core::config::{LogFormat, LogSpec};
use steward_core::rotation::{self, FileState, RotatedKind, Stamp, Step};
use steward_core::ship::cri;

use super::compress;

/// While writing fails, at most this many bytes wait to be written; the rest is dropped.
pub const PENDING_LIMIT: usize = 64 * 1024;

/// While writing fails, how long to wait before trying again (by the `now` of the writes).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// One log file, for example `<log_dir>/web.out.log`, with its rotated files beside it.
///
/// See the [module docs](super) for naming, rotation and what happens when writing fails.
pub struct LogFile {
    /// The live file.
    path: PathBuf,
    /// Its folder, where rotated files go.
    dir: PathBuf,
    /// Its file name, the prefix of every rotated file.
    base: String,
    spec: LogSpec,
    /// `None` until the first write after a rotation or a failed write (opened lazily).
    file: Option<File>,
    /// What the rotation decisions need to know about the live file.
    state: FileState,
    /// Who wrote the unfinished line the file ends in (meaningful while
    /// `!state.at_line_start`).
    line_owner: WriterId,
    /// Newest stamp among the rotated files, so the next one is always later.
    newest_stamp: Option<Stamp>,
    /// The stamps of the rotated files on disk, oldest first: listed once at open, then
    /// kept up to date by each rotation, so that rotating never lists the folder.
    rotated: VecDeque<Stamp>,
    /// `Some` while writing fails.
    failure: Option<Failure>,
    /// Dropped in finished failure episodes (the current one counts in `failure`).
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Live copies of what is written, for `steward logs -f` (sent under the same lock as
    /// the write, so a reader that took the tail under that lock misses nothing).
    feed: Option<tokio::sync::broadcast::Sender<bytes::Bytes>>,
    /// `format = "cri"`: what framing each line needs. `None` for plain files.
    cri: Option<Box<CriFraming>>,
    /// Told of every write and rotation, for the sinks that ship this file.
    watch: Option<std::sync::Arc<super::FileWatch>>,
}

/// `format = "cri"`: each line is written as `TIME STREAM F|P LINE` (`steward_core::ship::cri`).
struct CriFraming {
    /// `stdout` or `stderr`, from the file's name.
    stream: &'static str,
    /// Strictly increasing capture times, continued from the file's last record at open.
    clock: cri::Clock,
    /// The writer whose last record was a piece (`P`) of a line not yet ended.
    open_line: Option<WriterId>,
    /// Reused for the framed bytes of each write.
    buffer: Vec<u8>,
}

/// What the file keeps while writing fails.
struct Failure {
    /// The error that started this episode, for the warning and the marker line.
    error: io::Error,
    /// No new attempt before this time.
    retry_at: SystemTime,
    /// The oldest bytes not written yet, in order (they continue what is in the file).
    /// Allocated once, never more than [`PENDING_LIMIT`].
    pending: Vec<u8>,
    /// Dropped in this episode. Once anything was dropped, nothing more is kept: the marker
    /// line goes right after `pending`, where the gap is.
    lines: u64,
    bytes: u64,
    /// The beginning of the line now arriving was dropped, so its rest is dropped too.
    skipping_line: bool,
}

/// Tells apart the writers of one file, so that a piece of one writer's long line never
/// has another writer's line glued onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriterId(u64);

impl WriterId {
    /// Whoever left an unfinished line in a file found on disk.
    const UNKNOWN: WriterId = WriterId(0);
    /// Callers of [`LogFile::write_lines`].
    const DIRECT: WriterId = WriterId(1);

    /// A writer id not used before.
    pub(crate) fn new() -> WriterId {
        static NEXT: AtomicU64 = AtomicU64::new(2);
        WriterId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// `open` failed: says which file, with the cause as `source()`.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file {}", path.display())]
struct OpenError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl LogFile {
    /// Opens (creating it and its parent folders if needed) the live file at `path` for
    /// appending.
    ///
    /// Rotated files already beside it are taken into account: new names sort after them,
    /// the oldest beyond `spec.keep` are deleted now, and with `spec.compress` the ones left
    /// uncompressed (steward stopped while compressing) are queued again.
    /// Every live file it creates is readable by its owner alone (mode 0600 on Unix).
    pub fn open(path: PathBuf, spec: LogSpec) -> io::Result<LogFile> {
        Self::open_watched(path, spec, None)
    }

    /// [`LogFile::open`], telling `watch` of writes and rotations, and keeping the rotated
    /// files its readers still need beyond `keep` (see [`super::watch`]).
    pub fn open_watched(
        path: PathBuf,
        spec: LogSpec,
        watch: Option<std::sync::Arc<super::FileWatch>>,
    ) -> io::Result<LogFile> {
        let wrap =
            |source: io::Error| io::Error::new(source.kind(), OpenError { path: path.clone(), source });
        let base =
            path.file_name().and_then(|name| name.to_str()).map(str::to_owned).ok_or_else(|| {
                wrap(io::Error::new(io::ErrorKind::InvalidInput, "the file name is not UTF-8"))
            })?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file = open_append(&path).map_err(wrap)?;
        let meta = file.metadata().map_err(wrap)?;
        let len = meta.len();
        let state = FileState {
            len,
            started: if len > 0 { meta.modified().ok() } else { None },
            at_line_start: len == 0 || !meta.is_file() || ends_with_newline(&path, len),
        };
        let mut log = LogFile {
            path,
            dir,
            base,
            spec,
            file: Some(file),
            state,
            line_owner: WriterId::UNKNOWN,
            newest_stamp: None,
            rotated: VecDeque::new(),
            failure: None,
            dropped_lines: 0,
            dropped_bytes: 0,
            feed: None,
            cri: None,
            watch,
        };
        if log.spec.format == LogFormat::Cri {
            let stream = if log.base.ends_with(".err.log") { "stderr" } else { "stdout" };
            let last = if len > 0 { last_cri_time(&log.path, len) } else { 0 };
            log.cri = Some(Box::new(CriFraming {
                stream,
                clock: cri::Clock::after(last),
                open_line: None,
                buffer: Vec::new(),
            }));
        }
        let found = log.prune();
        if log.spec.compress {
            for (rotated, name) in &found {
                if rotated.kind == RotatedKind::Plain {
                    compress::enqueue(log.dir.join(name));
                }
            }
        }
        Ok(log)
    }

    /// Appends `lines` (whole lines, each ending in `\n`), written at `now`, rotating
    /// first where the spec says so.
    ///
    /// Write failures are not returned: they are counted and reported as the
    /// [module docs](super) describe, so this never blocks or fails the program's output.
    pub fn write_lines(&mut self, lines: &[u8], now: SystemTime) -> io::Result<()> {
        self.write_from(WriterId::DIRECT, lines, now);
        Ok(())
    }

    /// Send a copy of everything written from now on to `feed`.
    pub fn set_feed(&mut self, feed: tokio::sync::broadcast::Sender<bytes::Bytes>) {
        self.feed = Some(feed);
    }

    /// Lines and bytes dropped since this file was opened because writing failed.
    pub fn dropped(&self) -> (u64, u64) {
        let (lines, bytes) = self.failure.as_ref().map_or((0, 0), |f| (f.lines, f.bytes));
        (self.dropped_lines + lines, self.dropped_bytes + bytes)
    }

    /// The live file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The uncompressed names of the rotated files, newest first (a file may have been
    /// compressed since: its plain name is then gone).
    pub fn rotated_newest_first(&self) -> Vec<PathBuf> {
        self.rotated
            .iter()
            .rev()
            .map(|&stamp| self.dir.join(rotation::rotated_name(&self.base, stamp)))
            .collect()
    }

    /// Appends `data` for `writer`. `data` may end in the middle of a line (a piece of a
    /// line too long for the writer's buffer); the rest must then follow from the same
    /// writer, or [`LogFile::end_line`].
    pub(crate) fn write_from(&mut self, writer: WriterId, data: &[u8], now: SystemTime) {
        if let Some(feed) = &self.feed {
            // Copy only while someone follows: no cost otherwise.
            if feed.receiver_count() > 0 {
                let _ = feed.send(bytes::Bytes::copy_from_slice(data));
            }
        }
        if let Some(mut framing) = self.cri.take() {
            framing.frame(writer, data, now);
            let framed = std::mem::take(&mut framing.buffer);
            self.cri = Some(framing);
            self.write_bytes(writer, &framed, now);
            if let Some(framing) = &mut self.cri {
                framing.buffer = framed;
            }
        } else {
            self.write_bytes(writer, data, now);
        }
        if let Some(watch) = &self.watch {
            watch.written();
        }
    }

    /// [`LogFile::write_from`] once framed: appends `data` as it is.
    fn write_bytes(&mut self, writer: WriterId, data: &[u8], now: SystemTime) {
        let mut data = data;
        if let Some(failure) = &mut self.failure {
            if failure.skipping_line {
                let Some(newline) = memchr::memchr(b'\n', data) else {
                    failure.drop_bytes(data);
                    return;
                };
                failure.drop_bytes(&data[..=newline]);
                failure.skipping_line = false;
                data = &data[newline + 1..];
            }
            if now < failure.retry_at || !self.recover(now) {
                if let Some(failure) = &mut self.failure {
                    failure.stash(data);
                }
                return;
            }
        }
        if let Err((written, error)) = self.append(writer, data, now) {
            self.fail(error, &data[written..], now);
        }
    }

    /// Whether writing `data` for `writer` at `now` may do more than append to the open
    /// file: rotate (a rename, and deletes beyond `keep`), or try a failed file again (a
    /// reopen, which may rotate too). The pumps run such a write on a blocking thread
    /// (`capture.rs`), so that the runtime's thread never waits for a rename; any other write
    /// is one `write` call. It may say yes where no rotation follows (a line of another
    /// writer to end first, a long line to finish), never no where one does.
    pub(crate) fn may_block(&self, writer: WriterId, data: &[u8], now: SystemTime) -> bool {
        if let Some(failure) = &self.failure {
            return now >= failure.retry_at;
        }
        if !self.state.at_line_start && writer != self.line_owner {
            return true;
        }
        if let Some(framing) = &self.cri {
            // Framed lines are whole, so only their size or the period can rotate: judged on
            // the most the framing can add, without framing twice.
            let bound =
                data.len() + (memchr::memchr_iter(b'\n', data).count() + 2) * (framing.prefix_len() + 1);
            let by_size = self.spec.max_size > 0 && self.state.len + bound as u64 > self.spec.max_size;
            let by_time = match (self.spec.rotate_every, self.state.started) {
                (Some(every), Some(started)) => {
                    self.state.len > 0 && rotation::period_crossed(every, started, now)
                }
                _ => false,
            };
            return by_size || by_time;
        }
        rotation::next_step(&self.spec, &self.state, data, now) != Step::Write(data.len())
    }

    /// Ends `writer`'s unfinished line with a `\n`, if the file ends in one. Called at
    /// the end of a stream, so that the next run's first line starts on a line of its own.
    pub(crate) fn end_line(&mut self, writer: WriterId, now: SystemTime) {
        if let Some(framing) = &self.cri {
            // A framed file is always at a line's end; the line a `P` record left open is
            // ended by an empty `F` record.
            if framing.open_line == Some(writer) {
                self.write_from(writer, b"\n", now);
            }
            return;
        }
        let unfinished = match &self.failure {
            Some(failure) => failure.pending.last().is_some_and(|&b| b != b'\n') || failure.skipping_line,
            None => !self.state.at_line_start,
        };
        if unfinished && self.line_owner == writer {
            self.write_from(writer, b"\n", now);
        }
    }

    /// Appends `data`, rotating where the decisions say. On error: how many bytes of
    /// `data` made it into the file, and the error.
    fn append(&mut self, writer: WriterId, data: &[u8], now: SystemTime) -> Result<(), (usize, io::Error)> {
        if data.is_empty() {
            return Ok(());
        }
        if !self.state.at_line_start && writer != self.line_owner {
            // Another writer stopped in the middle of a (long) line. End it here: its rest,
            // if it comes, becomes a line of its own instead of being glued to ours.
            self.write_all(b"\n", now).map_err(|(_, e)| (0, e))?;
        }
        self.line_owner = writer;
        let mut done = 0;
        while done < data.len() {
            match rotation::next_step(&self.spec, &self.state, &data[done..], now) {
                Step::Rotate => self.rotate(now),
                Step::CutLine => {
                    self.write_all(rotation::CUT_MARKER, now).map_err(|(_, e)| (done, e))?;
                    self.rotate(now);
                }
                Step::Write(n) => {
                    self.write_all(&data[done..done + n], now).map_err(|(w, e)| (done + w, e))?;
                    done += n;
                }
            }
        }
        Ok(())
    }

    /// Writes `chunk` to the live file, opening it first if needed. On error the file is
    /// closed (the next attempt reopens it by path) and the count of bytes that did get
    /// written comes back with the error.
    fn write_all(&mut self, chunk: &[u8], now: SystemTime) -> Result<(), (usize, io::Error)> {
        let file = match self.file.take() {
            Some(file) => file,
            None => open_append(&self.path).map_err(|e| (0, e))?,
        };
        let file = self.file.insert(file);
        let mut written = 0;
        let result = loop {
            if written == chunk.len() {
                break Ok(());
            }
            match file.write(&chunk[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > 0 {
            self.state.len += written as u64;
            self.state.started.get_or_insert(now);
            self.state.at_line_start = chunk[written - 1] == b'\n';
        }
        result.map_err(|e| {
            self.file = None;
            (written, e)
        })
    }

    /// Renames the live file to its rotated name, then deletes what `keep` no longer
    /// covers and queues compression. The new live file is created by the next write.
    fn rotate(&mut self, now: SystemTime) {
        let stamp = rotation::next_stamp(now, self.newest_stamp);
        let target = self.dir.join(rotation::rotated_name(&self.base, stamp));
        // Closed before the rename: Windows cannot rename a file that is open.
        self.file = None;
        match fs::rename(&self.path, &target) {
            Ok(()) => {
                tracing::debug!(event = "log-rotated", file = %self.path.display(), to = %target.display(), "rotated");
                self.newest_stamp = Some(stamp);
                self.state = FileState::EMPTY;
                self.rotated.push_back(stamp);
                if let Some(watch) = &self.watch {
                    watch.rotated(stamp);
                }
                self.expire();
                if self.spec.compress {
                    compress::enqueue(target);
                }
            }
            Err(error) => {
                tracing::warn!(
                    file = %self.path.display(),
                    to = %target.display(),
                    %error,
                    "cannot rotate the log file; it keeps growing, and rotation is tried again \
                     after another max_size bytes or at the next period"
                );
                self.state.len = 0;
                self.state.started = Some(now);
            }
        }
    }

    /// Deletes the oldest rotated files beyond `keep`, in every form (plain, compressed,
    /// being compressed), from what [`LogFile::rotated`] remembers. A file a sink has not
    /// sent yet stays, as long as such files beyond `keep` fit the sinks' budget; past it the
    /// oldest goes anyway, and its readers are told what they lost.
    fn expire(&mut self) {
        let keep = usize::try_from(self.spec.keep).unwrap_or(usize::MAX);
        while self.rotated.len() > keep {
            let Some(&stamp) = self.rotated.front() else { break };
            if let Some(watch) = self.watch.clone() {
                if watch.needed(stamp) {
                    // Newer files are needed too: all of those beyond `keep` count.
                    let held: u64 = self
                        .rotated
                        .iter()
                        .take(self.rotated.len() - keep)
                        .map(|s| self.rotated_size(*s))
                        .sum();
                    if held <= watch.budget() {
                        break;
                    }
                    let (lines, bytes) =
                        watch.deleted_unsent(stamp, &mut |from| self.count_lines(stamp, from));
                    if lines > 0 || bytes > 0 {
                        tracing::warn!(
                            event = "ship-dropped",
                            file = %self.path.display(),
                            stamp = %stamp,
                            lines,
                            bytes,
                            "deleting a rotated log file that was not shipped yet: the unsent files of this \
                             stream passed the sinks' max_unshipped; its lines are counted as dropped"
                        );
                    }
                }
            }
            self.rotated.pop_front();
            let plain = rotation::rotated_name(&self.base, stamp);
            for suffix in ["", rotation::GZIP_SUFFIX, rotation::GZIP_TEMP_SUFFIX] {
                let name = format!("{plain}{suffix}");
                match fs::remove_file(self.dir.join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        tracing::warn!(file = %name, dir = %self.dir.display(), %error, "cannot delete an old rotated log file");
                    }
                }
            }
        }
    }

    /// The size on disk of the rotated file `stamp`, compressed or not (0 if gone).
    fn rotated_size(&self, stamp: Stamp) -> u64 {
        let plain = rotation::rotated_name(&self.base, stamp);
        ["", rotation::GZIP_SUFFIX]
            .iter()
            .find_map(|suffix| fs::metadata(self.dir.join(format!("{plain}{suffix}"))).ok())
            .map_or(0, |m| m.len())
    }

    /// The lines and (uncompressed) bytes of the rotated file `stamp` from byte `from` of its
    /// plain text on.
    fn count_lines(&self, stamp: Stamp, from: u64) -> (u64, u64) {
        let plain = rotation::rotated_name(&self.base, stamp);
        let reader: Box<dyn Read> = match File::open(self.dir.join(&plain)) {
            Ok(file) => Box::new(file),
            Err(_) => match File::open(self.dir.join(format!("{plain}{}", rotation::GZIP_SUFFIX))) {
                Ok(file) => Box::new(flate2::read::MultiGzDecoder::new(file)),
                Err(_) => return (0, 0),
            },
        };
        let mut reader = io::BufReader::with_capacity(64 * 1024, reader);
        if io::copy(&mut io::Read::by_ref(&mut reader).take(from), &mut io::sink()).is_err() {
            return (0, 0);
        }
        let (mut lines, mut bytes) = (0u64, 0u64);
        loop {
            let chunk = match io::BufRead::fill_buf(&mut reader) {
                Ok([]) | Err(_) => break,
                Ok(chunk) => chunk,
            };
            lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
            bytes += chunk.len() as u64;
            let n = chunk.len();
            io::BufRead::consume(&mut reader, n);
        }
        (lines, bytes)
    }

    /// Lists the folder once (at open): deletes the rotated files beyond `keep` (as
    /// [`LogFile::expire`] does), remembers the rest, and returns them with their names.
    /// Notes the newest stamp seen.
    fn prune(&mut self) -> Vec<(rotation::Rotated, String)> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot list the log folder to delete old rotated files");
                return Vec::new();
            }
        };
        let mut found: Vec<(rotation::Rotated, String)> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some((rotation::parse_rotated(&self.base, &name)?, name))
            })
            .collect();
        let newest = found.iter().map(|(r, _)| r.stamp).max();
        self.newest_stamp = self.newest_stamp.max(newest);
        let mut stamps: Vec<Stamp> = found.iter().map(|(r, _)| r.stamp).collect();
        stamps.sort_unstable();
        stamps.dedup();
        self.rotated = stamps.into();
        self.expire();
        found.retain(|(r, _)| self.rotated.binary_search(&r.stamp).is_ok());
        found
    }

    /// Starts a failure episode: warns once, keeps what fits of `unwritten`.
    fn fail(&mut self, error: io::Error, unwritten: &[u8], now: SystemTime) {
        tracing::warn!(
            file = %self.path.display(),
            %error,
            "cannot write to the log file; keeping at most {} KiB and dropping the rest of the \
             program's output until writing works again",
            PENDING_LIMIT / 1024
        );
        let mut failure = Failure {
            error,
            retry_at: now + RETRY_INTERVAL,
            pending: Vec::new(),
            lines: 0,
            bytes: 0,
            skipping_line: false,
        };
        failure.stash(unwritten);
        self.failure = Some(failure);
    }

    /// Tries to end the failure episode: writes what was kept, then the marker line.
    /// Returns whether writing works again; if not, the episode goes on.
    fn recover(&mut self, now: SystemTime) -> bool {
        let Some(mut failure) = self.failure.take() else { return true };
        let owner = self.line_owner;
        let mut result = self.append(owner, &failure.pending, now);
        if let Err((written, _)) = &result {
            failure.pending.drain(..*written);
        } else {
            failure.pending.clear();
            if failure.bytes > 0 {
                let marker = format!(
                    "{}[steward] dropped {} lines ({} bytes) while writing failed: {}\n",
                    if self.state.at_line_start { "" } else { "\n" },
                    failure.lines,
                    failure.bytes,
                    plain_message(&failure.error)
                );
                result = self.append(WriterId::DIRECT, marker.as_bytes(), now);
            }
        }
        if let Err((_, error)) = result {
            tracing::debug!(file = %self.path.display(), %error, "writing the log file still fails");
            failure.retry_at = now + RETRY_INTERVAL;
            self.failure = Some(failure);
            return false;
        }
        tracing::info!(
            file = %self.path.display(),
            dropped_lines = failure.lines,
            dropped_bytes = failure.bytes,
            "writing the log file works again"
        );
        self.dropped_lines += failure.lines;
        self.dropped_bytes += failure.bytes;
        true
    }
}

impl Failure {
    /// Keeps the oldest data up to [`PENDING_LIMIT`] (whole lines, unless it continues a
    /// line already kept), counts and drops the rest.
    fn stash(&mut self, data: &[u8]) {
        let mut data = data;
        if self.bytes == 0 {
            let room = PENDING_LIMIT - self.pending.len();
            let keep = if data.len() <= room {
                data.len()
            } else {
                memchr::memrchr(b'\n', &data[..room]).map_or(0, |i| i + 1)
            };
            if keep > 0 {
                if self.pending.capacity() == 0 {
                    self.pending.reserve_exact(PENDING_LIMIT);
                }
                self.pending.extend_from_slice(&data[..keep]);
            }
            data = &data[keep..];
        }
        if let Some(&last) = data.last() {
            self.drop_bytes(data);
            self.skipping_line = last != b'\n';
        }
    }

    fn drop_bytes(&mut self, data: &[u8]) {
        self.lines += memchr::memchr_iter(b'\n', data).count() as u64;
        self.bytes += data.len() as u64;
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        if self.failure.is_some() && !self.recover(SystemTime::now()) {
            if let Some(failure) = &self.failure {
                tracing::warn!(
                    file = %self.path.display(),
                    lost_bytes = failure.bytes + failure.pending.len() as u64,
                    error = %failure.error,
                    "log file closed while writing it still fails"
                );
            }
        }
    }
}

impl fmt::Debug for LogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFile")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("state", &self.state)
            .field("failing", &self.failure.as_ref().map(|f| &f.error))
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// Opens `path` for appending, creating it (owner-only), and its folder if that is missing.
fn open_append(path: &Path) -> io::Result<File> {
    let open = || crate::private::open_options().create(true).append(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::private::create_dir_all(parent)?;
            }
            open()
        }
        other => other,
    }
}

/// Whether the `len`-byte file at `path` ends in `\n` (unreadable counts as yes).
impl CriFraming {
    fn prefix_len(&self) -> usize {
        cri::prefix_len(self.stream)
    }

    /// Frames `data` from `writer` into `self.buffer`: a `F` record per whole line, a `P`
    /// record for a piece without its end. Another writer's open line is ended first (an
    /// empty `F`), so that no reader glues our lines onto its pieces.
    fn frame(&mut self, writer: WriterId, data: &[u8], now: SystemTime) {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.buffer.clear();
        if self.open_line.is_some_and(|owner| owner != writer) {
            cri::write_prefix(&mut self.buffer, self.clock.next(now), self.stream, cri::Tag::Full);
            self.buffer.push(b'\n');
            self.open_line = None;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let (line, tag, used) = match memchr::memchr(b'\n', rest) {
                Some(end) => (&rest[..end], cri::Tag::Full, end + 1),
                None => (rest, cri::Tag::Partial, rest.len()),
            };
            cri::write_prefix(&mut self.buffer, self.clock.next(now), self.stream, tag);
            self.buffer.extend_from_slice(line);
            self.buffer.push(b'\n');
            self.open_line = (tag == cri::Tag::Partial).then_some(writer);
            rest = &rest[used..];
        }
    }
}

/// The capture time of the last CRI record in the file at `path` (of length `len`), so that
/// times go on increasing after a restart; 0 if none is found in its last 4 KiB.
fn last_cri_time(path: &Path, len: u64) -> cri::Nanos {
    let mut tail = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(len.saturating_sub(4096)))?;
        f.take(4096).read_to_end(&mut tail)
    });
    if read.is_err() {
        return 0;
    }
    tail.split(|&b| b == b'\n').rev().find_map(cri::parse).map_or(0, |r| r.at)
}

fn ends_with_newline(path: &Path, len: u64) -> bool {
    let mut last = [b'\n'];
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)
    });
    read.is_err() || last[0] == b'\n'
}

/// The error's text without the " (os error N)" that std adds.
fn plain_message(error: &io::Error) -> String {
    let mut text = error.to_string();
    if let Some(at) = text.find(" (os error ") {
        text.truncate(at);
    }
    text
}
