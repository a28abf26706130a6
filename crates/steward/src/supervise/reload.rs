//! A reload in two phases: validate the new file and stop what it removes or changes, then,
//! once those are down, swap the definitions and start what is due. A bad file changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use steward_core::config::{group_of, Config, ProgramSpec};
use steward_core::reload::{self, Diff};
use steward_core::schedule::Scheduler;
use tokio::sync::oneshot;

use super::control::ControlError;
use super::{deps_of, Supervisor};

/// A new config, checked, with `%{release}` resolved and its sockets bound.
pub(super) struct PendingConfig {
    pub(super) config: Config,
    pub(super) sockets: crate::sockets::Sockets,
    pub(super) diff: Diff,
    pub(super) templates: BTreeMap<String, ProgramSpec>,
}

/// A reload between its two phases: the programs it removes or changes are stopping.
pub(super) struct PendingReload {
    config: Config,
    /// The new config's sockets, bound: in use from phase two.
    sockets: crate::sockets::Sockets,
    diff: Diff,
    /// Orders the stops among the programs being replaced (dependents first).
    pub(super) stops: Scheduler,
    /// Must be down before phase two.
    stopping: BTreeSet<String>,
    /// Changed programs that were running: they start again with their new definition.
    restart: BTreeSet<String>,
    /// Changed processes of programs that roll, by program, with their new specs: rolled
    /// after the swap, never stopped by it.
    rolled: BTreeMap<String, BTreeMap<String, ProgramSpec>>,
    /// The `%{release}` templates of the new config's programs that run a release.
    templates: BTreeMap<String, ProgramSpec>,
    pub(super) reply: Replier,
}

/// Who waits for a reload: a caller of `steward reload`, or a switch of one program to
/// another release (`switch.rs`), which is a reload of that program's processes.
pub(super) enum Replier {
    Reload(oneshot::Sender<Result<Diff, ControlError>>),
    Switch(String),
}

impl Replier {
    pub(super) fn refuse(self, sup: &mut Supervisor, error: ControlError) {
        match self {
            Replier::Reload(reply) => {
                let _ = reply.send(Err(error));
            }
            Replier::Switch(group) => sup.abort_switches(Some(&group), &error.to_string()),
        }
    }
}

