//! Nothing a program started outlives its stop, or a `kill -9` of steward once the next
//! steward has started: with a cgroup per program (steward runs as root here, so it can make
//! them) and with process groups alone (forced by a real condition: steward started in a
//! cgroup that may have no children).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use testkit::{parse_events, Daemon};

use crate::common::*;

/// Whether this test process may make cgroups: the cgroup tests need root (or a delegated
/// cgroup). Without, they say so and check nothing.
fn cgroups_here() -> Option<PathBuf> {
    let dir = own_cgroup()?.join(format!("steward-test-probe-{}", std::process::id()));
    let made = std::fs::create_dir(&dir).is_ok() && dir.join("cgroup.kill").exists();
    let _ = std::fs::remove_dir(&dir);
    if !made {
        eprintln!("skipped: this user cannot make cgroups here");
    }
    made.then(|| own_cgroup().unwrap())
}

/// This process's cgroup2 directory (the cgroup2 mount is at /sys/fs/cgroup or, on a hybrid
/// system, /sys/fs/cgroup/unified).
fn own_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_owned();
    let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|m| Path::new(m).join("cgroup.controllers").exists())?;
    Some(Path::new(mount).join(own.trim_start_matches('/')))
}

/// A word no other test's processes have in their command line.
fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("mark-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The live processes whose command line holds `word`.
fn processes_with(word: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(word))
        })
        .filter(|&pid| pid_alive(pid))
        .collect()
}

/// steward started inside a cgroup of the test's that may have no children, so steward
/// cannot make its own and falls back to process groups. Removed on drop.
struct NoChildCgroups(PathBuf);

impl NoChildCgroups {
    fn new(parent: &Path) -> NoChildCgroups {
        let dir = parent.join(format!("steward-test-{}", marker()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cgroup.max.descendants"), "0").unwrap();
        NoChildCgroups(dir)
    }

    /// `steward run` on `config`, started in this cgroup.
    fn start(&self, config: &str) -> Steward {
        use std::os::unix::ffi::OsStrExt;
        let procs = std::ffi::CString::new(self.0.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
        Steward::start_command(STEWARD, config, &[], move |cmd: &mut Command| {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec, only system calls on a path made before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd == -1 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                    Ok(())
                });
            }
        })
    }
}

