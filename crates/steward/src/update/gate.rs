//! Gate 0: before anything is swapped, the new binary must accept the live config (`check
//! -c CONFIG` exits 0) and say the version its manifest promised (`--version`). An update
//! never moves onto a binary that would refuse to start, or that is not what was signed for.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How long each of the two runs may take.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The new binary failed Gate 0; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot run the new binary {}", exe.display())]
    Spawn { exe: PathBuf, source: std::io::Error },
    #[error("the new binary {} did not finish `{args}` within {}s", exe.display(), GATE_TIMEOUT.as_secs())]
    Hung { exe: PathBuf, args: String },
    #[error(
        "the new steward rejects the config {} (`check` exited {code}); nothing was changed. What it said:\n{said}",
        config.display()
    )]
    ConfigRejected { config: PathBuf, code: String, said: String },
    #[error(
        "the new binary says it is `{said}`, but the signed manifest says {expected}; nothing was changed"
    )]
    WrongVersion { expected: String, said: String },
}

/// Runs Gate 0 on `exe` for the config at `config`, expecting `version`.
pub async fn check(exe: &Path, config: &Path, version: &str) -> Result<(), GateError> {
    let config_arg = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let checked = run(exe, &["check".as_ref(), "-c".as_ref(), config_arg.as_os_str()]).await?;
    if !checked.status.success() {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        return Err(GateError::ConfigRejected {
            config: config.to_path_buf(),
            code: checked.status.code().map_or("on a signal".into(), |c| c.to_string()),
            said: said.trim().to_owned(),
        });
    }
    let out = run(exe, &["--version".as_ref()]).await?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // clap prints `steward 1.4.0`.
    if !out.status.success() || said.split_whitespace().last() != Some(version) {
        return Err(GateError::WrongVersion { expected: version.to_owned(), said });
    }
    Ok(())
}

async fn run(exe: &Path, args: &[&std::ffi::OsStr]) -> Result<Output, GateError> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    // The gate must judge the binary, not the test hooks of the steward that runs it.
    for hook in ["STEWARD_TEST_STOP_AFTER", "STEWARD_TEST_SERVICE", "STEWARD_CONFIG"] {
        cmd.env_remove(hook);
    }
    match tokio::time::timeout(GATE_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(source)) => Err(GateError::Spawn { exe: exe.to_path_buf(), source }),
        Err(_) => Err(GateError::Hung {
            exe: exe.to_path_buf(),
            args: args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
        }),
    }
}
