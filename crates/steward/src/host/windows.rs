//! steward as a Windows service: what `steward service host --name NAME -c CONFIG` does when
//! the Service Control Manager (SCM) starts it.
//!
//! How a Windows service works, and what this relies on:
//! - The process calls `StartServiceCtrlDispatcherW`, which blocks its main thread for the
//!   service's lifetime and runs `service_main` on a thread of its own. A process started by
//!   hand cannot do this (error 1063): `service host` then says to use `steward run`.
//! - `service_main` registers a control handler, and from then on tells the SCM its state with
//!   `SetServiceStatus`. A *pending* state (START_PENDING, STOP_PENDING, PAUSE_PENDING,
//!   CONTINUE_PENDING) carries a checkpoint and a wait hint: the SCM (and `sc`, `net start`,
//!   `steward service start`) treats the service as hung when the checkpoint does not grow
//!   within the hint. steward raises it on every program state change while starting, and
//!   once a second ([`HEARTBEAT`]) while any pending state lasts, but only within the budget of
//!   that state: [`START_BUDGET`] for starting, the config's stop budget (the longest
//!   `depends_on` chain of `stop_timeout`s plus a margin, also the preshutdown timeout install
//!   sets) for stopping and pausing. A steward that hangs beyond that is left to the SCM.
//! - The control handler runs on the dispatcher's thread and must return quickly. It reports
//!   STOP_PENDING (or PAUSE_PENDING, CONTINUE_PENDING) itself, at once, and hands the request
//!   to the supervisor's runtime: Wine's SCM terminates a service that still says RUNNING when
//!   a second control arrives, and Windows' waits on a slow handler.
//! - When steward reports STOPPED, the dispatcher returns and the process ends right away, so
//!   everything is logged before that report.
//! - Under the SCM the working directory is `C:\Windows\System32`. steward resolves every path
//!   of the config from the config file's location (`config::load` does), and also makes the
//!   config's folder the working directory.
//! - There is no console and no stderr. steward's own log goes to `<log_dir>\steward.log`
//!   (appended), and the supervisor's events (a program started, crashed, restarted, gave up,
//!   stopped) and the service's own start, stop and failure go to the Event Log
//!   (`service/eventlog` decides the entries).
//!
//! The controls and what they do:
//!
//! | control | steward |
//! |---|---|
//! | Stop, Shutdown, Preshutdown | orderly shutdown: programs stop in reverse dependency order; then STOPPED |
//! | Pause | every program stops (the service stays); PAUSED |
//! | Continue | the programs that were up when paused start again; RUNNING |
//! | ParamChange | reload: re-read the config and apply the difference (`steward reload`) |
//! | Interrogate | the current status |
//!
//! The process exits 0 after an orderly stop. Otherwise the SCM gets a service-specific exit
//! code, [`EXIT_FAILED`] or [`EXIT_INVALID_CONFIG`], which counts as a failure for the failure
//! actions install sets (restart after 5 s, 10 s, 30 s).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use steward_core::config::{self, Config};
use steward_core::fsm::State;
use steward_core::render;
use tokio::sync::{mpsc, oneshot, Notify};
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::{define_windows_service, service_dispatcher};

use crate::service::eventlog::windows::EventLog;
use crate::service::eventlog::{self, Entry};
use crate::service::status::{Manager, Msg, Notifier};
use crate::supervise::{self, control, Control, Verb};

/// How long starting may take before steward reports RUNNING anyway (with a warning): a
/// program with a long backoff must not hold a boot, or `net start`, forever.
pub const START_BUDGET: Duration = Duration::from_secs(120);

/// The wait hint while starting, pausing or continuing. Checkpoints move every [`HEARTBEAT`].
const PENDING_HINT: Duration = Duration::from_secs(10);

/// How often the checkpoint moves while a pending state lasts (within its budget).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long Continue waits for the programs to run again before it reports RUNNING.
const CONTINUE_WAIT: Duration = Duration::from_secs(30);

/// The service-specific exit code when steward fails while running (see steward.log).
pub const EXIT_FAILED: u32 = 1;
/// The service-specific exit code when the config is invalid (the Event Log has the errors).
pub const EXIT_INVALID_CONFIG: u32 = 2;

/// What `service host` was started with; read by `service_main`, which the dispatcher calls
/// without arguments of ours.
struct HostArgs {
    name: String,
    config: PathBuf,
}

static ARGS: OnceLock<HostArgs> = OnceLock::new();
/// The running service, once its control handler is registered.
static HOST: OnceLock<Host> = OnceLock::new();
/// The process's exit code, set by `service_main` before it reports STOPPED.
static EXIT: Mutex<Option<u32>> = Mutex::new(None);

