//! Log shipping end to end: a real steward ships its programs' files to testkit's fake
//! receivers (which decode with the real schemas and apply Loki's, Elasticsearch's and the
//! OTLP collector's rules) and to a real rsyslog.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::receiver::{Endpoint, Fault, Receiver, State, Times};

use crate::common::*;

/// The lines the test child writes with `--write-lines N` (default length 64), without `\n`.
fn expected(n: u64) -> Vec<String> {
    (1..=n).map(|i| String::from_utf8(testkit::lines::line(i, 64)).unwrap().trim_end().to_owned()).collect()
}

/// The Loki lines of `program`'s `stream`, in the order stored.
fn loki_lines(state: &State, program: &str, stream: &str) -> Vec<String> {
    state
        .loki
        .iter()
        .filter(|e| {
            e.labels.get("program").map(String::as_str) == Some(program) && e.labels["stream"] == stream
        })
        .map(|e| e.line.clone())
        .collect()
}

fn sink(kind: &str, receiver: &Receiver, extra: &str) -> String {
    let path = match kind {
        "loki" => "/loki/api/v1/push",
        "otlp" => "/v1/logs",
        _ => "/_bulk",
    };
    format!(
        "[[ship]]\nname = \"{kind}\"\nkind = \"{kind}\"\nurl = \"{}\"\nlinger = \"50ms\"\n{extra}\n",
        receiver.url(path)
    )
}

#[test]
fn loki_gets_every_line_in_order_with_its_labels_and_capture_time() {
    let loki = Receiver::start();
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nformat = \"cri\"\n{}",
        child_cmd(&["--write-lines", "3000", "--sleep", "1h"]),
        sink("loki", &loki, "labels = { env = \"test\" }\nmax_lines = 500"),
    );
    let s = start(&cfg);
    loki.wait_for("3000 lines in Loki", DEADLINE, |st| st.loki.len() >= 3000);
    let state = loki.state();
    assert_eq!(loki_lines(&state, "web", "stdout"), expected(3000), "every line once, in order");
    let first = &state.loki[0];
    assert_eq!(first.labels["env"], "test");
    assert!(!first.labels["host"].is_empty());
    assert!(!first.labels.contains_key("instance"));
    // The capture times are the file's: strictly increasing.
    let times: Vec<i128> = state.loki.iter().map(|e| e.ts_ns).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing capture times");
    let file = std::fs::read_to_string(s.log_dir().join("web.out.log")).unwrap();
    let first_time = file.split(' ').next().unwrap();
    let parsed = steward_core::ship::cri::parse_time(first_time.as_bytes()).unwrap();
    assert_eq!(times[0], i128::from(parsed), "the time stored is the time in the file");
    assert!(state.requests(Endpoint::Loki) >= 6, "batches of at most 500 lines");
}

