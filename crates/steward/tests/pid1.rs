//! steward as PID 1 of a fresh PID namespace, as in a container (`unshare --pid --fork
//! --mount-proc`): it reaps orphans that are not its programs, SIGTERM stops the programs in
//! reverse dependency order and exits 0, a program killed at shutdown makes it exit 5, SIGHUP
//! reloads, and `--mirror` copies the programs' lines to stdout.
//!
//! The namespace's PID 1 is seen from the host: it is the child of the `unshare` process, and
//! its descendants' host pids are found in the host's /proc (their `NSpid` line and pid
//! namespace). Needs root and `unshare` (util-linux); skipped with a message elsewhere, and a
//! failure instead when `STEWARD_TEST_REQUIRE` names `pid1` (CI).

use crate::common::*;

/// `unshare`, with the namespace's PID 1 killed if `unshare` itself dies (a failed test's
/// harness kills it), so nothing outlives the test.
const UNSHARE: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// A `steward run` that is PID 1 of its own PID namespace.
struct Pid1 {
    s: Steward,
    /// The host pid of the namespace's PID 1 (steward's init).
    init: u32,
}

impl Pid1 {
    /// Starts steward under [`UNSHARE`] on `config`, or `None` (with a message) when this
    /// machine cannot make a PID namespace and the test is not required.
    #[track_caller]
    fn start(config: &str, extra_args: &[&str]) -> Option<Pid1> {
        if !can_unshare() {
            return None;
        }
        let s = Steward::start_wrapped(UNSHARE, STEWARD, config, extra_args);
        let unshare = s.daemon().pid();
        let init = wait_until(DEADLINE, "the namespace's PID 1 (the child of unshare)", || {
            host_pids().into_iter().find(|&p| stat(p).is_some_and(|st| st.ppid == unshare))
        });
        assert_eq!(ns_pid(init), Some(1), "steward is not PID 1 of its namespace\n{}", s.daemon().dump());
        Some(Pid1 { s, init })
    }

    fn signal(&self, signal: i32) {
        // SAFETY: plain system call.
        let r = unsafe { libc::kill(self.init as libc::pid_t, signal) };
        assert_eq!(r, 0, "kill({}, {signal}): {}", self.init, std::io::Error::last_os_error());
    }

    /// The host pid of the process whose pid is `pid` inside the namespace.
    fn host_pid(&self, pid: u32) -> Option<u32> {
        let ns = pid_ns(self.init)?;
        host_pids().into_iter().find(|&p| ns_pid(p) == Some(pid) && pid_ns(p).as_ref() == Some(&ns))
    }

    /// Waits for steward (and `unshare`, which passes its PID 1's status on) to exit, and
    /// returns the exit code.
    #[track_caller]
    fn wait_exit(&self) -> i32 {
        let status = self.s.daemon().wait_exit(DEADLINE);
        status.code().unwrap_or_else(|| panic!("ended by a signal: {status}\n{}", self.s.daemon().dump()))
    }
}

/// Whether a PID namespace can be made here; panics instead of skipping when the test is
/// required (`STEWARD_TEST_REQUIRE=pid1`).
fn can_unshare() -> bool {
    let out = std::process::Command::new(UNSHARE[0]).args(&UNSHARE[1..]).arg("true").output();
    let error = match out {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => e.to_string(),
    };
    let required = std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "pid1"));
    assert!(!required, "a PID namespace (unshare, as root) is required (STEWARD_TEST_REQUIRE): {error}");
    eprintln!("skipped: cannot run `unshare --pid --fork --mount-proc` here (needs root): {error}");
    false
}

/// What /proc/PID/stat says of a process.
struct Stat {
    ppid: u32,
    state: char,
}

/// `None` once the process is gone (reaped, not merely a zombie).
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces: the fields start after the last ')'.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat { ppid, state })
}

