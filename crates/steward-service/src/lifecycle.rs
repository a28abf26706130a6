//! The life of a service as its manager sees it, as a pure state machine: inputs and the time
//! in, status reports and requests for the program out. No thread, no clock, no OS: the
//! platform adapters (the Windows Service Control Manager, systemd's notify socket, a console)
//! feed it and carry out what it returns, and its tests run it on a fake clock.
//!
//! What it guarantees, on every platform:
//! - Every pending state (starting, stopping, pausing, continuing) is reported with a
//!   checkpoint that starts at 1 and strictly rises, once per heartbeat and on each
//!   [`Input::Progress`], for as long as the program works on it and its budget lasts. The
//!   manager never sees a hung service while the program is busy (Windows' error 1053).
//! - When a budget is spent the ticks stop, so the manager's own timeout applies, and a
//!   [`Warning`] says so once. Starting may instead go on as running
//!   ([`AfterStartBudget::ReportRunning`]).
//! - Pause, Continue and Reload finish when the program acknowledges the [`Request`], or at
//!   once if it never asked for requests ([`Input::Subscribed`]). One that comes within
//!   [`Settings::subscribe_grace`] of ready, before the program asked, is held for it: the
//!   natural `ready()` then `controls()` loses nothing. A Reload that comes while one is
//!   open runs once more after it: what it asks to re-read may have changed since.
//! - The program's own end decides the exit: `Ok` is success unless it reported a failure
//!   ([`Input::Fail`]); an error is a service-specific code, never 0, so the manager's recovery
//!   (SCM failure actions, systemd's `Restart=`) acts on it.
//! - With nothing pending and no watchdog, [`Lifecycle::next_wake`] is `None`: no wakeups.

use std::time::{Duration, Instant};

/// What the service manager is told the service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Starting: the program works toward `ready()`.
    StartPending,
    /// Serving.
    Running,
    /// Running, re-reading its configuration (systemd's `RELOADING=1`; the SCM has no such
    /// state and sees Running).
    Reloading,
    /// Pausing: the program has the Pause request.
    PausePending,
    /// Paused (Windows).
    Paused,
    /// Continuing: the program has the Continue request.
    ContinuePending,
    /// Stopping: the program has the Stop, and its main has not returned yet.
    StopPending,
    /// Ended; the report carries the exit.
    Stopped,
}

impl State {
    /// Whether the state carries a checkpoint and a wait hint.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            State::StartPending | State::PausePending | State::ContinuePending | State::StopPending
        )
    }
}

/// How the service ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Main returned `Ok` and no failure was reported.
    Success,
    /// A service-specific failure code, never 0.
    Failure(u32),
}

/// One status report for the manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The state.
    pub state: State,
    /// 0 outside pending states; from 1, rising, within one.
    pub checkpoint: u32,
    /// How long the manager should wait for the next report (zero outside pending states).
    pub wait_hint: Duration,
    /// Set with [`State::Stopped`] only.
    pub exit: Option<Exit>,
}

/// Why the service is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The manager's Stop (SCM Stop, `systemctl stop`, SIGTERM under a manager), or the
    /// program's own (`Context::stop`).
    Requested,
    /// The system is shutting down (SCM Shutdown, CTRL_SHUTDOWN_EVENT).
    Shutdown,
    /// The SCM's Preshutdown: shutdown, with the service's preshutdown timeout to finish.
    Preshutdown,
    /// Ctrl+C or SIGINT at a console.
    Interrupt,
    /// SIGTERM, or the console window closing.
    Terminate,
    /// The program reported a failure itself ([`Input::Fail`]).
    Failed,
}

/// What the manager (or the console) asks of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop, and why.
    Stop(StopReason),
    /// Pause (Windows).
    Pause,
    /// Continue after a Pause (Windows).
    Continue,
    /// Re-read the configuration: SCM ParamChange, `systemctl reload`, SIGHUP.
    Reload,
}

/// A control handed to the program, to be acknowledged (or rejected) by its `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its id, for the answer.
    pub id: u64,
    /// What is asked.
    pub control: Control,
}

/// What happens to the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed: a wake-up at or after [`Lifecycle::next_wake`].
    Tick,
    /// The program is ready to serve.
    Ready,
    /// The program says it is still working, and how long the next step may take.
    Progress(Duration),
    /// The program takes requests: from now on Pause, Continue and Reload wait for its answer.
    Subscribed,
    /// A control from the manager or the console.
    Control(Control),
    /// The program finished the request `id`.
    Ack(u64),
    /// The program refused the request `id` (a Pause it cannot do now, a Reload that failed).
    Reject(u64),
    /// The program fails with this code: it is asked to stop, and ends as a failure.
    Fail(u32),
    /// The program's main returned: `Ok`, or an error with its code.
    Returned(Result<(), u32>),
}

