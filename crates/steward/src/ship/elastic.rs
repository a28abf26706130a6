//! Elasticsearch and OpenSearch `_bulk`: the request body and what the answer means.
//!
//! Each line is a `create` into the sink's index (a data stream takes only `create`) with the
//! line id as `_id`: a line sent again after a crash or a retry is refused as a duplicate
//! (409) instead of stored twice, and that refusal counts as delivered. The documents use
//! ECS field names (`@timestamp`, `message`, `host.name`, `service.name`, `log.iostream`,
//! `log.file.path`, `event.created`), which Kibana's log views and the `logs-*-*` templates
//! expect.
//!
//! A `_bulk` answers 200 even when some items failed; its items are read one by one.

use std::time::Duration;

use serde_json::{json, Map, Value};
use steward_core::config::{ShipSpec, SinkKind};
use steward_core::ship::cri::write_time;
use steward_core::ship::verdict::{self, Verdict};

use super::batch::{Batch, Body};

/// The `_bulk` body for the lines `part` (indices into `batch.lines`) of `batch`: NDJSON,
/// an action line and a document per line, each ending in `\n` (the last too, as `_bulk`
/// requires).
pub fn encode(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Body {
    let mut bytes = Vec::new();
    for line in part.iter().filter_map(|&i| batch.lines.get(i)) {
        let Some(origin) = batch.origins.get(line.origin) else { continue };
        let action = json!({ "create": { "_index": spec.index, "_id": line.id } });
        let text = String::from_utf8_lossy(&line.text).into_owned();
        let parsed = match spec.parse_json {
            true => serde_json::from_str::<Map<String, Value>>(&text).ok(),
            false => None,
        };
        let mut service = json!({ "name": origin.program });
        if let Some(instance) = origin.instance {
            service["instance"] = json!({ "id": instance.to_string() });
        }
        let mut doc = json!({
            "@timestamp": rfc3339(line.at),
            "message": text,
            "host": { "name": origin.host },
            "service": service,
            "log": { "iostream": origin.stream.name(), "file": { "path": origin.path } },
            "event": { "created": rfc3339(line.observed) },
        });
        if let Some(pid) = origin.pid {
            doc["process"] = json!({ "pid": pid });
        }
        if !spec.labels.is_empty() {
            doc["labels"] = json!(spec.labels);
        }
        if let Some(object) = parsed {
            doc["json"] = Value::Object(object);
        }
        for value in [action, doc] {
            bytes.extend_from_slice(value.to_string().as_bytes());
            bytes.push(b'\n');
        }
    }
    let body = Body { bytes, content_type: "application/x-ndjson", content_encoding: None };
    if spec.gzip {
        body.gzipped()
    } else {
        body
    }
}

/// What a `_bulk` answer means for the part sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkAnswer {
    /// [`Verdict::Items`] when some items failed (indices into the part), else the verdict
    /// on the whole part.
    pub verdict: Verdict,
    /// Why each refused item was refused, `(index into the part, "type: reason")`, for the
    /// dead-letter file. Empty unless the verdict is [`Verdict::Items`].
    pub reasons: Vec<(usize, String)>,
}

/// Reads the answer to a `_bulk` of `part_len` lines.
///
/// A non-2xx status is read as any HTTP answer. A 2xx with `"errors": false` is delivered;
/// otherwise each item by its position: 2xx, and 409 (that `_id` exists: the line was stored
/// before), are delivered; 429 and 5xx are sent again; any other status is refused for good.
/// An answer that cannot be matched to the lines (not JSON, no `items`, a count that differs
/// from `part_len`, an item without a status) sends the whole part again: success is never
/// assumed.
pub fn read_response(status: u16, retry_after: Option<Duration>, body: &[u8], part_len: usize) -> BulkAnswer {
    let whole = |verdict| BulkAnswer { verdict, reasons: Vec::new() };
    let verdict = verdict::http(SinkKind::Elasticsearch, status, retry_after);
    if verdict != Verdict::Delivered {
        return whole(verdict);
    }
    let again = || whole(Verdict::Retry { after: retry_after });
    let Ok(answer) = serde_json::from_slice::<Value>(body) else { return again() };
    match answer.get("errors").and_then(Value::as_bool) {
        Some(false) => return whole(Verdict::Delivered),
        Some(true) => {}
        None => return again(),
    }
    let Some(items) = answer.get("items").and_then(Value::as_array) else { return again() };
    if items.len() != part_len {
        return again();
    }
    let (mut refused, mut retry, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        // `{"create": {...}}` (or `index`, ...): the one value is the result.
        let result = item.as_object().and_then(|o| o.values().next());
        let Some(status) = result.and_then(|r| r.get("status")).and_then(Value::as_u64) else {
            retry.push(i);
            continue;
        };
        match status {
            200..=299 | 409 => {}
            429 | 500..=599 => retry.push(i),
            _ => {
                refused.push(i);
                reasons.push((i, reason(status, result.and_then(|r| r.get("error")))));
            }
        }
    }
    if refused.is_empty() && retry.is_empty() {
        return whole(Verdict::Delivered);
    }
    BulkAnswer { verdict: Verdict::Items { refused, retry }, reasons }
}

