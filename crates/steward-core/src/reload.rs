//! What a hot reload must do: the difference between the running config and a new one.
//!
//! A program is "changed" when anything in its definition differs (command, env, env_file
//! contents, restart or log settings...): definitions compare as values, so no field can be
//! forgotten. Unchanged programs are never touched.

use std::collections::BTreeMap;

use crate::config::Config;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Sections whose changes only take effect when steward restarts.
    pub needs_restart: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.needs_restart.is_empty()
    }
}

pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    for (name, spec) in &new.programs {
        match old.programs.get(name) {
            None => d.added.push(name.clone()),
            Some(o) if o != spec => d.changed.push(name.clone()),
            Some(_) => d.unchanged.push(name.clone()),
        }
    }
    d.removed = old.programs.keys().filter(|n| !new.programs.contains_key(*n)).cloned().collect();
    // A program's sockets are the group's, not each process's: when they change, every
    // process of the program must move to the new ones. Its count alone (`instances`)
    // changes nothing in the processes that stay.
    let sockets = |c: &'_ Config, g: &str| c.groups.get(g).map(|g| g.sockets.clone()).unwrap_or_default();
    let moved: Vec<String> = d
        .unchanged
        .iter()
        .filter(|n| {
            let group = crate::config::group_of(n);
            sockets(old, group) != sockets(new, group)
        })
        .cloned()
        .collect();
    d.unchanged.retain(|n| !moved.contains(n));
    d.changed.extend(moved);
    d.changed.sort();
    if old.supervisor != new.supervisor {
        d.needs_restart.push("[supervisor]".into());
    }
    if old.api != new.api {
        d.needs_restart.push("[api]".into());
    }
    // The metrics listener is bound at start. Alert rules need nothing here: the supervisor
    // applies them live with every reload.
    if old.metrics != new.metrics {
        d.needs_restart.push("[metrics]".into());
    }
    // Its listener too is bound at start (its sign-ins follow `[api]`'s tokens live).
    if old.dashboard != new.dashboard {
        d.needs_restart.push("[dashboard]".into());
    }
    // The sinks are set up at start (the programs a reload adds are shipped at once by the
    // sinks there are). Nothing is lost meanwhile: the next start reads on from the cursors.
    if old.ship != new.ship {
        d.needs_restart.push("[[ship]]".into());
    }
    d
}

/// `deps` restricted to the programs in `names`: the graph a partial stop follows, so that
/// it orders the programs it stops without waiting on programs it leaves running.
pub fn subgraph(deps: &BTreeMap<String, Vec<String>>, names: &[String]) -> BTreeMap<String, Vec<String>> {
    names
        .iter()
        .map(|n| {
            let ds = deps.get(n).map(|ds| ds.iter().filter(|d| names.contains(d)).cloned().collect());
            (n.clone(), ds.unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::{parse_str, EmptyEnv as NoEnv};
    use std::path::Path;

    fn cfg(src: &str) -> Config {
        parse_str(src, Path::new("/etc/steward/steward.toml"), &NoEnv).unwrap()
    }

    #[test]
    fn classifies_every_program() {
        let old = cfg(r#"
            [programs.keep]
            command = "sleep 1"
            [programs.edit]
            command = "sleep 1"
            [programs.gone]
            command = "sleep 1"
        "#);
        let new = cfg(r#"
            [programs.keep]
            command = "sleep 1"
            [programs.edit]
            command = "sleep 1"
            env = { A = "b" }
            [programs.fresh]
            command = "sleep 1"
        "#);
        let d = diff(&old, &new);
        assert_eq!(d.added, ["fresh"]);
        assert_eq!(d.removed, ["gone"]);
        assert_eq!(d.changed, ["edit"]);
        assert_eq!(d.unchanged, ["keep"]);
        assert!(d.needs_restart.is_empty());
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn log_settings_count_as_a_change() {
        let old = cfg("[programs.a]\ncommand = \"x\"\n");
        let new = cfg("[programs.a]\ncommand = \"x\"\n[programs.a.log]\nkeep = 3\n");
        assert_eq!(diff(&old, &new).changed, ["a"]);
    }

    #[test]
    fn api_changes_need_a_restart() {
        let token = |role: &str| {
            format!(
                "[programs.a]\ncommand = \"x\"\n[api]\nlisten = \"127.0.0.1:8443\"\n\
                 [[api.tokens]]\nname = \"ci\"\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n",
                "ab".repeat(32)
            )
        };
        let plain = cfg("[programs.a]\ncommand = \"x\"\n");
        let d = diff(&plain, &cfg(&token("viewer")));
        assert_eq!(d.needs_restart, ["[api]"]);
        assert_eq!(d.unchanged, ["a"]);
        assert_eq!(diff(&cfg(&token("viewer")), &cfg(&token("admin"))).needs_restart, ["[api]"]);
        let a = "[programs.a]\ncommand = \"x\"\n";
        let sink = format!("{a}[[ship]]\nkind = \"loki\"\nurl = \"http://127.0.0.1:3100\"\n");
        assert_eq!(diff(&cfg(a), &cfg(&sink)).needs_restart, ["[[ship]]"]);
        assert!(diff(&cfg(&sink), &cfg(&sink)).needs_restart.is_empty());
        let more = format!("{sink}[programs.b]\ncommand = \"y\"\n");
        assert!(
            diff(&cfg(&sink), &cfg(&more)).needs_restart.is_empty(),
            "b is shipped by the sinks there are"
        );
        assert!(diff(&cfg(&token("admin")), &cfg(&token("admin"))).is_empty());
    }

    #[test]
    fn subgraph_keeps_only_inner_edges() {
        let deps: BTreeMap<String, Vec<String>> = [
            ("a".to_string(), vec!["b".to_string(), "c".to_string()]),
            ("b".to_string(), vec!["c".to_string()]),
            ("c".to_string(), vec![]),
        ]
        .into();
        let sub = subgraph(&deps, &["a".to_string(), "c".to_string()]);
        assert_eq!(sub["a"], ["c"]);
        assert_eq!(sub["c"], Vec::<String>::new());
        assert_eq!(sub.len(), 2);
    }
}