/// Run as the service `name`: set `env`, then hand this thread to the SCM's dispatcher until
/// the service has stopped.
pub fn run(name: &str, config: &Path, env: &[(String, String)]) -> anyhow::Result<ExitCode> {
    for (key, value) in env {
        // Before any other thread exists: the dispatcher and the runtime start below.
        std::env::set_var(key, value);
    }
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let _ = ARGS.set(HostArgs { name: name.to_owned(), config });
    match service_dispatcher::start(name, ffi_service_main) {
        Ok(()) => {}
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(1063) => anyhow::bail!(
            "`steward service host` is run by the Windows Service Control Manager, not by hand; start the \
             installed service with `steward service start --name {name}`, or run the config in this \
             console with `steward run -c FILE`"
        ),
        Err(e) => return Err(e).context("cannot connect to the Service Control Manager"),
    }
    let code = *lock(&EXIT);
    Ok(ExitCode::from(code.map_or(EXIT_FAILED, |c| c.min(255)) as u8))
}

/// The SCM as the supervisor's service manager: its readiness moments (see
/// `service/status.rs`), told to the SCM.
struct Scm(&'static Host);

impl Manager for Scm {
    fn send(&self, msgs: &[Msg<'_>]) {
        notify(self.0, msgs);
    }
}

fn notify(host: &Host, msgs: &[Msg<'_>]) {
    let summary = msgs.iter().find_map(|m| match m {
        Msg::Status(s) => Some(*s),
        _ => None,
    });
    for msg in msgs {
        match msg {
            Msg::Ready => host.ready(summary.unwrap_or("no programs")),
            Msg::Stopping => host.reporter.stopping(),
            Msg::Status(_) => host.reporter.progress(),
            Msg::Watchdog => {}
        }
    }
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let Some(args) = ARGS.get() else { return };
    let code = serve(args);
    *lock(&EXIT) = Some(code);
    let exit = if code == 0 { ServiceExitCode::NO_ERROR } else { ServiceExitCode::ServiceSpecific(code) };
    if let Some(host) = HOST.get() {
        // The last thing: the process may end as soon as the SCM has this.
        host.reporter.stopped(exit);
    }
}

/// What the control handler hands to the runtime.
#[derive(Debug)]
enum Request {
    Stop,
    Pause,
    Continue,
    Reload,
}

/// The service from START_PENDING to just before STOPPED. Returns the exit code.
fn serve(args: &HostArgs) -> u32 {
    let (requests, requests_rx) = mpsc::unbounded_channel::<Request>();
    let handler = move |control: ServiceControl| -> ServiceControlHandlerResult {
        // Runs on the dispatcher's thread: report the pending state now, do the work elsewhere.
        let host = HOST.get();
        let (request, pending) = match control {
            ServiceControl::Interrogate => return ServiceControlHandlerResult::NoError,
            ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                (Request::Stop, Some(ServiceState::StopPending))
            }
            ServiceControl::Pause => (Request::Pause, Some(ServiceState::PausePending)),
            ServiceControl::Continue => (Request::Continue, Some(ServiceState::ContinuePending)),
            ServiceControl::ParamChange => (Request::Reload, None),
            _ => return ServiceControlHandlerResult::NotImplemented,
        };
        if let (Some(host), Some(state)) = (host, pending) {
            host.reporter.enter(state);
        }
        let _ = requests.send(request);
        ServiceControlHandlerResult::NoError
    };
    let eventlog = EventLog::open().ok();
    let handle = match service_control_handler::register(&args.name, handler) {
        Ok(handle) => handle,
        Err(e) => {
            if let Some(log) = &eventlog {
                let _ = log.report(&eventlog::service_failed(
                    &args.name,
                    &format!("cannot register with the SCM: {e}"),
                ));
            }
            return EXIT_FAILED;
        }
    };
    let host = HOST.get_or_init(|| Host {
        name: args.name.clone(),
        reporter: Reporter::new(handle),
        eventlog,
        announced: AtomicBool::new(false),
        eventlog_failed: AtomicBool::new(false),
    });
    host.reporter.enter(ServiceState::StartPending);

    let config = match config::load_with(&args.config, &crate::process::host_env()) {
        Ok(config) => config,
        Err(diags) => {
            // The Event Log is readable by every user: the location, not the lines (which
            // may hold secrets); `steward check` shows them.
            let why = format!("the config {} is invalid:\n{}", args.config.display(), diags.located());
            host.log(eventlog::service_failed(&host.name, &why));
            return EXIT_INVALID_CONFIG;
        }
    };
    let log_file = match init_logging(&config) {
        Ok(path) => path,
        Err(e) => {
            host.log(eventlog::service_failed(&host.name, &format!("{e:#}")));
            return EXIT_FAILED;
        }
    };
    std::panic::set_hook(Box::new(|info| tracing::error!(event = "panic", "steward panicked: {info}")));
    if let Some(dir) = config.source.parent() {
        if let Err(e) = std::env::set_current_dir(dir) {
            tracing::warn!(event = "service", "cannot make {} the working directory: {e}", dir.display());
        }
    }
    tracing::info!(
        event = "service",
        "service {} starting (pid {}): {}: {} programs; steward's log is {}",
        host.name,
        std::process::id(),
        config.source.display(),
        config.programs.len(),
        log_file.display()
    );
    host.log(eventlog::service_starting(
        &host.name,
        &config.source.display().to_string(),
        config.programs.len(),
    ));
    if host.eventlog.is_some() && !host.eventlog_failed.load(Ordering::Relaxed) {
        tracing::info!(event = "eventlog", "Event Log: writing as source {}", render::windows::EVENT_SOURCE);
    }

    // One thread, as `steward run` (see cli/run.rs): programs are spawned from it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(event = "service", "cannot start the async runtime: {e}");
            host.log(eventlog::service_failed(&host.name, &format!("cannot start the async runtime: {e}")));
            return EXIT_FAILED;
        }
    };
    let result = runtime.block_on(supervise_as_service(config, requests_rx, host));
    // Tasks still holding pipes or timers end with the runtime, before STOPPED.
    drop(runtime);
    match result {
        Ok(()) => {
            tracing::info!(event = "service", "service {} stopped; reporting STOPPED", host.name);
            host.log(eventlog::service_stopped(&host.name));
            0
        }
        Err(e) => {
            tracing::error!(event = "service", "service {} failed: {e:#}; reporting STOPPED", host.name);
            host.log(eventlog::service_failed(&host.name, &format!("{e:#}")));
            EXIT_FAILED
        }
    }
}

