//! Reading one stream's files for one sink: the rotated files it has not finished, oldest
//! first, then the live file, from the sink's cursor on (see `steward_core::ship::cursor`).
//!
//! Everything here is blocking file I/O; the sink task runs it on tokio's blocking pool.
//!
//! - A line is read only once it has its `\n`. The live file may end in a line still being
//!   written (or torn by a crash): it waits. A rotated file never grows, so a last line
//!   without `\n` there is read as it is.
//! - A file is known to be finished when the log file says it rotated (`FileWatch`); only
//!   then is the folder listed, to learn its new name.
//! - `format = "cri"` files: each record's capture time becomes the line's time, and the
//!   pieces (`P`) of a long line are joined up to its `F`.
//! - Nothing holds a file open between reads once the stream is caught up, so 10,000
//!   quiet streams cost no file descriptors.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use steward_core::rotation::{self, Stamp};
use steward_core::ship::cri;
use steward_core::ship::cursor::{locate, Cursor, Place};

use super::batch::{Line, Origin};
use crate::logs::FileWatch;

/// Read at a time from a file.
const CHUNK: usize = 256 * 1024;
/// A line longer than this (pieces of a CRI line joined) is sent in parts of this size.
const MAX_LINE: usize = 1 << 20;

/// What a read may still add to the batch.
#[derive(Debug)]
pub struct Room {
    pub bytes: usize,
    pub lines: usize,
}

impl Room {
    fn fits(&self, text: usize, batch_empty: bool) -> bool {
        self.lines > 0 && (text <= self.bytes || batch_empty)
    }
}

/// Something the sink should report, found while reading.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// The file the cursor was in is gone or shorter than the cursor: someone removed or
    /// truncated the logs. Reading starts over at the oldest file there is.
    Reset { file: PathBuf },
    /// A rotated file the cursor needed was deleted (retention, or by hand).
    Missing { stamp: Stamp },
}

/// One stream of one sink.
pub struct StreamReader {
    pub origin: Origin,
    /// `web.out`: names the cursor file, and goes into line ids.
    pub stem: String,
    dir: PathBuf,
    /// The live file's name, `web.out.log`.
    base: String,
    cri: bool,
    watch: Option<Arc<FileWatch>>,
    /// Read up to here (the lines before it are in a batch, sent or not).
    pub read: Cursor,
    /// Which file `read` is in, as far as known without listing the folder.
    known: Option<Known>,
    open: Option<Open>,
    /// `multiline_start`: how lines are grouped into records.
    grouping: Option<Arc<Grouping>>,
    /// The record waiting for its next line at the end of the stream: where it starts, and
    /// since when it waits (it is sent as it is after the grouping's timeout).
    waiting: Option<(Cursor, std::time::Instant)>,
    /// The line ids of the file `read` is in, with the cursor they were made for.
    ids: Option<(Cursor, steward_core::ship::LineIds)>,
}

/// How a stream's lines are grouped into records (`multiline_*` of the program's log).
#[derive(Debug)]
pub struct Grouping {
    pub start: regex::bytes::Regex,
    pub timeout: std::time::Duration,
    pub max_lines: u32,
}

impl Grouping {
    /// From the program's log settings (the parser checked the pattern).
    pub fn of(multiline: &steward_core::config::Multiline) -> Option<Arc<Grouping>> {
        let start = regex::bytes::Regex::new(&multiline.start).ok()?;
        Some(Arc::new(Grouping { start, timeout: multiline.timeout, max_lines: multiline.max_lines.max(1) }))
    }
}

#[derive(Clone, Copy, Debug)]
struct Known {
    place: Place,
    /// The log file's rotation count when `place` was found: a different count means a live
    /// file may have become a rotated one.
    rotations: u64,
}

/// Where a reader is, as retention asks ([`crate::logs::watch::Reader::read_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub place: Place,
    /// The file is open: a rotated file deleted now is still read to its end.
    pub open: bool,
    /// The rotation count when `place` was found. When it is `Live`, rotation `rotations + 1`
    /// renamed that file, if there was one since.
    pub rotations: u64,
}

