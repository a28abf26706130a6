//! steward as a Windows service: what `steward service host --name NAME -c CONFIG` does when
//! the Service Control Manager (SCM) starts it.
//!
//! The service protocol is the `steward-service` crate's ([`steward_service::run`]): it calls
//! the dispatcher, registers the control handler, reports START_PENDING, STOP_PENDING,
//! PAUSE_PENDING and CONTINUE_PENDING with checkpoints that rise once a second within each
//! state's budget, answers the SCM from its handler at once (Wine's SCM terminates a service
//! that still says RUNNING when a second control arrives), and reports STOPPED with the exit
//! code when the code below returns. What stays here is steward's part:
//! - the budgets: [`START_BUDGET`] for starting (then RUNNING anyway, with a warning: a
//!   program with a long backoff must not hold a boot, or `net start`, forever), and the
//!   config's stop budget (the longest `depends_on` chain of `stop_timeout`s plus a margin,
//!   also the preshutdown timeout install sets) for stopping and pausing. The config is read
//!   before the dispatcher is called, for that budget.
//! - RUNNING when the supervisor's status sink says startup has settled (see
//!   `service/status.rs`).
//! - A process started by hand is not a service (the dispatcher's error 1063): `service host`
//!   then says to use `steward run`.
//! - Under the SCM the working directory is `C:\Windows\System32`. steward resolves every path
//!   of the config from the config file's location (`config::load` does), and also makes the
//!   config's folder the working directory.
//! - There is no console and no stderr. steward's own log goes to `<log_dir>\steward.log`
//!   (appended), and the supervisor's events (a program started, crashed, restarted, gave up,
//!   stopped) and the service's own start, stop and failure go to the Event Log
//!   (`service/eventlog` decides the entries). The process ends as soon as the SCM has the
//!   STOPPED report, so everything is logged before the code below returns.
//!
//! The controls and what they do:
//!
//! | control | steward |
//! |---|---|
//! | Stop, Shutdown, Preshutdown | orderly shutdown: programs stop in reverse dependency order; then STOPPED |
//! | Pause | every program stops (the service stays); PAUSED |
//! | Continue | the programs that were up when paused start again; RUNNING |
//! | ParamChange | reload: re-read the config and apply the difference (`steward reload`) |
//! | Interrogate | the current status (the crate answers) |
//!
//! The process exits 0 after an orderly stop. Otherwise the SCM gets a service-specific exit
//! code ([`steward_service::Failure`]), [`EXIT_FAILED`] or [`EXIT_INVALID_CONFIG`], which counts
//! as a failure for the failure actions install sets (restart after 5 s, 10 s, 30 s).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use steward_core::config::{self, Config, Diagnostics};
use steward_core::fsm::State;
use steward_core::render;
use steward_service::{BoxError, Context, ControlRequest, Failure, Mode, RunOptions};
use tokio::sync::{mpsc, oneshot};

use crate::service::eventlog::{self, Entry};
use crate::service::status::{Manager, Msg, Notifier};
use crate::supervise::{self, control, Control, Verb};
use steward_service::log::EventLog;

/// How long starting may take before steward reports RUNNING anyway (with a warning): a
/// program with a long backoff must not hold a boot, or `net start`, forever.
pub const START_BUDGET: Duration = Duration::from_secs(120);

/// How long Continue waits for the programs to run again before it reports RUNNING.
const CONTINUE_WAIT: Duration = Duration::from_secs(30);

/// The service-specific exit code when steward fails while running (see steward.log).
pub const EXIT_FAILED: u32 = 1;
/// The service-specific exit code when the config is invalid (the Event Log has the errors).
pub const EXIT_INVALID_CONFIG: u32 = 2;