/// The supervisor, with the SCM's requests and the Event Log feed beside it.
async fn supervise_as_service(
    config: Config,
    requests: mpsc::UnboundedReceiver<Request>,
    host: &'static Host,
) -> anyhow::Result<()> {
    host.reporter.set_stop_budget(render::stop_budget(&config));
    let (control, control_rx) = supervise::control::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let heartbeat = tokio::spawn(heartbeat(host));
    let requests = tokio::spawn(handle_requests(requests, control.clone(), stop, host));
    let feed = tokio::spawn(feed_event_log(control.clone(), host));
    let shutdown = async {
        // A dropped sender (the request task ended) also stops: nothing could stop us otherwise.
        let _ = stopped.await;
        tracing::info!(event = "service", "the SCM asked steward to stop");
    };
    let status = Box::new(Notifier::new(&config, Some(std::sync::Arc::new(Scm(host)))));
    let result = crate::daemon::run_with(config, (control, control_rx), status, shutdown).await;
    requests.abort();
    heartbeat.abort();
    // The supervisor is gone, so the event stream has ended: let the feed write what is left.
    let _ = tokio::time::timeout(Duration::from_secs(2), feed).await;
    result
}

/// Carry out the SCM's requests, one at a time, in the order they came.
async fn handle_requests(
    mut requests: mpsc::UnboundedReceiver<Request>,
    control: Control,
    stop: oneshot::Sender<()>,
    host: &'static Host,
) {
    let mut stop = Some(stop);
    // The programs that were up when the service was paused, to start again on Continue.
    let mut paused: Vec<String> = Vec::new();
    while let Some(request) = requests.recv().await {
        tracing::info!(event = "service", "SCM control: {request:?}");
        match request {
            Request::Stop => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            Request::Pause => {
                paused = pause(&control).await;
                tracing::info!(
                    event = "service",
                    "paused: every program is down; Continue starts {paused:?}"
                );
                host.reporter.enter(ServiceState::Paused);
            }
            Request::Continue => {
                resume(&control, &paused).await;
                host.reporter.enter(ServiceState::Running);
            }
            Request::Reload => {
                let outcome = control
                    .reload()
                    .await
                    .map(|r| {
                        format!(
                            "{} added, {} removed, {} changed, {} unchanged",
                            r.added.len(),
                            r.removed.len(),
                            r.changed.len(),
                            r.unchanged.len()
                        )
                    })
                    .map_err(|e| e.to_string());
                host.log(eventlog::reload(&host.name, outcome));
            }
        }
    }
}

