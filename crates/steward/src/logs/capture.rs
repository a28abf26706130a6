//! The pipe side: reads a program's stdout or stderr and hands whole lines to its
//! [`LogFile`](super::LogFile).

use std::io;
use std::sync::PoisonError;
use std::time::SystemTime;

use steward_core::framing::{Ending, LineFramer};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::file::WriterId;
use super::SharedLog;

/// Size of [`pump`]'s read buffer, the most it holds of one stream at a time.
///
/// Big enough that a program writing flat out is copied with about as few syscalls as
/// `cat` makes (64 KiB measured ~20% slower). It is allocated at the stream's first
/// output, not before: a zeroed allocation this big does not always come untouched from
/// the OS (the allocator clears memory it reuses), and 500 silent programs cost ~85 MiB
/// of resident memory when each pump allocated it up front (docs/benchmarks.md).
pub const READ_BUFFER: usize = 128 * 1024;

/// What a pump reads into until the stream's first output: a program that never writes
/// costs this much (in the pump's task) instead of [`READ_BUFFER`].
const FIRST_READ: usize = 256;

/// Copies `reader` into `log` until end of file; returns the number of bytes read.
///
/// Reads go into one fixed buffer of [`READ_BUFFER`] bytes, cut into lines by the pure
/// [`LineFramer`]. After each read, everything up to the last `\n` goes to the file in one
/// write, under the file's mutex (so lines of two pumps sharing a file never mix), and the
/// unfinished line after it stays in the buffer for the next read. A line longer than the buffer is written in pieces as the
/// buffer fills; the file then rotates only after that line has ended. At end of file
/// (and on a read error) an unfinished last line is written with a `\n` added, so a
/// program that died in the middle of a line never glues that fragment onto the next
/// run's first line.
///
/// The file is written from the task that runs this future; when it is slower than the
/// program, fewer reads happen, the pipe fills and the program blocks in `write`:
/// backpressure, with memory bounded by the buffer.
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
pub async fn pump_opening<R, F>(mut reader: R, open: F) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    F: FnOnce() -> io::Result<SharedLog>,
{
    let writer = WriterId::new();
    // Wait for the first output before allocating the buffer (and opening the file).
    let mut first = [0u8; FIRST_READ];
    let n = loop {
        match reader.read(&mut first).await {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if n == 0 {
        return Ok(0);
    }
    let log = match open() {
        Ok(log) => log,
        Err(_reported) => {
            let mut total = n as u64;
            loop {
                match reader.read(&mut first).await {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    };
    let mut framer = LineFramer::new(READ_BUFFER);
    framer.space()[..n].copy_from_slice(&first[..n]);
    let mut total = 0u64;
    // The first output is handled as if just read.
    let mut pending = Some(n);
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
                finish(&log, writer, &mut framer);
                return Err(e);
            }
        };
        total += n as u64;
        framer.filled(n, |lines| write(&log, writer, lines));
    }
    finish(&log, writer, &mut framer);
    Ok(total)
}

fn write(log: &SharedLog, writer: WriterId, bytes: &[u8]) {
    let now = SystemTime::now();
    log.lock().unwrap_or_else(PoisonError::into_inner).write_from(writer, bytes, now);
}

/// Writes the unfinished last line, ending it with a `\n`.
fn finish(log: &SharedLog, writer: WriterId, framer: &mut LineFramer) {
    match framer.finish() {
        Ending::Clean => {}
        Ending::Rest(line) => write(log, writer, line),
        Ending::EndLine => {
            let now = SystemTime::now();
            log.lock().unwrap_or_else(PoisonError::into_inner).end_line(writer, now);
        }
    }
}