/// A note for the service's log, from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The budget of a pending state was spent before it finished.
    BudgetSpent {
        /// The pending state.
        state: State,
        /// Its budget.
        budget: Duration,
        /// The start is reported Running anyway ([`AfterStartBudget::ReportRunning`]);
        /// otherwise the ticks stop and the manager's own timeout applies.
        reported_running: bool,
    },
    /// An acknowledgement or rejection for a request that is not (or no longer) open.
    StaleAnswer {
        /// The request's id.
        id: u64,
    },
}

/// What the adapter must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Tell the manager.
    Report(Report),
    /// Hand a request to the program (for Stop: also trip its stop token).
    Deliver(Request),
    /// systemd's `WATCHDOG=1`.
    Watchdog,
    /// A second Ctrl+C while stopping: the console wants out now.
    Abort,
    /// Note this in the service's log.
    Warn(Warning),
}

/// When a start is slower than its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStartBudget {
    /// Stop ticking: the manager's own start timeout decides (systemd's `TimeoutStartSec`, the
    /// SCM's wait hint).
    LeaveToManager,
    /// Report Running anyway, so a boot or `net start` is not held longer.
    ReportRunning,
}

/// The machine's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long starting may be reported as pending.
    pub start_budget: Duration,
    /// How long stopping may be reported as pending.
    pub stop_budget: Duration,
    /// For pausing and continuing.
    pub pause_budget: Duration,
    /// How often a pending state's checkpoint rises on its own.
    pub heartbeat: Duration,
    /// The wait hint sent with a pending state (until the program's own [`Input::Progress`]).
    pub wait_hint: Duration,
    /// What a start slower than its budget becomes.
    pub after_start_budget: AfterStartBudget,
    /// Send [`Action::Watchdog`] this often (half the manager's watchdog timeout).
    pub watchdog: Option<Duration>,
    /// A second Ctrl+C while stopping ends the process at once ([`Action::Abort`]).
    pub second_interrupt_aborts: bool,
    /// How long after ready a control waits for the program to ask for requests, before it
    /// is done at once as for a program that never asks.
    pub subscribe_grace: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            start_budget: Duration::from_secs(120),
            stop_budget: Duration::from_secs(30),
            pause_budget: Duration::from_secs(30),
            heartbeat: Duration::from_secs(1),
            wait_hint: Duration::from_secs(10),
            after_start_budget: AfterStartBudget::LeaveToManager,
            watchdog: None,
            second_interrupt_aborts: true,
            subscribe_grace: Duration::from_secs(1),
        }
    }
}

/// Controls held for a program that is about to ask for requests, at most.
const MAX_HELD: usize = 8;

/// A pending state's clock.
#[derive(Clone, Copy, Debug)]
struct Pending {
    checkpoint: u32,
    hint: Duration,
    /// When the checkpoint rises next on its own.
    next_tick: Instant,
    /// When the budget is spent; `None` once it was (and said so).
    deadline: Option<Instant>,
    budget: Duration,
}

/// One service's lifecycle. Start it with [`Lifecycle::start`].
#[derive(Debug)]
pub struct Lifecycle {
    settings: Settings,
    state: State,
    pending: Option<Pending>,
    /// The request the program has yet to answer (Pause, Continue, Reload).
    open: Option<Request>,
    /// The id of the Stop handed to the program, which needs no answer.
    stop: Option<u64>,
    next_id: u64,
    subscribed: bool,
    /// A Reload came while one was open: ask again once it is answered.
    reload_again: bool,
    /// Controls held for a program that has not asked for requests yet, and until when.
    held: Vec<Control>,
    held_until: Option<Instant>,
    /// When the program said it was ready.
    ready_at: Option<Instant>,
    /// The code of a failure the program reported.
    failed: Option<u32>,
    /// How it ended, once [`State::Stopped`].
    exit: Option<Exit>,
    next_watchdog: Option<Instant>,
}

impl Lifecycle {
    /// A service that has just been started: reports StartPending, checkpoint 1.
    pub fn start(settings: Settings, now: Instant) -> (Lifecycle, Vec<Action>) {
        let mut machine = Lifecycle {
            settings,
            state: State::StartPending,
            pending: None,
            open: None,
            stop: None,
            next_id: 1,
            subscribed: false,
            reload_again: false,
            held: Vec::new(),
            held_until: None,
            ready_at: None,
            failed: None,
            exit: None,
            next_watchdog: settings.watchdog.map(|period| later(now, period)),
        };
        let mut out = Vec::new();
        machine.enter(State::StartPending, now, &mut out);
        (machine, out)
    }

    /// The state the manager was last told.
    pub fn state(&self) -> State {
        self.state
    }

    /// The report the manager has now (for an Interrogate); once stopped, with the exit.
    pub fn current(&self) -> Report {
        self.report()
    }

