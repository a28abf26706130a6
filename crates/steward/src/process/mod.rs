//! Starting a program and stopping its whole process tree.
//!
//! The platform file is chosen once, here, so the rest of the daemon never sees a `#[cfg]`:
//! - `unix.rs`: each program leads its own session (so its own process group); graceful stop
//!   signals the group, kill is SIGKILL to the group; on Linux the child also gets
//!   PR_SET_PDEATHSIG so a supervisor killed with -9 takes it down.
//! - `windows.rs`: each program runs in its own Job Object with KILL_ON_JOB_CLOSE; graceful
//!   stop is a console control event or WM_CLOSE; kill terminates the job.

use std::io;
use std::process::Stdio;

use steward_core::config::{ProgramSpec, StopSignal};
use steward_core::fsm::ExitStatus;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod platform;

/// The Windows backend's pure decisions (stop signal mapping, creation flags), compiled on
/// every OS so that their tests run everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
mod windows_stop;

/// A started program: the tokio child (for its exit status and pipes) and a handle on its
/// whole process tree (process group / Job Object).
pub struct Spawned {
    pub child: tokio::process::Child,
    pub tree: ProcessTree,
}

/// Handle on a program's whole process tree. Dropping it does not kill anything on Unix;
/// on Windows it closes the Job Object handle, which kills what is left in the job.
pub struct ProcessTree(platform::Tree);

impl ProcessTree {
    /// Ask the program to stop the way `signal` says. `StopSignal::None` does nothing.
    pub fn signal(&self, signal: StopSignal) -> io::Result<()> {
        self.0.signal(signal)
    }

    /// Kill every process in the tree at once. Not finding any process is not an error.
    pub fn kill(&self) -> io::Result<()> {
        self.0.kill()
    }
}

/// Start `spec.command` with its cwd and env, stdin from the null device and stdout and
/// stderr on pipes, in a tree of its own. `extra_env` applies after `spec.env`: a value sets
/// a variable, `None` removes an inherited one (see `service::notify_socket::child_env`).
pub fn spawn(spec: &ProgramSpec, extra_env: &[(&str, Option<std::ffi::OsString>)]) -> io::Result<Spawned> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    for (name, value) in extra_env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    platform::prepare(&mut cmd);
    let child = cmd.spawn()?;
    let tree = platform::Tree::adopt(&child)?;
    Ok(Spawned { child, tree: ProcessTree(tree) })
}

/// The portable form of how a process ended.
pub fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    platform::exit_status(status)
}
