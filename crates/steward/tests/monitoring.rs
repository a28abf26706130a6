//! The monitoring kit in docs/monitoring/: the alerting rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), and every metric the rules and the Grafana
//! dashboard use is one a live steward exposes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::http_server::get;

fn kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/monitoring")
}

/// The metric names in a PromQL text: words that start as steward's own metrics do.
fn metric_names(promql: &str) -> BTreeSet<String> {
    promql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("steward_") || word.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// The query of every panel target in the dashboard, each with its panel's title; checks the
/// panels' shape on the way.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(kit().join("grafana-dashboard.json")).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title").to_owned();
        assert!(ids.insert(panel["id"].as_u64().expect("a numeric id")), "duplicate panel id in {title}");
        let pos = &panel["gridPos"];
        let (x, w) = (pos["x"].as_u64().expect("gridPos.x"), pos["w"].as_u64().expect("gridPos.w"));
        assert!(x + w <= 24, "{title} is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title} has no targets"));
        assert!(!targets.is_empty(), "{title} has no targets");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("a target of {title} has no expr"));
            queries.push((title.clone(), expr.to_owned()));
        }
    }
    queries
}

/// `promtool ARGS` in the kit's folder; `None` when promtool is not installed (and not required).
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool").args(args).current_dir(kit()).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let required =
                std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "promtool"));
            assert!(!required, "promtool is required (STEWARD_TEST_REQUIRE) but not installed");
            eprintln!("SKIPPED promtool {args:?}: promtool is not installed (apt-get install prometheus)");
            None
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    }
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    for args in [["check", "rules", "steward-alerts.yml"], ["test", "rules", "steward-alerts.test.yml"]] {
        let Some(out) = promtool(&args) else { return };
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_the_kit_uses_is_exposed_by_a_live_steward() {
    // What the kit draws needs a program with a health check and max_memory, one that
    // failed, an alert firing, and a request to the API.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        r#"
[metrics]
listen = "127.0.0.1:0"

[programs.web]
command = {steady}
health = {{ tcp = "{addr}", interval = "100ms" }}
max_memory = "1GB"

[programs.crashy]
command = {crashy}
restart_delay = "10ms"
max_restarts = 1
restart_window = "1h"

[[alerts]]
name = "dead"
when = 'state == "fatal"'
command = {quiet}
"#,
        steady = child_cmd(&["--trap-term", "--sleep", "1h"]),
        crashy = child_cmd(&["--exit", "3"]),
        quiet = child_cmd(&["--exit", "0"]),
        addr = target.local_addr().unwrap(),
    );
    let s = start(&cfg);
    let addr = metrics_addr(&s);
    s.wait_for("crashy", "fatal");
    s.wait_for_event("web to be healthy", |e| e.is("web", "health") && e.to.as_deref() == Some("healthy"));
    s.wait_for_api_event("the alert to fire", |e| {
        e["kind"] == "alert" && e["program"] == "crashy" && e["to"] == "firing"
    });
    assert_eq!(crate::metrics::get_unix(&s.path(".steward/steward.sock"), "/v1/status").0, 200);
    let (status, scrape) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{scrape}");
    s.shutdown();

    // The names the scrape has: its families (`# TYPE`, even one with no series now, such as
    // alerts when none fires) and its series (counters with their `_total`).
    let exposed: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(family) => family.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .map(str::to_owned)
        .collect();
    assert!(exposed.contains("steward_program_memory_limit_bytes"), "{scrape}");

    let rules = std::fs::read_to_string(kit().join("steward-alerts.yml")).expect("the rules");
    let in_rules = metric_names(&rules);
    let queries = dashboard_queries();
    let in_dashboard: BTreeSet<String> = queries.iter().flat_map(|(_, q)| metric_names(q)).collect();
    for (what, names) in [("the alerting rules", &in_rules), ("the dashboard", &in_dashboard)] {
        let missing: Vec<_> = names.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{what} use metrics steward does not expose: {missing:?}\nscrape:\n{scrape}"
        );
    }
    // What the kit is for: states, restarts, memory and CPU per program, and health.
    for name in [
        "steward_program_state",
        "steward_program_restarts_total",
        "steward_program_memory_rss_bytes",
        "steward_program_cpu_seconds_total",
        "steward_program_health",
    ] {
        assert!(in_dashboard.contains(name), "the dashboard does not show {name}");
    }
    for name in
        ["steward_program_restarts_total", "steward_program_health", "steward_program_memory_limit_bytes"]
    {
        assert!(in_rules.contains(name), "no rule reads {name}");
    }
}
