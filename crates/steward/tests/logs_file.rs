//! `LogFile` against real files: rotation by size and by time, retention, compression,
//! reopening, and (on Linux) a real write failure and its recovery.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use steward::logs::{compress, history, LogFile};
use steward_core::config::{LogSpec, RotateEvery};
use steward_core::rotation;

/// 2026-11-22T03:15:00Z
const T0: u64 = 1_795_317_300;

fn at(secs: u64, millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
}

fn spec(max_size: u64, keep: u32) -> LogSpec {
    LogSpec { max_size, rotate_every: None, keep, compress: false, ..Default::default() }
}

/// Lines of many lengths, numbered so that order and completeness can be checked.
fn numbered_lines(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("line {i:06} {}\n", "x".repeat(i * 7 % 53)).as_bytes());
    }
    out
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Rotated files of `base` (plain or compressed), sorted by name.
fn rotated_of(dir: &Path, base: &str) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| {
            rotation::parse_rotated(base, n).is_some_and(|r| r.kind != rotation::RotatedKind::GzipTemp)
        })
        .collect()
}

/// Writes `data` in batches of up to `lines_per_write` lines.
fn write_in_batches(log: &mut LogFile, data: &[u8], lines_per_write: usize, now: SystemTime) {
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(lines_per_write - 1)
            .map_or(rest.len(), |(i, _)| i + 1);
        log.write_lines(&rest[..end], now).unwrap();
        rest = &rest[end..];
    }
}

#[test]
fn size_rotation_happens_only_at_line_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let data = numbered_lines(2000);
    let mut log = LogFile::open(path.clone(), spec(1000, 1000)).unwrap();
    write_in_batches(&mut log, &data, 7, at(T0, 0));
    drop(log);

    let files = history::files_oldest_first(&path).unwrap();
    assert!(files.len() > 50, "expected many rotations, got {}", files.len());
    assert_eq!(files.last(), Some(&path));
    for file in &files {
        let content = fs::read(file).unwrap();
        assert!(content.len() <= 1000, "{} has {} bytes", file.display(), content.len());
        assert!(content.ends_with(b"\n"), "{} ends mid-line", file.display());
        // Full: the next line would not have fit (except in the live file).
        if file != &path {
            assert!(content.len() > 1000 - 70, "{} rotated early at {} bytes", file.display(), content.len());
        }
    }
    assert_eq!(history::read_all(&path).unwrap(), data);
}

#[test]
fn a_line_bigger_than_max_size_is_cut_at_max_size_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.out.log");
    let big = format!("{}\n", "B".repeat(250));
    let data = format!("a\nb\n{big}c\n");
    let mut log = LogFile::open(path.clone(), spec(100, 10)).unwrap();
    log.write_lines(data.as_bytes(), at(T0, 0)).unwrap();
    drop(log);

    let contents: Vec<String> =
        history::files_oldest_first(&path).unwrap().iter().map(|f| fs::read_to_string(f).unwrap()).collect();
    let marker = std::str::from_utf8(steward_core::rotation::CUT_MARKER).unwrap();
    let cut = format!("{}{marker}", "B".repeat(100));
    let rest = format!("{}\nc\n", "B".repeat(50));
    assert_eq!(contents, ["a\nb\n", cut.as_str(), cut.as_str(), rest.as_str()]);
}

#[test]
fn retention_keeps_the_newest_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let data = numbered_lines(500);
    let mut log = LogFile::open(path.clone(), spec(500, 3)).unwrap();
    write_in_batches(&mut log, &data, 1, at(T0, 0));
    drop(log);

    let rotated = rotated_of(dir.path(), "web.out.log");
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    // What is left is the end of the data, without gaps.
    let kept = history::read_all(&path).unwrap();
    assert!(data.ends_with(&kept), "kept files are not the newest");
    assert!(kept.len() > 3 * 400);
    // Another log in the same folder is left alone.
    assert!(names(dir.path()).iter().all(|n| n.starts_with("web.out.log")));
}

