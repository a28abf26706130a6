//! The supervisor: one task per program ([`program`]), a dependency scheduler deciding what
//! starts or stops next, and the loop that ties them together.
//!
//! The loop waits on a state change from a program, another event a program's task reports
//! (its log file could not be opened), what the observers wait for (`observe.rs`), a control
//! request (from the API), and the shutdown future. After each state change it logs it, publishes
//! it as a typed [`Event`], tells the [`StatusSink`], and asks the scheduler which orders are
//! due. It never blocks: requests that must wait for a state ("start returns once running")
//! get `watch` receivers and wait on their own side ([`control::wait_for`]).
//!
//! The supervisor knows no HTTP and no service manager: it answers with its own types
//! ([`Snapshot`], [`Event`], a reload's `Diff`), which the API turns into JSON, and reports
//! startup and shutdown to whatever sink `daemon` hands it.

mod commands;
pub mod control;
mod event;
mod instances;
// The notify socket of `ready = "notify"` programs: Unix datagram sockets, so Unix only.
#[cfg_attr(unix, path = "notify/unix.rs")]
#[cfg_attr(not(unix), path = "notify/unsupported.rs")]
mod notify;
mod observe;
pub mod program;
mod reload;
mod requests;
mod rollout;
mod snapshot;
pub mod status_cell;
mod switch;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use steward_core::config::Config;
use steward_core::fsm::{self, Reason, State};
use steward_core::schedule::{Order, Scheduler};
use tokio::sync::{broadcast, mpsc};

pub use control::{Control, ControlError, ControlReceiver, Target, Verb};
pub use event::{Event, EventKind, Stream};
pub use instances::{ScaleTo, Scaled};
pub use program::{Notice, ProgramHandle, Status};
pub use rollout::RollReport;
pub use snapshot::{GroupSnapshot, ProgramSnapshot, Snapshot};
pub use switch::{Release, ReleaseInfo, Switched};

/// Where the supervisor reports how startup and shutdown go, for a service manager
/// (systemd's sd_notify, the Windows SCM). `daemon` picks one and hands it down, so that
/// the supervisor imports no service manager.
pub trait StatusSink: Send {
    /// After startup is dispatched and after every state change (or readiness change)
    /// until shutdown begins, with the last state every program reported, and the program
    /// that changed when one did.
    fn update(&mut self, states: &BTreeMap<String, State>, changed: Option<&str>);
    /// Shutdown has begun.
    fn stopping(&mut self);
}

/// No service manager listens.
impl StatusSink for () {
    fn update(&mut self, _: &BTreeMap<String, State>, _: Option<&str>) {}
    fn stopping(&mut self) {}
}

/// How a run ended, for `steward run`'s exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// The processes that did not stop within their `stop_timeout` at shutdown and had their
    /// tree killed.
    pub killed: Vec<String>,
}

impl Stopped {
    /// Whether every program stopped by itself when asked.
    pub fn clean(&self) -> bool {
        self.killed.is_empty()
    }
}

/// How many past events `steward events` shows before following.
const EVENT_HISTORY: usize = 256;

