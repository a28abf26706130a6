//! The supervisor loop's answers to control requests: status, actions (start, stop,
//! restart), the event history, logs. Each is answered at once; waiting for a state happens
//! on the caller's side ([`super::control::wait_for`]).

use std::collections::{BTreeMap, BTreeSet};

use steward_core::config::group_of;
use tokio::sync::{broadcast, oneshot};

use steward_core::fsm;

use super::control::{self, Acted, ControlError, Verb};
use super::snapshot::Snapshot;
use super::Supervisor;

impl Supervisor {
    pub(super) fn on_request(&mut self, request: control::Request) {
        use control::Request::*;
        match request {
            Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Action { verb, names, all, reply } => {
                let _ = reply.send(self.action(verb, names, all));
            }
            Reload(reply) => self.begin_reload(reply),
            Scale { name, to, reply } => {
                let _ = reply.send(self.scale(&name, to));
            }
            Switch { program, to, reply } => {
                let _ = reply.send(self.begin_switch(&program, to));
            }
            ReleaseInfo { program, reply } => {
                let _ = reply.send(self.release_info(&program));
            }
            PublishShip { program, sink, step, message } => {
                self.push_event(super::Event::now(
                    program.into(),
                    super::EventKind::Ship { sink, step, message },
                ));
            }
            PublishDeploy { program, step, version, message } => {
                self.publish_deploy(&program, step, version, message);
            }
            Shutdown(reply) => {
                let _ = reply.send(());
                if !self.shutting_down {
                    self.begin_shutdown();
                }
            }
            Events(reply) => {
                let events = self.events.get_or_insert_with(|| broadcast::channel(1024).0);
                let _ = reply.send((self.history.iter().cloned().collect(), events.subscribe()));
            }
            // Only a handle: the caller reads the files, off this thread.
            Logs { name, stderr, reply } => {
                let result = match super::resolve(&self.programs, &name) {
                    None => Err(ControlError::UnknownProgram(name)),
                    Some(units) => Ok(units
                        .into_iter()
                        .map(|u| (u.clone(), self.programs[&u].log_reader(stderr)))
                        .collect()),
                };
                let _ = reply.send(result);
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut waiting: BTreeMap<String, Vec<String>> =
            self.scheduler.waiting(|n| self.view(n)).into_iter().collect();
        let mut snapshot =
            self.observe.snapshot(&self.programs, |name| waiting.remove(name).unwrap_or_default());
        snapshot.groups = self.group_snapshots();
        snapshot
    }

    fn action(&mut self, verb: Verb, names: Vec<String>, all: bool) -> Result<Acted, ControlError> {
        if self.shutting_down {
            return Err(ControlError::ShuttingDown);
        }
        if self.reload.is_some() {
            return Err(ControlError::ReloadInProgress);
        }
        let mut names: Vec<String> = if all {
            self.programs.keys().cloned().collect()
        } else if names.is_empty() {
            return Err(ControlError::NothingNamed);
        } else {
            let mut units = Vec::new();
            for name in &names {
                match super::resolve(&self.programs, name) {
                    Some(found) => {
                        for unit in found {
                            if !units.contains(&unit) {
                                units.push(unit);
                            }
                        }
                    }
                    None => return Err(ControlError::UnknownProgram(name.clone())),
                }
            }
            units
        };
        // A program whose release is not installed yet has nothing to run: `--all` passes it
        // by, naming it is an error.
        if verb != Verb::Stop && all {
            names.retain(|n| !self.programs[n.as_str()].spec.needs_release());
        } else if verb != Verb::Stop {
            if let Some(n) = names.iter().find(|n| self.programs[n.as_str()].spec.needs_release()) {
                return Err(ControlError::BadRequest(format!(
                    "{n} has no release installed yet; `steward deploy {} --latest` (or --file) installs one",
                    group_of(n)
                )));
            }
        }
        let groups: BTreeSet<String> = names.iter().map(|n| group_of(n).to_owned()).collect();
        let mut rolls = Vec::new();
        match verb {
            // A program mid-roll takes no other restart; stopping it ends the roll.
            Verb::Restart => {
                for group in &groups {
                    self.refuse_if_rolling(group)?;
                }
                let rolling: Vec<&String> = groups.iter().filter(|g| self.rolls_on_restart(g)).collect();
                for group in rolling {
                    let (units, rest): (Vec<String>, Vec<String>) =
                        names.into_iter().partition(|n| group_of(n) == group);
                    names = rest;
                    let specs = units.iter().map(|u| (u.clone(), (*self.programs[u].spec).clone())).collect();
                    let (tx, rx) = oneshot::channel();
                    self.start_roll(group, specs, Some(tx))?;
                    rolls.push(rx);
                }
            }
            Verb::Stop => {
                for group in &groups {
                    self.abort_rolls(Some(group), "the program was stopped");
                }
            }
            Verb::Start => {}
        }
        let targets = names.iter().map(|n| self.target(n)).collect();
        match verb {
            // Through the scheduler: what a program depends on starts first.
            Verb::Start => names.iter().for_each(|n| self.scheduler.want_started(n)),
            // All of them: in reverse dependency order. Some: at once, as asked.
            Verb::Stop if all => names.iter().for_each(|n| self.scheduler.want_stopped(n)),
            Verb::Stop | Verb::Restart => {
                let event = if verb == Verb::Stop { fsm::Event::Stop } else { fsm::Event::Restart };
                for n in &names {
                    self.scheduler.cancel(n);
                    self.programs[n].send(event.clone());
                }
            }
        }
        self.dispatch();
        Ok(Acted { targets, rolls })
    }
}