    /// When to feed [`Input::Tick`] next, if ever.
    pub fn next_wake(&self) -> Option<Instant> {
        let tick = self.pending.and_then(|p| p.deadline.map(|deadline| p.next_tick.min(deadline)));
        [tick, self.next_watchdog, self.held_until].into_iter().flatten().min()
    }

    /// Feed one input at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Stopped {
            return out;
        }
        match input {
            Input::Tick => self.tick(now, &mut out),
            Input::Ready => {
                if self.state == State::StartPending {
                    self.ready_at = Some(now);
                    self.enter(State::Running, now, &mut out);
                }
            }
            Input::Progress(hint) => self.progress(hint, now, &mut out),
            Input::Subscribed => {
                self.subscribed = true;
                self.release_held(now, &mut out);
            }
            Input::Control(control) => self.control(control, now, &mut out),
            Input::Ack(id) => self.answer(id, true, now, &mut out),
            Input::Reject(id) => self.answer(id, false, now, &mut out),
            Input::Fail(code) => {
                self.failed = Some(code.max(1));
                self.control(Control::Stop(StopReason::Failed), now, &mut out);
            }
            Input::Returned(result) => {
                let exit = match (result, self.failed) {
                    (Err(code), _) => Exit::Failure(code.max(1)),
                    (Ok(()), Some(code)) => Exit::Failure(code),
                    (Ok(()), None) => Exit::Success,
                };
                self.open = None;
                self.reload_again = false;
                self.pending = None;
                self.next_watchdog = None;
                self.held.clear();
                self.held_until = None;
                self.state = State::Stopped;
                self.exit = Some(exit);
                out.push(Action::Report(self.report()));
            }
        }
        out
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.held_until.is_some_and(|until| now >= until) {
            // Nobody asked in time: as for a program that never does.
            self.release_held(now, out);
        }
        if let Some(at) = self.next_watchdog {
            if now >= at {
                out.push(Action::Watchdog);
                // From `now`, not `at`: a late wake-up must not send a burst.
                self.next_watchdog = self.settings.watchdog.map(|period| later(now, period));
            }
        }
        let Some(mut pending) = self.pending else { return };
        let Some(deadline) = pending.deadline else { return };
        if now >= deadline {
            pending.deadline = None;
            self.pending = Some(pending);
            let reported_running = self.state == State::StartPending
                && self.settings.after_start_budget == AfterStartBudget::ReportRunning;
            out.push(Action::Warn(Warning::BudgetSpent {
                state: self.state,
                budget: pending.budget,
                reported_running,
            }));
            if reported_running {
                self.enter(State::Running, now, out);
            }
            return;
        }
        if now >= pending.next_tick {
            pending.checkpoint = pending.checkpoint.saturating_add(1);
            pending.next_tick = later(now, self.settings.heartbeat);
            self.pending = Some(pending);
            out.push(Action::Report(self.report()));
        }
    }

    fn progress(&mut self, hint: Duration, now: Instant, out: &mut Vec<Action>) {
        let Some(mut pending) = self.pending else { return };
        pending.checkpoint = pending.checkpoint.saturating_add(1);
        pending.hint = hint;
        pending.next_tick = later(now, self.settings.heartbeat);
        // The program vouches for this much more time, even past its budget.
        let wanted = later(now, hint);
        pending.deadline = Some(pending.deadline.map_or(wanted, |d| d.max(wanted)));
        self.pending = Some(pending);
        out.push(Action::Report(self.report()));
    }

    fn control(&mut self, control: Control, now: Instant, out: &mut Vec<Action>) {
        if !matches!(control, Control::Stop(_)) && !self.subscribed {
            let grace_end = self.ready_at.map(|at| later(at, self.settings.subscribe_grace));
            if let Some(until) = grace_end.filter(|until| now < *until || self.held_until.is_some()) {
                // A repeat adds nothing, and a flood is bounded.
                if self.held.last() != Some(&control) && self.held.len() < MAX_HELD {
                    self.held.push(control);
                }
                self.held_until = Some(until);
                return;
            }
        }
        self.apply(control, now, out);
    }

    fn apply(&mut self, control: Control, now: Instant, out: &mut Vec<Action>) {
        match (control, self.state) {
            (Control::Stop(StopReason::Interrupt), State::StopPending)
                if self.settings.second_interrupt_aborts =>
            {
                out.push(Action::Abort);
            }
            (Control::Stop(_), State::StopPending) => {}
            (Control::Stop(reason), _) => {
                // Whatever was open or held is moot now; a late answer to it is ignored.
                self.open = None;
                self.reload_again = false;
                self.held.clear();
                self.held_until = None;
                self.enter(State::StopPending, now, out);
                let request = self.request(Control::Stop(reason));
                self.stop = Some(request.id);
                out.push(Action::Deliver(request));
            }
            (Control::Pause, State::Running) => {
                self.enter(State::PausePending, now, out);
                self.ask(Control::Pause, State::Paused, now, out);
            }
            (Control::Continue, State::Paused) => {
                self.enter(State::ContinuePending, now, out);
                self.ask(Control::Continue, State::Running, now, out);
            }
            (Control::Reload, State::Running) => {
                self.enter(State::Reloading, now, out);
                self.ask(Control::Reload, State::Running, now, out);
            }
            // One is being done, but it may have read what changed since: once more after it
            // (many coalesce into one).
            (Control::Reload, State::Reloading) => self.reload_again = true,
            // Not now (a Pause while starting, a Reload while paused ...): the manager keeps
            // seeing the current state.
            _ => {}
        }
    }

    /// The held controls, in order: delivered if the program now takes requests, else done.
    fn release_held(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.held_until = None;
        for control in std::mem::take(&mut self.held) {
            self.apply(control, now, out);
        }
    }

    /// Hand `control` to the program if it takes requests; else it is done at once.
    fn ask(&mut self, control: Control, done: State, now: Instant, out: &mut Vec<Action>) {
        if self.subscribed {
            let request = self.request(control);
            self.open = Some(request);
            out.push(Action::Deliver(request));
        } else {
            self.enter(done, now, out);
        }
    }

    fn answer(&mut self, id: u64, done: bool, now: Instant, out: &mut Vec<Action>) {
        let Some(open) = self.open.filter(|r| r.id == id) else {
            // A Stop needs no answer: its end is the program's return.
            if self.stop != Some(id) {
                out.push(Action::Warn(Warning::StaleAnswer { id }));
            }
            return;
        };
        self.open = None;
        let next = match (open.control, done) {
            (Control::Pause, true) | (Control::Continue, false) => State::Paused,
            (Control::Pause, false) | (Control::Continue, true) | (Control::Reload, _) => State::Running,
            (Control::Stop(_), _) => return,
        };
        self.enter(next, now, out);
        if next == State::Running && std::mem::take(&mut self.reload_again) {
            self.apply(Control::Reload, now, out);
        }
    }

    fn request(&mut self, control: Control) -> Request {
        let request = Request { id: self.next_id, control };
        self.next_id += 1;
        request
    }

    fn enter(&mut self, state: State, now: Instant, out: &mut Vec<Action>) {
        self.state = state;
        self.pending = state.is_pending().then(|| {
            let budget = match state {
                State::StartPending => self.settings.start_budget,
                State::StopPending => self.settings.stop_budget,
                _ => self.settings.pause_budget,
            };
            Pending {
                checkpoint: 1,
                hint: self.settings.wait_hint,
                next_tick: later(now, self.settings.heartbeat),
                deadline: Some(later(now, budget)),
                budget,
            }
        });
        out.push(Action::Report(self.report()));
    }

    fn report(&self) -> Report {
        let (checkpoint, wait_hint) = self.pending.map_or((0, Duration::ZERO), |p| (p.checkpoint, p.hint));
        Report { state: self.state, checkpoint, wait_hint, exit: self.exit }
    }
}

