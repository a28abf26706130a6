//! The fake log receivers: a plain hyper client encodes requests with the same crates a shipper
//! uses and checks what each protocol stored and answered, the rules, the faults and TLS.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{json, Value};
use testkit::pki::Pki;
use testkit::receiver::loki::{self, EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use testkit::receiver::{Endpoint, Fault, Receiver, Times};
use testkit::DEADLINE;

const PROTO: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs on a new connection (HTTPS with `tls`); `Err` says how the exchange failed.
async fn post_with(
    rx: &Receiver,
    tls: Option<Arc<rustls::ClientConfig>>,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let tcp = tokio::net::TcpStream::connect(rx.addr()).await.map_err(|e| format!("connect: {e}"))?;
    let mut req = hyper::Request::post(path).header("host", rx.addr().to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    match tls {
        None => exchange(TokioIo::new(tcp), req).await,
        Some(config) => {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(Pki::server_name(), tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange(TokioIo::new(tls), req).await
        }
    }
}

async fn exchange<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> Result<Reply, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let response = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes().to_vec();
    drop(sender);
    let _ = conn.await;
    Ok(Reply { status, headers, body })
}

async fn post(rx: &Receiver, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    post_with(rx, None, path, &[("content-type", content_type)], body).await.unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

// ---- Loki ----

fn loki_push(labels: &str, entries: &[(i128, &str)]) -> Vec<u8> {
    loki::encode_protobuf(&PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.into(),
            entries: entries
                .iter()
                .map(|(ts, line)| EntryAdapter {
                    timestamp: Some(Timestamp::from_ns(*ts)),
                    line: line.to_string(),
                    structured_metadata: vec![],
                })
                .collect(),
            hash: 0,
        }],
    })
}

const T0: i128 = 1_714_557_600_000_000_000;
const PUSH: &str = "/loki/api/v1/push";

#[tokio::test]
async fn loki_protobuf_push_is_stored_with_labels_and_metadata() {
    let rx = Receiver::start();
    let body = loki::encode_protobuf(&PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{program="api", msg="say \"hi\" \\o/"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp::from_ns(T0 + 7)),
                line: "first line".into(),
                structured_metadata: vec![LabelPairAdapter { name: "stream".into(), value: "stderr".into() }],
            }],
            hash: 0,
        }],
    });
    let headers = [("content-type", PROTO), ("authorization", "Bearer t0ken"), ("x-scope-orgid", "tenant-1")];
    let reply = post_with(&rx, None, PUSH, &headers, body.clone()).await.unwrap();
    assert_eq!(reply.status, 204, "{}", reply.text());
    let state = rx.state();
    assert_eq!(
        state.loki,
        vec![testkit::receiver::LokiEntry {
            labels: map(&[("program", "api"), ("msg", "say \"hi\" \\o/")]),
            ts_ns: T0 + 7,
            line: "first line".into(),
            metadata: map(&[("stream", "stderr")]),
        }]
    );
    assert_eq!(state.requests(Endpoint::Loki), 1);
    assert_eq!(state.answered(Endpoint::Loki, 204), 1);
    assert_eq!(state.bytes(Endpoint::Loki), body.len() as u64);
    assert_eq!(state.last_header(Endpoint::Loki, "authorization").as_deref(), Some("Bearer t0ken"));
    assert_eq!(state.last_header(Endpoint::Loki, "x-scope-orgid").as_deref(), Some("tenant-1"));
}

#[tokio::test]
async fn loki_json_push_gzipped_is_stored() {
    let rx = Receiver::start();
    let push = json!({"streams": [{
        "stream": {"program": "web"},
        "values": [[(T0 + 1).to_string(), "plain"], [(T0 + 2).to_string(), "with meta", {"trace_id": "abc"}]],
    }]});
    let body = gzip(push.to_string().as_bytes());
    let headers = [("content-type", JSON), ("content-encoding", "gzip")];
    let reply = post_with(&rx, None, PUSH, &headers, body).await.unwrap();
    assert_eq!(reply.status, 204, "{}", reply.text());
    let state = rx.state();
    let got: Vec<_> = state.loki.iter().map(|e| (e.ts_ns, e.line.as_str(), e.metadata.clone())).collect();
    assert_eq!(got, vec![(T0 + 1, "plain", map(&[])), (T0 + 2, "with meta", map(&[("trace_id", "abc")]))]);
    assert_eq!(state.loki[0].labels, map(&[("program", "web")]));
    assert_eq!(state.last_header(Endpoint::Loki, "content-encoding").as_deref(), Some("gzip"));
}

