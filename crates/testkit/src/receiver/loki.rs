//! Loki's push API, `POST /loki/api/v1/push`, and the rules Loki applies to what it is pushed.
//!
//! The protobuf messages are derived here by hand from the field numbers of Loki's
//! `logproto.PushRequest` (no .proto file is vendored: Loki is AGPL); tests encode with them
//! too. The body of an `application/x-protobuf` push is the message compressed with snappy's
//! *block* format (`snap::raw`), not its framed one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::time::Duration;

use serde_json::Value;

use super::{Answer, Endpoint, State};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: `labels` is a Prometheus label set, `{app="api", env="prod"}`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_ns(ns: i128) -> Timestamp {
        Timestamp { seconds: ns.div_euclid(1_000_000_000) as i64, nanos: ns.rem_euclid(1_000_000_000) as i32 }
    }

    pub fn to_ns(self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// An entry Loki stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiEntry {
    pub labels: BTreeMap<String, String>,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i128,
    pub line: String,
    pub metadata: BTreeMap<String, String>,
}

/// Per stream (by its canonical label string): what the ordering and duplicate rules need.
#[derive(Debug, Clone, Default)]
pub(crate) struct Streams(HashMap<String, StreamState>);

#[derive(Debug, Clone, Default)]
struct StreamState {
    newest: i128,
    /// Entries stored in the stream.
    stored: u64,
    /// Every (timestamp, line) stored, for the duplicate rule.
    seen: HashSet<(i128, String)>,
    /// The same as [`fingerprint`]s, instead, when counting only.
    fingerprints: HashSet<u64>,
}

/// A 64-bit hash of an entry, for the duplicate rule when counting only: two different
/// entries of a stream of a million collide with a chance of about 1 in 37 million.
fn fingerprint(ts: i128, line: &str) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the same entry hashes the same all run long.
    let mut hasher = DefaultHasher::new();
    (ts, line).hash(&mut hasher);
    hasher.finish()
}

/// One stream of a push, decoded from either encoding; labels still as sent.
#[derive(Debug)]
pub(crate) struct Stream {
    labels: Result<BTreeMap<String, String>, String>,
    entries: Vec<(i128, String, BTreeMap<String, String>)>,
}

/// Decodes a push body (its `Content-Encoding` already undone); a body that does not decode
/// gets Loki's 400 and stores nothing.
pub(crate) fn decode(content_type: &str, body: &[u8]) -> Result<Vec<Stream>, Answer> {
    if content_type == "application/json" {
        decode_json(body).map_err(|e| Answer::text(400, format!("{e}\n")))
    } else {
        // Loki reads anything that is not JSON as snappy-compressed protobuf.
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| Answer::text(400, format!("snappy: corrupt input: {e}\n")))?;
        let push = <PushRequest as prost::Message>::decode(raw.as_slice())
            .map_err(|e| Answer::text(400, format!("proto: {e}\n")))?;
        Ok(push
            .streams
            .into_iter()
            .map(|s| Stream {
                labels: parse_labels(&s.labels),
                entries: s
                    .entries
                    .into_iter()
                    .map(|e| {
                        let ts = e.timestamp.unwrap_or_default().to_ns();
                        let meta = e.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect();
                        (ts, e.line, meta)
                    })
                    .collect(),
            })
            .collect())
    }
}

fn decode_json(body: &[u8]) -> Result<Vec<Stream>, String> {
    let push: Value = serde_json::from_slice(body).map_err(|e| format!("JSON: {e}"))?;
    let streams = push.get("streams").and_then(Value::as_array).ok_or("JSON: no \"streams\" array")?;
    streams
        .iter()
        .map(|stream| {
            let labels = match stream.get("stream") {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(v) => Ok((k.clone(), v.clone())),
                        _ => Err(format!("JSON: label {k} is not a string")),
                    })
                    .collect(),
                Some(_) => Err("JSON: \"stream\" is not an object".to_owned()),
            }?;
            let values =
                stream.get("values").and_then(Value::as_array).ok_or("JSON: a stream has no \"values\"")?;
            let entries = values.iter().map(json_entry).collect::<Result<_, _>>()?;
            Ok(Stream { labels: check_labels(labels), entries })
        })
        .collect()
}

/// `["<unix ns>", "line"]` or `["<unix ns>", "line", {"name": "value"}]`.
fn json_entry(value: &Value) -> Result<(i128, String, BTreeMap<String, String>), String> {
    let bad = || format!("JSON: bad entry {value}: want [\"<unix ns>\", \"line\", {{metadata}}?]");
    let items = value.as_array().filter(|a| a.len() == 2 || a.len() == 3).ok_or_else(bad)?;
    let ts = items[0].as_str().and_then(|s| s.parse::<i128>().ok()).ok_or_else(bad)?;
    let line = items[1].as_str().ok_or_else(bad)?.to_owned();
    let mut metadata = BTreeMap::new();
    if let Some(meta) = items.get(2) {
        for (k, v) in meta.as_object().ok_or_else(bad)? {
            metadata.insert(k.clone(), v.as_str().ok_or_else(bad)?.to_owned());
        }
    }
    Ok((ts, line, metadata))
}

