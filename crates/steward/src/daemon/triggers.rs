//! What starts a reload besides `steward reload`: SIGHUP (Unix), and the config file
//! changing on disk when `watch_config = true`. Each just calls [`Control::reload`]; the
//! supervisor validates and logs the outcome.

use std::path::PathBuf;
use std::time::Duration;

use steward_core::config::Config;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::supervise::Control;

/// Editors write a file in several steps (truncate, write, rename): wait this long after
/// the last change before reloading.
const SETTLE: Duration = Duration::from_millis(200);

/// `tokens`: the dashboard's, read again after a reload that changed `[api]`, as
/// `steward reload` does.
pub fn spawn(
    config: &Config,
    control: Control,
    tokens: Option<crate::api::auth::LiveTokens>,
) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let mut watcher = None;
    if config.supervisor.watch_config {
        match watch(config.source.clone(), tx.clone()) {
            Ok(w) => watcher = Some(w),
            Err(e) => tracing::warn!(event = "watch-config", "cannot watch {}: {e}", config.source.display()),
        }
    }
    #[cfg(unix)]
    sighup(tx.clone());
    tokio::spawn(async move {
        let _keep = watcher;
        while let Some(why) = rx.recv().await {
            if why == "file" {
                // Gather the burst of events one save makes.
                while let Ok(Some(_)) = tokio::time::timeout(SETTLE, rx.recv()).await {}
            }
            tracing::info!(event = "reload", "reload requested ({why})");
            match control.reload().await {
                Ok(diff) => {
                    if let Some(tokens) =
                        tokens.as_ref().filter(|_| diff.needs_restart.iter().any(|s| s == "[api]"))
                    {
                        tokens.reread();
                    }
                }
                Err(e) => tracing::warn!(event = "reload", "reload not applied: {e}"),
            }
        }
    })
}

#[cfg(unix)]
fn sighup(tx: mpsc::UnboundedSender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send("SIGHUP").is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(event = "reload", "cannot listen for SIGHUP: {e}"),
    }
}

/// Watch the config file's folder (editors often replace the file by renaming a new one
/// over it, which a watch on the file itself would miss) for changes to the file.
fn watch(
    path: PathBuf,
    tx: mpsc::UnboundedSender<&'static str>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let dir = path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let ours = event.paths.iter().any(|p| p.file_name().map(|n| n.to_os_string()) == name);
        let writes = matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_));
        if ours && writes {
            let _ = tx.send("file");
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
