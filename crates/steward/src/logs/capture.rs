//! The pipe side: reads a program's stdout or stderr and hands whole lines to its
//! [`LogFile`](super::LogFile).

use std::io;
use std::sync::PoisonError;
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::file::WriterId;
use super::SharedLog;

/// Size of [`pump`]'s read buffer, the most it holds of one stream at a time.
///
/// Big enough that a program writing flat out is copied with about as few syscalls as
/// `cat` makes (64 KiB measured ~20% slower). A zeroed allocation this big usually comes
/// straight from the OS, which makes pages resident only when first touched, so a program
/// that writes short bursts costs little more than the first pages.
pub const READ_BUFFER: usize = 128 * 1024;

/// Copies `reader` into `log` until end of file; returns the number of bytes read.
///
/// Reads go into one fixed buffer of [`READ_BUFFER`] bytes. After each read, everything
/// up to the last `\n` goes to the file in one write, under the file's mutex (so lines of
/// two pumps sharing a file never mix), and the unfinished line after it stays in the
/// buffer for the next read. A line longer than the buffer is written in pieces as the
/// buffer fills; the file then rotates only after that line has ended. At end of file
/// (and on a read error) an unfinished last line is written with a `\n` added, so a
/// program that died in the middle of a line never glues that fragment onto the next
/// run's first line.
///
/// The file is written from the task that runs this future; when it is slower than the
/// program, fewer reads happen, the pipe fills and the program blocks in `write`:
/// backpressure, with memory bounded by the buffer.
pub async fn pump<R: AsyncRead + Unpin>(mut reader: R, log: SharedLog) -> io::Result<u64> {
    let writer = WriterId::new();
    let mut buf = vec![0u8; READ_BUFFER].into_boxed_slice();
    // buf[..held] is the start of a line not finished yet. Always `held < buf.len()`, so a
    // read always has room and 0 always means end of file.
    let mut held = 0;
    // A piece of the current line already went to the file.
    let mut mid_line = false;
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf[held..]).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                finish(&log, writer, &mut buf, held, mid_line);
                return Err(e);
            }
        };
        total += n as u64;
        let end = held + n;
        // Only the new bytes can hold a '\n': the held ones were searched before.
        let cut = match memchr::memrchr(b'\n', &buf[held..end]) {
            Some(i) => held + i + 1,
            // A line longer than the buffer: this piece goes now.
            None if end == buf.len() => end,
            None => {
                held = end;
                continue;
            }
        };
        write(&log, writer, &buf[..cut]);
        mid_line = buf[cut - 1] != b'\n';
        buf.copy_within(cut..end, 0);
        held = end - cut;
    }
    finish(&log, writer, &mut buf, held, mid_line);
    Ok(total)
}

fn write(log: &SharedLog, writer: WriterId, bytes: &[u8]) {
    let now = SystemTime::now();
    log.lock().unwrap_or_else(PoisonError::into_inner).write_from(writer, bytes, now);
}

/// Writes the unfinished last line, ending it with a `\n`.
fn finish(log: &SharedLog, writer: WriterId, buf: &mut [u8], held: usize, mid_line: bool) {
    if held > 0 {
        buf[held] = b'\n';
        write(log, writer, &buf[..=held]);
    } else if mid_line {
        let now = SystemTime::now();
        log.lock().unwrap_or_else(PoisonError::into_inner).end_line(writer, now);
    }
}
