//! `steward run` in a Windows console: the CLI reaches it over its named pipe, and Ctrl+C
//! stops every program (grandchildren included) and ends it with exit code 0.
//!
//! Windows only; on Linux CI it runs under Wine (`scripts/ci-windows.sh test`,
//! `scripts/wine-service-test.sh`). Ctrl+C is sent the only way a console event can be sent to
//! another process: leave one's console, attach to steward's, generate the event for that
//! console. A helper process does that (`steward-scmctl ctrl-c PID`, built with `cargo build -p
//! testkit --bins`), since the sender gets a copy of the event too. Wine 8 supports exactly this
//! path (Ctrl+Break to a process group it does not; `process/windows.rs` checks that).
#![cfg(windows)]

use std::fs::File;
use std::os::windows::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use testkit::{pid_alive, read_pidfile, testchild, wait_until_or_dump, DEADLINE};
use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

/// steward, killed if a failed test leaves it running.
struct Steward(Child);

/// What steward printed, for failure messages.
fn output(dir: &Path) -> String {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("--- steward stdout\n{}--- steward stderr\n{}", read("stdout.txt"), read("stderr.txt"))
}

impl Drop for Steward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn toml_path(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Send Ctrl+C to every process on the console of process `pid`, from a helper process.
fn ctrl_c_to_console_of(pid: u32) {
    let helper = testchild().with_file_name(format!("steward-scmctl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        helper.is_file(),
        "{} is missing: build it with `cargo build -p testkit --bins`",
        helper.display()
    );
    let status = Command::new(&helper)
        .args(["ctrl-c", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own console, so that leaving it disturbs nobody.
        .creation_flags(CREATE_NO_WINDOW)
        .status()
        .expect("run steward-scmctl");
    assert!(status.success(), "steward-scmctl ctrl-c {pid}: {status}");
}

#[test]
fn run_in_a_console_answers_the_cli_and_stops_in_order_on_ctrl_c() {
    let tmp = testkit::tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let config = dir.join("steward.toml");
    std::fs::write(
        &config,
        format!(
            "[programs.worker]\ncommand = [{}, \"--spawn-grandchild\", \"--grandchild-pidfile\", \"grandchild.pid\", \
             \"--pidfile\", \"worker.pid\", \"--sleep\", \"1h\"]\n",
            toml_path(&testchild())
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.args(["run", "-c"])
        .arg(&config)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(File::create(dir.join("stdout.txt")).unwrap())
        .stderr(File::create(dir.join("stderr.txt")).unwrap())
        // A console of its own, without a window, as a program gets from steward.
        .creation_flags(CREATE_NO_WINDOW);
    let mut steward = Steward(cmd.spawn().expect("start steward"));
    let dump = || output(&dir);

    let pids =
        wait_until_or_dump(DEADLINE, "the worker and its grandchild to write their pid files", dump, || {
            Some((read_pidfile(dir.join("worker.pid"))?, read_pidfile(dir.join("grandchild.pid"))?))
        });
    assert!(pid_alive(pids.0) && pid_alive(pids.1), "{}", dump());

    // The CLI finds the daemon's pipe from the same config.
    let status = wait_until_or_dump(DEADLINE, "`steward status` to show the worker running", dump, || {
        let out =
            Command::new(env!("CARGO_BIN_EXE_steward")).args(["status", "-c"]).arg(&config).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("running")).then_some(text)
    });
    assert!(status.contains("worker"), "{status}");

    ctrl_c_to_console_of(steward.0.id());
    let exit =
        wait_until_or_dump(DEADLINE, "steward to exit after Ctrl+C", dump, || steward.0.try_wait().unwrap());
    let output = dump();
    assert_eq!(exit.code(), Some(0), "{output}");
    assert!(output.contains("got Ctrl+C") && output.contains("all programs stopped"), "{output}");
    for pid in [pids.0, pids.1] {
        assert!(!pid_alive(pid), "process {pid} survived steward's orderly stop\n{output}");
    }
}
