//! The generated config of a wrapped program (`steward wrap install`) against golden files
//! in `tests/golden/`, and parsed back by steward's own config parser.
//!
//! (steward's unit, plist and SCM settings are rendered by the `steward-service` library;
//! their golden files are in `crates/steward/tests/golden/`.)
//!
//! After a deliberate change to the renderer, rewrite the golden files with
//! `UPDATE_GOLDEN=1 cargo test -p steward-core --test integration render` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::FakeEnv;
use steward_core::config::{parse_str, Readiness, RestartPolicy, RotateEvery, StopSignal};
use steward_core::render::wrap::{config_toml, WrapSpec};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when UPDATE_GOLDEN=1.
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}\n(run with UPDATE_GOLDEN=1 to create it)", path.display())
    });
    // Git may check text files out with CRLF on Windows.
    let expected = expected.replace("\r\n", "\n");
    assert!(
        expected == actual,
        "{} differs from the rendered text (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn wrap_minimal() -> WrapSpec {
    WrapSpec {
        name: "api".into(),
        command: vec!["/usr/local/bin/api-server".into(), "--port".into(), "8080".into()],
        cwd: "/srv/api".into(),
        state_dir: "/var/lib/steward/wrap/api".into(),
        ..WrapSpec::default()
    }
}

fn wrap_full() -> WrapSpec {
    WrapSpec {
        name: "worker.v2".into(),
        command: vec![
            "/opt/worker/bin/run".into(),
            "--greeting=say \"hi\"".into(),
            "${NOT_INTERPOLATED}".into(),
            "$HOME".into(),
            "back\\slash".into(),
        ],
        cwd: "/srv/my worker".into(),
        state_dir: "/home/ann/.local/share/steward/wrap/worker.v2".into(),
        env: env(&[("QUEUE", "jobs"), ("DSN", "postgres://u:p@db/${x}")]),
        restart: Some(RestartPolicy::Always),
        restart_delay: Some(Duration::from_millis(500)),
        restart_max_delay: Some(Duration::from_secs(90)),
        max_restarts: Some(20),
        stop_signal: Some(StopSignal::Int),
        stop_timeout: Some(Duration::from_secs(30)),
        ready: Some(Readiness::Notify),
        log_max_size: Some(10_000_000),
        log_keep: Some(3),
        log_rotate_every: Some(RotateEvery::Daily),
        log_compress: true,
    }
}

#[test]
fn wrap_configs_match_the_golden_files() {
    golden("wrap-minimal.toml", &config_toml(&wrap_minimal()));
    golden("wrap-full.toml", &config_toml(&wrap_full()));
}

#[test]
fn a_wrap_config_parses_back_to_what_was_asked() {
    for spec in [wrap_minimal(), wrap_full()] {
        let text = config_toml(&spec);
        let origin = spec.state_dir.join("steward.toml");
        // Interpolation sees no variables at all: nothing in the file may need one.
        let config = parse_str(&text, &origin, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}\n{text}"));
        assert_eq!(config.supervisor.state_dir, spec.state_dir);
        assert_eq!(config.programs.len(), 1);
        let p = &config.programs[&spec.name];
        assert_eq!(p.command, spec.command);
        assert_eq!(p.cwd, spec.cwd);
        assert_eq!(p.env, spec.env);
        assert_eq!(p.restart, spec.restart.unwrap_or_default());
        assert_eq!(p.stop_signal, spec.stop_signal.unwrap_or_default());
        if let Some(d) = spec.stop_timeout {
            assert_eq!(p.stop_timeout, d);
        }
        if let Some(d) = spec.restart_delay {
            assert_eq!(p.restart_delay, d);
        }
        if let Some(d) = spec.restart_max_delay {
            assert_eq!(p.restart_max_delay, d);
        }
        if let Some(n) = spec.max_restarts {
            assert_eq!(p.max_restarts, n);
        }
        assert_eq!(p.ready, spec.ready.unwrap_or_default());
        if let Some(n) = spec.log_max_size {
            assert_eq!(p.log.max_size, n);
        }
        if let Some(n) = spec.log_keep {
            assert_eq!(p.log.keep, n);
        }
        assert_eq!(p.log.rotate_every, spec.log_rotate_every);
        assert_eq!(p.log.compress, spec.log_compress);
    }
}
