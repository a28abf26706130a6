//! [`Steward`]: a `steward run` on a config in its own temp dir, driven the way a user drives it
//! (the CLI, hence the API), and watched through structured events, never through the wording
//! of its log.
//!
//! - steward runs with `--log-format json`: every line of its stderr is one [`LogEvent`] with
//!   the fields `event`, `program`, `from`, `to`, `pid`, `exit_code`, `alert` (README, "steward
//!   run ... --log-format json"). [`Steward::wait_for_event`] waits on those fields.
//! - [`Steward::api_events`] reads `GET /v1/events` (`steward events --json`, the stable
//!   `EventRecord` of docs/api.md) for what the log has only in words (alert and limit events).
//! - [`Steward::shutdown`] stops it through its API (`steward shutdown`) on every OS, then waits
//!   for the process and checks its exit status. `Drop` (of the inner [`Daemon`]) kills and
//!   reaps the whole tree, the last resort when a test fails half-way.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use tempfile::TempDir;

use crate::{wait, Daemon, DEADLINE};

/// One line of steward's `--log-format json` log. Fields steward did not set are `None`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogEvent {
    pub timestamp: String,
    pub level: String,
    pub message: String,
    /// What happened: `started`, `exited`, `stopped`, `fatal`, `spawn-failed`, `state`,
    /// `health`, `limit`, `alert`, `api`, `metrics`, `lock`, `reload`, `exit`...
    pub event: Option<String>,
    pub program: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub pid: Option<u32>,
    /// How the process ended, as steward words it: `exit code 3`, `signal 9`.
    pub exit_code: Option<String>,
    pub alert: Option<String>,
    /// `stdout` or `stderr`, for events about one of a program's output streams.
    pub stream: Option<String>,
}

impl LogEvent {
    /// Whether this is event `event` of program `program`.
    pub fn is(&self, program: &str, event: &str) -> bool {
        self.program.as_deref() == Some(program) && self.event.as_deref() == Some(event)
    }

    /// Whether this is the steward-level event `event` (no program).
    pub fn is_daemon(&self, event: &str) -> bool {
        self.program.is_none() && self.event.as_deref() == Some(event)
    }
}

/// A steward daemon running a config from its own temp dir; see the module doc.
pub struct Steward {
    daemon: Daemon,
    bin: PathBuf,
    config: PathBuf,
    // Last: the daemon is killed (by its own Drop) before its folder is removed.
    dir: TempDir,
}

impl Steward {
    /// Writes `config` to `<tmp>/steward.toml` and runs `bin run -c <it> --log-format json`.
    #[track_caller]
    pub fn start(bin: impl AsRef<Path>, config: &str) -> Steward {
        Self::start_with(bin, config, &[])
    }

    /// [`Steward::start`] with more arguments for `run`.
    #[track_caller]
    pub fn start_with(bin: impl AsRef<Path>, config: &str, extra_args: &[&str]) -> Steward {
        Self::start_command(bin, config, extra_args, |_| {})
    }

    /// [`Steward::start_with`], letting `prepare` change the command first (its environment).
    #[track_caller]
    pub fn start_command(
        bin: impl AsRef<Path>,
        config: &str,
        extra_args: &[&str],
        prepare: impl FnOnce(&mut Command),
    ) -> Steward {
        Self::launch(&[], bin.as_ref(), config, extra_args, prepare)
    }

    /// [`Steward::start_with`], run by `wrapper` (a program and its arguments, before steward's
    /// path): `unshare --pid --fork`, to run steward as PID 1 of a namespace. [`Steward::daemon`]
    /// is then the wrapper's process.
    #[track_caller]
    pub fn start_wrapped(
        wrapper: &[&str],
        bin: impl AsRef<Path>,
        config: &str,
        extra_args: &[&str],
    ) -> Steward {
        Self::launch(wrapper, bin.as_ref(), config, extra_args, |_| {})
    }