#[tokio::test]
async fn loki_drops_exact_duplicates_silently() {
    let rx = Receiver::start();
    let first = loki_push(r#"{a="1"}"#, &[(T0, "x"), (T0 + 1, "y")]);
    assert_eq!(post(&rx, PUSH, PROTO, first.clone()).await.status, 204);
    // The same push again (a retry), and the same labels written another way.
    assert_eq!(post(&rx, PUSH, PROTO, first).await.status, 204);
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{ a = "1" }"#, &[(T0 + 1, "y")])).await.status, 204);
    // Same timestamp, another line: not a duplicate.
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0 + 1, "z")])).await.status, 204);
    let state = rx.state();
    let lines: Vec<_> = state.loki.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, ["x", "y", "z"]);
    assert_eq!(state.loki_duplicates, 3);
}

#[tokio::test]
async fn loki_refuses_entries_too_far_behind_and_keeps_the_rest() {
    let rx = Receiver::start();
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0 + 100, "new")])).await.status, 204);
    // One too old among good ones; another stream has its own order.
    let mixed = loki_push(r#"{a="1"}"#, &[(T0 + 100, "same ts"), (T0 + 99, "old"), (T0 + 101, "newer")]);
    let reply = post(&rx, PUSH, PROTO, mixed).await;
    assert_eq!(reply.status, 400);
    let text = reply.text();
    assert!(text.contains("entry with timestamp 2024-05-01 10:00:00.000000099 +0000 UTC ignored"), "{text}");
    assert!(text.contains("reason: 'entry too far behind"), "{text}");
    assert!(text.contains(r#"total ignored: 1 out of 3 for stream: {a="1"}"#), "{text}");
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="2"}"#, &[(T0, "other stream")])).await.status, 204);
    let state = rx.state();
    let lines: Vec<_> = state.loki.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, ["new", "same ts", "newer", "other stream"]);
    assert_eq!(state.loki_out_of_order, 1);
    assert_eq!(state.answered(Endpoint::Loki, 400), 1);
}

#[tokio::test]
async fn loki_window_accepts_entries_within_it() {
    let rx = Receiver::builder().loki_window(Duration::from_secs(3600)).start();
    let hour: i128 = 3_600_000_000_000;
    let body = loki_push(r#"{a="1"}"#, &[(T0 + hour, "newest"), (T0 + 1, "within"), (T0 - 1, "behind")]);
    let reply = post(&rx, PUSH, PROTO, body).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("oldest acceptable timestamp is: 2024-05-01 10:00:00 +0000 UTC"),
        "{}",
        reply.text()
    );
    let lines: Vec<_> = rx.state().loki.iter().map(|e| e.line.clone()).collect();
    assert_eq!(lines, ["newest", "within"]);
}