/// Stop every program (in reverse dependency order) and wait until they are down. Returns
/// the ones that were not down before.
async fn pause(control: &Control) -> Vec<String> {
    let up = match control.snapshot().await {
        Ok(snapshot) => snapshot
            .programs
            .into_iter()
            .filter(|p| !matches!(p.status.state, State::Stopped | State::Exited | State::Fatal))
            .map(|p| p.name)
            .collect(),
        Err(e) => {
            tracing::warn!(event = "service", "pause: {e}");
            return Vec::new();
        }
    };
    match control.action(Verb::Stop, Vec::new(), true).await {
        Ok(targets) => {
            for mut target in targets {
                let deadline = target.stop_timeout + render::STOP_MARGIN;
                if let Err((_, why)) = control::wait_for(Verb::Stop, &mut target, deadline).await {
                    tracing::warn!(event = "service", program = %target.name, "pause: {why}");
                }
            }
        }
        Err(e) => tracing::warn!(event = "service", "pause: cannot stop the programs: {e}"),
    }
    up
}

/// Start `names` again and wait (a while) until they run.
async fn resume(control: &Control, names: &[String]) {
    if names.is_empty() {
        return;
    }
    match control.action(Verb::Start, names.to_vec(), false).await {
        Ok(targets) => {
            for mut target in targets {
                if let Err((_, why)) = control::wait_for(Verb::Start, &mut target, CONTINUE_WAIT).await {
                    tracing::warn!(event = "service", program = %target.name, "continue: {why}");
                }
            }
        }
        Err(e) => tracing::warn!(event = "service", "continue: cannot start the programs: {e}"),
    }
}

