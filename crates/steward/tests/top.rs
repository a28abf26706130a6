//! `steward top` in a real terminal: tmux runs a shell in a detached session of its own
//! server, the test types into it (`send-keys`) and reads the screen (`capture-pane`), against
//! a real steward, and checks through the API what the keys did.
//!
//! Needs tmux: skipped when it is missing, unless `STEWARD_TEST_REQUIRE=tmux` (as in CI),
//! which makes a missing tmux a failure.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::*;
use testkit::describe;

/// Whether tmux is here (or the test may not skip).
fn have_tmux() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    let required = std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "tmux"));
    assert!(
        found || !required,
        "tmux is required (STEWARD_TEST_REQUIRE) but not installed: apt-get install tmux"
    );
    if !found {
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
    }
    found
}

/// The shell's prompt in the pane: how a test sees that the shell has the terminal again.
const PROMPT: &str = "top-test$ ";

/// A tmux server of its own with one session running `sh`, 120x40; killed on drop.
struct Tmux {
    socket: String,
    _dir: testkit::tempfile::TempDir,
}

impl Tmux {
    fn start() -> Tmux {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!("steward-top-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = testkit::tempfile::tempdir().expect("a temp dir");
        // The prompt to look for, set before the first one shows (dash, as root, takes no PS1
        // from the environment, but runs the file $ENV names).
        let profile = dir.path().join("profile.sh");
        std::fs::write(&profile, format!("PS1='{PROMPT}'\n")).unwrap();
        let tmux = Tmux { socket, _dir: dir };
        // The server (hence the shell) takes this environment.
        let out = Command::new("tmux")
            .args([
                "-L",
                &tmux.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "top",
                "-x",
                "120",
                "-y",
                "40",
            ])
            .arg("sh")
            .env("ENV", &profile)
            .env("TERM", "xterm-256color")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {}", describe(&out));
        // (capture-pane drops the blanks at the end of a line)
        tmux.wait_for("the shell's prompt", |screen| screen.lines().any(|l| l == PROMPT.trim_end()));
        tmux
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("run tmux")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(out.status.success(), "tmux {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "top"])
    }

    /// Types `text` and Enter into the shell.
    fn type_line(&self, text: &str) {
        self.ok(&["send-keys", "-t", "top", "-l", text]);
        self.ok(&["send-keys", "-t", "top", "Enter"]);
    }

    /// Presses keys (tmux's names: `j`, `Up`, `C-c`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend(keys);
        self.ok(&args);
    }

    /// `display -p FORMAT`, trimmed.
    fn display(&self, format: &str) -> String {
        self.ok(&["display", "-p", "-t", "top", format]).trim().to_owned()
    }

    /// Waits until the screen satisfies `pred`, and returns it; the failure shows the screen.
    #[track_caller]
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        testkit::wait_until_or_dump(
            DEADLINE,
            what,
            || format!("the pane:\n{}", self.screen()),
            || Some(self.screen()).filter(|s| pred(s)),
        )
    }

    /// Runs `steward top` (with `args` before the verb) in the shell; its exit code is printed
    /// after it as `top exited N`.
    fn run_top(&self, args: &[String]) {
        let words: Vec<String> = std::iter::once(STEWARD.to_owned())
            .chain(args.iter().cloned())
            .chain(["top".to_owned()])
            .map(|w| format!("'{w}'"))
            .collect();
        self.type_line(&format!("{}; echo \"top exited $?\"", words.join(" ")));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The row of process `name` on the screen (the selected one starts with `> `).
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.trim_start_matches("> ").split_whitespace().next() == Some(name))
}

fn row_has(screen: &str, name: &str, text: &str) -> bool {
    row(screen, name).is_some_and(|r| r.contains(text))
}

fn config() -> String {
    let sleeper = child_cmd(&["--print-ready", "--trap-term", "--sleep", "1h"]);
    format!("[programs.api]\ncommand = {sleeper}\n\n[programs.web]\ncommand = {sleeper}\n")
}

/// A steward on [`config`], and `steward top` on it in a fresh tmux, showing both programs.
fn top_on(config: &str) -> Option<(Steward, Tmux)> {
    if !have_tmux() {
        return None;
    }
    let s = start(config);
    s.wait_api();
    let tmux = Tmux::start();
    tmux.run_top(&["-c".into(), s.config_path().to_string_lossy().into_owned()]);
    tmux.wait_for("top to show api and web running", |screen| {
        row_has(screen, "api", "running") && row_has(screen, "web", "running")
    });
    Some((s, tmux))
}

fn state(s: &Steward, name: &str) -> (String, Option<u64>) {
    let p = s.program(name);
    (p["state"].as_str().unwrap_or_default().to_owned(), p["pid"].as_u64())
}

