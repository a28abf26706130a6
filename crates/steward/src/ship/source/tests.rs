//! Reading streams the way the log writer leaves them: appended, rotated (and the reader
//! told so), compressed, deleted, torn, CRI-framed.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use steward_core::config::LogSpec;
use steward_core::rotation::Stamp;
use steward_core::ship::cursor::Cursor;

use super::*;
use crate::logs::{FileWatch, LogFile};
use crate::ship::batch::Stream;

/// A reader that needs nothing kept (retention is not under test here).
struct Nobody;
impl crate::logs::watch::Reader for Nobody {
    fn wake(&self) {}
    fn after(&self) -> Option<Stamp> {
        Some(Stamp { millis: u64::MAX - 1 })
    }
    fn read_of(&self, _: Stamp, _: Option<u64>) -> u64 {
        0
    }
    fn lost(&self, _: Stamp, _: u64, _: u64) {}
}

fn origin(path: &Path) -> Origin {
    Origin {
        host: "h".into(),
        program: "web".into(),
        instance: None,
        stream: Stream::Out,
        path: path.display().to_string(),
        pid: None,
    }
}

fn big_room() -> Room {
    Room { bytes: usize::MAX, lines: usize::MAX }
}

/// Reads everything there is now; the lines' texts.
fn read_all(reader: &mut StreamReader) -> Vec<String> {
    let mut out = Vec::new();
    let mut notices = Vec::new();
    while reader.read_lines("h", 0, &mut out, &mut big_room(), 7, &mut notices).unwrap() {}
    assert!(notices.is_empty(), "{notices:?}");
    out.into_iter().map(|l| String::from_utf8(l.text).unwrap()).collect()
}

fn setup(spec: LogSpec) -> (tempfile::TempDir, std::path::PathBuf, Arc<FileWatch>, LogFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let watch = Arc::new(FileWatch::new(vec![Arc::new(Nobody)], u64::MAX));
    let log = LogFile::open_watched(path.clone(), spec, Some(watch.clone())).unwrap();
    (dir, path, watch, log)
}

fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[test]
fn lines_are_read_once_across_rotations_in_order() {
    // Rotates every few lines; the reader reads between writes, sometimes after several
    // rotations at once.
    let spec = LogSpec { max_size: 64, keep: 100, ..LogSpec::default() };
    let (_dir, path, watch, mut log) = setup(spec);
    let mut reader = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(1, None));
    let mut seen = Vec::new();
    let mut expected = Vec::new();
    for round in 0..30 {
        for i in 0..(round % 7) {
            let line = format!("line {round}-{i} {}", "x".repeat(round % 13));
            log.write_lines(format!("{line}\n").as_bytes(), now()).unwrap();
            expected.push(line);
        }
        if round % 3 != 0 {
            seen.extend(read_all(&mut reader));
        }
    }
    seen.extend(read_all(&mut reader));
    assert_eq!(seen, expected);
    assert!(log.rotated_newest_first().len() > 10, "the test rotated");
}

#[test]
fn a_torn_live_line_waits_for_its_end() {
    let (_dir, path, watch, _log) = setup(LogSpec::default());
    fs::write(&path, "one\ntw").unwrap();
    let mut reader = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(1, None));
    assert_eq!(read_all(&mut reader), ["one"]);
    assert_eq!(reader.read.offset, 4);
    fs::write(&path, "one\ntwo\n").unwrap();
    assert_eq!(read_all(&mut reader), ["two"]);
}

#[test]
fn a_rotated_file_is_read_from_its_cursor_compressed_or_not_and_its_torn_end_is_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let older = Stamp { millis: 1_000 };
    let newer = Stamp { millis: 2_000 };
    fs::write(dir.path().join(format!("web.out.log.{older}")), "a\nb\nc").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"d\ne\n").unwrap();
    fs::write(dir.path().join(format!("web.out.log.{newer}.gz")), gz.finish().unwrap()).unwrap();
    fs::write(&path, "f\n").unwrap();
    // The cursor is after "a\n" of the older file.
    let mut reader = StreamReader::new(
        origin(&path),
        path.clone(),
        false,
        None,
        Cursor { epoch: 1, after: None, offset: 2 },
    );
    assert_eq!(read_all(&mut reader), ["b", "c", "d", "e", "f"]);
    assert_eq!(reader.read, Cursor { epoch: 1, after: Some(newer), offset: 2 });
    // From the middle of the compressed one.
    let mut reader = StreamReader::new(
        origin(&path),
        path,
        false,
        None,
        Cursor { epoch: 1, after: Some(older), offset: 2 },
    );
    assert_eq!(read_all(&mut reader), ["e", "f"]);
}

