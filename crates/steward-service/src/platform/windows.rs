//! Windows: the Service Control Manager (SCM), or a console.
//!
//! Whether the SCM started the program is decided by asking it: the dispatcher is called
//! first, and only its "not started by the SCM" answer (error 1063) means a console. No
//! guess from the parent process or the session.
//!
//! Under the SCM, `main` runs on the thread the dispatcher gives the service; the control
//! handler (on the dispatcher's thread) only feeds the lifecycle, which reports the pending
//! state at once. The reports become `SetServiceStatus` calls: Reloading is Running for the
//! SCM, and a failure is a service-specific exit code, which the SCM's failure actions count
//! when the service is installed with them for non-crash failures.
//!
//! At a console, Ctrl+C and Ctrl+Break are Stop (Interrupt), closing the window is Stop
//! (Terminate), and a shutdown is Stop (Shutdown); for the last two Windows ends the process
//! when the handler returns, so the handler waits for the service to stop, within the stop
//! budget.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, TRUE};
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_SHUTDOWN_EVENT,
};

use crate::driver::{Driver, Sink};
use crate::lifecycle::{Control, Exit, Input, Report, State, StopReason};
use crate::run::{serve, Main, EXIT_ERROR};
use crate::{Mode, RunOptions};

/// `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: the process was not started by the SCM.
const NOT_A_SERVICE: i32 = 1063;

/// What `service_main` runs: the dispatcher calls it with no arguments of ours.
struct Service {
    options: RunOptions,
    main: Main,
}

static SERVICE: Mutex<Option<Service>> = Mutex::new(None);
static EXIT: Mutex<Option<Exit>> = Mutex::new(None);
/// The console's service, for the console control handler (a plain function).
static CONSOLE: OnceLock<(Arc<Driver>, Duration)> = OnceLock::new();

pub(crate) fn run(options: RunOptions, main: Main) -> Exit {
    let name = options.name.clone();
    *lock(&SERVICE) = Some(Service { options, main });
    match service_dispatcher::start(&name, ffi_service_main) {
        Ok(()) => lock(&EXIT).take().unwrap_or(Exit::Failure(EXIT_ERROR)),
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NOT_A_SERVICE) => {
            match lock(&SERVICE).take() {
                Some(service) => console(service),
                None => Exit::Failure(EXIT_ERROR),
            }
        }
        Err(e) => {
            tracing::error!(service = %name, "cannot connect to the Service Control Manager: {e}");
            Exit::Failure(EXIT_ERROR)
        }
    }
}

