//! The `exec` probe: passes if the command exits with 0.
//!
//! The command runs in the program's folder and environment, with no stdin and its output
//! thrown away, in a process tree of its own (a process group on Unix, a Job Object on
//! Windows; `process::spawn_command`). When the probe is dropped (its timeout, or the
//! program going down) a guard kills that whole tree, so a hung check never lingers, and
//! tokio reaps the direct child in the background.

use std::process::Stdio;

use crate::process::{self, ProcessTree};

use super::{ExecContext, ProbeResult};

/// Kills the tree when dropped, unless the probe finished and swept it already.
struct KillOnDrop(Option<ProcessTree>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(tree) = self.0.take() {
            let _ = tree.kill();
        }
    }
}

pub(super) async fn probe(command: &[String], ctx: &ExecContext) -> ProbeResult {
    let Some((program, args)) = command.split_first() else {
        return ProbeResult::fail("empty command");
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&ctx.cwd)
        .envs(&ctx.env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut spawned = match process::spawn_command(cmd) {
        Ok(p) => p,
        Err(e) => return ProbeResult::fail(format!("cannot run `{program}`: {e}")),
    };
    let mut guard = KillOnDrop(Some(spawned.tree));
    let status = spawned.child.wait().await;
    // Whatever the check left behind in its tree goes too.
    if let Some(tree) = guard.0.take() {
        let _ = tree.kill();
    }
    match status {
        Ok(s) => match process::exit_status(s) {
            steward_core::fsm::ExitStatus::Code(0) => ProbeResult::pass("exit code 0"),
            other => ProbeResult::fail(format!("`{program}` ended with {other}")),
        },
        Err(e) => ProbeResult::fail(format!("waiting for `{program}`: {e}")),
    }
}