#[test]
fn a_deleted_file_or_a_truncated_one_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    fs::write(&path, "x\n").unwrap();
    let mut reader = StreamReader::new(
        origin(&path),
        path.clone(),
        false,
        None,
        Cursor { epoch: 1, after: None, offset: 50 },
    );
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    assert_eq!(notices, [Notice::Reset { file: path.clone() }]);
    assert_eq!(out.len(), 1, "read again from the start");
    assert_ne!(reader.read.epoch, 1, "a new epoch: no id repeats one sent before");
}

#[test]
fn the_room_limits_a_read_and_the_rest_follows() {
    let (_dir, path, watch, mut log) = setup(LogSpec::default());
    log.write_lines(b"11\n22\n33\n44\n55\n", now()).unwrap();
    let mut reader = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(1, None));
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    let mut room = Room { bytes: 100, lines: 2 };
    assert!(reader.read_lines("h", 0, &mut out, &mut room, 0, &mut notices).unwrap(), "more waits");
    assert_eq!(out.len(), 2);
    assert_eq!(reader.read.offset, 6);
    let mut room = Room { bytes: 3, lines: 100 };
    out.clear();
    assert!(reader.read_lines("h", 0, &mut out, &mut room, 0, &mut notices).unwrap());
    assert_eq!(out.len(), 1, "a line that does not fit waits, unless the batch is empty");
    assert_eq!(read_all(&mut reader), ["44", "55"]);
}

#[test]
fn ids_are_the_same_when_read_again() {
    let (_dir, path, watch, mut log) = setup(LogSpec::default());
    log.write_lines(b"a\nb\n", now()).unwrap();
    let ids = |reader: &mut StreamReader| {
        let (mut out, mut notices) = (Vec::new(), Vec::new());
        reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
        out.into_iter().map(|l| l.id).collect::<Vec<_>>()
    };
    let mut first =
        StreamReader::new(origin(&path), path.clone(), false, Some(watch.clone()), Cursor::new(9, None));
    let mut again = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(9, None));
    let a = ids(&mut first);
    assert_eq!(a, ids(&mut again));
    assert_ne!(a[0], a[1]);
}

#[test]
fn cri_records_keep_their_time_and_long_lines_are_joined() {
    let spec = LogSpec { format: steward_core::config::LogFormat::Cri, ..LogSpec::default() };
    let (_dir, path, watch, mut log) = setup(spec);
    log.write_lines(b"first\nsecond\n", now()).unwrap();
    let mut reader =
        StreamReader::new(origin(&path), path.clone(), true, Some(watch.clone()), Cursor::new(1, None));
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    let texts: Vec<&[u8]> = out.iter().map(|l| l.text.as_slice()).collect();
    assert_eq!(texts, [&b"first"[..], b"second"]);
    assert!(out[0].at > 0 && out[1].at > out[0].at, "capture times, strictly increasing");
    // A line written in pieces (P records), then its end.
    let file = fs::read_to_string(&path).unwrap();
    assert!(file.lines().all(|l| l.contains(" stdout F ")), "{file}");
    let text = format!(
        "{file}2026-01-01T00:00:00.000000001Z stdout P abc\n2026-01-01T00:00:00.000000002Z stdout P def\n"
    );
    fs::write(&path, &text).unwrap();
    out.clear();
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    assert!(out.is_empty(), "pieces wait for their end");
    fs::write(&path, format!("{text}2026-01-01T00:00:00.000000003Z stdout F ghi\n")).unwrap();
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].text, b"abcdefghi");
    assert_eq!(out[0].at, 1_767_225_600_000_000_001, "the first piece's time");
}