/// Applies Loki's rules to a decoded push and stores what passes: 204, or 400 listing what was
/// refused (the rest still stored, as Loki does).
pub(crate) fn store(state: &mut State, push: Vec<Stream>, window: Duration) -> Answer {
    let window = i128::try_from(window.as_nanos()).unwrap_or(i128::MAX);
    let count_only = state.count_only;
    let mut stored = 0;
    let mut errors = String::new();
    for stream in push {
        let labels = match stream.labels {
            Ok(labels) => labels,
            Err(e) => {
                let _ = writeln!(errors, "{e}");
                continue;
            }
        };
        let key = format_labels(&labels);
        let (mut refused, total) = (0, stream.entries.len());
        for (ts, line, metadata) in stream.entries {
            let s = state.loki_streams.0.entry(key.clone()).or_default();
            // Duplicates first, at any age: Loki drops a repeat of a stream's last entry at
            // any age and other exact duplicates inside its window (its head block), so a
            // retried push is answered 204 whatever the window here. (Real Loki would refuse
            // an old duplicate other than the last entry as too far behind.)
            let fingerprint = count_only.then(|| fingerprint(ts, &line));
            let duplicate = match fingerprint {
                Some(f) => s.fingerprints.contains(&f),
                None => s.seen.contains(&(ts, line.clone())),
            };
            if duplicate {
                state.loki_duplicates += 1;
                continue;
            }
            if s.stored > 0 && ts < s.newest.saturating_sub(window) {
                let cutoff = s.newest - window;
                let _ = writeln!(
                    errors,
                    "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, \
                     oldest acceptable timestamp is: {}',",
                    go_time(ts),
                    go_time(ts),
                    go_time(cutoff),
                );
                refused += 1;
                state.loki_out_of_order += 1;
                continue;
            }
            s.stored += 1;
            s.newest = s.newest.max(ts);
            stored += 1;
            match fingerprint {
                Some(f) => {
                    s.fingerprints.insert(f);
                }
                None => {
                    s.seen.insert((ts, line.clone()));
                    state.loki.push(LokiEntry { labels: labels.clone(), ts_ns: ts, line, metadata });
                }
            }
        }
        if refused > 0 {
            let _ =
                writeln!(errors, "user 'fake', total ignored: {refused} out of {total} for stream: {key}");
        }
    }
    state.note_stored(Endpoint::Loki, stored);
    if errors.is_empty() {
        Answer { status: 204, content_type: "text/plain; charset=utf-8", body: Vec::new() }
    } else {
        Answer::text(400, errors)
    }
}

fn check_labels(labels: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    if labels.is_empty() {
        return Err("error at least one label pair is required per stream".to_owned());
    }
    if let Some(name) = labels.keys().find(|n| !valid_name(n)) {
        return Err(format!("error parsing labels: invalid label name {name:?}"));
    }
    Ok(labels)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a Prometheus label set, `{app="api", msg="say \"hi\""}`, as Loki does: names
/// `[a-zA-Z_][a-zA-Z0-9_]*`, double-quoted values with `\"`, `\\` and `\n` escapes, no name
/// twice, at least one pair.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let fail = |why: &str| Err(format!("error parsing labels {text:?}: {why}"));
    let mut rest = text.trim();
    let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return fail("want {name=\"value\", ...}");
    };
    rest = inner.trim_start();
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..end];
        if !valid_name(name) {
            return fail(&format!("invalid label name at {rest:?}"));
        }
        rest = rest[end..].trim_start();
        let Some(after) = rest.strip_prefix('=').map(str::trim_start).and_then(|r| r.strip_prefix('"'))
        else {
            return fail(&format!("want =\"value\" after {name}"));
        };
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return fail(&format!("unterminated value of {name}")),
                Some((i, '"')) => break i + 1,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '"')) => value.push('"'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return fail(&format!("bad escape in the value of {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return fail(&format!("label {name} twice"));
        }
        rest = after[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return fail(&format!("want , or }} at {rest:?}")),
        }
    }
    check_labels(labels)
}

/// The canonical form of a label set, as Loki prints it: sorted, `{a="1", b="2"}`, with `"`,
/// `\` and newlines escaped.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A push request body as a shipper sends it: protobuf, snappy block format.
pub fn encode_protobuf(push: &PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(push))
        .expect("snappy compresses any input")
}

/// A time as Go prints it (`2024-05-01 10:00:00.000000001 +0000 UTC`), which Loki's messages use.
fn go_time(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let frac =
        if nanos == 0 { String::new() } else { format!(".{nanos:09}").trim_end_matches('0').to_owned() };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i128::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_escapes_and_print_back() {
        let labels = parse_labels(r#"{ job="a\"b\\c" , env="prod"}"#).unwrap();
        assert_eq!(labels["job"], "a\"b\\c");
        assert_eq!(labels["env"], "prod");
        assert_eq!(format_labels(&labels), r#"{env="prod", job="a\"b\\c"}"#);
        assert_eq!(parse_labels(&format_labels(&labels)).unwrap(), labels);
    }

    #[test]
    fn bad_label_sets_are_errors() {
        for bad in [
            "",
            "{}",
            "job=\"a\"",
            "{job=a}",
            "{job=\"a}",
            "{1x=\"a\"}",
            "{a=\"1\" b=\"2\"}",
            "{a=\"1\",a=\"2\"}",
            "{a=\"\\x\"}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn go_time_formats_like_go() {
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_714_557_600_000_000_001), "2024-05-01 10:00:00.000000001 +0000 UTC");
        assert_eq!(go_time(951_782_400_500_000_000), "2000-02-29 00:00:00.5 +0000 UTC");
    }
}
