//! A running steward: the single-instance lock, the local API, the supervisor, and what
//! triggers a reload, composed. `cli::run` calls [`run`] with a shutdown future; so will
//! the Windows service host.

pub mod lock;
mod triggers;

use std::future::Future;

use anyhow::Context as _;
use steward_core::config::Config;

use crate::api;
use crate::supervise;

/// Run `config` until `shutdown` completes or `steward shutdown` is asked for.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state_dir = config.supervisor.state_dir.clone();
    std::fs::create_dir_all(&state_dir).with_context(|| {
        format!("cannot create state_dir {}; check the path and its permissions", state_dir.display())
    })?;
    let (_lock, stale) = lock::InstanceLock::acquire(&state_dir)?;
    if let Some(pid) = stale {
        tracing::info!(event = "lock", "took over the lock of a steward (pid {pid}) that is gone");
    }

    let (control, control_rx) = supervise::control::channel();
    let endpoint = api::local::endpoint(&state_dir);
    let info = api::types::VersionReply {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        config: config.source.display().to_string(),
    };
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = match api::local::bind(&endpoint) {
        Ok(listener) => {
            tracing::info!(event = "api", "control API on {}", endpoint.display());
            let router = api::router(control.clone(), info);
            Some(tokio::spawn(api::local::serve(listener, router, async {
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

    let triggers = triggers::spawn(&config, control.clone());
    let result = supervise::run(config, control_rx, shutdown).await;
    triggers.abort();

    let _ = api_stop.send(());
    if let Some(task) = api_task {
        // Streams (`logs -f`, `events -f`) end when the supervisor is gone; do not let a
        // stuck client hold the exit.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    #[cfg(unix)]
    let _ = std::fs::remove_file(&endpoint);
    result
}
