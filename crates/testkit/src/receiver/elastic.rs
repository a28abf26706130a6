//! Elasticsearch's (and OpenSearch's) bulk API, `POST /_bulk` and `POST /{index}/_bulk`, with
//! `create` and `index` actions, answered item by item in the real shape.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{Answer, Endpoint, State};

/// A document Elasticsearch stored (`index` over an existing id replaces it in place).
#[derive(Debug, Clone, PartialEq)]
pub struct EsDoc {
    pub index: String,
    pub id: String,
    pub source: Value,
    /// 1 when created, +1 per `index` over it.
    pub version: u64,
}

/// Where each (index, id) is in `State::elastic`; the counters of generated ids and of writes
/// (`_seq_no`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ids {
    at: HashMap<(String, String), usize>,
    generated: u64,
    writes: u64,
}

/// Handles one bulk body (its `Content-Encoding` already undone). A body that is not NDJSON
/// ending in a newline, or an action line that is not one, gets a 400 for the whole request
/// and nothing is stored, as in Elasticsearch; the rest is answered per item. `reject` lists
/// the item positions to answer 429.
pub(crate) fn bulk(state: &mut State, default_index: Option<&str>, body: &[u8], reject: &[usize]) -> Answer {
    let start = Instant::now();
    let actions = match parse(body) {
        Ok(actions) => actions,
        Err(reason) => {
            return Answer::json(
                400,
                &json!({
                    "error": {
                        "root_cause": [{"type": "illegal_argument_exception", "reason": reason}],
                        "type": "illegal_argument_exception",
                        "reason": reason,
                    },
                    "status": 400,
                }),
            );
        }
    };
    let mut items = Vec::with_capacity(actions.len());
    let mut errors = false;
    for (position, action) in actions.into_iter().enumerate() {
        let action_kind = action.kind;
        let item = apply(state, default_index, action, reject.contains(&position));
        let status =
            item.get(action_kind).and_then(|i| i.get("status")).and_then(Value::as_u64).unwrap_or(500);
        errors |= status >= 300;
        items.push(item);
    }
    let took = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Answer::json(200, &json!({"took": took, "errors": errors, "items": items}))
}

struct Action {
    /// `create` or `index`.
    kind: &'static str,
    index: Option<String>,
    id: Option<String>,
    /// The source line, parsed if it is JSON.
    source: Result<Value, String>,
}

fn parse(body: &[u8]) -> Result<Vec<Action>, String> {
    if body.is_empty() {
        return Err("request body is required".into());
    }
    if !body.ends_with(b"\n") {
        return Err("The bulk request must be terminated by a newline [\\n]".into());
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("the bulk body is not UTF-8: {e}"))?;
    let mut lines = text.split('\n').enumerate().filter(|(_, l)| !l.trim().is_empty());
    let mut actions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let malformed = || format!("Malformed action/metadata line [{}], expected START_OBJECT", n + 1);
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else { return Err(malformed()) };
        let (kind, meta) = match map.iter().next() {
            Some((k, Value::Object(meta))) if map.len() == 1 => (k.as_str(), meta),
            _ => return Err(malformed()),
        };
        let kind = match kind {
            "create" => "create",
            "index" => "index",
            other => {
                return Err(format!(
                    "Malformed action/metadata line [{}], expected one of [create, index] but found [{other}] \
                     (this fake receiver handles create and index only)",
                    n + 1
                ));
            }
        };
        let string = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_owned);
        let Some((_, source)) = lines.next() else {
            return Err(format!("the {kind} action at line [{}] has no source line", n + 1));
        };
        let source = match serde_json::from_str::<Value>(source) {
            Ok(Value::Object(map)) => Ok(Value::Object(map)),
            Ok(other) => Err(format!("failed to parse, document is not an object but {}", kind_of(&other))),
            Err(e) => Err(format!("failed to parse: {e}")),
        };
        actions.push(Action { kind, index: string("_index"), id: string("_id"), source });
    }
    Ok(actions)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One item of the answer, `{"<kind>": {...}}`, having stored the document if it passed.
fn apply(state: &mut State, default_index: Option<&str>, action: Action, reject: bool) -> Value {
    let kind = action.kind;
    let mut item = Map::new();
    let Some(index) = action.index.or(default_index.map(str::to_owned)) else {
        item.insert("_index".into(), Value::Null);
        item.insert("_id".into(), action.id.map_or(Value::Null, Value::String));
        return failed(
            kind,
            item,
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;",
        );
    };
    let id = action.id.unwrap_or_else(|| {
        state.elastic_ids.generated += 1;
        format!("fake-{:016}", state.elastic_ids.generated)
    });
    item.insert("_index".into(), json!(index));
    item.insert("_id".into(), json!(id));
    if reject {
        state.elastic_rejected += 1;
        let reason = "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, \
                      replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0] \
                      (injected by the fake receiver)";
        return failed(kind, item, 429, "es_rejected_execution_exception", reason);
    }
    let source = match action.source {
        Ok(source) => source,
        Err(reason) => return failed(kind, item, 400, "mapper_parsing_exception", &reason),
    };
    let key = (index.clone(), id.clone());
    let (status, version) = match (state.elastic_ids.at.get(&key).copied(), kind) {
        (Some(at), "create") => {
            state.elastic_conflicts += 1;
            let current = state.elastic[at].version;
            let reason =
                format!("[{id}]: version conflict, document already exists (current version [{current}])");
            return failed(kind, item, 409, "version_conflict_engine_exception", &reason);
        }
        (Some(at), _) => {
            let doc = &mut state.elastic[at];
            doc.version += 1;
            if !state.count_only {
                doc.source = source;
            }
            (200, doc.version)
        }
        (None, _) => {
            state.elastic_ids.at.insert(key, state.elastic.len());
            // Counting only: the id and version stay, for the conflict rule; the source goes.
            let source = if state.count_only { Value::Null } else { source };
            state.elastic.push(EsDoc { index, id, source, version: 1 });
            state.note_stored(Endpoint::Elastic, 1);
            (201, 1)
        }
    };
    item.insert("_version".into(), json!(version));
    item.insert("result".into(), json!(if status == 201 { "created" } else { "updated" }));
    item.insert("_shards".into(), json!({"total": 2, "successful": 1, "failed": 0}));
    item.insert("_seq_no".into(), json!(state.elastic_ids.writes));
    state.elastic_ids.writes += 1;
    item.insert("_primary_term".into(), json!(1));
    item.insert("status".into(), json!(status));
    json!({ kind: item })
}

fn failed(kind: &str, mut item: Map<String, Value>, status: u16, error: &str, reason: &str) -> Value {
    let index = item.get("_index").cloned().unwrap_or(Value::Null);
    item.insert("status".into(), json!(status));
    item.insert("error".into(), json!({"type": error, "reason": reason, "index": index, "shard": "0"}));
    json!({ kind: item })
}