#[tokio::test]
async fn loki_refuses_streams_without_valid_labels() {
    let rx = Receiver::start();
    let reply = post(&rx, PUSH, PROTO, loki_push("{}", &[(T0, "x")])).await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("at least one label pair is required per stream"), "{}", reply.text());
    let reply = post(&rx, PUSH, PROTO, loki_push(r#"{a="unterminated}"#, &[(T0, "x")])).await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("error parsing labels"), "{}", reply.text());
    let empty_json = json!({"streams": [{"stream": {}, "values": [[T0.to_string(), "x"]]}]});
    assert_eq!(post(&rx, PUSH, JSON, empty_json.to_string().into_bytes()).await.status, 400);
    // Not snappy, not JSON.
    assert_eq!(post(&rx, PUSH, PROTO, b"not snappy at all".to_vec()).await.status, 400);
    assert_eq!(post(&rx, PUSH, JSON, b"{\"streams\": [{".to_vec()).await.status, 400);
    let numeric_ts = json!({"streams": [{"stream": {"a": "1"}, "values": [[1, "x"]]}]});
    assert_eq!(post(&rx, PUSH, JSON, numeric_ts.to_string().into_bytes()).await.status, 400);
    assert!(rx.state().loki.is_empty());
}

// ---- Elasticsearch ----

fn ndjson(lines: &[Value]) -> Vec<u8> {
    lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

#[tokio::test]
async fn elastic_bulk_creates_indexes_and_conflicts() {
    let rx = Receiver::start();
    let body = ndjson(&[
        json!({"create": {"_index": "logs", "_id": "a"}}),
        json!({"message": "one"}),
        json!({"index": {"_index": "logs", "_id": "b"}}),
        json!({"message": "two"}),
        json!({"create": {"_index": "logs"}}),
        json!({"message": "auto id"}),
    ]);
    let reply = post(&rx, "/_bulk", NDJSON, body).await;
    assert_eq!(reply.status, 200);
    let answer = reply.json();
    assert_eq!(answer["errors"], false, "{answer}");
    assert!(answer["took"].is_u64());
    assert_eq!(answer["items"][0]["create"]["status"], 201);
    assert_eq!(answer["items"][0]["create"]["result"], "created");
    assert_eq!(answer["items"][1]["index"]["_id"], "b");
    let auto_id = answer["items"][2]["create"]["_id"].as_str().unwrap().to_owned();

    // A retry of the same creates: 409s, no second copy; `index` overwrites.
    let again = ndjson(&[
        json!({"create": {"_index": "logs", "_id": "a"}}),
        json!({"message": "one again"}),
        json!({"index": {"_index": "logs", "_id": "b"}}),
        json!({"message": "two, updated"}),
    ]);
    let answer = post(&rx, "/_bulk", NDJSON, again).await.json();
    assert_eq!(answer["errors"], true);
    let conflict = &answer["items"][0]["create"];
    assert_eq!(conflict["status"], 409);
    assert_eq!(conflict["error"]["type"], "version_conflict_engine_exception");
    assert_eq!(answer["items"][1]["index"]["status"], 200);
    assert_eq!(answer["items"][1]["index"]["result"], "updated");
    assert_eq!(answer["items"][1]["index"]["_version"], 2);

    let state = rx.state();
    let docs: Vec<_> = state
        .elastic
        .iter()
        .map(|d| (d.index.as_str(), d.id.as_str(), d.source["message"].clone()))
        .collect();
    assert_eq!(
        docs,
        [
            ("logs", "a", json!("one")),
            ("logs", "b", json!("two, updated")),
            ("logs", auto_id.as_str(), json!("auto id"))
        ]
    );
    assert_eq!(state.elastic_conflicts, 1);
}

#[tokio::test]
async fn elastic_item_errors_and_the_index_of_the_path() {
    let rx = Receiver::start();
    let body = ndjson(&[
        json!({"create": {"_id": "no-index"}}),
        json!({"message": "x"}),
        json!({"create": {"_index": "logs", "_id": "not-object"}}),
        json!("just a string"),
        json!({"create": {"_index": "logs", "_id": "ok"}}),
        json!({"message": "fine"}),
    ]);
    let answer = post(&rx, "/_bulk", NDJSON, body).await.json();
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["create"]["status"], 400);
    assert_eq!(answer["items"][1]["create"]["status"], 400);
    assert_eq!(answer["items"][1]["create"]["error"]["type"], "mapper_parsing_exception");
    assert_eq!(answer["items"][2]["create"]["status"], 201);

    // The path's index is the default; an action's own `_index` wins. Gzip is read.
    let body = ndjson(&[
        json!({"create": {"_id": "p"}}),
        json!({"message": "to the path's index"}),
        json!({"create": {"_index": "other", "_id": "q"}}),
        json!({"message": "to its own"}),
    ]);
    let headers = [("content-type", NDJSON), ("content-encoding", "gzip")];
    let reply = post_with(&rx, None, "/steward-logs/_bulk", &headers, gzip(&body)).await.unwrap();
    assert_eq!(reply.json()["errors"], false, "{}", reply.text());
    let indexes: Vec<_> = rx.state().elastic.iter().map(|d| format!("{}/{}", d.index, d.id)).collect();
    assert_eq!(indexes, ["logs/ok", "steward-logs/p", "other/q"]);
}

#[tokio::test]
async fn elastic_refuses_bodies_that_are_not_ndjson() {
    let rx = Receiver::start();
    let mut body = ndjson(&[json!({"create": {"_index": "logs", "_id": "a"}}), json!({"m": 1})]);
    body.pop();
    let reply = post(&rx, "/_bulk", NDJSON, body).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "illegal_argument_exception");
    assert!(reply.text().contains("must be terminated by a newline"), "{}", reply.text());
    assert_eq!(post(&rx, "/_bulk", NDJSON, b"not json\n{}\n".to_vec()).await.status, 400);
    assert_eq!(
        post(&rx, "/_bulk", NDJSON, ndjson(&[json!({"delete": {"_index": "l", "_id": "a"}})])).await.status,
        400
    );
    assert_eq!(post(&rx, "/_bulk", NDJSON, ndjson(&[json!({"create": {"_index": "l"}})])).await.status, 400);
    assert!(rx.state().elastic.is_empty());
}

