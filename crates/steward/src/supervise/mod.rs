//! The supervisor: one task per program ([`program`]), a dependency scheduler deciding what
//! starts or stops next, and the loop that ties them together.
//!
//! The loop waits on three things only: a state change from a program, a control request
//! (from the API), and the shutdown future. After each state change it logs it, publishes
//! it as an event, and asks the scheduler which orders are due. It never blocks: requests
//! that must wait for a state ("start returns once running") get `watch` receivers and
//! wait on their own side ([`control::wait_for`]).

mod commands;
pub mod control;
mod observe;
pub mod program;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::time::SystemTime;

use anyhow::Context as _;
use steward_core::config::Config;
use steward_core::fsm::{Event, Reason, State};
use steward_core::reload::{self, Diff};
use steward_core::schedule::{Order, Scheduler};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use control::{Control, ControlError, ControlReceiver, Target, Verb};
pub use program::{Notice, ProgramHandle, Status};

use crate::api::types::{EventRecord, ProgramInfo, ReloadReply, StatusReply};

/// How many past events `steward events` shows before following.
const EVENT_HISTORY: usize = 256;

/// Run the programs of `config` until `shutdown` completes (or a shutdown request arrives
/// on `control`), then stop them all in reverse dependency order and return. Signals, a
/// service manager's stop request and tests all end the run the same way.
pub async fn run(
    config: Config,
    control: ControlReceiver,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut sup = Supervisor::new(config)?;
    let mut control = control.0;
    sup.start_autostart();
    tokio::pin!(shutdown);
    let mut control_open = true;
    loop {
        tokio::select! {
            () = &mut shutdown, if !sup.shutting_down => sup.begin_shutdown(),
            Some(notice) = sup.notices_rx.recv() => sup.on_notice(notice),
            happening = sup.observe.next() => sup.on_observed(happening),
            request = control.recv(), if control_open => match request {
                Some(request) => sup.on_request(request),
                None => control_open = false,
            },
        }
        if sup.shutting_down && sup.scheduler.is_idle() && sup.all_down() {
            break;
        }
    }
    sup.finish().await;
    tracing::info!(event = "exit", "all programs stopped");
    Ok(())
}

struct Supervisor {
    config: Config,
    programs: BTreeMap<String, ProgramHandle>,
    /// The last state each program reported (the scheduler reads these).
    states: BTreeMap<String, State>,
    scheduler: Scheduler,
    notices_tx: mpsc::UnboundedSender<Notice>,
    notices_rx: mpsc::UnboundedReceiver<Notice>,
    events: broadcast::Sender<EventRecord>,
    history: VecDeque<EventRecord>,
    reload: Option<PendingReload>,
    shutting_down: bool,
    /// Tasks of programs removed by a reload, finishing (draining their logs).
    retired: Vec<tokio::task::JoinHandle<()>>,
    /// READY=1, STATUS=, STOPPING=1 and the watchdog for systemd (no-ops without it).
    sd_notify: crate::service::sdnotify::Notifier,
    /// Health checks, resource limits and alert rules ([`observe`]).
    observe: observe::Observers,
}

/// A reload between its two phases: the programs it removes or changes are stopping.
struct PendingReload {
    config: Config,
    diff: Diff,
    /// Orders the stops among the programs being replaced (dependents first).
    stops: Scheduler,
    /// Must be down before phase two.
    stopping: BTreeSet<String>,
    /// Changed programs that were running: they start again with their new definition.
    restart: BTreeSet<String>,
    reply: oneshot::Sender<Result<ReloadReply, ControlError>>,
}

