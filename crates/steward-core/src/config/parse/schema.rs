//! The JSON Schema of the config file, for editors (taplo, Even Better TOML): rendered from
//! the same key tables the parser walks, so a key the parser knows is a key the schema has.
//!
//! Each `Key` says what its value is (`Kind`) and what it does (a line); this file turns
//! them into draft-07 JSON Schema, which taplo reads. Every table the parser walks denies
//! unknown keys, so every table here has `additionalProperties: false`: a typo is an error
//! in the editor as it is in `steward check`. The schema checks shapes (types, names of
//! choices, integer bounds, the keys a table needs); what needs more than one value, the
//! environment or the file system (a `depends_on` naming a real program, a readable
//! `env_file`) is left to `steward check`.

use serde_json::{json, Map, Value};

use super::keys::{PROGRAM_KEYS, ROOT_KEYS};
use super::Key;

/// The dialect: draft-07 is the one every taplo version reads.
pub const DIALECT: &str = "http://json-schema.org/draft-07/schema#";

/// What a key's value is, as far as a schema can say.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// Any string (`${VAR}` and `%{instance}` are expanded in it).
    Str,
    /// A path, relative to the config file's folder.
    Path,
    /// A duration string such as "30s" or "1m 30s".
    Duration,
    /// A size: a string such as "50MB", or a number of bytes.
    Size,
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// One of these names.
    Choice(&'static [&'static str]),
    /// A signal name: one of these, in any case, with or without `SIG`.
    Signal(&'static [&'static str]),
    /// A program to run: an array of strings (the program first), or one string split like
    /// a shell splits words.
    Command,
    /// An array of strings, with at least `min_items`.
    Strings {
        min_items: u64,
    },
    /// An array of integers in `min..=max`, with at least `min_items`.
    Ints {
        min: i64,
        max: i64,
        min_items: u64,
    },
    /// A table of strings (environment variables).
    StringMap,
    /// A sub-table: the schema of its keys.
    Table(fn() -> Value),
    /// A table of named sub-tables (`[programs.NAME]`): the schema of one, and the pattern
    /// of the names.
    Named(fn() -> Value, &'static str),
    /// An array of tables (`[[alerts]]`): the schema of one.
    Tables(fn() -> Value),
}

/// Names of programs: what `check_program_name` allows, but for the names Windows reserves
/// and the length.
pub(super) const NAME_PATTERN: &str = "^[A-Za-z0-9_-]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$";

/// Names of sockets (`[programs.NAME.sockets.SOCKET]`).
pub(super) const SOCKET_NAME_PATTERN: &str = "^[A-Za-z0-9_.-]+$";

/// A string that holds `${...}` or `%{...}`: its value is only known when the file is read.
const TEMPLATE_PATTERN: &str = "[$%]\\{";

/// The whole schema, as `steward schema` prints it.
pub fn json_schema() -> Value {
    let mut root = table(ROOT_KEYS, &[]);
    let head = json!({
        "$schema": DIALECT,
        "title": "steward.toml",
        "description": "The config file of steward, a process supervisor: a [supervisor] table, one \
                        [programs.NAME] table per program, and optionally [api], [metrics], [[alerts]] \
                        and [self_update]. `steward check` checks what a schema cannot (files, \
                        names across tables).",
    });
    if let (Value::Object(root), Value::Object(head)) = (&mut root, head) {
        let body = std::mem::take(root);
        root.extend(head);
        root.extend(body);
    }
    root
}

