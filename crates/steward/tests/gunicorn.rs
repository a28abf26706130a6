//! End to end with a server no one here wrote: gunicorn (Debian's `gunicorn` package) takes
//! its listening socket from steward by systemd's socket activation, and is restarted under
//! load, one instance at a time, without a failed request.
//!
//! Skipped, saying so, when gunicorn is not installed; CI installs it and sets
//! `STEWARD_TEST_REQUIRE=gunicorn`, which makes a missing gunicorn a failure.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use testkit::load::{self, Mode, Target};

use crate::common::*;

/// The WSGI app: answers as the test server does, so the load client reads pid and revision.
const APP: &str = r#"
import os

def app(environ, start_response):
    body = ("pid=%d rev=%s" % (os.getpid(), os.environ.get("REV", "0"))).encode()
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Pid", str(os.getpid()))]
    start_response("200 OK", headers)
    return [body]
"#;

fn gunicorn() -> Option<&'static str> {
    let found =
        std::process::Command::new("gunicorn").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some("gunicorn");
    }
    let required = std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "gunicorn"));
    assert!(
        !required,
        "gunicorn is required (STEWARD_TEST_REQUIRE) but not installed: apt-get install gunicorn"
    );
    eprintln!("SKIPPED: gunicorn is not installed (apt-get install gunicorn)");
    None
}

fn config(dir: &std::path::Path, rev: &str) -> String {
    format!(
        r#"
[programs.web]
command = ["gunicorn", "--workers", "2", "--graceful-timeout", "10", "--pythonpath", {dir}, "app:app"]
instances = 2
env = {{ REV = "{rev}" }}
stop_timeout = "15s"

[programs.web.sockets.http]
listen = "127.0.0.1:0"

[programs.web.update]
# gunicorn does not send READY=1: a new master counts once it has been up this long, which
# gives it time to boot its workers (requests wait in the shared queue meanwhile anyway).
min_ready = "1500ms"
"#,
        dir = q(dir.to_string_lossy()),
    )
}

/// Every worker pid that answers within a short load.
fn pids_answering(addr: SocketAddr) -> BTreeSet<u32> {
    let report = {
        let load = load::start(load::Config::new(Target::Tcp(addr))).unwrap();
        testkit::wait_until(DEADLINE, "gunicorn to answer", || (load.snapshot().ok >= 200).then_some(()));
        load.stop()
    };
    assert_eq!(report.counts.failed(), 0, "{}", report.summary());
    report.pid_set()
}

#[test]
fn gunicorn_is_rolled_under_load_without_a_failed_request() {
    if gunicorn().is_none() {
        return;
    }
    let app_dir = testkit::tempfile::tempdir().unwrap();
    std::fs::write(app_dir.path().join("app.py"), APP).unwrap();
    let s = start(&config(app_dir.path(), "1"));
    s.wait_api();
    let st = testkit::wait_until_or_dump(
        DEADLINE,
        "two gunicorn masters",
        || s.daemon().dump(),
        || {
            let st = s.status();
            (st["groups"][0]["running"] == 2).then_some(st)
        },
    );
    let listen = st["groups"][0]["sockets"][0]["listen"].as_str().unwrap().to_owned();
    let addr: SocketAddr = listen.strip_prefix("tcp://").unwrap().parse().unwrap();
    let before = pids_answering(addr);

    let mut load_config = load::Config::new(Target::Tcp(addr));
    load_config.mode = Mode::Close;
    let load = load::start(load_config).unwrap();
    testkit::wait_until(DEADLINE, "load to flow", || (load.snapshot().ok >= 200).then_some(()));
    std::fs::write(s.config_path(), config(app_dir.path(), "2")).unwrap();
    s.cli_ok(["reload"]);
    s.wait_for_api_event("the roll to complete", |e| e["kind"] == "rollout" && e["to"] == "complete");
    let after = load.elapsed();
    let target = load.snapshot().ok + 500;
    testkit::wait_until(DEADLINE, "load after the roll", || (load.snapshot().ok >= target).then_some(()));
    let report = load.stop();

    assert_eq!(report.counts.failed(), 0, "{}", report.summary());
    let late: Vec<_> = report.sent_after(after).collect();
    assert!(!late.is_empty(), "{}", report.summary());
    for r in late {
        assert_eq!(r.rev, "2", "an old worker answered after the roll: {}", report.summary());
        assert!(!before.contains(&r.pid), "old worker {} answered after the roll", r.pid);
    }
}