impl Drop for NoChildCgroups {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The containment steward says it uses.
fn containment(s: &Steward) -> String {
    s.wait_for_event("the containment event", |e| e.is_daemon("containment")).message
}

/// A program whose grandchild leads a process group of its own and holds the program's
/// stdout open. The grandchild's pidfile is named for `mark`, so `processes_with(mark)` finds
/// it (and the program).
fn escaping_program(mark: &str, end: &[&str]) -> String {
    let pidfile = format!("gc-{mark}.pid");
    let mut args = vec!["--spawn-grandchild", "--grandchild-new-group", "--grandchild-pidfile", &pidfile];
    args.extend_from_slice(end);
    child_cmd(&args)
}

fn grandchild_of(s: &Steward, mark: &str) -> u32 {
    wait_pidfile(&s.path(&format!("gc-{mark}.pid")))
}

#[test]
fn a_grandchild_that_left_the_process_group_dies_at_stop() {
    if cgroups_here().is_none() {
        return;
    }
    let mark = marker();
    let cfg = format!(
        "[programs.daemonizer]\ncommand = {}\n",
        escaping_program(&mark, &["--trap-term", "--print-ready", "--sleep", "1h"])
    );
    let s = start(&cfg);
    assert!(containment(&s).contains("cgroup"), "{}", s.log());
    let grandchild = grandchild_of(&s, &mark);
    s.wait_for("daemonizer", "started");
    let groups = own_cgroup().unwrap().join(format!("steward-{}", s.daemon().pid()));
    assert!(groups.is_dir(), "no {}", groups.display());
    // Returns once steward has exited: the grandchild held the program's stdout open, which
    // kept steward from exiting before it was killed.
    s.shutdown();
    wait_gone(grandchild, "the grandchild in a process group of its own");
    assert!(s.events_of("daemonizer", "output-held").is_empty(), "{}", s.log());
    // The program's group still held the grandchild when its run ended: it was removed
    // once empty, and then steward's own.
    assert!(
        !groups.exists(),
        "{} is left: {:?}",
        groups.display(),
        std::fs::read_dir(&groups).map(|d| d.count())
    );
}

#[test]
fn a_self_daemonizing_program_restarted_always_leaks_no_copies() {
    if cgroups_here().is_none() {
        return;
    }
    let mark = marker();
    let cfg = format!(
        r#"
[programs.forker]
command = {}
restart = "always"
restart_delay = "1ms"
max_restarts = 3
restart_window = "1h"
"#,
        // Each run leaves its grandchild behind and exits, as a daemonizer does.
        escaping_program(&mark, &["--exit", "1"])
    );
    let s = start(&cfg);
    s.wait_for("forker", "fatal");
    assert_eq!(s.events_of("forker", "started").len(), 4, "{}", s.log());
    // Each exit swept the run's cgroup, grandchild included: none of the four is left.
    wait_until(DEADLINE, "no copy of the grandchild left", || processes_with(&mark).is_empty().then_some(()));
    s.shutdown();
}

/// `kill -9` of steward, then a new steward on the same state dir: it sweeps what the first
/// one left (and says so) before it starts the program again.
fn killed_then_swept(s: &Steward, program: &str, left: &[u32]) -> Daemon {
    s.daemon().signal(libc::SIGKILL);
    s.daemon().wait_exit(DEADLINE);
    let again = s.run_again();
    let events = || parse_events(&again.stderr());
    let swept = wait_until(DEADLINE, "the new steward's swept event", || {
        events().into_iter().find(|e| e.is(program, "swept"))
    });
    for &pid in left {
        wait_gone(pid, "a process of the killed steward's program");
    }
    // Swept before the program was started again.
    let order: Vec<String> = events()
        .into_iter()
        .filter(|e| e.program.as_deref() == Some(program))
        .filter_map(|e| e.event)
        .filter(|e| e == "swept" || e == "started")
        .collect();
    assert_eq!(order.first().map(String::as_str), Some("swept"), "{swept:?}\n{}", again.dump());
    again
}

fn shut_down(s: &Steward, again: &Daemon) {
    // The sweep is logged before the new steward's API listens.
    again.wait_for_output(
        "the API to answer `steward status`",
        |_| s.cli(["status"]).status.success(),
        DEADLINE,
    );
    let out = s.cli(["shutdown"]);
    assert!(out.status.success(), "{}", again.dump());
    assert!(again.wait_exit(DEADLINE).success(), "{}", again.dump());
}

#[test]
fn after_kill_9_the_next_steward_ends_what_the_cgroup_held() {
    if cgroups_here().is_none() {
        return;
    }
    let mark = marker();
    let cfg = format!(
        "[programs.left]\ncommand = {}\n",
        escaping_program(&mark, &["--print-ready", "--sleep", "1h"])
    );
    let s = start(&cfg);
    assert!(containment(&s).contains("cgroup"), "{}", s.log());
    let grandchild = grandchild_of(&s, &mark);
    s.wait_for("left", "started");
    let again = killed_then_swept(&s, "left", &[grandchild]);
    shut_down(&s, &again);
}

#[test]
fn after_kill_9_the_next_steward_ends_the_recorded_process_group() {
    let Some(own) = cgroups_here() else { return };
    let no_cgroups = NoChildCgroups::new(&own);
    // The grandchild stays in the program's group; PR_SET_PDEATHSIG does not cover it.
    let cfg = format!(
        "[programs.left]\ncommand = {}\n",
        child_cmd(&[
            "--spawn-grandchild",
            "--grandchild-pidfile",
            "gc.pid",
            "--print-ready",
            "--sleep",
            "1h"
        ])
    );
    let s = no_cgroups.start(&cfg);
    assert!(containment(&s).contains("process groups only"), "{}", s.log());
    let grandchild = wait_pidfile(&s.path("gc.pid"));
    s.wait_for("left", "started");
    let again = killed_then_swept(&s, "left", &[grandchild]);
    shut_down(&s, &again);
}

#[test]
fn after_kill_9_a_program_that_changed_its_user_is_ended_too() {
    let Some(own) = cgroups_here() else { return };
    // The kernel clears PR_SET_PDEATHSIG when a process changes its uid: the record's group
    // and start time are what find it (process groups only, to test that path).
    let no_cgroups = NoChildCgroups::new(&own);
    let cfg = format!(
        "[programs.dropped]\ncommand = [\"setpriv\", \"--reuid=nobody\", \"--regid=nogroup\", \
         \"--clear-groups\", {}, \"--sleep\", \"1h\"]\n",
        q(testchild().display().to_string())
    );
    let s = no_cgroups.start(&cfg);
    let pid = s.wait_started("dropped");
    // setpriv execs the child: same pid, now nobody's.
    wait_until(DEADLINE, "the program to run as nobody", || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().any(|l| l.starts_with("Uid:\t65534")).then_some(())
    });
    let again = killed_then_swept(&s, "dropped", &[pid]);
    shut_down(&s, &again);
}

#[test]
fn without_cgroups_an_escaped_grandchild_does_not_hold_the_shutdown() {
    let Some(own) = cgroups_here() else { return };
    let no_cgroups = NoChildCgroups::new(&own);
    let mark = marker();
    let cfg = format!(
        "[programs.daemonizer]\ncommand = {}\n",
        escaping_program(&mark, &["--trap-term", "--print-ready", "--sleep", "1h"])
    );
    let s = no_cgroups.start(&cfg);
    let grandchild = grandchild_of(&s, &mark);
    s.wait_for("daemonizer", "started");
    // Without a cgroup nothing finds a process that left the group: it survives the stop
    // (docs/architecture.md, "Processes"), but steward stops reading its output and exits.
    s.shutdown();
    assert_eq!(s.events_of("daemonizer", "output-held").len(), 1, "{}", s.log());
    // SAFETY: plain system call on the test's own grandchild.
    unsafe { libc::kill(grandchild as libc::pid_t, libc::SIGKILL) };
    wait_gone(grandchild, "the escaped grandchild");
}
