//! `pump` through real OS pipes written by threads of the test, so that chunk sizes and
//! timing are under the test's control: every line once, in order, across rotation;
//! unfinished last lines; long lines; two writers sharing one file. (`logs_child.rs` feeds
//! pump from a real child process, on every platform.)
//!
//! Unix only: std's anonymous pipes are handed to tokio's Unix pipe type.

use std::fs;
use std::io::{PipeWriter, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread;

use steward::logs::{history, pump, pump_opening, LogFile, SharedLog};
use steward_core::config::LogSpec;
use tokio::net::unix::pipe;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An OS pipe: tokio's read end, std's write end. Call inside the runtime.
fn os_pipe() -> (pipe::Receiver, PipeWriter) {
    let (read, write) = std::io::pipe().unwrap();
    (pipe::Receiver::from_owned_fd(OwnedFd::from(read)).unwrap(), write)
}

fn open(path: &Path, max_size: u64) -> SharedLog {
    LogFile::open(
        path.to_path_buf(),
        LogSpec { max_size, rotate_every: None, keep: 1000, compress: false, ..Default::default() },
    )
    .unwrap()
    .shared()
}

/// Writes `data` into `pipe` from a thread, in chunks whose sizes cycle through `sizes`
/// (so chunk ends fall anywhere in a line), then closes it.
fn feed(mut pipe: PipeWriter, data: Vec<u8>, sizes: &'static [usize]) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut rest = &data[..];
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = size.min(rest.len());
            pipe.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
    })
}

/// testkit's `wait_until` on a blocking thread, so that the runtime's tasks (the pumps) go on
/// meanwhile.
async fn wait_until(what: &'static str, condition: impl Fn() -> bool + Send + 'static) {
    let wait = move || testkit::wait_until(testkit::DEADLINE, what, || condition().then_some(()));
    if let Err(e) = tokio::task::spawn_blocking(wait).await {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Line `i` of a numbered stream: varying lengths, so rotation points fall anywhere.
fn numbered(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:07} {}\n", "-".repeat(i * 13 % 41))
}

fn check_files(path: &Path, max_size: u64) {
    for file in history::files_oldest_first(path).unwrap() {
        let content = fs::read(&file).unwrap();
        assert!(content.len() as u64 <= max_size, "{} has {} bytes", file.display(), content.len());
        assert!(content.ends_with(b"\n"), "{} does not end at a line boundary", file.display());
    }
}

#[test]
fn a_million_lines_through_size_rotation_arrive_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.out.log");
    let data: Vec<u8> = (1..=1_000_000).flat_map(|i| numbered("", i).into_bytes()).collect();
    let log = open(&path, 1_000_000);

    let captured = runtime().block_on(async {
        let (reader, writer) = os_pipe();
        let feeder = feed(writer, data.clone(), &[1, 4093, 70_001, 7, 65_536, 333, 200_000]);
        let captured = pump(reader, log.clone()).await.unwrap();
        feeder.join().unwrap();
        captured
    });
    drop(log);

    assert_eq!(captured, data.len() as u64);
    let files = history::files_oldest_first(&path).unwrap();
    assert!(files.len() >= data.len() / 1_000_000, "only {} files", files.len());
    check_files(&path, 1_000_000);
    let all = history::read_all(&path).unwrap();
    assert!(all == data, "the files, oldest first, are not exactly lines 1..=1000000");
}

#[test]
fn an_unfinished_last_line_gets_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.out.log");
    let log = open(&path, 0);
    runtime().block_on(async {
        // One run dies in the middle of a line, the next run starts with a line.
        for run in [&b"a\nb\npartial"[..], b"next run\n", b"no newline at all"] {
            let (reader, writer) = os_pipe();
            let feeder = feed(writer, run.to_vec(), &[3]);
            assert_eq!(pump(reader, log.clone()).await.unwrap(), run.len() as u64);
            feeder.join().unwrap();
        }
    });
    drop(log);
    assert_eq!(fs::read_to_string(&path).unwrap(), "a\nb\npartial\nnext run\nno newline at all\n");
}

#[test]
fn long_lines_are_written_in_pieces_and_cut_at_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.out.log");
    let log = open(&path, 1000);
    let long = format!("{}\n", "L".repeat(200_000));
    // Exactly two buffers and no newline: the pieces leave nothing held at end of file.
    let unfinished = "U".repeat(2 * steward::logs::capture::READ_BUFFER);
    let data = format!("short 1\n{long}short 2\n{unfinished}");
    runtime().block_on(async {
        let (reader, writer) = os_pipe();
        let feeder = feed(writer, data.clone().into_bytes(), &[10_000]);
        pump(reader, log.clone()).await.unwrap();
        feeder.join().unwrap();
    });
    drop(log);
    let marker = steward_core::rotation::CUT_MARKER;
    let files = history::files_oldest_first(&path).unwrap();
    let mut unmarked = Vec::new();
    let mut cuts = 0;
    for file in &files {
        let content = fs::read(file).unwrap();
        let log = content.strip_suffix(marker).inspect(|_| cuts += 1).unwrap_or(&content);
        assert!(log.len() <= 1000, "{} holds {} bytes of output", file.display(), log.len());
        assert!(content.ends_with(b"\n"), "{} does not end at a line boundary", file.display());
        unmarked.extend_from_slice(log);
    }
    assert_eq!(fs::read(&files[0]).unwrap(), b"short 1\n", "a whole line is never cut");
    // Each long line fills files of 1000 bytes, each cut marked, and ends in the next.
    assert_eq!(cuts, 200_001 / 1000 + (2 * steward::logs::capture::READ_BUFFER + 1) / 1000);
    assert!(
        unmarked == format!("{data}\n").into_bytes(),
        "the output, markers left out, is not what was written"
    );
}