/// The supervisor's events, as Event Log entries.
async fn feed_event_log(control: Control, host: &'static Host) {
    if host.eventlog.is_none() {
        return;
    }
    let Ok((history, mut live)) = control.events().await else { return };
    for record in &history {
        if let Some(entry) = eventlog::program_entry(&host.name, record) {
            host.log(entry);
        }
    }
    loop {
        match live.recv().await {
            Ok(record) => {
                if let Some(entry) = eventlog::program_entry(&host.name, &record) {
                    host.log(entry);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                host.log(eventlog::events_lost(&host.name, n))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Moves the checkpoint once a [`HEARTBEAT`] while a pending state lasts; sleeps otherwise.
async fn heartbeat(host: &'static Host) {
    loop {
        host.reporter.pending.notified().await;
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tick.tick().await;
            if !host.tick() {
                break;
            }
        }
    }
}

/// steward's own log, appended to `<log_dir>\steward.log`: a service has no stderr.
fn init_logging(config: &Config) -> anyhow::Result<PathBuf> {
    use tracing_subscriber::EnvFilter;
    let dir = &config.supervisor.log_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create log_dir {}", dir.display()))?;
    let path = dir.join("steward.log");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open steward's log {}", path.display()))?;
    let filter = EnvFilter::try_from_env("STEWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up steward's log: {e}"))?;
    Ok(path)
}

/// The running service.
struct Host {
    name: String,
    reporter: Reporter,
    eventlog: Option<EventLog>,
    /// The "service is running" entry was written (once per start).
    announced: AtomicBool,
    /// A write to the Event Log failed (said once in steward.log).
    eventlog_failed: AtomicBool,
}

impl Host {
    fn log(&self, entry: Entry) {
        let Some(log) = &self.eventlog else { return };
        if let Err(e) = log.report(&entry) {
            if !self.eventlog_failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(event = "eventlog", "cannot write to the Event Log: {e}");
            }
        }
    }

    /// Startup has settled: RUNNING.
    fn ready(&self, summary: &str) {
        self.reporter.started();
        if !self.announced.swap(true, Ordering::Relaxed) {
            tracing::info!(event = "service", "service {} running: {summary}", self.name);
            self.log(eventlog::service_running(&self.name, summary));
        }
    }

    /// One heartbeat; false once the pending state is over (or out of budget).
    fn tick(&self) -> bool {
        match self.reporter.tick() {
            Tick::Pending => true,
            Tick::Done => false,
            Tick::StartOverdue => {
                tracing::warn!(
                    event = "service",
                    "the programs have not settled after {}s; reporting RUNNING anyway (`steward status` shows why)",
                    START_BUDGET.as_secs()
                );
                self.ready("startup has not settled");
                false
            }
        }
    }
}

/// What one heartbeat found.
enum Tick {
    Pending,
    Done,
    StartOverdue,
}

/// The status steward reports to the SCM, kept in one place so the control handler's thread
/// and the runtime's thread never report out of order.
struct Reporter {
    handle: ServiceStatusHandle,
    state: Mutex<Reported>,
    /// Woken when a pending state begins (the heartbeat waits on it).
    pending: Notify,
}

struct Reported {
    state: ServiceState,
    checkpoint: u32,
    /// When the current state began.
    since: Instant,
    /// How long stopping (and pausing) may take: the config's stop budget.
    stop_budget: Duration,
    stopped: bool,
}

impl Reporter {
    fn new(handle: ServiceStatusHandle) -> Reporter {
        Reporter {
            handle,
            state: Mutex::new(Reported {
                state: ServiceState::StartPending,
                checkpoint: 0,
                since: Instant::now(),
                stop_budget: PENDING_HINT,
                stopped: false,
            }),
            pending: Notify::new(),
        }
    }

    fn set_stop_budget(&self, budget: Duration) {
        lock(&self.state).stop_budget = budget;
    }

    /// Enter `state` (a pending state starts at checkpoint 1), unless already there.
    fn enter(&self, state: ServiceState) {
        let mut s = lock(&self.state);
        if s.stopped || (s.state == state && s.checkpoint > 0) {
            return;
        }
        s.state = state;
        s.since = Instant::now();
        s.checkpoint = u32::from(is_pending(state));
        self.report(&s, ServiceExitCode::NO_ERROR);
        if is_pending(state) {
            self.pending.notify_one();
        }
    }

    /// STOP_PENDING, from the control handler or the supervisor (`steward shutdown`).
    fn stopping(&self) {
        self.enter(ServiceState::StopPending);
    }

    /// START_PENDING is over.
    fn started(&self) {
        if lock(&self.state).state == ServiceState::StartPending {
            self.enter(ServiceState::Running);
        }
    }

    /// Something moved: raise the checkpoint of a pending state still within its budget.
    fn progress(&self) {
        let mut s = lock(&self.state);
        if is_pending(s.state) && s.since.elapsed() < self.budget(&s) {
            s.checkpoint += 1;
            self.report(&s, ServiceExitCode::NO_ERROR);
        }
    }

    fn tick(&self) -> Tick {
        let s = lock(&self.state);
        if !is_pending(s.state) || s.stopped {
            return Tick::Done;
        }
        if s.since.elapsed() >= self.budget(&s) {
            return if s.state == ServiceState::StartPending { Tick::StartOverdue } else { Tick::Done };
        }
        drop(s);
        self.progress();
        Tick::Pending
    }

    /// The last report; nothing is reported after it.
    fn stopped(&self, exit: ServiceExitCode) {
        let mut s = lock(&self.state);
        s.state = ServiceState::Stopped;
        s.checkpoint = 0;
        s.stopped = true;
        self.report(&s, exit);
    }

    fn budget(&self, s: &Reported) -> Duration {
        match s.state {
            ServiceState::StartPending => START_BUDGET,
            ServiceState::StopPending | ServiceState::PausePending => s.stop_budget,
            _ => CONTINUE_WAIT + PENDING_HINT,
        }
    }

    fn report(&self, s: &Reported, exit: ServiceExitCode) {
        let wait_hint = match s.state {
            ServiceState::StopPending | ServiceState::PausePending => s.stop_budget,
            state if is_pending(state) => PENDING_HINT,
            _ => Duration::ZERO,
        };
        let status = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: s.state,
            controls_accepted: accepted(s.state),
            exit_code: exit,
            checkpoint: s.checkpoint,
            wait_hint,
            process_id: None,
        };
        if let Err(e) = self.handle.set_service_status(status) {
            tracing::warn!(event = "service", "cannot report {:?} to the SCM: {e}", s.state);
        }
    }
}

fn is_pending(state: ServiceState) -> bool {
    matches!(
        state,
        ServiceState::StartPending
            | ServiceState::StopPending
            | ServiceState::PausePending
            | ServiceState::ContinuePending
    )
}

/// The controls steward takes in `state`. While starting or stopping: none (the SCM then
/// refuses them itself). Shutdown and Preshutdown both mean stop: Windows sends Preshutdown
/// (and waits the preshutdown timeout install set); Shutdown is for SCMs without it.
fn accepted(state: ServiceState) -> ServiceControlAccept {
    let stop =
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN | ServiceControlAccept::PRESHUTDOWN;
    match state {
        ServiceState::Running | ServiceState::Paused => {
            stop | ServiceControlAccept::PAUSE_CONTINUE | ServiceControlAccept::PARAM_CHANGE
        }
        ServiceState::PausePending | ServiceState::ContinuePending => stop,
        _ => ServiceControlAccept::empty(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