/// The schema of a table walked with `keys`: only those keys, and `required` among them.
pub(super) fn table<T>(keys: &[Key<T>], required: &[&str]) -> Value {
    let properties: Map<String, Value> = keys.iter().map(|k| (k.name.to_owned(), key(k))).collect();
    let mut schema = json!({ "type": "object", "additionalProperties": false, "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// `[programs.NAME]`, for [`Kind::Named`].
pub(super) fn program() -> Value {
    table(PROGRAM_KEYS, &["command"])
}

/// The schema of one key: its kind, what it does, and its example's value.
fn key<T>(k: &Key<T>) -> Value {
    let mut schema = kind(k.kind);
    schema["description"] = json!(k.doc);
    if let Some(value) = example_value(k) {
        schema["examples"] = json!([value]);
    }
    schema
}

/// The value of a key's example line (`restart = "always"` → "always"); none for the
/// examples that are table headers (`[programs.web.log]`).
pub(super) fn example_value<T>(k: &Key<T>) -> Option<Value> {
    if k.example.starts_with('[') {
        return None;
    }
    let table: toml::Table = toml::from_str(k.example).ok()?;
    serde_json::to_value(table.get(k.name)?).ok()
}

fn kind(kind: Kind) -> Value {
    let string = |what: &str| json!({ "type": "string", "minLength": 1, "$comment": what });
    match kind {
        Kind::Str => json!({ "type": "string" }),
        Kind::Path => string("a path, relative to the config file's folder"),
        Kind::Duration => string("a duration such as \"500ms\", \"30s\", \"5m\" or \"1h 30m\""),
        Kind::Size => json!({
            "anyOf": [
                { "type": "string", "minLength": 1, "$comment": "a size such as \"512MB\" or \"1GiB\"" },
                { "type": "integer", "minimum": 0, "$comment": "a number of bytes" },
            ]
        }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Choice(names) => json!({
            "anyOf": [
                { "type": "string", "enum": names },
                { "type": "string", "pattern": TEMPLATE_PATTERN },
            ]
        }),
        Kind::Signal(names) => {
            let names_any_case: Vec<String> = names.iter().map(|n| any_case(n)).collect();
            json!({
                "anyOf": [
                    { "type": "string", "enum": names },
                    { "type": "string", "pattern": format!("^({})?({})$", any_case("SIG"), names_any_case.join("|")) },
                    { "type": "string", "pattern": TEMPLATE_PATTERN },
                ]
            })
        }
        Kind::Command => json!({
            "anyOf": [
                { "type": "array", "items": { "type": "string" }, "minItems": 1 },
                { "type": "string", "minLength": 1 },
            ]
        }),
        Kind::Strings { min_items } => {
            json!({ "type": "array", "items": { "type": "string" }, "minItems": min_items })
        }
        Kind::Ints { min, max, min_items } => json!({
            "type": "array",
            "items": { "type": "integer", "minimum": min, "maximum": max },
            "minItems": min_items,
        }),
        Kind::StringMap => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        Kind::Table(schema) => schema(),
        Kind::Named(schema, names) => json!({
            "type": "object",
            "propertyNames": { "pattern": names },
            "additionalProperties": schema(),
        }),
        Kind::Tables(schema) => json!({ "type": "array", "items": schema() }),
    }
}

/// A regular expression that matches `name` (letters, digits and `-`) in any case:
/// `[Tt][Ee][Rr][Mm]`. JSON Schema patterns are ECMA-262, which has no inline `(?i)`.
fn any_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// An integer a `u32` holds.
pub(super) const U32: Kind = Kind::Int { min: 0, max: u32::MAX as i64 };

#[cfg(test)]
mod tests {
    use super::super::keys::{LOG_KEYS, SUPERVISOR_KEYS};
    use super::super::{alerts, api, dashboard, health, instances, release, ship};
    use super::*;

    /// Every table the parser walks, where it is in the document (`*`: any name, `[]`: each
    /// entry of an array of tables), and its keys.
    fn tables() -> Vec<(&'static str, Vec<&'static str>)> {
        fn names<T>(keys: &[Key<T>]) -> Vec<&'static str> {
            keys.iter().map(|k| k.name).collect()
        }
        vec![
            ("", names(ROOT_KEYS)),
            ("supervisor", names(SUPERVISOR_KEYS)),
            ("programs.*", names(PROGRAM_KEYS)),
            ("programs.*.log", names(LOG_KEYS)),
            ("programs.*.health", names(health::HEALTH_KEYS)),
            ("programs.*.sockets.*", names(instances::SOCKET_KEYS)),
            ("programs.*.update", names(instances::UPDATE_KEYS)),
            ("programs.*.release", names(release::RELEASE_KEYS)),
            ("api", names(api::API_KEYS)),
            ("api.tokens[]", names(api::TOKEN_KEYS)),
            ("dashboard", names(dashboard::DASHBOARD_KEYS)),
            ("metrics", names(alerts::METRICS_KEYS)),
            ("alerts[]", names(alerts::ALERT_KEYS)),
            ("ship[]", names(ship::SHIP_KEYS)),
            ("self_update", names(release::SELF_UPDATE_KEYS)),
        ]
    }

    /// The schema of the table at `path`.
    fn at<'s>(schema: &'s Value, path: &str) -> &'s Value {
        let mut here = schema;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let (name, array) = match segment.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            here = match name {
                "*" => &here["additionalProperties"],
                name => &here["properties"][name],
            };
            if array {
                here = &here["items"];
            }
        }
        here
    }

    /// The tables in `schema` that deny unknown keys, counted.
    fn closed_tables(schema: &Value) -> usize {
        match schema {
            Value::Object(map) => {
                usize::from(map.get("additionalProperties") == Some(&Value::Bool(false)))
                    + map.values().map(closed_tables).sum::<usize>()
            }
            Value::Array(items) => items.iter().map(closed_tables).sum(),
            _ => 0,
        }
    }

    #[test]
    fn every_key_of_every_table_is_in_the_schema_and_nothing_else() {
        let schema = json_schema();
        let tables = tables();
        for (path, keys) in &tables {
            let table = at(&schema, path);
            assert_eq!(table["additionalProperties"], Value::Bool(false), "[{path}] must deny unknown keys");
            let properties =
                table["properties"].as_object().unwrap_or_else(|| panic!("[{path}] has no properties"));
            let mut in_schema: Vec<&str> = properties.keys().map(String::as_str).collect();
            let mut in_parser = keys.clone();
            in_schema.sort_unstable();
            in_parser.sort_unstable();
            assert_eq!(in_schema, in_parser, "the keys of [{path}]");
            for (name, key) in properties {
                assert!(
                    key["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{path}.{name} has no description"
                );
            }
            if let Some(required) = table["required"].as_array() {
                for name in required {
                    assert!(
                        properties.contains_key(name.as_str().unwrap_or("")),
                        "[{path}] requires {name}, not a key"
                    );
                }
            }
        }
        // A table the parser walks but this test does not list would go unchecked.
        assert_eq!(closed_tables(&schema), tables.len(), "a table of the schema is missing from `tables()`");
    }

    /// Each example line's value is the kind its key says: a string where a string goes.
    #[test]
    fn examples_have_their_keys_kinds() {
        fn check<T>(keys: &[Key<T>]) {
            for k in keys {
                let Some(value) = example_value(k) else {
                    assert!(
                        k.example.starts_with('['),
                        "the example of `{}` does not parse: {}",
                        k.name,
                        k.example
                    );
                    continue;
                };
                let fits = match k.kind {
                    Kind::Str | Kind::Path | Kind::Duration | Kind::Choice(_) | Kind::Signal(_) => {
                        value.is_string()
                    }
                    Kind::Size => value.is_string() || value.is_u64(),
                    Kind::Bool => value.is_boolean(),
                    Kind::Int { min, max } => value.as_i64().is_some_and(|n| (min..=max).contains(&n)),
                    Kind::Command => {
                        value.is_string() || value.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                    }
                    Kind::Strings { .. } => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                    Kind::Ints { min, max, .. } => value.as_array().is_some_and(|a| {
                        a.iter().all(|n| n.as_i64().is_some_and(|n| (min..=max).contains(&n)))
                    }),
                    Kind::StringMap => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
                    Kind::Table(_) | Kind::Named(..) | Kind::Tables(_) => false,
                };
                assert!(fits, "the example of `{}` ({}) is not what its kind says", k.name, k.example);
                if let (Kind::Choice(names), Some(text)) = (k.kind, value.as_str()) {
                    assert!(names.contains(&text), "`{}`: {text} is not one of {names:?}", k.name);
                }
            }
        }
        check(ROOT_KEYS);
        check(SUPERVISOR_KEYS);
        check(PROGRAM_KEYS);
        check(LOG_KEYS);
        check(health::HEALTH_KEYS);
        check(instances::SOCKET_KEYS);
        check(instances::UPDATE_KEYS);
        check(release::RELEASE_KEYS);
        check(api::API_KEYS);
        check(api::TOKEN_KEYS);
        check(dashboard::DASHBOARD_KEYS);
        check(alerts::METRICS_KEYS);
        check(alerts::ALERT_KEYS);
        check(ship::SHIP_KEYS);
        check(release::SELF_UPDATE_KEYS);
    }

    #[test]
    fn signal_names_match_in_any_case() {
        assert_eq!(any_case("ctrl-c"), "[Cc][Tt][Rr][Ll]-[Cc]");
        assert_eq!(any_case("USR1"), "[Uu][Ss][Rr]1");
    }
}