fn host_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The process's pid in its own (innermost) namespace: the last field of `NSpid`.
fn ns_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn pid_ns(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Index in `events` of the first event for which `pred` holds.
fn index_of(events: &[LogEvent], what: &str, pred: impl Fn(&LogEvent) -> bool) -> usize {
    events.iter().position(pred).unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

#[test]
fn an_orphan_that_exits_is_reaped_by_pid1() {
    let dir = tempfile::tempdir().unwrap();
    let (pidfile, go) = (dir.path().join("orphan.pid"), dir.path().join("orphan.go"));
    let (pidfile_s, go_s) = (pidfile.to_str().unwrap(), go.to_str().unwrap());
    // The program starts a helper that detaches (its parent exits at once), as daemons do; the
    // program itself keeps running, so steward sweeps nothing.
    let cfg = format!(
        "[programs.spawner]\ncommand = {}\n",
        child_cmd(&[
            "--spawn-grandchild",
            "--grandchild-orphan",
            "--grandchild-pidfile",
            pidfile_s,
            "--grandchild-await",
            go_s,
            "--print-ready",
            "--sleep",
            "1h",
        ])
    );
    let Some(p) = Pid1::start(&cfg, &[]) else { return };
    p.s.wait_started("spawner");
    let orphan_ns = wait_pidfile(&pidfile);
    let orphan = wait_until(DEADLINE, "the orphan's host pid", || p.host_pid(orphan_ns));
    // It was reparented to PID 1, and is alive.
    wait_until(DEADLINE, "the orphan to be a child of the namespace's PID 1", || {
        stat(orphan).filter(|st| st.ppid == p.init && st.state != 'Z').map(drop)
    });

    std::fs::write(&go, "").unwrap();
    // Gone from /proc altogether: reaped, not left a zombie.
    wait_until(DEADLINE, &format!("the orphan (host pid {orphan}) to exit and be reaped"), || {
        stat(orphan).is_none().then_some(())
    });

    // The program steward supervises was not touched by the init's reaping.
    assert!(p.s.events_of("spawner", "exited").is_empty(), "{}", p.s.log());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(), 0, "{}", p.s.daemon().dump());
}

#[test]
fn sigterm_to_pid1_stops_in_reverse_dependency_order_and_exits_0() {
    let cmd = child_cmd(&["--trap-term", "--print-ready", "--sleep", "1h"]);
    let cfg = format!(
        r#"
[programs.db]
command = {cmd}

[programs.web]
command = {cmd}
depends_on = ["db"]
"#
    );
    let Some(p) = Pid1::start(&cfg, &[]) else { return };
    let (db, web) = (p.s.wait_started("db"), p.s.wait_started("web"));
    let (db_host, web_host) = (p.host_pid(db).unwrap(), p.host_pid(web).unwrap());

    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(), 0, "{}", p.s.daemon().dump());
    let events = p.s.events();
    let web_stopped = index_of(&events, "web stopped", |e| e.is("web", "stopped"));
    let db_stopping = index_of(&events, "db stopping", |e| {
        e.program.as_deref() == Some("db") && e.to.as_deref() == Some("stopping")
    });
    let db_stopped = index_of(&events, "db stopped", |e| e.is("db", "stopped"));
    assert!(web_stopped < db_stopping && db_stopping < db_stopped, "{events:#?}");
    // Each stopped on its own SIGTERM (they trap it and exit 0), none was killed.
    for name in ["web", "db"] {
        let stopped = &p.s.events_of(name, "stopped")[0];
        assert_eq!(stopped.exit_code.as_deref(), Some("exit code 0"), "{stopped:?}");
    }
    assert!(stat(p.init).is_none() && stat(db_host).is_none() && stat(web_host).is_none());
}

#[test]
fn a_program_killed_at_shutdown_makes_pid1_exit_5() {
    let cfg = format!(
        r#"
[programs.stubborn]
command = {}
stop_timeout = "300ms"

[programs.polite]
command = {}
"#,
        child_cmd(&["--ignore-term", "--print-ready", "--sleep", "1h"]),
        child_cmd(&["--trap-term", "--print-ready", "--sleep", "1h"]),
    );
    let Some(p) = Pid1::start(&cfg, &[]) else { return };
    p.s.wait_started("stubborn");
    p.s.wait_started("polite");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(), 5, "{}", p.s.daemon().dump());
    assert_eq!(p.s.events_of("stubborn", "stop-timeout").len(), 1, "{}", p.s.log());
    assert!(p.s.events_of("polite", "stop-timeout").is_empty(), "{}", p.s.log());
    let stopped = &p.s.events_of("stubborn", "stopped")[0];
    assert_eq!(stopped.exit_code.as_deref(), Some("signal 9"), "{stopped:?}");
}