/// Run as the service `name`: set `env`, read the config, then hand this thread to
/// [`steward_service::run`] (the SCM's dispatcher) until the service has stopped.
pub fn run(name: &str, config: &Path, env: &[(String, String)]) -> anyhow::Result<ExitCode> {
    for (key, value) in env {
        // Before any other thread exists: the dispatcher and the runtime start below.
        std::env::set_var(key, value);
    }
    let path = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let loaded = config::load_with(&path, &crate::process::host_env());
    let mut options = RunOptions::new(name)
        .start_budget(START_BUDGET)
        .running_after_start_budget(true)
        .accept_pause(true)
        .accept_reload(true);
    if let Ok(config) = &loaded {
        let stop_budget = render::stop_budget(config);
        // Pausing stops every program, as a stop does; continuing waits for them to run.
        options = options.stop_budget(stop_budget).pause_budget(stop_budget.max(CONTINUE_WAIT));
    }
    // Set by the service's code when the crate found no SCM (started by hand).
    let by_hand = Arc::new(AtomicBool::new(false));
    let seen_by_hand = by_hand.clone();
    let name_owned = name.to_owned();
    // self-update restarts this service through the SCM (GET /v1/version tells it how).
    crate::update::restart::started_by_scm(name);
    let code = steward_service::run(options, move |ctx| {
        if ctx.mode() != Mode::Scm {
            seen_by_hand.store(true, Ordering::Relaxed);
            return Ok(());
        }
        serve(ctx, name_owned, path, loaded)
    });
    if by_hand.load(Ordering::Relaxed) {
        anyhow::bail!(
            "`steward service host` is run by the Windows Service Control Manager, not by hand; start the \
             installed service with `steward service start --name {name}`, or run the config in this \
             console with `steward run -c FILE`"
        );
    }
    Ok(code)
}

/// The service from START_PENDING to just before STOPPED, on the thread the crate gives it.
fn serve(
    ctx: Context,
    name: String,
    path: PathBuf,
    loaded: Result<Config, Diagnostics>,
) -> Result<(), BoxError> {
    let host = Arc::new(Host {
        name,
        ctx,
        eventlog: EventLog::open(render::windows::EVENT_SOURCE).ok(),
        announced: AtomicBool::new(false),
        eventlog_failed: AtomicBool::new(false),
    });
    let config = match loaded {
        Ok(config) => config,
        Err(diags) => {
            // The Event Log is readable by every user: the location, not the lines (which
            // may hold secrets); `steward check` shows them.
            let why = format!("the config {} is invalid:\n{}", path.display(), diags.located());
            host.log(eventlog::service_failed(&host.name, &why));
            return Err(Failure::new(EXIT_INVALID_CONFIG, "the config is invalid (see the Event Log)").into());
        }
    };
    let log_file = match init_logging(&config) {
        Ok(path) => path,
        Err(e) => {
            host.log(eventlog::service_failed(&host.name, &format!("{e:#}")));
            return Err(Failure::new(EXIT_FAILED, format!("{e:#}")).into());
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
            let why = format!("cannot start the async runtime: {e}");
            host.log(eventlog::service_failed(&host.name, &why));
            return Err(Failure::new(EXIT_FAILED, why).into());
        }
    };
    let result = runtime.block_on(supervise_as_service(config, host.clone()));
    // Tasks still holding pipes or timers end with the runtime, before STOPPED.
    drop(runtime);
    match result {
        Ok(()) => {
            tracing::info!(event = "service", "service {} stopped; reporting STOPPED", host.name);
            host.log(eventlog::service_stopped(&host.name));
            Ok(())
        }
        Err(e) => {
            // The crate logs the failure to steward.log as it reports STOPPED.
            host.log(eventlog::service_failed(&host.name, &format!("{e:#}")));
            Err(Failure::new(EXIT_FAILED, format!("{e:#}")).into())
        }
    }
}

/// The supervisor, with the SCM's controls and the Event Log feed beside it.
async fn supervise_as_service(config: Config, host: Arc<Host>) -> anyhow::Result<()> {
    let (control, control_rx) = supervise::control::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let requests = spawn_controls(&host.ctx)?;
    let requests = tokio::spawn(handle_requests(requests, control.clone(), stop, host.clone()));
    let feed = tokio::spawn(feed_event_log(control.clone(), host.clone()));
    let overdue = tokio::spawn(start_overdue(host.clone()));
    let shutdown = async {
        // A dropped sender (the request task ended) also stops: nothing could stop us otherwise.
        let _ = stopped.await;
        tracing::info!(event = "service", "the SCM asked steward to stop");
    };
    let status = Box::new(Notifier::new(&config, Some(Arc::new(Scm(host.clone())))));
    let result = crate::daemon::run_with(config, (control, control_rx), status, shutdown).await;
    requests.abort();
    overdue.abort();
    // The supervisor is gone, so the event stream has ended: let the feed write what is left.
    let _ = tokio::time::timeout(Duration::from_secs(2), feed).await;
    result.map(|_stopped| ())
}

