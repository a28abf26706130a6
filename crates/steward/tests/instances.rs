//! End to end: a program with `instances`: per-instance values, logs, status, metrics, and
//! scaling (by the CLI and by a reload) that touches only the difference.

use crate::common::*;

fn config(instances: u32) -> String {
    format!(
        r#"
[programs.web]
command = {cmd}
instances = {instances}
instance_env = "NODE_APP_INSTANCE"
env = {{ PORT = "%{{instance+8000}}" }}
"#,
        cmd = child_cmd(&[
            "--env",
            "STEWARD_INSTANCE",
            "--env",
            "NODE_APP_INSTANCE",
            "--env",
            "PORT",
            "--trap-term",
            "--print-ready",
            "--sleep",
            "1h"
        ]),
    )
}

/// pid of each instance, by name, from `status --json`.
fn pids(s: &Steward) -> std::collections::BTreeMap<String, u64> {
    let st = s.status();
    st["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["program"] == "web")
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["pid"].as_u64().unwrap_or(0)))
        .collect()
}

fn names(pids: &std::collections::BTreeMap<String, u64>) -> Vec<&str> {
    pids.keys().map(String::as_str).collect()
}

#[test]
fn instances_run_with_their_numbers_and_logs_of_their_own() {
    let s = start(&config(3));
    s.wait_api();
    for i in 0..3 {
        s.wait_for(&format!("web:{i}"), "started");
    }
    for i in 0..3 {
        let log = s.log_dir().join(format!("web.{i}.out.log"));
        // `env PORT` is the last line the child prints before it sleeps.
        let text = testkit::wait_until(DEADLINE, "the instance's last env line", || {
            std::fs::read_to_string(&log).ok().filter(|t| t.contains("env PORT=") && t.ends_with('\n'))
        });
        assert!(text.contains(&format!("env STEWARD_INSTANCE={i}\n")), "{text}");
        assert!(text.contains(&format!("env NODE_APP_INSTANCE={i}\n")), "{text}");
        assert!(text.contains(&format!("env PORT={}\n", 8000 + i)), "{text}");
    }

    let st = s.status();
    let group = &st["groups"][0];
    assert_eq!(group["name"], "web");
    assert_eq!(group["instances"], 3);
    assert_eq!((group["running"].as_u64(), group["total"].as_u64()), (Some(3), Some(3)), "{st}");
    let table = s.cli_ok(["status"]);
    assert!(table.lines().any(|l| l.starts_with("web ") && l.contains("running 3/3")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("web:2") && l.contains("running")), "{table}");
    // `status web` means the program and its instances; `status web:1` one of them.
    let one = s.cli_ok(["status", "web:1", "--json"]);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["programs"].as_array().unwrap().len(), 1);
    assert_eq!(one["programs"][0]["instance"], 1);

    // Merged logs: every line marked with its instance; one instance's log: unmarked.
    let merged = s.cli_ok(["logs", "web", "-n", "50"]);
    for i in 0..3 {
        assert!(merged.contains(&format!("[web:{i}] env STEWARD_INSTANCE={i}\n")), "{merged}");
    }
    let single = s.cli_ok(["logs", "web:2", "-n", "50"]);
    assert!(single.contains("env STEWARD_INSTANCE=2\n") && !single.contains("[web:"), "{single}");

    // A restart of one instance leaves the others alone.
    let before = pids(&s);
    s.cli_ok(["restart", "web:1"]);
    let after = pids(&s);
    assert_eq!(after["web:0"], before["web:0"]);
    assert_eq!(after["web:2"], before["web:2"]);
    assert_ne!(after["web:1"], before["web:1"]);
}

#[test]
fn scaling_touches_only_the_difference() {
    let s = start(&config(2));
    s.wait_api();
    s.wait_for("web:1", "started");
    let first = pids(&s);

    let out = s.cli_ok(["scale", "web", "+2"]);
    assert!(out.contains("web: 2 -> 4 instances"), "{out}");
    assert!(out.contains("web:3: running (pid"), "{out}");
    let up = pids(&s);
    assert_eq!(names(&up), ["web:0", "web:1", "web:2", "web:3"]);
    assert_eq!((up["web:0"], up["web:1"]), (first["web:0"], first["web:1"]), "survivors keep their pids");
    let log3 = s.log_dir().join("web.3.out.log");
    let text = testkit::wait_until(DEADLINE, "web:3's env line", || {
        std::fs::read_to_string(&log3).ok().filter(|t| t.contains("env PORT=") && t.ends_with('\n'))
    });
    assert!(text.contains("env PORT=8003\n"), "{text}");

    let out = s.cli_ok(["scale", "web", "1"]);
    assert!(out.contains("web:3: stopped") && out.contains("web:1: stopped"), "{out}");
    let down = pids(&s);
    assert_eq!(names(&down), ["web:0"]);
    assert_eq!(down["web:0"], first["web:0"]);
    for gone in ["web:1", "web:2", "web:3"] {
        assert!(!pid_alive(up[gone] as u32), "{gone} still runs");
    }

    // Mistakes are refused with a reason, and change nothing.
    let out = s.cli(["scale", "web", "-1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would have 0 instances"),
        "{}",
        testkit::describe(&out)
    );
    let out = s.cli(["scale", "nope", "2"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no program named"), "{}", testkit::describe(&out));
    assert_eq!(pids(&s)["web:0"], first["web:0"]);

    // A reload whose only change is `instances` scales the same way.
    std::fs::write(s.config_path(), config(3)).unwrap();
    let out = s.cli_ok(["reload"]);
    assert!(out.contains("web:1") && out.contains("web:2"), "{out}");
    let reloaded = pids(&s);
    assert_eq!(names(&reloaded), ["web:0", "web:1", "web:2"]);
    assert_eq!(reloaded["web:0"], first["web:0"], "the reload left web:0 alone");
}

/// Every OS: a restart of a running program with `instances` rolls, gated on "up for
/// min_ready" where there is no `ready = "notify"` (Windows).
#[test]
fn a_restart_rolls_with_ready_up_and_min_ready() {
    let config = format!(
        "[programs.web]\ncommand = {}\ninstances = 2\n[programs.web.update]\nmin_ready = \"300ms\"\n",
        child_cmd(&["--trap-term", "--sleep", "1h"])
    );
    let s = start(&config);
    s.wait_api();
    s.wait_for("web:1", "started");
    let before = pids(&s);
    s.cli_ok(["restart", "web"]);
    let after = pids(&s);
    for (name, old) in &before {
        assert_ne!(after[name], *old, "{name} was not replaced");
        assert!(!pid_alive(*old as u32), "the old process of {name} still runs");
    }
    let steps: Vec<String> = s
        .api_events()
        .into_iter()
        .filter(|e| e["kind"] == "rollout")
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["started", "replaced", "replaced", "complete"]);
}
