//! OTLP/HTTP logs (`POST /v1/logs`, OTLP 1.x): the request body and what the answer means.
//!
//! One `ResourceLogs` per program instance (its resource: `service.name`,
//! `service.instance.id`, `host.name` and the sink's static labels), with one `ScopeLogs`
//! (`steward`) holding its lines; the stream is a record attribute (`log.iostream`), so a
//! program's stdout and stderr stay one service.
//!
//! The messages are derived here with prost from the field numbers of
//! opentelemetry-proto (`logs/v1/logs.proto`, `common/v1/common.proto`,
//! `resource/v1/resource.proto`, `collector/logs/v1/logs_service.proto`), only the ones a
//! log export needs. The JSON encoding is the OTLP/JSON mapping of the same messages:
//! lowerCamelCase names, 64-bit integers as decimal strings, enums as integers, fields at
//! their default value left out.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};
use steward_core::config::{ShipEncoding, ShipSpec, SinkKind};
use steward_core::ship::verdict::{self, Verdict};

use super::batch::{Batch, Body, Stream};

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<ScopeLogs>,
    #[prost(string, tag = "3")]
    schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "2")]
    dropped_attributes_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<LogRecord>,
    #[prost(string, tag = "3")]
    schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InstrumentationScope {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
    #[prost(message, repeated, tag = "3")]
    attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "4")]
    dropped_attributes_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LogRecord {
    #[prost(fixed64, tag = "1")]
    time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    observed_time_unix_nano: u64,
    /// `SeverityNumber`, an enum: an int32 on the wire.
    #[prost(int32, tag = "2")]
    severity_number: i32,
    #[prost(string, tag = "3")]
    severity_text: String,
    #[prost(message, optional, tag = "5")]
    body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "7")]
    dropped_attributes_count: u32,
    #[prost(fixed32, tag = "8")]
    flags: u32,
    #[prost(bytes = "vec", tag = "9")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    span_id: Vec<u8>,
    #[prost(string, tag = "12")]
    event_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

