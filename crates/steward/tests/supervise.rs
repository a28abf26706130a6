//! End to end: a real `steward run` supervising real child processes.
#![cfg(unix)]

mod common;

use common::*;

#[test]
fn a_crashing_program_is_restarted_with_backoff() {
    let cfg = format!(
        r#"
[programs.crashy]
command = {cmd}
restart_delay = "20ms"
restart_max_delay = "80ms"
max_restarts = 100
"#,
        cmd = child_cmd(&["--append-start", "starts.txt", "--exit", "3"])
    );
    let s = Steward::start(&cfg);
    // The delays double from restart_delay up to restart_max_delay.
    for delay in ["20ms", "40ms", "80ms"] {
        s.wait_log_line(&["crashy", "exit code 3", &format!("restarting in {delay}")]);
    }
    let starts = s.path("starts.txt");
    wait_until(DEADLINE, "five starts", || (line_count(&starts) >= 5).then_some(()));
    assert!(s.count_log_lines(&["crashy", "restarting in 160ms"]) == 0, "delay above the max\n{}", s.log());
    s.shutdown();
}

#[test]
fn the_retry_budget_makes_a_program_fatal() {
    let cfg = format!(
        r#"
[programs.doomed]
command = {cmd}
restart_delay = "1ms"
max_restarts = 3
restart_window = "1h"

[programs.steady]
command = {steady}
"#,
        cmd = child_cmd(&["--append-start", "starts.txt", "--exit", "1"]),
        steady = child_cmd(&["--sleep", "1h"])
    );
    let s = Steward::start(&cfg);
    let line = s.wait_log_line(&["doomed", "gave up"]);
    assert!(line.contains("3 restarts"), "{line}");
    // One start plus three restarts, then nothing more: it stays down.
    assert_eq!(line_count(&s.path("starts.txt")), 4, "{}", s.log());
    // The other program is untouched, and the supervisor still runs.
    assert!(s.daemon.try_status().is_none());
    assert_eq!(s.count_log_lines(&["steady", "started"]), 1);
    s.shutdown();
    assert_eq!(line_count(&s.path("starts.txt")), 4);
}

#[test]
fn a_program_that_ignores_term_is_killed_after_stop_timeout() {
    let cfg = format!(
        r#"
[programs.stubborn]
command = {cmd}
stop_timeout = "300ms"
"#,
        cmd = child_cmd(&["--ignore-term", "--print-ready", "--sleep", "1h"])
    );
    let s = Steward::start(&cfg);
    wait_until(DEADLINE, "the child to be ready", || {
        std::fs::read_to_string(s.log_dir().join("stubborn.out.log"))
            .ok()
            .filter(|o| o.contains("ready"))
            .map(|_| ())
    });
    let started = s.wait_log_line(&["stubborn", "started"]);
    let pid = pid_in(&started);
    s.shutdown();
    // SIGKILL, after the TERM was ignored.
    let stopped = find_line(&s.log(), &["stubborn", "stopped ("]).expect("a stopped line");
    assert!(stopped.contains("signal 9"), "{stopped}");
    assert!(!pid_alive(pid));
}

#[test]
fn stop_kills_the_grandchild_too() {
    let cfg = format!(
        r#"
[programs.parent]
command = {cmd}
"#,
        cmd = child_cmd(&[
            "--spawn-grandchild",
            "--grandchild-pidfile",
            "gc.pid",
            "--trap-term",
            "--sleep",
            "1h"
        ])
    );
    let s = Steward::start(&cfg);
    let grandchild = wait_pidfile(&s.path("gc.pid"));
    assert!(pid_alive(grandchild));
    s.shutdown();
    // The parent exited on TERM without passing it on; the group sweep got the grandchild.
    wait_gone(grandchild, "the grandchild");
}

