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
    let linger = if extra.contains("linger") { "" } else { "linger = \"50ms\"\n" };
    format!(
        "[[ship]]\nname = \"{kind}\"\nkind = \"{kind}\"\nurl = \"{}\"\n{linger}{extra}\n",
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

// rsyslog runs on Unix only (the syslog sink itself is the same code on Windows).
#[cfg(unix)]
#[test]
fn syslog_reaches_a_real_rsyslog_over_tcp_and_over_tls_with_a_client_certificate() {
    if !testkit::rsyslog::available() {
        return;
    }
    let rsyslog = testkit::rsyslog::Rsyslog::start_with_client_auth();
    let files = rsyslog.pki().write_to(rsyslog.dir());
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.worker]\ncommand = {}\ninstances = 2\n\
         [[ship]]\nname = \"plain\"\nkind = \"syslog\"\nurl = \"tcp://{}\"\nprograms = [\"web\"]\nlinger = \"50ms\"\n\
         [[ship]]\nname = \"tls\"\nkind = \"syslog\"\nurl = \"tls://{}\"\nprograms = [\"worker\"]\nlinger = \"50ms\"\n\
         ca_file = {}\nclient_cert = {}\nclient_key = {}\nlabels = {{ env = \"test\" }}\n",
        child_cmd(&["--write-lines", "200", "--sleep", "1h"]),
        child_cmd(&["--write-lines", "100", "--stderr", "--sleep", "1h"]),
        rsyslog.plain_addr(),
        rsyslog.tls_addr(),
        q(files.ca.display().to_string()),
        q(files.client_cert.display().to_string()),
        q(files.client_key.display().to_string()),
    );
    let _s = start(&cfg);
    let records = rsyslog.wait_for_records(400, DEADLINE);
    let of = |app: &str| records.iter().filter(|r| r.app_name == app).collect::<Vec<_>>();
    let web = of("web");
    assert_eq!(web.iter().map(|r| r.msg.clone()).collect::<Vec<_>>(), expected(200), "{}", rsyslog.dump());
    assert!(web.iter().all(|r| r.msgid == "stdout" && r.severity() == 6 && r.facility() == 1));
    let worker = of("worker");
    assert_eq!(worker.len(), 200, "two instances over TLS");
    assert!(worker.iter().all(|r| r.msgid == "stderr" && r.severity() == 3));
    for instance in ["0", "1"] {
        let lines: Vec<String> = worker
            .iter()
            .filter(|r| r.structured_data.contains(&format!("instance=\"{instance}\"")))
            .map(|r| r.msg.clone())
            .collect();
        assert_eq!(lines, expected(100), "instance {instance} in order");
    }
    assert!(worker[0].structured_data.contains("env=\"test\""), "{}", worker[0].structured_data);
}

#[test]
fn https_with_a_private_ca_a_client_certificate_a_token_and_headers() {
    let pki = testkit::pki::Pki::generate();
    let loki = Receiver::builder().mtls(pki).start();
    let dir = tempfile::tempdir().unwrap();
    let files = loki.pki().unwrap().write_to(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[[ship]]\nkind = \"loki\"\nurl = \"{}\"\nlinger = \"50ms\"\n\
         ca_file = {}\nclient_cert = {}\nclient_key = {}\ntoken_file = {}\nheaders = {{ X-Scope-OrgID = \"team-a\" }}\n",
        child_cmd(&["--write-lines", "50", "--sleep", "1h"]),
        loki.url("/loki/api/v1/push"),
        q(files.ca.display().to_string()),
        q(files.client_cert.display().to_string()),
        q(files.client_key.display().to_string()),
        q(token.display().to_string()),
    );
    let s = start(&cfg);
    loki.wait_for("50 lines over mTLS", DEADLINE, |st| st.loki.len() >= 50);
    let state = loki.state();
    assert_eq!(state.last_header(Endpoint::Loki, "authorization").as_deref(), Some("Bearer s3cret-token"));
    assert_eq!(state.last_header(Endpoint::Loki, "x-scope-orgid").as_deref(), Some("team-a"));
    assert!(!s.log().contains("s3cret"), "the token is never logged");
}