/// No `value`: an empty value (JSON's null).
#[derive(Clone, PartialEq, prost::Message)]
struct AnyValue {
    #[prost(oneof = "Any", tags = "1, 2, 3, 4, 5, 6, 7")]
    value: Option<Any>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Any {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    #[prost(message, tag = "6")]
    Kvlist(KeyValueList),
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    values: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<ExportLogsPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsPartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_log_records: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// `SEVERITY_NUMBER_INFO` and `SEVERITY_NUMBER_ERROR`.
const INFO: i32 = 9;
const ERROR: i32 = 17;

/// The export request for the lines `part` (indices into `batch.lines`) of `batch`.
pub fn encode(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Body {
    let request = request(spec, batch, part);
    let (bytes, content_type) = match spec.encoding {
        ShipEncoding::Protobuf => (prost::Message::encode_to_vec(&request), "application/x-protobuf"),
        ShipEncoding::Json => (json::request(&request).to_string().into_bytes(), "application/json"),
    };
    let body = Body { bytes, content_type, content_encoding: None };
    if spec.gzip {
        body.gzipped()
    } else {
        body
    }
}

/// What the receiver's answer means, and its partial success, if it reported one:
/// `(rejected_log_records, error_message)`, when some were rejected or it says something.
/// Rejected records are not sent again (the spec says retrying them will not help): the
/// caller counts and logs them.
///
/// The body of a 2xx is an `ExportLogsServiceResponse`, protobuf or JSON as `content_type`
/// says (without one, a body starting with `{` is read as JSON). A 2xx with an empty or
/// unreadable body is still delivered.
pub fn read_response(
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<&str>,
    body: &[u8],
) -> (Verdict, Option<(i64, String)>) {
    let verdict = verdict::http(SinkKind::Otlp, status, retry_after);
    if verdict != Verdict::Delivered || body.is_empty() {
        return (verdict, None);
    }
    let is_json = match content_type {
        Some(t) => t.to_ascii_lowercase().contains("json"),
        None => body.trim_ascii_start().starts_with(b"{"),
    };
    let partial = if is_json {
        json::partial_success(body)
    } else {
        <ExportLogsServiceResponse as prost::Message>::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message))
    };
    (verdict, partial.filter(|(rejected, message)| *rejected > 0 || !message.is_empty()))
}

fn request(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> ExportLogsServiceRequest {
    let mut resources: Vec<ResourceLogs> = Vec::new();
    // One resource per program instance, in the order they first appear.
    let mut index: HashMap<(&str, &str, Option<u32>), usize> = HashMap::new();
    for line in part.iter().filter_map(|&i| batch.lines.get(i)) {
        let Some(origin) = batch.origins.get(line.origin) else { continue };
        let key = (origin.host.as_str(), origin.program.as_str(), origin.instance);
        let at = *index.entry(key).or_insert_with(|| {
            let mut attributes = vec![string("service.name", &origin.program)];
            if let Some(instance) = origin.instance {
                attributes.push(string("service.instance.id", &instance.to_string()));
            }
            attributes.push(string("host.name", &origin.host));
            attributes.extend(spec.labels.iter().map(|(k, v)| string(k, v)));
            resources.push(ResourceLogs {
                resource: Some(Resource { attributes, dropped_attributes_count: 0 }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "steward".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        attributes: Vec::new(),
                        dropped_attributes_count: 0,
                    }),
                    log_records: Vec::new(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
            resources.len() - 1
        });
        let text = String::from_utf8_lossy(&line.text);
        let body = match spec.parse_json {
            true => serde_json::from_str::<Map<String, Value>>(&text).ok().map(|o| any(Value::Object(o))),
            false => None,
        };
        let body = body.unwrap_or_else(|| AnyValue { value: Some(Any::String(text.into_owned())) });
        let (severity_number, severity_text) = match origin.stream {
            Stream::Out => (INFO, "INFO"),
            Stream::Err => (ERROR, "ERROR"),
        };
        let record = LogRecord {
            // Before 1970 cannot happen; 0 would mean "unknown", which is what it would be.
            time_unix_nano: u64::try_from(line.at).unwrap_or(0),
            observed_time_unix_nano: u64::try_from(line.observed).unwrap_or(0),
            severity_number,
            severity_text: severity_text.into(),
            body: Some(body),
            attributes: vec![
                string("log.iostream", origin.stream.name()),
                string("log.file.path", &origin.path),
                string("log.record.uid", &line.id),
            ],
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: Vec::new(),
            span_id: Vec::new(),
            event_name: String::new(),
        };
        resources[at].scope_logs[0].log_records.push(record);
    }
    ExportLogsServiceRequest { resource_logs: resources }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Any::String(value.into())) }) }
}

/// A JSON value as an `AnyValue`: integers that fit an i64 as ints, other numbers as
/// doubles, null as the empty value.
fn any(value: Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(Any::Bool(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Any::Int(i)),
            None => n.as_f64().map(Any::Double),
        },
        Value::String(s) => Some(Any::String(s)),
        Value::Array(items) => Some(Any::Array(ArrayValue { values: items.into_iter().map(any).collect() })),
        Value::Object(fields) => Some(Any::Kvlist(KeyValueList {
            values: fields.into_iter().map(|(key, v)| KeyValue { key, value: Some(any(v)) }).collect(),
        })),
    };
    AnyValue { value }
}

/// The OTLP/JSON mapping (OTLP spec, "JSON Protobuf Encoding"): the proto3 JSON mapping with
/// lowerCamelCase names and integer enums. Fields at their default are left out, as proto3
/// JSON writers do; values of a oneof are always written.
mod json {
    use serde_json::{json, Map, Value};

    use super::{Any, AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, ResourceLogs, ScopeLogs};

    pub(super) fn request(r: &ExportLogsServiceRequest) -> Value {
        json!({ "resourceLogs": r.resource_logs.iter().map(resource_logs).collect::<Vec<_>>() })
    }

    fn resource_logs(r: &ResourceLogs) -> Value {
        let mut out = Map::new();
        if let Some(resource) = &r.resource {
            let mut res = Map::new();
            put_attributes(&mut res, &resource.attributes);
            put_count(&mut res, "droppedAttributesCount", resource.dropped_attributes_count);
            out.insert("resource".into(), Value::Object(res));
        }
        out.insert("scopeLogs".into(), r.scope_logs.iter().map(scope_logs).collect());
        put_string(&mut out, "schemaUrl", &r.schema_url);
        Value::Object(out)
    }

