//! `pump` fed by a real child process, on every platform: the test kit's
//! `steward-testchild --write-lines N` writes numbered lines on a pipe, and the log files,
//! read oldest first, must hold exactly lines 1..=N, whole and in order.

use std::process::Stdio;

use steward::logs::{history, pump, LogFile, SharedLog};
use steward_core::config::LogSpec;
use testkit::lines;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn open(path: std::path::PathBuf, max_size: u64) -> SharedLog {
    LogFile::open(
        path,
        LogSpec { max_size, rotate_every: None, keep: 1000, compress: false, ..Default::default() },
    )
    .unwrap()
    .shared()
}

/// Runs the test child with `args`, its stdout pumped into `log`; returns the bytes captured.
async fn run_child(args: &[&str], log: &SharedLog) -> u64 {
    let mut child = tokio::process::Command::new(testkit::testchild())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test child starts");
    let stdout = child.stdout.take().unwrap();
    #[cfg(target_os = "linux")]
    steward::logs::tune_pipe(std::os::fd::AsRawFd::as_raw_fd(&stdout));
    let captured = pump(stdout, log.clone()).await.unwrap();
    assert!(child.wait().await.unwrap().success());
    captured
}

#[test]
fn every_line_of_a_child_once_and_in_order_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("child.out.log");
    let log = open(path.clone(), 1_000_000);
    let (count, len) = (500_000u64, 24);
    let captured = runtime().block_on(run_child(&["--write-lines", "500000", "--line-len", "24"], &log));
    drop(log);

    assert_eq!(captured, count * len as u64);
    let files = history::files_oldest_first(&path).unwrap();
    assert!(files.len() >= 12, "expected a dozen files, got {}", files.len());
    for file in &files {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= 1_000_000, "{} has {size} bytes", file.display());
    }
    let numbers = lines::check_lines(&history::read_all(&path).unwrap(), len).unwrap();
    assert!(numbers.iter().copied().eq(1..=count), "lines missing, repeated or out of order");
}

#[test]
fn a_child_that_stops_mid_line_does_not_glue_onto_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("child.out.log");
    let log = open(path.clone(), 0);
    runtime().block_on(async {
        run_child(&["--write-lines", "2", "--line-len", "16", "--partial", "cut short"], &log).await;
        run_child(&["--write-lines", "1", "--line-len", "16"], &log).await;
    });
    drop(log);
    let mut expected = lines::lines(1..=2, 16);
    expected.extend_from_slice(b"cut short\n");
    expected.extend_from_slice(&lines::line(1, 16));
    assert_eq!(
        String::from_utf8(std::fs::read(&path).unwrap()).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

/// A progress bar that redraws itself with `\r` never ends its line: the file is still cut
/// at `max_size`, each cut marked, and nothing is lost.
#[test]
fn a_progress_bar_without_newlines_is_cut_at_max_size_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bar.out.log");
    let log = open(path.clone(), 4000);
    let bar: String = (0..3000).map(|i| format!("\r{:3}% ", i % 100)).collect();
    runtime().block_on(run_child(&["--partial", &bar], &log));
    drop(log);

    let marker = steward_core::rotation::CUT_MARKER;
    let files = history::files_oldest_first(&path).unwrap();
    assert_eq!(files.len(), 5, "{files:?}");
    let mut unmarked = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let data = std::fs::read(file).unwrap();
        let last = i + 1 == files.len();
        let log = match data.strip_suffix(marker) {
            Some(log) if !last => log,
            _ if last => &data[..],
            _ => panic!("{} does not end with the cut marker", file.display()),
        };
        assert!(log.len() <= 4000, "{} holds {} bytes of output", file.display(), log.len());
        unmarked.extend_from_slice(log);
    }
    // The line the child left unfinished is ended with a newline at its exit.
    assert_eq!(unmarked, format!("{bar}\n").into_bytes());
}
