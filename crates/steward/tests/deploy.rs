//! End to end: deploying signed releases (Unix: each version's program is a shell script
//! around the test child, so one version can crash or never become ready). A release is
//! published into a folder (or served over HTTP by testkit's release server), signed with
//! keys made for the test; steward deploys it, gates it, and rolls back by itself.

use std::path::{Path, PathBuf};

use testkit::release::{self as rel, Keys, ManifestBuilder, Misbehave, ReleaseServer};

use crate::common::*;
use testkit::{describe, parse_events};

/// What a version's program does.
#[derive(Clone, Copy)]
enum Acts {
    /// Becomes ready (READY=1) and stays up.
    Good,
    /// Exits with 3 at once.
    Crashes,
    /// Runs but never says READY=1.
    NeverReady,
}

/// A folder of releases of `app`, signed with the test's keys.
struct Releases {
    dir: tempfile::TempDir,
    keys: Keys,
}

impl Releases {
    fn new() -> Releases {
        Releases { dir: tempfile::tempdir().unwrap(), keys: Keys::generate() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The archive of `version`: `bin/app`, a script that runs the test child.
    fn archive(&self, version: &str, acts: Acts) -> Vec<u8> {
        let child = testchild();
        let body = match acts {
            Acts::Good => format!("exec {} --notify-ready-after 50ms --sleep 1h", q(child.to_string_lossy())),
            Acts::Crashes => "exit 3".to_owned(),
            Acts::NeverReady => format!("exec {} --sleep 1h", q(child.to_string_lossy())),
        };
        let script = format!("#!/bin/sh\n# app {version}\n{body}\n");
        rel::archive_tar_gz(&[("bin/app", script.as_bytes(), 0o755), ("VERSION", version.as_bytes(), 0o644)])
    }

    /// Publishes `version` as the source's current release.
    fn publish(&self, version: &str, acts: Acts) {
        let archive = self.archive(version, acts);
        let name = format!("app-{version}.tar.gz");
        std::fs::write(self.path().join(&name), &archive).unwrap();
        let manifest = ManifestBuilder::new("app", version).artifact_here(&name, &archive).build();
        self.write_manifest(&manifest, &self.keys);
    }

    fn write_manifest(&self, manifest: &[u8], keys: &Keys) {
        std::fs::write(self.path().join("manifest.json"), manifest).unwrap();
        std::fs::write(self.path().join("manifest.json.minisig"), keys.sign(manifest, "app release"))
            .unwrap();
    }

    /// The config of `app` running releases from `source`.
    fn config(&self, source: &str, extra: &str) -> String {
        format!(
            r#"
[programs.app]
command = "%{{release}}/bin/app"
ready = "notify"
stop_timeout = "5s"
{extra}

[programs.app.release]
source = {source}
public_keys = [{key}]
healthy_for = "300ms"
ready_timeout = "3s"
keep = 2
"#,
            source = q(source),
            key = q(self.keys.public_base64()),
        )
    }
}

/// The reply of a deploy verb (`--json`), and its exit code.
fn deploy(s: &Steward, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["deploy", "app", "--json"];
    all.extend_from_slice(args);
    json_verb(s, &all)
}

fn json_verb(s: &Steward, args: &[&str]) -> (i32, serde_json::Value) {
    let out = s.cli(args);
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(
        |_| serde_json::json!({ "error": String::from_utf8_lossy(&out.stderr).to_string(), "stdout": text }),
    );
    (code, json)
}

/// The version `app` runs per the status, and its pid.
fn running(s: &Steward) -> (Option<String>, Option<u64>) {
    let p = s.program("app");
    (p["version"].as_str().map(str::to_owned), p["pid"].as_u64())
}

fn versions(s: &Steward) -> serde_json::Value {
    json_verb(s, &["versions", "app", "--json"]).1
}

fn deploy_events(s: &Steward) -> Vec<(String, String)> {
    s.api_events()
        .into_iter()
        .filter(|e| e["kind"] == "deploy")
        .map(|e| (e["to"].as_str().unwrap().to_owned(), e["version"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn state_dir(s: &Steward) -> PathBuf {
    s.dir().join("state")
}

fn release_dir(s: &Steward) -> PathBuf {
    state_dir(s).join("releases").join("app")
}

/// A steward running `config`, with its state in `<dir>/state`.
fn start_steward(config: &str) -> Steward {
    let config = format!("[supervisor]\nstate_dir = \"state\"\n{config}");
    let s = start(&config);
    s.wait_api();
    s
}

#[test]
fn a_release_deploys_proves_itself_and_a_failing_one_rolls_back_by_itself() {
    let r = Releases::new();
    let s = start_steward(&r.config(&r.path().display().to_string(), ""));
    // Nothing installed: the program waits, and says how to get a release.
    assert_eq!(running(&s).0, None);
    let out = s.cli(["start", "app"]);
    assert!(
        !out.status.success() && describe(&out).contains("steward deploy app --latest"),
        "{}",
        describe(&out)
    );

    r.publish("1.0.0", Acts::Good);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 0, "{reply:#}");
    assert_eq!(reply["running"], "1.0.0");
    let (version, pid) = running(&s);
    assert_eq!(version.as_deref(), Some("1.0.0"));
    assert!(pid_alive(pid.unwrap() as u32));
    assert!(release_dir(&s).join("1.0.0/bin/app").is_file());

    r.publish("1.1.0", Acts::Good);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 0, "{reply:#}");
    let (version, pid_11) = running(&s);
    assert_eq!(version.as_deref(), Some("1.1.0"));
    assert!(!pid_alive(pid.unwrap() as u32), "the old version's process still runs");

    // 1.2.0 crashes at start: the gate fails, steward goes back to 1.1.0 by itself.
    r.publish("1.2.0", Acts::Crashes);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1, "{reply:#}");
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["running"], "1.1.0");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("rolled back to 1.1.0") && message.contains("1.2.0 failed"), "{message}");
    let (version, pid_back) = running(&s);
    assert_eq!(version.as_deref(), Some("1.1.0"));
    assert_ne!(pid_back, pid_11, "1.1.0 runs again as a new process");
    let v = versions(&s);
    assert_eq!(v["current"], "1.1.0");
    assert_eq!(v["previous"], "1.0.0");
    assert_eq!(v["quarantined"], serde_json::json!(["1.2.0"]));
    let steps = deploy_events(&s);
    let wanted: Vec<(String, String)> = [
        ("started", "1.0.0"),
        ("deployed", "1.0.0"),
        ("started", "1.1.0"),
        ("deployed", "1.1.0"),
        ("started", "1.2.0"),
        ("failed", "1.2.0"),
        ("rolled-back", "1.1.0"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(steps, wanted);

    // By hand: back to 1.0.0 (the previous).
    let (code, reply) = json_verb(&s, &["rollback", "app", "--json"]);
    assert_eq!(code, 0, "{reply:#}");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
    let v = versions(&s);
    assert_eq!((v["current"].as_str(), v["previous"].as_str()), (Some("1.0.0"), Some("1.1.0")));
}

#[test]
fn a_version_that_never_becomes_ready_is_rolled_back() {
    let r = Releases::new();
    let s = start_steward(&r.config(&r.path().display().to_string(), ""));
    r.publish("1.0.0", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
    r.publish("2.0.0", Acts::NeverReady);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1, "{reply:#}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("not every process was ready within 3.0s"), "{message}");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
    // A quarantined version is not what `--latest` deploys by itself again... but by hand it
    // still can; and the floor is 1.0.0, so nothing else changed.
    assert_eq!(versions(&s)["floor"], "1.0.0");
}

/// A hostile release: what it is, how to publish it, what the refusal must say.
type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);

/// Every bad release is refused before anything changes: the old process keeps serving, no
/// folder of the bad version exists, and nothing was written outside the release folder.
#[test]
fn bad_releases_are_refused_and_the_old_version_keeps_serving() {
    let r = Releases::new();
    let server = ReleaseServer::serve(r.path());
    let s = start_steward(&r.config(&server.url("manifest.json"), ""));
    r.publish("1.0.0", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
    let (_, pid) = running(&s);

    let good = r.archive("2.0.0", Acts::Good);
    std::fs::write(r.path().join("app-2.0.0.tar.gz"), &good).unwrap();
    let manifest = |b: ManifestBuilder| b.build();
    let here = ManifestBuilder::new("app", "2.0.0").artifact_here("app-2.0.0.tar.gz", &good);
    let other_keys = Keys::generate();

    let cases: Vec<Case<'_>> = vec![
        (
            "a manifest changed after it was signed",
            Box::new(|| {
                r.write_manifest(&manifest(here.clone()), &r.keys);
                let mut bytes = std::fs::read(r.path().join("manifest.json")).unwrap();
                let at = bytes.windows(5).position(|w| w == b"2.0.0").unwrap();
                bytes[at] = b'3';
                std::fs::write(r.path().join("manifest.json"), bytes).unwrap();
            }),
            "signature",
        ),
        (
            "a key steward does not trust",
            Box::new(|| r.write_manifest(&manifest(here.clone()), &other_keys)),
            "not trusted",
        ),
        (
            "an expired manifest",
            Box::new(|| r.write_manifest(&manifest(here.clone().expires("2020-01-01T00:00:00Z")), &r.keys)),
            "expired",
        ),
        (
            "an older version",
            Box::new(|| {
                let old = ManifestBuilder::new("app", "0.9.0").artifact_here("app-2.0.0.tar.gz", &good);
                r.write_manifest(&manifest(old), &r.keys)
            }),
            "--allow-downgrade",
        ),
        (
            "a manifest for another OS",
            Box::new(|| {
                let other =
                    ManifestBuilder::new("app", "2.0.0").artifact("plan9-mips", "app-2.0.0.tar.gz", &good);
                r.write_manifest(&manifest(other), &r.keys)
            }),
            "plan9-mips",
        ),
        (
            "a truncated download",
            Box::new(|| {
                r.write_manifest(&manifest(here.clone()), &r.keys);
                server.set("app-2.0.0.tar.gz", Misbehave::TruncateAfter(100));
            }),
            "truncated",
        ),
        (
            "an archive that climbs out of its folder",
            Box::new(|| {
                server.clear("app-2.0.0.tar.gz");
                let evil = rel::tar_gz(&[
                    rel::Entry::File { path: "bin/app", data: b"#!/bin/sh\n", mode: 0o755 },
                    rel::Entry::File { path: "../../escaped", data: b"owned", mode: 0o644 },
                ]);
                std::fs::write(r.path().join("app-evil.tar.gz"), &evil).unwrap();
                let m = ManifestBuilder::new("app", "2.0.0").artifact_here("app-evil.tar.gz", &evil);
                r.write_manifest(&manifest(m), &r.keys);
            }),
            "..",
        ),
    ];
    for (what, arrange, says) in cases {
        arrange();
        let (code, reply) = deploy(&s, &["--latest"]);
        assert_eq!(code, 1, "{what}: {reply:#}");
        let text = reply.to_string();
        assert!(text.contains(says), "{what}: the error should say {says:?}: {text}");
        let (version, now) = running(&s);
        assert_eq!(version.as_deref(), Some("1.0.0"), "{what}");
        assert_eq!(now, pid, "{what}: the old process was touched");
        assert!(!release_dir(&s).join("2.0.0").exists(), "{what}: a folder of the refused version exists");
        let leftovers: Vec<_> = std::fs::read_dir(release_dir(&s))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{what}: leftovers {leftovers:?}");
    }
    for escaped in
        [state_dir(&s).join("releases/escaped"), state_dir(&s).join("escaped"), s.dir().join("escaped")]
    {
        assert!(!escaped.exists(), "{} was written", escaped.display());
    }
    let refused = deploy_events(&s).iter().filter(|(step, _)| step == "refused").count();
    assert_eq!(refused, 7, "{:#?}", deploy_events(&s));
}

#[test]
fn a_signed_archive_deploys_with_file_and_an_unsigned_one_does_not() {
    let r = Releases::new();
    // No source: only --file.
    let config = r.config("unused", "").replace("source = \"unused\"\n", "");
    let s = start_steward(&config);
    let archive = r.path().join("app-1.0.0.tar.gz");
    std::fs::write(&archive, r.archive("1.0.0", Acts::Good)).unwrap();
    let file = archive.display().to_string();

    let (code, reply) = deploy(&s, &["--file", &file]);
    assert_eq!(code, 1);
    assert!(reply.to_string().contains("minisig"), "{reply}");

    let sig = |comment: &str| {
        let data = std::fs::read(&archive).unwrap();
        std::fs::write(format!("{file}.minisig"), r.keys.sign(&data, comment)).unwrap();
    };
    sig("name=other version=1.0.0");
    let (code, reply) = deploy(&s, &["--file", &file]);
    assert_eq!(code, 1);
    assert!(reply.to_string().contains("\\\"other\\\""), "{reply}");

    sig("name=app version=1.0.0");
    let (code, reply) = deploy(&s, &["--file", &file]);
    assert_eq!(code, 0, "{reply:#}");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
    // Without a source, --latest says what to do.
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1);
    assert!(reply.to_string().contains("--file"), "{reply}");
}

#[test]
fn old_versions_beyond_keep_are_removed_but_never_the_running_or_previous_one() {
    let r = Releases::new();
    let s = start_steward(&r.config(&r.path().display().to_string(), ""));
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        r.publish(v, Acts::Good);
        assert_eq!(deploy(&s, &["--latest"]).0, 0, "{v}");
    }
    // keep = 2: the running one and the one before.
    assert_eq!(versions(&s)["installed"], serde_json::json!(["1.2.0", "1.3.0"]));
    assert!(!release_dir(&s).join("1.0.0").exists());
}

#[test]
fn a_deploy_of_several_instances_rolls_and_a_failure_takes_them_all_back() {
    let r = Releases::new();
    let s = start_steward(&r.config(&r.path().display().to_string(), "instances = 3"));
    r.publish("1.0.0", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
    r.publish("1.1.0", Acts::Good);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 0, "{reply:#}");
    let versions_now = |s: &Steward| -> Vec<String> {
        s.status()["programs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["version"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(versions_now(&s), ["1.1.0", "1.1.0", "1.1.0"]);
    let rollout: Vec<String> = s
        .api_events()
        .into_iter()
        .filter(|e| e["kind"] == "rollout")
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rollout.last().map(String::as_str), Some("complete"), "{rollout:?}");

    r.publish("1.2.0", Acts::Crashes);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1, "{reply:#}");
    assert_eq!(versions_now(&s), ["1.1.0", "1.1.0", "1.1.0"]);
    assert_eq!(s.status()["groups"][0]["running"], 3);

    // An instance added by `scale` runs the version the others run.
    s.cli_ok(["scale", "app", "4"]);
    assert_eq!(versions_now(&s), ["1.1.0", "1.1.0", "1.1.0", "1.1.0"]);
}

/// `steward deploy` in the background (the test kills steward under it).
struct Background(std::process::Child);

impl Background {
    fn deploy(s: &Steward) -> Background {
        let child = std::process::Command::new(STEWARD)
            .args(["deploy", "app", "--latest", "-c"])
            .arg(s.config_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Background(child)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kill -9` of steward in the middle of a deploy, at each step, then a new steward: exactly
/// one whole version runs (the last one that proved itself), and nothing half-done is left.
#[cfg(target_os = "linux")]
#[test]
fn kill_9_at_each_step_of_a_deploy_leaves_one_whole_version_running() {
    let r = Releases::new();
    let server = ReleaseServer::serve(r.path());
    let config =
        r.config(&server.url("manifest.json"), "").replace("healthy_for = \"300ms\"", "healthy_for = \"1h\"");
    // 1.0.0 proves itself with the short gate; then the gate becomes an hour long.
    let s = start_steward(&r.config(&server.url("manifest.json"), ""));
    r.publish("1.0.0", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
    std::fs::write(s.config_path(), format!("[supervisor]\nstate_dir = \"state\"\n{config}")).unwrap();
    s.cli_ok(["reload"]);

    let ends_on_1 = |again: &testkit::Daemon, what: &str| {
        again.wait_for_output("the API", |_| s.cli(["status"]).status.success(), DEADLINE);
        let (version, pid) = wait_until(DEADLINE, "app to run again", || {
            let (v, pid) = running(&s);
            (pid.is_some() && s.program("app")["state"] == "running").then_some((v, pid))
        });
        assert_eq!(version.as_deref(), Some("1.0.0"), "{what}: {}", again.dump());
        // The process was started from 1.0.0's folder (its environment says which).
        let environ = std::fs::read(format!("/proc/{}/environ", pid.unwrap())).unwrap_or_default();
        let dir = release_dir(&s).join("1.0.0");
        let wanted = format!("STEWARD_RELEASE_DIR={}", dir.display());
        assert!(
            environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()),
            "{what}: not started from {}",
            dir.display()
        );
        assert!(release_dir(&s).join("1.0.0/bin/app").is_file(), "{what}");
        let names: Vec<String> = std::fs::read_dir(release_dir(&s))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{what}: left half-done: {names:?}");
        let v = versions(&s);
        assert_eq!(v["current"], "1.0.0", "{what}");
    };

    // 1. During the download (the server sends the archive slowly).
    r.publish("2.0.0", Acts::Good);
    server.set("app-2.0.0.tar.gz", Misbehave::Slow(std::time::Duration::from_millis(200)));
    let bg = Background::deploy(&s);
    wait_until(DEADLINE, "the download to begin", || {
        std::fs::read_dir(release_dir(&s))
            .ok()?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(".download"))
            .then_some(())
    });
    s.daemon().signal(libc::SIGKILL);
    s.daemon().wait_exit(DEADLINE);
    drop(bg);
    let again = s.run_again();
    ends_on_1(&again, "killed while downloading");
    assert!(!release_dir(&s).join("2.0.0").exists());

    // 2. Killed while unpacking: a staging folder with part of 2.0.0 in it, as a killed
    // steward leaves it.
    again.signal(libc::SIGKILL);
    again.wait_exit(DEADLINE);
    let staging = release_dir(&s).join(".staging-2.0.0-4242-0/bin");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("app"), "#!/bin/sh\nexit 9\n").unwrap();
    let again = s.run_again();
    ends_on_1(&again, "killed while unpacking");

    // 3. During the gate: the new version runs, its hour of proving has begun.
    server.clear("app-2.0.0.tar.gz");
    let bg = Background::deploy(&s);
    wait_until(DEADLINE, "2.0.0 to run, in its gate", || {
        (running(&s).0.as_deref() == Some("2.0.0") && s.program("app")["state"] == "running").then_some(())
    });
    again.signal(libc::SIGKILL);
    again.wait_exit(DEADLINE);
    drop(bg);
    let again = s.run_again();
    ends_on_1(&again, "killed during the gate");
    let interrupted = parse_events(&again.stderr()).into_iter().any(|e| e.is("app", "deploy-interrupted"));
    assert!(interrupted, "{}", again.dump());
    // 2.0.0 is whole on disk (it was unpacked before the switch) and deployable again.
    assert!(release_dir(&s).join("2.0.0/bin/app").is_file());
}

/// `check_every`: steward looks at its source when it starts (and then that often), deploys
/// what is new through the same gate, and never retries a version that failed it.
#[test]
fn check_every_deploys_what_is_new_and_never_retries_a_quarantined_version() {
    let r = Releases::new();
    r.publish("1.0.0", Acts::Good);
    let config =
        r.config(&r.path().display().to_string(), "").replace("keep = 2", "keep = 2\ncheck_every = \"1h\"");
    let s = start_steward(&config);
    s.wait_for_api_event("1.0.0 deployed by itself", |e| e["kind"] == "deploy" && e["to"] == "deployed");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));

    // A crashing 1.1.0, seen at the next start: deployed, failed, rolled back, quarantined.
    r.publish("1.1.0", Acts::Crashes);
    s.shutdown();
    let again = s.run_again();
    wait_for_log_event(&again, "app", "deploy-rolled-back");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
    assert_eq!(versions(&s)["quarantined"], serde_json::json!(["1.1.0"]));

    // The next start looks again and leaves it alone.
    s.cli_ok(["shutdown"]);
    again.wait_exit(DEADLINE);
    let third = s.run_again();
    let check = wait_for_log_event(&third, "app", "auto-deploy");
    assert!(check.message.contains("quarantined"), "{check:?}");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
    let started = parse_events(&third.stderr()).into_iter().any(|e| e.is("app", "deploy-started"));
    assert!(!started, "{}", third.dump());
}

/// The first event `event` of `program` in `daemon`'s JSON log.
fn wait_for_log_event(daemon: &testkit::Daemon, program: &str, event: &str) -> testkit::LogEvent {
    wait_until(DEADLINE, event, || parse_events(&daemon.stderr()).into_iter().find(|e| e.is(program, event)))
}

/// A small tmpfs, unmounted on drop. Needs root (CI runs as root; `.ci/run` sets
/// `STEWARD_TEST_REQUIRE=tmpfs` so that a missing one fails instead of skipping).
#[cfg(target_os = "linux")]
struct Tmpfs(PathBuf);

#[cfg(target_os = "linux")]
impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        let required =
            std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "tmpfs"));
        if !out.status.success() {
            assert!(!required, "mounting a tmpfs is required (STEWARD_TEST_REQUIRE): {}", describe(&out));
            eprintln!("skipped: cannot mount a tmpfs here (needs root): {}", describe(&out));
            return None;
        }
        Some(Tmpfs(at.to_owned()))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A release that does not fit on the disk of the state dir: a clear error naming the folder,
/// nothing left behind, and the running version untouched.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_refuses_the_release_and_keeps_the_running_version() {
    let r = Releases::new();
    let root = tempfile::tempdir().unwrap();
    let Some(_disk) = Tmpfs::mount(&root.path().join("disk"), "4m") else { return };
    let config = r.config(&r.path().display().to_string(), "").replace(
        "[programs.app]",
        &format!(
            "[supervisor]\nstate_dir = {}\n\n[programs.app]",
            q(root.path().join("disk").display().to_string())
        ),
    );
    let s = start(&config);
    s.wait_api();
    r.publish("1.0.0", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
    let (_, pid) = running(&s);

    // 6 MB that do not compress, on a 4 MB disk.
    let mut noise = vec![0u8; 6 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let archive =
        rel::archive_tar_gz(&[("bin/app", b"#!/bin/sh\nexit 0\n", 0o755), ("data.bin", &noise, 0o644)]);
    std::fs::write(r.path().join("app-2.0.0.tar.gz"), &archive).unwrap();
    let manifest = ManifestBuilder::new("app", "2.0.0").artifact_here("app-2.0.0.tar.gz", &archive).build();
    r.write_manifest(&manifest, &r.keys);

    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1, "{reply:#}");
    let text = reply.to_string();
    assert!(text.contains("full"), "the error should say the disk is full: {text}");
    let (version, now) = running(&s);
    assert_eq!((version.as_deref(), now), (Some("1.0.0"), pid));
    let dir = root.path().join("disk/releases/app");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.') || n == "2.0.0"), "left behind: {names:?}");
    // And the disk has room again: a small release still deploys.
    r.publish("2.0.1", Acts::Good);
    assert_eq!(deploy(&s, &["--latest"]).0, 0);
}

/// A release server on https with a private CA: trusted through `ca_file`, and the whole deploy
/// (manifest, signature, archive) goes over TLS.
#[test]
fn a_release_server_with_a_private_ca_is_trusted_through_ca_file() {
    let r = Releases::new();
    // The server runs on a thread of its own for the test's life.
    let (tx, rx) = std::sync::mpsc::channel();
    let root = r.path().to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            tx.send(crate::releases::https_server(root).await).unwrap();
            std::future::pending::<()>().await
        })
    });
    let (port, pem) = rx.recv().unwrap();
    let ca = r.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let url = format!("https://127.0.0.1:{port}/manifest.json");
    let s = start_steward(&r.config(&url, ""));
    r.publish("1.0.0", Acts::Good);
    // Without the CA: the certificate is refused, nothing changes.
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 1, "{reply:#}");
    assert_eq!(running(&s).0, None);
    // With it (a reload: [release] changes restart nothing).
    let config = r
        .config(&url, "")
        .replace("keep = 2", &format!("keep = 2\nca_file = {}", q(ca.display().to_string())));
    std::fs::write(s.config_path(), format!("[supervisor]\nstate_dir = \"state\"\n{config}")).unwrap();
    s.cli_ok(["reload"]);
    let (code, reply) = deploy(&s, &["--latest"]);
    assert_eq!(code, 0, "{reply:#}");
    assert_eq!(running(&s).0.as_deref(), Some("1.0.0"));
}