#[test]
fn keep_zero_keeps_only_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let mut log = LogFile::open(path.clone(), spec(10, 0)).unwrap();
    write_in_batches(&mut log, b"12345678\nabcdefgh\nlast\n", 1, at(T0, 0));
    drop(log);
    assert_eq!(names(dir.path()), ["web.out.log"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "last\n");
}

#[test]
fn hourly_rotation_on_the_first_write_after_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let hourly = LogSpec {
        max_size: 0,
        rotate_every: Some(RotateEvery::Hourly),
        keep: 10,
        compress: false,
        ..Default::default()
    };
    let mut log = LogFile::open(path.clone(), hourly).unwrap();
    // 03:15 (T0), 03:59:59.900, then 04:00:00.100, 04:30, then 06:00:00.000.
    log.write_lines(b"one\n", at(T0, 0)).unwrap();
    log.write_lines(b"two\n", at(T0 + 2699, 900)).unwrap();
    log.write_lines(b"three\n", at(T0 + 2700, 100)).unwrap();
    log.write_lines(b"four\n", at(T0 + 4500, 0)).unwrap();
    log.write_lines(b"five\n", at(T0 + 9900, 0)).unwrap();
    drop(log);

    assert_eq!(
        rotated_of(dir.path(), "web.out.log"),
        ["web.out.log.20261122T040000.100Z", "web.out.log.20261122T060000.000Z"]
    );
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("web.out.log.20261122T040000.100Z"), "one\ntwo\n");
    assert_eq!(read("web.out.log.20261122T060000.000Z"), "three\nfour\n");
    assert_eq!(read("web.out.log"), "five\n");
}

#[test]
fn daily_rotation_and_size_rotation_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.err.log");
    let daily = LogSpec {
        max_size: 10,
        rotate_every: Some(RotateEvery::Daily),
        keep: 10,
        compress: false,
        ..Default::default()
    };
    let mut log = LogFile::open(path.clone(), daily).unwrap();
    log.write_lines(b"aaaa\nbbbb\n", at(T0, 0)).unwrap(); // exactly full
    log.write_lines(b"cccc\n", at(T0, 1)).unwrap(); // size rotation
    log.write_lines(b"dddd\n", at(T0 + 86_400, 0)).unwrap(); // next day
    drop(log);
    let contents: Vec<String> =
        history::files_oldest_first(&path).unwrap().iter().map(|f| fs::read_to_string(f).unwrap()).collect();
    assert_eq!(contents, ["aaaa\nbbbb\n", "cccc\n", "dddd\n"]);
}

#[test]
fn names_stay_in_order_when_the_clock_goes_back_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let mut log = LogFile::open(path.clone(), spec(4, 100)).unwrap();
    let now = at(T0, 500);
    for line in ["a\n", "b\n", "c\n", "d\n"] {
        // Each line fills the file, so each write after the first rotates, all at `now`.
        log.write_lines(format!("{line}{line}").as_bytes(), now).unwrap();
    }
    drop(log);
    // Reopened later with a clock an hour behind: new names still sort after the old ones.
    let mut log = LogFile::open(path.clone(), spec(4, 100)).unwrap();
    log.write_lines(b"e\ne\n", at(T0 - 3600, 0)).unwrap();
    drop(log);
    assert_eq!(
        rotated_of(dir.path(), "web.out.log"),
        [
            "web.out.log.20261122T031500.500Z",
            "web.out.log.20261122T031500.501Z",
            "web.out.log.20261122T031500.502Z",
            "web.out.log.20261122T031500.503Z",
        ]
    );
    assert_eq!(history::read_all(&path).unwrap(), b"a\na\nb\nb\nc\nc\nd\nd\ne\ne\n");
}

