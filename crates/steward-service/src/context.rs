//! What the program's code holds while it runs as a service: [`Context`], the stream of
//! [`Controls`], and the [`Stopping`] token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::Driver;
use crate::lifecycle::{Control, Input, Request, StopReason};
use crate::Mode;

/// The running service, as the program sees it. Cheap to clone and to send to other threads.
#[derive(Clone)]
pub struct Context {
    pub(crate) driver: Arc<Driver>,
    pub(crate) mode: Mode,
    /// The service's name: the one it is installed as, under the SCM.
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) manual_watchdog: bool,
}

impl Context {
    /// Who started the program.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The service's name: [`RunOptions::new`](crate::RunOptions::new)'s, or under the SCM
    /// the name it is installed as (which keys its registry settings and names its Event Log
    /// source).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program serves: Running for the SCM, `READY=1` for systemd. Until then the start
    /// is reported as pending, with rising checkpoints, within the start budget. Calling it
    /// again does nothing.
    pub fn ready(&self) {
        self.driver.input(Input::Ready);
    }

    /// Still working on a start, stop, pause or continue, and the next step may take up to
    /// `hint`: the checkpoint rises with this wait hint (systemd: `EXTEND_TIMEOUT_USEC`), and
    /// the budget stretches to cover it. Outside those states it does nothing.
    pub fn progress(&self, hint: Duration) {
        self.driver.input(Input::Progress(hint));
    }

    /// A one-line status for people: systemd shows it in `systemctl status` (`STATUS=`).
    pub fn status(&self, text: &str) {
        // One line: the protocol is line based.
        let line = text.lines().next().unwrap_or("");
        self.driver.sink().status(line);
    }

    /// The token that trips when the service is asked to stop; async code awaits
    /// `wait_async()` on it (the `tokio` feature).
    pub fn stopping(&self) -> Stopping {
        Stopping { driver: self.driver.clone() }
    }

    /// Stop by the program's own choice (someone asked the program itself, not its manager):
    /// the manager is told it is stopping (STOP_PENDING with rising checkpoints within the
    /// stop budget, `STOPPING=1`), and a Stop reaches the controls and the [`Stopping`] token
    /// as for the manager's Stop. The return of the program's main ends it, as always.
    pub fn stop(&self) {
        self.driver.input(Input::Control(Control::Stop(StopReason::Requested)));
    }

    /// The controls for the program, in order, each to be answered. From the first call on,
    /// Pause, Continue and Reload wait for the program's answer (within their budget); a
    /// program that never calls this has them done at once. One that comes within a second
    /// of [`ready`](Self::ready), before this is called, waits for it. The stream ends after
    /// the Stop.
    /// Several `Controls` share one queue: each request goes to one of them. Async code takes
    /// them with `controls_async()` (the `tokio` feature).
    pub fn controls(&self) -> Controls {
        self.driver.input(Input::Subscribed);
        Controls { driver: self.driver.clone() }
    }

    /// End as a failure with `code` (at least 1): the program is asked to stop, and when its
    /// main returns, the exit is this failure even if it returns `Ok`, so the manager's
    /// recovery acts (SCM failure actions, systemd's `Restart=on-failure`).
    pub fn fail(&self, code: u32) {
        self.driver.input(Input::Fail(code));
    }

    /// The watchdog period, when the manager watches the program (systemd's `WatchdogSec=`,
    /// halved as systemd advises).
    pub fn watchdog(&self) -> Option<Duration> {
        crate::platform::watchdog_period(self.mode)
    }

    /// Tell the manager the program is alive. Needed only with
    /// [`crate::RunOptions::manual_watchdog`]; otherwise the library pings by itself.
    pub fn ping(&self) {
        if self.manual_watchdog {
            self.driver.sink().watchdog();
        }
    }
}

/// The controls of the service, as an iterator that blocks until the next one.
pub struct Controls {
    driver: Arc<Driver>,
}

impl Iterator for Controls {
    type Item = ControlRequest;

    fn next(&mut self) -> Option<ControlRequest> {
        let request = self.driver.next_request()?;
        Some(ControlRequest::new(&self.driver, request))
    }
}

/// One control for the program. Pause, Continue and Reload finish when it is acknowledged
/// ([`ack`](Self::ack), or dropping it), or are undone by [`reject`](Self::reject). A Stop
/// finishes when the program's main returns.
pub struct ControlRequest {
    driver: Arc<Driver>,
    id: u64,
    control: Control,
    answered: bool,
}

impl ControlRequest {
    pub(crate) fn new(driver: &Arc<Driver>, request: Request) -> ControlRequest {
        ControlRequest { driver: driver.clone(), id: request.id, control: request.control, answered: false }
    }

    /// What is asked.
    pub fn control(&self) -> Control {
        self.control
    }

    /// Done: paused, continued, reloaded.
    pub fn ack(mut self) {
        self.answer(Input::Ack(self.id));
    }

    /// Not done: the service stays as it was (running, or paused).
    pub fn reject(mut self) {
        self.answer(Input::Reject(self.id));
    }

    fn answer(&mut self, input: Input) {
        if !self.answered {
            self.answered = true;
            if !matches!(self.control, Control::Stop(_)) {
                self.driver.input(input);
            }
        }
    }
}

impl Drop for ControlRequest {
    fn drop(&mut self) {
        self.answer(Input::Ack(self.id));
    }
}

impl std::fmt::Debug for ControlRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlRequest").field("id", &self.id).field("control", &self.control).finish()
    }
}

/// Trips when the service is asked to stop (by the manager, a signal, Ctrl+C, or
/// [`Context::fail`]).
#[derive(Clone)]
pub struct Stopping {
    pub(crate) driver: Arc<Driver>,
}

impl Stopping {
    /// Whether the stop was asked.
    pub fn is_set(&self) -> bool {
        self.driver.is_stopping()
    }

    /// Block until the stop is asked.
    pub fn wait(&self) {
        self.driver.wait_stopping(None);
    }

    /// Block until the stop is asked or `timeout` passed; whether it was asked.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.driver.wait_stopping(Instant::now().checked_add(timeout))
    }
}
