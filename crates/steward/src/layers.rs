//! The floors of the house, bottom up, and a test that keeps imports pointing down.
//!
//! Each top-level module of this crate sits on one floor and may use (`crate::x`) only
//! modules on floors below its own, so the import picture has no circle. A module that needs
//! something from a floor above is a sign the seam is in the wrong place: pass a sink or a
//! trait object down instead (as `daemon` hands the service-manager status sink to
//! `supervise`). docs/architecture.md draws the same picture.

/// Bottom up. A new top-level module must be placed here, or the test fails.
const FLOORS: &[&[&str]] = &[
    // steward as PID 1, and the loader's leftovers: use nothing of the crate, run before
    // everything.
    &["init", "loader"],
    // Owner-only folders and files; what the TLS clients share.
    &["private", "tls"],
    // Leaves: they use nothing of the crate but `private`.
    &["protocol", "signals", "logs", "sockets", "releases"],
    &["process"],
    &["resources", "health"],
    &["alerts"],
    // Owns Control, the typed events and the snapshot; knows no HTTP, no service manager.
    &["supervise"],
    // Ships the log files (publishing its events through the control).
    &["ship"],
    // Encodes a snapshot (and the sinks' counters); deploys releases through the control.
    &["metrics", "deploy"],
    // HTTP (with the wire types of `protocol`), and the service managers with the status sink.
    &["api", "service"],
    // steward's own update: the swap, the restart, and the boot counter the daemon calls
    // (its confirmation is a status sink beside the service manager's).
    &["update"],
    // Composition: builds everything and hands the sinks down.
    &["daemon"],
    // Entry points.
    &["host"],
    &["cli"],
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// Every `crate::<module>` a source line names, outside comments: the first path segment
/// after `crate::`, or each one in `crate::{a, b::c}`.
fn crate_refs(line: &str) -> Vec<String> {
    let code = match line.trim_start().starts_with("//") {
        true => "",
        false => line.split(" //").next().unwrap_or(""),
    };
    let mut refs = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `other_crate::x` is not this crate.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            refs.extend(inner.split(',').filter_map(|p| first_segment(p.trim())));
        } else if let Some(name) = first_segment(rest) {
            refs.push(name);
        }
    }
    refs
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

#[test]
fn imports_point_down() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let mut problems = Vec::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(m) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            let m = m.trim_end_matches(';');
            if m != "layers" && floor(m).is_none() {
                problems.push(format!(
                    "src/lib.rs: module `{m}` has no floor; add it to FLOORS in src/layers.rs"
                ));
            }
        }
    }
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("read a folder entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel.components().next().expect("a path").as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if matches!(top, "lib" | "main" | "layers") {
            continue;
        }
        let Some(own) = floor(top) else { continue };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            for used in crate_refs(line) {
                let ok = used == top || floor(&used).is_some_and(|f| f < own);
                if !ok {
                    problems.push(format!(
                        "src/{}:{}: `{top}` uses `crate::{used}`, which is not on a floor below it: {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports must point down (floors in src/layers.rs, docs/architecture.md); pass a sink or a \
         trait object down instead of using a module above:\n{}",
        problems.join("\n")
    );
}

#[test]
fn references_are_found_where_they_are() {
    assert_eq!(crate_refs("use crate::api::types::{A, B};"), ["api"]);
    assert_eq!(crate_refs("    use crate::{daemon, service::status};"), ["daemon", "service"]);
    assert_eq!(
        crate_refs("let x = crate::metrics::render(&s) + crate::supervise::X;"),
        ["metrics", "supervise"]
    );
    assert!(crate_refs("//! see [`crate::metrics`]").is_empty());
    assert!(crate_refs("use steward_core::config; // not crate::api").is_empty());
    assert!(crate_refs("use steward_core::config::Config;").is_empty());
    assert!(crate_refs("use crate::{self as c};").is_empty());
}