    fn scope_logs(s: &ScopeLogs) -> Value {
        let mut out = Map::new();
        if let Some(scope) = &s.scope {
            let mut sc = Map::new();
            put_string(&mut sc, "name", &scope.name);
            put_string(&mut sc, "version", &scope.version);
            put_attributes(&mut sc, &scope.attributes);
            put_count(&mut sc, "droppedAttributesCount", scope.dropped_attributes_count);
            out.insert("scope".into(), Value::Object(sc));
        }
        out.insert("logRecords".into(), s.log_records.iter().map(log_record).collect());
        put_string(&mut out, "schemaUrl", &s.schema_url);
        Value::Object(out)
    }

    fn log_record(r: &LogRecord) -> Value {
        let mut out = Map::new();
        // fixed64: decimal strings, as JSON numbers lose precision past 2^53.
        if r.time_unix_nano != 0 {
            out.insert("timeUnixNano".into(), Value::String(r.time_unix_nano.to_string()));
        }
        if r.observed_time_unix_nano != 0 {
            out.insert("observedTimeUnixNano".into(), Value::String(r.observed_time_unix_nano.to_string()));
        }
        if r.severity_number != 0 {
            out.insert("severityNumber".into(), Value::from(r.severity_number));
        }
        put_string(&mut out, "severityText", &r.severity_text);
        if let Some(body) = &r.body {
            out.insert("body".into(), any_value(body));
        }
        put_attributes(&mut out, &r.attributes);
        put_count(&mut out, "droppedAttributesCount", r.dropped_attributes_count);
        if r.flags != 0 {
            out.insert("flags".into(), Value::from(r.flags));
        }
        // Trace and span ids are hex in OTLP/JSON, not base64.
        if !r.trace_id.is_empty() {
            out.insert("traceId".into(), Value::String(hex(&r.trace_id)));
        }
        if !r.span_id.is_empty() {
            out.insert("spanId".into(), Value::String(hex(&r.span_id)));
        }
        put_string(&mut out, "eventName", &r.event_name);
        Value::Object(out)
    }

    fn key_value(kv: &KeyValue) -> Value {
        let mut out = Map::new();
        out.insert("key".into(), Value::String(kv.key.clone()));
        if let Some(value) = &kv.value {
            out.insert("value".into(), any_value(value));
        }
        Value::Object(out)
    }

    fn any_value(v: &AnyValue) -> Value {
        match &v.value {
            None => json!({}),
            Some(Any::String(s)) => json!({ "stringValue": s }),
            Some(Any::Bool(b)) => json!({ "boolValue": b }),
            Some(Any::Int(i)) => json!({ "intValue": i.to_string() }),
            // A JSON line holds no NaN or infinity, so every double here is a JSON number.
            Some(Any::Double(d)) => json!({ "doubleValue": d }),
            Some(Any::Array(a)) => {
                json!({ "arrayValue": { "values": a.values.iter().map(any_value).collect::<Vec<_>>() } })
            }
            Some(Any::Kvlist(l)) => {
                json!({ "kvlistValue": { "values": l.values.iter().map(key_value).collect::<Vec<_>>() } })
            }
            Some(Any::Bytes(b)) => json!({ "bytesValue": base64(b) }),
        }
    }

    fn put_attributes(out: &mut Map<String, Value>, attributes: &[KeyValue]) {
        if !attributes.is_empty() {
            out.insert("attributes".into(), attributes.iter().map(key_value).collect());
        }
    }

    fn put_string(out: &mut Map<String, Value>, name: &str, value: &str) {
        if !value.is_empty() {
            out.insert(name.into(), Value::String(value.into()));
        }
    }

