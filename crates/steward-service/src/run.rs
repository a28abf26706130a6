//! Running the program's main as a service: [`run`], its [`RunOptions`], and the part every
//! platform shares (the driver, the main on its own thread, the exit).

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Duration;

use crate::context::Context;
use crate::driver::{Driver, Sink};
use crate::lifecycle::{AfterStartBudget, Exit, Input, Settings};

/// The error a service's main may return. Any error works; [`Failure`] also chooses the
/// exit code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error that ends the service with this code (at least 1): on Windows the
/// service-specific exit code `sc query` shows, elsewhere the process's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code (at least 1; 0 is taken as 1).
    pub code: u32,
    /// What went wrong, for the log.
    pub message: String,
}

impl Failure {
    /// A failure with exit `code` and a `message` for the log.
    pub fn new(code: u32, message: impl Into<String>) -> Failure {
        Failure { code: code.max(1), message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (exit code {})", self.message, self.code)
    }
}

impl std::error::Error for Failure {}

/// The exit code of a main that returned an error other than [`Failure`].
pub const EXIT_ERROR: u32 = 1;
/// The exit code of a main that panicked (as Rust's own for a panicking process).
pub const EXIT_PANIC: u32 = 101;

/// Who started the program, as far as the service is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// From a console or a script: Ctrl+C, SIGINT and SIGTERM stop it, SIGHUP reloads.
    Console,
    /// systemd, with a notify socket: readiness and the rest go there.
    Systemd,
    /// launchd: it speaks no readiness protocol; SIGTERM stops.
    Launchd,
    /// The Windows Service Control Manager.
    Scm,
}

/// How [`run`] runs the service. Start with [`RunOptions::new`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub(crate) name: String,
    pub(crate) start_budget: Duration,
    pub(crate) stop_budget: Duration,
    pub(crate) pause_budget: Duration,
    pub(crate) accept_pause: bool,
    pub(crate) accept_reload: bool,
    pub(crate) running_after_start_budget: bool,
    pub(crate) manual_watchdog: bool,
    pub(crate) second_interrupt_aborts: bool,
}

impl RunOptions {
    /// The service's name, for its log and the Event Log. Under the SCM the name it is installed
    /// as wins (the SCM passes it), so one binary can be installed under several names.
    pub fn new(name: impl Into<String>) -> RunOptions {
        let defaults = Settings::default();
        RunOptions {
            name: name.into(),
            start_budget: defaults.start_budget,
            stop_budget: defaults.stop_budget,
            pause_budget: defaults.pause_budget,
            accept_pause: false,
            accept_reload: true,
            running_after_start_budget: false,
            manual_watchdog: false,
            second_interrupt_aborts: true,
        }
    }

    /// How long starting may be reported as pending (default 120 s); after it, the manager's
    /// own timeout applies, unless [`running_after_start_budget`](Self::running_after_start_budget).
    pub fn start_budget(mut self, budget: Duration) -> RunOptions {
        self.start_budget = budget;
        self
    }

    /// How long stopping may be reported as pending (default 30 s).
    pub fn stop_budget(mut self, budget: Duration) -> RunOptions {
        self.stop_budget = budget;
        self
    }

    /// How long pausing or continuing may be reported as pending (default 30 s).
    pub fn pause_budget(mut self, budget: Duration) -> RunOptions {
        self.pause_budget = budget;
        self
    }

    /// Take Pause and Continue from the SCM (default: no; only Windows has them).
    pub fn accept_pause(mut self, yes: bool) -> RunOptions {
        self.accept_pause = yes;
        self
    }

    /// Take Reload: SCM ParamChange, SIGHUP (default: yes). Without it, SIGHUP at a console
    /// is left to its default action.
    pub fn accept_reload(mut self, yes: bool) -> RunOptions {
        self.accept_reload = yes;
        self
    }

    /// When the start budget is spent, report Running anyway, so that a boot or `net start`
    /// is not held longer (default: no).
    pub fn running_after_start_budget(mut self, yes: bool) -> RunOptions {
        self.running_after_start_budget = yes;
        self
    }

    /// Ping the watchdog only through [`Context::ping`] (default: the library pings by
    /// itself, which proves only that the process runs).
    pub fn manual_watchdog(mut self, yes: bool) -> RunOptions {
        self.manual_watchdog = yes;
        self
    }