/// No watchdog exists on Windows.
pub(crate) fn watchdog_period(_mode: Mode) -> Option<Duration> {
    None
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(arguments: Vec<OsString>) {
    let Some(mut service) = lock(&SERVICE).take() else { return };
    // The SCM passes the name the service is installed as first: it keys the registry (the
    // working directory) and the handler, whatever name the program gave its options.
    if let Some(name) = arguments.first().and_then(|a| a.to_str()).filter(|n| !n.is_empty()) {
        service.options.name = name.to_owned();
    }
    let exit = scm(service);
    *lock(&EXIT) = Some(exit);
}

fn scm(Service { options, main }: Service) -> Exit {
    crate::manage::apply_registry_settings(&options.name); // the SCM has no working directory
    let driver: Arc<OnceLock<Arc<Driver>>> = Arc::new(OnceLock::new());
    let for_handler = driver.clone();
    let handler = move |control: ServiceControl| -> ServiceControlHandlerResult {
        let control = match control {
            // The SCM keeps the last status reported.
            ServiceControl::Interrogate => return ServiceControlHandlerResult::NoError,
            ServiceControl::Stop => Control::Stop(StopReason::Requested),
            ServiceControl::Shutdown => Control::Stop(StopReason::Shutdown),
            ServiceControl::Preshutdown => Control::Stop(StopReason::Preshutdown),
            ServiceControl::Pause => Control::Pause,
            ServiceControl::Continue => Control::Continue,
            ServiceControl::ParamChange => Control::Reload,
            _ => return ServiceControlHandlerResult::NotImplemented,
        };
        match for_handler.get() {
            Some(driver) => {
                driver.input(Input::Control(control));
                ServiceControlHandlerResult::NoError
            }
            // Before the first report no control is accepted; this is not reached.
            None => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle = match service_control_handler::register(&options.name, handler) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!(service = %options.name, "cannot register with the Service Control Manager: {e}");
            return Exit::Failure(EXIT_ERROR);
        }
    };
    let sink = Scm { handle, pause: options.accept_pause, reload: options.accept_reload };
    serve(&options, Mode::Scm, Box::new(sink), None, |d| drop(driver.set(d.clone())), main)
}

/// The SCM, told through `SetServiceStatus`.
struct Scm {
    handle: ServiceStatusHandle,
    pause: bool,
    reload: bool,
}

impl Scm {
    /// The controls taken in `state`. While starting or stopping: none (the SCM then refuses
    /// them itself). Preshutdown is Stop with the service's preshutdown timeout to finish;
    /// Shutdown is for an SCM without it.
    fn accepted(&self, state: State) -> ServiceControlAccept {
        let stop =
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN | ServiceControlAccept::PRESHUTDOWN;
        let mut running = stop;
        if self.pause {
            running |= ServiceControlAccept::PAUSE_CONTINUE;
        }
        if self.reload {
            running |= ServiceControlAccept::PARAM_CHANGE;
        }
        match state {
            State::Running | State::Reloading | State::Paused => running,
            State::PausePending | State::ContinuePending => stop,
            State::StartPending | State::StopPending | State::Stopped => ServiceControlAccept::empty(),
        }
    }
}

impl Sink for Scm {
    fn report(&self, report: &Report) {
        let status = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: scm_state(report.state),
            controls_accepted: self.accepted(report.state),
            exit_code: match report.exit {
                Some(Exit::Failure(code)) => ServiceExitCode::ServiceSpecific(code),
                Some(Exit::Success) | None => ServiceExitCode::NO_ERROR,
            },
            checkpoint: report.checkpoint,
            wait_hint: report.wait_hint,
            process_id: None,
        };
        if let Err(e) = self.handle.set_service_status(status) {
            tracing::warn!("cannot report {:?} to the Service Control Manager: {e}", report.state);
        }
    }
}

fn scm_state(state: State) -> ServiceState {
    match state {
        State::StartPending => ServiceState::StartPending,
        State::Running | State::Reloading => ServiceState::Running,
        State::PausePending => ServiceState::PausePending,
        State::Paused => ServiceState::Paused,
        State::ContinuePending => ServiceState::ContinuePending,
        State::StopPending => ServiceState::StopPending,
        State::Stopped => ServiceState::Stopped,
    }
}

/// A console: nobody to tell.
struct Quiet;

impl Sink for Quiet {
    fn report(&self, _report: &Report) {}
}

fn console(Service { options, main }: Service) -> Exit {
    let budget = options.stop_budget;
    serve(
        &options,
        Mode::Console,
        Box::new(Quiet),
        None,
        |driver| {
            let _ = CONSOLE.set((driver.clone(), budget));
            // SAFETY: `on_console_event` is a plain function that lives as long as the process.
            if unsafe { SetConsoleCtrlHandler(Some(on_console_event), TRUE) } == FALSE {
                tracing::warn!(
                    "cannot handle Ctrl+C: {}; it ends the program at once",
                    std::io::Error::last_os_error()
                );
            }
        },
        main,
    )
}

/// Runs on a thread Windows starts for the event.
unsafe extern "system" fn on_console_event(event: u32) -> BOOL {
    let Some((driver, budget)) = CONSOLE.get() else { return FALSE };
    let reason = match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => StopReason::Interrupt,
        CTRL_CLOSE_EVENT => StopReason::Terminate,
        CTRL_SHUTDOWN_EVENT => StopReason::Shutdown,
        // Logoff and the rest: not ours (a console program outlives a logoff of others).
        _ => return FALSE,
    };
    driver.input(Input::Control(Control::Stop(reason)));
    if matches!(event, CTRL_CLOSE_EVENT | CTRL_SHUTDOWN_EVENT) {
        // Windows ends the process when this returns: let the service stop first.
        driver.wait_stopped(Instant::now().checked_add(*budget));
    }
    TRUE
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
