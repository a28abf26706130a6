//! The harness: waiting, the daemon runner, pid checks.

use std::cell::Cell;
use std::time::Duration;

use testkit::{pid_alive, testchild, wait_until, wait_until_or_dump, Daemon, DEADLINE};

#[test]
fn wait_until_returns_the_value_once_ready() {
    let calls = Cell::new(0);
    let got = wait_until(DEADLINE, "the third call", || {
        calls.set(calls.get() + 1);
        (calls.get() == 3).then_some("done")
    });
    assert_eq!((got, calls.get()), ("done", 3));
}

#[test]
#[should_panic(expected = "timed out after 30ms waiting for the impossible\ncontext here")]
fn wait_until_names_what_it_waited_for_and_dumps() {
    wait_until_or_dump(Duration::from_millis(30), "the impossible", || "context here".into(), || None::<()>);
}

#[test]
fn wait_until_checks_again_at_the_deadline() {
    // What it promises is a last check at (or after) the deadline, however late the pauses
    // run on a loaded machine; not a number of checks.
    let deadline = Duration::from_millis(20);
    let start = std::time::Instant::now();
    let checks = Cell::new(Vec::new());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(deadline, "nothing", || {
            let mut at = checks.take();
            at.push(start.elapsed());
            checks.set(at);
            None::<()>
        })
    }));
    assert!(result.is_err());
    let at = checks.take();
    assert!(at.len() >= 2, "checked once only: {at:?}");
    assert!(at[at.len() - 1] >= deadline, "no check at the deadline: {at:?}");
    assert!(at[at.len() - 2] < deadline, "the check before the last was past the deadline: {at:?}");
}

#[test]
fn daemon_output_comes_from_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        testchild(),
        ["--print-ready", "--write-lines", "2", "--line-len", "12", "--stderr"],
        dir.path(),
    );
    assert!(daemon.wait_exit(DEADLINE).success());
    let ready = format!("ready pid={}\n", daemon.pid());
    assert_eq!(daemon.stdout(), ready);
    assert_eq!(daemon.stderr(), "0000000001 \n0000000002 \n");
    assert_eq!(daemon.output(), format!("{ready}0000000001 \n0000000002 \n"));
    assert_eq!(daemon.stdout_path(), dir.path().join("daemon.stdout"));
    assert!(daemon.dump().contains("exited"));
}

#[test]
fn second_daemon_in_a_dir_gets_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(testchild(), ["--env", "A"], dir.path());
    let second = Daemon::start(testchild(), ["--env", "B"], dir.path());
    assert_eq!(second.stdout_path(), dir.path().join("daemon-2.stdout"));
    first.wait_for_text("env A", DEADLINE);
    second.wait_for_text("env B", DEADLINE);
    assert!(!first.output().contains("env B"));
}

#[test]
#[should_panic(expected = "daemon exited")]
fn waiting_for_output_fails_fast_when_the_daemon_exits() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(testchild(), ["--exit", "3"], dir.path());
    // Far longer than the test may take: only the exit can end this wait in time.
    daemon.wait_for_text("never printed", Duration::from_secs(3600));
}

#[test]
fn exit_status_is_seen_and_the_pid_stays_reserved_until_drop() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(testchild(), ["--exit", "4"], dir.path());
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(4));
    assert_eq!(daemon.try_status().and_then(|s| s.code()), Some(4), "seen again");
    assert!(!pid_alive(daemon.pid()), "exited means not alive");
    #[cfg(unix)]
    daemon.signal(0); // the zombie is still there to receive it
}

#[test]
fn drop_kills_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(testchild(), ["--ignore-term", "--print-ready", "--sleep", "1h"], dir.path());
    daemon.wait_for_text("ready", DEADLINE);
    let pid = daemon.pid();
    assert!(pid_alive(pid));
    drop(daemon);
    assert!(!pid_alive(pid), "killed and reaped by drop");
}

#[test]
#[should_panic(expected = "cannot start")]
fn starting_a_missing_program_panics_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    Daemon::start(dir.path().join("no-such-program"), ["x"], dir.path());
}

#[test]
fn kill_ends_the_daemon_alone_and_the_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(testchild(), ["--trap-term", "--print-ready", "--sleep", "1h"], dir.path());
    daemon.wait_for_text("ready", DEADLINE);
    daemon.kill();
    let status = daemon.wait_exit(DEADLINE);
    // Not the orderly exit 0 of a trapped stop: killed.
    assert!(!status.success(), "{status}");
    assert!(!daemon.output().contains("got "), "{}", daemon.dump());
}

#[test]
fn log_events_are_read_from_json_lines_and_other_lines_are_skipped() {
    let log = concat!(
        r#"{"timestamp":"2026-12-03T12:17:16.137928Z","level":"INFO","message":"started (pid 15519)","program":"a","event":"started","from":"starting","to":"running","pid":15519}"#,
        "\nthread 'main' panicked: not JSON\n",
        r#"{"timestamp":"2026-12-03T12:17:19.125849Z","level":"INFO","message":"all programs stopped","event":"exit"}"#,
        "\n"
    );
    let events = testkit::parse_events(log);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].is("a", "started") && !events[0].is_daemon("started"));
    assert_eq!((events[0].pid, events[0].to.as_deref()), (Some(15519), Some("running")));
    assert!(events[1].is_daemon("exit") && events[1].program.is_none() && events[1].exit_code.is_none());
}

#[test]
fn toml_strings_and_child_commands_are_quoted() {
    assert_eq!(testkit::toml_str(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
    let cmd = testkit::child_cmd(&["--exit", "3"]);
    assert!(cmd.starts_with('[') && cmd.ends_with(r#", "--exit", "3"]"#), "{cmd}");
    let parsed: Vec<String> =
        cmd[1..cmd.len() - 1].split(", ").map(|s| s.trim_matches('"').replace("\\\\", "\\")).collect();
    assert_eq!(std::path::Path::new(&parsed[0]), testchild());
}