impl Supervisor {
    fn new(config: Config) -> anyhow::Result<Self> {
        let settings = &config.supervisor;
        for (what, dir) in [("state_dir", &settings.state_dir), ("log_dir", &settings.log_dir)] {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create {what} {}; check the path and its permissions", dir.display())
            })?;
        }
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(deps_of(&config));
        let mut sup = Supervisor {
            programs: BTreeMap::new(),
            states: BTreeMap::new(),
            scheduler,
            notices_tx,
            notices_rx,
            events: broadcast::channel(1024).0,
            history: VecDeque::with_capacity(EVENT_HISTORY),
            reload: None,
            shutting_down: false,
            retired: Vec::new(),
            sd_notify: crate::service::sdnotify::Notifier::new(&config),
            observe: observe::Observers::new(&config),
            config,
        };
        for name in sup.config.programs.keys().cloned().collect::<Vec<_>>() {
            sup.add_program(&name);
        }
        Ok(sup)
    }

    fn add_program(&mut self, name: &str) {
        let spec = self.config.programs[name].clone();
        let handle = ProgramHandle::spawn(
            spec,
            &self.config.supervisor.log_dir,
            &self.config.supervisor.state_dir,
            self.notices_tx.clone(),
        );
        self.observe.add_program(&handle.spec);
        self.programs.insert(name.to_string(), handle);
        self.states.insert(name.to_string(), State::Stopped);
    }

    fn start_autostart(&mut self) {
        let names: Vec<String> =
            self.programs.iter().filter(|(_, h)| h.spec.autostart).map(|(n, _)| n.clone()).collect();
        for name in &names {
            self.scheduler.want_started(name);
        }
        self.dispatch();
        self.sd_notify.update(&self.states);
        for (name, blockers) in self.scheduler.waiting(|n| self.view(n)) {
            tracing::info!(program = %name, event = "waiting", "waiting for {} to be running", blockers.join(", "));
        }
    }

    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        tracing::info!(event = "shutdown", "stopping all programs");
        self.sd_notify.stopping();
        if let Some(pending) = self.reload.take() {
            let _ = pending.reply.send(Err(ControlError::ShuttingDown));
        }
        self.scheduler.want_all_stopped();
        self.dispatch();
    }

    fn on_notice(&mut self, notice: Notice) {
        // A notice from a task that a reload already replaced is stale.
        let current = self.programs.get(&*notice.program).is_some_and(|h| h.is(&notice));
        if !current {
            return;
        }
        log_change(&notice);
        self.publish(&notice);
        self.states.insert(notice.program.to_string(), notice.change.to);
        if let Some(spec) = self.programs.get(&*notice.program).map(|p| p.spec.clone()) {
            let effects = self.observe.on_state(&spec, &notice);
            self.apply(effects);
        }
        if !self.shutting_down {
            self.sd_notify.update(&self.states);
        }
        self.dispatch();
        self.advance_reload();
    }

    fn publish(&mut self, n: &Notice) {
        let record = EventRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            program: n.program.to_string(),
            kind: "state".into(),
            from: Some(n.change.from.name().into()),
            to: Some(n.change.to.name().into()),
            message: n.change.reason.to_string(),
            pid: n.status.pid,
            exit: match &n.change.reason {
                Reason::Exited { status, .. } | Reason::StoppedWith(status) => Some((*status).into()),
                _ => None,
            },
        };
        self.push_event(record);
    }

    /// Keep `record` in the history and send it to whoever follows events.
    fn push_event(&mut self, record: EventRecord) {
        if self.history.len() == EVENT_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(record.clone());
        let _ = self.events.send(record);
    }

    /// Send the orders the schedulers say are due.
    fn dispatch(&mut self) {
        let (states, observe) = (&self.states, &self.observe);
        let mut orders = self.scheduler.due(|n| observe::ready_view(states, observe, n));
        if let Some(pending) = &mut self.reload {
            orders.extend(pending.stops.due(|n| states.get(n).copied()));
        }
        for order in orders {
            let (name, event) = match order {
                Order::Start(n) => (n, Event::Start),
                Order::Stop(n) => (n, Event::Stop),
            };
            if let Some(p) = self.programs.get(&name) {
                p.send(event);
            }
        }
    }

    fn all_down(&self) -> bool {
        self.states.values().all(|s| s.is_down())
    }

    fn on_request(&mut self, request: control::Request) {
        use control::Request::*;
        match request {
            Status(reply) => {
                let _ = reply.send(self.status());
            }
            Action { verb, names, all, reply } => {
                let _ = reply.send(self.action(verb, names, all));
            }
            Reload(reply) => self.begin_reload(reply),
            Shutdown(reply) => {
                let _ = reply.send(());
                if !self.shutting_down {
                    self.begin_shutdown();
                }
            }
            Metrics(reply) => {
                let _ = reply.send(self.observe.snapshot(&self.programs));
            }
            Events(reply) => {
                let _ = reply.send((self.history.iter().cloned().collect(), self.events.subscribe()));
            }
            Logs { name, stderr, lines, follow, reply } => {
                let result = match self.programs.get(&name) {
                    None => Err(ControlError::UnknownProgram(name)),
                    Some(p) => p
                        .log_access(stderr, lines, follow)
                        .map_err(|e| ControlError::Other(format!("cannot read the log of {name}: {e}"))),
                };
                let _ = reply.send(result);
            }
        }
    }

    fn status(&self) -> StatusReply {
        let waiting: BTreeMap<String, Vec<String>> =
            self.scheduler.waiting(|n| self.view(n)).into_iter().collect();
        let now = SystemTime::now();
        let programs = self
            .programs
            .iter()
            .map(|(name, p)| {
                let s = p.status();
                ProgramInfo {
                    name: name.clone(),
                    state: s.state.name().into(),
                    pid: s.pid,
                    started_at: s.since.map(|t| humantime::format_rfc3339_millis(t).to_string()),
                    uptime_secs: s.since.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs_f64()),
                    restarts: s.restarts,
                    last_exit: s.last_exit.map(Into::into),
                    last_error: s.last_error.clone(),
                    health: self.observe.health(name).map(|h| h.name().into()),
                    waiting_for: waiting.get(name).cloned().unwrap_or_default(),
                }
            })
            .collect();
        StatusReply { programs }
    }

    fn action(&mut self, verb: Verb, names: Vec<String>, all: bool) -> Result<Vec<Target>, ControlError> {
        if self.shutting_down {
            return Err(ControlError::ShuttingDown);
        }
        if self.reload.is_some() {
            return Err(ControlError::ReloadInProgress);
        }
        let names = if all {
            self.programs.keys().cloned().collect()
        } else if names.is_empty() {
            return Err(ControlError::NothingNamed);
        } else {
            if let Some(unknown) = names.iter().find(|n| !self.programs.contains_key(*n)) {
                return Err(ControlError::UnknownProgram(unknown.clone()));
            }
            names
        };
        let targets = names
            .iter()
            .map(|n| {
                let p = &self.programs[n];
                // "Unchanged" as of now, before the command is sent: any later change,
                // however fast, counts as the program having moved.
                let mut status = p.watch();
                status.mark_unchanged();
                Target {
                    name: n.clone(),
                    status,
                    pid_before: p.status().pid,
                    stop_timeout: p.spec.stop_timeout,
                }
            })
            .collect();
        match verb {
            // Through the scheduler: what a program depends on starts first.
            Verb::Start => names.iter().for_each(|n| self.scheduler.want_started(n)),
            // All of them: in reverse dependency order. Some: at once, as asked.
            Verb::Stop if all => names.iter().for_each(|n| self.scheduler.want_stopped(n)),
            Verb::Stop | Verb::Restart => {
                let event = if verb == Verb::Stop { Event::Stop } else { Event::Restart };
                for n in &names {
                    self.scheduler.cancel(n);
                    self.programs[n].send(event.clone());
                }
            }
        }
        self.dispatch();
        Ok(targets)
    }

    /// Phase one of a reload: validate the new file, then stop what it removes or changes.
    fn begin_reload(&mut self, reply: oneshot::Sender<Result<ReloadReply, ControlError>>) {
        if self.shutting_down {
            let _ = reply.send(Err(ControlError::ShuttingDown));
            return;
        }
        if self.reload.is_some() {
            let _ = reply.send(Err(ControlError::ReloadInProgress));
            return;
        }
        let path = self.config.source.clone();
        let config = match steward_core::config::load(&path) {
            Ok(c) => c,
            Err(diags) => {
                tracing::error!(
                    event = "reload-rejected",
                    "the new config is invalid; nothing was changed:\n{diags}"
                );
                let _ = reply.send(Err(ControlError::InvalidConfig(diags.to_string())));
                self.observe.reload_rejected();
                return;
            }
        };
        let diff = reload::diff(&self.config, &config);
        let replaced: Vec<String> = diff.removed.iter().chain(&diff.changed).cloned().collect();
        let restart = diff
            .changed
            .iter()
            .filter(|n| !self.states[n.as_str()].is_down())
            .cloned()
            .collect::<BTreeSet<_>>();
        let mut stops = Scheduler::new(reload::subgraph(&deps_of(&self.config), &replaced));
        for n in &replaced {
            self.scheduler.cancel(n);
            stops.want_stopped(n);
        }
        tracing::info!(
            event = "reload",
            "reloading {}: {} added, {} removed, {} changed, {} unchanged",
            path.display(),
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len(),
            diff.unchanged.len()
        );
        self.reload = Some(PendingReload {
            config,
            diff,
            stops,
            stopping: replaced.into_iter().collect(),
            restart,
            reply,
        });
        self.dispatch();
        self.advance_reload();
    }

    /// Phase two, once everything being replaced is down: swap definitions and start.
    fn advance_reload(&mut self) {
        let ready = match &self.reload {
            Some(p) => p.stopping.iter().all(|n| self.states.get(n).is_none_or(|s| s.is_down())),
            None => false,
        };
        if !ready {
            return;
        }
        let Some(pending) = self.reload.take() else { return };
        let PendingReload { config, diff, restart, reply, .. } = pending;
        // The supervisor settings (state and log dirs) and the remote API stay as they were
        // until a restart.
        let supervisor = std::mem::replace(&mut self.config.supervisor, config.supervisor.clone());
        let api = std::mem::replace(&mut self.config.api, config.api.clone());
        self.config = Config { supervisor, api, ..config };
        for name in diff.removed.iter().chain(&diff.changed) {
            if let Some(handle) = self.programs.remove(name) {
                self.retired.push(tokio::spawn(handle.finish()));
            }
            let effects = self.observe.forget(name);
            self.apply(effects);
            self.states.remove(name);
        }
        let pending_starts: Vec<String> = self.scheduler.pending_starts().cloned().collect();
        self.scheduler = Scheduler::new(deps_of(&self.config));
        for name in diff.changed.iter().chain(&diff.added) {
            self.add_program(name);
        }
        for name in pending_starts.iter().filter(|n| self.programs.contains_key(*n)) {
            self.scheduler.want_started(name);
        }
        for name in &restart {
            self.scheduler.want_started(name);
        }
        for name in diff.added.iter().filter(|n| self.config.programs[n.as_str()].autostart) {
            self.scheduler.want_started(name);
        }
        self.dispatch();
        if !diff.needs_restart.is_empty() {
            tracing::warn!(
                event = "reload",
                "changes to {} take effect when steward restarts",
                diff.needs_restart.join(", ")
            );
        }
        let effects = self.observe.reconfigure(&self.config);
        self.apply(effects);
        tracing::info!(event = "reloaded", "reload applied");
        let _ = reply.send(Ok(ReloadReply {
            added: diff.added,
            removed: diff.removed,
            changed: diff.changed,
            unchanged: diff.unchanged,
            needs_restart: diff.needs_restart,
        }));
    }

    /// Let every program task end (each drains its log pumps).
    async fn finish(self) {
        for (_, p) in self.programs {
            p.finish().await;
        }
        for t in self.retired {
            let _ = t.await;
        }
    }
}