#[test]
fn reopening_appends_and_ends_an_unfinished_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/app.out.log");
    let mut log = LogFile::open(path.clone(), spec(0, 10)).unwrap();
    log.write_lines(b"first run\n", at(T0, 0)).unwrap();
    drop(log);
    // Something (steward killed mid-line, say) left a fragment at the end.
    let mut content = fs::read(&path).unwrap();
    content.extend_from_slice(b"torn");
    fs::write(&path, &content).unwrap();

    let mut log = LogFile::open(path.clone(), spec(0, 10)).unwrap();
    log.write_lines(b"second run\n", at(T0, 0)).unwrap();
    drop(log);
    assert_eq!(fs::read_to_string(&path).unwrap(), "first run\ntorn\nsecond run\n");
}

#[test]
fn compression_produces_exact_gzip_files_off_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let data = numbered_lines(3000);
    let compressing =
        LogSpec { max_size: 20_000, rotate_every: None, keep: 100, compress: true, ..Default::default() };
    let mut log = LogFile::open(path.clone(), compressing).unwrap();
    write_in_batches(&mut log, &data, 50, at(T0, 0));
    drop(log);
    assert!(compress::wait_idle_timeout(Duration::from_secs(60)), "compression did not finish");

    let rotated = rotated_of(dir.path(), "web.out.log");
    assert!(rotated.len() >= 5, "{rotated:?}");
    assert!(rotated.iter().all(|n| n.ends_with(".gz")), "{rotated:?}");
    assert!(names(dir.path()).iter().all(|n| !n.ends_with(".tmp")));
    // Each one is a valid gzip stream on its own, and together they are the data.
    let mut decompressed = Vec::new();
    for name in &rotated {
        let mut one = Vec::new();
        let file = fs::File::open(dir.path().join(name)).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut one).unwrap();
        assert!(one.ends_with(b"\n") && one.len() <= 20_000);
        decompressed.extend_from_slice(&one);
    }
    decompressed.extend_from_slice(&fs::read(&path).unwrap());
    assert_eq!(decompressed, data);
}

#[test]
fn retention_counts_compressed_and_plain_files_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    // Left by an earlier run: two compressed, one plain, one stale temp, and an unrelated file.
    let old = ["20261120T000000.000Z.gz", "20261121T000000.000Z.gz", "20261122T000000.000Z"];
    for suffix in old {
        fs::write(dir.path().join(format!("web.out.log.{suffix}")), b"old\n").unwrap();
    }
    fs::write(dir.path().join("web.out.log.20261119T000000.000Z.gz.tmp"), b"partial").unwrap();
    fs::write(dir.path().join("web.out.log.bak"), b"not ours").unwrap();

    let mut log = LogFile::open(path.clone(), spec(4, 2)).unwrap();
    // Opening already applied keep = 2.
    assert_eq!(
        rotated_of(dir.path(), "web.out.log"),
        ["web.out.log.20261121T000000.000Z.gz", "web.out.log.20261122T000000.000Z"]
    );
    log.write_lines(b"aaa\nbbb\n", at(T0, 0)).unwrap();
    drop(log);
    assert_eq!(
        names(dir.path()),
        [
            "web.out.log",
            "web.out.log.20261122T000000.000Z",
            "web.out.log.20261122T031500.000Z",
            "web.out.log.bak"
        ]
    );
}