#[test]
fn two_writers_to_one_file_never_mix_inside_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.out.log");
    let log = open(&path, 300_000);
    let count = 100_000;
    let stream =
        |prefix: &str| -> Vec<u8> { (0..count).flat_map(|i| numbered(prefix, i).into_bytes()).collect() };
    runtime().block_on(async {
        let (reader_a, writer_a) = os_pipe();
        let (reader_b, writer_b) = os_pipe();
        let feed_a = feed(writer_a, stream("A"), &[100, 3, 5000, 17]);
        let feed_b = feed(writer_b, stream("B"), &[1, 2048, 99_999]);
        let (a, b) = tokio::join!(pump(reader_a, log.clone()), pump(reader_b, log.clone()));
        feed_a.join().unwrap();
        feed_b.join().unwrap();
        a.unwrap();
        b.unwrap();
    });
    drop(log);
    check_files(&path, 300_000);

    let all = String::from_utf8(history::read_all(&path).unwrap()).unwrap();
    let (mut next_a, mut next_b) = (0, 0);
    for line in all.split_inclusive('\n') {
        let next = match &line[..1] {
            "A" => &mut next_a,
            "B" => &mut next_b,
            _ => panic!("a line from neither writer: {line:?}"),
        };
        assert_eq!(line, numbered(&line[..1], *next), "mixed or out of order");
        *next += 1;
    }
    assert_eq!((next_a, next_b), (count, count));
}

#[test]
fn a_long_line_cut_by_another_writer_is_ended_not_glued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.out.log");
    let log = open(&path, 0);
    let piece = "A".repeat(steward::logs::capture::READ_BUFFER);
    runtime().block_on(async {
        let (reader_a, writer_a) = os_pipe();
        let pump_a = tokio::spawn(pump(reader_a, log.clone()));
        // A: one buffer's worth of a line that has not ended yet (from a thread: it is more
        // than a pipe holds).
        let piece_for_a = piece.clone();
        let writing_a = thread::spawn(move || {
            let mut writer_a = writer_a;
            writer_a.write_all(piece_for_a.as_bytes()).unwrap();
            writer_a
        });
        let (file, size) = (path.clone(), piece.len() as u64);
        wait_until("the first piece of A's line is in the file", move || {
            fs::metadata(&file).map(|m| m.len()).unwrap_or(0) == size
        })
        .await;
        let mut writer_a = writing_a.join().unwrap();
        // B writes whole lines meanwhile.
        let (reader_b, writer_b) = os_pipe();
        let feed_b = feed(writer_b, b"B line\n".to_vec(), &[100]);
        pump(reader_b, log.clone()).await.unwrap();
        feed_b.join().unwrap();
        // A's line ends.
        writer_a.write_all(b"A tail\n").unwrap();
        drop(writer_a);
        pump_a.await.unwrap().unwrap();
    });
    drop(log);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{piece}\nB line\nA tail\n"));
}

#[test]
fn a_silent_stream_opens_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.out.log");
    let captured = runtime().block_on(async {
        let (reader, writer) = os_pipe();
        drop(writer);
        pump_opening(reader, || -> std::io::Result<SharedLog> { panic!("opened a file for no output") })
            .await
            .unwrap()
    });
    assert_eq!(captured, 0);
    assert!(!path.exists());
}

#[test]
fn a_file_that_cannot_be_opened_does_not_block_the_program() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: opening fails.
    let path = dir.path().join("taken.out.log");
    fs::create_dir(&path).unwrap();
    // More than a pipe holds: the writer finishes only if the pump keeps reading.
    let data: Vec<u8> = (1..=100_000).flat_map(|i| numbered("", i).into_bytes()).collect();
    let len = data.len() as u64;
    let captured = runtime().block_on(async {
        let (reader, writer) = os_pipe();
        let feeder = feed(writer, data, &[65_536]);
        let captured = pump_opening(reader, || Ok(LogFile::open(path.clone(), LogSpec::default())?.shared()))
            .await
            .unwrap();
        feeder.join().unwrap();
        captured
    });
    assert_eq!(captured, len);
}