#[tokio::test]
async fn elastic_chosen_items_answer_429_and_the_others_succeed() {
    let rx = Receiver::start();
    rx.elastic_reject_items(&[1, 2]);
    let lines: Vec<Value> = (0..4)
        .flat_map(|i| [json!({"create": {"_index": "logs", "_id": format!("d{i}")}}), json!({"n": i})])
        .collect();
    let answer = post(&rx, "/_bulk", NDJSON, ndjson(&lines)).await.json();
    let statuses: Vec<_> =
        answer["items"].as_array().unwrap().iter().map(|i| i["create"]["status"].clone()).collect();
    assert_eq!(statuses, [json!(201), json!(429), json!(429), json!(201)]);
    assert_eq!(answer["items"][1]["create"]["error"]["type"], "es_rejected_execution_exception");
    // The retry of the rejected ones (and only them) succeeds: the rejection was for one request.
    let retry = ndjson(&lines[2..6]);
    let answer = post(&rx, "/_bulk", NDJSON, retry).await.json();
    assert_eq!(answer["errors"], false, "{answer}");
    let state = rx.state();
    let ids: Vec<_> = state.elastic.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d0", "d3", "d1", "d2"]);
    assert_eq!(state.elastic_rejected, 2);
}

// ---- OTLP ----

fn otlp_request(lines: &[&str]) -> ExportLogsServiceRequest {
    let string = |s: &str| Some(AnyValue { value: Some(any_value::Value::StringValue(s.into())) });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string("api"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "steward".into(),
                    version: "0.1.0".into(),
                    ..Default::default()
                }),
                log_records: lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| LogRecord {
                        time_unix_nano: 1_714_557_600_000_000_000 + i as u64,
                        observed_time_unix_nano: 1_714_557_600_000_000_100,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: string(line),
                        attributes: vec![KeyValue {
                            key: "n".into(),
                            value: Some(AnyValue { value: Some(any_value::Value::IntValue(i as i64)) }),
                            ..Default::default()
                        }],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn otlp_protobuf_export_is_stored_and_answered_in_protobuf() {
    let rx = Receiver::start();
    let body = prost::Message::encode_to_vec(&otlp_request(&["hello", "world"]));
    let headers = [("content-type", PROTO), ("content-encoding", "gzip")];
    let reply = post_with(&rx, None, "/v1/logs", &headers, gzip(&body)).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["content-type"], PROTO);
    let response: ExportLogsServiceResponse = prost::Message::decode(reply.body.as_slice()).unwrap();
    assert_eq!(response.partial_success, None);
    let state = rx.state();
    assert_eq!(state.otlp.len(), 2);
    let record = &state.otlp[1];
    assert_eq!(record.resource["service.name"], "api");
    assert_eq!((record.scope_name.as_str(), record.scope_version.as_str()), ("steward", "0.1.0"));
    assert_eq!(record.time_unix_nano, 1_714_557_600_000_000_001);
    assert_eq!(record.observed_time_unix_nano, 1_714_557_600_000_000_100);
    assert_eq!((record.severity_number, record.severity_text.as_str()), (9, "INFO"));
    assert_eq!(record.body, json!("world"));
    assert_eq!(record.attributes["n"], json!(1));
    assert_eq!(record.trace_id, "ab".repeat(16));
    assert_eq!(record.span_id, "cd".repeat(8));
}

