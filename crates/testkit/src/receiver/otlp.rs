//! OTLP/HTTP logs, `POST /v1/logs`: an `ExportLogsServiceRequest` decoded with the official
//! messages of `opentelemetry-proto`, as protobuf or as OTLP JSON (lowerCamelCase names,
//! 64-bit integers as strings, trace and span ids as hex), answered in the request's encoding.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::{json, Value};

use super::{Answer, Endpoint, State};

/// The official request type, re-exported for tests to build requests with.
pub use opentelemetry_proto::tonic::collector::logs::v1 as collector;
/// The official message modules (`common::v1`, `logs::v1`, `resource::v1`).
pub use opentelemetry_proto::tonic::{common, logs, resource};

/// A log record OTLP stored, with the resource and scope it came under. Attribute values and
/// the body are `AnyValue`s as JSON: strings, numbers (`intValue` as a JSON integer), booleans,
/// arrays, objects (`kvlistValue`); `bytesValue` as a hex string; an unset value as `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpRecord {
    pub resource: BTreeMap<String, Value>,
    pub scope_name: String,
    pub scope_version: String,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: Value,
    pub attributes: BTreeMap<String, Value>,
    /// Hex, empty when unset.
    pub trace_id: String,
    pub span_id: String,
    pub flags: u32,
    pub event_name: String,
}

/// Handles one export (its `Content-Encoding` already undone): 200 with the response in the
/// request's encoding, 400 if the body does not decode, 415 for another content type.
/// `partial` drops the request's last `rejected` records and says so in the response.
pub(crate) fn export(
    state: &mut State,
    content_type: &str,
    body: &[u8],
    partial: Option<(i64, String)>,
) -> Answer {
    let json = match content_type {
        "application/x-protobuf" => false,
        "application/json" => true,
        other => {
            return Answer::text(
                415,
                format!("{other:?} is not supported, use application/x-protobuf or application/json\n"),
            )
        }
    };
    let request: ExportLogsServiceRequest = if json {
        match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => {
                return Answer::text(
                    400,
                    format!("the body is not an OTLP JSON ExportLogsServiceRequest: {e}\n"),
                )
            }
        }
    } else {
        match prost::Message::decode(body) {
            Ok(request) => request,
            Err(e) => {
                return Answer::text(400, format!("the body is not an ExportLogsServiceRequest: {e}\n"))
            }
        }
    };
    let mut records = flatten(request);
    if let Some((rejected, _)) = &partial {
        let keep = records.len().saturating_sub(usize::try_from(*rejected).unwrap_or(0));
        records.truncate(keep);
    }
    state.note_stored(Endpoint::Otlp, records.len());
    if !state.count_only {
        state.otlp.extend(records);
    }
    let partial_success = partial.map(|(rejected_log_records, error_message)| ExportLogsPartialSuccess {
        rejected_log_records,
        error_message,
    });
    if json {
        // Written by hand: OTLP JSON wants the int64 as a string, which protobuf's JSON mapping
        // does and the crate's serde derive does not.
        let response = match partial_success {
            Some(p) => json!({"partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }}),
            None => json!({}),
        };
        Answer::json(200, &response)
    } else {
        let response = ExportLogsServiceResponse { partial_success };
        Answer {
            status: 200,
            content_type: "application/x-protobuf",
            body: prost::Message::encode_to_vec(&response),
        }
    }
}

fn flatten(request: ExportLogsServiceRequest) -> Vec<OtlpRecord> {
    let mut out = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = attributes(resource_logs.resource.map(|r| r.attributes).unwrap_or_default());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.unwrap_or_default();
            for record in scope_logs.log_records {
                out.push(OtlpRecord {
                    resource: resource.clone(),
                    scope_name: scope.name.clone(),
                    scope_version: scope.version.clone(),
                    time_unix_nano: record.time_unix_nano,
                    observed_time_unix_nano: record.observed_time_unix_nano,
                    severity_number: record.severity_number,
                    severity_text: record.severity_text,
                    body: record.body.map_or(Value::Null, value),
                    attributes: attributes(record.attributes),
                    trace_id: hex(&record.trace_id),
                    span_id: hex(&record.span_id),
                    flags: record.flags,
                    event_name: record.event_name,
                });
            }
        }
    }
    out
}

fn attributes(pairs: Vec<KeyValue>) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|kv| (kv.key, kv.value.map_or(Value::Null, value))).collect()
}

fn value(any: AnyValue) -> Value {
    match any.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        // NaN and infinities have no JSON number: null.
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.into_iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values.into_iter().map(|kv| (kv.key, kv.value.map_or(Value::Null, value))).collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(&b)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