#[test]
fn a_crash_sweeps_up_what_the_program_left_behind() {
    let cfg = format!(
        r#"
[programs.leaky]
command = {cmd}
restart = "never"
"#,
        cmd = child_cmd(&[
            "--spawn-grandchild",
            "--grandchild-pidfile",
            "gc.pid",
            "--sleep",
            "200ms",
            "--exit",
            "2"
        ])
    );
    let s = Steward::start(&cfg);
    let grandchild = wait_pidfile(&s.path("gc.pid"));
    s.wait_log_line(&["leaky", "exit code 2"]);
    wait_gone(grandchild, "the orphaned grandchild");
    s.shutdown();
}

#[test]
fn programs_start_in_dependency_order_and_stop_in_reverse() {
    let cfg = format!(
        r#"
[programs.web]
command = {sleep}
depends_on = ["api"]

[programs.api]
command = {sleep}
depends_on = ["db"]

[programs.db]
command = {sleep}
"#,
        sleep = child_cmd(&["--trap-term", "--sleep", "1h"])
    );
    let s = Steward::start(&cfg);
    s.wait_log_line(&["web", "started"]);
    let log = s.log();
    let pos = |name: &str| {
        log.lines().position(|l| l.contains(&format!("program={name}")) && l.contains("started")).unwrap()
    };
    assert!(pos("db") < pos("api") && pos("api") < pos("web"), "start order\n{log}");
    s.shutdown();
    let log = s.log();
    let pos = |name: &str| {
        log.lines()
            .position(|l| l.contains(&format!("program={name}")) && l.contains("stopped ("))
            .unwrap_or_else(|| panic!("no stop line for {name}\n{log}"))
    };
    assert!(pos("web") < pos("api") && pos("api") < pos("db"), "stop order\n{log}");
}

#[test]
fn a_missing_executable_is_reported_and_does_not_crash_the_supervisor() {
    let cfg = r#"
[programs.ghost]
command = ["/nonexistent/ghost-binary", "--flag"]
restart_delay = "1ms"
max_restarts = 2

[programs.other]
command = ["sleep", "3600"]
"#;
    let s = Steward::start(cfg);
    let line = s.wait_log_line(&["ghost", "could not start"]);
    assert!(line.contains("/nonexistent/ghost-binary") && line.contains("not found"), "{line}");
    s.wait_log_line(&["ghost", "gave up"]);
    // Each failure counted: the first try plus two restarts.
    assert_eq!(s.count_log_lines(&["ghost", "was not found"]), 3, "{}", s.log());
    assert!(s.daemon.try_status().is_none(), "steward must keep running");
    s.shutdown();
}

#[test]
fn stdout_and_stderr_go_to_their_own_files_with_env_and_cwd() {
    let cfg = format!(
        r#"
[programs.talker]
command = {cmd}
restart = "never"
cwd = "."
env = {{ GREETING = "${{TEST_GREETING:-hi there}}" }}
"#,
        cmd =
            child_cmd(&["--env", "GREETING", "--cwd", "--write-lines", "3", "--line-len", "20", "--stderr"])
    );
    let s = Steward::start(&cfg);
    s.wait_log_line(&["talker", "exit code 0"]);
    s.shutdown();
    let out = std::fs::read_to_string(s.log_dir().join("talker.out.log")).unwrap();
    let err = std::fs::read_to_string(s.log_dir().join("talker.err.log")).unwrap();
    assert!(out.contains("env GREETING=hi there"), "{out}");
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    assert!(out.contains(&format!("cwd {}", cwd.display())), "{out}");
    assert_eq!(testkit::lines::check_lines(err.as_bytes(), 20).unwrap(), vec![1, 2, 3]);
}

#[test]
fn a_partial_line_at_a_crash_is_closed_not_glued_to_the_next_run() {
    let cfg = format!(
        r#"
[programs.torn]
command = {cmd}
restart_delay = "1ms"
max_restarts = 1
"#,
        cmd = child_cmd(&["--partial", "half a line", "--exit", "1"])
    );
    let s = Steward::start(&cfg);
    s.wait_log_line(&["torn", "gave up"]);
    s.shutdown();
    let out = std::fs::read_to_string(s.log_dir().join("torn.out.log")).unwrap();
    assert_eq!(out, "half a line\nhalf a line\n");
}