#[tokio::test]
async fn otlp_json_export_reads_the_otlp_json_mapping() {
    let rx = Receiver::start();
    // As an OTLP exporter writes it: lowerCamelCase, int64 as strings, ids in hex.
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "box"}}]},
        "scopeLogs": [{
            "scope": {"name": "steward"},
            "logRecords": [{
                "timeUnixNano": "1714557600000000001",
                "observedTimeUnixNano": "1714557600000000002",
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "boom"}}]}},
                "attributes": [
                    {"key": "count", "value": {"intValue": "42"}},
                    {"key": "ok", "value": {"boolValue": false}},
                    {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"doubleValue": 1.5}]}}},
                ],
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
            }],
        }],
    }]});
    let reply = post(&rx, "/v1/logs", JSON, body.to_string().into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({}));
    let record = rx.state().otlp.remove(0);
    assert_eq!(record.resource["host.name"], "box");
    assert_eq!(record.time_unix_nano, 1_714_557_600_000_000_001);
    assert_eq!(record.observed_time_unix_nano, 1_714_557_600_000_000_002);
    assert_eq!(record.severity_number, 17);
    assert_eq!(record.body, json!({"msg": "boom"}));
    assert_eq!(record.attributes["count"], json!(42));
    assert_eq!(record.attributes["ok"], json!(false));
    assert_eq!(record.attributes["tags"], json!(["a", 1.5]));
    assert_eq!(record.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(record.span_id, "eee19b7ec3c1b174");
}

#[tokio::test]
async fn otlp_partial_success_in_both_encodings_and_bad_requests() {
    let rx = Receiver::start();
    rx.otlp_partial_success(1, "one record too large");
    let body = prost::Message::encode_to_vec(&otlp_request(&["kept", "rejected"]));
    let reply = post(&rx, "/v1/logs", PROTO, body).await;
    assert_eq!(reply.status, 200);
    let response: ExportLogsServiceResponse = prost::Message::decode(reply.body.as_slice()).unwrap();
    let partial = response.partial_success.expect("a partial success");
    assert_eq!((partial.rejected_log_records, partial.error_message.as_str()), (1, "one record too large"));
    let bodies: Vec<_> = rx.state().otlp.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, [json!("kept")]);

    rx.otlp_partial_success(2, "all rejected");
    let json_body = serde_json::to_vec(&otlp_request(&["a", "b"])).unwrap();
    let reply = post(&rx, "/v1/logs", JSON, json_body).await;
    assert_eq!(
        reply.json(),
        json!({"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "all rejected"}})
    );
    assert_eq!(rx.state().otlp.len(), 1);

    assert_eq!(post(&rx, "/v1/logs", "text/plain", b"x".to_vec()).await.status, 415);
    assert_eq!(post(&rx, "/v1/logs", PROTO, vec![0xff, 0xff, 0xff]).await.status, 400);
    assert_eq!(post(&rx, "/v1/logs", JSON, b"[1,2]".to_vec()).await.status, 400);
    let reply =
        post_with(&rx, None, "/v1/logs", &[("content-type", PROTO), ("content-encoding", "br")], vec![1])
            .await;
    assert_eq!(reply.unwrap().status, 415);
    assert_eq!(post(&rx, "/nowhere", JSON, b"{}".to_vec()).await.status, 404);
    assert_eq!(rx.state().otlp.len(), 1);
}

// ---- Counting only ----

#[tokio::test]
async fn counting_only_applies_the_same_rules_and_keeps_no_lines() {
    let rx = Receiver::builder().count_only(true).start();
    let first = loki_push(r#"{a="1"}"#, &[(T0, "x"), (T0 + 1, "y")]);
    assert_eq!(post(&rx, PUSH, PROTO, first.clone()).await.status, 204);
    assert_eq!(post(&rx, PUSH, PROTO, first).await.status, 204, "a retry: duplicates, dropped");
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0 + 1, "z")])).await.status, 204);
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0 - 1, "old")])).await.status, 400);
    let create = || ndjson(&[json!({"create": {"_index": "logs", "_id": "a"}}), json!({"message": "one"})]);
    assert_eq!(post(&rx, "/_bulk", NDJSON, create()).await.json()["errors"], false);
    let again = post(&rx, "/_bulk", NDJSON, create()).await.json();
    assert_eq!(again["items"][0]["create"]["status"], 409, "{again}");
    let body = prost::Message::encode_to_vec(&otlp_request(&["hello", "world"]));
    assert_eq!(post(&rx, "/v1/logs", PROTO, body).await.status, 200);

    let state = rx.state();
    assert_eq!(
        (state.stored(Endpoint::Loki), state.stored(Endpoint::Elastic), state.stored(Endpoint::Otlp)),
        (3, 1, 2)
    );
    assert_eq!((state.loki_duplicates, state.loki_out_of_order, state.elastic_conflicts), (2, 1, 1));
    assert!(state.loki.is_empty() && state.otlp.is_empty());
    assert_eq!(state.elastic.len(), 1, "documents keep their id, for the conflict rule");
    assert_eq!(state.elastic[0].source, Value::Null, "but not their source");
    assert!(state.first_stored_at.is_some() && state.first_stored_at <= state.last_stored_at);
}