    #[track_caller]
    fn launch(
        wrapper: &[&str],
        bin: &Path,
        config: &str,
        extra_args: &[&str],
        prepare: impl FnOnce(&mut Command),
    ) -> Steward {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let bin = bin.to_path_buf();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&bin);
                cmd
            }
            None => Command::new(&bin),
        };
        cmd.arg("run").arg("-c").arg(&path).args(["--log-format", "json"]).args(extra_args);
        prepare(&mut cmd);
        let daemon = Daemon::from_command(cmd, dir.path());
        Steward { daemon, bin, config: path, dir }
    }

    /// Runs another `steward run` on the same config and folder (after this one is gone).
    #[track_caller]
    pub fn run_again(&self) -> Daemon {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run").arg("-c").arg(&self.config).args(["--log-format", "json"]);
        Daemon::from_command(cmd, self.dir.path())
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Where the programs' logs go by default.
    pub fn log_dir(&self) -> PathBuf {
        self.path(".steward/logs")
    }

    /// steward's own log (its stderr) so far.
    pub fn log(&self) -> String {
        self.daemon.stderr()
    }

    /// The lines of steward's log so far that are JSON events, in order.
    pub fn events(&self) -> Vec<LogEvent> {
        parse_events(&self.log())
    }

    /// The events of `program` with `event` so far, in order.
    pub fn events_of(&self, program: &str, event: &str) -> Vec<LogEvent> {
        self.events().into_iter().filter(|e| e.is(program, event)).collect()
    }

    /// Waits until steward's log holds an event for which `pred` holds, and returns the
    /// first such event.
    ///
    /// # Panics
    /// After [`DEADLINE`], or as soon as steward has exited without such an event; the
    /// message names `what` and dumps steward's output.
    #[track_caller]
    pub fn wait_for_event(&self, what: &str, pred: impl Fn(&LogEvent) -> bool) -> LogEvent {
        self.wait_for_nth_event(what, 1, pred)
    }

    /// Waits until steward's log holds `n` (from 1) events for which `pred` holds, and returns
    /// the `n`th. Panics like [`Steward::wait_for_event`].
    #[track_caller]
    pub fn wait_for_nth_event(&self, what: &str, n: usize, pred: impl Fn(&LogEvent) -> bool) -> LogEvent {
        let mut found = None;
        self.daemon.wait_for_output(
            what,
            |log| {
                found = parse_events(log).into_iter().filter(&pred).nth(n.saturating_sub(1));
                found.is_some()
            },
            DEADLINE,
        );
        found.expect("the wait returns once the event was found")
    }

    /// Waits for event `event` of `program` (see [`Steward::wait_for_event`]).
    #[track_caller]
    pub fn wait_for(&self, program: &str, event: &str) -> LogEvent {
        self.wait_for_event(&format!("event {event:?} of {program:?}"), |e| e.is(program, event))
    }

    /// Waits for the `n`th (from 1) event `event` of `program`.
    #[track_caller]
    pub fn wait_for_nth(&self, program: &str, event: &str, n: usize) -> LogEvent {
        let what = format!("event {event:?} number {n} of {program:?}");
        self.wait_for_nth_event(&what, n, |e| e.is(program, event))
    }

    /// Waits for `program` to start, and returns its pid.
    #[track_caller]
    pub fn wait_started(&self, program: &str) -> u32 {
        let event = self.wait_for(program, "started");
        event.pid.unwrap_or_else(|| panic!("no pid in {event:?}"))
    }

    /// `steward -c <config> ARGS...` as its own process.
    #[track_caller]
    pub fn cli<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// [`Steward::cli`], which must succeed; returns its stdout.
    #[track_caller]
    pub fn cli_ok<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{}\n{}", describe(&out), self.daemon.dump());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the API answers (`steward status` succeeds).
    #[track_caller]
    pub fn wait_api(&self) {
        let what = "the API to answer `steward status`";
        self.daemon.wait_for_output(what, |_| self.cli(["status"]).status.success(), DEADLINE);
    }

    /// `steward status --json`.
    #[track_caller]
    pub fn status(&self) -> serde_json::Value {
        let out = self.cli_ok(["status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {out}"))
    }

    /// The entry of `name` in `steward status --json`.
    #[track_caller]
    pub fn program(&self, name: &str) -> serde_json::Value {
        let status = self.status();
        let programs = status["programs"].as_array().cloned().unwrap_or_default();
        programs
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no program {name:?} in {status}"))
    }

    /// The event history of `GET /v1/events` (`steward events --json`), in order.
    #[track_caller]
    pub fn api_events(&self) -> Vec<serde_json::Value> {
        parse_api_events(&self.cli_ok(["events", "--json"]))
    }

    /// Waits until `GET /v1/events` has an event for which `pred` holds, and returns it.
    #[track_caller]
    pub fn wait_for_api_event(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait::wait_until_or_dump(
            DEADLINE,
            what,
            || self.daemon.dump(),
            || {
                // Until the API answers (exit 3), there is nothing to read yet.
                let out = self.cli(["events", "--json"]);
                if out.status.code() == Some(3) {
                    return None;
                }
                assert!(out.status.success(), "steward events --json: {}", describe(&out));
                parse_api_events(&String::from_utf8_lossy(&out.stdout)).into_iter().find(&pred)
            },
        )
    }

    /// Stops steward through its API (`steward shutdown`, which returns once it has exited),
    /// then checks that the process ended with status 0.
    #[track_caller]
    pub fn shutdown(&self) {
        let out = self.cli(["shutdown"]);
        assert!(out.status.success(), "steward shutdown: {}\n{}", describe(&out), self.daemon.dump());
        let status = self.daemon.wait_exit(DEADLINE);
        assert!(status.success(), "steward exited with {status}\n{}", self.daemon.dump());
    }
}

/// The JSON lines of `log` as events; other lines (a panic message, say) are skipped.
pub fn parse_events(log: &str) -> Vec<LogEvent> {
    log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The lines of `steward events --json`, each an `EventRecord`.
#[track_caller]
fn parse_api_events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("an event is not JSON ({e}): {l}")))
        .collect()
}

/// A finished CLI run, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A TOML basic string holding `s` (paths, arguments), escaped.
pub fn toml_str(s: impl AsRef<str>) -> String {
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

/// `[testchild, args...]` as a TOML array: a program's `command` running the fake child.
pub fn child_cmd(args: &[&str]) -> String {
    let child = crate::testchild();
    let mut parts = vec![toml_str(child.to_string_lossy())];
    parts.extend(args.iter().map(toml_str));
    format!("[{}]", parts.join(", "))
}