impl Supervisor {
    /// Phase one of a reload: validate the new file, then stop what it removes or changes.
    pub(super) fn begin_reload(&mut self, reply: oneshot::Sender<Result<Diff, ControlError>>) {
        if self.shutting_down {
            let _ = reply.send(Err(ControlError::ShuttingDown));
            return;
        }
        if self.reload.is_some() {
            let _ = reply.send(Err(ControlError::ReloadInProgress));
            return;
        }
        let path = self.config.source.clone();
        let loaded = steward_core::config::load_with(&path, &crate::process::host_env());
        // What the parse held (several KB a program) goes back, as at start.
        crate::process::trim_heap();
        let mut config = match loaded {
            Ok(c) => c,
            Err(diags) => {
                // Located, without the text of the lines: those may hold secrets, and the log
                // and the caller (perhaps remote) need only where to look.
                let located = diags.located();
                tracing::error!(
                    event = "reload-rejected",
                    "the new config is invalid; nothing was changed (`steward check` shows the lines):\n{located}"
                );
                let _ = reply.send(Err(ControlError::InvalidConfig(located.to_string())));
                self.observe.reload_rejected();
                return;
            }
        };
        // New and changed sockets are bound before anything changes: one that cannot be
        // bound rejects the reload. Unchanged ones are kept (the same fds).
        let sockets = match crate::sockets::Sockets::bind(&config, &self.sockets) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(event = "reload-rejected", "{e}; nothing was changed");
                let _ = reply.send(Err(ControlError::InvalidConfig(e.to_string())));
                self.observe.reload_rejected();
                return;
            }
        };
        super::log_warnings(&config);
        let templates = self.resolve_releases(&mut config);
        // A program mid-roll or mid-switch takes no reload that changes its processes.
        let diff = reload::diff(&self.config, &config);
        for name in diff.removed.iter().chain(&diff.changed) {
            let group = group_of(name);
            if let Err(e) = self.refuse_if_rolling(group).and_then(|()| self.refuse_if_switching(group)) {
                tracing::error!(event = "reload-rejected", "{e}; nothing was changed");
                let _ = reply.send(Err(e));
                return;
            }
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
        self.apply_config(PendingConfig { config, sockets, diff, templates }, Replier::Reload(reply));
    }

    /// A checked, resolved config, with its sockets bound: stop what it removes or changes,
    /// then (in [`Supervisor::advance_reload`]) swap and start.
    pub(super) fn apply_config(&mut self, new: PendingConfig, reply: Replier) {
        let PendingConfig { config, sockets, diff, templates } = new;
        // Changed processes of a program that rolls, and runs, are replaced by a roll after
        // the swap instead of stop-then-start.
        let mut rolled: BTreeMap<String, BTreeMap<String, ProgramSpec>> = BTreeMap::new();
        for name in &diff.changed {
            let group = group_of(name);
            let rolls = config.groups.get(group).is_some_and(|g| g.rolls());
            if rolls && self.states.get(name).is_some_and(|s| !s.is_down()) {
                rolled
                    .entry(group.to_owned())
                    .or_default()
                    .insert(name.clone(), (*config.programs[name]).clone());
            }
        }
        let is_rolled = |n: &String| rolled.get(group_of(n)).is_some_and(|units| units.contains_key(n));
        let replaced: Vec<String> =
            diff.removed.iter().chain(diff.changed.iter().filter(|n| !is_rolled(n))).cloned().collect();
        let restart = diff
            .changed
            .iter()
            .filter(|n| !self.states[n.as_str()].is_down() && !is_rolled(n))
            .cloned()
            .collect::<BTreeSet<_>>();
        let mut stops = Scheduler::new(reload::subgraph(&deps_of(&self.config), &replaced));
        for n in &replaced {
            self.scheduler.cancel(n);
            stops.want_stopped(n);
        }
        self.reload = Some(PendingReload {
            config,
            sockets,
            diff,
            stops,
            stopping: replaced.into_iter().collect(),
            restart,
            rolled,
            templates,
            reply,
        });
        self.dispatch();
        self.advance_reload();
    }

    /// Phase two, once everything being replaced is down: swap definitions and start.
    pub(super) fn advance_reload(&mut self) {
        let ready = match &self.reload {
            Some(p) => p.stopping.iter().all(|n| self.states.get(n).is_none_or(|s| s.is_down())),
            None => false,
        };
        if !ready {
            return;
        }
        let Some(pending) = self.reload.take() else { return };
        let PendingReload { config, sockets, diff, restart, rolled, templates, reply, .. } = pending;
        self.templates = templates;
        let is_rolled = |n: &String| rolled.get(group_of(n)).is_some_and(|units| units.contains_key(n));
        self.sockets = sockets;
        // The supervisor settings (state and log dirs) and the remote API stay as they were
        // until a restart.
        let supervisor = std::mem::replace(&mut self.config.supervisor, config.supervisor.clone());
        let api = std::mem::replace(&mut self.config.api, config.api.clone());
        self.config = Config { supervisor, api, ..config };
        for name in diff.removed.iter().chain(diff.changed.iter().filter(|n| !is_rolled(n))) {
            if let Some(handle) = self.programs.remove(name) {
                self.retired.push(tokio::spawn(handle.finish()));
            }
            let effects = self.observe.forget(name);
            self.apply(effects);
            self.states.remove(name);
        }
        let pending_starts: Vec<String> = self.scheduler.pending_starts().cloned().collect();
        self.scheduler = Scheduler::new(deps_of(&self.config));
        for name in diff.changed.iter().filter(|n| !is_rolled(n)).chain(&diff.added) {
            self.add_program(name);
        }
        for name in pending_starts.iter().filter(|n| self.programs.contains_key(*n)) {
            self.scheduler.want_started(name);
        }
        // A program that runs a release with none installed yet has nothing to start.
        let programs = &self.config.programs;
        let starts: Vec<&String> = restart
            .iter()
            .chain(diff.added.iter().filter(|n| programs[n.as_str()].autostart))
            .filter(|n| !programs[n.as_str()].needs_release())
            .collect();
        for name in starts {
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
        let effects = self.observe.reconfigure(&self.config, &self.programs);
        self.apply(effects);
        let switched = match &reply {
            Replier::Switch(group) => Some((group.clone(), rolled.contains_key(group))),
            Replier::Reload(_) => None,
        };
        for (group, units) in rolled {
            if let Err(e) = self.start_roll(&group, units, None) {
                tracing::error!(program = %group, event = "rollout-failed", "cannot roll {group}: {e}");
                self.switch_rolled(&group, Err(e.to_string()));
            }
        }
        match reply {
            Replier::Reload(reply) => {
                tracing::info!(event = "reloaded", "reload applied");
                let _ = reply.send(Ok(diff));
            }
            Replier::Switch(_) => {}
        }
        if let Some((group, rolled)) = switched {
            self.switch_applied(&group, rolled);
        }
    }
}
