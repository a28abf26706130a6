//! Shared by the end-to-end tests: a steward daemon on a config in its own temp dir.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use testkit::{pid_alive, read_pidfile, testchild, wait_until, Daemon, DEADLINE};

/// A TOML basic string holding `s` (paths, arguments).
pub fn q(s: impl AsRef<str>) -> String {
    let mut out = String::from("\"");
    for c in s.as_ref().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `command = [testchild, args...]` as a TOML array.
pub fn child_cmd(args: &[&str]) -> String {
    let child = testchild();
    let mut parts = vec![q(child.to_string_lossy())];
    parts.extend(args.iter().map(q));
    format!("[{}]", parts.join(", "))
}

/// A steward daemon running `config` from its own temp dir.
pub struct Steward {
    pub daemon: Daemon,
    pub dir: testkit::tempfile::TempDir,
}

impl Steward {
    /// Writes `config` to `<tmp>/steward.toml` and runs `steward run -c` on it.
    pub fn start(config: &str) -> Steward {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, extra_args: &[&str]) -> Steward {
        let dir = testkit::tempfile::tempdir().expect("temp dir");
        let cfg = dir.path().join("steward.toml");
        std::fs::write(&cfg, config).expect("write config");
        let mut args: Vec<String> = vec!["run".into(), "-c".into(), cfg.to_string_lossy().into_owned()];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let daemon = Daemon::start(env!("CARGO_BIN_EXE_steward"), &args, dir.path());
        Steward { daemon, dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path(".steward/logs")
    }

    /// steward's own log (its stderr) so far.
    pub fn log(&self) -> String {
        self.daemon.stderr()
    }

    /// Waits until steward's log has a line containing all of `parts`.
    #[track_caller]
    pub fn wait_log_line(&self, parts: &[&str]) -> String {
        let what = format!("a log line with {parts:?}");
        let out = self.daemon.wait_for_output(&what, |out| find_line(out, parts).is_some(), DEADLINE);
        find_line(&out, parts).unwrap()
    }

    /// Lines of steward's log containing all of `parts`.
    pub fn count_log_lines(&self, parts: &[&str]) -> usize {
        self.log().lines().filter(|l| parts.iter().all(|p| l.contains(p))).count()
    }

    /// SIGTERM, then wait for an orderly exit with status 0.
    #[cfg(unix)]
    #[track_caller]
    pub fn shutdown(&self) {
        self.daemon.signal(libc::SIGTERM);
        let status = self.daemon.wait_exit(DEADLINE);
        assert!(status.success(), "steward exited with {status}\n{}", self.daemon.dump());
    }
}

pub fn find_line(out: &str, parts: &[&str]) -> Option<String> {
    out.lines().find(|l| parts.iter().all(|p| l.contains(p))).map(str::to_owned)
}

/// Lines in a file (0 if it does not exist yet).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

/// Waits until `path` holds a pid written by the test child, and returns it.
#[track_caller]
pub fn wait_pidfile(path: &Path) -> u32 {
    wait_until(DEADLINE, &format!("a pid in {}", path.display()), || read_pidfile(path))
}

/// Waits until `pid` is gone.
#[track_caller]
pub fn wait_gone(pid: u32, what: &str) {
    wait_until(DEADLINE, &format!("{what} (pid {pid}) to be gone"), || (!pid_alive(pid)).then_some(()));
}

pub const SHORT: Duration = Duration::from_millis(50);

/// The pid in a "started (pid N)" log line.
#[track_caller]
pub fn pid_in(line: &str) -> u32 {
    let after = line.split("pid ").nth(1).unwrap_or_else(|| panic!("no pid in {line:?}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no pid in {line:?}"))
}
