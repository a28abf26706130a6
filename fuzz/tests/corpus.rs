//! Every input kept in `corpus/<target>/` (and every crash once found, kept in
//! `regressions/<target>/`) through its target's check, on stable Rust with no fuzzer: a
//! regression test of what fuzzing found and of the seeds (`cargo test
//! --no-default-features` in this folder; scripts/fuzz.sh --corpus-only).

use std::path::Path;

fn run(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else { continue };
        let mut paths: Vec<_> = entries.map(|e| e.expect("a readable folder").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("{target}: {}", path.display());
            check(&data);
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus for {target} in {}", root.join("corpus").join(target).display());
}

#[test]
fn config() {
    run("config", steward_fuzz::config::check);
}

#[test]
fn interp() {
    run("interp", steward_fuzz::interp::check);
}

#[test]
fn alert_when() {
    run("alert_when", steward_fuzz::alert_when::check);
}

#[test]
fn framer() {
    run("framer", steward_fuzz::framer::check);
}

#[test]
fn rotation() {
    run("rotation", steward_fuzz::rotation::check);
}

#[test]
fn api() {
    run("api", steward_fuzz::api::check);
}

#[test]
fn ship() {
    run("ship", steward_fuzz::ship::check);
}
