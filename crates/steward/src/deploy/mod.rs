//! Deploying a new version of a program that runs a release (`[programs.NAME.release]`), and
//! going back to the one before.
//!
//! `steward deploy api [VERSION | --latest | --file ARCHIVE]`, step by step:
//! 1. **Fetch and verify.** The manifest and its minisign signature from the release source
//!    (a folder or a URL), verified under the program's `public_keys`; or, with `--file`, the
//!    archive's own signature, whose trusted comment names the program and version.
//! 2. **Check** ([`steward_core::release::accept`]): the name, the expiry, the version against
//!    the one installed and the floor (the highest ever deployed; `--allow-downgrade` passes
//!    it), and an artifact for this OS and architecture.
//! 3. **Unpack** the artifact (size and sha256 from the signed manifest) into a staging folder,
//!    renamed to `releases/api/<version>/` only once whole.
//! 4. **Switch** (the supervisor: stop-then-start, or a rolling restart for a program with
//!    `instances` or `sockets`), with the history saying `switching` first.
//! 5. **Gate**: every process ready within `ready_timeout`, then up for `healthy_for`.
//! 6. Passed: the history names the new version current, and old versions beyond `keep` go.
//!    Failed: switch back to the version before, quarantine the new one, and say why.
//!
//! The history (`releases/api/state.json`) changes `current` only after the gate passed, so a
//! steward killed at any step starts again on the last version that proved itself
//! ([`recover`]), and half-unpacked folders (`.staging-*`) are swept.

mod auto;
mod source;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use steward_core::release::{History, Version};

use crate::releases::Store;
use crate::supervise::{Control, ControlError, Release, ReleaseInfo};

pub use auto::spawn_checks;
pub use source::describe as describe_source;

/// Which version to deploy.
#[derive(Clone, Debug)]
pub enum Wanted {
    /// What the release source's manifest offers now.
    Latest,
    /// This version: installed already, or the one the source offers.
    Version(Version),
    /// A local archive, with its signature beside it (`ARCHIVE.minisig`).
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub program: String,
    pub wanted: Wanted,
    pub allow_downgrade: bool,
}

/// How a deploy or rollback ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub program: String,
    /// The new version runs and proved itself (or there was nothing to do).
    pub ok: bool,
    /// The version the program runs now.
    pub running: Option<Version>,
    /// The version that was asked for.
    pub wanted: Option<Version>,
    pub message: String,
    pub processes: Vec<(String, Option<u32>)>,
}

/// Why a deploy did not start: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The release was refused (signature, expiry, version, target, archive...).
    #[error("{0}")]
    Refused(String),
    /// Fetching or unpacking failed (network, disk).
    #[error("{0}")]
    Failed(String),
    #[error("{0} is already being deployed or rolled back; wait until that ends")]
    Busy(String),
    /// Nothing new to deploy (an automatic check).
    #[error("{0}")]
    NoNews(String),
}

/// Runs deploys and rollbacks, one at a time per program, each in a task of its own so that
/// a client that goes away does not cut one short.
#[derive(Clone)]
pub struct Deployer {
    control: Control,
    busy: Arc<Mutex<BTreeSet<String>>>,
}

/// Marks a program busy until dropped.
struct Busy {
    program: String,
    set: Arc<Mutex<BTreeSet<String>>>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.program);
    }
}

impl Deployer {
    pub fn new(control: Control) -> Deployer {
        Deployer { control, busy: Arc::default() }
    }

    fn claim(&self, program: &str) -> Result<Busy, DeployError> {
        let mut set = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(program.to_owned()) {
            return Err(DeployError::Busy(program.to_owned()));
        }
        Ok(Busy { program: program.to_owned(), set: Arc::clone(&self.busy) })
    }

    pub async fn deploy(&self, request: Request) -> Result<Outcome, DeployError> {
        let busy = self.claim(&request.program)?;
        let this = self.clone();
        run_detached(async move {
            let _busy = busy;
            this.deploy_now(request, false).await
        })
        .await
    }

    /// Back to the version before the current one (`steward rollback`).
    pub async fn rollback(&self, program: String) -> Result<Outcome, DeployError> {
        let busy = self.claim(&program)?;
        let this = self.clone();
        run_detached(async move {
            let _busy = busy;
            this.rollback_now(&program).await
        })
        .await
    }

    /// The history and installed versions of `program`.
    pub async fn versions(
        &self,
        program: &str,
    ) -> Result<(ReleaseInfo, History, BTreeSet<Version>), DeployError> {
        let info = self.control.release_info(program.to_owned()).await?;
        let store = Store::new(&info.state_dir, program);
        let history = read_history(&store, program)?;
        let installed = store.installed().map_err(|e| DeployError::Failed(e.to_string()))?;
        Ok((info, history, installed))
    }

