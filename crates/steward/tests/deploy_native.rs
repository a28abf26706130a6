//! Deploying a release whose program is a native executable, on every OS (on Windows under
//! Wine): a zip with the test child in it, unpacked into a folder per version and started from
//! there; a new version beside the one that runs, never over it; back by hand; old versions
//! removed once nothing runs them.

use testkit::release::{self as rel, Keys, ManifestBuilder};

use crate::common::*;

const EXE: &str = if cfg!(windows) { "child.exe" } else { "child" };

fn publish(dir: &std::path::Path, keys: &Keys, version: &str, child: &[u8]) {
    let exe = format!("bin/{EXE}");
    let archive = rel::archive_zip(&[(exe.as_str(), child, 0o755), ("VERSION", version.as_bytes(), 0o644)]);
    let name = format!("app-{version}.zip");
    std::fs::write(dir.join(&name), &archive).unwrap();
    let manifest = ManifestBuilder::new("app", version).artifact_here(&name, &archive).build();
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.join("manifest.json.minisig"), keys.sign(&manifest, "app")).unwrap();
}

fn version_and_pid(s: &Steward) -> (Option<String>, Option<u64>) {
    let p = s.program("app");
    (p["version"].as_str().map(str::to_owned), p["pid"].as_u64())
}

fn deploy(s: &Steward, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["deploy", "app", "--json"];
    all.extend_from_slice(args);
    let out = s.cli_ok(all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_native_release_runs_from_its_own_folder_and_switches_without_touching_the_running_file() {
    let releases = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let child = std::fs::read(testchild()).unwrap();
    let config = format!(
        r#"
[supervisor]
state_dir = "state"

[programs.app]
command = "%{{release}}/bin/{EXE} --sleep 1h"
stop_timeout = "5s"

[programs.app.release]
source = {source}
public_keys = [{key}]
healthy_for = "200ms"
keep = 2
"#,
        source = q(releases.path().display().to_string()),
        key = q(keys.public_base64()),
    );
    let s = start(&config);
    s.wait_api();
    let dir = s.dir().join("state").join("releases").join("app");

    publish(releases.path(), &keys, "1.0.0", &child);
    assert_eq!(deploy(&s, &["--latest"])["running"], "1.0.0");
    let (version, first) = version_and_pid(&s);
    assert_eq!(version.as_deref(), Some("1.0.0"));
    let exe_1 = dir.join("1.0.0").join("bin").join(EXE);
    let bytes_1 = std::fs::read(&exe_1).unwrap();
    assert_eq!(bytes_1, child, "the unpacked program is the archive's, byte for byte");

    publish(releases.path(), &keys, "2.0.0", &child);
    assert_eq!(deploy(&s, &["--latest"])["running"], "2.0.0");
    let (version, second) = version_and_pid(&s);
    assert_eq!(version.as_deref(), Some("2.0.0"));
    assert_ne!(first, second);
    wait_gone(first.unwrap() as u32, "1.0.0's process");
    // 1.0.0's folder is there, whole, for a rollback.
    assert_eq!(std::fs::read(&exe_1).unwrap(), bytes_1);

    let out = s.cli_ok(["rollback", "app"]);
    assert!(out.contains("rolled back from 2.0.0 to 1.0.0"), "{out}");
    assert_eq!(version_and_pid(&s).0.as_deref(), Some("1.0.0"));

    // A third version: keep = 2 keeps the one that runs (3.0.0) and the previous (1.0.0).
    publish(releases.path(), &keys, "3.0.0", &child);
    assert_eq!(deploy(&s, &["--latest"])["running"], "3.0.0");
    assert!(!dir.join("2.0.0").exists(), "2.0.0 is beyond keep");
    assert!(dir.join("1.0.0").join("bin").join(EXE).is_file());
}