/// `t + d`, or as late as an `Instant` goes: a budget of years must not panic.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(|| {
        // The largest representable instant is found by halving: rare, and only for absurd
        // budgets.
        let mut step = d;
        let mut at = t;
        while !step.is_zero() {
            if let Some(next) = at.checked_add(step) {
                at = next;
            } else {
                step /= 2;
            }
        }
        at
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A machine on a fake clock, with every report kept.
    struct Run {
        machine: Lifecycle,
        now: Instant,
        actions: Vec<Action>,
    }

    impl Run {
        fn new(settings: Settings) -> Run {
            let now = Instant::now();
            let (machine, actions) = Lifecycle::start(settings, now);
            Run { machine, now, actions }
        }

        fn send(&mut self, input: Input) -> Vec<Action> {
            let out = self.machine.handle(input, self.now);
            self.actions.extend(&out);
            out
        }

        /// Let time pass up to `until` from the start of this call, waking whenever the
        /// machine asks to, as an adapter does.
        fn wait(&mut self, span: Duration) -> Vec<Action> {
            let until = self.now + span;
            let mut out = Vec::new();
            while let Some(at) = self.machine.next_wake().filter(|&at| at <= until) {
                assert!(at >= self.now || out.is_empty(), "a wake-up in the past after a tick");
                self.now = at.max(self.now);
                out.extend(self.send(Input::Tick));
            }
            self.now = until;
            out
        }

        fn reports(actions: &[Action]) -> Vec<Report> {
            actions.iter().filter_map(|a| if let Action::Report(r) = a { Some(*r) } else { None }).collect()
        }

        fn delivered(actions: &[Action]) -> Vec<Request> {
            actions.iter().filter_map(|a| if let Action::Deliver(r) = a { Some(*r) } else { None }).collect()
        }
    }

    fn settings() -> Settings {
        Settings { start_budget: 10 * S, stop_budget: 5 * S, pause_budget: 3 * S, ..Settings::default() }
    }

    #[test]
    fn a_slow_start_ticks_with_rising_checkpoints_until_ready() {
        let mut run = Run::new(settings());
        assert_eq!(Run::reports(&run.actions)[0].state, State::StartPending);
        assert_eq!(Run::reports(&run.actions)[0].checkpoint, 1);
        let ticks = Run::reports(&run.wait(S * 4 + S / 2));
        assert_eq!(ticks.iter().map(|r| r.checkpoint).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert!(ticks.iter().all(|r| r.state == State::StartPending && r.wait_hint == 10 * S));
        let ready = Run::reports(&run.send(Input::Ready));
        assert_eq!(
            ready,
            [Report { state: State::Running, checkpoint: 0, wait_hint: Duration::ZERO, exit: None }]
        );
        assert_eq!(run.machine.next_wake(), None, "running without a watchdog wakes nobody");
    }

    #[test]
    fn a_spent_budget_stops_the_ticks_and_says_so_once() {
        let mut run = Run::new(settings());
        let out = run.wait(60 * S);
        let reports = Run::reports(&out);
        // Ticks at 1 s .. 9 s; the one at 10 s is the budget's end.
        assert_eq!(reports.last().unwrap().checkpoint, 10);
        let warnings: Vec<_> = out.iter().filter(|a| matches!(a, Action::Warn(_))).collect();
        assert_eq!(
            warnings,
            [&Action::Warn(Warning::BudgetSpent {
                state: State::StartPending,
                budget: 10 * S,
                reported_running: false
            })]
        );
        assert_eq!(run.machine.next_wake(), None);
        assert_eq!(run.machine.state(), State::StartPending, "the manager's own timeout decides");
        // A late ready() still counts.
        assert_eq!(Run::reports(&run.send(Input::Ready))[0].state, State::Running);
    }

    #[test]
    fn a_start_past_its_budget_can_be_reported_running() {
        let mut run =
            Run::new(Settings { after_start_budget: AfterStartBudget::ReportRunning, ..settings() });
        let out = run.wait(11 * S);
        assert_eq!(Run::reports(&out).last().unwrap().state, State::Running);
        assert!(out.contains(&Action::Warn(Warning::BudgetSpent {
            state: State::StartPending,
            budget: 10 * S,
            reported_running: true
        })));
        assert!(run.send(Input::Ready).is_empty(), "ready() after that changes nothing");
    }

    #[test]
    fn progress_raises_the_checkpoint_sets_the_hint_and_buys_time() {
        let mut run = Run::new(settings());
        run.wait(9 * S);
        let out = Run::reports(&run.send(Input::Progress(30 * S)));
        assert_eq!(out[0].checkpoint, 11);
        assert_eq!(out[0].wait_hint, 30 * S);
        // The budget would have ended at 10 s; the program vouched for 30 s more.
        let later = Run::reports(&run.wait(25 * S));
        assert!(later.iter().all(|r| r.state == State::StartPending));
        assert_eq!(later.last().unwrap().checkpoint, 36);
        assert!(run.wait(60 * S).iter().any(|a| matches!(a, Action::Warn(Warning::BudgetSpent { .. }))));
    }

    #[test]
    fn checkpoints_strictly_rise_within_every_pending_state() {
        let mut run = Run::new(settings());
        run.send(Input::Subscribed);
        run.wait(2 * S);
        run.send(Input::Ready);
        run.send(Input::Control(Control::Pause));
        run.wait(2 * S);
        let pause = Run::delivered(&run.actions)[0];
        run.send(Input::Ack(pause.id));
        run.send(Input::Control(Control::Continue));
        run.send(Input::Progress(S));
        run.wait(S);
        let cont = Run::delivered(&run.actions)[1];
        run.send(Input::Ack(cont.id));
        run.send(Input::Control(Control::Stop(StopReason::Requested)));
        run.wait(3 * S);
        run.send(Input::Returned(Ok(())));
        let mut last: Option<Report> = None;
        for report in Run::reports(&run.actions) {
            if let Some(prev) = last.filter(|p| p.state == report.state && report.state.is_pending()) {
                assert!(report.checkpoint > prev.checkpoint, "{prev:?} then {report:?}");
            }
            assert_eq!(report.state.is_pending(), report.checkpoint > 0, "{report:?}");
            last = Some(report);
        }
        let states: Vec<State> = Run::reports(&run.actions).iter().map(|r| r.state).collect();
        let mut distinct = states.clone();
        distinct.dedup();
        use State::*;
        assert_eq!(
            distinct,
            [StartPending, Running, PausePending, Paused, ContinuePending, Running, StopPending, Stopped]
        );
    }

    #[test]
    fn the_end_of_main_decides_the_exit() {
        let cases: [(&str, Vec<Input>, Exit); 5] = [
            ("Ok", vec![Input::Returned(Ok(()))], Exit::Success),
            ("Err with a code", vec![Input::Returned(Err(7))], Exit::Failure(7)),
            ("Err with code 0 is still a failure", vec![Input::Returned(Err(0))], Exit::Failure(1)),
            ("fail(3), then Ok", vec![Input::Fail(3), Input::Returned(Ok(()))], Exit::Failure(3)),
            ("fail(3), then Err(9)", vec![Input::Fail(3), Input::Returned(Err(9))], Exit::Failure(9)),
        ];
        for (what, inputs, want) in cases {
            let mut run = Run::new(settings());
            run.send(Input::Ready);
            for input in inputs {
                run.send(input);
            }
            let last = *Run::reports(&run.actions).last().unwrap();
            assert_eq!(
                last,
                Report { state: State::Stopped, checkpoint: 0, wait_hint: Duration::ZERO, exit: Some(want) },
                "{what}"
            );
            assert_eq!(run.machine.next_wake(), None, "{what}");
            assert!(
                run.send(Input::Control(Control::Stop(StopReason::Requested))).is_empty(),
                "{what}: stopped is final"
            );
        }
    }

    #[test]
    fn a_failure_asks_the_program_to_stop() {
        let mut run = Run::new(settings());
        run.send(Input::Ready);
        let out = run.send(Input::Fail(4));
        assert_eq!(Run::reports(&out)[0].state, State::StopPending);
        assert_eq!(Run::delivered(&out)[0].control, Control::Stop(StopReason::Failed));
    }

    #[test]
    fn pause_is_done_at_once_for_a_program_that_takes_no_requests() {
        let mut run = Run::new(settings());
        run.send(Input::Ready);
        // Past the grace in which a control waits for the program to ask.
        run.wait(2 * S);
        let out = run.send(Input::Control(Control::Pause));
        let states: Vec<State> = Run::reports(&out).iter().map(|r| r.state).collect();
        assert_eq!(states, [State::PausePending, State::Paused]);
        assert!(Run::delivered(&out).is_empty());
        let out = run.send(Input::Control(Control::Continue));
        let states: Vec<State> = Run::reports(&out).iter().map(|r| r.state).collect();
        assert_eq!(states, [State::ContinuePending, State::Running]);
    }

    #[test]
    fn a_subscribed_program_answers_pause_continue_and_reload() {
        let mut run = Run::new(settings());
        run.send(Input::Subscribed);
        run.send(Input::Ready);
        let pause = Run::delivered(&run.send(Input::Control(Control::Pause)))[0];
        assert_eq!(run.machine.state(), State::PausePending);
        // Refused: back to running.
        assert_eq!(Run::reports(&run.send(Input::Reject(pause.id)))[0].state, State::Running);
        let pause = Run::delivered(&run.send(Input::Control(Control::Pause)))[0];
        assert_eq!(Run::reports(&run.send(Input::Ack(pause.id)))[0].state, State::Paused);
        assert!(run.send(Input::Control(Control::Reload)).is_empty(), "no reload while paused");
        let cont = Run::delivered(&run.send(Input::Control(Control::Continue)))[0];
        assert_eq!(Run::reports(&run.send(Input::Reject(cont.id)))[0].state, State::Paused);
        let cont = Run::delivered(&run.send(Input::Control(Control::Continue)))[0];
        assert_eq!(Run::reports(&run.send(Input::Ack(cont.id)))[0].state, State::Running);
        let out = run.send(Input::Control(Control::Reload));
        assert_eq!(Run::reports(&out)[0].state, State::Reloading);
        let reload = Run::delivered(&out)[0];
        assert_eq!(reload.control, Control::Reload);
        assert_eq!(run.machine.next_wake(), None, "reloading is not a pending state: no ticks");
        assert_eq!(Run::reports(&run.send(Input::Ack(reload.id)))[0].state, State::Running);
    }

    #[test]
    fn reloads_during_a_reload_run_once_more_after_it() {
        let mut run = Run::new(settings());
        run.send(Input::Subscribed);
        run.send(Input::Ready);
        let first = Run::delivered(&run.send(Input::Control(Control::Reload)))[0];
        assert!(run.send(Input::Control(Control::Reload)).is_empty(), "nothing until answered");
        assert!(run.send(Input::Control(Control::Reload)).is_empty());
        // Refused or done, the file may have changed since it was read: once more.
        let out = run.send(Input::Reject(first.id));
        let states: Vec<State> = Run::reports(&out).iter().map(|r| r.state).collect();
        assert_eq!(states, [State::Running, State::Reloading]);
        let again = Run::delivered(&out);
        assert_eq!(again.len(), 1, "many coalesce into one: {again:?}");
        assert_eq!(again[0].control, Control::Reload);
        let out = run.send(Input::Ack(again[0].id));
        assert_eq!(Run::reports(&out).iter().map(|r| r.state).collect::<Vec<_>>(), [State::Running]);
        assert!(Run::delivered(&out).is_empty(), "and no more");
        // A Stop drops a Reload still to come.
        let open = Run::delivered(&run.send(Input::Control(Control::Reload)))[0];
        run.send(Input::Control(Control::Reload));
        run.send(Input::Control(Control::Stop(StopReason::Requested)));
        assert!(Run::delivered(&run.send(Input::Ack(open.id))).is_empty());
    }

    #[test]
    fn a_control_right_after_ready_waits_for_the_program_to_ask() {
        let mut run = Run::new(settings());
        run.send(Input::Ready);
        assert!(run.send(Input::Control(Control::Reload)).is_empty(), "held, nothing reported yet");
        assert!(run.send(Input::Control(Control::Reload)).is_empty());
        let out = run.send(Input::Subscribed);
        assert_eq!(Run::reports(&out)[0].state, State::Reloading);
        let delivered = Run::delivered(&out);
        assert_eq!(delivered.len(), 1, "a repeat adds nothing: {delivered:?}");
        assert_eq!(delivered[0].control, Control::Reload);
        assert_eq!(Run::reports(&run.send(Input::Ack(delivered[0].id)))[0].state, State::Running);
        assert_eq!(run.machine.next_wake(), None);
    }

    #[test]
    fn a_held_control_is_done_at_once_when_nobody_asks_in_time() {
        let mut run = Run::new(settings());
        run.send(Input::Ready);
        assert!(run.send(Input::Control(Control::Pause)).is_empty());
        assert!(run.send(Input::Control(Control::Continue)).is_empty());
        let out = run.wait(2 * S);
        let states: Vec<State> = Run::reports(&out).iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            [State::PausePending, State::Paused, State::ContinuePending, State::Running],
            "in order, at the grace's end"
        );
        assert!(Run::delivered(&out).is_empty());
        // After the grace, nothing is held.
        let out = run.send(Input::Control(Control::Reload));
        assert_eq!(
            Run::reports(&out).iter().map(|r| r.state).collect::<Vec<_>>(),
            [State::Reloading, State::Running]
        );
        assert_eq!(run.machine.next_wake(), None);
    }

    #[test]
    fn a_stop_drops_what_was_held() {
        let mut run = Run::new(settings());
        run.send(Input::Ready);
        run.send(Input::Control(Control::Pause));
        let out = run.send(Input::Control(Control::Stop(StopReason::Requested)));
        assert_eq!(Run::reports(&out)[0].state, State::StopPending);
        assert!(Run::delivered(&run.send(Input::Subscribed)).is_empty(), "the pause is moot");
        assert!(Run::reports(&run.wait(2 * S)).iter().all(|r| r.state == State::StopPending));
    }

    #[test]
    fn a_pause_past_its_budget_stops_ticking() {
        let mut run = Run::new(settings());
        run.send(Input::Subscribed);
        run.send(Input::Ready);
        run.send(Input::Control(Control::Pause));
        let out = run.wait(10 * S);
        assert_eq!(Run::reports(&out).last().unwrap().checkpoint, 3);
        assert!(out.contains(&Action::Warn(Warning::BudgetSpent {
            state: State::PausePending,
            budget: 3 * S,
            reported_running: false
        })));
        assert_eq!(run.machine.next_wake(), None);
    }

    #[test]
    fn stop_overrides_an_open_request_and_its_late_answer_is_ignored() {
        let mut run = Run::new(settings());
        run.send(Input::Subscribed);
        run.send(Input::Ready);
        let pause = Run::delivered(&run.send(Input::Control(Control::Pause)))[0];
        let out = run.send(Input::Control(Control::Stop(StopReason::Shutdown)));
        assert_eq!(Run::reports(&out)[0].state, State::StopPending);
        let stop = Run::delivered(&out)[0];
        assert_eq!(stop.control, Control::Stop(StopReason::Shutdown));
        assert_eq!(run.send(Input::Ack(pause.id)), [Action::Warn(Warning::StaleAnswer { id: pause.id })]);
        assert!(run.send(Input::Ack(stop.id)).is_empty(), "a stop needs no answer");
        assert_eq!(run.machine.state(), State::StopPending);
        assert!(
            run.send(Input::Control(Control::Stop(StopReason::Requested))).is_empty(),
            "one stop is enough"
        );
    }

    #[test]
    fn a_stop_while_starting_is_taken() {
        let mut run = Run::new(settings());
        let out = run.send(Input::Control(Control::Stop(StopReason::Interrupt)));
        assert_eq!(
            Run::reports(&out)[0],
            Report { state: State::StopPending, checkpoint: 1, wait_hint: 10 * S, exit: None }
        );
        assert!(run.send(Input::Ready).is_empty(), "ready() while stopping changes nothing");
    }

    #[test]
    fn a_second_interrupt_while_stopping_aborts_when_asked_to() {
        for aborts in [true, false] {
            let mut run = Run::new(Settings { second_interrupt_aborts: aborts, ..settings() });
            run.send(Input::Control(Control::Stop(StopReason::Interrupt)));
            let out = run.send(Input::Control(Control::Stop(StopReason::Interrupt)));
            assert_eq!(out.contains(&Action::Abort), aborts);
        }
    }

    #[test]
    fn the_watchdog_pings_every_period_from_start_to_end() {
        let mut run = Run::new(Settings { watchdog: Some(5 * S), ..settings() });
        run.send(Input::Ready);
        let out = run.wait(26 * S);
        assert_eq!(out.iter().filter(|a| **a == Action::Watchdog).count(), 5);
        // A late wake-up sends one ping, not a burst.
        run.now += 60 * S;
        assert_eq!(run.send(Input::Tick), [Action::Watchdog]);
        run.send(Input::Returned(Ok(())));
        assert_eq!(run.machine.next_wake(), None);
    }

    #[test]
    fn budgets_of_centuries_do_not_overflow() {
        let huge = Duration::from_secs(u64::MAX);
        let mut run =
            Run::new(Settings { start_budget: huge, heartbeat: huge, watchdog: Some(huge), ..settings() });
        run.send(Input::Progress(huge));
        run.wait(S);
        run.send(Input::Ready);
    }

    mod any_order {
        use proptest::prelude::*;

        use super::*;

        fn input() -> impl Strategy<Value = (u64, Input)> {
            let input = prop_oneof![
                Just(Input::Tick),
                Just(Input::Ready),
                (0u64..20).prop_map(|s| Input::Progress(Duration::from_secs(s))),
                Just(Input::Subscribed),
                Just(Input::Control(Control::Pause)),
                Just(Input::Control(Control::Continue)),
                Just(Input::Control(Control::Reload)),
                Just(Input::Control(Control::Stop(StopReason::Requested))),
                Just(Input::Control(Control::Stop(StopReason::Interrupt))),
                (0u64..6).prop_map(Input::Ack),
                (0u64..6).prop_map(Input::Reject),
                (0u32..3).prop_map(Input::Fail),
                Just(Input::Returned(Ok(()))),
                (0u32..3).prop_map(|c| Input::Returned(Err(c))),
            ];
            // Milliseconds to wait before the input.
            (0u64..4000, input)
        }

        proptest! {
            /// Whatever happens in whatever order: checkpoints rise within a pending state,
            /// only pending states have one, the end is reported once and is final, an
            /// exit is never "failure 0", a machine with nothing pending sleeps, and a tick
            /// leaves nothing due.
            #[test]
            fn the_rules_hold_for_any_sequence(
                inputs in proptest::collection::vec(input(), 0..60),
                watchdog in proptest::option::of(1u64..5),
            ) {
                let settings = Settings { watchdog: watchdog.map(Duration::from_secs), ..settings() };
                let mut now = Instant::now();
                let (mut machine, mut reports) = Lifecycle::start(settings, now);
                for (wait, input) in inputs {
                    now += Duration::from_millis(wait);
                    let before = machine.state();
                    let out = machine.handle(input, now);
                    if before == State::Stopped {
                        prop_assert!(out.is_empty());
                    }
                    reports.extend(out);
                    let idle = !machine.state().is_pending()
                        && machine.held.is_empty()
                        && (settings.watchdog.is_none() || machine.state() == State::Stopped);
                    if idle {
                        prop_assert_eq!(machine.next_wake(), None);
                    }
                    // A tick takes all that is due: an adapter that wakes at next_wake() never spins.
                    if input == Input::Tick {
                        prop_assert!(machine.next_wake().is_none_or(|at| at > now));
                    }
                }
                let reports = Run::reports(&reports);
                let mut last: Option<Report> = None;
                for r in &reports {
                    prop_assert_eq!(r.state.is_pending(), r.checkpoint > 0);
                    prop_assert_eq!(r.state == State::Stopped, r.exit.is_some());
                    prop_assert_ne!(r.exit, Some(Exit::Failure(0)));
                    if let Some(p) = last {
                        prop_assert_ne!(p.state, State::Stopped);
                        if p.state == r.state && r.state.is_pending() {
                            prop_assert!(r.checkpoint > p.checkpoint);
                        }
                    }
                    last = Some(*r);
                }
            }
        }
    }
}
