//! The dependency graph between programs (`depends_on`).
//!
//! The graph is a map from a program to the programs it depends on. Both functions are
//! deterministic: whenever there is a choice, names are taken in sorted order, so start
//! order and error messages do not change from run to run.

use std::collections::{BTreeMap, BTreeSet};

/// Orders the programs so that every program comes after everything it depends on.
///
/// Among programs that are ready at the same time, the order is by name. A name that only
/// appears as a dependency is treated as a program without dependencies of its own.
///
/// `Err` carries one cycle as a path that starts and ends at the same program, beginning
/// with the smallest name in the cycle: `["a", "b", "a"]` means `a` depends on `b` and `b`
/// on `a`. A self-dependency is the cycle `["a", "a"]`.
pub fn topo_order(deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, Vec<String>> {
    // For each node, the dependencies it still waits for, and who waits for it.
    let mut waiting_on: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut waited_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, list) in deps {
        waiting_on.entry(name).or_default();
        for dep in list {
            waiting_on.entry(name).or_default().insert(dep);
            waiting_on.entry(dep).or_default();
            waited_by.entry(dep).or_default().insert(name);
        }
    }

    let mut ready: BTreeSet<&str> =
        waiting_on.iter().filter(|(_, w)| w.is_empty()).map(|(n, _)| *n).collect();
    let mut order = Vec::with_capacity(waiting_on.len());
    while let Some(next) = ready.pop_first() {
        order.push(next.to_owned());
        for dependent in waited_by.get(next).into_iter().flatten() {
            let left = waiting_on.get_mut(dependent).expect("every node has an entry");
            left.remove(next);
            if left.is_empty() {
                ready.insert(dependent);
            }
        }
    }

    if order.len() == waiting_on.len() {
        return Ok(order);
    }
    // Every node left still waits for at least one node that is also left, so following
    // "the smallest dependency still waited for" from any of them must come back around.
    let left: BTreeMap<&str, &BTreeSet<&str>> =
        waiting_on.iter().filter(|(_, w)| !w.is_empty()).map(|(n, w)| (*n, w)).collect();
    let start = *left.keys().next().expect("a stall leaves nodes behind");
    let mut path: Vec<&str> = vec![start];
    loop {
        let current = *path.last().expect("path is never empty");
        let next = *left[current].iter().next().expect("a node left waits for something");
        if let Some(pos) = path.iter().position(|n| *n == next) {
            let mut cycle: Vec<&str> = path[pos..].to_vec();
            // Start the cycle at its smallest name, for stable messages.
            let min_at = cycle.iter().enumerate().min_by_key(|(_, n)| **n).map_or(0, |(i, _)| i);
            cycle.rotate_left(min_at);
            let first = cycle[0];
            cycle.push(first);
            return Err(cycle.into_iter().map(str::to_owned).collect());
        }
        path.push(next);
    }
}

/// The programs that list `name` directly in their `depends_on`, sorted by name.
pub fn dependents(deps: &BTreeMap<String, Vec<String>>, name: &str) -> Vec<String> {
    deps.iter().filter(|(_, list)| list.iter().any(|d| d == name)).map(|(n, _)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges.iter().map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect())).collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_graph() {
        assert_eq!(topo_order(&BTreeMap::new()), Ok(vec![]));
    }

    #[test]
    fn independent_programs_come_by_name() {
        let g = graph(&[("web", &[]), ("api", &[]), ("db", &[])]);
        assert_eq!(topo_order(&g), Ok(names(&["api", "db", "web"])));
    }

    #[test]
    fn dependencies_come_first() {
        let g = graph(&[("web", &["api"]), ("api", &["db", "cache"]), ("db", &[]), ("cache", &[])]);
        assert_eq!(topo_order(&g), Ok(names(&["cache", "db", "api", "web"])));
    }

    #[test]
    fn ready_nodes_are_taken_by_name_as_they_become_ready() {
        // `b` becomes ready after `a`; `z` was ready from the start but sorts after `b`.
        let g = graph(&[("a", &[]), ("b", &["a"]), ("z", &[])]);
        assert_eq!(topo_order(&g), Ok(names(&["a", "b", "z"])));
    }

    #[test]
    fn diamond_and_duplicate_edges() {
        let g = graph(&[("top", &["l", "r", "l"]), ("l", &["base"]), ("r", &["base"]), ("base", &[])]);
        assert_eq!(topo_order(&g), Ok(names(&["base", "l", "r", "top"])));
    }

    #[test]
    fn names_only_used_as_dependencies_are_nodes() {
        let g = graph(&[("web", &["db"])]);
        assert_eq!(topo_order(&g), Ok(names(&["db", "web"])));
    }

    #[test]
    fn two_cycle() {
        let g = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(topo_order(&g), Err(names(&["a", "b", "a"])));
    }

    #[test]
    fn longer_cycle_starts_at_smallest_name() {
        let g = graph(&[("x", &["c"]), ("c", &["m"]), ("m", &["x"]), ("ok", &[])]);
        assert_eq!(topo_order(&g), Err(names(&["c", "m", "x", "c"])));
    }

    #[test]
    fn cycle_behind_a_node_that_is_not_in_it() {
        // `a` waits on the cycle but is not part of it.
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(topo_order(&g), Err(names(&["b", "c", "b"])));
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(topo_order(&g), Err(names(&["a", "a"])));
    }

    #[test]
    fn direct_dependents_only() {
        let g = graph(&[("web", &["api"]), ("worker", &["api", "db"]), ("api", &["db"]), ("db", &[])]);
        assert_eq!(dependents(&g, "api"), names(&["web", "worker"]));
        assert_eq!(dependents(&g, "db"), names(&["api", "worker"]));
        assert!(dependents(&g, "web").is_empty());
        assert!(dependents(&g, "nope").is_empty());
    }
}
