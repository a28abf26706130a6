//! `steward-scmctl`: what the Wine service test (`scripts/wine-service-test.sh`) needs and
//! Wine 8's tools lack. Test-only, never shipped.
//!
//! - `control NAME pause|continue|paramchange`: send that control to the service NAME through
//!   the Service Control Manager (`ControlService`); Wine 8's `sc.exe` has no `pause`,
//!   `continue` or `control`. Prints the state the service reported.
//! - `alive PID`: exit 0 if process PID runs, 1 if it does not; Wine 8's `tasklist` prints
//!   nothing.
//! - `ctrl-c PID`: send Ctrl+C to the console of process PID (leave our console, attach to
//!   its, generate the event for that whole console). A process of its own, because the
//!   sender gets a copy of the event too, and under Wine a process that does not handle it
//!   ends (with exit code 0); a test process must not be that one.
//!
//! Exit codes: 0 done (or alive), 1 failed (or gone), 2 bad command line.

use std::process::ExitCode;

const USAGE: &str = "usage: steward-scmctl control NAME pause|continue|paramchange
       steward-scmctl alive PID
       steward-scmctl ctrl-c PID";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["alive", pid] => match pid.parse::<u32>() {
            Ok(pid) if testkit::pid_alive(pid) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(_) => usage(),
        },
        ["ctrl-c", pid] => match pid.parse::<u32>() {
            // Our own console is gone once this returns: nothing to print to.
            Ok(pid) if scm::ctrl_c(pid) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(_) => usage(),
        },
        ["control", name, what] => match scm::control(name, what) {
            Ok(state) => {
                println!("{name}: {state}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("steward-scmctl: {e}");
                ExitCode::from(1)
            }
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

#[cfg(windows)]
mod scm {
    use windows_service::service::{ServiceAccess, ServiceStatus};
    use windows_sys::Win32::System::Console::{
        AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_C_EVENT,
    };

    /// Ctrl+C to every process on the console of `pid`; false if it could not be sent.
    pub fn ctrl_c(pid: u32) -> bool {
        // SAFETY: plain calls. Our own copy of the event is to be ignored (NULL handler, TRUE).
        unsafe {
            SetConsoleCtrlHandler(None, 1);
            FreeConsole();
            AttachConsole(pid) != 0 && GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) != 0
        }
    }
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_sys::Win32::System::Services::{ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS};

    /// Sends `what` to service `name`; returns the state it reported.
    pub fn control(name: &str, what: &str) -> Result<String, String> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| format!("cannot connect to the SCM: {e:?}"))?;
        let access = ServiceAccess::PAUSE_CONTINUE | ServiceAccess::QUERY_STATUS;
        let service = manager.open_service(name, access).map_err(|e| format!("cannot open {name}: {e:?}"))?;
        let status: ServiceStatus = match what {
            "pause" => service.pause().map_err(|e| format!("pause: {e:?}"))?,
            "continue" => service.resume().map_err(|e| format!("continue: {e:?}"))?,
            "paramchange" => {
                let mut raw = SERVICE_STATUS::default();
                // SAFETY: an open service handle with PAUSE_CONTINUE access (which ParamChange
                // needs) and a status structure to fill.
                if unsafe { ControlService(service.raw_handle(), SERVICE_CONTROL_PARAMCHANGE, &mut raw) } == 0
                {
                    return Err(format!("paramchange: {}", std::io::Error::last_os_error()));
                }
                service.query_status().map_err(|e| format!("query: {e:?}"))?
            }
            other => return Err(format!("unknown control {other:?}; pause, continue or paramchange")),
        };
        Ok(format!("{:?}", status.current_state))
    }
}

#[cfg(not(windows))]
mod scm {
    pub fn control(_name: &str, _what: &str) -> Result<String, String> {
        Err("the Service Control Manager exists only on Windows".into())
    }

    pub fn ctrl_c(_pid: u32) -> bool {
        false
    }
}
