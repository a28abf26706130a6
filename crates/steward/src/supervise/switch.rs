//! Programs that run a release (`[programs.NAME.release]`): which installed version each runs,
//! and switching one to another version, gated.
//!
//! The config writes `%{release}/bin/api`; the supervisor keeps those templates and runs
//! specs resolved against the version in use ([`Release`]), read from the program's release
//! history when it first sees the program. A switch is a reload of the program's processes to
//! specs resolved against another version: stop-then-start, or a rolling restart when the
//! program rolls (`instances` or `sockets`) — the same two paths as a changed config. Then the
//! pure [`Gate`] watches the new processes: ready within `ready_timeout`, then up for
//! `healthy_for`. Whoever asked (the deploy flow, `deploy/`) gets the verdict and decides what
//! to do about a failure (switch back); the supervisor only carries out switches.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use steward_core::config::{group_of, Config, ProgramSpec, ReleaseSpec};
use steward_core::fsm::State;
use steward_core::gate::{Gate, Seen, Verdict};
use steward_core::release::Version;
use tokio::sync::oneshot;

use super::control::ControlError;
use super::event::{Event, EventKind};
use super::reload::{PendingConfig, Replier};
use super::Supervisor;

/// An installed version of a program's release: the folder `%{release}` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: Version,
    pub dir: PathBuf,
}

/// How a switch ended.
#[derive(Clone, Debug)]
pub struct Switched {
    /// The new version proved itself (or nothing had to run it).
    pub ok: bool,
    pub message: String,
    /// (process, pid) of each process of the program after the switch.
    pub processes: Vec<(String, Option<u32>)>,
}

/// What the deploy flow needs to know about a program before it switches it.
#[derive(Clone, Debug)]
pub struct ReleaseInfo {
    pub spec: ReleaseSpec,
    pub state_dir: PathBuf,
    /// The version the program's processes run, if one is installed.
    pub active: Option<Version>,
    /// Whether any of its processes is up.
    pub running: bool,
}

/// A switch waiting for its gate.
pub(super) struct Switch {
    gate: Gate,
    /// Processes to start once the new specs are in place: the first release of a program
    /// that starts by itself (it waited for one).
    start: Vec<String>,
    version: Version,
    reply: oneshot::Sender<Switched>,
}

/// The release of `program` its history names current, if one is installed.
fn installed(state_dir: &std::path::Path, program: &str) -> Option<Release> {
    let store = crate::releases::Store::new(state_dir, program);
    let history = match store.read_state::<steward_core::release::History>() {
        Ok(Some(read)) => read.state,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(program, event = "release", "cannot read the release history of {program}: {e}");
            return None;
        }
    };
    let version = history.current?;
    let dir = store.dir_of(&version);
    dir.is_dir().then_some(Release { version, dir })
}

impl Supervisor {
    /// Resolves `%{release}` in the programs of `config` that run a release, against the
    /// version each runs (read from its history the first time). Returns the templates.
    pub(super) fn resolve_releases(&mut self, config: &mut Config) -> BTreeMap<String, ProgramSpec> {
        let mut templates = BTreeMap::new();
        if config.releases.is_empty() {
            return templates;
        }
        // The running state dir: a reload changes it only with a restart.
        let state_dir = self.config.supervisor.state_dir.clone();
        for (name, spec) in config.programs.iter_mut() {
            if !spec.needs_release() {
                continue;
            }
            let group = group_of(name);
            if !self.releases.contains_key(group) {
                if let Some(release) = installed(&state_dir, group) {
                    self.releases.insert(group.to_owned(), release);
                }
            }
            templates.insert(name.clone(), (**spec).clone());
            if let Some(r) = self.releases.get(group) {
                *spec = std::sync::Arc::new(spec.with_release(&r.dir, &r.version));
            }
        }
        templates
    }

