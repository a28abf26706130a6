//! Start and stop ordering across programs: a dependent starts only once every program it
//! depends on is Running (which means ready), and at shutdown a program stops only once
//! every program that depends on it is down.
//!
//! Pure: the supervisor tells the scheduler what it wants and, after every state change,
//! asks it which orders are now due, passing a view of the current states. In that view,
//! Running means ready: the supervisor shows a program that runs but whose health check has
//! not passed yet as Starting, so its dependents keep waiting.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::fsm::State;

/// An order for one program, due now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    Start(String),
    Stop(String),
}

#[derive(Clone, Debug, Default)]
pub struct Scheduler {
    /// name -> the programs it depends on. Acyclic (the config validator made sure).
    deps: BTreeMap<String, Vec<String>>,
    /// name -> the programs that depend on it.
    dependents: HashMap<String, Vec<String>>,
    /// name -> its place in the start order (dependencies first), to emit orders in a
    /// stable order.
    rank: HashMap<String, usize>,
    /// Waiting to start once their dependencies run.
    to_start: BTreeSet<String>,
    /// Waiting to stop once their dependents are down.
    to_stop: BTreeSet<String>,
}

impl Scheduler {
    /// `deps` must be acyclic and name only known programs (as a validated config is).
    pub fn new(deps: BTreeMap<String, Vec<String>>) -> Self {
        // A cycle cannot get here; fall back to name order rather than panic if it did.
        let order: Vec<String> =
            crate::deps::topo_order(&deps).unwrap_or_else(|_| deps.keys().cloned().collect());
        let rank = order.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
        for (name, ds) in &deps {
            for d in ds {
                dependents.entry(d.clone()).or_default().push(name.clone());
            }
        }
        Scheduler { deps, dependents, rank, to_start: BTreeSet::new(), to_stop: BTreeSet::new() }
    }

