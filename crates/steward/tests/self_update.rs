//! `steward self-update` end to end, with real processes: a harness stands in for the
//! service manager (it runs `<exe> run -c CONFIG` again whenever it exits, a bounded number of
//! times), the "new release" is a shell wrapper that runs a copy of this steward with
//! `STEWARD_TEST_VERSION=1.1.0` (and, for the crash case, `STEWARD_TEST_CRASH_AT_START=1`),
//! signed and served as a real release. The daemon says the harness is its manager
//! (`STEWARD_TEST_SERVICE=harness`), so self-update restarts it with SIGTERM.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use testkit::release::{archive_tar_gz, Keys, ManifestBuilder, ReleaseServer};

use crate::common::{child_cmd, wait_until, STEWARD};

/// A generous bound for one restart (a debug steward stops its program, starts again).
const RESTART: Duration = Duration::from_secs(60);

/// One test's folder: the installed binary `bin/steward`, a second copy `real/steward` that
/// the new release's wrapper runs, the config, and the release folder `rel/`.
struct Setup {
    dir: testkit::tempfile::TempDir,
    keys: Keys,
}

impl Setup {
    fn new() -> Setup {
        let dir = testkit::tempfile::tempdir().unwrap();
        for sub in ["bin", "real", "rel"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        // Hard links where the file system allows (a debug steward is ~150 MB): the swap
        // only ever renames, so the build's own binary is never written.
        for copy in ["bin/steward", "real/steward"] {
            let to = dir.path().join(copy);
            if std::fs::hard_link(STEWARD, &to).is_err() {
                std::fs::copy(STEWARD, &to).unwrap();
            }
        }
        let config = format!("[programs.clock]\ncommand = {}\n", child_cmd(&["--sleep", "1h"]),);
        std::fs::write(dir.path().join("steward.toml"), config).unwrap();
        Setup { dir, keys: Keys::generate() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn exe(&self) -> PathBuf {
        self.path("bin/steward")
    }

    fn config(&self) -> PathBuf {
        self.path("steward.toml")
    }

    fn update_dir(&self) -> PathBuf {
        self.path(".steward/update")
    }

    /// The new release's binary: a wrapper running `real/steward` as `version`, with `extra`
    /// shell lines before (to fail `check`) and `env` added.
    fn wrapper(&self, version: &str, env: &str, extra: &str) -> Vec<u8> {
        let real = self.path("real/steward");
        format!("#!/bin/sh\n{extra}exec env STEWARD_TEST_VERSION={version} {env} {} \"$@\"\n", real.display())
            .into_bytes()
    }

    /// Publishes `binary` as steward `version` in `rel/`, signed by `signer`.
    fn publish(&self, version: &str, binary: &[u8], signer: &Keys) {
        let archive = archive_tar_gz(&[("bin/steward", binary, 0o755)]);
        let name = format!("steward-{version}.tar.gz");
        std::fs::write(self.path("rel").join(&name), &archive).unwrap();
        let manifest = ManifestBuilder::new("steward", version).artifact_here(&name, &archive).build();
        std::fs::write(self.path("rel/manifest.json"), &manifest).unwrap();
        std::fs::write(self.path("rel/manifest.json.minisig"), signer.sign(&manifest, "steward")).unwrap();
    }

    /// `steward self-update -c CONFIG --exe bin/steward --key KEY ARGS..` (this build's binary).
    fn self_update(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(STEWARD);
        cmd.arg("self-update").arg("-c").arg(self.config()).arg("--exe").arg(self.exe());
        cmd.args(["--key", &self.keys.public_base64()]);
        if !args.contains(&"--source") {
            cmd.arg("--source").arg(self.path("rel"));
        }
        cmd.args(args).envs(env.iter().copied()).stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// Which file `bin/steward` is: a swap or a restore (both renames) changes the inode; an
    /// in-place write changes the size or mtime.
    fn exe_id(&self) -> (u64, u64, i64, i64) {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(self.exe()).unwrap();
        (m.ino(), m.len(), m.mtime(), m.mtime_nsec())
    }

    /// Whether `bin/steward` holds the same bytes as `other`.
    fn exe_same_as(&self, other: &std::path::Path) -> bool {
        same_bytes(&self.exe(), other)
    }

    fn pending(&self) -> bool {
        self.update_dir().join("pending.json").exists()
    }

    /// `GET /v1/version` over the local socket: (version, pid), or None when nothing answers.
    fn version(&self) -> Option<(String, u32)> {
        let mut s = std::os::unix::net::UnixStream::connect(self.path(".steward/steward.sock")).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /v1/version HTTP/1.1\r\nhost: steward\r\nconnection: close\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        let body = reply.split_once("\r\n\r\n")?.1;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        Some((v["version"].as_str()?.to_owned(), u32::try_from(v["pid"].as_u64()?).ok()?))
    }
}

/// Whether two files hold the same bytes (compared in chunks: no hashing of 150 MB in a
/// debug build).
fn same_bytes(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (mut a, mut b) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return b.read(&mut y[..1]).unwrap() == 0;
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The service manager's stand-in: runs `exe run -c config` again each time it exits (up to
/// `MAX_STARTS`), all runs' stderr appended to one log; kills and reaps on Drop.
struct Harness {
    stop: Arc<AtomicBool>,
    /// The pid of the run now, 0 between runs.
    pid: Arc<AtomicU32>,
    starts: Arc<AtomicU32>,
    log: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

const MAX_STARTS: u32 = 8;

impl Harness {
    fn start(setup: &Setup) -> Harness {
        let (stop, pid, starts) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let log = setup.path("harness.log");
        let (exe, config, dir) = (setup.exe(), setup.config(), setup.dir.path().to_path_buf());
        let (t_stop, t_pid, t_starts, t_log) = (stop.clone(), pid.clone(), starts.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            while !t_stop.load(Ordering::SeqCst) && t_starts.load(Ordering::SeqCst) < MAX_STARTS {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&t_log).unwrap();
                let child = Command::new(&exe)
                    .arg("run")
                    .arg("-c")
                    .arg(&config)
                    .current_dir(&dir)
                    .env("STEWARD_TEST_SERVICE", "harness")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(file)
                    .spawn();
                let mut child = match child {
                    Ok(c) => c,
                    // ETXTBSY can't happen (the swap renames), but a missing binary would
                    // be a bug the test reports through its waits.
                    Err(e) => {
                        let _ = writeln!(
                            std::fs::OpenOptions::new().append(true).open(&t_log).unwrap(),
                            "harness: {e}"
                        );
                        return;
                    }
                };
                t_pid.store(child.id(), Ordering::SeqCst);
                t_starts.fetch_add(1, Ordering::SeqCst);
                let status = child.wait();
                t_pid.store(0, Ordering::SeqCst);
                let mut f = std::fs::OpenOptions::new().append(true).open(&t_log).unwrap();
                let _ = writeln!(f, "harness: run {} ended: {status:?}", t_starts.load(Ordering::SeqCst));
            }
        });
        Harness { stop, pid, starts, log, thread: Some(thread) }
    }

    fn starts(&self) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM to the run now (as a restart by the manager).
    fn terminate(&self) {
        let pid = self.pid.load(Ordering::SeqCst);
        assert_ne!(pid, 0, "no run to terminate");
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let pid = self.pid.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: kill has no memory preconditions; the thread reaps it.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until a steward answers with `version`, from a pid other than `not_pid`.
#[track_caller]
fn wait_answer(setup: &Setup, harness: &Harness, version: &str, not_pid: u32) -> u32 {
    testkit::wait_until_or_dump(
        RESTART,
        &format!("steward {version} to answer (not pid {not_pid})"),
        || harness.log(),
        || setup.version().filter(|(v, p)| v == version && *p != not_pid).map(|(_, p)| p),
    )
}

#[test]
fn self_update_swaps_restarts_and_confirms() {
    let setup = Setup::new();
    let release_dir = setup.path("rel");
    let server = ReleaseServer::serve(&release_dir);
    setup.publish("1.1.0", &setup.wrapper("1.1.0", "", ""), &setup.keys);
    let harness = Harness::start(&setup);
    let old_pid = wait_answer(&setup, &harness, "0.1.0", 0);

    let checked = setup.self_update(&["--check", "--source", &server.url("/manifest.json")], &[]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("steward 1.1.0 is available (running 0.1.0)"),
        "{}",
        text(&checked)
    );
    let before = setup.exe_id();
    let started = std::time::Instant::now();
    let out = setup.self_update(&["--source", &server.url("/manifest.json")], &[]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}\n{}", text(&out), harness.log());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("steward 1.1.0 is running"), "{said}");
    eprintln!("self-update with restart took {took:?}: {said}");

    let (version, pid) = setup.version().expect("the new steward answers");
    assert_eq!(version, "1.1.0");
    assert_ne!(pid, old_pid);
    assert_eq!(std::fs::read(setup.exe()).unwrap(), setup.wrapper("1.1.0", "", ""));
    assert_ne!(setup.exe_id(), before);
    let backup = setup.update_dir().join("backup/steward-0.1.0");
    assert!(same_bytes(&backup, &setup.path("real/steward")), "the backup is the old binary");
    testkit::wait_until_or_dump(
        RESTART,
        "pending.json to be removed (confirmed)",
        || harness.log(),
        || (!setup.pending()).then_some(()),
    );
    assert!(harness.log().contains("steward 1.1.0 confirmed"), "{}", harness.log());
    assert_eq!(harness.starts(), 2, "{}", harness.log());

    // The source's version now runs: nothing to do.
    let again = setup.self_update(&["--check"], &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("steward 1.1.0 is up to date"),
        "{}",
        text(&again)
    );
}

#[test]
fn self_update_gate0_refuses_a_binary_that_rejects_the_config() {
    let setup = Setup::new();
    let wrapper =
        setup.wrapper("1.1.0", "", "if [ \"$1\" = check ]; then echo 'error: no such key' >&2; exit 1; fi\n");
    setup.publish("1.1.0", &wrapper, &setup.keys);
    let before = setup.exe_id();
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the new steward rejects the config"), "{err}");
    assert!(err.contains("no such key"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(setup.exe_id(), before);
    assert!(!setup.pending());
    assert!(!setup.update_dir().join("backup").exists());

    // And one that says another version than the manifest.
    setup.publish("1.1.0", &setup.wrapper("1.2.0", "", ""), &setup.keys);
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the signed manifest says 1.1.0"),
        "{}",
        text(&out)
    );
    assert_eq!(setup.exe_id(), before);
}

#[test]
fn self_update_rolls_back_a_version_that_crashes_at_start() {
    let setup = Setup::new();
    setup.publish("1.1.0", &setup.wrapper("1.1.0", "STEWARD_TEST_CRASH_AT_START=1", ""), &setup.keys);
    let harness = Harness::start(&setup);
    wait_answer(&setup, &harness, "0.1.0", 0);

    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), harness.log());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("steward 1.1.0 failed to start and was rolled back"), "{err}\n{}", harness.log());

    // Two crashed starts, then a third that restores the old binary and execs it (the same
    // process: the manager counts no extra start).
    assert!(setup.exe_same_as(&setup.path("real/steward")), "the old binary is back");
    assert_eq!(setup.version().map(|(v, _)| v).as_deref(), Some("0.1.0"));
    let log = harness.log();
    assert_eq!(log.matches("crashing right after the boot counter").count(), 2, "{log}");
    assert!(log.contains("failed to start 2 times"), "{log}");
    assert!(log.contains("running the restored"), "{log}");
    assert_eq!(harness.starts(), 4, "{log}");
    assert!(!setup.pending());
    let quarantined = std::fs::read_to_string(setup.update_dir().join("quarantined.json")).unwrap();
    assert!(quarantined.contains("\"1.1.0\""), "{quarantined}");

    // It is not offered again without --reinstall.
    let again = setup.self_update(&["--check"], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--reinstall"), "{}", text(&again));
}

#[test]
fn self_update_refuses_bad_signatures_other_keys_and_older_versions() {
    let setup = Setup::new();
    let before = setup.exe_id();
    let binary = setup.wrapper("1.1.0", "", "");

    // One byte of the manifest changed after signing.
    setup.publish("1.1.0", &binary, &setup.keys);
    let mut manifest = std::fs::read(setup.path("rel/manifest.json")).unwrap();
    let at = manifest.iter().position(|b| *b == b'1').unwrap();
    manifest[at] = b'2';
    std::fs::write(setup.path("rel/manifest.json"), manifest).unwrap();
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("signature"), "{}", text(&out));

    // Signed by a key that is not trusted.
    setup.publish("1.1.0", &binary, &Keys::generate());
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("public_keys"), "{}", text(&out));

    // Older than the running steward.
    setup.publish("0.0.9", &setup.wrapper("0.0.9", "", ""), &setup.keys);
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to downgrade"), "{}", text(&out));

    // For another program.
    let archive = archive_tar_gz(&[("bin/steward", &binary, 0o755)]);
    std::fs::write(setup.path("rel/a.tar.gz"), &archive).unwrap();
    let manifest = ManifestBuilder::new("api", "1.1.0").artifact_here("a.tar.gz", &archive).build();
    std::fs::write(setup.path("rel/manifest.json"), &manifest).unwrap();
    std::fs::write(setup.path("rel/manifest.json.minisig"), setup.keys.sign(&manifest, "api")).unwrap();
    let out = setup.self_update(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not `steward`"), "{}", text(&out));

    assert_eq!(setup.exe_id(), before);
    assert!(!setup.pending());
    assert!(!setup.update_dir().join("backup").exists());
}

#[test]
fn self_update_refuses_an_exe_in_a_folder_it_cannot_write() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root writes into any folder");
        return;
    }
    let setup = Setup::new();
    setup.publish("1.1.0", &setup.wrapper("1.1.0", "", ""), &setup.keys);
    std::fs::set_permissions(setup.path("bin"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = setup.self_update(&[], &[]);
    std::fs::set_permissions(setup.path("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("package manager"), "{}", text(&out));
}

/// A self-update killed after each step (STEWARD_TEST_STOP_AFTER stands for the kill -9):
/// the next daemon start runs the old or the new binary, never neither, and settles
/// pending.json.
#[test]
fn self_update_killed_between_steps_converges() {
    for (step, expect) in [("staged", "0.1.0"), ("recorded", "0.1.0"), ("swapped", "1.1.0")] {
        let setup = Setup::new();
        let new = setup.wrapper("1.1.0", "", "");
        setup.publish("1.1.0", &new, &setup.keys);
        let harness = Harness::start(&setup);
        let old_pid = wait_answer(&setup, &harness, "0.1.0", 0);
        let before = setup.exe_id();

        let out = setup.self_update(&[], &[("STEWARD_TEST_STOP_AFTER", step)]);
        assert_eq!(out.status.code(), Some(137), "{step}: {}", text(&out));
        assert_eq!(setup.pending(), step != "staged", "{step}: pending.json");

        // The daemon restarts (a reboot, a crash, the manager): it settles the record.
        harness.terminate();
        wait_answer(&setup, &harness, expect, old_pid);
        testkit::wait_until_or_dump(
            RESTART,
            &format!("{step}: pending.json settled"),
            || harness.log(),
            || (!setup.pending()).then_some(()),
        );
        match expect {
            "0.1.0" => assert_eq!(setup.exe_id(), before, "{step}: the old binary"),
            _ => assert_eq!(std::fs::read(setup.exe()).unwrap(), new, "{step}: the new binary"),
        }
        let dir_left: Vec<String> = std::fs::read_dir(setup.path("bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(dir_left, ["steward"], "{step}: nothing but the binary beside it");
    }
}

#[test]
fn self_update_no_restart_swaps_only_and_the_next_start_confirms() {
    let setup = Setup::new();
    setup.publish("1.1.0", &setup.wrapper("1.1.0", "", ""), &setup.keys);
    let harness = Harness::start(&setup);
    let old_pid = wait_answer(&setup, &harness, "0.1.0", 0);
    let out = setup.self_update(&["--no-restart"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--no-restart"), "{}", text(&out));
    assert_eq!(setup.version(), Some(("0.1.0".to_owned(), old_pid)), "still the old daemon");
    assert!(setup.pending());
    harness.terminate();
    wait_answer(&setup, &harness, "1.1.0", old_pid);
    wait_until(RESTART, "pending.json to be removed (confirmed)", || (!setup.pending()).then_some(()));
}

/// A `steward run` started by hand has no manager to restart it: self-update swaps and says so.
#[test]
fn self_update_of_a_foreground_steward_asks_for_a_restart() {
    let setup = Setup::new();
    setup.publish("1.1.0", &setup.wrapper("1.1.0", "", ""), &setup.keys);
    let daemon = testkit::Daemon::start(
        setup.exe(),
        ["run", "-c", &setup.config().display().to_string()],
        setup.dir.path(),
    );
    wait_until(RESTART, "the daemon to answer", || setup.version());
    let out = setup.self_update(&[], &[]);
    assert!(out.status.success(), "{}\n{}", text(&out), daemon.dump());
    assert!(String::from_utf8_lossy(&out.stdout).contains("restart it to run 1.1.0"), "{}", text(&out));
}