    pub(super) fn release_info(&self, group: &str) -> Result<ReleaseInfo, ControlError> {
        let names = self.processes_of(group)?;
        let spec = self.config.releases.get(group).cloned().ok_or_else(|| no_release_table(group))?;
        Ok(ReleaseInfo {
            spec,
            state_dir: self.config.supervisor.state_dir.clone(),
            active: self.releases.get(group).map(|r| r.version.clone()),
            running: names.iter().any(|n| self.states.get(n).is_some_and(|s| !s.is_down())),
        })
    }

    fn processes_of(&self, group: &str) -> Result<Vec<String>, ControlError> {
        let names: Vec<String> = self.programs.keys().filter(|n| group_of(n) == group).cloned().collect();
        if names.is_empty() {
            return Err(ControlError::UnknownProgram(group.to_owned()));
        }
        Ok(names)
    }

    pub(super) fn refuse_if_switching(&self, group: &str) -> Result<(), ControlError> {
        match self.switches.get(group) {
            Some(s) => Err(ControlError::Conflict(format!(
                "{group} is switching to {}; wait until it proves itself or fails",
                s.version
            ))),
            None => Ok(()),
        }
    }

    /// Switch every process of `group` to `to`; the receiver gets the gate's verdict.
    pub(super) fn begin_switch(
        &mut self,
        group: &str,
        to: Release,
    ) -> Result<oneshot::Receiver<Switched>, ControlError> {
        if self.shutting_down {
            return Err(ControlError::ShuttingDown);
        }
        if self.reload.is_some() {
            return Err(ControlError::ReloadInProgress);
        }
        let names = self.processes_of(group)?;
        let release = self.config.releases.get(group).ok_or_else(|| no_release_table(group))?;
        self.refuse_if_rolling(group)?;
        self.refuse_if_switching(group)?;
        let mut config = self.config.clone();
        let mut changed = false;
        for name in &names {
            let Some(template) = self.templates.get(name) else { continue };
            let spec = template.with_release(&to.dir, &to.version);
            changed |= *self.programs[name].spec != spec;
            config.programs.insert(name.clone(), std::sync::Arc::new(spec));
        }
        let running = names.iter().any(|n| self.states.get(n).is_some_and(|s| !s.is_down()));
        // A program that waited for its first release starts now, as it would have at startup.
        let start: Vec<String> = names
            .iter()
            .filter(|n| {
                let spec = &self.programs[n.as_str()].spec;
                spec.needs_release() && spec.autostart && !self.shutting_down
            })
            .cloned()
            .collect();
        let (tx, rx) = oneshot::channel();
        let version = to.version.clone();
        self.releases.insert(group.to_owned(), to.clone());
        if !changed {
            let message = format!("{group} already runs {version}");
            let _ = tx.send(Switched { ok: true, message, processes: self.pids(&names) });
            return Ok(rx);
        }
        let sockets = crate::sockets::Sockets::bind(&config, &self.sockets)
            .map_err(|e| ControlError::Other(e.to_string()))?;
        let diff = steward_core::reload::diff(&self.config, &config);
        let templates = self.templates.clone();
        let (ready_timeout, healthy_for) = (release.ready_timeout, release.healthy_for);
        tracing::info!(program = group, event = "switch", "switching {group} to {version}");
        if running || !start.is_empty() {
            let gate = Gate::new(ready_timeout, healthy_for);
            self.switches
                .insert(group.to_owned(), Switch { gate, start, version: version.clone(), reply: tx });
        } else {
            let message = format!("{group} is not running; it runs {version} when it starts");
            let _ = tx.send(Switched { ok: true, message, processes: self.pids(&names) });
        }
        let new = PendingConfig { config, sockets, diff, templates };
        self.apply_config(new, Replier::Switch(group.to_owned()));
        Ok(rx)
    }