    /// `auto`: from `check_every` (a quarantined or current version is no news, not an error).
    pub(crate) async fn deploy_now(&self, request: Request, auto: bool) -> Result<Outcome, DeployError> {
        let program = request.program.clone();
        let info = self.control.release_info(program.clone()).await?;
        let store = Store::new(&info.state_dir, &program);
        let mut history = read_history(&store, &program)?;
        let staged = match source::stage(&info, &store, &history, &request, auto).await {
            Ok(staged) => staged,
            Err(e) => {
                let version = match &request.wanted {
                    Wanted::Version(v) => v.to_string(),
                    _ => String::new(),
                };
                if !matches!(e, source::StageError::NoNews(_)) {
                    tracing::error!(program = %program, event = "deploy-refused", "deploy of {program} refused: {e}");
                    self.control.publish_deploy(&program, "refused", version, e.to_string()).await;
                }
                return Err(match e {
                    source::StageError::Refused(m) => DeployError::Refused(m),
                    source::StageError::NoNews(m) => DeployError::NoNews(m),
                    source::StageError::Failed(m) => DeployError::Failed(m),
                });
            }
        };
        let version = staged.version.clone();
        if info.active.as_ref() == Some(&version) {
            return Ok(Outcome {
                program: program.clone(),
                ok: true,
                running: Some(version.clone()),
                wanted: Some(version.clone()),
                message: format!("{program} already runs {version}"),
                processes: Vec::new(),
            });
        }
        let from = info.active.clone();
        let from_text = from.as_ref().map_or("nothing".to_owned(), ToString::to_string);
        tracing::info!(program = %program, event = "deploy-started", "deploying {program} {version} (was {from_text})");
        self.control
            .publish_deploy(&program, "started", version.to_string(), format!("switching from {from_text}"))
            .await;
        let to = Release { version: version.clone(), dir: staged.dir };
        let switched = self.switch(&program, to, &store, &mut history).await?;
        if switched.ok {
            history.succeeded();
            write_history(&store, &history)?;
            let message = format!("{program} runs {version}: {}", switched.message);
            tracing::info!(program = %program, event = "deployed", "{message}");
            self.control.publish_deploy(&program, "deployed", version.to_string(), message.clone()).await;
            collect_garbage(&store, &history, info.spec.keep, &program);
            return Ok(Outcome {
                program,
                ok: true,
                running: Some(version.clone()),
                wanted: Some(version),
                message,
                processes: switched.processes,
            });
        }
        // The gate failed: back to the version before, and never this one again by itself.
        let why = switched.message;
        tracing::error!(program = %program, event = "deploy-failed", "{program} {version} failed its gate: {why}");
        self.control.publish_deploy(&program, "failed", version.to_string(), why.clone()).await;
        history.failed();
        write_history(&store, &history)?;
        let Some(back) = from.filter(|b| store.dir_of(b).is_dir()) else {
            let message = format!(
                "{version} failed ({why}), and there is no earlier version to go back to; fix the release and deploy again"
            );
            return Ok(Outcome {
                program,
                ok: false,
                running: None,
                wanted: Some(version),
                message,
                processes: switched.processes,
            });
        };
        let back_dir = store.dir_of(&back);
        let restored =
            self.switch(&program, Release { version: back.clone(), dir: back_dir }, &store, &mut history);
        let restored = restored.await.unwrap_or_else(|e| crate::supervise::Switched {
            ok: false,
            message: e.to_string(),
            processes: Vec::new(),
        });
        // The old version is current all along; this ends the switch back in the history.
        history.succeeded();
        write_history(&store, &history)?;
        let (step, message) = if restored.ok {
            ("rolled-back", format!("{version} failed ({why}); rolled back to {back}, which runs again"))
        } else {
            (
                "rollback-failed",
                format!(
                    "{version} failed ({why}); rolled back to {back}, but it is not healthy either: {}",
                    restored.message
                ),
            )
        };
        tracing::warn!(program = %program, event = "deploy-rolled-back", "{message}");
        self.control.publish_deploy(&program, step, back.to_string(), message.clone()).await;
        Ok(Outcome {
            program,
            ok: false,
            running: Some(back),
            wanted: Some(version),
            message,
            processes: restored.processes,
        })
    }