    fn put_count(out: &mut Map<String, Value>, name: &str, value: u32) {
        if value != 0 {
            out.insert(name.into(), Value::from(value));
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Standard base64 with padding, as proto3 JSON writes `bytes`.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// `partialSuccess` of a JSON `ExportLogsServiceResponse`. Parsers accept the proto field
    /// names too, and an int64 as a string or a number: so does this.
    pub(super) fn partial_success(body: &[u8]) -> Option<(i64, String)> {
        let response: Value = serde_json::from_slice(body).ok()?;
        let partial = response.get("partialSuccess").or_else(|| response.get("partial_success"))?;
        let rejected = match partial.get("rejectedLogRecords").or_else(|| partial.get("rejected_log_records"))
        {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let message = partial
            .get("errorMessage")
            .or_else(|| partial.get("error_message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        Some((rejected, message.to_owned()))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn base64_pads() {
            assert_eq!(super::base64(b""), "");
            assert_eq!(super::base64(b"f"), "Zg==");
            assert_eq!(super::base64(b"fo"), "Zm8=");
            assert_eq!(super::base64(b"foo"), "Zm9v");
            assert_eq!(super::base64(b"foob\xff"), "Zm9vYv8=");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use prost::Message;
    use serde_json::json;

    use super::*;
    use crate::ship::batch::{Line, Origin};

    fn spec(encoding: ShipEncoding, gzip: bool, parse_json: bool) -> ShipSpec {
        ShipSpec {
            encoding,
            gzip,
            parse_json,
            ..crate::ship::batch::test_spec(SinkKind::Otlp, "http://collector:4318")
        }
    }

    fn origin(program: &str, instance: Option<u32>, stream: Stream) -> Origin {
        Origin {
            host: "h1".into(),
            program: program.into(),
            instance,
            stream,
            path: format!("/logs/{program}.{}.log", stream.suffix()),
            pid: Some(9),
        }
    }

    fn line(origin: usize, at: i64, text: &[u8], id: &str) -> Line {
        Line { origin, at, observed: at + 5, text: text.to_vec(), id: id.into() }
    }

    /// web's stdout and stderr interleaved, and web:3's stdout.
    fn batch() -> Batch {
        Batch {
            origins: vec![origin("web", None, Stream::Out), origin("web", None, Stream::Err), origin("web", Some(3), Stream::Out)],
            lines: vec![
                line(0, 1_700_000_000_123_456_789, b"first", "a0"),
                line(2, 1_700_000_000_200_000_000, b"instance", "c0"),
                line(1, 1_700_000_001_000_000_000, b"bad \xc3(", "b0"),
                line(0, 1_700_000_002_000_000_000, br#"{"msg":"hi","n":-2,"big":18446744073709551615,"f":1.5,"ok":true,"none":null,"list":[1,"a"],"obj":{"k":"v"}}"#, "a1"),
            ],
        }
    }

    fn decode(body: &Body) -> ExportLogsServiceRequest {
        assert_eq!(body.content_type, "application/x-protobuf");
        ExportLogsServiceRequest::decode(body.bytes.as_slice()).expect("an ExportLogsServiceRequest")
    }

    fn attrs(kvs: &[KeyValue]) -> Vec<(&str, &str)> {
        kvs.iter()
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::String(s)) => (kv.key.as_str(), s.as_str()),
                other => panic!("{} is not a string: {other:?}", kv.key),
            })
            .collect()
    }

    fn text(s: &str) -> Option<AnyValue> {
        Some(AnyValue { value: Some(Any::String(s.into())) })
    }

    #[test]
    fn one_resource_per_instance_with_records_in_order() {
        let request = decode(&encode(&spec(ShipEncoding::Protobuf, false, false), &batch(), &[0, 1, 2, 3]));
        assert_eq!(request.resource_logs.len(), 2);
        let web = &request.resource_logs[0];
        assert_eq!(
            attrs(&web.resource.as_ref().unwrap().attributes),
            [("service.name", "web"), ("host.name", "h1"), ("env", "prod")]
        );
        assert_eq!(
            attrs(&request.resource_logs[1].resource.as_ref().unwrap().attributes),
            [("service.name", "web"), ("service.instance.id", "3"), ("host.name", "h1"), ("env", "prod")]
        );
        assert_eq!(web.scope_logs.len(), 1);
        let scope = web.scope_logs[0].scope.as_ref().unwrap();
        assert_eq!((scope.name.as_str(), scope.version.as_str()), ("steward", env!("CARGO_PKG_VERSION")));
        let records = &web.scope_logs[0].log_records;
        assert_eq!(records.len(), 3, "stdout and stderr of one instance share its resource");
        let first = &records[0];
        assert_eq!(first.time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(first.observed_time_unix_nano, 1_700_000_000_123_456_794);
        assert_eq!((first.severity_number, first.severity_text.as_str()), (INFO, "INFO"));
        assert_eq!(first.body, text("first"));
        assert_eq!(
            attrs(&first.attributes),
            [("log.iostream", "stdout"), ("log.file.path", "/logs/web.out.log"), ("log.record.uid", "a0")]
        );
        let err = &records[1];
        assert_eq!((err.severity_number, err.severity_text.as_str()), (ERROR, "ERROR"));
        assert_eq!(err.body, text("bad \u{fffd}("), "invalid UTF-8 is replaced");
        assert_eq!(attrs(&err.attributes)[0], ("log.iostream", "stderr"));
        assert!(matches!(&records[2].body, Some(AnyValue { value: Some(Any::String(_)) })), "parse_json off");
        assert_eq!(request.resource_logs[1].scope_logs[0].log_records[0].body, text("instance"));
    }

    #[test]
    fn json_lines_become_kvlists() {
        let request = decode(&encode(&spec(ShipEncoding::Protobuf, false, true), &batch(), &[3, 0]));
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records[1].body, text("first"), "not JSON: a string");
        let Some(AnyValue { value: Some(Any::Kvlist(list)) }) = &records[0].body else {
            panic!("not a kvlist: {:?}", records[0].body)
        };
        let fields: BTreeMap<&str, Option<&Any>> = list
            .values
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .collect();
        assert_eq!(fields["msg"], Some(&Any::String("hi".into())));
        assert_eq!(fields["n"], Some(&Any::Int(-2)));
        assert_eq!(fields["big"], Some(&Any::Double(18_446_744_073_709_551_615.0)), "past i64: a double");
        assert_eq!(fields["f"], Some(&Any::Double(1.5)));
        assert_eq!(fields["ok"], Some(&Any::Bool(true)));
        assert_eq!(fields["none"], None, "null: the empty value");
        assert_eq!(
            fields["list"],
            Some(&Any::Array(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Any::Int(1)) },
                    AnyValue { value: Some(Any::String("a".into())) }
                ]
            }))
        );
        assert_eq!(
            fields["obj"],
            Some(&Any::Kvlist(KeyValueList { values: vec![KeyValue { key: "k".into(), value: text("v") }] }))
        );
    }

