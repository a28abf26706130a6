//! End to end, Unix: what other users can reach of a running steward.
//!
//! - The state dir, the log dir and every file steward writes there are its user's alone.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use crate::common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// steward with the common umask 022, so that only what steward asks for narrows the modes.
fn start_with_umask_022(config: &str) -> Steward {
    Steward::start_command(STEWARD, config, &[], |cmd| {
        // SAFETY: umask is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
    })
}

#[test]
fn the_state_dir_the_logs_and_the_lock_are_owner_only() {
    let config = format!(
        r#"
[programs.web]
command = {web}

[programs.web.log]
max_size = "16KB"
compress = true
"#,
        web = child_cmd(&["--write-lines", "400", "--line-len", "100", "--sleep", "1h"]),
    );
    let s = start_with_umask_022(&config);
    s.wait_api();
    let logs = s.log_dir();
    // 40 KB through a 16 KB file: rotated, and a rotated file compressed in the background.
    wait_until(DEADLINE, "a compressed rotated log", || {
        std::fs::read_dir(&logs).ok()?.flatten().find(|e| e.file_name().to_string_lossy().ends_with(".gz"))
    });
    let state_dir = s.path(".steward");
    assert_eq!(mode(&state_dir), 0o700, "the state dir");
    assert_eq!(mode(&logs), 0o700, "the log dir");
    assert_eq!(mode(&state_dir.join("steward.lock")), 0o600, "the lock file");
    assert_eq!(mode(&state_dir.join("steward.sock")), 0o600, "the API socket");
    let mut files = 0;
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A compression in progress; its mode is that of the finished file.
        if name.ends_with(".tmp") {
            continue;
        }
        assert_eq!(mode(&entry.path()), 0o600, "{name}");
        files += 1;
    }
    assert!(files >= 3, "the log, a rotated and a compressed file: {files}");
    s.shutdown();
}
