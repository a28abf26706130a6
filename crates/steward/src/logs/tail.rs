//! The last lines of a log, for `steward logs -n N`: read backwards from the end of the
//! live file, and on into the newest rotated files when it has fewer than N lines.
//! Compressed rotated files are not read (the tail almost never reaches them).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const CHUNK: u64 = 64 * 1024;

/// The last `n` whole lines of the log whose live file is `live` (fewer if it has fewer).
pub fn tail(live: &Path, n: usize) -> io::Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let files = match super::history::files_oldest_first(live) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut need = n;
    for path in files.iter().rev() {
        if path.extension().is_some_and(|e| e == "gz") {
            break;
        }
        let (part, lines) = tail_of_file(path, need)?;
        parts.push(part);
        need -= lines;
        if need == 0 {
            break;
        }
    }
    Ok(parts.into_iter().rev().flatten().collect())
}

/// The last `n` lines of one file, and how many lines that is.
fn tail_of_file(path: &Path, n: usize) -> io::Result<(Vec<u8>, usize)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Lines end in '\n'; the final newline of the file does not start a line.
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        let complete = newlines.saturating_sub(usize::from(buf.last() == Some(&b'\n'))) >= n;
        if complete || pos == 0 {
            break;
        }
        let step = CHUNK.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    // Keep the last n lines: cut after the (n+1)-th newline from the end (not counting the
    // trailing one).
    let body_end = if buf.last() == Some(&b'\n') { buf.len() - 1 } else { buf.len() };
    let mut count = 0;
    let mut start = 0;
    for i in (0..body_end).rev() {
        if buf[i] == b'\n' {
            count += 1;
            if count == n {
                start = i + 1;
                break;
            }
        }
    }
    let part = buf.split_off(start);
    let unterminated = usize::from(part.last().is_some_and(|&b| b != b'\n'));
    let lines = part.iter().filter(|&&b| b == b'\n').count() + unterminated;
    Ok((part, lines.min(n)))
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
}