#[test]
fn elasticsearch_and_otlp_get_every_line_with_ids_and_fields() {
    let es = Receiver::start();
    let otlp = Receiver::start();
    let cfg = format!(
        "[programs.api]\ncommand = {}\ninstances = 2\n{}{}",
        child_cmd(&["--write-lines", "500", "--stderr", "--sleep", "1h"]),
        sink("elasticsearch", &es, "index = \"logs-api-test\""),
        sink("otlp", &otlp, "encoding = \"json\""),
    );
    let _s = start(&cfg);
    es.wait_for("1000 documents", DEADLINE, |st| st.elastic.len() >= 1000);
    otlp.wait_for("1000 records", DEADLINE, |st| st.otlp.len() >= 1000);
    let es_state = es.state();
    for instance in ["0", "1"] {
        let lines: Vec<String> = es_state
            .elastic
            .iter()
            .filter(|d| d.source["service"]["instance"]["id"] == instance)
            .map(|d| d.source["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(lines, expected(500), "instance {instance}");
    }
    assert!(es_state.elastic.iter().all(|d| d.index == "logs-api-test" && d.id.len() == 32));
    assert_eq!(es_state.elastic[0].source["log"]["iostream"], "stderr");
    let o = otlp.state();
    assert_eq!(o.otlp.len(), 1000);
    let record = &o.otlp[0];
    assert_eq!(record.severity_text, "ERROR");
    assert_eq!(record.resource.get("service.name").and_then(|v| v.as_str()), Some("api"), "{record:?}");
    assert!(o.last_header(Endpoint::Otlp, "content-encoding").as_deref() == Some("gzip"));
}

#[test]
fn a_dead_sink_holds_up_no_other_and_catches_up_in_order() {
    let loki = Receiver::start();
    let es = Receiver::start();
    loki.inject_on(Endpoint::Loki, Fault::Status(503), Times::UntilCleared);
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nformat = \"cri\"\n{}{}",
        child_cmd(&["--write-lines", "2000", "--sleep", "1h"]),
        sink("loki", &loki, ""),
        sink("elasticsearch", &es, ""),
    );
    let s = start(&cfg);
    es.wait_for("2000 documents while Loki is down", DEADLINE, |st| st.elastic.len() >= 2000);
    // Loki answered 503 all along: down, said by an event and by `steward status`.
    s.wait_for_api_event("the Loki sink down", |e| e["kind"] == "ship" && e["to"] == "down");
    let status = s.cli_ok(["status"]);
    assert!(status.contains("loki") && status.contains("down"), "{status}");
    assert!(loki.state().loki.is_empty());
    loki.clear_faults();
    loki.wait_for("2000 lines in Loki once it is back", Duration::from_secs(90), |st| st.loki.len() >= 2000);
    assert_eq!(loki_lines(&loki.state(), "web", "stdout"), expected(2000));
    s.wait_for_api_event("the Loki sink up", |e| e["kind"] == "ship" && e["to"] == "up");
}

#[test]
fn after_kill_9_mid_batch_loki_and_elasticsearch_hold_each_line_once() {
    let loki = Receiver::start();
    let es = Receiver::start();
    // The first requests are stored but never answered: steward is killed while it waits.
    loki.inject_on(Endpoint::Loki, Fault::AnswerLost, Times::Next(1));
    es.inject_on(Endpoint::Elastic, Fault::AnswerLost, Times::Next(1));
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nformat = \"cri\"\n{}{}",
        child_cmd(&["--write-lines", "1500", "--sleep", "1h"]),
        sink("loki", &loki, "max_lines = 1000"),
        sink("elasticsearch", &es, "max_lines = 1000"),
    );
    let s = start(&cfg);
    loki.wait_for("a Loki batch stored, unanswered", DEADLINE, |st| st.loki.len() >= 1000);
    es.wait_for("an Elasticsearch batch stored, unanswered", DEADLINE, |st| st.elastic.len() >= 1000);
    s.daemon().kill();
    // The next steward ships what the first left, and starts no program that would write
    // more (the orphan of the first is swept).
    let cfg = cfg.replace("[programs.web]\n", "[programs.web]\nautostart = false\n");
    std::fs::write(s.config_path(), cfg).unwrap();
    let again = s.run_again();
    loki.wait_for("1500 lines in Loki", DEADLINE, |st| st.loki.len() >= 1500);
    es.wait_for("1500 documents", DEADLINE, |st| st.elastic.len() >= 1500);
    // The cursors never moved past the unanswered batch: it arrived twice, and the receivers
    // kept one copy.
    let l = loki.state();
    assert_eq!(loki_lines(&l, "web", "stdout"), expected(1500), "each line exactly once");
    assert_eq!(l.loki_duplicates, 1000, "the unanswered batch came again, and was dropped");
    let e = es.state();
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &e.elastic {
        *ids.entry(d.id.as_str()).or_default() += 1;
    }
    assert_eq!(e.elastic.len(), 1500);
    assert!(ids.values().all(|n| *n == 1));
    assert_eq!(e.elastic_conflicts, 1000, "the unanswered bulk came again: 409 for each");
    drop(again);
}
