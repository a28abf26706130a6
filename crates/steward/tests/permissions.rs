//! End to end, Unix: what other users and the programs can reach of a running steward.
//!
//! - The state dir, the log dir and every file steward writes there are its user's alone.
//! - Another user's `steward status` is told "permission denied", not "no steward".
//! - Programs get stdin, stdout and stderr, and none of the descriptors steward inherited.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

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

#[test]
fn another_user_is_told_permission_denied_and_what_to_do() {
    // SAFETY: geteuid only reads.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running the CLI as another user needs root");
        return;
    }
    let config = format!("[programs.web]\ncommand = {}\n", child_cmd(&["--sleep", "1h"]));
    let s = start(&config);
    s.wait_for("web", "started");
    // The other user may read the config (and so find the socket), as on a shared machine.
    std::fs::set_permissions(s.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let nobody = 65534;
    let out = Command::new(STEWARD)
        .args(["-c", &s.config_path().to_string_lossy(), "status"])
        .uid(nobody)
        .gid(nobody)
        .output()
        .expect("run the CLI as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("permission denied on "), "{err}");
    assert!(err.contains("run this command as that user"), "{err}");
    assert!(!err.contains("no steward is running"), "{err}");
    // The owner still gets through.
    assert_eq!(s.program("web")["state"], "running");
    s.shutdown();
}

/// steward started holding descriptors 7, 10 and 251 without close-on-exec, as a careless
/// parent hands them down.
#[cfg(target_os = "linux")]
fn start_holding_fds(config: &str, fds: [libc::c_int; 3]) -> Steward {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::File::open(STEWARD).unwrap();
    // Above the targets, so that no dup2 below is onto itself (which would keep close-on-exec).
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor of an open one.
    let source = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 300) };
    assert!(source >= 300, "F_DUPFD_CLOEXEC: {}", std::io::Error::last_os_error());
    let s = Steward::start_command(STEWARD, config, &[], move |cmd| {
        // SAFETY: dup2 is async-signal-safe and touches only the child's descriptors.
        unsafe {
            cmd.pre_exec(move || {
                for fd in fds {
                    if libc::dup2(source, fd) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    });
    // SAFETY: `source` is ours, and the child has its copies.
    unsafe { libc::close(source) };
    drop(file);
    s
}

#[cfg(target_os = "linux")]
#[test]
fn programs_get_stdio_and_none_of_the_descriptors_steward_inherited() {
    let config = format!(
        r#"
[programs.web]
command = {web}

[programs.db]
command = {db}
ready = "notify"
"#,
        web = child_cmd(&["--list-fds", "--sleep", "1h"]),
        db = child_cmd(&["--list-fds", "--notify-ready-after", "0ms", "--sleep", "1h"]),
    );
    let held = [7, 10, 251];
    let s = start_holding_fds(&config, held);
    s.wait_api();
    // steward holds them (else this test would prove nothing)...
    let pid = s.daemon().pid();
    for fd in held {
        assert!(Path::new(&format!("/proc/{pid}/fd/{fd}")).exists(), "steward does not hold fd {fd}");
    }
    // ...and its programs do not.
    for program in ["web", "db"] {
        let log = s.log_dir().join(format!("{program}.out.log"));
        let fds = wait_until(DEADLINE, &format!("the fds {program} printed"), || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines().find(|l| l.starts_with("fds ")).map(str::to_owned)
        });
        assert_eq!(fds, "fds 0 1 2", "{program}");
    }
    s.shutdown();
}