#[test]
fn open_reports_the_path_it_could_not_open() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be.
    let path = dir.path().join("taken.out.log");
    fs::create_dir(&path).unwrap();
    let err = LogFile::open(path.clone(), LogSpec::default()).unwrap_err();
    assert!(err.to_string().contains("taken.out.log"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept as source()");
}

/// A real ENOSPC: the log path is a symlink to /dev/full, then becomes a real file.
#[cfg(target_os = "linux")]
mod write_failure {
    use std::io;
    use std::path::PathBuf;

    use super::*;

    /// Captures what `tracing` prints while `f` runs.
    /// What `f` logs on this thread. One global subscriber writes into a per-thread
    /// buffer: a scoped `with_default` subscriber can miss events when another test thread
    /// hits the same callsite with no subscriber and tracing caches "not interested".
    fn capture_tracing<R>(f: impl FnOnce() -> R) -> (R, String) {
        thread_local! {
            static CAPTURED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        struct ThreadBuf;
        impl io::Write for ThreadBuf {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                CAPTURED.with(|c| c.borrow_mut().extend_from_slice(b));
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| ThreadBuf)
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        });
        CAPTURED.with(|c| c.borrow_mut().clear());
        let result = f();
        let text = CAPTURED.with(|c| String::from_utf8(c.borrow().clone()).unwrap());
        (result, text)
    }

    fn line(i: usize) -> Vec<u8> {
        format!("line {i:05} {}\n", "y".repeat(89)).into_bytes() // 101 bytes
    }

    #[test]
    fn full_disk_drops_counts_and_recovers_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("web.out.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();

        let (log, logs) = capture_tracing(|| {
            let mut log = LogFile::open(path.clone(), spec(0, 10)).unwrap();
            // 2000 lines of 101 bytes, in writes of 100 lines, during one second: the
            // first 64 KiB worth of whole lines (648 lines) is kept, the rest dropped.
            for batch in 0..20 {
                let data: Vec<u8> = (batch * 100..(batch + 1) * 100).flat_map(line).collect();
                log.write_lines(&data, at(T0, batch as u64 * 10)).unwrap();
            }
            assert_eq!(log.dropped(), (2000 - 648, (2000 - 648) * 101));
            // A retry after a second still fails (same device): nothing changes but counts.
            log.write_lines(&line(2000), at(T0 + 1, 500)).unwrap();
            assert_eq!(log.dropped(), (1353, 1353 * 101));

            // Space comes back: the path is now a plain file.
            fs::remove_file(&path).unwrap();
            // Not yet time to retry: still dropped.
            log.write_lines(&line(2001), at(T0 + 1, 900)).unwrap();
            log.write_lines(&line(2002), at(T0 + 3, 0)).unwrap();
            assert_eq!(log.dropped(), (1354, 1354 * 101));
            log
        });
        drop(log);

        let content = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 648 + 2);
        for (i, l) in lines[..648].iter().enumerate() {
            assert_eq!(format!("{l}\n").into_bytes(), line(i));
        }
        assert_eq!(
            lines[648],
            "[steward] dropped 1354 lines (136754 bytes) while writing failed: No space left on device"
        );
        assert_eq!(format!("{}\n", lines[649]).into_bytes(), line(2002));

        assert_eq!(logs.matches("WARN").count(), 1, "one warning per failure episode:\n{logs}");
        assert!(logs.contains("web.out.log") && logs.contains("No space left on device"), "{logs}");
        assert_eq!(logs.matches("writing the log file works again").count(), 1, "{logs}");
    }

    #[test]
    fn a_long_line_cut_by_the_failure_is_ended_before_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("web.out.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut log = LogFile::open(path.clone(), spec(0, 10)).unwrap();
        log.write_lines(b"kept\n", at(T0, 0)).unwrap();
        // A piece of a line longer than the room left: only whole lines are kept, so it is
        // dropped, and so is the rest of its line when that comes.
        let long = vec![b'L'; 100 * 1024];
        log.write_lines(&long, at(T0, 1)).unwrap();
        log.write_lines(b"LLLL\n", at(T0, 2)).unwrap();
        fs::remove_file(&path).unwrap();
        log.write_lines(b"after\n", at(T0 + 2, 0)).unwrap();
        assert_eq!(log.dropped(), (1, 100 * 1024 + 5));
        drop(log);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "kept\n[steward] dropped 1 lines (102405 bytes) while writing failed: No space left on device\nafter\n"
        );
    }
}