#[tokio::test]
async fn stored_counts_and_times_also_when_storing() {
    let rx = Receiver::start();
    assert_eq!(rx.state().first_stored_at, None);
    assert_eq!(
        post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0, "x"), (T0 + 1, "y")])).await.status,
        204
    );
    let state = rx.state();
    assert_eq!((state.stored(Endpoint::Loki), state.loki.len()), (2, 2));
    assert_eq!(state.first_stored_at, state.last_stored_at);
}

// ---- Faults ----

#[tokio::test]
async fn status_faults_fail_the_next_requests_and_store_nothing() {
    let rx = Receiver::start();
    let push = || loki_push(r#"{a="1"}"#, &[(T0, "x")]);
    for code in [500, 503, 413, 400] {
        rx.inject_on(Endpoint::Loki, Fault::Status(code), Times::Next(1));
        assert_eq!(post(&rx, PUSH, PROTO, push()).await.status, code);
    }
    rx.inject(Fault::TooManyRequests { retry_after_secs: 7 }, Times::Next(2));
    for _ in 0..2 {
        let reply = post(&rx, PUSH, PROTO, push()).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.headers["retry-after"], "7");
    }
    assert!(rx.state().loki.is_empty());
    assert_eq!(post(&rx, PUSH, PROTO, push()).await.status, 204);
    let state = rx.state();
    assert_eq!(state.loki.len(), 1);
    assert_eq!(state.requests(Endpoint::Loki), 7);
    assert_eq!(state.answered(Endpoint::Loki, 429), 2);
}

#[tokio::test]
async fn faults_apply_to_their_endpoint_until_cleared() {
    let rx = Receiver::start();
    rx.inject_on(Endpoint::Elastic, Fault::Status(503), Times::UntilCleared);
    let bulk = || ndjson(&[json!({"create": {"_index": "l"}}), json!({"m": 1})]);
    for _ in 0..3 {
        assert_eq!(post(&rx, "/_bulk", NDJSON, bulk()).await.status, 503);
    }
    // Other endpoints are not affected.
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0, "x")])).await.status, 204);
    rx.clear_faults();
    assert_eq!(post(&rx, "/_bulk", NDJSON, bulk()).await.status, 200);
    assert_eq!(rx.state().elastic.len(), 1);
}

#[tokio::test]
async fn a_slow_answer_comes_after_the_delay_and_is_stored() {
    let rx = Receiver::start();
    let delay = Duration::from_millis(300);
    rx.inject(Fault::Slow(delay), Times::Next(1));
    let start = Instant::now();
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0, "x")])).await.status, 204);
    assert!(start.elapsed() >= delay, "answered after {:?}", start.elapsed());
    assert_eq!(rx.state().loki.len(), 1);
}

