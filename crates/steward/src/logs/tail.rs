//! The last lines of a log, for `steward logs -n N`: read backwards from the end of the
//! live file, and on into the newest rotated files when it has fewer than N lines.
//! Compressed rotated files are not read (the tail almost never reaches them).
//!
//! What one tail may cost is bounded, whatever the log holds and whoever asks:
//!
//! - The files are read backwards in blocks of 64 KiB and each byte is searched for `\n`
//!   once, so a tail costs time in proportion to what it returns, not to the file.
//! - A reply holds at most [`REPLY_LIMIT`] bytes. When the lines asked for are longer, the
//!   reply is their last [`REPLY_LIMIT`] bytes after a marker line saying so (a 50 MB
//!   line ends up as its last 1 MiB).
//! - Tails run on blocking threads, [`MAX_CONCURRENT`] at a time (see [`run`]): the
//!   runtime thread that supervises programs never reads a log, and the memory of all
//!   tails in flight stays a few MiB.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::sync::Semaphore;

/// The most bytes of log one reply carries (the marker line aside).
pub const REPLY_LIMIT: usize = 1024 * 1024;

/// Tails read at the same time; more wait their turn.
pub const MAX_CONCURRENT: usize = 2;

const CHUNK: usize = 64 * 1024;

/// One file of a log, opened, and how much of it belongs to the tail.
pub struct Part {
    file: File,
    /// The tail reads `file[..len]`: what was written before the tail was taken.
    len: u64,
}

impl Part {
    /// `file`, up to its present length.
    pub fn new(file: File) -> io::Result<Part> {
        let len = file.metadata()?.len();
        Ok(Part { file, len })
    }
}

/// The files of a log to take a tail from: the live file (opened while writes were held
/// off, so that it ends exactly where a feed taken at the same moment starts) and the
/// rotated files before it, newest first, opened only if the tail reaches them.
pub struct Source {
    pub live: Option<Part>,
    /// Rotated files, newest first. Compressed ones end the search.
    pub rotated: Vec<PathBuf>,
}

/// Runs `read` on a blocking thread once one of the [`MAX_CONCURRENT`] slots is free.
pub async fn run<T: Send + 'static>(read: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| Semaphore::new(MAX_CONCURRENT));
    let _slot = slots.acquire().await.map_err(io::Error::other)?;
    tokio::task::spawn_blocking(read).await.map_err(io::Error::other)?
}

/// The last `n` whole lines of the log whose live file is `live` (fewer if it has fewer),
/// at most [`REPLY_LIMIT`] bytes of them.
pub fn tail(live: &Path, n: usize) -> io::Result<Vec<u8>> {
    tail_limited(live, n, REPLY_LIMIT)
}