#[test]
fn programs_show_with_their_states_live() {
    let Some((s, tmux)) = top_on(&config()) else { return };
    let screen = tmux.screen();
    assert!(screen.contains("2 processes, 2 running"), "{screen}");
    // Memory from GET /v1/usage?follow=true.
    tmux.wait_for("web's memory", |screen| row_has(screen, "web", "MiB") || row_has(screen, "web", "KiB"));
    // A stop through the API (not through top) shows live.
    s.cli_ok(["stop", "web"]);
    tmux.wait_for("web to show stopped", |screen| row_has(screen, "web", "stopped"));
    let screen = tmux.screen();
    assert!(row_has(&screen, "api", "running"), "{screen}");
    assert!(screen.contains("2 processes, 1 running"), "{screen}");
}

#[test]
fn keys_stop_start_and_restart_the_selected_program() {
    let Some((s, tmux)) = top_on(&config()) else { return };
    // The first row is selected; j moves to web.
    tmux.wait_for("api to be selected", |screen| row(screen, "api").is_some_and(|r| r.starts_with("> ")));
    tmux.keys(&["j"]);
    tmux.wait_for("web to be selected", |screen| row(screen, "web").is_some_and(|r| r.starts_with("> ")));

    tmux.keys(&["x"]);
    wait_until(DEADLINE, "web to stop", || (state(&s, "web").0 == "stopped").then_some(()));
    assert_eq!(state(&s, "api").0, "running");
    tmux.wait_for("the result of the stop", |screen| {
        screen.contains("stop web: stopped") && row_has(screen, "web", "stopped")
    });

    tmux.keys(&["s"]);
    let (_, first) = wait_until(DEADLINE, "web to run again", || {
        Some(state(&s, "web")).filter(|(state, pid)| state == "running" && pid.is_some())
    });
    tmux.wait_for("the result of the start", |screen| {
        screen.contains("start web: running") && row_has(screen, "web", "running")
    });

    tmux.keys(&["r"]);
    let (_, second) = wait_until(DEADLINE, "web to run with a new pid", || {
        Some(state(&s, "web")).filter(|(state, pid)| state == "running" && pid.is_some() && *pid != first)
    });
    let pid = second.unwrap().to_string();
    tmux.wait_for("the restarted web's pid", |screen| {
        screen.contains("restart web: running") && row_has(screen, "web", &pid)
    });
}

#[test]
fn l_shows_the_log_tail_live() {
    let Some((s, tmux)) = top_on(&config()) else { return };
    let first = s.wait_started("api");
    tmux.keys(&["l"]);
    tmux.wait_for("api's ready line in the log pane", |screen| {
        screen.contains("log of api (stdout)") && screen.contains(&format!("ready pid={first}"))
    });
    // A line written afterwards (by the next process) shows up while the pane is open.
    s.cli_ok(["restart", "api"]);
    let (_, second) = wait_until(DEADLINE, "api's new pid", || {
        Some(state(&s, "api")).filter(|(state, pid)| state == "running" && *pid != Some(first.into()))
    });
    tmux.wait_for("the new process's ready line", |screen| {
        screen.contains(&format!("ready pid={}", second.unwrap()))
    });
    // e switches to stderr (empty), l closes the pane.
    tmux.keys(&["e"]);
    tmux.wait_for("the stderr pane", |screen| screen.contains("log of api (stderr)"));
    tmux.keys(&["l"]);
    tmux.wait_for("the pane to close", |screen| !screen.contains("log of api"));
}

/// After `top` ended: the shell has the terminal again, out of the alternate screen.
#[track_caller]
fn wait_shell_back(tmux: &Tmux, exits: usize) {
    tmux.wait_for("top to exit 0 and the prompt to come back", |screen| {
        screen.matches("top exited 0").count() == exits && screen.trim_end().ends_with(PROMPT.trim_end())
    });
    assert_eq!(tmux.display("#{alternate_on}"), "0", "{}", tmux.screen());
    assert!(!tmux.screen().contains("q quit"), "{}", tmux.screen());
}

#[test]
fn q_and_ctrl_c_quit_and_give_the_terminal_back() {
    let Some((s, tmux)) = top_on(&config()) else { return };
    assert_eq!(tmux.display("#{alternate_on}"), "1");
    tmux.keys(&["q"]);
    wait_shell_back(&tmux, 1);

    tmux.run_top(&["-c".into(), s.config_path().to_string_lossy().into_owned()]);
    tmux.wait_for("top again", |screen| row_has(screen, "web", "running"));
    tmux.keys(&["C-c"]);
    wait_shell_back(&tmux, 2);
}