/// The crate's controls, handed to the runtime. They come as a blocking iterator, so a thread
/// of their own waits on it; it ends after the Stop (or with the process).
fn spawn_controls(ctx: &Context) -> anyhow::Result<mpsc::UnboundedReceiver<ControlRequest>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let controls = ctx.controls();
    std::thread::Builder::new()
        .name("scm-controls".into())
        .spawn(move || {
            for request in controls {
                if tx.send(request).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the thread that takes the SCM's controls")?;
    Ok(rx)
}

/// Carry out the SCM's controls, one at a time, in the order they came. Each is answered
/// when done (dropping a request answers it too): the crate then reports PAUSED or RUNNING.
async fn handle_requests(
    mut requests: mpsc::UnboundedReceiver<ControlRequest>,
    control: Control,
    stop: oneshot::Sender<()>,
    host: Arc<Host>,
) {
    let mut stop = Some(stop);
    // The programs that were up when the service was paused, to start again on Continue.
    let mut paused: Vec<String> = Vec::new();
    while let Some(request) = requests.recv().await {
        tracing::info!(event = "service", "SCM control: {:?}", request.control());
        match request.control() {
            steward_service::Control::Stop(_) => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            steward_service::Control::Pause => {
                paused = pause(&control).await;
                tracing::info!(
                    event = "service",
                    "paused: every program is down; Continue starts {paused:?}"
                );
            }
            steward_service::Control::Continue => resume(&control, &paused).await,
            steward_service::Control::Reload => {
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
        request.ack();
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
            for mut target in targets.targets {
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
            for mut target in targets.targets {
                if let Err((_, why)) = control::wait_for(Verb::Start, &mut target, CONTINUE_WAIT).await {
                    tracing::warn!(event = "service", program = %target.name, "continue: {why}");
                }
            }
        }
        Err(e) => tracing::warn!(event = "service", "continue: cannot start the programs: {e}"),
    }
}

/// The supervisor's events, as Event Log entries.
async fn feed_event_log(control: Control, host: Arc<Host>) {
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

/// When the start budget is spent the crate reports RUNNING by itself; say so in steward's
/// log and the Event Log, as for a start that settled.
async fn start_overdue(host: Arc<Host>) {
    tokio::time::sleep(START_BUDGET).await;
    if !host.announced.load(Ordering::Relaxed) {
        tracing::warn!(
            event = "service",
            "the programs have not settled after {}s; reporting RUNNING anyway (`steward status` shows why)",
            START_BUDGET.as_secs()
        );
        host.ready("startup has not settled");
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
    /// The crate's side: RUNNING, the controls.
    ctx: Context,
    eventlog: Option<EventLog>,
    /// The "service is running" entry was written (once per start).
    announced: AtomicBool,
    /// A write to the Event Log failed (said once in steward.log).
    eventlog_failed: AtomicBool,
}

impl Host {
    fn log(&self, entry: Entry) {
        let Some(log) = &self.eventlog else { return };
        if let Err(e) = log.write(&entry) {
            if !self.eventlog_failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(event = "eventlog", "cannot write to the Event Log: {e}");
            }
        }
    }

    /// Startup has settled: RUNNING.
    fn ready(&self, summary: &str) {
        self.ctx.ready();
        if !self.announced.swap(true, Ordering::Relaxed) {
            tracing::info!(event = "service", "service {} running: {summary}", self.name);
            self.log(eventlog::service_running(&self.name, summary));
        }
    }
}

/// The SCM as the supervisor's service manager: its readiness moments (see
/// `service/status.rs`), told through the crate.
struct Scm(Arc<Host>);

impl Manager for Scm {
    fn send(&self, msgs: &[Msg<'_>]) {
        let summary = msgs.iter().find_map(|m| match m {
            Msg::Status(s) => Some(*s),
            _ => None,
        });
        for msg in msgs {
            match msg {
                Msg::Ready => self.0.ready(summary.unwrap_or("no programs")),
                // The SCM shows no status text. The checkpoint rises by the crate's heartbeat,
                // not on each program state change: `Context::progress` would stretch the
                // start budget, and a crash-looping program would then hold the start.
                Msg::Status(s) => self.0.ctx.status(s),
                // Shutdown began without the SCM (`steward shutdown`): STOP_PENDING now, with
                // checkpoints, as for the SCM's Stop.
                Msg::Stopping => self.0.ctx.stop(),
                // No watchdog on Windows.
                Msg::Watchdog => {}
            }
        }
    }
}
