//! The pipe side: reads a program's stdout or stderr and hands whole lines to its
//! [`LogFile`](super::LogFile).

use std::io;
use std::time::SystemTime;

use steward_core::framing::{Ending, LineFramer};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::file::WriterId;
use super::mirror::Tee;
use super::SharedLog;

/// Size of [`pump`]'s read buffer, the most it holds of one stream at a time.
///
/// Big enough that a program writing flat out is copied with about as few syscalls as
/// `cat` makes (64 KiB measured ~20% slower). It is allocated at the stream's first
/// output, not before: a zeroed allocation this big does not always come untouched from
/// the OS (the allocator clears memory it reuses), and 500 silent programs cost ~85 MiB
/// of resident memory when each pump allocated it up front (docs/benchmarks.md).
pub const READ_BUFFER: usize = 128 * 1024;

/// What a pump reads into when no file could be opened for it and its output is discarded.
const DISCARD_READ: usize = 64;

/// Copies `reader` into `log` until end of file; returns the number of bytes read.
///
/// Reads go into one fixed buffer of [`READ_BUFFER`] bytes, cut into lines by the pure
/// [`LineFramer`]. After each read, everything up to the last `\n` goes to the file in one
/// write, under the file's mutex (so lines of two pumps sharing a file never mix), and the
/// unfinished line after it stays in the buffer for the next read. A line longer than the
/// buffer is written in pieces as the buffer fills; the file then rotates only after that
/// line has ended. At end of file (and on a read error) an unfinished last line is written
/// with a `\n` added, so a program that died in the middle of a line never glues that
/// fragment onto the next run's first line.
///
/// The file is written from the task that runs this future, with one exception: a write
/// that rotates the file (or retries a failed one, see [`LogFile`](super::LogFile)) runs on a blocking
/// thread (`spawn_blocking`), so that a slow rename or delete never holds up the runtime's
/// thread, which is the supervisor's. The pump keeps the file's lock while that runs and
/// awaits it: the other pumps of the file wait their turn (lines stay whole and in order),
/// and nothing more is read meanwhile. Such a write copies its lines once (at most
/// [`READ_BUFFER`] bytes, into a buffer the pump keeps); a stream whose file never rotates
/// never leaves the task and never copies, unless another pump holds the file.
///
/// When the file is slower than the program, fewer reads happen, the pipe fills and the
/// program blocks in `write`: backpressure, with memory bounded by the buffers.
pub async fn pump<R: AsyncRead + Unpin>(reader: R, log: SharedLog) -> io::Result<u64> {
    pump_opening(reader, move || Ok(log)).await
}

/// [`pump`], with the log file opened by `open` at the stream's first output: a stream
/// that stays silent creates no file and costs no file descriptor, and starting 500
/// programs no longer creates (and lists the folder for) 1000 files
/// (docs/benchmarks.md).
///
/// If `open` fails, the stream is read to its end and discarded, so that the program never
/// blocks on a full pipe. `open` reports its own failure (the supervisor's logs it with the
/// program's name, publishes an event and counts it): this function knows no program.
pub async fn pump_opening<R, F>(reader: R, open: F) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    F: FnOnce() -> io::Result<SharedLog>,
{
    pump_to(reader, &mut Opening(Some(open))).await
}

/// Where a pump's output goes, decided at the stream's first output.
pub trait Destination {
    /// The file to write to. A failure is for the implementation to report, with what it
    /// knows (the supervisor's logs it with the program's name, publishes an event and
    /// counts it); the pump then reads the stream to its end and discards it.
    fn open(&mut self) -> io::Result<SharedLog>;

    /// Who also gets each write's whole lines, before they go to the file (`steward run
    /// --mirror`, see [`super::mirror`]).
    fn mirror(&self) -> Option<Tee> {
        None
    }
}

/// [`pump_opening`]'s closure as a [`Destination`].
struct Opening<F>(Option<F>);