#[test]
fn sighup_to_pid1_reloads() {
    let cmd = child_cmd(&["--trap-term", "--print-ready", "--sleep", "1h"]);
    let cfg = format!("[programs.a]\ncommand = {cmd}\n");
    let Some(p) = Pid1::start(&cfg, &[]) else { return };
    p.s.wait_started("a");
    std::fs::write(p.s.config_path(), format!("{cfg}\n[programs.b]\ncommand = {cmd}\n")).unwrap();
    p.signal(libc::SIGHUP);
    p.s.wait_started("b");
    // A reload, not a restart: `a` kept its process.
    assert_eq!(p.s.events_of("a", "started").len(), 1, "{}", p.s.log());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(), 0, "{}", p.s.daemon().dump());
}

/// `--mirror` with `--log-format json` as PID 1: each line of each stream is one JSON object
/// on steward's stdout, the program's lines in order; steward's own log stays on stderr.
#[test]
fn mirror_as_json_on_stdout() {
    let cfg = format!(
        r#"
[programs.out]
command = {}

[programs.web]
command = {}
instances = 2
"#,
        child_cmd(&["--write-lines", "50", "--print-ready", "--sleep", "1h"]),
        child_cmd(&["--write-lines", "3", "--stderr", "--print-ready", "--sleep", "1h"]),
    );
    let Some(p) = Pid1::start(&cfg, &["--mirror"]) else { return };
    let mirrored = |program: &str, stream: &str| -> Vec<String> {
        let stdout = p.s.daemon().stdout();
        stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .filter(|v| v["program"] == program && v["stream"] == stream)
            .map(|v| v["line"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected_out: Vec<String> = (1..=50)
        .map(|n| String::from_utf8(testkit::lines::line(n, 64)).unwrap().trim_end().to_owned())
        .collect();
    wait_until(DEADLINE, "out's ready line and 50 lines on stdout", || {
        (mirrored("out", "stdout").len() == 51).then_some(())
    });
    let out = mirrored("out", "stdout");
    // The ready line comes first (the test child prints it before writing lines).
    assert!(out[0].starts_with("ready pid="), "{out:?}");
    assert_eq!(out[1..], expected_out[..], "{}", p.s.daemon().dump());
    for instance in ["web:0", "web:1"] {
        wait_until(DEADLINE, &format!("{instance}'s stderr lines on stdout"), || {
            (mirrored(instance, "stderr").len() == 3).then_some(())
        });
        assert_eq!(mirrored(instance, "stderr"), expected_out[..3], "{instance}");
    }
    // steward's own events are on stderr, not mixed in.
    assert!(p.s.daemon().stdout().lines().all(|l| !l.contains("\"level\"")), "{}", p.s.daemon().stdout());
    // The log files have the lines too.
    let file = std::fs::read_to_string(p.s.log_dir().join("out.out.log")).unwrap();
    assert_eq!(file.lines().count(), 51, "{file}");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(), 0, "{}", p.s.daemon().dump());
}

/// `--mirror` in steward's usual form (not PID 1, human log): `NAME | line`.
#[test]
fn mirror_prefixes_each_line_with_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("steward.toml");
    let cfg = format!(
        "[programs.talker]\ncommand = {}\n",
        child_cmd(&["--write-lines", "2", "--partial", "no newline", "--exit", "0"])
    );
    std::fs::write(&config, cfg).unwrap();
    let mut cmd = std::process::Command::new(STEWARD);
    cmd.arg("run").arg("-c").arg(&config).env("STEWARD_MIRROR", "1");
    let d = testkit::Daemon::from_command(cmd, dir.path());
    let line = |n| String::from_utf8(testkit::lines::line(n, 64)).unwrap();
    let expected = format!("talker | {}talker | {}talker | no newline\n", line(1), line(2));
    wait_until(DEADLINE, "the mirrored lines on stdout", || (d.stdout() == expected).then_some(()));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(DEADLINE).success(), "{}", d.dump());
    assert!(dir.path().join(".steward/logs/talker.out.log").exists());
}
