//! Linux, macOS and the other Unix systems: systemd's notify socket, launchd, a console.
//!
//! - systemd (`NOTIFY_SOCKET` is set): the reports become `READY=1`, `RELOADING=1` with
//!   `MONOTONIC_USEC`, `STOPPING=1`, `EXTEND_TIMEOUT_USEC` while a start or stop is pending
//!   within its budget, `STATUS=`, and `WATCHDOG=1` at half `WATCHDOG_USEC`.
//! - launchd (`XPC_SERVICE_NAME` names the job, on macOS): no readiness protocol exists.
//! - Everywhere: SIGTERM and SIGINT are Stop, SIGHUP is Reload (when accepted), read on a
//!   thread of their own that sleeps in a blocking read.

use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::driver::{Driver, Sink};
use crate::lifecycle::{Control, Exit, Input, Report, State, StopReason};
use crate::run::{serve, Main};
use crate::{Mode, RunOptions};

pub(crate) fn run(options: RunOptions, main: Main) -> Exit {
    let mode = detect();
    let (sink, watchdog): (Box<dyn Sink>, _) = match mode {
        Mode::Systemd => (Box::new(Systemd), watchdog_period(mode)),
        _ => (Box::new(Quiet), None),
    };
    let signals = match signals(&options) {
        Ok(signals) => Some(signals),
        Err(e) => {
            tracing::error!(service = %options.name, "cannot handle SIGTERM, SIGINT and SIGHUP: {e}");
            None
        }
    };
    serve(&options, mode, sink, watchdog, |driver| forward(signals, driver.clone(), mode), main)
}

/// Half the watchdog timeout systemd set for this process, if it set one.
pub(crate) fn watchdog_period(mode: Mode) -> Option<Duration> {
    if mode != Mode::Systemd {
        return None;
    }
    sd_notify::watchdog_enabled().map(|d| d / 2).filter(|d| !d.is_zero())
}

fn detect() -> Mode {
    if std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty()) {
        Mode::Systemd
    } else if cfg!(target_os = "macos") && std::env::var_os("XPC_SERVICE_NAME").is_some_and(|s| s != "0") {
        Mode::Launchd
    } else {
        Mode::Console
    }
}

fn signals(options: &RunOptions) -> std::io::Result<Signals> {
    if options.accept_reload {
        Signals::new([SIGTERM, SIGINT, SIGHUP])
    } else {
        Signals::new([SIGTERM, SIGINT])
    }
}

fn forward(signals: Option<Signals>, driver: std::sync::Arc<Driver>, mode: Mode) {
    let Some(mut signals) = signals else { return };
    let spawned = std::thread::Builder::new().name("service-signals".into()).spawn(move || {
        for signal in signals.forever() {
            let control = match signal {
                SIGINT => Control::Stop(StopReason::Interrupt),
                SIGTERM if mode == Mode::Console => Control::Stop(StopReason::Terminate),
                SIGTERM => Control::Stop(StopReason::Requested),
                SIGHUP => Control::Reload,
                _ => continue,
            };
            driver.input(Input::Control(control));
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the thread that reads signals: {e}");
    }
}

/// A console or launchd: nobody to tell.
struct Quiet;

impl Sink for Quiet {
    fn report(&self, _report: &Report) {}
}

/// systemd, over `NOTIFY_SOCKET`.
struct Systemd;

impl Systemd {
    fn send(&self, states: &[sd_notify::NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!("cannot notify systemd: {e}");
        }
    }
}

/// `EXTEND_TIMEOUT_USEC` holds a u32 of microseconds: about 71 minutes at most.
fn extend(hint: Duration) -> sd_notify::NotifyState<'static> {
    sd_notify::NotifyState::ExtendTimeoutUsec(u32::try_from(hint.as_micros()).unwrap_or(u32::MAX))
}

impl Sink for Systemd {
    fn report(&self, report: &Report) {
        use sd_notify::NotifyState;
        match report.state {
            State::StartPending if report.checkpoint > 1 => self.send(&[extend(report.wait_hint)]),
            State::Running => self.send(&[NotifyState::Ready]),
            State::Reloading => match NotifyState::monotonic_usec_now() {
                Ok(now) => self.send(&[NotifyState::Reloading, now]),
                Err(e) => tracing::debug!("cannot read the monotonic clock for RELOADING=1: {e}"),
            },
            State::StopPending if report.checkpoint == 1 => {
                self.send(&[NotifyState::Stopping, extend(report.wait_hint)])
            }
            State::StopPending => self.send(&[extend(report.wait_hint)]),
            State::Paused => self.send(&[NotifyState::Status("paused")]),
            _ => {}
        }
    }

    fn watchdog(&self) {
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }

    fn status(&self, text: &str) {
        self.send(&[sd_notify::NotifyState::Status(text)]);
    }
}
