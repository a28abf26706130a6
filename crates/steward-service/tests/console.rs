//! From a console: SIGINT and SIGTERM stop, SIGHUP reloads, the exit code is the program's.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::harness::{example, Service};

fn minimal(args: &[&str]) -> Service {
    let mut command = Command::new(example("minimal"));
    command.args(args).env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
    let service = Service::start(&mut command);
    service.expect_prefix("starting (Console)");
    // Then the working directory it runs in.
    service.expect_prefix("working directory ");
    service.expect("ready");
    service
}

#[test]
fn sighup_reloads_and_sigint_stops() {
    let mut service = minimal(&[]);
    service.signal(libc::SIGHUP);
    service.expect("control Reload");
    service.signal(libc::SIGINT);
    service.expect("control Stop(Interrupt)");
    service.expect("stopped");
    assert_eq!(service.exit().code(), Some(0));
}

#[test]
fn sigterm_stops() {
    let mut service = minimal(&[]);
    service.signal(libc::SIGTERM);
    service.expect("control Stop(Terminate)");
    service.expect("stopped");
    assert_eq!(service.exit().code(), Some(0));
}

#[test]
fn a_failing_main_ends_with_its_code() {
    let mut service = minimal(&["--fail", "3"]);
    service.signal(libc::SIGTERM);
    service.expect("control Stop(Terminate)");
    let status = service.exit();
    assert_eq!((status.code(), status.signal()), (Some(3), None));
}

#[test]
fn a_panic_is_logged_and_ends_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().to_str().unwrap();
    let mut service = minimal(&["--panic", "--log-dir", log_dir]);
    let status = service.exit();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(i32::try_from(steward_service::EXIT_PANIC).unwrap()), None)
    );
    let file = std::fs::read_dir(dir.path()).unwrap().next().expect("a log file").unwrap().path();
    let text = std::fs::read_to_string(file).unwrap();
    let panicked = text.find("panicked: asked to panic").unwrap_or_else(|| panic!("no panic line in {text}"));
    let failed = text.find("the service panicked").unwrap_or_else(|| panic!("no final line in {text}"));
    assert!(text.contains("minimal.rs:"), "the panic's place: {text}");
    assert!(panicked < failed, "the panic is logged first: {text}");
}
