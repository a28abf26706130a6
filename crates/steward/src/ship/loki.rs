//! Grafana Loki's push API (`POST /loki/api/v1/push`): the request body and what the answer
//! means.
//!
//! Lines are grouped into streams by their labels: `host`, `program`, `stream`, `instance`
//! (for a program with instances) and the sink's static labels. Everything that differs from
//! line to line (the pid, the line id, the fields of a JSON line) goes into the entry's
//! structured metadata instead: each distinct label set is a stream Loki indexes, so labels
//! must stay few and fixed.
//!
//! Two encodings: protobuf (the default; `logproto.PushRequest`, snappy-compressed in the block
//! format, as Loki requires) and JSON (gzipped when the sink says `gzip`). The protobuf
//! messages are written here from their field numbers, not generated from Loki's .proto.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};
use steward_core::config::{ShipEncoding, ShipSpec, SinkKind};
use steward_core::ship::loki_labels;
use steward_core::ship::verdict::{self, Verdict};

use super::batch::{Batch, Body};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`. `hash` stays 0: Loki computes it.
#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    line: String,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// One entry, before it is encoded either way.
struct Entry {
    at: i64,
    line: String,
    metadata: Vec<(String, String)>,
}

/// One stream: its labels as pairs (for JSON) and as a selector (for protobuf).
struct Stream {
    labels: Vec<(String, String)>,
    entries: Vec<Entry>,
}

/// The push request for the lines `part` (indices into `batch.lines`) of `batch`.
pub fn encode(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Body {
    let streams = group(spec, batch, part);
    match spec.encoding {
        ShipEncoding::Protobuf => protobuf(streams),
        ShipEncoding::Json => json(spec.gzip, streams),
    }
}

/// What Loki's answer means. Its 400 ("entry too far behind", "out of order", a line too
/// long) refuses a line for good, which is how [`verdict::http`] reads any 400.
pub fn verdict(status: u16, retry_after: Option<Duration>) -> Verdict {
    verdict::http(SinkKind::Loki, status, retry_after)
}

/// The part's lines as streams, in the order each stream first appears; each stream's lines
/// keep the part's order.
fn group(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Vec<Stream> {
    let mut streams: Vec<Stream> = Vec::new();
    // Lines of one origin always share a stream: look origins up once.
    let mut of_origin: HashMap<usize, usize> = HashMap::new();
    // Different origins may still share a stream (not today, as `stream` is a label, but
    // nothing here should depend on it): keyed by the rendered label set.
    let mut of_labels: HashMap<String, usize> = HashMap::new();
    for line in part.iter().filter_map(|&i| batch.lines.get(i)) {
        let Some(origin) = batch.origins.get(line.origin) else { continue };
        let index = *of_origin.entry(line.origin).or_insert_with(|| {
            let mut labels = vec![
                ("host".to_owned(), origin.host.clone()),
                ("program".to_owned(), origin.program.clone()),
                ("stream".to_owned(), origin.stream.name().to_owned()),
            ];
            if let Some(instance) = origin.instance {
                labels.push(("instance".to_owned(), instance.to_string()));
            }
            labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            let key = loki_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            *of_labels.entry(key).or_insert_with(|| {
                streams.push(Stream { labels, entries: Vec::new() });
                streams.len() - 1
            })
        });
        let text = String::from_utf8_lossy(&line.text).into_owned();
        let mut metadata = Vec::new();
        if let Some(pid) = origin.pid {
            metadata.push(("pid".to_owned(), pid.to_string()));
        }
        metadata.push(("id".to_owned(), line.id.clone()));
        if spec.parse_json {
            json_metadata(&text, &mut metadata);
        }
        streams[index].entries.push(Entry { at: line.at, line: text, metadata });
    }
    streams
}

/// With `parse = "json"`: the top-level fields of a line that is a JSON object, as
/// structured metadata (strings as they are, other values as compact JSON; nulls left out).
/// Names are made valid label names (`a.b` → `a_b`), as LogQL can only filter on those; a
/// field named like one of steward's own (`pid`, `id`) is left out, as those must stay
/// right.
fn json_metadata(text: &str, metadata: &mut Vec<(String, String)>) {
    let Ok(object) = serde_json::from_str::<Map<String, Value>>(text) else { return };
    for (key, value) in object {
        let name = label_name(&key);
        if metadata.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let value = match value {
            Value::Null => continue,
            Value::String(s) => s,
            other => other.to_string(),
        };
        metadata.push((name, value));
    }
}

/// `key` as a label name, `[a-zA-Z_][a-zA-Z0-9_]*`: other characters become `_`.
fn label_name(key: &str) -> String {
    let mut name: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn protobuf(streams: Vec<Stream>) -> Body {
    let request = PushRequest {
        streams: streams
            .into_iter()
            .map(|s| StreamAdapter {
                labels: loki_labels(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                entries: s
                    .entries
                    .into_iter()
                    .map(|e| EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: e.at.div_euclid(1_000_000_000),
                            nanos: e.at.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: e.line,
                        structured_metadata: e
                            .metadata
                            .into_iter()
                            .map(|(name, value)| LabelPairAdapter { name, value })
                            .collect(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    let message = prost::Message::encode_to_vec(&request);
    // Snappy fails only on inputs of about 4 GiB, far over any batch; sending the message
    // uncompressed then makes Loki answer 400, and the part is split.
    let bytes = snap::raw::Encoder::new().compress_vec(&message).unwrap_or(message);
    Body { bytes, content_type: "application/x-protobuf", content_encoding: None }
}

fn json(gzip: bool, streams: Vec<Stream>) -> Body {
    let streams: Vec<Value> = streams
        .into_iter()
        .map(|s| {
            let labels: Map<String, Value> =
                s.labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let values: Vec<Value> = s
                .entries
                .into_iter()
                .map(|e| {
                    let metadata: Map<String, Value> =
                        e.metadata.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                    // The time is a string of nanoseconds: a JSON number would lose digits.
                    Value::Array(vec![
                        Value::String(e.at.to_string()),
                        Value::String(e.line),
                        Value::Object(metadata),
                    ])
                })
                .collect();
            serde_json::json!({ "stream": labels, "values": values })
        })
        .collect();
    let bytes = serde_json::json!({ "streams": streams }).to_string().into_bytes();
    let body = Body { bytes, content_type: "application/json", content_encoding: None };
    if gzip {
        body.gzipped()
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use prost::Message;

    use super::*;
    use crate::ship::batch::{Line, Origin, Stream as Which};

    fn spec(encoding: ShipEncoding, gzip: bool, parse_json: bool) -> ShipSpec {
        ShipSpec {
            encoding,
            gzip,
            parse_json,
            ..crate::ship::batch::test_spec(SinkKind::Loki, "http://loki:3100")
        }
    }

    fn origin(program: &str, instance: Option<u32>, stream: Which, pid: Option<u32>) -> Origin {
        Origin {
            host: "h1".into(),
            program: program.into(),
            instance,
            stream,
            path: format!("/var/log/steward/{program}.{}.log", stream.suffix()),
            pid,
        }
    }

    fn line(origin: usize, at: i64, text: &[u8], id: &str) -> Line {
        Line { origin, at, observed: at + 5, text: text.to_vec(), id: id.into() }
    }

    /// web's stdout and stderr interleaved, and web:3's stdout.
    fn batch() -> Batch {
        Batch {
            origins: vec![
                origin("web", None, Which::Out, Some(42)),
                origin("web", None, Which::Err, None),
                origin("web", Some(3), Which::Out, Some(7)),
            ],
            lines: vec![
                line(0, 1_700_000_000_123_456_789, b"first", "a0"),
                line(1, 1_700_000_000_200_000_000, b"oops \xff\xfe", "b0"),
                line(
                    0,
                    1_700_000_001_000_000_000,
                    br#"{"level":"info","n":2,"a.b":{"c":[1]},"id":"x","z":null}"#,
                    "a1",
                ),
                line(2, 1_700_000_002_000_000_000, b"instance", "c0"),
                line(0, 1_700_000_003_000_000_000, b"third", "a2"),
            ],
        }
    }

    fn decode_protobuf(body: &Body) -> PushRequest {
        assert_eq!(body.content_type, "application/x-protobuf");
        assert_eq!(body.content_encoding, None);
        let raw = snap::raw::Decoder::new().decompress_vec(&body.bytes).expect("snappy block format");
        PushRequest::decode(raw.as_slice()).expect("a PushRequest")
    }

    fn pairs(metadata: &[LabelPairAdapter]) -> Vec<(&str, &str)> {
        metadata.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect()
    }

    #[test]
    fn protobuf_groups_streams_in_order_with_metadata() {
        let body = encode(&spec(ShipEncoding::Protobuf, true, false), &batch(), &[0, 1, 2, 3, 4]);
        let request = decode_protobuf(&body);
        let labels: Vec<&str> = request.streams.iter().map(|s| s.labels.as_str()).collect();
        assert_eq!(
            labels,
            [
                r#"{env="prod", host="h1", program="web", stream="stdout"}"#,
                r#"{env="prod", host="h1", program="web", stream="stderr"}"#,
                r#"{env="prod", host="h1", instance="3", program="web", stream="stdout"}"#,
            ]
        );
        let out = &request.streams[0].entries;
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["first", r#"{"level":"info","n":2,"a.b":{"c":[1]},"id":"x","z":null}"#, "third"]);
        assert_eq!(out[0].timestamp, Some(Timestamp { seconds: 1_700_000_000, nanos: 123_456_789 }));
        assert_eq!(pairs(&out[0].structured_metadata), [("pid", "42"), ("id", "a0")]);
        assert_eq!(pairs(&out[1].structured_metadata), [("pid", "42"), ("id", "a1")], "parse_json is off");
        let err = &request.streams[1].entries[0];
        assert_eq!(err.line, "oops \u{fffd}\u{fffd}", "invalid UTF-8 is replaced");
        assert_eq!(pairs(&err.structured_metadata), [("id", "b0")], "no pid when unknown");
        assert_eq!(request.streams[2].entries[0].line, "instance");
        assert!(request.streams.iter().all(|s| s.hash == 0));
    }

    #[test]
    fn a_part_carries_only_its_lines() {
        let request =
            decode_protobuf(&encode(&spec(ShipEncoding::Protobuf, false, false), &batch(), &[4, 3]));
        assert_eq!(request.streams.len(), 2);
        assert_eq!(request.streams[0].entries[0].line, "third", "the part's order");
        assert_eq!(request.streams[1].entries[0].line, "instance");
        assert!(decode_protobuf(&encode(&spec(ShipEncoding::Protobuf, false, false), &batch(), &[]))
            .streams
            .is_empty());
    }

    #[test]
    fn protobuf_field_numbers() {
        let batch = Batch {
            origins: vec![origin("w", None, Which::Out, None)],
            lines: vec![line(0, 1_000_000_002, b"L", "i")],
        };
        let mut spec = spec(ShipEncoding::Protobuf, false, false);
        spec.labels.clear();
        let body = encode(&spec, &batch, &[0]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body.bytes).unwrap();
        let labels = br#"{host="h1", program="w", stream="stdout"}"#;
        // PushRequest.streams = 1 (LEN)
        assert_eq!(raw[0], 1 << 3 | 2);
        // StreamAdapter: labels = 1 (LEN), then entries = 2 (LEN).
        let stream = &raw[2..];
        assert_eq!(stream[0], 1 << 3 | 2);
        assert_eq!(usize::from(stream[1]), labels.len());
        assert_eq!(&stream[2..2 + labels.len()], labels);
        let entry = &stream[2 + labels.len()..];
        assert_eq!(entry[0], 2 << 3 | 2);
        // EntryAdapter: timestamp = 1 {seconds = 1: 1, nanos = 2: 2}, line = 2 "L",
        // structuredMetadata = 3 {name = 1 "id", value = 2 "i"}.
        assert_eq!(
            &entry[2..],
            [0x0a, 4, 0x08, 1, 0x10, 2, 0x12, 1, b'L', 0x1a, 7, 0x0a, 2, b'i', b'd', 0x12, 1, b'i']
        );
    }

    #[test]
    fn json_lines_add_their_fields_as_metadata() {
        let request = decode_protobuf(&encode(&spec(ShipEncoding::Protobuf, false, true), &batch(), &[2, 0]));
        let entries = &request.streams[0].entries;
        assert_eq!(
            entries[0].line, r#"{"level":"info","n":2,"a.b":{"c":[1]},"id":"x","z":null}"#,
            "text unchanged"
        );
        assert_eq!(
            pairs(&entries[0].structured_metadata),
            [("pid", "42"), ("id", "a1"), ("a_b", r#"{"c":[1]}"#), ("level", "info"), ("n", "2")],
            "a field `id` does not replace the line id; null is left out"
        );
        assert_eq!(pairs(&entries[1].structured_metadata), [("pid", "42"), ("id", "a0")], "not JSON");
        assert_eq!(label_name("1x-y"), "_1x_y");
        assert_eq!(label_name("ok_1"), "ok_1");
    }

    #[test]
    fn json_body_gzipped() {
        let body = encode(&spec(ShipEncoding::Json, true, false), &batch(), &[0, 1, 3]);
        assert_eq!(body.content_type, "application/json");
        assert_eq!(body.content_encoding, Some("gzip"));
        let mut text = String::new();
        flate2::read::GzDecoder::new(body.bytes.as_slice()).read_to_string(&mut text).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"streams": [
                {"stream": {"host": "h1", "program": "web", "stream": "stdout", "env": "prod"},
                 "values": [["1700000000123456789", "first", {"pid": "42", "id": "a0"}]]},
                {"stream": {"host": "h1", "program": "web", "stream": "stderr", "env": "prod"},
                 "values": [["1700000000200000000", "oops \u{fffd}\u{fffd}", {"id": "b0"}]]},
                {"stream": {"host": "h1", "program": "web", "stream": "stdout", "instance": "3", "env": "prod"},
                 "values": [["1700000002000000000", "instance", {"pid": "7", "id": "c0"}]]},
            ]})
        );
    }

    #[test]
    fn json_body_plain() {
        let body = encode(&spec(ShipEncoding::Json, false, true), &batch(), &[2]);
        assert_eq!(body.content_encoding, None);
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(value["streams"][0]["values"][0][2]["level"], "info");
        assert_eq!(value["streams"][0]["values"][0][2]["n"], "2");
    }

    #[test]
    fn protobuf_is_never_gzipped() {
        let body = encode(&spec(ShipEncoding::Protobuf, true, false), &batch(), &[0]);
        assert_eq!(body.content_encoding, None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(204, None), Verdict::Delivered);
        assert_eq!(verdict(400, None), Verdict::Refused);
        assert_eq!(verdict(500, None), Verdict::Retry { after: None });
        let after = Some(Duration::from_secs(2));
        assert_eq!(verdict(429, after), Verdict::Retry { after });
    }
}
