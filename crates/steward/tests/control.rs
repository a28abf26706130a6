//! End to end: every control verb as a real CLI process against a real daemon.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use crate::supervise::order_of;

use crate::common::*;

fn cli(s: &Steward, args: &[&str]) -> Output {
    s.cli(args)
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", testkit::describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn program<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["programs"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()
}

fn sleeper_config() -> String {
    format!(
        r#"
[programs.web]
command = {sleep}
depends_on = ["db"]

[programs.db]
command = {sleep}

[programs.batch]
command = ["/nonexistent/batch-binary"]
autostart = false
restart = "never"
"#,
        sleep = child_cmd(&["--trap-term", "--sleep", "1h"]),
    )
}

#[test]
fn status_start_stop_restart_round_trip() {
    let s = start(&sleeper_config());
    s.wait_api();
    s.wait_for("web", "started");

    let table = ok(&cli(&s, &["status"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATE") && lines[0].contains("RESTARTS"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("web") && l.contains("running")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("batch") && l.contains("stopped")), "{table}");

    let st = s.status();
    let web_pid = program(&st, "web")["pid"].as_u64().unwrap() as u32;
    assert_eq!(program(&st, "web")["state"], "running");
    assert!(program(&st, "web")["uptime_secs"].as_f64().is_some());

    // stop returns once the program is down.
    let out = ok(&cli(&s, &["stop", "web"]));
    assert!(out.contains("web: stopped"), "{out}");
    assert!(!pid_alive(web_pid));
    assert_eq!(program(&s.status(), "web")["state"], "stopped");

    // start returns once it runs, with its new pid.
    let out = ok(&cli(&s, &["start", "web"]));
    assert!(out.contains("web: running (pid "), "{out}");
    let new_pid = program(&s.status(), "web")["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, web_pid);

    // restart: a new process.
    ok(&cli(&s, &["restart", "web"]));
    let restarted = program(&s.status(), "web")["pid"].as_u64().unwrap() as u32;
    assert_ne!(restarted, new_pid);
    assert!(!pid_alive(new_pid));

    // A start that fails says which state it reached, and exits 1.
    let out = cli(&s, &["start", "batch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("batch did not start") && err.contains("exited") && err.contains("was not found"),
        "{err}"
    );

    // Unknown names are an error, not a silent no-op.
    let out = cli(&s, &["stop", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no program named \"nope\""));

    // stop --all goes in reverse dependency order.
    let before = s.events().len();
    ok(&cli(&s, &["stop", "--all"]));
    let st = s.status();
    for p in st["programs"].as_array().unwrap() {
        assert!(["stopped", "exited"].contains(&p["state"].as_str().unwrap()), "{p}");
    }
    assert_eq!(
        order_of(&s.events()[before..], "stopped"),
        ["web", "db"],
        "web must stop before db\n{}",
        s.log()
    );

    // shutdown returns once steward is gone.
    let out = ok(&cli(&s, &["shutdown"]));
    assert!(out.contains("steward stopped"));
    assert!(s.daemon().wait_exit(DEADLINE).success(), "{}", s.daemon().dump());
}

/// The table `steward status` prints is the daemon's (`Accept: text/plain`), and it is the
/// table the CLI makes from the JSON, which stays the answer to any other request.
#[test]
fn the_status_table_comes_from_the_daemon_and_matches_the_json() {
    // Nothing runs, so no uptime moves between the two requests.
    let s = start(&format!(
        "[programs.web]\ncommand = {sleep}\nautostart = false\n\n[programs.batch]\ncommand = [\"/nonexistent/b\"]\nautostart = false\n",
        sleep = child_cmd(&["--sleep", "1h"]),
    ));
    s.wait_api();
    let table = ok(&cli(&s, &["status"]));
    let json: steward::protocol::StatusReply =
        serde_json::from_str(&ok(&cli(&s, &["status", "--json"]))).unwrap();
    assert_eq!(table, steward::protocol::status_table(&json));
    assert!(table.lines().any(|l| l.starts_with("web") && l.contains("stopped")), "{table}");

    #[cfg(unix)]
    {
        use std::io::{Read, Write};
        let get = |accept: &str| {
            let mut conn = std::os::unix::net::UnixStream::connect(s.path(".steward/steward.sock")).unwrap();
            conn.set_read_timeout(Some(DEADLINE)).unwrap();
            write!(conn, "GET /v1/status HTTP/1.1\r\nHost: steward\r\n{accept}Connection: close\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            conn.read_to_string(&mut reply).unwrap();
            reply
        };
        let text = get("Accept: text/plain\r\n");
        assert!(text.to_lowercase().contains("content-type: text/plain; charset=utf-8"), "{text}");
        assert!(text.ends_with(&table), "{text}");
        for accept in ["", "Accept: */*\r\n", "Accept: application/json\r\n"] {
            let reply = get(accept);
            assert!(reply.to_lowercase().contains("content-type: application/json"), "{accept:?}: {reply}");
        }
    }
}

#[test]
fn a_cli_without_a_daemon_says_so_and_exits_3() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steward.toml");
    std::fs::write(&cfg, "[programs.a]\ncommand = \"sleep 1\"\n").unwrap();
    let out = Command::new(STEWARD).arg("-c").arg(&cfg).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // It names the endpoint it tried: a socket in the state dir, or a pipe named after it.
    assert!(err.contains("no steward is running") && err.contains("steward"), "{err}");
}

#[test]
fn reload_applies_only_the_difference() {
    let keep = child_cmd(&["--sleep", "1h"]);
    let before = format!(
        r#"
[programs.keep]
command = {keep}

[programs.edit]
command = {keep}

[programs.gone]
command = {keep}
"#
    );
    let s = start(&before);
    s.wait_api();
    for n in ["keep", "edit", "gone"] {
        s.wait_for(n, "started");
    }
    let st = s.status();
    let pid = |st: &serde_json::Value, n: &str| program(st, n)["pid"].as_u64().unwrap();
    let (keep_pid, edit_pid, gone_pid) = (pid(&st, "keep"), pid(&st, "edit"), pid(&st, "gone"));

    let after = format!(
        r#"
[programs.keep]
command = {keep}

[programs.edit]
command = {keep}
env = {{ CHANGED = "yes" }}

[programs.fresh]
command = {keep}
"#
    );
    std::fs::write(s.path("steward.toml"), after).unwrap();
    let out = ok(&cli(&s, &["reload", "--json"]));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["added"], serde_json::json!(["fresh"]));
    assert_eq!(r["removed"], serde_json::json!(["gone"]));
    assert_eq!(r["changed"], serde_json::json!(["edit"]));
    assert_eq!(r["unchanged"], serde_json::json!(["keep"]));

    s.wait_for("fresh", "started");
    let st = wait_until(DEADLINE, "edit to run again", || {
        let st = s.status();
        (program(&st, "edit")["state"] == "running").then_some(st)
    });
    assert_eq!(pid(&st, "keep"), keep_pid, "an unchanged program keeps its pid");
    assert_ne!(pid(&st, "edit"), edit_pid, "a changed program restarts");
    assert!(st["programs"].as_array().unwrap().iter().all(|p| p["name"] != "gone"));
    assert!(!pid_alive(gone_pid as u32), "a removed program is stopped");
    assert!(!pid_alive(edit_pid as u32));
    s.shutdown();
}

#[test]
fn a_broken_config_is_rejected_and_nothing_changes() {
    let s = start(&format!("[programs.a]\ncommand = {}\n", child_cmd(&["--sleep", "1h"])));
    s.wait_api();
    let pid = s.wait_started("a");
    std::fs::write(s.path("steward.toml"), "[programs.a]\ncomand = \"sleep 1\"\nrestart = \"sometimes\"\n")
        .unwrap();
    let out = cli(&s, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // Every error, with file:line:col.
    assert!(err.contains("steward.toml:2:1") && err.contains("comand"), "{err}");
    assert!(err.contains("steward.toml:3:11") && err.contains("sometimes"), "{err}");
    assert!(s.events().iter().any(|e| e.is_daemon("reload-rejected")), "{}", s.log());
    let st = s.status();
    assert_eq!(program(&st, "a")["pid"].as_u64(), Some(pid as u64));
    assert!(pid_alive(pid));
    s.shutdown();
}

#[test]
fn watch_config_reloads_when_the_file_changes() {
    let body = |extra: &str| {
        format!(
            "[supervisor]\nwatch_config = true\n[programs.a]\ncommand = {c}\n{extra}",
            c = child_cmd(&["--sleep", "1h"])
        )
    };
    let s = start(&body(""));
    s.wait_api();
    s.wait_for("a", "started");
    let extra = format!("[programs.b]\ncommand = {}\n", child_cmd(&["--sleep", "1h"]));
    std::fs::write(s.path("steward.toml"), body(&extra)).unwrap();
    s.wait_for("b", "started");
    s.shutdown();
}

#[test]
fn a_second_instance_is_refused_and_a_stale_lock_is_taken_over() {
    let cfg = format!("[programs.a]\ncommand = {}\n", child_cmd(&["--sleep", "1h"]));
    let s = start(&cfg);
    s.wait_api();
    let second = Command::new(STEWARD)
        .args(["run", "-c"])
        .arg(s.path("steward.toml"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("pid {}", s.daemon().pid())) && err.contains("already running"), "{err}");

    // Killed hard: the lock (and on Unix the socket) is left behind. The next run takes it over.
    s.daemon().kill();
    s.daemon().wait_exit(DEADLINE);
    let again = s.run_again();
    again.wait_for_output(
        "the new steward to take over the lock",
        |out| testkit::parse_events(out).iter().any(|e| e.is_daemon("lock")),
        DEADLINE,
    );
    // The new steward's API (`s.wait_api` would watch the killed one).
    again.wait_for_output(
        "the new steward's API",
        |out| testkit::parse_events(out).iter().any(|e| e.is_daemon("api")),
        DEADLINE,
    );
    assert_eq!(s.status()["programs"][0]["name"], "a");
    ok(&cli(&s, &["shutdown"]));
    assert!(again.wait_exit(DEADLINE).success(), "{}", again.dump());
}

#[test]
fn logs_tail_and_follow_across_rotation() {
    // Each run writes a ready line and 300 lines of 100 bytes into 4 KB files: ~8 rotations.
    let cfg = format!(
        r#"
[programs.talker]
command = {c}
autostart = false
restart = "never"

[programs.talker.log]
max_size = "4KB"
keep = 100
"#,
        c = child_cmd(&["--print-ready", "--write-lines", "300", "--line-len", "100"])
    );
    let s = start(&cfg);
    s.wait_api();
    let first = cli(&s, &["start", "talker"]);
    assert!(first.status.code() == Some(0) || first.status.code() == Some(1));
    assert_eq!(s.wait_for("talker", "exited").exit_code.as_deref(), Some("exit code 0"));
    let rotated = || {
        std::fs::read_dir(s.log_dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("talker.out.log."))
            .count()
    };
    // Under Wine a rename of the just-closed live file sometimes fails, and steward then
    // keeps writing it and tries again later (its documented fallback): the count is checked
    // where renames cannot fail that way; that no line is lost or repeated, everywhere. The
    // exit comes before the log pump has written the last of the pipe, so wait for them.
    if cfg!(unix) {
        testkit::wait_until_or_dump(
            DEADLINE,
            "5 rotations during the first run",
            || s.daemon().dump(),
            || (rotated() >= 5).then_some(()),
        );
    }
    let after_first = rotated();
    // The tail of the finished log comes from the live file and the rotated ones.
    let out = ok(&cli(&s, &["logs", "talker", "-n", "2"]));
    assert_eq!(testkit::lines::check_lines(out.as_bytes(), 100).unwrap(), vec![299, 300]);

    let mut follow = Command::new(STEWARD)
        .arg("-c")
        .arg(s.path("steward.toml"))
        .args(["logs", "talker", "-f", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // The tail line arrived, so the follower is subscribed: run again.
    assert!(line.starts_with("0000000300 "), "{line:?}");
    cli(&s, &["start", "talker"]);
    let mut seen = Vec::new();
    while seen.len() < 301 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(line.clone());
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen[0].starts_with("ready pid="), "{:?}", &seen[..3.min(seen.len())]);
    let body: String = seen[1..].concat();
    let numbers = testkit::lines::check_lines(body.as_bytes(), 100).unwrap();
    assert_eq!(numbers, (1..=300).collect::<Vec<u64>>(), "every line once, in order");
    let after_second = rotated();
    if cfg!(unix) {
        assert!(after_second > after_first, "no rotation while followed: {after_first} then {after_second}");
    }
    s.shutdown();
}

#[test]
fn events_show_state_changes_as_lines_or_json() {
    let s = start(&format!("[programs.a]\ncommand = {}\nrestart = \"never\"\n", child_cmd(&["--exit", "6"])));
    s.wait_api();
    assert_eq!(s.wait_for("a", "exited").exit_code.as_deref(), Some("exit code 6"));
    let out = ok(&cli(&s, &["events"]));
    assert!(out.lines().any(|l| l.contains("running -> exited") && l.contains("exit code 6")), "{out}");
    let json = ok(&cli(&s, &["events", "--json"]));
    let last: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(last["program"], "a");
    assert_eq!(last["to"], "exited");
    assert_eq!(last["exit"]["code"], 6);
    s.shutdown();
}
