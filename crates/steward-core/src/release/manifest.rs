//! The release manifest (schema 1): what a publisher signs, checked field by field.
//!
//! The JSON is read into a loose value first and each field is then checked on its own, so a
//! mistake names its field (`artifacts[1].sha256`) and says what is wrong, instead of serde's
//! bare "invalid type" at a line and column. The schema is read before anything else: a newer
//! schema may have changed every other field, and the useful answer is "update steward".
//! Unknown fields are ignored, so a publisher can add some without breaking older stewards.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::Version;

/// The schema this steward reads.
pub const SCHEMA: u64 = 1;

/// The target of an artifact that runs anywhere (scripts: a Python or Node app).
pub const ANY_TARGET: &str = "any";

/// A checked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub schema: u64,
    /// The program it is for: must be the program it is deployed to.
    pub name: String,
    pub version: Version,
    pub published: Option<SystemTime>,
    /// After this the manifest is refused: an old signed manifest cannot be replayed forever.
    pub expires: SystemTime,
    /// Never empty.
    pub artifacts: Vec<Artifact>,
}

/// One archive of the release, for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// `linux-x86_64`, `windows-x86_64`, `macos-aarch64`... or [`ANY_TARGET`].
    pub target: String,
    /// Relative to the manifest's own location, or absolute (http, https or file).
    pub url: String,
    pub sha256: [u8; 32],
    /// In bytes; more than 0.
    pub size: u64,
}

impl Artifact {
    /// Whether it runs on `target`: built for it, or for any target.
    pub fn runs_on(&self, target: &str) -> bool {
        self.target == target || self.target == ANY_TARGET
    }

    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a manifest was refused. The `Display` says which field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error("manifest schema {0} is newer than this steward reads; update steward")]
    SchemaTooNew(u64),
    /// `field` is its path in the manifest: `version`, `artifacts[0].sha256`.
    #[error("manifest field `{field}`: {problem}")]
    Field { field: String, problem: String },
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError::Field { field: field.into(), problem: problem.into() }
}

impl Manifest {
    /// Parses and checks a manifest. Never panics, whatever the bytes.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(ManifestError::NotJson(format!("the top level is {}, not an object", kind(&value))));
        };
        let schema = match top.get("schema") {
            None => return Err(field_error("schema", format!("is missing: write `\"schema\": {SCHEMA}`"))),
            Some(v) => v.as_u64().ok_or_else(|| {
                field_error("schema", format!("must be a whole number such as {SCHEMA}, found {}", show(v)))
            })?,
        };
        if schema > SCHEMA {
            return Err(ManifestError::SchemaTooNew(schema));
        }
        if schema < SCHEMA {
            return Err(field_error("schema", format!("is {schema}; the first schema is {SCHEMA}")));
        }
        let name = non_empty_string(&top, "name", "name")?;
        let version_text = non_empty_string(&top, "version", "version")?;
        let version = Version::parse(&version_text).map_err(|e| {
            field_error(
                "version",
                format!("\"{}\" is not a semantic version such as 1.4.0: {e}", clip(&version_text)),
            )
        })?;
        let published = match top.get("published") {
            None | Some(Value::Null) => None,
            Some(_) => Some(time(&top, "published")?),
        };
        let expires = time(&top, "expires")?;
        let artifacts = match top.get("artifacts") {
            None => return Err(field_error("artifacts", "is missing: list at least one archive")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(field_error("artifacts", "is empty: list at least one archive"))
            }
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, item)| artifact(i, item)).collect::<Result<Vec<_>, _>>()?
            }
            Some(other) => {
                return Err(field_error("artifacts", format!("must be an array, found {}", kind(other))))
            }
        };
        Ok(Manifest { schema, name, version, published, expires, artifacts })
    }

    /// The artifact for `target`: one built for it, else one for any target.
    pub fn artifact_for(&self, target: &str) -> Option<&Artifact> {
        let exact = self.artifacts.iter().find(|a| a.target == target);
        exact.or_else(|| self.artifacts.iter().find(|a| a.target == ANY_TARGET))
    }

    /// The targets the manifest offers, in its order, each once.
    pub fn targets(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for a in &self.artifacts {
            if !seen.contains(&a.target) {
                seen.push(a.target.clone());
            }
        }
        seen
    }
}