/// A terminal that goes away (its tmux killed, an ssh connection dropped) ends `top`: it
/// neither stays behind nor spins on a terminal that reads as empty forever.
#[test]
fn top_ends_when_its_terminal_goes_away() {
    let Some((_s, tmux)) = top_on(&config()) else { return };
    let shell: u32 = tmux.display("#{pane_pid}").parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let top: u32 =
        children.split_whitespace().next().expect("top runs under the pane's shell").parse().unwrap();
    tmux.ok(&["kill-server"]);
    testkit::wait_until(DEADLINE, "top to end with its terminal", || {
        // Gone, or a zombie waiting for init.
        let stat = std::fs::read_to_string(format!("/proc/{top}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        matches!(state, None | Some(Some('Z'))).then_some(())
    });
}

/// A terminal that hangs up without a SIGHUP for `top` (it is not `top`'s controlling
/// terminal): drawing fails, and `top` ends with 1. It did abort: the error went to stderr,
/// the same dead terminal, through `eprintln!`, which panics when it cannot write.
#[test]
fn a_terminal_that_hangs_up_without_a_sighup_ends_top_with_1_not_an_abort() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let s = start(&config());
    s.wait_api();
    let (mut master, mut slave) = (0, 0);
    let mut size = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: two out-pointers to ints and a winsize, valid for the call.
    let made = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null_mut(), &raw mut size)
    };
    assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
    // Close-on-exec (openpty's are not): a copy of the master in `top`, or in any process
    // another test starts meanwhile, would keep the terminal from hanging up.
    for fd in [master, slave] {
        // SAFETY: fcntl on a descriptor just opened.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    // SAFETY: openpty returned two open descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = std::process::Command::new(STEWARD)
        .args(["-c", &s.config_path().to_string_lossy(), "top"])
        .env("TERM", "xterm-256color")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .process_group(0)
        .spawn()
        .unwrap();
    // Killed on the way out, should the test fail.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    // The first screen, read off the terminal: top runs.
    let mut shown = Vec::new();
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    testkit::wait_until(DEADLINE, "top's first screen", || {
        let mut buf = [0u8; 65536];
        let n = std::io::Read::read(&mut reader, &mut buf).ok()?;
        shown.extend_from_slice(&buf[..n]);
        String::from_utf8_lossy(&shown).contains("web").then_some(())
    });
    drop(reader);
    drop(master);
    let status = testkit::wait_until(DEADLINE, "top to end", || child.0.try_wait().unwrap());
    assert_eq!((status.code(), status.signal()), (Some(1), None), "{status:?}");
}

#[test]
fn a_small_pane_says_so_and_a_bigger_one_redraws() {
    let Some((_s, tmux)) = top_on(&config()) else { return };
    tmux.ok(&["resize-window", "-t", "top", "-x", "30", "-y", "6"]);
    let screen = tmux.wait_for("the too-small notice", |screen| {
        let text = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        text.contains("terminal too small: need at least 60x10, have 30x6")
    });
    assert!(row(&screen, "web").is_none(), "{screen}");
    tmux.ok(&["resize-window", "-t", "top", "-x", "120", "-y", "40"]);
    tmux.wait_for("the table again", |screen| {
        row_has(screen, "web", "running") && !screen.contains("too small")
    });
}

#[test]
fn without_a_terminal_it_says_to_use_status() {
    // No tmux needed: stdout is a pipe here.
    let s = start(&config());
    s.wait_api();
    let out = s.cli(["top"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not one") && stderr.contains("steward status"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

#[test]
fn over_remote_a_viewer_sees_and_is_refused_a_stop() {
    if !have_tmux() {
        return;
    }
    use crate::remote_api::{config as remote_config, remote_url, Secrets};
    let secrets = Secrets::new();
    let s = start(&remote_config(&secrets, false));
    let url = remote_url(&s);
    let pid = s.wait_started("web");
    let tmux = Tmux::start();
    tmux.run_top(&["--remote".into(), url.clone(), "--token-file".into(), secrets.token("viewer")]);
    let screen = tmux.wait_for("web over the remote API", |screen| row_has(screen, "web", "running"));
    assert!(screen.contains(&url), "{screen}");
    tmux.keys(&["x"]);
    let screen = tmux.wait_for("the refusal", |screen| screen.contains("HTTP 403"));
    assert!(screen.contains("stop web failed: not allowed"), "{screen}");
    let web = s.program("web");
    assert_eq!((web["state"].as_str(), web["pid"].as_u64()), (Some("running"), Some(pid.into())), "{web}");
    // The view goes on.
    tmux.keys(&["q"]);
    wait_shell_back(&tmux, 1);
}