    /// Phase two of a switch's reload is done: the new processes are in place. (A switch that
    /// rolls hears from its roll instead, [`Supervisor::switch_rolled`].)
    pub(super) fn switch_applied(&mut self, group: &str, rolled: bool) {
        if let Some(s) = self.switches.get_mut(group) {
            if !rolled {
                s.gate.switched(super::rollout::now());
            }
            for name in std::mem::take(&mut s.start) {
                self.scheduler.want_started(&name);
            }
            self.dispatch();
        }
        self.check_switches();
    }

    /// A roll of `group` ended (or was aborted).
    pub(super) fn switch_rolled(&mut self, group: &str, outcome: Result<(), String>) {
        if let Some(s) = self.switches.get_mut(group) {
            s.gate.rolled(outcome, super::rollout::now());
        }
        self.check_switches();
    }

    /// After a change of state or readiness: feed the gates, and end the switches they judged.
    pub(super) fn check_switches(&mut self) {
        if self.switches.is_empty() {
            return;
        }
        let now = super::rollout::now();
        let groups: Vec<String> = self.switches.keys().cloned().collect();
        for group in groups {
            let seen: Vec<(String, Seen)> = self
                .programs
                .keys()
                .filter(|n| group_of(n) == group)
                .map(|n| {
                    let state = self.states.get(n).copied().unwrap_or(State::Stopped);
                    let view = super::observe::ready_view(&self.states, &self.observe, n);
                    (n.clone(), Seen { state, ready: view == Some(State::Running) })
                })
                .collect();
            let Some(s) = self.switches.get_mut(&group) else { continue };
            s.gate.observe(seen.iter().map(|(n, s)| (n.as_str(), *s)), now);
            s.gate.tick(now);
            if s.gate.verdict().is_some() {
                self.finish_switch(&group);
            }
        }
    }

    /// The earliest gate deadline, if a switch waits on time.
    pub(super) fn switch_deadline(&self) -> Option<std::time::Instant> {
        self.switches.values().filter_map(|s| s.gate.deadline()).min()
    }

    fn finish_switch(&mut self, group: &str) {
        let Some(s) = self.switches.remove(group) else { return };
        let names = self.processes_of(group).unwrap_or_default();
        let processes = self.pids(&names);
        let (ok, message) = match s.gate.verdict() {
            Some(Verdict::Passed) => (true, format!("{group} runs {} and proved itself", s.version)),
            Some(Verdict::Failed(why)) => (false, why.clone()),
            None => return,
        };
        if ok {
            tracing::info!(program = group, event = "switch-passed", "{message}");
        } else {
            tracing::error!(program = group, event = "switch-failed", "{group} {}: {message}", s.version);
        }
        let _ = s.reply.send(Switched { ok, message, processes });
    }

    /// Ends the switch of `only`, or every switch (shutdown): whoever waits is told why.
    pub(super) fn abort_switches(&mut self, only: Option<&str>, why: &str) {
        let groups: Vec<String> =
            self.switches.keys().filter(|g| only.is_none_or(|o| o == g.as_str())).cloned().collect();
        for group in groups {
            let Some(s) = self.switches.remove(&group) else { continue };
            let processes = self.pids(&self.processes_of(&group).unwrap_or_default());
            let _ = s.reply.send(Switched { ok: false, message: why.to_owned(), processes });
        }
    }

    fn pids(&self, names: &[String]) -> Vec<(String, Option<u32>)> {
        names.iter().map(|n| (n.clone(), self.programs.get(n).and_then(|p| p.status().pid))).collect()
    }

    /// A deploy step, for `steward events` (the deploy flow publishes through the control).
    pub(super) fn publish_deploy(
        &mut self,
        group: &str,
        step: &'static str,
        version: String,
        message: String,
    ) {
        self.push_event(Event::now(Arc::from(group), EventKind::Deploy { step, version, message }));
    }
}

fn no_release_table(group: &str) -> ControlError {
    ControlError::BadRequest(format!(
        "{group} has no [programs.{group}.release] table: steward deploys only programs that run a release (docs/deploy.md)"
    ))
}