    /// A second Ctrl+C while stopping ends the process at once with 130 (default: yes).
    pub fn second_interrupt_aborts(mut self, yes: bool) -> RunOptions {
        self.second_interrupt_aborts = yes;
        self
    }

    pub(crate) fn settings(&self, watchdog: Option<Duration>) -> Settings {
        Settings {
            start_budget: self.start_budget,
            stop_budget: self.stop_budget,
            pause_budget: self.pause_budget,
            after_start_budget: if self.running_after_start_budget {
                AfterStartBudget::ReportRunning
            } else {
                AfterStartBudget::LeaveToManager
            },
            watchdog: watchdog.filter(|_| !self.manual_watchdog),
            second_interrupt_aborts: self.second_interrupt_aborts,
            ..Settings::default()
        }
    }
}

/// The program's main as a service.
pub(crate) type Main = Box<dyn FnOnce(Context) -> Result<(), BoxError> + Send + 'static>;

/// Run `main` as the service `options` names, under whatever started the program (the SCM,
/// systemd, launchd or a console), and return the exit code to end the process with. See
/// the crate's documentation for what each manager is told. An async main goes through this
/// too: `run_async` (the `tokio` feature).
pub fn run<F>(options: RunOptions, main: F) -> ExitCode
where
    F: FnOnce(Context) -> Result<(), BoxError> + Send + 'static,
{
    let exit = crate::platform::run(options, Box::new(main));
    exit_code(exit)
}

/// The driver started, the controls wired by `wire`, then `main` on this thread; returns how
/// the service ended, after the manager was told.
pub(crate) fn serve(
    options: &RunOptions,
    mode: Mode,
    sink: Box<dyn Sink>,
    watchdog: Option<Duration>,
    wire: impl FnOnce(&std::sync::Arc<Driver>),
    main: Main,
) -> Exit {
    let driver = Driver::start(options.settings(watchdog), sink);
    wire(&driver);
    let context = Context {
        driver: driver.clone(),
        mode,
        name: options.name.as_str().into(),
        manual_watchdog: options.manual_watchdog,
    };
    let result = match panic::catch_unwind(AssertUnwindSafe(move || main(context))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            let code = error.downcast_ref::<Failure>().map_or(EXIT_ERROR, |f| f.code.max(1));
            tracing::error!(service = %options.name, "the service failed: {error}");
            Err(code)
        }
        Err(_) => {
            // The panic hook has printed the message already.
            tracing::error!(service = %options.name, "the service panicked");
            Err(EXIT_PANIC)
        }
    };
    driver.input(Input::Returned(result));
    driver.current().exit.unwrap_or(Exit::Failure(EXIT_ERROR))
}

fn exit_code(exit: Exit) -> ExitCode {
    match exit {
        Exit::Success => ExitCode::SUCCESS,
        Exit::Failure(code) => match u8::try_from(code) {
            Ok(byte) => ExitCode::from(byte),
            // A process exit status holds more on Windows only.
            Err(_) => {
                #[cfg(windows)]
                std::process::exit(code as i32);
                #[cfg(not(windows))]
                ExitCode::from(u8::MAX)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::lifecycle::{Report, State};
    use crate::{Control, StopReason};

    /// Keeps every report, for the test to read after the run.
    struct Recorder(Arc<Mutex<Vec<Report>>>);

    impl Sink for Recorder {
        fn report(&self, report: &Report) {
            self.0.lock().unwrap().push(*report);
        }
    }

    #[test]
    fn a_program_that_stops_by_itself_is_reported_stopping_and_gets_the_stop() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_by_main = seen.clone();
        let exit = serve(
            &RunOptions::new("test"),
            Mode::Console,
            Box::new(Recorder(reports.clone())),
            None,
            |_| {},
            Box::new(move |ctx| {
                let controls = ctx.controls();
                ctx.ready();
                ctx.stop();
                assert!(ctx.stopping().is_set());
                seen_by_main.lock().unwrap().extend(controls.map(|request| request.control()));
                Ok(())
            }),
        );
        assert_eq!(exit, Exit::Success);
        assert_eq!(*seen.lock().unwrap(), [Control::Stop(StopReason::Requested)]);
        let mut states: Vec<State> = reports.lock().unwrap().iter().map(|r| r.state).collect();
        // A slow machine may see a heartbeat or two within a pending state.
        states.dedup();
        assert_eq!(states, [State::StartPending, State::Running, State::StopPending, State::Stopped]);
    }
}