fn deps_of(config: &Config) -> BTreeMap<String, Vec<String>> {
    config.programs.iter().map(|(n, p)| (n.clone(), p.depends_on.clone())).collect()
}

/// One line per state change, at a level that matches how bad it is.
fn log_change(n: &Notice) {
    let c = &n.change;
    let (from, to) = (c.from.name(), c.to.name());
    match &c.reason {
        Reason::Exited { status, restart_in } => {
            let exit = status.to_string();
            match restart_in {
                Some(d) => {
                    tracing::warn!(program = %n.program, event = "exited", from, to, exit_code = %exit,
                    "exited with {exit}; restarting in {d:?}")
                }
                None => tracing::info!(program = %n.program, event = "exited", from, to, exit_code = %exit,
                    "exited with {exit}; not restarting (restart policy)"),
            }
        }
        Reason::SpawnFailed { reason } => {
            tracing::error!(program = %n.program, event = "spawn-failed", from, to, "could not start: {reason}")
        }
        Reason::GaveUp { .. } => {
            let last = match (&n.status.last_error, n.status.last_exit) {
                (Some(e), _) => format!("could not start: {e}"),
                (None, Some(exit)) => exit.to_string(),
                (None, None) => "unknown".into(),
            };
            tracing::error!(program = %n.program, event = "fatal", from, to, "{}; last failure: {last}", c.reason)
        }
        Reason::Spawned { pid } => {
            tracing::info!(program = %n.program, event = "started", from, to, pid, "started (pid {pid})")
        }
        Reason::StoppedWith(status) => {
            tracing::info!(program = %n.program, event = "stopped", from, to, exit_code = %status, "stopped ({status})")
        }
        _ => tracing::info!(program = %n.program, event = "state", from, to, "{}", c.reason),
    }
}