struct Open {
    source: Box<dyn Read + Send + Sync>,
    /// Bytes read from the file and not yet consumed; `carry[0]` is at `read.offset`.
    carry: Vec<u8>,
}

/// A file opened at an offset.
enum Opened {
    Ready(Box<dyn Read + Send + Sync>),
    NotFound,
    /// The file is shorter than the offset.
    Short,
}

/// Opens a plain file at `offset`.
fn open_at(path: &std::path::Path, offset: u64) -> io::Result<Opened> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::NotFound),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() < offset {
        return Ok(Opened::Short);
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(Opened::Ready(Box::new(file)))
}

/// Opens a gzipped file at `offset` of its uncompressed bytes (decompressing up to there).
fn open_gz_at(path: &std::path::Path, offset: u64) -> io::Result<Opened> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::NotFound),
        Err(e) => return Err(e),
    };
    let mut source = flate2::read::MultiGzDecoder::new(file);
    if io::copy(&mut (&mut source).take(offset), &mut io::sink())? < offset {
        return Ok(Opened::Short);
    }
    Ok(Opened::Ready(Box::new(source)))
}

impl StreamReader {
    pub fn new(
        origin: Origin,
        live: PathBuf,
        cri: bool,
        watch: Option<Arc<FileWatch>>,
        read: Cursor,
    ) -> StreamReader {
        Self::grouped(origin, live, cri, watch, read, None)
    }

    /// [`StreamReader::new`], grouping lines into multi-line records.
    pub fn grouped(
        origin: Origin,
        live: PathBuf,
        cri: bool,
        watch: Option<Arc<FileWatch>>,
        read: Cursor,
        grouping: Option<Arc<Grouping>>,
    ) -> StreamReader {
        let base = live.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = base.strip_suffix(".log").unwrap_or(&base).to_owned();
        let dir = live.parent().map(PathBuf::from).unwrap_or_default();
        StreamReader {
            origin,
            stem,
            dir,
            base,
            cri,
            watch,
            read,
            known: None,
            open: None,
            grouping,
            waiting: None,
            ids: None,
        }
    }

    fn live(&self) -> PathBuf {
        self.dir.join(&self.base)
    }