#[test]
fn a_refused_line_goes_to_the_dead_letter_file_and_the_rest_arrives() {
    let es = Receiver::start();
    // Three refusals in a row: the batch of 4 is halved, halved again, and its first line
    // refused alone.
    es.inject_on(Endpoint::Elastic, Fault::Status(400), Times::Next(3));
    let cfg = format!(
        "[programs.web]\ncommand = {}\n{}",
        child_cmd(&["--write-lines", "4", "--sleep", "1h"]),
        sink("elasticsearch", &es, "max_lines = 4\nlinger = \"300ms\""),
    );
    let s = start(&cfg);
    es.wait_for("the three other lines", DEADLINE, |st| st.elastic.len() >= 3);
    let event = s.wait_for_api_event("the drop announced", |e| e["kind"] == "ship" && e["to"] == "dropped");
    assert_eq!(event["program"], "web");
    let stored: Vec<String> =
        es.state().elastic.iter().map(|d| d.source["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(stored, expected(4)[1..]);
    let letters =
        std::fs::read_to_string(s.dir().join(".steward/ship/elasticsearch/deadletter.log")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert_eq!(letter["line"], expected(1)[0]);
    assert!(letter["reason"].as_str().unwrap().contains("400"), "{letter}");
    let metrics = s.cli_ok(["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    assert_eq!(status["sinks"][0]["dropped_refused"], 1, "{status}");
}

#[test]
fn busy_answers_are_retried_item_by_item_and_partial_success_is_counted() {
    let es = Receiver::start();
    let otlp = Receiver::start();
    es.elastic_reject_items(&[0, 2]);
    otlp.otlp_partial_success(2, "two records had no body");
    otlp.inject_on(Endpoint::Otlp, Fault::TooManyRequests { retry_after_secs: 1 }, Times::Next(1));
    let cfg = format!(
        "[programs.web]\ncommand = {}\n{}{}",
        child_cmd(&["--write-lines", "10", "--sleep", "1h"]),
        sink("elasticsearch", &es, "linger = \"300ms\""),
        sink("otlp", &otlp, "linger = \"300ms\""),
    );
    let s = start(&cfg);
    es.wait_for("every document", DEADLINE, |st| st.elastic.len() >= 10);
    let stored: Vec<String> =
        es.state().elastic.iter().map(|d| d.source["message"].as_str().unwrap().to_owned()).collect();
    let mut sorted = stored.clone();
    sorted.sort();
    assert_eq!(sorted, expected(10), "the two busy items were sent again, each stored once");
    otlp.wait_for("the export after the 429", DEADLINE, |st| st.answered(Endpoint::Otlp, 200) >= 1);
    let status: serde_json::Value = serde_json::from_str(&s.cli_ok(["status", "--json"])).unwrap();
    let otlp_sink = status["sinks"].as_array().unwrap().iter().find(|x| x["name"] == "otlp").unwrap().clone();
    assert!(otlp_sink["retries"].as_u64().unwrap() >= 1, "{otlp_sink}");
    wait_until(DEADLINE, "the rejected records counted", || {
        let status: serde_json::Value = serde_json::from_str(&s.cli_ok(["status", "--json"])).unwrap();
        (status["sinks"][1]["rejected_by_receiver"] == 2).then_some(())
    });
}

#[test]
fn rotation_and_compression_while_the_sink_lags_lose_nothing() {
    let loki = Receiver::start();
    loki.inject_on(Endpoint::Loki, Fault::Status(503), Times::UntilCleared);
    // keep = 1 and compression: without shipping, most of these files would be gone.
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nformat = \"cri\"\nmax_size = \"64KB\"\nkeep = 1\ncompress = true\n{}",
        child_cmd(&["--write-lines", "5000", "--sleep", "1h"]),
        sink("loki", &loki, ""),
    );
    let s = start(&cfg);
    let log_dir = s.log_dir();
    wait_until(DEADLINE, "the log rotated and compressed a few times", || {
        let names: Vec<String> = std::fs::read_dir(&log_dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("web.out.log.") && n.ends_with(".gz"))
            .collect();
        (names.len() >= 4).then_some(())
    });
    loki.clear_faults();
    loki.wait_for("every line", Duration::from_secs(90), |st| st.loki.len() >= 5000);
    assert_eq!(loki_lines(&loki.state(), "web", "stdout"), expected(5000));
}

#[test]
fn past_the_disk_budget_the_oldest_lines_go_counted_and_announced() {
    let loki = Receiver::start();
    loki.inject_on(Endpoint::Loki, Fault::Status(503), Times::UntilCleared);
    // The sink reads its first batch 5 s after the first line, when all 5,000 are written
    // (slow as Wine is), so the files past the budget went before it read anything: the
    // oldest lines are the ones lost. (Lines it had read before their file went are sent.)
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nmax_size = \"64KB\"\nkeep = 0\n{}",
        child_cmd(&["--write-lines", "5000", "--sleep", "1h"]),
        sink("loki", &loki, "max_unshipped = \"150KB\"\nlinger = \"5s\""),
    );
    let s = start(&cfg);
    let event = s.wait_for_api_event("the drop announced", |e| e["kind"] == "ship" && e["to"] == "dropped");
    assert!(event["message"].as_str().unwrap().contains("max_unshipped"), "{event}");
    loki.clear_faults();
    // What was kept arrives, in order, the newest lines included.
    loki.wait_for("the last line", Duration::from_secs(90), |st| {
        st.loki.last().is_some_and(|e| e.line == expected(5000)[4999])
    });
    let got = loki_lines(&loki.state(), "web", "stdout");
    let all = expected(5000);
    let dropped = 5000 - got.len();
    assert!(
        dropped > 0 && got[..] == all[dropped..],
        "the oldest {dropped} lines dropped, the rest in order"
    );
    let status: serde_json::Value = serde_json::from_str(&s.cli_ok(["status", "--json"])).unwrap();
    assert_eq!(status["sinks"][0]["dropped_retention"], dropped as u64, "{status}");
}

#[test]
fn a_torn_last_line_waits_for_its_end() {
    let loki = Receiver::start();
    let cfg = format!(
        "[programs.web]\ncommand = {}\nautostart = true\nrestart = \"never\"\n{}",
        child_cmd(&["--write-lines", "3", "--partial", "no newline yet", "--sleep", "2s"]),
        sink("loki", &loki, ""),
    );
    let s = start(&cfg);
    loki.wait_for("the whole lines", DEADLINE, |st| st.loki.len() >= 3);
    assert!(!loki.state().loki.iter().any(|e| e.line.contains("no newline")), "not sent while torn");
    // The program ends: its unfinished line is ended in the file, and shipped.
    s.wait_for("web", "exited");
    loki.wait_for("the torn line once ended", DEADLINE, |st| st.loki.len() >= 4);
    assert_eq!(loki.state().loki[3].line, "no newline yet");
}

#[test]
fn the_last_lines_go_out_before_steward_exits() {
    let loki = Receiver::start();
    // A long linger: only the drain at shutdown sends these before it ends.
    let cfg = format!(
        "[programs.web]\ncommand = {}\n{}",
        child_cmd(&["--write-lines", "100", "--trap-term"]),
        sink("loki", &loki, "linger = \"1h\""),
    );
    let s = start(&cfg);
    s.wait_started("web");
    let log = s.log_dir().join("web.out.log");
    wait_until(DEADLINE, "the program's lines in its file", || (line_count(&log) >= 100).then_some(()));
    assert!(loki.state().loki.is_empty(), "lingering");
    s.shutdown();
    s.daemon().wait_exit(DEADLINE);
    assert_eq!(loki_lines(&loki.state(), "web", "stdout").len(), 100, "sent before exiting");
}

#[test]
fn multi_line_records_are_grouped_and_the_last_is_sent_after_its_timeout() {
    let loki = Receiver::start();
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nmultiline_start = \"^0000000001 \"\n\
         multiline_max_lines = 500\nmultiline_timeout = \"300ms\"\n{}",
        child_cmd(&["--write-lines", "1200", "--sleep", "1h"]),
        sink("loki", &loki, ""),
    );
    let _s = start(&cfg);
    // Line 1 starts a record; the others continue it, 500 lines at most each. The last
    // record (lines 1001-1200) has no line after it: sent once its timeout passed.
    loki.wait_for("three records", DEADLINE, |st| st.loki.len() >= 3);
    let lines = expected(1200);
    let records: Vec<String> = loki_lines(&loki.state(), "web", "stdout");
    assert_eq!(records, [lines[..500].join("\n"), lines[500..1000].join("\n"), lines[1000..].join("\n")]);
}

#[test]
fn a_damaged_cursor_is_recovered_from_its_backup_and_said() {
    let es = Receiver::start();
    let cfg = format!(
        "[programs.web]\ncommand = {}\n{}",
        child_cmd(&["--write-lines", "100", "--sleep", "1h"]),
        sink("elasticsearch", &es, "max_lines = 30\nlinger = \"20ms\""),
    );
    let s = start(&cfg);
    es.wait_for("100 documents", DEADLINE, |st| st.elastic.len() >= 100);
    let cursor = s.dir().join(".steward/ship/elasticsearch/web.out.json");
    wait_until(DEADLINE, "the last batch's cursor saved", || {
        let text = std::fs::read_to_string(&cursor).ok()?;
        text.contains(&format!("\"offset\":{}", 100 * 64)).then_some(())
    });
    s.shutdown();
    // Torn, as a disk that lost power mid-write leaves it.
    std::fs::write(&cursor, b"{\"epoch\":12,\"aft").unwrap();
    std::fs::write(s.config_path(), cfg.replace("[programs.web]\n", "[programs.web]\nautostart = false\n"))
        .unwrap();
    let _again = s.run_again();
    let event =
        s.wait_for_api_event("the recovery announced", |e| e["kind"] == "ship" && e["to"] == "recovered");
    assert!(event["message"].as_str().unwrap().contains("damaged"), "{event}");
    // The backup is one batch behind: that batch comes again, and Elasticsearch keeps one copy.
    es.wait_for("the batch after the backup sent again", DEADLINE, |st| st.elastic_conflicts > 0);
    let e = es.state();
    assert_eq!(e.elastic.len(), 100);
    assert!(e.elastic_conflicts <= 30, "at most one batch again: {}", e.elastic_conflicts);
}

#[test]
fn an_instance_scaled_up_is_shipped_too() {
    let loki = Receiver::start();
    let cfg = format!(
        "[programs.web]\ncommand = {}\ninstances = 1\n{}",
        child_cmd(&["--write-lines", "50", "--sleep", "1h"]),
        sink("loki", &loki, ""),
    );
    let s = start(&cfg);
    loki.wait_for("web:0's lines", DEADLINE, |st| st.loki.len() >= 50);
    s.cli_ok(["scale", "web", "3"]);
    loki.wait_for("the new instances' lines", DEADLINE, |st| st.loki.len() >= 150);
    let state = loki.state();
    for instance in ["0", "1", "2"] {
        let lines: Vec<String> = state
            .loki
            .iter()
            .filter(|e| e.labels.get("instance").map(String::as_str) == Some(instance))
            .map(|e| e.line.clone())
            .collect();
        assert_eq!(lines, expected(50), "instance {instance}");
    }
}

#[test]
fn a_program_added_by_a_reload_is_shipped_at_once() {
    let loki = Receiver::start();
    let base =
        format!("[programs.web]\ncommand = {}\n{}", child_cmd(&["--sleep", "1h"]), sink("loki", &loki, ""));
    let s = start(&base);
    s.wait_started("web");
    let more = format!(
        "{base}[programs.worker]\ncommand = {}\n",
        child_cmd(&["--write-lines", "40", "--sleep", "1h"])
    );
    std::fs::write(s.config_path(), more).unwrap();
    s.cli_ok(["reload"]);
    loki.wait_for("the new program's lines", DEADLINE, |st| st.loki.len() >= 40);
    assert_eq!(loki_lines(&loki.state(), "worker", "stdout"), expected(40));
}

#[test]
fn a_receiver_that_hangs_up_resets_refuses_a_large_body_and_dawdles_gets_every_line_once() {
    let loki = Receiver::start();
    // One after the other: a connection closed at once, a reset in the middle of the body,
    // a 413 (the batch is halved), a slow answer; then normal service.
    loki.inject(Fault::Refuse, Times::Next(1));
    loki.inject_on(Endpoint::Loki, Fault::ResetMidBody { after_bytes: 100 }, Times::Next(1));
    loki.inject_on(Endpoint::Loki, Fault::Status(413), Times::Next(1));
    loki.inject_on(Endpoint::Loki, Fault::Slow(Duration::from_millis(300)), Times::Next(1));
    let cfg = format!(
        "[programs.web]\ncommand = {}\n[programs.web.log]\nformat = \"cri\"\n{}",
        child_cmd(&["--write-lines", "400", "--sleep", "1h"]),
        sink("loki", &loki, "linger = \"200ms\""),
    );
    let s = start(&cfg);
    loki.wait_for("every line", DEADLINE, |st| st.loki.len() >= 400);
    let state = loki.state();
    assert_eq!((state.resets, state.answered(Endpoint::Loki, 413)), (1, 1), "{}", state.summary());
    assert_eq!(loki_lines(&state, "web", "stdout"), expected(400), "each line once, in order");
    assert!(state.refused >= 1, "{}", state.summary());
    let status: serde_json::Value = serde_json::from_str(&s.cli_ok(["status", "--json"])).unwrap();
    assert!(status["sinks"][0]["retries"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(status["sinks"][0]["dropped_refused"], 0, "a 413 splits; no line is refused");
}

#[test]
fn a_cursor_that_cannot_be_saved_is_saved_again_once_it_can() {
    let es = Receiver::start();
    // The worker writes its lines at once, and the sink waits long enough to send them in one
    // batch: its cursor is saved once, and no later batch would carry it.
    let base = format!(
        "[programs.web]\ncommand = {}\n{}",
        child_cmd(&["--sleep", "1h"]),
        sink("elasticsearch", &es, "linger = \"500ms\"")
    );
    let s = start(&base);
    s.wait_started("web");
    // A folder where worker's cursor file goes: the rename over it fails, as it does on
    // Windows while another process has the file open.
    let cursor = s.dir().join(".steward/ship/elasticsearch/worker.out.json");
    std::fs::create_dir_all(&cursor).unwrap();
    let more = format!(
        "{base}[programs.worker]\ncommand = {}\n",
        child_cmd(&["--write-lines", "20", "--sleep", "1h"])
    );
    std::fs::write(s.config_path(), more).unwrap();
    s.cli_ok(["reload"]);
    es.wait_for("worker's lines", DEADLINE, |st| st.elastic.len() >= 20);
    s.wait_for_event("the failed save said", |e| e.event.as_deref() == Some("ship-cursor-unsaved"));
    std::fs::remove_dir(&cursor).unwrap();
    wait_until(DEADLINE, "worker's cursor saved", || {
        let text = std::fs::read_to_string(&cursor).ok()?;
        text.contains(&format!("\"offset\":{}", 20 * 64)).then_some(())
    });
    assert_eq!(es.state().elastic_conflicts, 0, "nothing sent twice");
}