/// `type: reason` of an item's error (older versions give a plain string), or the status.
fn reason(status: u64, error: Option<&Value>) -> String {
    match error {
        Some(Value::String(s)) => s.clone(),
        Some(error) => {
            let field = |name| error.get(name).and_then(Value::as_str);
            match (field("type"), field("reason")) {
                (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => format!("status {status}: {error}"),
            }
        }
        None => format!("status {status}"),
    }
}

/// RFC 3339 UTC with nanoseconds: Elasticsearch's `date_nanos` keeps them, `date` rounds.
fn rfc3339(at: i64) -> String {
    let mut out = Vec::with_capacity(30);
    write_time(&mut out, at);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {

    use std::io::Read;

    use super::*;
    use crate::ship::batch::{Line, Origin, Stream};

    fn spec(gzip: bool, parse_json: bool) -> ShipSpec {
        ShipSpec {
            gzip,
            parse_json,
            ..crate::ship::batch::test_spec(SinkKind::Elasticsearch, "https://es:9200")
        }
    }

    fn batch() -> Batch {
        let origin = |instance, stream: Stream, pid| Origin {
            host: "h1".into(),
            program: "web".into(),
            instance,
            stream,
            path: format!("/logs/web.{}.log", stream.suffix()),
            pid,
        };
        let line = |origin, at, text: &[u8], id: &str| Line {
            origin,
            at,
            observed: at + 1_000,
            text: text.to_vec(),
            id: id.into(),
        };
        Batch {
            origins: vec![origin(Some(3), Stream::Out, Some(42)), origin(None, Stream::Err, None)],
            lines: vec![
                line(0, 1_700_000_000_123_456_789, br#"{"level":"warn","n":[1,{"x":null}]}"#, "id0"),
                line(1, 1_700_000_001_000_000_000, b"bad \xff", "id1"),
                line(0, 1_700_000_002_000_000_000, b"[1,2]", "id2"),
            ],
        }
    }

    fn ndjson(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'), "the last line ends in a newline too");
        text.split_terminator('\n').map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn actions_and_documents() {
        let body = encode(&spec(false, true), &batch(), &[0, 1, 2]);
        assert_eq!((body.content_type, body.content_encoding), ("application/x-ndjson", None));
        let lines = ndjson(&body.bytes);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0], json!({"create": {"_index": "logs-steward-default", "_id": "id0"}}));
        assert_eq!(
            lines[1],
            json!({
                "@timestamp": "2023-11-14T22:13:20.123456789Z",
                "message": r#"{"level":"warn","n":[1,{"x":null}]}"#,
                "host": {"name": "h1"},
                "service": {"name": "web", "instance": {"id": "3"}},
                "log": {"iostream": "stdout", "file": {"path": "/logs/web.out.log"}},
                "event": {"created": "2023-11-14T22:13:20.123457789Z"},
                "process": {"pid": 42},
                "labels": {"env": "prod"},
                "json": {"level": "warn", "n": [1, {"x": null}]},
            })
        );
        assert_eq!(lines[2]["create"]["_id"], "id1");
        assert_eq!(lines[3]["message"], "bad \u{fffd}", "invalid UTF-8 is replaced");
        assert_eq!(lines[3]["service"], json!({"name": "web"}), "no instance");
        assert_eq!(lines[3]["log"]["iostream"], "stderr");
        assert!(lines[3].get("process").is_none() && lines[3].get("json").is_none());
        assert!(lines[5].get("json").is_none(), "an array is not an object");
    }

    #[test]
    fn parse_json_off_and_parts() {
        let body = encode(&spec(false, false), &batch(), &[2, 0]);
        let lines = ndjson(&body.bytes);
        assert_eq!(lines.len(), 4);
        assert_eq!((&lines[0]["create"]["_id"], &lines[2]["create"]["_id"]), (&json!("id2"), &json!("id0")));
        assert!(lines[3].get("json").is_none());
        assert!(encode(&spec(false, false), &batch(), &[]).bytes.is_empty());
    }

    #[test]
    fn gzipped() {
        let body = encode(&spec(true, false), &batch(), &[1]);
        assert_eq!(body.content_encoding, Some("gzip"));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(body.bytes.as_slice()).read_to_end(&mut raw).unwrap();
        assert_eq!(ndjson(&raw)[1]["message"], "bad \u{fffd}");
    }

    fn items(statuses: &[Value]) -> Vec<u8> {
        json!({"took": 3, "errors": true, "items": statuses.iter().map(|s| json!({"create": s})).collect::<Vec<_>>()})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn answers() {
        let ok = br#"{"took":1,"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(read_response(200, None, ok, 1).verdict, Verdict::Delivered);
        assert_eq!(
            read_response(200, None, br#"{"errors":false}"#, 3).verdict,
            Verdict::Delivered,
            "errors false is enough (filter_path may drop items)"
        );

        // A 409: stored before. All delivered.
        let body = items(&[
            json!({"status": 201}),
            json!({"status": 409, "error": {"type": "version_conflict_engine_exception"}}),
        ]);
        assert_eq!(
            read_response(200, None, &body, 2),
            BulkAnswer { verdict: Verdict::Delivered, reasons: vec![] }
        );

        let body = items(&[
            json!({"status": 201}),
            json!({"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}),
            json!({"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]"}}),
            json!({"status": 409}),
            json!({"status": 503}),
            json!({"status": 404, "error": "index_not_found"}),
            json!({"error": {"type": "?"}}),
        ]);
        assert_eq!(
            read_response(200, None, &body, 7),
            BulkAnswer {
                verdict: Verdict::Items { refused: vec![2, 5], retry: vec![1, 4, 6] },
                reasons: vec![
                    (2, "mapper_parsing_exception: failed to parse field [n]".into()),
                    (5, "index_not_found".into())
                ],
            }
        );
        let index_item = json!({"errors": true, "items": [{"index": {"status": 400}}]}).to_string();
        assert_eq!(
            read_response(200, None, index_item.as_bytes(), 1),
            BulkAnswer {
                verdict: Verdict::Items { refused: vec![0], retry: vec![] },
                reasons: vec![(0, "status 400".into())]
            }
        );
    }

    #[test]
    fn answers_that_do_not_match_the_part_are_retried() {
        let after = Some(Duration::from_secs(4));
        let retry = Verdict::Retry { after };
        assert_eq!(read_response(200, after, br#"{"errors":true}"#, 2).verdict, retry, "no items");
        assert_eq!(
            read_response(200, after, &items(&[json!({"status": 400})]), 2).verdict,
            retry,
            "one item for two lines"
        );
        assert_eq!(read_response(200, after, b"<html>", 1).verdict, retry, "not JSON");
        assert_eq!(read_response(200, after, b"{}", 1).verdict, retry, "no errors field");
        assert_eq!(read_response(200, None, b"", 1).verdict, Verdict::Retry { after: None });
    }

    #[test]
    fn http_errors() {
        assert_eq!(read_response(413, None, b"", 5).verdict, Verdict::Refused);
        assert_eq!(read_response(401, None, b"", 5).verdict, Verdict::Misconfigured);
        assert_eq!(read_response(500, None, b"", 5).verdict, Verdict::Retry { after: None });
        assert!(read_response(400, None, b"{}", 5).reasons.is_empty());
    }
}