/// Run the programs of `config` until `shutdown` completes (or a shutdown request arrives
/// on `control`), then stop them all in reverse dependency order and return. Signals, a
/// service manager's stop request and tests all end the run the same way.
pub async fn run(
    config: Config,
    control: ControlReceiver,
    status: Box<dyn StatusSink>,
    watches: crate::logs::Watches,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Stopped> {
    let mut sup = Supervisor::new(config, status, watches)?;
    let mut control = control.0;
    sup.start_autostart();
    tokio::pin!(shutdown);
    let mut control_open = true;
    loop {
        let deadline = sup.next_deadline();
        tokio::select! {
            () = &mut shutdown, if !sup.shutting_down => sup.begin_shutdown(),
            Some(notice) = sup.notices_rx.recv() => sup.on_notice(notice),
            Some(event) = sup.reports_rx.recv() => sup.push_event(event),
            happening = sup.observe.next() => sup.on_observed(happening),
            () = rollout_timer(deadline) => sup.on_timer(),
            report = rollout::next_probe(&mut sup.roll_probes) => sup.on_roll_probe(report),
            request = control.recv(), if control_open => match request {
                Some(request) => sup.on_request(request),
                None => control_open = false,
            },
        }
        if sup.shutting_down && sup.scheduler.is_idle() && sup.all_down() {
            break;
        }
    }
    let stopped = Stopped { killed: std::mem::take(&mut sup.killed) };
    sup.finish().await;
    if stopped.clean() {
        tracing::info!(event = "exit", "all programs stopped");
    } else {
        tracing::warn!(
            event = "exit",
            "all programs stopped; killed after their stop_timeout: {}",
            stopped.killed.join(", ")
        );
    }
    Ok(stopped)
}

struct Supervisor {
    config: Config,
    programs: BTreeMap<String, ProgramHandle>,
    /// The last state each program reported (the scheduler reads these).
    states: BTreeMap<String, State>,
    scheduler: Scheduler,
    notices_tx: mpsc::UnboundedSender<Notice>,
    notices_rx: mpsc::UnboundedReceiver<Notice>,
    /// Events the program tasks publish besides state changes (a log file that cannot be
    /// opened), already logged: the loop only publishes them.
    reports_tx: mpsc::UnboundedSender<Event>,
    reports_rx: mpsc::UnboundedReceiver<Event>,
    /// Made by the first follower (`events -f`): 1024 slots are 120 KB resident.
    events: Option<broadcast::Sender<Event>>,
    /// Grows to [`EVENT_HISTORY`] as events come, rather than held at that size up front.
    history: VecDeque<Event>,
    reload: Option<reload::PendingReload>,
    shutting_down: bool,
    /// The processes killed after their stop timeout since shutdown began.
    killed: Vec<String>,
    /// Tasks of programs removed by a reload, finishing (draining their logs).
    retired: Vec<tokio::task::JoinHandle<()>>,
    /// The service manager's view of startup and shutdown (`()` when none listens).
    status: Box<dyn StatusSink>,
    /// Health checks, resource limits and alert rules ([`observe`]).
    observe: observe::Observers,
    /// The listening sockets of programs that have `sockets`.
    sockets: crate::sockets::Sockets,
    /// Rolling restarts in progress, by program.
    rolls: BTreeMap<String, rollout::Roll>,
    /// Health probes of the rolls' new processes, once a roll needs them.
    roll_probes: Option<rollout::RollProbes>,
    /// The version each program with a `[release]` runs (once one is installed).
    releases: BTreeMap<String, switch::Release>,
    /// The specs of those programs' processes as the config writes them (`%{release}/...`).
    templates: BTreeMap<String, steward_core::config::ProgramSpec>,
    /// Switches to another version waiting for their gate, by program.
    switches: BTreeMap<String, switch::Switch>,
    /// The watches of the log files that `[[ship]]` sinks read (`None` without sinks).
    watches: crate::logs::Watches,
    /// `[supervisor] state_dir`, shared by every program's task rather than copied into each.
    state_dir: std::sync::Arc<std::path::Path>,
    /// `[supervisor] log_dir`, shared the same way.
    log_dir: std::sync::Arc<std::path::Path>,
}

impl Supervisor {
    fn new(
        config: Config,
        status: Box<dyn StatusSink>,
        watches: crate::logs::Watches,
    ) -> anyhow::Result<Self> {
        let settings = &config.supervisor;
        for (what, dir) in [("state_dir", &settings.state_dir), ("log_dir", &settings.log_dir)] {
            crate::private::create_dir_all(dir).with_context(|| {
                format!("cannot create {what} {}; check the path and its permissions", dir.display())
            })?;
        }
        log_warnings(&config);
        // Before any program starts: a socket that cannot be bound stops steward here.
        let sockets = crate::sockets::Sockets::bind(&config, &Default::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(deps_of(&config));
        let mut sup = Supervisor {
            programs: BTreeMap::new(),
            states: BTreeMap::new(),
            scheduler,
            notices_tx,
            notices_rx,
            reports_tx,
            reports_rx,
            events: None,
            history: VecDeque::new(),
            reload: None,
            shutting_down: false,
            killed: Vec::new(),
            retired: Vec::new(),
            status,
            observe: observe::Observers::new(&config),
            sockets,
            rolls: BTreeMap::new(),
            roll_probes: None,
            releases: BTreeMap::new(),
            templates: BTreeMap::new(),
            switches: BTreeMap::new(),
            watches,
            state_dir: std::sync::Arc::from(config.supervisor.state_dir.as_path()),
            log_dir: std::sync::Arc::from(config.supervisor.log_dir.as_path()),
            config,
        };
        if !sup.config.releases.is_empty() {
            let mut config = sup.config.clone();
            sup.templates = sup.resolve_releases(&mut config);
            sup.config = config;
        }
        for name in sup.config.programs.keys().cloned().collect::<Vec<_>>() {
            sup.add_program(&name);
        }
        Ok(sup)
    }

    fn add_program(&mut self, name: &str) {
        let spec = self.config.programs[name].clone();
        let listeners = self.sockets.of(spec.group());
        let handle = ProgramHandle::spawn(spec, self.setup(listeners, None));
        self.observe.add_program(&handle.spec);
        self.programs.insert(name.to_string(), handle);
        self.states.insert(name.to_string(), State::Stopped);
    }

    /// What a new program task gets (see [`program::Setup`]).
    fn setup<'a>(
        &'a self,
        listeners: crate::sockets::Listeners,
        beside: Option<&'a ProgramHandle>,
    ) -> program::Setup<'a> {
        program::Setup {
            log_dir: &self.log_dir,
            state_dir: &self.state_dir,
            notices: self.notices_tx.clone(),
            reports: self.reports_tx.clone(),
            listeners,
            beside,
            watches: &self.watches,
        }
    }

    fn start_autostart(&mut self) {
        let mut names: Vec<String> =
            self.programs.iter().filter(|(_, h)| h.spec.autostart).map(|(n, _)| n.clone()).collect();
        names.retain(|n| {
            let waits = self.programs[n].spec.needs_release();
            if waits {
                tracing::warn!(program = %n, event = "no-release",
                    "{n} has no release installed yet, so it does not start; `steward deploy {} --latest` installs one",
                    steward_core::config::group_of(n));
            }
            !waits
        });
        for name in &names {
            self.scheduler.want_started(name);
        }
        self.dispatch();
        self.status.update(&self.states, None);
        for (name, blockers) in self.scheduler.waiting(|n| self.view(n)) {
            tracing::info!(program = %name, event = "waiting", "waiting for {} to be running", blockers.join(", "));
        }
    }

    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        tracing::info!(event = "shutdown", "stopping all programs");
        self.status.stopping();
        if let Some(pending) = self.reload.take() {
            pending.reply.refuse(self, ControlError::ShuttingDown);
        }
        self.abort_rolls(None, "steward is shutting down");
        self.abort_switches(None, "steward is shutting down");
        self.scheduler.want_all_stopped();
        self.dispatch();
    }

    fn on_notice(&mut self, notice: Notice) {
        // A notice from a task that a reload already replaced is stale; one from a rolling
        // restart's new process goes to its roll.
        let current = self.programs.get(&*notice.program).is_some_and(|h| h.is(&notice));
        if !current {
            if self.on_replacement_notice(&notice) {
                self.dispatch();
            }
            return;
        }
        log_change(&notice);
        if notice.killed && self.shutting_down {
            self.killed.push(notice.program.to_string());
        }
        self.publish(&notice);
        self.states.insert(notice.program.to_string(), notice.change.to);
        if let Some(spec) = self.programs.get(&*notice.program).map(|p| p.spec.clone()) {
            let effects = self.observe.on_state(&spec, &notice);
            self.apply(effects);
        }
        if !self.shutting_down {
            self.status.update(&self.states, Some(&notice.program));
        }
        self.on_serving_notice(&notice);
        self.dispatch();
        self.advance_reload();
        self.check_switches();
    }

    /// The earliest deadline of a roll or a switch's gate.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        let gate = self.switch_deadline().map(|at| {
            let now = rollout::now();
            tokio::time::Instant::now() + at.saturating_duration_since(now)
        });
        [self.roll_deadline(), gate].into_iter().flatten().min()
    }

    fn on_timer(&mut self) {
        self.on_roll_timer();
        self.check_switches();
    }

    pub(super) fn publish(&mut self, n: &Notice) {
        let kind = EventKind::State { change: n.change.clone(), pid: n.status.pid };
        self.push_event(Event::now(Arc::clone(&n.program), kind));
    }

    /// Keep `event` in the history and send it to whoever follows events.
    fn push_event(&mut self, event: Event) {
        if self.history.len() == EVENT_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
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
                Order::Start(n) => (n, fsm::Event::Start),
                Order::Stop(n) => (n, fsm::Event::Stop),
            };
            if let Some(p) = self.programs.get(&name) {
                p.send(event);
            }
        }
    }

    fn all_down(&self) -> bool {
        self.states.values().all(|s| s.is_down())
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

/// The rolling restarts' timer, or never when none runs.
async fn rollout_timer(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The config's warnings, one `config-warning` event each: located, without the text of the
/// line (it may hold a secret; `steward check` shows it).
fn log_warnings(config: &Config) {
    for warning in config.warnings.located().iter() {
        tracing::warn!(event = "config-warning", "{}", warning.to_string().trim_end());
    }
}

/// What each process waits for: `depends_on` names programs, and a program with
/// `instances` stands for all of them.
fn deps_of(config: &Config) -> BTreeMap<String, Vec<String>> {
    let mut units: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, spec) in &config.programs {
        units.entry(spec.group()).or_default().push(name.clone());
    }
    config
        .programs
        .iter()
        .map(|(n, p)| {
            let deps = p.depends_on.iter().flat_map(|d| units.get(d.as_str()).into_iter().flatten()).cloned();
            (n.clone(), deps.collect())
        })
        .collect()
}

/// The processes `name` means: a process (`web:2`, `api`), or every instance of a program
/// (`web`, `web:*`). `None` when there is no such program.
fn resolve<V>(programs: &BTreeMap<String, V>, name: &str) -> Option<Vec<String>> {
    let group = name.strip_suffix(":*").unwrap_or(name);
    // `name` itself, and `group` with its instances (`group:0`, ...), which sort together:
    // looked up, not found by a look at every program's name.
    let mut matched: Vec<String> =
        [name, group].into_iter().filter(|n| programs.contains_key(*n)).map(str::to_owned).collect();
    if !group.contains(':') {
        let prefix = format!("{group}:");
        matched.extend(
            programs.range(prefix.clone()..).map(|(n, _)| n).take_while(|n| n.starts_with(&prefix)).cloned(),
        );
    }
    matched.sort_unstable();
    matched.dedup();
    (!matched.is_empty()).then_some(matched)
}

/// One line per state change, at a level that matches how bad it is.
pub(super) fn log_change(n: &Notice) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_finds_a_process_or_a_program_with_its_instances() {
        let programs: BTreeMap<String, ()> = ["api", "web:0", "web:1", "web:10", "webby", "web-x:0", "w"]
            .iter()
            .map(|n| (n.to_string(), ()))
            .collect();
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(resolve(&programs, "api"), names(&["api"]));
        assert_eq!(resolve(&programs, "web"), names(&["web:0", "web:1", "web:10"]));
        assert_eq!(resolve(&programs, "web:*"), names(&["web:0", "web:1", "web:10"]));
        assert_eq!(resolve(&programs, "web:1"), names(&["web:1"]));
        assert_eq!(resolve(&programs, "w"), names(&["w"]));
        assert_eq!(resolve(&programs, "web:2"), None);
        assert_eq!(resolve(&programs, "nope"), None);
        assert_eq!(resolve(&programs, "api:*"), names(&["api"]));
    }
}
