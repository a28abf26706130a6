//! The example service as a child process: its stdout lines, signals, and a kill on Drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// Long enough for a loaded machine; only reached when something is wrong.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `target/<profile>/examples/NAME`, which `cargo test` builds with the tests.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

pub struct Service {
    child: Child,
    lines: Receiver<String>,
}

impl Service {
    pub fn start(command: &mut Command) -> Service {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("cannot start the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Service { child, lines }
    }

    /// The next line the service prints, which must be `want`.
    pub fn expect(&self, want: &str) {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => assert_eq!(line, want),
            Err(e) => panic!("waiting for {want:?}: {e}"),
        }
    }

    /// Skip lines until one starts with `prefix`; returns it.
    pub fn expect_prefix(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("waiting for a line starting {prefix:?}: {e}"),
            }
        }
    }

    #[cfg(windows)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    #[cfg(unix)]
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
    }

    /// Its exit, waited for (within [`PATIENCE`]).
    pub fn exit(&mut self) -> ExitStatus {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the example") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "the example did not exit");
            // The end of stdout comes with the exit: wait on it rather than spin.
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