    /// Ask for `name` to run, pulling in what it depends on, transitively.
    pub fn want_started(&mut self, name: &str) {
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            self.to_stop.remove(&n);
            if let Some(ds) = self.deps.get(&n) {
                stack.extend(ds.iter().filter(|d| !self.to_start.contains(*d)).cloned());
            }
            self.to_start.insert(n);
        }
    }

    /// Ask for `name` to stop once the programs that depend on it are down.
    pub fn want_stopped(&mut self, name: &str) {
        self.to_start.remove(name);
        self.to_stop.insert(name.to_string());
    }

    /// Drop any pending order for `name` (a direct command overrides the plan).
    pub fn cancel(&mut self, name: &str) {
        self.to_start.remove(name);
        self.to_stop.remove(name);
    }

    /// The names waiting to start.
    pub fn pending_starts(&self) -> impl Iterator<Item = &String> {
        self.to_start.iter()
    }

    /// Ask for everything to stop, in reverse dependency order.
    pub fn want_all_stopped(&mut self) {
        self.to_start.clear();
        self.to_stop.extend(self.deps.keys().cloned());
    }

    /// Nothing is waiting for its turn.
    pub fn is_idle(&self) -> bool {
        self.to_start.is_empty() && self.to_stop.is_empty()
    }

    /// Programs still waiting to start, with what they wait for (for status and logs).
    pub fn waiting(&self, state: impl Fn(&str) -> Option<State>) -> Vec<(String, Vec<String>)> {
        self.to_start
            .iter()
            .map(|n| {
                let blockers =
                    self.deps[n].iter().filter(|d| state(d) != Some(State::Running)).cloned().collect();
                (n.clone(), blockers)
            })
            .filter(|(_, b): &(String, Vec<String>)| !b.is_empty())
            .collect()
    }

    /// The orders due now, given each program's current state. The supervisor asks after
    /// every state change, so this costs only for the programs waiting, not all of them.
    pub fn due(&mut self, state: impl Fn(&str) -> Option<State>) -> Vec<Order> {
        let mut orders = Vec::new();
        for name in self.in_order(&self.to_start) {
            let deps_up =
                self.deps.get(&name).into_iter().flatten().all(|d| state(d) == Some(State::Running));
            if deps_up {
                self.to_start.remove(&name);
                if state(&name) != Some(State::Running) {
                    orders.push(Order::Start(name));
                }
            }
        }
        // Dependents stop first: a program is due once they are down and due no longer.
        // Looked at in reverse start order, so that a dependent already down is taken off
        // before what it depends on is looked at, in the same pass.
        let mut stops = Vec::new();
        for name in self.in_order(&self.to_stop).into_iter().rev() {
            let dependents_down = self.dependents.get(&name).into_iter().flatten().all(|dependent| {
                state(dependent).is_none_or(State::is_down) && !self.to_stop.contains(dependent)
            });
            if dependents_down {
                self.to_stop.remove(&name);
                stops.push(Order::Stop(name));
            }
        }
        // Sent in start order: a dependent due in the same pass as what it depends on is
        // down already, so their order does not matter to them, and oldest first the kernel
        // frees their cgroups cheaply. Newest first, stopping 5,000 programs made it walk a
        // list of the groups not yet freed for each one (docs/benchmarks.md section 17).
        orders.extend(stops.into_iter().rev());
        orders
    }

    /// `names` in start order (dependencies first).
    fn in_order(&self, names: &BTreeSet<String>) -> Vec<String> {
        // A name the graph does not know gets no order, as before.
        let mut sorted: Vec<(usize, &String)> =
            names.iter().filter_map(|n| Some((*self.rank.get(n)?, n))).collect();
        sorted.sort_unstable();
        sorted.into_iter().map(|(_, n)| n.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges.iter().map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect())).collect()
    }

    fn starts(orders: &[Order]) -> Vec<&str> {
        orders
            .iter()
            .map(|o| match o {
                Order::Start(n) | Order::Stop(n) => n.as_str(),
            })
            .collect()
    }

    #[test]
    fn starts_in_dependency_order_waiting_for_running() {
        // web -> api -> db, and worker -> db
        let g = graph(&[("db", &[]), ("api", &["db"]), ("web", &["api"]), ("worker", &["db"])]);
        let mut s = Scheduler::new(g);
        for n in ["web", "worker", "db", "api"] {
            s.want_started(n);
        }
        let mut states: HashMap<&str, State> = HashMap::new();
        let orders = s.due(|n| states.get(n).copied().or(Some(State::Stopped)));
        assert_eq!(starts(&orders), ["db"]);
        states.insert("db", State::Starting);
        assert!(s.due(|n| states.get(n).copied().or(Some(State::Stopped))).is_empty());
        states.insert("db", State::Running);
        let orders = s.due(|n| states.get(n).copied().or(Some(State::Stopped)));
        assert_eq!(starts(&orders), ["api", "worker"]);
        states.insert("api", State::Running);
        let orders = s.due(|n| states.get(n).copied().or(Some(State::Stopped)));
        assert_eq!(starts(&orders), ["web"]);
        assert!(s.is_idle());
    }

    #[test]
    fn starting_a_dependent_pulls_in_its_dependencies() {
        let g = graph(&[("db", &[]), ("api", &["db"]), ("web", &["api"])]);
        let mut s = Scheduler::new(g);
        s.want_started("web");
        let orders = s.due(|_| Some(State::Stopped));
        assert_eq!(starts(&orders), ["db"]);
    }

    #[test]
    fn stops_in_reverse_order() {
        let g = graph(&[("db", &[]), ("api", &["db"]), ("web", &["api"])]);
        let mut s = Scheduler::new(g);
        let mut states: HashMap<&str, State> =
            [("db", State::Running), ("api", State::Running), ("web", State::Running)].into();
        s.want_all_stopped();
        let orders = s.due(|n| states.get(n).copied());
        assert_eq!(orders, [Order::Stop("web".into())]);
        states.insert("web", State::Stopping);
        assert!(s.due(|n| states.get(n).copied()).is_empty());
        states.insert("web", State::Stopped);
        assert_eq!(s.due(|n| states.get(n).copied()), [Order::Stop("api".into())]);
        states.insert("api", State::Fatal);
        assert_eq!(s.due(|n| states.get(n).copied()), [Order::Stop("db".into())]);
        assert!(s.is_idle());
    }

    #[test]
    fn programs_due_to_stop_together_go_in_start_order() {
        let g = graph(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &["a"])]);
        let mut s = Scheduler::new(g);
        for n in ["d", "c", "b", "a"] {
            s.want_started(n);
        }
        let started = s.due(|_| Some(State::Stopped));
        assert_eq!(starts(&started), ["a", "b", "c"]);
        s.want_all_stopped();
        // d depends on a, so a waits for it; the rest go in the order they started.
        let orders = s.due(|_| Some(State::Running));
        assert_eq!(starts(&orders), ["b", "c", "d"]);
    }

    #[test]
    fn programs_already_down_are_all_due_at_once() {
        // What a shutdown after `stop --all` finds: nothing runs, and a dependent that is
        // down must not hold back what it depends on until a state change that never comes.
        let g = graph(&[("db", &[]), ("api", &["db"]), ("web", &["api"])]);
        let mut s = Scheduler::new(g);
        s.want_all_stopped();
        let orders = s.due(|_| Some(State::Stopped));
        assert_eq!(starts(&orders), ["db", "api", "web"]);
        assert!(s.is_idle());
    }

    #[test]
    fn waiting_names_the_blockers() {
        let g = graph(&[("db", &[]), ("api", &["db"])]);
        let mut s = Scheduler::new(g);
        s.want_started("api");
        s.due(|_| Some(State::Stopped));
        let w = s.waiting(|n| Some(if n == "db" { State::Fatal } else { State::Stopped }));
        assert_eq!(w, [("api".to_string(), vec!["db".to_string()])]);
    }
}
