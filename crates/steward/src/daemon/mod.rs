//! A running steward: the single-instance lock, the local API, the remote API (with
//! `[api] listen`), the web dashboard (under /ui/ there, and with `[dashboard]` on a
//! listener of its own), the audit log, the supervisor with its status sink, and what triggers a
//! reload, composed. `cli::run`
//! calls [`run`] with a shutdown future; so does the Windows service host.

mod api_thread;
pub mod lock;
mod triggers;

use std::future::Future;

use anyhow::Context as _;
use steward_core::config::Config;

use crate::api;
use crate::process;
use crate::service::status::Notifier;
use crate::supervise::{self, StatusSink};

/// Run `config` until `shutdown` completes or `steward shutdown` is asked for. The status
/// goes to systemd when it started steward (`NOTIFY_SOCKET`), else nowhere.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<supervise::Stopped> {
    let status = Box::new(Notifier::from_env(&config));
    run_with(config, supervise::control::channel(), status, shutdown).await
}

/// [`run`] with a control channel and a status sink made by the caller, who keeps a
/// [`supervise::Control`] clone to drive the supervisor too (the Windows service host:
/// Pause, Continue, ParamChange, and the SCM as the sink).
pub async fn run_with(
    config: Config,
    (control, control_rx): (supervise::Control, supervise::ControlReceiver),
    status: Box<dyn StatusSink>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<supervise::Stopped> {
    if let Err(e) = crate::process::hide_inherited_fds() {
        tracing::warn!(
            event = "fds",
            "cannot list the descriptors steward inherited: {e}; programs may inherit them too"
        );
    }
    let state_dir = config.supervisor.state_dir.clone();
    crate::private::create_dir_all(&state_dir).with_context(|| {
        format!("cannot create state_dir {}; check the path and its permissions", state_dir.display())
    })?;
    let (_lock, stale) = lock::InstanceLock::acquire(&state_dir)?;
    if let Some(pid) = &stale {
        tracing::info!(event = "lock", "took over the lock of a steward (pid {pid}) that is gone");
    }
    // self-update: count this start of a new binary, or roll it back (update/boot.rs).
    let boot = crate::update::boot::at_startup(&state_dir, &config.source)?;
    // Room for many programs and connections; the programs themselves get the limit steward
    // started with.
    match crate::process::fd_limit::raise() {
        Ok(Some(raised)) => tracing::debug!(
            event = "fd_limit",
            "raised the open-file limit from {} to {}; programs keep {}",
            raised.from,
            raised.to,
            raised.from
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(
            event = "fd_limit",
            "cannot raise the open-file limit (RLIMIT_NOFILE): {e}; steward keeps the one it started with"
        ),
    }
    // What a steward that died left running: before anything starts, so that no copy of a
    // program runs twice and no port is still held by an orphan.
    let previous = stale.as_deref().unwrap_or("unknown");
    for swept in process::contain::sweep(&state_dir) {
        tracing::warn!(program = %swept.program, event = "swept",
            "ended {} process(es) of the program left running by a previous steward (pid {previous})",
            swept.killed);
    }
    // Dropped last (declared before everything that spawns): the cgroups go once empty.
    let containment = process::contain::Containment::set_up();
    tracing::info!(event = "containment", "containment: {}", containment.describe());

    // What a steward killed mid-deploy left: before the supervisor reads the histories.
    crate::deploy::recover(&config);
    let deployer = crate::deploy::Deployer::new(control.clone());
    let usage = api::usage::UsageHub::new(control.clone());
    // The dashboard's tokens follow reloads; only made when something serves it.
    let remote_listen = config.api.as_ref().and_then(|a| a.listen);
    let dashboard_listen = config.dashboard.as_ref().and_then(|d| d.listen);
    let tokens = (remote_listen.is_some() || dashboard_listen.is_some()).then(|| {
        let tokens = config.api.as_ref().map(|a| a.tokens.clone()).unwrap_or_default();
        api::auth::LiveTokens::new(tokens, config.source.clone())
    });
    // `[[ship]]`: the sinks start before the programs, so that the log files' first writes
    // already wake them. A TLS or token file that cannot be read stops steward here.
    let shipping = crate::ship::Shipping::start(&config, control.clone())?;
    let sinks = shipping.as_ref().map(|s| s.sinks.clone()).unwrap_or_default();
    let api_state = api::ApiState {
        control: control.clone(),
        deployer: deployer.clone(),
        usage,
        tokens,
        sinks: sinks.clone(),
    };
    let endpoint = api::local::endpoint(&state_dir);
    let info = crate::protocol::VersionReply {
        version: crate::update::running_version().into(),
        pid: std::process::id(),
        config: config.source.display().to_string(),
        service: crate::update::restart::this_service(),
    };
    // Control actions from either transport go to one audit log.
    let audit = api::audit::AuditLog::new(config.audit_log());
    // One dashboard for both of its listeners (the remote API's /ui/ and [dashboard] listen).
    let dashboard = api_state.tokens.clone().map(|tokens| {
        let timeout = config
            .dashboard
            .as_ref()
            .map_or(steward_core::config::defaults::SESSION_TIMEOUT, |d| d.session_timeout);
        api::dashboard::Dashboard::new(api_state.clone(), info.clone(), audit.clone(), tokens, timeout)
    });
    // Every listener is made and served on the API's own thread (api_thread.rs).
    let listeners = api_thread::ApiThread::start().context("cannot start the API's thread")?;
    // The remote API and the dashboard bind before anything starts, so a taken port or a bad
    // certificate stops steward here, with an error naming it.
    let (remote_stop, remote_stopped) = tokio::sync::oneshot::channel::<()>();
    let remote_task = match (&config.api, remote_listen, &dashboard) {
        (Some(settings), Some(listen), Some(dashboard)) => {
            let settings = settings.clone();
            let bound = listeners.run(async move { api::remote::bind(&settings, listen).await }).await?;
            audit.open_now().with_context(|| {
                format!("cannot open the audit log {}; check [api] audit_log", audit.path().display())
            })?;
            tracing::info!(event = "api", "remote API on {}", bound.url());
            let router = api::router(api_state.clone(), info.clone());
            Some(listeners.spawn(api::remote::serve(
                bound,
                router,
                audit.clone(),
                dashboard.clone(),
                async {
                    let _ = remote_stopped.await;
                },
            )))
        }
        _ => None,
    };
    let (dashboard_stop, dashboard_stopped) = tokio::sync::oneshot::channel::<()>();
    let dashboard_task = match (dashboard_listen, &dashboard) {
        (Some(addr), Some(dashboard)) => {
            let listener = listeners.run(tokio::net::TcpListener::bind(addr)).await.with_context(|| {
                format!("cannot listen on {addr} for the dashboard ([dashboard] listen); is the port taken?")
            })?;
            audit.open_now().with_context(|| {
                format!("cannot open the audit log {}; check [api] audit_log", audit.path().display())
            })?;
            tracing::info!(event = "dashboard", "dashboard on http://{}/ui/", listener.local_addr()?);
            Some(listeners.spawn(api::dashboard::serve_on(listener, dashboard.clone(), async {
                let _ = dashboard_stopped.await;
            })))
        }
        _ => None,
    };
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let bind_at = endpoint.clone();
    let api_task = match listeners.run(async move { api::local::bind(&bind_at) }).await {
        Ok(listener) => {
            tracing::info!(event = "api", "control API on {}", endpoint.display());
            let router = api::audit::audited(api::router(api_state.clone(), info), audit.clone(), "local");
            let router = api::metrics::counted(router);
            Some(listeners.spawn(api::local::serve(listener, router, async {
                let _ = api_stopped.await;
            })))
        }
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            tracing::warn!(
                event = "api",
                "{e}; CLI verbs other than `run` and `check` will not reach this steward"
            );
            None
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot listen on {}", endpoint.display()));
        }
    };

    // `[metrics] listen`: GET /metrics on a plain-HTTP listener of its own.
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = match config.metrics.listen {
        Some(addr) => {
            let listener = listeners
                .run(tokio::net::TcpListener::bind(addr))
                .await
                .with_context(|| format!("cannot listen on {addr} for [metrics]; is the port taken?"))?;
            tracing::info!(event = "metrics", "metrics on http://{}/metrics", listener.local_addr()?);
            let sources = api::metrics::Sources { control: control.clone(), sinks: sinks.clone() };
            Some(listeners.spawn(api::metrics::serve_on(listener, sources, async {
                let _ = metrics_stopped.await;
            })))
        }
        None => None,
    };

    let triggers = triggers::spawn(&config, control.clone(), api_state.tokens.clone());
    let checks = crate::deploy::spawn_checks(&config, deployer);
    // self-update: confirm a new binary once startup has settled.
    let status = crate::update::boot::confirm_when_settled(boot, status, &config);
    let watches = shipping.as_ref().and_then(crate::ship::Shipping::watches);
    let result = supervise::run(config, control_rx, status, watches, shutdown).await;
    if let Some(shipping) = shipping {
        shipping.stop().await;
    }
    triggers.abort();
    if let Some(checks) = checks {
        checks.abort();
    }

    let _ = metrics_stop.send(());
    if let Some(task) = metrics_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }

    let _ = api_stop.send(());
    let _ = remote_stop.send(());
    let _ = dashboard_stop.send(());
    if let Some(task) = dashboard_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    if let Some(task) = remote_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    if let Some(task) = api_task {
        // Streams (`logs -f`, `events -f`) end when the supervisor is gone; do not let a
        // stuck client hold the exit.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    #[cfg(unix)]
    let _ = std::fs::remove_file(&endpoint);
    result
}