#[test]
fn lines_group_into_records_and_the_last_waits_for_its_timeout() {
    let (_dir, path, watch, mut log) = setup(LogSpec::default());
    log.write_lines(b"start 1\n  at a\n  at b\nstart 2\n  at c\n", now()).unwrap();
    let grouping = Arc::new(Grouping {
        start: regex::bytes::Regex::new(r"^\S").unwrap(),
        timeout: std::time::Duration::ZERO,
        max_lines: 3,
    });
    let mut reader = StreamReader::grouped(
        origin(&path),
        path.clone(),
        false,
        Some(watch),
        Cursor::new(1, None),
        Some(grouping),
    );
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    let texts =
        |out: &[Line]| out.iter().map(|l| String::from_utf8(l.text.clone()).unwrap()).collect::<Vec<_>>();
    assert_eq!(texts(&out), ["start 1\n  at a\n  at b"]);
    assert_eq!(reader.read.offset, 22, "the cursor stops before the record that waits");
    assert!(reader.flush_due().is_some(), "its timeout runs");
    // More of it arrives, then a line that would make it too long starts a new one.
    log.write_lines(b"  at d\n  at e\n", now()).unwrap();
    out.clear();
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    assert_eq!(texts(&out), ["start 2\n  at c\n  at d"], "at most max_lines lines");
    // The next read after the timeout sends the waiting record as it is.
    out.clear();
    reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap();
    assert_eq!(texts(&out), ["  at e"]);
    assert_eq!(reader.flush_due(), None);
}

/// Writes `lines` lines ("{tag}{i}") one by one; returns their texts.
fn write_numbered(log: &mut LogFile, tag: &str, lines: usize) -> Vec<String> {
    (0..lines)
        .map(|i| {
            let line = format!("{tag}{i}");
            log.write_lines(format!("{line}\n").as_bytes(), now()).unwrap();
            line
        })
        .collect()
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

#[cfg(unix)] // Windows keeps a file that is open until its last handle closes.
#[test]
fn a_live_file_renamed_then_deleted_while_open_is_read_to_its_end_and_then_the_next() {
    let spec = LogSpec { max_size: 16, keep: 100, ..LogSpec::default() };
    let (_dir, path, watch, mut log) = setup(spec);
    let mut written = write_numbered(&mut log, "a", 3);
    let mut reader = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(1, None));
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    // One line fits: the live file stays open at the second.
    assert!(reader
        .read_lines("h", 0, &mut out, &mut Room { bytes: 100, lines: 1 }, 0, &mut notices)
        .unwrap());
    // The open file is rotated, then again, and the first rotated file is deleted.
    written.extend(write_numbered(&mut log, "b", 12));
    let rotated = log.rotated_newest_first();
    assert!(rotated.len() >= 2, "{rotated:?}");
    let open_one = rotated.last().unwrap();
    assert!(lines_of(open_one).starts_with(&["a0".into(), "a1".into()]));
    fs::remove_file(open_one).unwrap();
    let mut seen = vec![String::from_utf8(out[0].text.clone()).unwrap()];
    seen.extend(read_all(&mut reader));
    assert_eq!(seen, written, "the open file is read to its end, then each file after it");
}

#[test]
fn a_live_file_renamed_then_deleted_before_it_is_reopened_is_missing_not_another_file() {
    let spec = LogSpec { max_size: 16, keep: 100, ..LogSpec::default() };
    let (_dir, path, watch, mut log) = setup(spec);
    write_numbered(&mut log, "a", 2);
    let mut reader = StreamReader::new(origin(&path), path.clone(), false, Some(watch), Cursor::new(1, None));
    assert_eq!(read_all(&mut reader), ["a0", "a1"]);
    // Caught up, the reader closed the file. It is rotated, then again, and the file the
    // cursor is in is deleted before the reader looks again.
    write_numbered(&mut log, "b", 12);
    let rotated = log.rotated_newest_first();
    assert!(rotated.len() >= 2, "{rotated:?}");
    let cursor_in = rotated.last().unwrap().clone();
    let (cursor_stamp, _) = crate::logs::history::rotated(&path)
        .unwrap()
        .into_iter()
        .find(|(_, p)| *p == cursor_in)
        .expect("the oldest rotated file is listed");
    let lost = lines_of(&cursor_in);
    assert!(lost.starts_with(&["a0".into(), "a1".into()]), "{lost:?}");
    fs::remove_file(&cursor_in).unwrap();
    let after: Vec<String> =
        rotated.iter().rev().skip(1).flat_map(|p| lines_of(p)).chain(lines_of(&path)).collect();
    let (mut out, mut notices) = (Vec::new(), Vec::new());
    while reader.read_lines("h", 0, &mut out, &mut big_room(), 0, &mut notices).unwrap() {}
    assert_eq!(notices, [Notice::Missing { stamp: cursor_stamp }]);
    let seen: Vec<String> = out.into_iter().map(|l| String::from_utf8(l.text).unwrap()).collect();
    assert_eq!(seen, after, "every later file is read whole, from its start");
}
