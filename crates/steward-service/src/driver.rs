//! Runs the [`Lifecycle`] for real: inputs from any thread (the program's, a signal thread,
//! the SCM's handler), the actions carried out under the same lock so reports keep their
//! order, and one ticker thread that sleeps until the machine's next wake-up, or for good
//! while nothing is pending (no wakeups).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::lifecycle::{Action, Input, Lifecycle, Report, Request, Settings, State, Warning};

/// Where reports go: the Service Control Manager, systemd, or nobody (a console).
pub(crate) trait Sink: Send + Sync {
    fn report(&self, report: &Report);
    fn watchdog(&self) {}
    /// A one-line status for people (systemd's `STATUS=`).
    fn status(&self, _text: &str) {}
}

/// What the program has yet to take: requests, and whether a stop was asked.
#[derive(Default)]
struct Inbox {
    requests: VecDeque<Request>,
    stopping: bool,
    /// The stop request has been taken from the queue: the control stream ends there.
    stop_taken: bool,
}

impl Inbox {
    /// The next request (`Some(None)` once the stream ended), or `None` to wait for one.
    fn take(&mut self) -> Option<Option<Request>> {
        if self.stop_taken {
            return Some(None);
        }
        let request = self.requests.pop_front()?;
        if matches!(request.control, crate::Control::Stop(_)) {
            self.stop_taken = true;
        }
        Some(Some(request))
    }
}

pub(crate) struct Driver {
    machine: Mutex<Lifecycle>,
    /// The ticker waits on it, with the machine's lock.
    tick: Condvar,
    inbox: Mutex<Inbox>,
    /// The program's waits on requests and on the stop.
    arrived: Condvar,
    /// The same, for async waits: a task registers here (before it looks at the inbox, so a
    /// delivery in between is not missed) and sleeps without holding a runtime thread.
    #[cfg(feature = "tokio")]
    arrived_async: tokio::sync::Notify,
    sink: Box<dyn Sink>,
}

impl Driver {
    /// A started service: reports StartPending now and starts the ticker.
    pub(crate) fn start(settings: Settings, sink: Box<dyn Sink>) -> Arc<Driver> {
        let (machine, actions) = Lifecycle::start(settings, Instant::now());
        let driver = Arc::new(Driver {
            machine: Mutex::new(machine),
            tick: Condvar::new(),
            inbox: Mutex::new(Inbox::default()),
            arrived: Condvar::new(),
            #[cfg(feature = "tokio")]
            arrived_async: tokio::sync::Notify::new(),
            sink,
        });
        driver.carry_out(&actions);
        let ticker = driver.clone();
        std::thread::Builder::new()
            .name("service-ticker".into())
            .spawn(move || ticker.ticker())
            .expect("cannot start the service's ticker thread");
        driver
    }

    pub(crate) fn input(&self, input: Input) {
        let mut machine = lock(&self.machine);
        let actions = machine.handle(input, Instant::now());
        self.carry_out(&actions);
        drop(machine);
        // The ticker, and whoever waits for the stop.
        self.tick.notify_all();
    }

    /// Until the service reported Stopped, or `deadline`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn wait_stopped(&self, deadline: Option<Instant>) {
        let mut machine = lock(&self.machine);
        while machine.state() != State::Stopped {
            machine = match deadline.map(|at| at.saturating_duration_since(Instant::now())) {
                None => self.tick.wait(machine).unwrap_or_else(PoisonError::into_inner),
                Some(left) if left.is_zero() => return,
                Some(left) => self.tick.wait_timeout(machine, left).unwrap_or_else(PoisonError::into_inner).0,
            };
        }
    }

    pub(crate) fn current(&self) -> Report {
        lock(&self.machine).current()
    }

    pub(crate) fn sink(&self) -> &dyn Sink {
        &*self.sink
    }

    /// The next request, waiting for one; `None` once the stop was taken.
    pub(crate) fn next_request(&self) -> Option<Request> {
        let mut inbox = lock(&self.inbox);
        loop {
            if let Some(next) = inbox.take() {
                return next;
            }
            inbox = self.arrived.wait(inbox).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// What [`next_request`](Self::next_request) would return now, if it would not wait.
    #[cfg(feature = "tokio")]
    pub(crate) fn try_next_request(&self) -> Option<Option<Request>> {
        lock(&self.inbox).take()
    }

    /// Woken on every delivery to the inbox.
    #[cfg(feature = "tokio")]
    pub(crate) fn arrived_async(&self) -> &tokio::sync::Notify {
        &self.arrived_async
    }

    pub(crate) fn is_stopping(&self) -> bool {
        lock(&self.inbox).stopping
    }

    /// Until a stop is asked, or `deadline`; whether it was.
    pub(crate) fn wait_stopping(&self, deadline: Option<Instant>) -> bool {
        let mut inbox = lock(&self.inbox);
        while !inbox.stopping {
            match deadline {
                None => inbox = self.arrived.wait(inbox).unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    let Some(left) = at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
                    else {
                        return false;
                    };
                    inbox = self.arrived.wait_timeout(inbox, left).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
        true
    }

    fn carry_out(&self, actions: &[Action]) {
        for action in actions {
            match *action {
                Action::Report(report) => self.sink.report(&report),
                Action::Deliver(request) => {
                    let mut inbox = lock(&self.inbox);
                    if matches!(request.control, crate::Control::Stop(_)) {
                        inbox.stopping = true;
                    }
                    inbox.requests.push_back(request);
                    drop(inbox);
                    self.arrived.notify_all();
                    #[cfg(feature = "tokio")]
                    self.arrived_async.notify_waiters();
                }
                Action::Watchdog => self.sink.watchdog(),
                Action::Abort => {
                    tracing::warn!("stopping was interrupted a second time: exiting at once");
                    std::process::exit(130);
                }
                Action::Warn(Warning::BudgetSpent { state, budget, reported_running: true }) => {
                    tracing::warn!(
                        "{state:?} took longer than its budget of {budget:?}; reported as running anyway"
                    )
                }
                Action::Warn(Warning::BudgetSpent { state, budget, reported_running: false }) => {
                    tracing::warn!(
                    "{state:?} took longer than its budget of {budget:?}; the service manager's own timeout \
                     now applies"
                )
                }
                Action::Warn(Warning::StaleAnswer { id }) => {
                    tracing::debug!("an answer to request {id}, which is no longer open, was ignored")
                }
            }
        }
    }

    fn ticker(&self) {
        let mut machine = lock(&self.machine);
        loop {
            if machine.state() == State::Stopped {
                return;
            }
            machine = match machine.next_wake() {
                None => self.tick.wait(machine).unwrap_or_else(PoisonError::into_inner),
                Some(at) => match at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                    Some(left) => {
                        self.tick.wait_timeout(machine, left).unwrap_or_else(PoisonError::into_inner).0
                    }
                    None => {
                        let actions = machine.handle(Input::Tick, Instant::now());
                        self.carry_out(&actions);
                        machine
                    }
                },
            };
        }
    }
}

/// A poisoned lock is still used: the state behind these stays consistent (each update is
/// one assignment), and a service must still report its stop after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
