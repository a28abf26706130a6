//! steward and Unix signals: SIGTERM stops it in order, SIGHUP reloads, SIGKILL leaves no
//! program behind (Linux) and no zombie. Everything else stops steward through its API.

use crate::common::*;

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
    let s = start(&cfg);
    let (a, b) = (s.wait_started("a"), s.wait_started("b"));
    s.daemon().signal(libc::SIGTERM);
    let status = s.daemon().wait_exit(DEADLINE);
    assert!(status.success(), "steward exited with {status}\n{}", s.daemon().dump());
    assert!(!pid_alive(a) && !pid_alive(b));
    // Both stopped on the way out, and steward said it was done.
    assert_eq!(s.events_of("a", "stopped").len() + s.events_of("b", "stopped").len(), 2, "{}", s.log());
    assert!(s.events().iter().any(|e| e.is_daemon("exit")), "{}", s.log());
}

// Linux: programs get PR_SET_PDEATHSIG; /proc shows zombies.
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
    let s = start(&cfg);
    let pid = s.wait_started("orphan");
    s.daemon().signal(libc::SIGKILL);
    s.daemon().wait_exit(DEADLINE);
    wait_gone(pid, "the program of a killed supervisor");
}

// Linux: programs get PR_SET_PDEATHSIG; /proc shows zombies.
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
    let s = start(&cfg);
    // Fatal is logged after the last exit was reaped: no child may be left a zombie.
    s.wait_for("blinker", "fatal");
    assert_eq!(line_count(&s.path("starts.txt")), 21);
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit(") ").next().unwrap_or("");
            let mut f = after.split(' ');
            let state = f.next();
            let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            state == Some("Z") && ppid == s.daemon().pid()
        })
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    s.shutdown();
}

#[test]
fn sighup_reloads() {
    let s = start(&format!("[programs.a]\ncommand = {}\n", child_cmd(&["--sleep", "1h"])));
    s.wait_api();
    s.wait_for("a", "started");
    let more = format!(
        "[programs.a]\ncommand = {c}\n[programs.b]\ncommand = {c}\n",
        c = child_cmd(&["--sleep", "1h"])
    );
    std::fs::write(s.path("steward.toml"), more).unwrap();
    s.daemon().signal(libc::SIGHUP);
    s.wait_for("b", "started");
    let reload = s.events().into_iter().find(|e| e.is_daemon("reload")).expect("a reload event");
    assert!(reload.message.contains("SIGHUP"), "{reload:?}");
    s.shutdown();
}