    fn rotations(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.rotations())
    }

    /// The stamps of the rotated files on disk.
    fn list(&self) -> io::Result<Vec<Stamp>> {
        match crate::logs::history::rotated(&self.live()) {
            Ok(files) => Ok(files.into_iter().map(|(stamp, _)| stamp).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Which file `read` is in, if known without listing the folder, and whether it is open
    /// (for retention: a rotated file deleted while open is still read to its end).
    pub fn known_place(&self) -> Option<At> {
        let known = self.known?;
        let (place, rotations) = match self.renamed(known) {
            Some(stamp) => (Place::Rotated(stamp), self.rotations()),
            None => (known.place, known.rotations),
        };
        Some(At { place, open: self.open.is_some(), rotations })
    }

    /// The name of the rotated file that the live file `known` names has become, when a
    /// rotation since renamed it and the watch remembers that rotation. The folder cannot
    /// say: the file may have been deleted already, and the next one would look like it.
    fn renamed(&self, known: Known) -> Option<Stamp> {
        if known.place != Place::Live || self.rotations() == known.rotations {
            return None;
        }
        let stamp = self.watch.as_ref()?.made_by(known.rotations + 1)?;
        // A cursor past that file was not in it (a guard; the count only grows).
        self.read.after.is_none_or(|after| stamp > after).then_some(stamp)
    }

    /// Where the cursor is, listing the folder only when the rotation count says a rename
    /// may have happened since it was last known and the watch does not remember it.
    fn place(&mut self) -> io::Result<Place> {
        let now = self.rotations();
        if let Some(known) = self.known {
            if matches!(known.place, Place::Rotated(_)) || known.rotations == now {
                return Ok(known.place);
            }
            if let Some(stamp) = self.renamed(known) {
                let place = Place::Rotated(stamp);
                self.known = Some(Known { place, rotations: now });
                return Ok(place);
            }
        }
        let place = locate(self.read.after, &self.list()?);
        self.known = Some(Known { place, rotations: now });
        Ok(place)
    }

    /// Opens the file the cursor is in, at the cursor. `Ok(false)`: there is nothing to open
    /// (no live file yet).
    fn open_current(&mut self, notices: &mut Vec<Notice>) -> io::Result<bool> {
        loop {
            let before = self.rotations();
            let place = self.place()?;
            let opened = match place {
                Place::Rotated(stamp) => {
                    let plain = self.dir.join(rotation::rotated_name(&self.base, stamp));
                    let gz = self.dir.join(format!(
                        "{}{}",
                        rotation::rotated_name(&self.base, stamp),
                        rotation::GZIP_SUFFIX
                    ));
                    match open_at(&plain, self.read.offset)? {
                        Opened::NotFound => open_gz_at(&gz, self.read.offset)?,
                        other => other,
                    }
                }
                Place::Live => {
                    let opened = open_at(&self.live(), self.read.offset)?;
                    if self.rotations() != before {
                        // Rotated between the listing and the open: this may be the new file.
                        self.known = None;
                        continue;
                    }
                    opened
                }
            };
            match (opened, place) {
                (Opened::Ready(source), _) => {
                    self.open = Some(Open { source, carry: Vec::new() });
                    return Ok(true);
                }
                (Opened::NotFound, Place::Live) => return Ok(false),
                (Opened::NotFound, Place::Rotated(stamp)) => {
                    // Deleted before this sink finished it: go on with the next file.
                    notices.push(Notice::Missing { stamp });
                    self.read = self.read.next_file(stamp);
                    self.known = None;
                }
                (Opened::Short, _) => {
                    notices.push(Notice::Reset { file: self.live() });
                    self.read = Cursor::new(super::random(), None);
                    self.known = None;
                }
            }
        }
    }

    /// Reads whole lines into `out` (their origin is `origin`, an index into the batch's
    /// origins) while `room` allows. Returns whether more lines may be waiting.
    pub fn read_lines(
        &mut self,
        host: &str,
        origin: usize,
        out: &mut Vec<Line>,
        room: &mut Room,
        now: i64,
        notices: &mut Vec<Notice>,
    ) -> io::Result<bool> {
        let mut chunk = Vec::new();
        loop {
            if self.open.is_none() && !self.open_current(notices)? {
                return Ok(false);
            }
            let ids = self.ids(host);
            let Some(open) = self.open.as_mut() else { return Ok(false) };
            let reading = Reading {
                ids: &ids,
                cri: self.cri,
                read: self.read,
                origin,
                now,
                grouping: self.grouping.as_deref(),
            };
            // With nothing read yet (just opened), nothing is known of a waiting record.
            let had_bytes = !open.carry.is_empty();
            let mut taken = take(&reading, &open.carry, out, room, false, false);
            if taken.waiting && !taken.full {
                // A record waits for its next line: sent as it is once it waited long enough.
                let at = Cursor { offset: self.read.offset + taken.consumed as u64, ..self.read };
                let due = match self.waiting {
                    Some((cursor, since)) if cursor == at => {
                        self.grouping.as_ref().is_some_and(|g| since.elapsed() >= g.timeout)
                    }
                    _ => {
                        self.waiting = Some((at, std::time::Instant::now()));
                        false
                    }
                };
                if due {
                    taken = take(&reading, &open.carry, out, room, false, true);
                }
            }
            if !taken.waiting && had_bytes {
                self.waiting = None;
            }
            self.read.offset += taken.consumed as u64;
            open.carry.drain(..taken.consumed);
            if taken.full {
                return Ok(true);
            }
            chunk.resize(CHUNK, 0);
            let n = loop {
                match open.source.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            if n > 0 {
                open.carry.extend_from_slice(&chunk[..n]);
                continue;
            }
            // At the end of the file.
            match self.known.map(|k| k.place) {
                Some(Place::Rotated(stamp)) => {
                    // A rotated file never grows: what is left is whole (a last line without
                    // `\n`, pieces of a CRI line that never got its end).
                    if !open.carry.is_empty() {
                        let ids = ids.clone();
                        let reading = Reading {
                            ids: &ids,
                            cri: self.cri,
                            read: self.read,
                            origin,
                            now,
                            grouping: self.grouping.as_deref(),
                        };
                        let taken = take(&reading, &open.carry, out, room, true, true);
                        self.read.offset += taken.consumed as u64;
                        open.carry.drain(..taken.consumed);
                        if taken.full {
                            return Ok(true);
                        }
                    }
                    self.waiting = None;
                    self.open = None;
                    self.read = self.read.next_file(stamp);
                    self.known = None;
                }
                _ if self.known.is_some_and(|k| k.rotations != self.rotations()) => {
                    // The live file was rotated since it was opened: the open file is a
                    // rotated one now. Learn its name; it no longer grows, so reading it on
                    // to its end (from the same handle) finishes it.
                    let place = self.place()?;
                    if place == Place::Live {
                        self.open = None;
                        return Ok(false);
                    }
                }
                _ => {
                    // Caught up with the live file: close it (a torn line is read again
                    // next time).
                    self.open = None;
                    return Ok(false);
                }
            }
        }
    }

    /// The line ids of the file the cursor is in (hashed once per file).
    fn ids(&mut self, host: &str) -> steward_core::ship::LineIds {
        let key = Cursor { offset: 0, ..self.read };
        match &self.ids {
            Some((at, ids)) if *at == key => ids.clone(),
            _ => {
                let ids =
                    steward_core::ship::LineIds::new(host, &self.stem, self.read.epoch, self.read.after);
                self.ids = Some((key, ids.clone()));
                ids
            }
        }
    }

    /// Tells the reader which rotated files its stream has (`stamps`, from one listing of the
    /// log folder made for every stream at start, before any writer runs): a thousand streams
    /// then cost one listing, not a thousand.
    pub fn placed(mut self, stamps: &[Stamp]) -> StreamReader {
        let place = locate(self.read.after, stamps);
        self.known = Some(Known { place, rotations: self.rotations() });
        self
    }

    /// The live file's name (`web.out.log`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// When the record waiting for its next line is to be sent as it is (`None`: none waits).
    pub fn flush_due(&self) -> Option<std::time::Instant> {
        let (_, since) = self.waiting?;
        Some(since + self.grouping.as_ref()?.timeout)
    }

    /// Forgets what was read but not acknowledged: reading starts again at `acked`.
    pub fn rewind(&mut self, acked: Cursor) {
        if self.read != acked {
            self.read = acked;
            self.open = None;
            self.known = None;
        }
    }
}

/// How to make [`Line`]s of one stream's bytes.
struct Reading<'a> {
    /// The ids of the lines of the file being read.
    ids: &'a steward_core::ship::LineIds,
    cri: bool,
    /// Where the bytes start.
    read: Cursor,
    origin: usize,
    now: i64,
    grouping: Option<&'a Grouping>,
}

/// What [`take`] did.
struct Taken {
    /// Bytes used up: the lines sent, never half a record.
    consumed: usize,
    /// The room ran out.
    full: bool,
    /// A multi-line record at the end waits for more (its bytes are not consumed).
    waiting: bool,
}

/// A line or record on its way to the batch: where it starts (in the bytes), its time and
/// text, where it ends, and how many lines it holds.
struct Pending {
    first: usize,
    at: i64,
    text: Vec<u8>,
    end: usize,
    lines: u32,
}

impl Reading<'_> {
    /// Adds `p` to `out` if the room allows.
    fn push(&self, p: Pending, out: &mut Vec<Line>, room: &mut Room) -> bool {
        if !room.fits(p.text.len(), out.is_empty()) {
            return false;
        }
        room.lines -= 1;
        room.bytes = room.bytes.saturating_sub(p.text.len());
        let offset = self.read.offset + p.first as u64;
        out.push(Line {
            origin: self.origin,
            at: p.at,
            observed: self.now,
            id: self.ids.id(offset),
            text: p.text,
        });
        true
    }
}

/// Takes the whole lines (or records) at the start of `bytes` into `out`, as `room` allows.
///
/// - CRI records: the capture time is the line's; pieces (`P`) wait for their `F`.
/// - With a grouping: a line that does not match its start joins the record before it; the
///   last record waits for the line after it, unless `flush` (its timeout passed).
/// - `end_of_file`: the file will not grow (a rotated file): what is left after the last
///   `\n`, and pieces without their end, make one last line; nothing waits.
fn take(
    r: &Reading,
    bytes: &[u8],
    out: &mut Vec<Line>,
    room: &mut Room,
    end_of_file: bool,
    flush: bool,
) -> Taken {
    let mut consumed = 0;
    let mut at = 0;
    // Pieces of a CRI line: where the first began, its time, the text so far.
    let mut pieces: Option<(usize, i64, Vec<u8>)> = None;
    let mut record: Option<Pending> = None;
    let full = |consumed| Taken { consumed, full: true, waiting: false };
    loop {
        let line = match memchr::memchr(b'\n', &bytes[at..]) {
            Some(end) => {
                let raw = &bytes[at..at + end];
                let start = at;
                at += end + 1;
                match r.cri.then(|| cri::parse(raw)).flatten() {
                    Some(rec) => {
                        let (first, time, mut text) = pieces.take().unwrap_or((start, rec.at, Vec::new()));
                        text.extend_from_slice(rec.content);
                        if rec.tag == cri::Tag::Partial && text.len() < MAX_LINE {
                            pieces = Some((first, time, text));
                            continue;
                        }
                        Pending { first, at: time, text, end: at, lines: 1 }
                    }
                    None => match pieces.take() {
                        // A plain line inside a CRI file: the pieces before it end there.
                        Some((first, time, text)) => {
                            at = start;
                            Pending { first, at: time, text, end: start, lines: 1 }
                        }
                        None => Pending { first: start, at: r.now, text: raw.to_vec(), end: at, lines: 1 },
                    },
                }
            }
            None if end_of_file && (at < bytes.len() || pieces.is_some()) => {
                // Unended pieces, and a torn last record: one line.
                let (first, mut time, mut text) = pieces.take().unwrap_or((at, r.now, Vec::new()));
                let torn = &bytes[at..];
                match r.cri.then(|| cri::parse(torn)).flatten() {
                    Some(rec) => {
                        if text.is_empty() {
                            time = rec.at;
                        }
                        text.extend_from_slice(rec.content);
                    }
                    None => text.extend_from_slice(torn),
                }
                at = bytes.len();
                Pending { first, at: time, text, end: at, lines: 1 }
            }
            None => break,
        };
        let Some(grouping) = r.grouping else {
            let end = line.end;
            if !r.push(line, out, room) {
                return full(consumed);
            }
            consumed = end;
            continue;
        };
        match record.as_mut() {
            Some(rec) if rec.lines < grouping.max_lines && !grouping.start.is_match(&line.text) => {
                rec.text.push(b'\n');
                rec.text.extend_from_slice(&line.text);
                rec.lines += 1;
                rec.end = line.end;
            }
            _ => {
                if let Some(done) = record.replace(line) {
                    let end = done.end;
                    if !r.push(done, out, room) {
                        return full(consumed);
                    }
                    consumed = end;
                }
            }
        }
    }
    if let Some(rec) = record {
        if !(end_of_file || flush) {
            return Taken { consumed, full: false, waiting: true };
        }
        let end = rec.end;
        if !r.push(rec, out, room) {
            return full(consumed);
        }
        consumed = end;
    }
    Taken { consumed, full: false, waiting: false }
}

#[cfg(test)]
mod tests;
