//! In a Windows console: Ctrl+C stops the service, whose main then finishes, exit 0.
//!
//! Run under Wine by `scripts/ci-windows.sh test`. A console event reaches another process
//! only from a process attached to its console, which then gets a copy too: a helper does it,
//! `steward-scmctl ctrl-c PID` (the workspace's test tool, `cargo build -p testkit --bins`).

use std::os::windows::process::CommandExt as _;
use std::process::{Command, Stdio};

use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

use crate::harness::{example, Service};

fn ctrl_c_to_console_of(pid: u32) {
    let helper = example("minimal")
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join(format!("steward-scmctl{}", std::env::consts::EXE_SUFFIX)));
    let helper = helper.expect("target/<profile>");
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
fn ctrl_c_stops_it_and_its_main_finishes() {
    let mut command = Command::new(example("minimal"));
    // A console of its own, without a window.
    command.creation_flags(CREATE_NO_WINDOW);
    let mut service = Service::start(&mut command);
    service.expect_prefix("starting (Console)");
    // Then the working directory it runs in.
    service.expect_prefix("working directory ");
    service.expect("ready");
    ctrl_c_to_console_of(service.pid());
    service.expect("control Stop(Interrupt)");
    service.expect("stopped");
    assert_eq!(service.exit().code(), Some(0));
}