impl<F: FnOnce() -> io::Result<SharedLog>> Destination for Opening<F> {
    fn open(&mut self) -> io::Result<SharedLog> {
        match self.0.take() {
            Some(open) => open(),
            None => Err(io::Error::other("the log was opened already")),
        }
    }
}

/// [`pump_opening`], to a [`Destination`].
///
/// Most streams wait long for output that seldom or never comes, and a pump is often a task
/// of its own, sized for its largest state. So until the first byte this future holds only
/// `reader`, `dest` and a one-byte buffer; what follows is boxed, and starts from that byte
/// (a 256-byte task instead of 640, docs/benchmarks.md section 14). The supervisor waits
/// for a program's first output itself and calls [`pump_from`] (section 15).
pub async fn pump_to<R, D>(mut reader: R, dest: &mut D) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    D: Destination + ?Sized,
{
    let mut first = [0u8; 1];
    loop {
        match reader.read(&mut first).await {
            Ok(0) => return Ok(0),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Box::pin(pump_from(first[0], reader, dest)).await
}

/// [`pump_to`] for a stream whose first byte, `first`, its caller read (a supervisor that
/// watches many silent streams from one task and gives a pump its own only when output
/// comes).
pub async fn pump_from<R, D>(first: u8, reader: R, dest: &mut D) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    D: Destination + ?Sized,
{
    let mirror = dest.mirror();
    pump_output(reader, dest.open(), mirror, first).await
}

/// [`pump_to`] from the first output on: `first` was read, and `log` opened.
async fn pump_output<R>(
    mut reader: R,
    log: io::Result<SharedLog>,
    mirror: Option<Tee>,
    first: u8,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
{
    let writer = WriterId::new();
    let log = match log {
        Ok(log) => log,
        Err(_reported) => {
            let mut discard = [0u8; DISCARD_READ];
            let mut total = 1;
            loop {
                match reader.read(&mut discard).await {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    };
    let mut framer = LineFramer::new(READ_BUFFER);
    framer.space()[0] = first;
    // Lines that could not be written at once (a rotation is due, or another pump holds
    // the file); empty between reads. Allocated at the first such write.
    let mut spill = Vec::new();
    let mut total = 0u64;
    // The first byte is handled as if just read; the next read takes what came with it.
    let mut pending = Some(1);
    loop {
        let n = match pending.take() {
            Some(n) => Ok(n),
            None => reader.read(framer.space()).await,
        };
        let n = match n {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                finish(&log, writer, &mut framer, spill, mirror.as_ref()).await;
                return Err(e);
            }
        };
        total += n as u64;
        framer.filled(n, |lines| {
            if let Some(mirror) = &mirror {
                mirror.lines(lines);
            }
            write_now(&log, writer, lines, &mut spill)
        });
        if !spill.is_empty() {
            spill = write_spilled(&log, writer, spill).await;
        }
    }
    finish(&log, writer, &mut framer, spill, mirror.as_ref()).await;
    Ok(total)
}

/// Writes `lines` at once when the file is free and the write cannot rotate it; otherwise
/// copies them to `spill`, for [`write_spilled`].
fn write_now(log: &SharedLog, writer: WriterId, lines: &[u8], spill: &mut Vec<u8>) {
    if let Ok(mut file) = log.try_lock() {
        let now = SystemTime::now();
        if !file.may_block(writer, lines, now) {
            file.write_from(writer, lines, now);
            return;
        }
    }
    spill.extend_from_slice(lines);
}

/// Writes `spill` once the file is free: on a blocking thread if it may rotate, with the
/// file's lock held until it is done. Returns the buffer, emptied, for the next time.
async fn write_spilled(log: &SharedLog, writer: WriterId, mut spill: Vec<u8>) -> Vec<u8> {
    let mut file = log.clone().lock_owned().await;
    let now = SystemTime::now();
    if !file.may_block(writer, &spill, now) {
        file.write_from(writer, &spill, now);
        spill.clear();
        return spill;
    }
    let written = tokio::task::spawn_blocking(move || {
        file.write_from(writer, &spill, now);
        spill
    });
    // A panic there would be a bug; its lines are gone with it, and the next write goes on.
    let mut spill = written.await.unwrap_or_default();
    spill.clear();
    spill
}

/// Writes the unfinished last line, ending it with a `\n`.
async fn finish(
    log: &SharedLog,
    writer: WriterId,
    framer: &mut LineFramer,
    mut spill: Vec<u8>,
    mirror: Option<&Tee>,
) {
    match framer.finish() {
        Ending::Clean => {}
        Ending::Rest(line) => {
            if let Some(mirror) = mirror {
                mirror.lines(line);
            }
            write_now(log, writer, line, &mut spill);
            if !spill.is_empty() {
                write_spilled(log, writer, spill).await;
            }
        }
        Ending::EndLine => {
            let mut file = log.clone().lock_owned().await;
            let now = SystemTime::now();
            // The `\n` it may add can rotate the file (a line cut at max_size).
            if file.may_block(writer, b"\n", now) {
                let _ = tokio::task::spawn_blocking(move || file.end_line(writer, now)).await;
            } else {
                file.end_line(writer, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use steward_core::config::LogSpec;

    use super::*;
    use crate::logs::{history, LogFile};

    /// steward's log as this thread's subscriber sees it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The rotations (`event=log-rotated`) of the file named `name` in `log`.
    fn rotations_of(log: &str, name: &str) -> usize {
        log.lines().filter(|l| l.contains("log-rotated") && l.contains(name)).count()
    }

    /// A pump's rotations (the rename, the deletes beyond `keep`) run off the runtime's
    /// thread, which in steward is the supervisor's only thread. The runtime here runs on the
    /// test's thread, whose own tracing subscriber sees only what happens on it: it sees
    /// every rotation that `LogFile::write_lines` does right here, and none of the pump's,
    /// though the pump rotated as often and lost, doubled or reordered nothing.
    #[test]
    fn a_pump_rotates_off_the_runtime_thread() {
        let dir = tempfile::tempdir().unwrap();
        let spec =
            LogSpec { max_size: 1000, rotate_every: None, keep: 5, compress: false, ..Default::default() };
        let data: Vec<u8> = (0..2000).flat_map(|i| format!("line {i:04}\n").into_bytes()).collect();
        let (pumped, direct) = (dir.path().join("pumped.out.log"), dir.path().join("direct.out.log"));
        // With a single dispatcher, tracing asks only the thread that first hits a callsite
        // whether anyone listens, and caches the answer: the blocking thread, where nobody
        // does. A second one makes it ask every dispatcher.
        let _second = tracing::Dispatch::new(tracing_subscriber::fmt().with_writer(io::sink).finish());
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let log = LogFile::open(pumped.clone(), spec.clone()).unwrap().shared();
                // Reads of at most 3000 bytes: several writes, most of them rotating.
                let reader = tokio::io::BufReader::with_capacity(3000, &data[..]);
                assert_eq!(pump(reader, log).await.unwrap(), data.len() as u64);
            });
            let mut log = LogFile::open(direct.clone(), spec.clone()).unwrap();
            log.write_lines(&data, SystemTime::now()).unwrap();
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(rotations_of(&log, "direct.out.log"), 19, "the seam sees this thread:\n{log}");
        assert_eq!(rotations_of(&log, "pumped.out.log"), 0, "a rotation ran on the runtime's thread:\n{log}");

        // The same files, the same lines: the last 5 rotated files and the live one.
        let read = |live: &std::path::Path| -> Vec<u8> {
            let files = history::files_oldest_first(live).unwrap();
            assert_eq!(files.len(), 6, "{files:?}");
            files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect()
        };
        let kept = read(&pumped);
        assert_eq!(kept, read(&direct));
        assert!(data.ends_with(&kept), "lost, doubled or reordered lines");
        assert_eq!(kept.len(), 6 * 1000, "each file holds max_size bytes of whole lines");
    }
}
