//! Programs with `instances`: scaling one up or down touches only the difference. New
//! instances get the next numbers, scaling down removes the highest ones, so the numbers stay
//! dense and the instances that stay keep their processes.

use steward_core::config::{self, defaults, instance_name};
use steward_core::schedule::Scheduler;

use super::control::{ControlError, Target, Verb};
use super::snapshot::GroupSnapshot;
use super::{deps_of, Supervisor};

/// `steward scale web 6 | +2 | -1`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleTo {
    Exactly(u32),
    By(i64),
}

/// What a scale did: the count before and after, and the processes it started or stopped,
/// to wait on.
pub struct Scaled {
    pub from: u32,
    pub to: u32,
    pub targets: Vec<(Verb, Target)>,
}

impl Supervisor {
    pub(super) fn group_snapshots(&self) -> Vec<GroupSnapshot> {
        self.config
            .groups
            .values()
            .map(|g| GroupSnapshot {
                name: g.name.clone(),
                instances: g.instances,
                sockets: self.sockets.addresses(&g.name),
                rollout: self.roll_status(&g.name),
            })
            .collect()
    }

    pub(super) fn scale(&mut self, program: &str, to: ScaleTo) -> Result<Scaled, ControlError> {
        if self.shutting_down {
            return Err(ControlError::ShuttingDown);
        }
        if self.reload.is_some() {
            return Err(ControlError::ReloadInProgress);
        }
        let Some(from) = self.config.groups.get(program).and_then(|g| g.instances) else {
            return Err(if self.config.programs.contains_key(program) {
                ControlError::BadRequest(format!(
                    "`{program}` has no `instances`; add `instances = 1` to [programs.{program}] and reload, then scale it"
                ))
            } else {
                ControlError::UnknownProgram(program.to_owned())
            });
        };
        self.refuse_if_rolling(program)?;
        self.refuse_if_switching(program)?;
        let target = match to {
            ScaleTo::Exactly(n) => i64::from(n),
            ScaleTo::By(d) => i64::from(from) + d,
        };
        let max = defaults::MAX_INSTANCES;
        let to = match u32::try_from(target) {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ControlError::BadRequest(format!(
                    "{program} would have {target} instances; it can have 1 to {max} (`steward stop {program}` stops them all)"
                )))
            }
        };
        let targets =
            if to > from { self.scale_up(program, from, to)? } else { self.scale_down(program, from, to) };
        if let Some(g) = self.config.groups.get_mut(program) {
            g.instances = Some(to);
        }
        self.rebuild_scheduler();
        self.dispatch();
        tracing::info!(program, event = "scaled", from, to, "scaled {program} from {from} to {to} instances");
        Ok(Scaled { from, to, targets })
    }

    /// Adds instances `from..to`, parsed from the config's text like the others, and starts
    /// them if the program runs.
    fn scale_up(&mut self, program: &str, from: u32, to: u32) -> Result<Vec<(Verb, Target)>, ControlError> {
        let scaled = config::scaled(&self.config, program, to, &crate::process::host_env())
            .map_err(|d| ControlError::InvalidConfig(d.located().to_string()))?;
        let running =
            (0..from).any(|i| self.states.get(&instance_name(program, i)).is_some_and(|s| !s.is_down()));
        let mut targets = Vec::new();
        for i in from..to {
            let name = instance_name(program, i);
            let Some(spec) = scaled.programs.get(&name) else {
                return Err(ControlError::Other(format!("the scaled config has no {name}")));
            };
            // A program that runs a release: the new instance runs the same version.
            let resolved = match self.releases.get(program) {
                Some(r) if spec.needs_release() => {
                    self.templates.insert(name.clone(), (**spec).clone());
                    std::sync::Arc::new(spec.with_release(&r.dir, &r.version))
                }
                _ if spec.needs_release() => {
                    self.templates.insert(name.clone(), (**spec).clone());
                    spec.clone()
                }
                _ => spec.clone(),
            };
            self.config.programs.insert(name.clone(), resolved);
            self.add_program(&name);
            if running {
                targets.push((Verb::Start, self.target(&name)));
                self.scheduler.want_started(&name);
            }
        }
        Ok(targets)
    }

    /// Removes the highest instances, `to..from`: each stops gracefully and its task ends.
    fn scale_down(&mut self, program: &str, from: u32, to: u32) -> Vec<(Verb, Target)> {
        let mut targets = Vec::new();
        for i in to..from {
            let name = instance_name(program, i);
            self.scheduler.cancel(&name);
            if let Some(handle) = self.programs.remove(&name) {
                let mut target = Target {
                    name: name.clone(),
                    status: handle.watch(),
                    pid_before: handle.status().pid,
                    stop_timeout: handle.spec.stop_timeout,
                };
                target.status.mark_unchanged();
                targets.push((Verb::Stop, target));
                // Dropping the commands stops the process; `finish` waits for its logs.
                self.retired.push(tokio::spawn(handle.finish()));
            }
            self.config.programs.remove(&name);
            self.templates.remove(&name);
            let effects = self.observe.forget(&name);
            self.apply(effects);
            self.states.remove(&name);
        }
        targets
    }

    /// A new scheduler for the programs there are now, keeping the starts it had pending.
    pub(super) fn rebuild_scheduler(&mut self) {
        let pending: Vec<String> = self.scheduler.pending_starts().cloned().collect();
        self.scheduler = Scheduler::new(deps_of(&self.config));
        for name in pending.iter().filter(|n| self.programs.contains_key(*n)) {
            self.scheduler.want_started(name);
        }
    }

    /// What a caller waits on for `name`, as of now.
    pub(super) fn target(&self, name: &str) -> Target {
        let p = &self.programs[name];
        let mut status = p.watch();
        status.mark_unchanged();
        Target {
            name: name.to_owned(),
            status,
            pid_before: p.status().pid,
            stop_timeout: p.spec.stop_timeout,
        }
    }
}