    /// The bytes of one record, read by hand: the tags are the official field numbers.
    #[test]
    fn field_numbers_on_the_wire() {
        let batch =
            Batch { origins: vec![origin("w", None, Stream::Err)], lines: vec![line(0, 1, b"x", "i")] };
        let mut spec = spec(ShipEncoding::Protobuf, false, false);
        spec.labels.clear();
        let request = decode(&encode(&spec, &batch, &[0]));
        let record = request.resource_logs[0].scope_logs[0].log_records[0].encode_to_vec();
        let mut expected = vec![0x09]; // time_unix_nano = 1, fixed64
        expected.extend(1u64.to_le_bytes());
        expected.extend([0x10, 17]); // severity_number = 2, varint
        expected.extend([0x1a, 5]); // severity_text = 3
        expected.extend(b"ERROR");
        expected.extend([0x2a, 3, 0x0a, 1, b'x']); // body = 5 { string_value = 1 }
        assert_eq!(&record[..expected.len()], expected);
        let rest = &record[expected.len()..];
        assert_eq!(rest[0], 0x32, "attributes = 6");
        assert_eq!(
            &record[record.len() - 9..record.len() - 8],
            [0x59],
            "observed_time_unix_nano = 11, fixed64"
        );
        assert_eq!(&record[record.len() - 8..], 6u64.to_le_bytes());

        // AnyValue's oneof: bool = 2, int = 3, double = 4, array = 5, kvlist = 6, bytes = 7.
        let bytes = |v: Any| AnyValue { value: Some(v) }.encode_to_vec();
        assert_eq!(bytes(Any::Bool(true)), [0x10, 1]);
        assert_eq!(bytes(Any::Int(5)), [0x18, 5]);
        assert_eq!(bytes(Any::Double(0.0))[0], 0x21);
        assert_eq!(bytes(Any::Array(ArrayValue::default())), [0x2a, 0]);
        assert_eq!(bytes(Any::Kvlist(KeyValueList::default())), [0x32, 0]);
        assert_eq!(bytes(Any::Bytes(vec![7])), [0x3a, 1, 7]);
        // KeyValue { key = 1, value = 2 }; ResourceLogs { resource = 1, scope_logs = 2 }.
        assert_eq!(string("k", "v").encode_to_vec(), [0x0a, 1, b'k', 0x12, 3, 0x0a, 1, b'v']);
        let resource_logs = request.resource_logs[0].encode_to_vec();
        assert_eq!(resource_logs[0], 0x0a);
        assert_eq!(resource_logs[2 + usize::from(resource_logs[1])], 0x12);
        // ExportLogsServiceRequest.resource_logs = 1.
        assert_eq!(request.encode_to_vec()[0], 0x0a);
    }

