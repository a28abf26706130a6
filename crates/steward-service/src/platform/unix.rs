//! Linux, macOS and the other Unix systems: systemd's notify socket, launchd, a console.
//!
//! - systemd (`NOTIFY_SOCKET` is set): the reports become (through [`systemd`], which is also
//!   public for programs that only want to notify) `READY=1`, `RELOADING=1` with
//!   `MONOTONIC_USEC`, `STOPPING=1`, `EXTEND_TIMEOUT_USEC` while a start or stop is pending
//!   within its budget, `STATUS=`, and `WATCHDOG=1` at half `WATCHDOG_USEC`.
//! - launchd (`XPC_SERVICE_NAME` names the job, on macOS): no readiness protocol exists.
//! - Everywhere: SIGTERM and SIGINT are Stop, SIGHUP is Reload (when accepted), read on a
//!   thread of their own that sleeps in a blocking read.

use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

// systemd's protocol, public on its own (`steward_service::systemd`).
#[path = "systemd.rs"]
pub mod systemd;

use systemd::{Message, Notify};

use crate::driver::{Driver, Sink};
use crate::lifecycle::{Control, Exit, Input, Report, State, StopReason};
use crate::run::{serve, Main};
use crate::{Mode, RunOptions};

pub(crate) fn run(options: RunOptions, main: Main) -> Exit {
    let mode = detect();
    let (sink, watchdog): (Box<dyn Sink>, _) = match (mode, Notify::from_env()) {
        (Mode::Systemd, Some(notify)) => (Box::new(Systemd(notify)), notify.watchdog_period()),
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
    Notify::from_env().filter(|_| mode == Mode::Systemd)?.watchdog_period()
}

fn detect() -> Mode {
    if Notify::from_env().is_some() {
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

/// systemd, over `NOTIFY_SOCKET`: the messages of [`systemd`], which programs that keep their
/// own runtime use directly.
struct Systemd(Notify);

impl Sink for Systemd {
    fn report(&self, report: &Report) {
        let extend = Message::ExtendTimeout(report.wait_hint);
        match report.state {
            State::StartPending if report.checkpoint > 1 => self.0.send(&[extend]),
            State::Running => self.0.send(&[Message::Ready]),
            State::Reloading => self.0.send(&[Message::Reloading]),
            State::StopPending if report.checkpoint == 1 => self.0.send(&[Message::Stopping, extend]),
            State::StopPending => self.0.send(&[extend]),
            State::Paused => self.0.send(&[Message::Status("paused")]),
            _ => {}
        }
    }

    fn watchdog(&self) {
        self.0.send(&[Message::Watchdog]);
    }

    fn status(&self, text: &str) {
        self.0.send(&[Message::Status(text)]);
    }
}