#[test]
fn a_million_lines_through_a_1mb_rotation_arrive_exactly_once_in_order() {
    const N: u64 = 1_000_000;
    const LEN: usize = 64;
    let cfg = format!(
        r#"
[programs.firehose]
command = {cmd}
restart = "never"

[programs.firehose.log]
max_size = "1MB"
keep = 1000
"#,
        cmd = child_cmd(&["--write-lines", &N.to_string(), "--line-len", &LEN.to_string()])
    );
    let s = Steward::start(&cfg);
    s.wait_log_line(&["firehose", "exit code 0"]);
    // Shutdown waits for the log pumps to drain.
    s.shutdown();
    let mut files: Vec<_> = std::fs::read_dir(s.log_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("firehose.out.log"))
        .collect();
    // Rotated files sort oldest first by name; the live file is the newest.
    files.sort();
    let live = s.log_dir().join("firehose.out.log");
    files.retain(|p| p != &live);
    files.push(live);
    assert!(files.len() >= 60, "expected ~64 files of 1 MB, got {}", files.len());
    let mut next = 1u64;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        assert!(data.len() as u64 <= 1_000_000, "{} is over max_size", f.display());
        let numbers =
            testkit::lines::check_lines(&data, LEN).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for n in numbers {
            assert_eq!(n, next, "in {}", f.display());
            next += 1;
        }
    }
    assert_eq!(next - 1, N, "lines captured");
}

#[test]
fn sigterm_stops_everything_and_exits_zero() {
    let cfg = format!(
        r#"
[programs.a]
command = {cmd}

[programs.b]
command = {cmd}
"#,
        cmd = child_cmd(&["--trap-term", "--print-ready", "--sleep", "1h"])
    );
    let s = Steward::start(&cfg);
    let a = s.wait_log_line(&["program=a", "started"]);
    let b = s.wait_log_line(&["program=b", "started"]);
    s.shutdown();
    assert!(!pid_alive(pid_in(&a)) && !pid_alive(pid_in(&b)));
    assert!(s.log().contains("all programs stopped"));
}

#[cfg(target_os = "linux")]
#[test]
fn programs_die_with_a_supervisor_killed_by_sigkill() {
    let cfg = format!(
        r#"
[programs.orphan]
command = {cmd}
"#,
        cmd = child_cmd(&["--ignore-term", "--sleep", "1h"])
    );
    let s = Steward::start(&cfg);
    let line = s.wait_log_line(&["orphan", "started"]);
    let pid = pid_in(&line);
    s.daemon.signal(libc::SIGKILL);
    s.daemon.wait_exit(DEADLINE);
    wait_gone(pid, "the program of a killed supervisor");
}

#[cfg(target_os = "linux")]
#[test]
fn restarted_children_leave_no_zombies() {
    let cfg = format!(
        r#"
[programs.blinker]
command = {cmd}
restart = "always"
restart_delay = "1ms"
restart_max_delay = "1ms"
max_restarts = 20
"#,
        cmd = child_cmd(&["--append-start", "starts.txt"])
    );
    let s = Steward::start(&cfg);
    // Fatal is logged after the last exit was reaped: no child may be left a zombie.
    s.wait_log_line(&["blinker", "gave up"]);
    assert_eq!(line_count(&s.path("starts.txt")), 21);
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit(") ").next().unwrap_or("");
            let mut f = after.split(' ');
            let state = f.next();
            let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            state == Some("Z") && ppid == s.daemon.pid()
        })
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    s.shutdown();
}

#[test]
fn json_log_format_gives_json_lines() {
    let cfg = format!(
        r#"
[programs.j]
command = {cmd}
restart = "never"
"#,
        cmd = child_cmd(&["--exit", "0"])
    );
    let s = Steward::start_with(&cfg, &["--log-format", "json"]);
    s.wait_log_line(&["\"program\":\"j\"", "exited"]);
    s.shutdown();
    let mut seen_event = false;
    for line in s.log().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        if v["program"] == "j" && v["event"] == "exited" {
            seen_event = true;
        }
    }
    assert!(seen_event, "{}", s.log());
}
