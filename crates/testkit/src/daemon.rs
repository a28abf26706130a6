//! [`Daemon`]: a process under test, its output in files, killed with its tree on `Drop`.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{sys, wait};

/// A running program under test, typically the steward daemon:
///
/// ```no_run
/// use testkit::{Daemon, DEADLINE};
///
/// let dir = testkit::tempfile::tempdir().unwrap();
/// // From steward's own tests: Daemon::start(env!("CARGO_BIN_EXE_steward"), ["run", "-c", cfg], ..)
/// let daemon = Daemon::start(testkit::testchild(), ["--print-ready", "--sleep", "1h"], dir.path());
/// daemon.wait_for_text("ready pid=", DEADLINE);
/// // Dropping `daemon` kills it and everything it started.
/// ```
///
/// - stdin is the null device; stdout and stderr go to two files in the given directory, so
///   the output can be read at any time without a reader thread and never fills a pipe.
/// - On Unix it leads its own process group; [`Daemon::signal`] signals it alone and
///   [`Daemon::signal_group`] the group.
/// - Waiting for its exit does not reap it (Unix), so its pid and group id stay reserved.
/// - `Drop` kills it with its whole tree (Unix: SIGSTOP then SIGKILL to the group and every
///   descendant, even those in other groups; Windows: its Job Object) and reaps it, so a
///   failed test leaves nothing running.
pub struct Daemon {
    /// Behind a lock only so that every method can take `&self` (Windows' `try_wait` needs
    /// `&mut`). Never held across a wait.
    child: Mutex<Child>,
    /// Its process group (Unix) or Job Object (Windows), killed in `Drop`.
    tree: sys::Tree,
    pid: u32,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `program` with `args`, its output in files in `dir` (see [`Daemon::from_command`]).
    ///
    /// # Panics
    /// If the program cannot be started; the message names it.
    #[track_caller]
    pub fn start<I, S>(program: impl AsRef<OsStr>, args: I, dir: &Path) -> Daemon
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::from_command(cmd, dir)
    }

    /// Starts `cmd`, prepared by the test with its arguments, environment and working
    /// directory. Its stdin, stdout and stderr are replaced: stdout goes to
    /// `dir/daemon.stdout` and stderr to `dir/daemon.stderr` (`daemon-2.*`, `daemon-3.*`...
    /// if those exist).
    ///
    /// # Panics
    /// If the output files cannot be created or the program cannot be started.
    #[track_caller]
    pub fn from_command(mut cmd: Command, dir: &Path) -> Daemon {
        let (stdout_path, stdout, stderr_path, stderr) = create_output_files(dir)
            .unwrap_or_else(|e| panic!("cannot create output files in {}: {e}", dir.display()));
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        sys::prepare_daemon(&mut cmd);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        let tree = sys::Tree::adopt(&child).unwrap_or_else(|e| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cannot track the process tree of {:?}: {e}", cmd.get_program())
        });
        Daemon { pid: child.id(), child: Mutex::new(child), tree, stdout_path, stderr_path }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Everything written to stdout so far (invalid UTF-8 replaced).
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything written to stderr so far (invalid UTF-8 replaced).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// stdout then stderr, as written so far.
    pub fn output(&self) -> String {
        let mut out = self.stdout();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out + &self.stderr()
    }

    /// Both outputs and the exit status, labelled, for failure messages.
    pub fn dump(&self) -> String {
        let status = match self.try_status() {
            Some(status) => format!("exited: {status}"),
            None => "still running".to_owned(),
        };
        format!(
            "--- daemon pid {} ({status}) stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.pid,
            self.stdout().trim_end(),
            self.stderr().trim_end()
        )
    }

    /// Waits until `pred` holds for [`Daemon::output`] and returns that output.
    ///
    /// # Panics
    /// After `deadline`, or as soon as the daemon has exited without `pred` holding for its
    /// final output; the message names `what` and dumps the output.
    #[track_caller]
    pub fn wait_for_output(
        &self,
        what: &str,
        mut pred: impl FnMut(&str) -> bool,
        deadline: Duration,
    ) -> String {
        let mut exited = None;
        let found = wait::wait_until_or_dump(
            deadline,
            what,
            || self.dump(),
            || {
                // Read the status first: output read after seeing the exit is complete.
                exited = self.try_status();
                let output = self.output();
                if pred(&output) {
                    Some(Some(output))
                } else {
                    exited.map(|_| None)
                }
            },
        );
        match (found, exited) {
            (Some(output), _) => output,
            (None, Some(status)) => {
                panic!("daemon exited ({status}) before {what}\n{}", self.dump())
            }
            (None, None) => unreachable!("the wait returns None only after an exit"),
        }
    }

    /// Waits until the output contains `text`; see [`Daemon::wait_for_output`].
    #[track_caller]
    pub fn wait_for_text(&self, text: &str, deadline: Duration) -> String {
        self.wait_for_output(&format!("{text:?} in the output"), |out| out.contains(text), deadline)
    }

    /// The exit status if the daemon has exited. Does not reap it (Unix): the pid stays
    /// reserved until `Drop`.
    pub fn try_status(&self) -> Option<ExitStatus> {
        sys::peek_exit(&mut self.child())
            .unwrap_or_else(|e| panic!("cannot check daemon pid {} for exit: {e}", self.pid))
    }

    /// Waits for the daemon to exit and returns its status.
    ///
    /// # Panics
    /// After `deadline`, with the output in the message.
    #[track_caller]
    pub fn wait_exit(&self, deadline: Duration) -> ExitStatus {
        let what = format!("daemon pid {} to exit", self.pid);
        wait::wait_until_or_dump(deadline, &what, || self.dump(), || self.try_status())
    }

    /// Kills the daemon process alone, at once (Unix: SIGKILL; Windows: TerminateProcess), as a
    /// crash would; what it started is left to what the daemon arranged for its death. Does not
    /// reap it: see [`Daemon::wait_exit`].
    ///
    /// # Panics
    /// If it cannot be killed.
    #[track_caller]
    pub fn kill(&self) {
        self.child().kill().unwrap_or_else(|e| panic!("cannot kill pid {}: {e}", self.pid));
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the daemon process alone.
    ///
    /// # Panics
    /// If the signal cannot be sent.
    #[cfg(unix)]
    #[track_caller]
    pub fn signal(&self, signal: i32) {
        sys::signal(self.pid, signal)
            .unwrap_or_else(|e| panic!("cannot send signal {signal} to pid {}: {e}", self.pid));
    }

    /// Sends `signal` to the daemon's whole process group, as a terminal's Ctrl+C would.
    ///
    /// # Panics
    /// If the signal cannot be sent (no process is left in the group).
    #[cfg(unix)]
    #[track_caller]
    pub fn signal_group(&self, signal: i32) {
        sys::signal_group(self.pid, signal)
            .unwrap_or_else(|e| panic!("cannot send signal {signal} to process group {}: {e}", self.pid));
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        // A panic while the lock was held cannot leave the Child inconsistent.
        self.child.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.tree.kill();
        let child = self.child.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Reap it; `kill` first in case the tree kill could not reach it. Errors are ignored: a
        // panic in drop during a failing test's unwinding would abort the test binary.
        let _ = child.kill();
        let _ = child.wait();
    }
}

type OutputFiles = (PathBuf, File, PathBuf, File);

/// Creates `dir/daemon.stdout` and `dir/daemon.stderr`, or with the first free `-N` suffix.
fn create_output_files(dir: &Path) -> io::Result<OutputFiles> {
    for n in 1.. {
        let stem = if n == 1 { "daemon".to_owned() } else { format!("daemon-{n}") };
        let stdout_path = dir.join(format!("{stem}.stdout"));
        let stdout = match OpenOptions::new().write(true).create_new(true).open(&stdout_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let stderr_path = dir.join(format!("{stem}.stderr"));
        let stderr = File::create(&stderr_path)?;
        return Ok((stdout_path, stdout, stderr_path, stderr));
    }
    unreachable!("the loop only ends by returning")
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}
