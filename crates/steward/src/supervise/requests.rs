//! The supervisor loop's answers to control requests: status, actions (start, stop,
//! restart), the event history, logs. Each is answered at once; waiting for a state happens
//! on the caller's side ([`super::control::wait_for`]).

use std::collections::BTreeMap;

use steward_core::fsm;

use super::control::{self, ControlError, Target, Verb};
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
            Shutdown(reply) => {
                let _ = reply.send(());
                if !self.shutting_down {
                    self.begin_shutdown();
                }
            }
            Events(reply) => {
                let _ = reply.send((self.history.iter().cloned().collect(), self.events.subscribe()));
            }
            // Only a handle: the caller reads the files, off this thread.
            Logs { name, stderr, reply } => {
                let result = match super::resolve(self.programs.keys(), &name) {
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

    fn action(&mut self, verb: Verb, names: Vec<String>, all: bool) -> Result<Vec<Target>, ControlError> {
        if self.shutting_down {
            return Err(ControlError::ShuttingDown);
        }
        if self.reload.is_some() {
            return Err(ControlError::ReloadInProgress);
        }
        let names: Vec<String> = if all {
            self.programs.keys().cloned().collect()
        } else if names.is_empty() {
            return Err(ControlError::NothingNamed);
        } else {
            let mut units = Vec::new();
            for name in &names {
                match super::resolve(self.programs.keys(), name) {
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
        let targets = names
            .iter()
            .map(|n| {
                let p = &self.programs[n];
                // "Unchanged" as of now, before the command is sent: any later change,
                // however fast, counts as the program having moved.
                let mut status = p.watch();
                status.mark_unchanged();
                Target {
                    name: n.clone(),
                    status,
                    pid_before: p.status().pid,
                    stop_timeout: p.spec.stop_timeout,
                }
            })
            .collect();
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
        Ok(targets)
    }
}