    async fn rollback_now(&self, program: &str) -> Result<Outcome, DeployError> {
        let info = self.control.release_info(program.to_owned()).await?;
        let store = Store::new(&info.state_dir, program);
        let mut history = read_history(&store, program)?;
        let Some(back) = history.rollback_target().cloned() else {
            return Err(DeployError::Refused(format!(
                "{program} has no previous version to go back to (`steward versions {program}` lists what is installed)"
            )));
        };
        let dir = store.dir_of(&back);
        if !dir.is_dir() {
            return Err(DeployError::Refused(format!(
                "{program}'s previous version {back} is no longer installed ({} is missing); deploy it again",
                dir.display()
            )));
        }
        let from_text = info.active.as_ref().map_or("nothing".to_owned(), ToString::to_string);
        self.control
            .publish_deploy(program, "started", back.to_string(), format!("rolling back from {from_text}"))
            .await;
        let switched =
            self.switch(program, Release { version: back.clone(), dir }, &store, &mut history).await?;
        // It runs now, proven or not, and the history says what runs (a rollback is asked
        // for by hand: it is not undone by itself).
        history.succeeded();
        write_history(&store, &history)?;
        let message = if switched.ok {
            format!("{program} rolled back from {from_text} to {back}: {}", switched.message)
        } else {
            format!(
                "{program} rolled back from {from_text} to {back}, but it is not healthy: {}",
                switched.message
            )
        };
        let step = if switched.ok { "rolled-back" } else { "rollback-failed" };
        tracing::info!(program, event = "rolled-back", "{message}");
        self.control.publish_deploy(program, step, back.to_string(), message.clone()).await;
        Ok(Outcome {
            program: program.to_owned(),
            ok: switched.ok,
            running: Some(back.clone()),
            wanted: Some(back),
            message,
            processes: switched.processes,
        })
    }

    /// Starts the switch (an error: nothing changed), then records it in the history (which
    /// names the old version current until the end), then waits for the gate.
    async fn switch(
        &self,
        program: &str,
        to: Release,
        store: &Store,
        history: &mut History,
    ) -> Result<crate::supervise::Switched, DeployError> {
        let version = to.version.clone();
        let verdict = self.control.switch(program.to_owned(), to).await?;
        history.begin(version);
        write_history(store, history)?;
        Ok(verdict.await.unwrap_or_else(|_| crate::supervise::Switched {
            ok: false,
            message: "steward is shutting down".into(),
            processes: Vec::new(),
        }))
    }
}

/// Runs `work` in a task of its own and waits for it.
async fn run_detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, DeployError>> + Send + 'static,
) -> Result<T, DeployError> {
    tokio::spawn(work).await.map_err(|e| DeployError::Failed(format!("the deploy task ended: {e}")))?
}

fn read_history(store: &Store, program: &str) -> Result<History, DeployError> {
    match store.read_state::<History>() {
        Ok(Some(read)) => {
            if let Some(note) = read.recovered {
                tracing::warn!(program, event = "release-history", "{note}");
            }
            Ok(read.state)
        }
        Ok(None) => Ok(History::default()),
        Err(e) => Err(DeployError::Failed(e.to_string())),
    }
}

fn write_history(store: &Store, history: &History) -> Result<(), DeployError> {
    store.write_state(history).map_err(|e| DeployError::Failed(e.to_string()))
}

/// Removes installed versions beyond `keep` (never the current, previous or a running one).
fn collect_garbage(store: &Store, history: &History, keep: u32, program: &str) {
    let running: BTreeSet<Version> = history.current.iter().cloned().collect();
    let installed = match store.installed() {
        Ok(installed) => installed,
        Err(e) => {
            tracing::warn!(program, event = "release-removed", "cannot list the installed versions: {e}");
            return;
        }
    };
    for version in steward_core::release::to_remove(&installed, history, keep as usize, &running) {
        match store.remove(&version) {
            Ok(()) => tracing::info!(
                program,
                event = "release-removed",
                "removed {program} {version} (keep = {keep})"
            ),
            Err(e) => tracing::warn!(
                program,
                event = "release-removed",
                "cannot remove {program} {version} yet: {e}; the next deploy tries again"
            ),
        }
    }
}

/// At startup, before anything runs: sweep what a killed steward left half-done in every
/// release folder, and end a switch it did not finish (the history still names the last
/// version that proved itself current, so that one runs).
pub fn recover(config: &steward_core::config::Config) {
    for program in config.releases.keys() {
        let store = Store::new(&config.supervisor.state_dir, program);
        for path in store.sweep_leftovers() {
            tracing::warn!(program = %program, event = "release-swept",
                "removed {} left half-done by a steward that stopped", path.display());
        }
        let Ok(mut history) = read_history(&store, program) else { continue };
        if let Some(s) = history.interrupted() {
            let back = history.current.as_ref().map_or("nothing".to_owned(), ToString::to_string);
            tracing::warn!(program = %program, event = "deploy-interrupted",
                "the switch of {program} to {} did not finish (steward stopped); {program} runs {back}", s.to);
            if let Err(e) = store.write_state(&history) {
                tracing::error!(program = %program, event = "release-history", "{e}");
            }
        }
    }
}