/// [`tail`], at most `limit` bytes.
pub fn tail_limited(live: &Path, n: usize, limit: usize) -> io::Result<Vec<u8>> {
    let mut files = match super::history::files_oldest_first(live) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let live_part = match files.last() {
        Some(last) if last == live => {
            files.pop();
            match File::open(live) {
                Ok(file) => Some(Part::new(file)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        }
        _ => None,
    };
    files.reverse();
    tail_of(Source { live: live_part, rotated: files }, n, limit)
}

/// The last `n` lines of `source`, at most `limit` bytes (see the module docs).
pub fn tail_of(source: Source, n: usize, limit: usize) -> io::Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut collector = Collector { need: n, limit, blocks: Vec::new(), kept: 0, at_end: true, done: None };
    if let Some(live) = source.live {
        collector.read_back(live)?;
    }
    for path in &source.rotated {
        if collector.done.is_some() || path.extension().is_some_and(|e| e == "gz") {
            break;
        }
        let file = match File::open(path) {
            Ok(file) => file,
            // Compressed (or deleted) since it was listed: the tail ends here.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        };
        collector.read_back(Part::new(file)?)?;
    }
    Ok(collector.finish())
}

/// Why the backwards read stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The `n` lines were found.
    Lines,
    /// `limit` bytes were taken; `mid_line`: the oldest byte taken is not a line start.
    Limit { mid_line: bool },
}

/// Blocks read backwards through the files of one log, as one stream.
struct Collector {
    /// Lines still to find.
    need: usize,
    limit: usize,
    /// The bytes kept so far, newest block first.
    blocks: Vec<Vec<u8>>,
    /// Their total length.
    kept: usize,
    /// Nothing read yet: a `\n` seen now is the end of the last line, not a line start.
    at_end: bool,
    done: Option<Stop>,
}

impl Collector {
    fn read_back(&mut self, part: Part) -> io::Result<()> {
        let Part { mut file, len } = part;
        let mut pos = len;
        while pos > 0 && self.done.is_none() {
            let step = usize::try_from(pos).map_or(CHUNK, |p| p.min(CHUNK));
            pos -= step as u64;
            file.seek(SeekFrom::Start(pos))?;
            let mut block = vec![0; step];
            file.read_exact(&mut block)?;
            self.take(block);
        }
        Ok(())
    }

    /// Takes the block that comes right before everything taken so far.
    fn take(&mut self, mut block: Vec<u8>) {
        let mut end = block.len();
        if self.at_end {
            self.at_end = false;
            // The final newline of the log does not start a line.
            if block.last() == Some(&b'\n') {
                end -= 1;
            }
        }
        let mut start = 0;
        for i in memchr::memrchr_iter(b'\n', &block[..end]) {
            self.need -= 1;
            if self.need == 0 {
                start = i + 1;
                self.done = Some(Stop::Lines);
                break;
            }
        }
        let room = self.limit - self.kept;
        if block.len() - start > room {
            let cut = block.len() - room;
            let mid_line = block[cut - 1] != b'\n';
            start = cut;
            self.done = Some(Stop::Limit { mid_line });
        }
        if start > 0 {
            block.drain(..start);
        }
        // Once exactly full, the next block (if any) has no room, and decides whether
        // the reply starts mid-line.
        self.kept += block.len();
        self.blocks.push(block);
    }

    fn finish(self) -> Vec<u8> {
        let marker = match self.done {
            Some(Stop::Limit { mid_line: true }) => Some(format!(
                "[steward: this reply is cut at {} bytes; the line below is shown from its last bytes]\n",
                self.limit
            )),
            Some(Stop::Limit { mid_line: false }) => Some(format!(
                "[steward: this reply is cut at {} bytes; earlier lines are not shown]\n",
                self.limit
            )),
            _ => None,
        };
        let mut out = Vec::with_capacity(self.kept + marker.as_ref().map_or(0, String::len));
        if let Some(marker) = marker {
            out.extend_from_slice(marker.as_bytes());
        }
        for block in self.blocks.iter().rev() {
            out.extend_from_slice(block);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn last_lines_of_one_file() {
        let d = tempfile::tempdir().unwrap();
        let live = write(d.path(), "a.out.log", "1\n2\n3\n4\n");
        assert_eq!(tail(&live, 2).unwrap(), b"3\n4\n");
        assert_eq!(tail(&live, 4).unwrap(), b"1\n2\n3\n4\n");
        assert_eq!(tail(&live, 9).unwrap(), b"1\n2\n3\n4\n");
        assert_eq!(tail(&live, 0).unwrap(), b"");
        let unfinished = write(d.path(), "b.out.log", "1\n2\n3");
        assert_eq!(tail(&unfinished, 2).unwrap(), b"2\n3");
    }

    #[test]
    fn long_files_are_read_backwards_in_chunks() {
        let d = tempfile::tempdir().unwrap();
        let text: String = (1..=50_000).map(|i| format!("line {i}\n")).collect();
        let live = write(d.path(), "a.out.log", &text);
        assert_eq!(tail(&live, 3).unwrap(), b"line 49998\nline 49999\nline 50000\n");
        let all = tail(&live, 50_000).unwrap();
        assert_eq!(all, text.as_bytes());
    }

    #[test]
    fn reaches_into_the_newest_rotated_file() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.out.log.20261122T030000.000Z", "old1\nold2\n");
        write(d.path(), "a.out.log.20261122T031500.000Z", "mid1\nmid2\n");
        let live = write(d.path(), "a.out.log", "new1\n");
        assert_eq!(tail(&live, 3).unwrap(), b"mid1\nmid2\nnew1\n");
        assert_eq!(tail(&live, 10).unwrap(), b"old1\nold2\nmid1\nmid2\nnew1\n");
    }

    #[test]
    fn a_missing_log_is_empty_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(tail(&d.path().join("never.out.log"), 5).unwrap(), b"");
    }

    #[test]
    fn an_over_long_line_is_cut_to_the_limit_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let long = "x".repeat(300_000);
        let live = write(d.path(), "a.out.log", &format!("first\n{long}\n"));
        let got = String::from_utf8(tail_limited(&live, 1, 100_000).unwrap()).unwrap();
        let (marker, rest) = got.split_once('\n').unwrap();
        assert!(marker.contains("cut at 100000 bytes; the line below"), "{marker}");
        assert_eq!(rest.len(), 100_000);
        assert!(rest.bytes().take(99_999).all(|b| b == b'x') && rest.ends_with('\n'));
        // Lines that end right at the limit: the earlier ones are left out, and said so.
        let lines: String = (0..10).map(|_| "abcd\n").collect();
        let live = write(d.path(), "b.out.log", &lines);
        let got = String::from_utf8(tail_limited(&live, 10, 10).unwrap()).unwrap();
        assert_eq!(
            got,
            "[steward: this reply is cut at 10 bytes; earlier lines are not shown]\nabcd\nabcd\n"
        );
        // Within the limit: no marker.
        assert_eq!(tail_limited(&live, 2, 10).unwrap(), b"abcd\nabcd\n");
    }
}