    #[test]
    fn json_mapping() {
        let batch = Batch {
            origins: vec![origin("api", Some(2), Stream::Out)],
            lines: vec![line(0, 1_700_000_000_000_000_001, br#"{"a":[1,2.5,null],"b":false}"#, "id1")],
        };
        let body = encode(&spec(ShipEncoding::Json, false, true), &batch, &[0]);
        assert_eq!((body.content_type, body.content_encoding), ("application/json", None));
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        let s = |v: &str| json!({ "stringValue": v });
        assert_eq!(
            value,
            json!({"resourceLogs": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": s("api")},
                    {"key": "service.instance.id", "value": s("2")},
                    {"key": "host.name", "value": s("h1")},
                    {"key": "env", "value": s("prod")},
                ]},
                "scopeLogs": [{
                    "scope": {"name": "steward", "version": env!("CARGO_PKG_VERSION")},
                    "logRecords": [{
                        "timeUnixNano": "1700000000000000001",
                        "observedTimeUnixNano": "1700000000000000006",
                        "severityNumber": 9,
                        "severityText": "INFO",
                        "body": {"kvlistValue": {"values": [
                            {"key": "a", "value": {"arrayValue": {"values": [
                                {"intValue": "1"}, {"doubleValue": 2.5}, {}
                            ]}}},
                            {"key": "b", "value": {"boolValue": false}},
                        ]}},
                        "attributes": [
                            {"key": "log.iostream", "value": s("stdout")},
                            {"key": "log.file.path", "value": s("/logs/api.out.log")},
                            {"key": "log.record.uid", "value": s("id1")},
                        ],
                    }],
                }],
            }]})
        );
    }

    #[test]
    fn gzipped_bodies_decode() {
        let body = encode(&spec(ShipEncoding::Protobuf, true, false), &batch(), &[0, 2]);
        assert_eq!(body.content_encoding, Some("gzip"));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(body.bytes.as_slice()).read_to_end(&mut raw).unwrap();
        let request = ExportLogsServiceRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.resource_logs[0].scope_logs[0].log_records.len(), 2);

        let body = encode(&spec(ShipEncoding::Json, true, false), &batch(), &[1]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(body.bytes.as_slice()).read_to_string(&mut text).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"],
            json!({"stringValue": "instance"})
        );
    }

    #[test]
    fn responses() {
        let partial = |rejected: i64, message: &str| {
            ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message.into(),
                }),
            }
            .encode_to_vec()
        };
        let proto = Some("application/x-protobuf");
        assert_eq!(read_response(200, None, proto, &[]), (Verdict::Delivered, None));
        assert_eq!(read_response(200, None, proto, b"\xff\xff garbage"), (Verdict::Delivered, None));
        assert_eq!(
            read_response(200, None, proto, &partial(3, "too old")),
            (Verdict::Delivered, Some((3, "too old".into())))
        );
        assert_eq!(read_response(200, None, proto, &partial(0, "")), (Verdict::Delivered, None));
        assert_eq!(read_response(200, None, proto, &partial(0, "warning")).1, Some((0, "warning".into())));
        let json = Some("application/json; charset=utf-8");
        assert_eq!(
            read_response(
                200,
                None,
                json,
                br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"x"}}"#
            ),
            (Verdict::Delivered, Some((2, "x".into())))
        );
        assert_eq!(
            read_response(200, None, None, br#"{"partial_success":{"rejected_log_records":4}}"#).1,
            Some((4, String::new())),
            "no content type, proto names, a number"
        );
        assert_eq!(read_response(200, None, json, br#"{"partialSuccess":{}}"#), (Verdict::Delivered, None));
        assert_eq!(read_response(200, None, json, b"not json"), (Verdict::Delivered, None));
        let after = Some(Duration::from_secs(1));
        assert_eq!(read_response(503, after, proto, &partial(3, "x")), (Verdict::Retry { after }, None));
        assert_eq!(read_response(400, None, json, b"{}"), (Verdict::Refused, None));
        assert_eq!(
            read_response(500, None, None, b""),
            (Verdict::Refused, None),
            "OTLP: 500 is not retryable"
        );
    }
}
