//! The fake child, one flag at a time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::{lines, pid_alive, read_pidfile, testchild, Daemon, DEADLINE};

fn child(args: &[&str]) -> Command {
    let mut cmd = Command::new(testchild());
    cmd.args(args);
    cmd
}

/// Runs the child to its end (for flag sets that do not wait) and returns its output.
fn run(args: &[&str]) -> Output {
    child(args).output().expect("steward-testchild runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn lookup_finds_the_binary_cargo_built() {
    let expected = Path::new(env!("CARGO_BIN_EXE_steward-testchild"));
    assert_eq!(testchild().canonicalize().unwrap(), expected.canonicalize().unwrap());
}

#[test]
fn exits_with_the_code_asked_for() {
    let out = run(&[]);
    assert!(out.status.success(), "{:?}", out.status);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(run(&["--exit", "7"]).status.code(), Some(7));
    assert_eq!(run(&["--exit", "255"]).status.code(), Some(255));
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    for (args, message) in [
        (&["--bogus"][..], "unknown flag --bogus"),
        (&["--sleep", "5"], "--sleep: \"5\" is not a duration"),
        (&["--write-lines", "3", "--line-len", "11"], "--line-len: 11 is not in 12..="),
        (&["--exit"], "--exit needs a value"),
        (&["--ignore-term", "--trap-term"], "exclude each other"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_lists_the_flags() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    for flag in ["--spawn-grandchild", "--trap-term", "--write-lines", "--abort"] {
        assert!(stdout(&out).contains(flag), "{flag}");
    }
}

#[test]
fn abort_dies_abnormally() {
    let out = run(&["--print-ready", "--abort"]);
    assert!(stdout(&out).starts_with("ready pid="));
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
        assert!(!out.status.core_dumped(), "core files are switched off");
    }
    assert!(!out.status.success());
}

#[test]
fn ready_line_carries_the_pid() {
    let started = child(&["--print-ready"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = started.id();
    let out = started.wait_with_output().unwrap();
    assert_eq!(stdout(&out), format!("ready pid={pid}\n"));
}

#[test]
fn prints_env_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let out = child(&["--env", "TESTKIT_SET", "--env", "TESTKIT_UNSET", "--cwd"])
        .env("TESTKIT_SET", "a b=c")
        .env_remove("TESTKIT_UNSET")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("env TESTKIT_SET=a b=c"));
    assert_eq!(lines.next(), Some("env TESTKIT_UNSET unset"));
    let cwd = lines.next().and_then(|l| l.strip_prefix("cwd ")).expect("a cwd line");
    assert_eq!(PathBuf::from(cwd).canonicalize().unwrap(), dir.path().canonicalize().unwrap());
    assert_eq!(lines.next(), None);
}

#[test]
fn write_lines_is_exact_on_stdout_and_stderr() {
    let out = run(&["--write-lines", "1000", "--line-len", "100"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, lines::lines(1..=1000, 100));
    assert!(out.stderr.is_empty());

    let out = run(&["--write-lines", "3", "--line-len", "12", "--stderr"]);
    assert_eq!(out.stderr, b"0000000001 \n0000000002 \n0000000003 \n");
    assert!(out.stdout.is_empty());

    let out = run(&["--write-lines", "2"]);
    assert_eq!(out.stdout, lines::lines(1..=2, 64), "64 bytes by default");

    let out = run(&["--write-lines", "0"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn write_lines_in_bulk_stays_intact() {
    let out = run(&["--write-lines", "200000", "--line-len", "150"]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 200_000 * 150);
    let numbers = lines::check_lines(&out.stdout, 150).unwrap();
    assert!(numbers.iter().copied().eq(1..=200_000));
}

#[test]
fn write_lines_at_a_rate_takes_the_time_it_says() {
    // 2,000 lines of 100 bytes at 1 MB/s: 0.2 s, paced every 10 ms.
    let start = std::time::Instant::now();
    let out = run(&["--write-lines", "2000", "--line-len", "100", "--rate", "1000000"]);
    let took = start.elapsed();
    assert!(out.status.success());
    assert_eq!(out.stdout, lines::lines(1..=2000, 100));
    assert!(took >= std::time::Duration::from_millis(190), "too fast for the rate: {took:?}");
}

#[test]
fn partial_text_has_no_newline() {
    let out = run(&["--write-lines", "1", "--line-len", "12", "--partial", "torn li"]);
    assert_eq!(out.stdout, b"0000000001 \ntorn li");
}

#[test]
fn append_start_counts_starts_and_pidfile_holds_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let pidfile = dir.path().join("child.pid");
    let mut pids = Vec::new();
    for _ in 0..2 {
        let args = ["--append-start", starts.to_str().unwrap(), "--pidfile", pidfile.to_str().unwrap()];
        let started = child(&args).spawn().unwrap();
        pids.push(started.id());
        assert!(started.wait_with_output().unwrap().status.success());
        assert_eq!(read_pidfile(&pidfile), Some(*pids.last().unwrap()));
    }
    let expected: String = pids.iter().map(|pid| format!("start pid={pid}\n")).collect();
    assert_eq!(fs::read_to_string(&starts).unwrap(), expected);
}

#[test]
fn sleeps_then_exits() {
    let start = Instant::now();
    let out = run(&["--sleep", "200ms", "--exit", "3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(start.elapsed() >= Duration::from_millis(200), "{:?}", start.elapsed());
}

#[test]
fn spawn_grandchild_writes_a_live_pid_and_dies_with_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let args = ["--spawn-grandchild", "--grandchild-pidfile", pidfile.to_str().unwrap()];
    let daemon =
        Daemon::start(testchild(), args.iter().chain(&["--print-ready", "--sleep", "1h"]), dir.path());
    let out = daemon.wait_for_text("ready pid=", DEADLINE);
    let grandchild: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("grandchild pid="))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no grandchild line before ready:\n{out}"));
    assert!(out.starts_with("grandchild pid="), "printed before ready:\n{out}");
    assert_eq!(read_pidfile(&pidfile), Some(grandchild), "pidfile written before the line");
    assert_ne!(grandchild, daemon.pid());
    assert!(pid_alive(grandchild));
    #[cfg(unix)]
    {
        // SAFETY: plain system call.
        let pgid = unsafe { libc::getpgid(grandchild as libc::pid_t) };
        assert_eq!(pgid as u32, daemon.pid(), "the grandchild stays in the child's group");
    }
    drop(daemon);
    testkit::wait_until(DEADLINE, "the grandchild to die with the group", || {
        (!pid_alive(grandchild)).then_some(())
    });
}

#[test]
fn grandchild_in_its_own_group_still_dies_with_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let daemon = Daemon::start(
        testchild(),
        ["--spawn-grandchild", "--grandchild-new-group", "--grandchild-pidfile"]
            .map(Into::into)
            .into_iter()
            .chain([pidfile.clone().into_os_string()])
            .chain(["--print-ready", "--sleep", "1h"].map(Into::into)),
        dir.path(),
    );
    daemon.wait_for_text("ready pid=", DEADLINE);
    let grandchild = read_pidfile(&pidfile).expect("pidfile written before ready");
    assert!(pid_alive(grandchild));
    #[cfg(unix)]
    {
        // SAFETY: plain system call.
        let pgid = unsafe { libc::getpgid(grandchild as libc::pid_t) };
        assert_eq!(pgid as u32, grandchild, "the grandchild leads its own group");
    }
    drop(daemon);
    testkit::wait_until(DEADLINE, "the grandchild in its own group to die", || {
        (!pid_alive(grandchild)).then_some(())
    });
}

#[cfg(unix)]
mod signals {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn trap_term_prints_the_signal_and_exits_0() {
        for sig in [libc::SIGTERM, libc::SIGINT] {
            let dir = tempfile::tempdir().unwrap();
            let daemon =
                Daemon::start(testchild(), ["--trap-term", "--print-ready", "--sleep", "1h"], dir.path());
            daemon.wait_for_text("ready pid=", DEADLINE);
            daemon.signal(sig);
            let status = daemon.wait_exit(DEADLINE);
            assert!(status.success(), "{status:?}\n{}", daemon.dump());
            assert_eq!(daemon.stdout(), format!("ready pid={}\ngot signal {sig}\n", daemon.pid()));
        }
    }

    #[test]
    fn ignore_term_survives_term_int_and_hup() {
        let dir = tempfile::tempdir().unwrap();
        let daemon =
            Daemon::start(testchild(), ["--ignore-term", "--print-ready", "--sleep", "1h"], dir.path());
        daemon.wait_for_text("ready pid=", DEADLINE);
        if cfg!(target_os = "linux") {
            let status = fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
            let ignored = status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
                .unwrap();
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                assert_ne!(ignored & (1 << (sig - 1)), 0, "signal {sig} ignored");
            }
        }
        // An ignored signal is dropped when sent; one that is not would end the process
        // before the SIGKILL and be the one reported.
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGKILL] {
            daemon.signal(sig);
        }
        let status = daemon.wait_exit(DEADLINE);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(!daemon.output().contains("got signal"));
    }

    #[test]
    fn signal_group_reaches_the_grandchild_too() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let daemon =
            Daemon::start(
                testchild(),
                ["--spawn-grandchild", "--grandchild-pidfile", pidfile.to_str().unwrap()]
                    .into_iter()
                    .chain(["--trap-term", "--print-ready", "--sleep", "1h"]),
                dir.path(),
            );
        daemon.wait_for_text("ready pid=", DEADLINE);
        let grandchild = read_pidfile(&pidfile).unwrap();
        daemon.signal_group(libc::SIGTERM);
        assert!(daemon.wait_exit(DEADLINE).success(), "the child traps it");
        testkit::wait_until(DEADLINE, "the grandchild to die from SIGTERM", || {
            (!pid_alive(grandchild)).then_some(())
        });
    }

    #[test]
    fn plain_child_dies_from_term() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(testchild(), ["--print-ready", "--sleep", "1h"], dir.path());
        daemon.wait_for_text("ready pid=", DEADLINE);
        daemon.signal(libc::SIGTERM);
        assert_eq!(daemon.wait_exit(DEADLINE).signal(), Some(libc::SIGTERM));
    }
}