#[tokio::test]
async fn a_reset_mid_body_drops_the_connection_unanswered() {
    let rx = Receiver::start();
    rx.inject_on(Endpoint::Otlp, Fault::ResetMidBody { after_bytes: 10 }, Times::Next(1));
    let body = prost::Message::encode_to_vec(&otlp_request(&["x"; 50]));
    let err = post_with(&rx, None, "/v1/logs", &[("content-type", PROTO)], body.clone()).await.unwrap_err();
    assert!(err.starts_with("request:"), "{err}");
    rx.wait_for_async("the reset counted", DEADLINE, |s| s.resets == 1).await;
    let state = rx.state();
    assert!(state.otlp.is_empty());
    assert!(state.answered.is_empty(), "{:?}", state.answered);
    assert_eq!(post(&rx, "/v1/logs", PROTO, body).await.status, 200);
}

#[tokio::test]
async fn refused_connections_are_closed_unanswered() {
    let rx = Receiver::start();
    rx.inject(Fault::Refuse, Times::Next(2));
    for _ in 0..2 {
        let err =
            post_with(&rx, None, PUSH, &[("content-type", PROTO)], loki_push(r#"{a="1"}"#, &[(T0, "x")]))
                .await;
        assert!(err.is_err(), "{err:?}");
    }
    assert_eq!(post(&rx, PUSH, PROTO, loki_push(r#"{a="1"}"#, &[(T0, "x")])).await.status, 204);
    let state = rx.state();
    assert_eq!(state.refused, 2);
    // Refused at accept: the requests were never read.
    assert_eq!(state.requests(Endpoint::Loki), 1);
}

#[test]
fn a_sync_test_waits_for_what_another_thread_sends() {
    let rx = Receiver::start();
    let (addr, url) = (rx.addr(), rx.url(PUSH));
    assert_eq!(url, format!("http://{addr}{PUSH}"));
    let sender = std::thread::spawn(move || {
        let body = loki_push(r#"{a="1"}"#, &[(T0, "x"), (T0 + 1, "y")]);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {PUSH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {PROTO}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer
    });
    rx.wait_for("2 Loki entries", DEADLINE, |s| s.loki.len() == 2);
    assert!(sender.join().unwrap().starts_with("HTTP/1.1 204"));
}

#[test]
#[should_panic(expected = "waiting for an entry that never comes")]
fn a_wait_that_times_out_says_what_it_waited_for() {
    let rx = Receiver::start();
    rx.wait_for("an entry that never comes", Duration::from_millis(50), |s| !s.loki.is_empty());
}

// ---- TLS ----

#[tokio::test]
async fn https_with_the_receivers_ca() {
    let pki = Pki::generate();
    let rx = Receiver::builder().tls(pki.clone()).start();
    assert!(rx.url("/v1/logs").starts_with("https://127.0.0.1:"));
    let body = prost::Message::encode_to_vec(&otlp_request(&["secure"]));
    let reply =
        post_with(&rx, Some(pki.client_config(None)), "/v1/logs", &[("content-type", PROTO)], body.clone())
            .await;
    assert_eq!(reply.unwrap().status, 200);
    // A client that trusts another CA does not get through.
    let other = Pki::generate();
    let err =
        post_with(&rx, Some(other.client_config(None)), "/v1/logs", &[("content-type", PROTO)], body).await;
    assert!(err.unwrap_err().starts_with("TLS handshake"));
    assert_eq!(rx.state().otlp.len(), 1);
}

#[tokio::test]
async fn mtls_refuses_a_client_without_the_right_certificate() {
    let pki = Pki::generate();
    let rx = Receiver::builder().mtls(pki.clone()).start();
    let body = || loki_push(r#"{a="1"}"#, &[(T0, "x")]);
    let headers = [("content-type", PROTO)];
    let good = post_with(&rx, Some(pki.client_config(Some(&pki))), PUSH, &headers, body()).await;
    assert_eq!(good.unwrap().status, 204);
    // Signed by another CA, or no certificate at all. With TLS 1.3 the client may finish its
    // handshake before the server refuses, so the failure shows at the handshake or the request.
    let other = Pki::generate();
    for config in [pki.client_config(Some(&other)), pki.client_config(None)] {
        let err = post_with(&rx, Some(config), PUSH, &headers, body()).await;
        assert!(err.is_err(), "{err:?}");
    }
    rx.wait_for_async("two failed handshakes", DEADLINE, |s| s.tls_failures == 2).await;
    assert_eq!(rx.state().loki.len(), 1);
    assert_eq!(rx.state().requests(Endpoint::Loki), 1);
}
