//! `steward run` in a Windows console: the CLI reaches it over its named pipe, and Ctrl+C
//! stops every program (grandchildren included) and ends it with exit code 0.
//!
//! Windows only; on Linux CI it runs under Wine (`scripts/ci-windows.sh test`,
//! `scripts/wine-service-test.sh`). Ctrl+C is sent the only way a console event can be sent to
//! another process: leave one's console, attach to steward's, generate the event for that
//! console. A helper process does that (`steward-scmctl ctrl-c PID`, built with `cargo build -p
//! testkit --bins`), since the sender gets a copy of the event too. Wine 8 supports exactly this
//! path (Ctrl+Break to a process group it does not; `process/windows.rs` checks that).

use std::os::windows::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use testkit::{pid_alive, read_pidfile, testchild, wait_until_or_dump, Daemon, DEADLINE};
use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

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
    cmd.args(["run", "--log-format", "json", "-c"])
        .arg(&config)
        .current_dir(&dir)
        // A console of its own, without a window, as a program gets from steward.
        .creation_flags(CREATE_NO_WINDOW);
    // Killed with its tree on drop if the test fails half-way.
    let steward = Daemon::from_command(cmd, &dir);
    let dump = || steward.dump();

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

    ctrl_c_to_console_of(steward.pid());
    let exit = steward.wait_exit(DEADLINE);
    let output = dump();
    assert_eq!(exit.code(), Some(0), "{output}");
    let events = testkit::parse_events(&steward.stderr());
    let signal =
        events.iter().find(|e| e.is_daemon("signal")).unwrap_or_else(|| panic!("no signal event\n{output}"));
    assert!(signal.message.contains("Ctrl+C"), "{signal:?}");
    assert!(events.iter().any(|e| e.is_daemon("exit")), "{output}");
    for pid in [pids.0, pids.1] {
        assert!(!pid_alive(pid), "process {pid} survived steward's orderly stop\n{output}");
    }
}
