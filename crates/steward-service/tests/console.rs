//! From a console: SIGINT and SIGTERM stop, SIGHUP reloads, the exit code is the program's.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::harness::{example, Service};

fn minimal(args: &[&str]) -> Service {
    let mut command = Command::new(example("minimal"));
    command.args(args).env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
    let service = Service::start(&mut command);
    service.expect_prefix("starting (Console)");
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
