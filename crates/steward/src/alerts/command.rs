//! `command = [..]`: run a command for each notification, with the alert in its
//! environment:
//!
//! | variable | value |
//! |---|---|
//! | `STEWARD_ALERT` | the rule's `name` |
//! | `STEWARD_ALERT_PROGRAM` | the program |
//! | `STEWARD_ALERT_STATUS` | `firing` or `resolved` |
//! | `STEWARD_ALERT_REPEAT` | `true` for a repeat of a firing alert, else `false` |
//! | `STEWARD_ALERT_CONDITION` | the rule's condition |
//! | `STEWARD_ALERT_MESSAGE` | what was seen |
//! | `STEWARD_ALERT_TIME` | RFC 3339 |
//!
//! It runs in the config file's folder, with no stdin and its output thrown away, in a
//! process tree of its own that is killed after [`TIMEOUT`].

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::Payload;
use crate::process;

const TIMEOUT: Duration = Duration::from_secs(60);

pub(super) async fn run(argv: &[String], dir: &Path, p: &Payload) {
    let Some((program, args)) = argv.split_first() else { return };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("STEWARD_ALERT", &p.alert)
        .env("STEWARD_ALERT_PROGRAM", &p.program)
        .env("STEWARD_ALERT_STATUS", p.status)
        .env("STEWARD_ALERT_REPEAT", if p.repeat { "true" } else { "false" })
        .env("STEWARD_ALERT_CONDITION", &p.condition)
        .env("STEWARD_ALERT_MESSAGE", &p.message)
        .env("STEWARD_ALERT_TIME", &p.time)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut spawned = match process::spawn_command(cmd) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(alert = %p.alert, event = "alert-command-failed",
                "cannot run the command of alert {} (`{program}`): {e}", p.alert);
            return;
        }
    };
    let outcome = tokio::time::timeout(TIMEOUT, spawned.child.wait()).await;
    let _ = spawned.tree.kill();
    match outcome {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::warn!(alert = %p.alert, event = "alert-command-failed",
            "the command of alert {} (`{program}`) ended with {}", p.alert, process::exit_status(status)),
        Ok(Err(e)) => tracing::warn!(alert = %p.alert, event = "alert-command-failed",
            "waiting for the command of alert {}: {e}", p.alert),
        Err(_) => tracing::warn!(alert = %p.alert, event = "alert-command-failed",
            "the command of alert {} (`{program}`) ran longer than {TIMEOUT:?} and was killed", p.alert),
    }
}