fn artifact(index: usize, item: &Value) -> Result<Artifact, ManifestError> {
    let at = |key: &str| format!("artifacts[{index}].{key}");
    let Value::Object(fields) = item else {
        return Err(field_error(
            format!("artifacts[{index}]"),
            format!("must be an object, found {}", kind(item)),
        ));
    };
    let target = non_empty_string(fields, "target", &at("target"))?;
    let url = non_empty_string(fields, "url", &at("url"))?;
    let hex = non_empty_string(fields, "sha256", &at("sha256"))?;
    let sha256 = parse_sha256(&hex).ok_or_else(|| {
        field_error(
            at("sha256"),
            format!("must be exactly 64 hex digits (the archive's SHA-256), found \"{}\"", clip(&hex)),
        )
    })?;
    let size = match fields.get("size") {
        None => return Err(field_error(at("size"), "is missing: give the archive's size in bytes")),
        Some(v) => match v.as_u64() {
            Some(0) => return Err(field_error(at("size"), "is 0: an archive has at least a few bytes")),
            Some(n) => n,
            None => {
                return Err(field_error(
                    at("size"),
                    format!("must be a whole number of bytes, found {}", show(v)),
                ))
            }
        },
    };
    Ok(Artifact { target, url, sha256, size })
}

/// 64 hex digits, either case.
pub(crate) fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

fn non_empty_string(fields: &Map<String, Value>, key: &str, name: &str) -> Result<String, ManifestError> {
    match fields.get(key) {
        None => Err(field_error(name, "is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(field_error(name, "is empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(field_error(name, format!("must be a string, found {}", kind(other)))),
    }
}

fn time(fields: &Map<String, Value>, key: &str) -> Result<SystemTime, ManifestError> {
    let text = non_empty_string(fields, key, key)?;
    parse_time(&text).map_err(|why| {
        field_error(
            key,
            format!("\"{}\" is not an RFC 3339 time such as 2027-03-01T00:00:00Z: {why}", clip(&text)),
        )
    })
}

/// An RFC 3339 time, in UTC (`Z`) or with an offset (`+01:00`). A time without a zone is
/// refused: a manifest's expiry must not depend on the clock of whoever reads it.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    if text.ends_with(['Z', 'z']) {
        let utc = format!("{}Z", &text[..text.len() - 1]);
        return humantime::parse_rfc3339(&utc).map_err(|e| e.to_string());
    }
    let split = text.len().checked_sub(6).filter(|&at| text.is_char_boundary(at));
    let Some((local, offset)) = split.map(|at| text.split_at(at)) else {
        return Err("it has no time zone: end it with `Z` (UTC) or an offset such as `+01:00`".into());
    };
    let o = offset.as_bytes();
    let digits =
        |a: u8, b: u8| (a as char).to_digit(10).zip((b as char).to_digit(10)).map(|(a, b)| a * 10 + b);
    let (sign, hours, minutes) = match (o[0], digits(o[1], o[2]), o[3], digits(o[4], o[5])) {
        (b'+', Some(h), b':', Some(m)) => (1i8, h, m),
        (b'-', Some(h), b':', Some(m)) => (-1, h, m),
        _ => return Err("it has no time zone: end it with `Z` (UTC) or an offset such as `+01:00`".into()),
    };
    if hours > 23 || minutes > 59 {
        return Err(format!("the offset `{offset}` is not a valid time zone offset"));
    }
    let at = humantime::parse_rfc3339(&format!("{local}Z")).map_err(|e| e.to_string())?;
    let shift = Duration::from_secs(u64::from(hours * 3600 + minutes * 60));
    // `+01:00` is one hour ahead of UTC: the same instant is one hour earlier in UTC.
    let utc = if sign > 0 { at.checked_sub(shift) } else { at.checked_add(shift) };
    utc.ok_or_else(|| "it is out of range".to_owned())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for a message: a short JSON value as written, anything longer by its kind.
fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{}\"", clip(s)),
        other => kind(other).to_owned(),
    }
}

/// At most 80 characters of `s`: a message must stay readable whatever the manifest holds.
fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_zones() {
        let utc = parse_time("2027-03-01T00:00:00Z").unwrap();
        assert_eq!(parse_time("2027-03-01T01:30:00+01:30"), Ok(utc));
        assert_eq!(parse_time("2027-02-28T19:00:00-05:00"), Ok(utc));
        assert_eq!(parse_time("2027-03-01T00:00:00+00:00"), Ok(utc));
        assert!(parse_time("2027-03-01T00:00:00").unwrap_err().contains("no time zone"));
        assert!(parse_time("2027-03-01T00:00:00+25:00").unwrap_err().contains("offset"));
        assert!(parse_time("Z").is_err());
        assert!(parse_time("ééééééé").is_err());
    }

    #[test]
    fn sha256_hex() {
        let hex = "00ff".repeat(16);
        let parsed = parse_sha256(&hex).unwrap();
        assert_eq!(parsed[0], 0);
        assert_eq!(parsed[1], 255);
        assert_eq!(parse_sha256(&hex.to_uppercase()), Some(parsed));
        assert_eq!(parse_sha256(&"0".repeat(63)), None);
        assert_eq!(parse_sha256(&"g".repeat(64)), None);
        assert_eq!(parse_sha256(&"é".repeat(32)), None);
    }
}
