//! `[[ship]]`: its keys, and the checks that span an entry (the URL against the kind, TLS
//! options against the scheme) or the document (unique names, known programs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{schema, suggest, walk, Ctx, Field, Key, Kind, ProgramDraft, Span};
use crate::config::model::{defaults, ShipEncoding, ShipEndpoint, ShipSpec, SinkKind};
use crate::ship::valid_label_name;

/// One `[[ship]]` entry as far as it has been checked.
pub(super) struct ShipDraft {
    span: Span,
    name: Option<(String, Span)>,
    kind: Option<SinkKind>,
    kind_seen: bool,
    url: Option<(String, Span)>,
    programs: Vec<(String, Span)>,
    encoding: Option<(ShipEncoding, Span)>,
    gzip: Option<(bool, Span)>,
    headers: BTreeMap<String, String>,
    token_file: Option<PathBuf>,
    ca_file: Option<(PathBuf, Span)>,
    client_cert: Option<(PathBuf, Span)>,
    client_key: Option<(PathBuf, Span)>,
    labels: BTreeMap<String, String>,
    parse_json: bool,
    index: Option<(String, Span)>,
    max_bytes: u64,
    max_lines: u32,
    linger: Duration,
    max_unshipped: u64,
    /// Set once the entry checked out as a whole.
    endpoint: Option<ShipEndpoint>,
}

/// Labels every line carries already: a static label may not take their names.
const BUILT_IN_LABELS: &[&str] = &["host", "program", "instance", "stream"];

pub(super) const SHIP_KEYS: &[Key<ShipDraft>] = &[
    Key {
        name: "name",
        doc: "Names the sink in metrics, events and its state folder (default: its kind). Unique.",
        kind: Kind::Str,
        example: "name = \"loki\"",
        set: |c, f, d| d.name = c.sink_name(f).map(|n| (n, f.span())),
    },
    Key {
        name: "kind",
        doc: "The protocol: \"loki\" (push API), \"otlp\" (OTLP/HTTP logs), \"elasticsearch\" (_bulk, also OpenSearch) or \"syslog\" (RFC 5424 over TCP or TLS). Required.",
        kind: Kind::Choice(SinkKind::NAMES),
        example: "kind = \"loki\"",
        set: |c, f, d| {
            d.kind_seen = true;
            d.kind = c.choice(f, SinkKind::from_name, SinkKind::NAMES);
        },
    },
    Key {
        name: "url",
        doc: "Where to send: http(s)://HOST[:PORT][/PATH] (the protocol's usual path when none is given), or tcp://HOST:PORT and tls://HOST:PORT for syslog. Required.",
        kind: Kind::Str,
        example: "url = \"http://127.0.0.1:3100\"",
        set: |c, f, d| d.url = c.string(f).map(|u| (u, f.span())),
    },
    Key {
        name: "programs",
        doc: "The programs whose logs go there, all instances of each (default: all).",
        kind: Kind::Strings { min_items: 0 },
        example: "programs = [\"web\", \"worker\"]",
        set: |c, f, d| d.programs = c.depends_on(f).unwrap_or_default(),
    },
    Key {
        name: "encoding",
        doc: "Loki and OTLP: \"protobuf\" (default) or \"json\" bodies.",
        kind: Kind::Choice(ShipEncoding::NAMES),
        example: "encoding = \"json\"",
        set: |c, f, d| d.encoding = c.choice(f, ShipEncoding::from_name, ShipEncoding::NAMES).map(|e| (e, f.span())),
    },
    Key {
        name: "gzip",
        doc: "Compress request bodies with gzip (default true; Loki's protobuf bodies are always snappy-compressed instead).",
        kind: Kind::Bool,
        example: "gzip = false",
        set: |c, f, d| d.gzip = c.bool(f).map(|g| (g, f.span())),
    },
    Key {
        name: "headers",
        doc: "HTTP headers sent with every request, such as X-Scope-OrgID. Their values are never shown.",
        kind: Kind::StringMap,
        example: "headers = { X-Scope-OrgID = \"team-a\" }",
        set: |c, f, d| d.headers = c.headers(f).unwrap_or_default(),
    },
    Key {
        name: "token_file",
        doc: "A file holding a token, sent as `Authorization: Bearer TOKEN`.",
        kind: Kind::Path,
        example: "token_file = \"/etc/steward/loki.token\"",
        set: |c, f, d| d.token_file = c.path(f),
    },
    Key {
        name: "ca_file",
        doc: "For https:// and tls://: trust the CA certificates in this PEM file instead of the built-in roots.",
        kind: Kind::Path,
        example: "ca_file = \"/etc/steward/ca.pem\"",
        set: |c, f, d| d.ca_file = c.path(f).map(|p| (p, f.span())),
    },
    Key {
        name: "client_cert",
        doc: "For mutual TLS: this client certificate chain (PEM), with client_key.",
        kind: Kind::Path,
        example: "client_cert = \"/etc/steward/client.pem\"",
        set: |c, f, d| d.client_cert = c.path(f).map(|p| (p, f.span())),
    },
    Key {
        name: "client_key",
        doc: "For mutual TLS: the client certificate's private key (PEM), with client_cert.",
        kind: Kind::Path,
        example: "client_key = \"/etc/steward/client.key\"",
        set: |c, f, d| d.client_key = c.path(f).map(|p| (p, f.span())),
    },
    Key {
        name: "labels",
        doc: "Static labels on every line, such as env = \"prod\". Keep them few and fixed: each value makes a stream of its own in Loki.",
        kind: Kind::StringMap,
        example: "labels = { env = \"prod\" }",
        set: |c, f, d| d.labels = c.ship_labels(f).unwrap_or_default(),
    },
    Key {
        name: "parse",
        doc: "\"json\": a line that is a JSON object is sent as structured fields; \"none\" (default): every line is text.",
        kind: Kind::Choice(&["json", "none"]),
        example: "parse = \"json\"",
        set: |c, f, d| {
            d.parse_json = c.choice(f, |s| match s {
                "json" => Some(true),
                "none" => Some(false),
                _ => None,
            }, &["json", "none"]) == Some(true);
        },
    },
    Key {
        name: "index",
        doc: "Elasticsearch: the index or data stream the lines go to (default \"logs-steward-default\").",
        kind: Kind::Str,
        example: "index = \"logs-myapp-prod\"",
        set: |c, f, d| d.index = c.string(f).map(|i| (i, f.span())),
    },
    Key {
        name: "max_bytes",
        doc: "The most bytes of lines in one request (default \"1MiB\").",
        kind: Kind::Size,
        example: "max_bytes = \"4MiB\"",
        set: |c, f, d| {
            if let Some(v) = c.size(f) {
                if v < 1024 {
                    c.error(f.span(), format!("`max_bytes` is {v} bytes; a batch needs at least 1KiB"), "write a size such as \"1MiB\"");
                } else {
                    d.max_bytes = v;
                }
            }
        },
    },
    Key {
        name: "max_lines",
        doc: "The most lines in one request (default 5000).",
        kind: Kind::Int { min: 1, max: 1_000_000 },
        example: "max_lines = 1000",
        set: |c, f, d| {
            if let Some(v) = c.in_range(f, 1u32, 1_000_000) {
                d.max_lines = v;
            }
        },
    },
    Key {
        name: "linger",
        doc: "How long a batch waits for more lines before it is sent (default \"1s\").",
        kind: Kind::Duration,
        example: "linger = \"200ms\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.linger = v;
            }
        },
    },
    Key {
        name: "max_unshipped",
        doc: "Rotated log files not yet sent are kept beyond the log's `keep` up to this size per stream (default \"1GiB\"); past it the oldest are deleted, counted and announced.",
        kind: Kind::Size,
        example: "max_unshipped = \"5GiB\"",
        set: |c, f, d| {
            if let Some(v) = c.size(f) {
                d.max_unshipped = v;
            }
        },
    },
];

/// The schema of one `[[ship]]` entry.
pub(super) fn schema() -> serde_json::Value {
    schema::table(SHIP_KEYS, &["kind", "url"])
}

impl Ctx<'_> {
    /// `[[ship]]`: an array of tables, each checked on its own.
    pub(super) fn ship(&mut self, f: &Field<'_, '_>) -> Vec<ShipDraft> {
        let Some(items) = self.array(f, "an array of tables ([[ship]])") else { return Vec::new() };
        let mut sinks = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = f.element(i, item);
            let Some(table) = self.table(&field) else { continue };
            let mut d = ShipDraft {
                span: item.span(),
                name: None,
                kind: None,
                kind_seen: false,
                url: None,
                programs: Vec::new(),
                encoding: None,
                gzip: None,
                headers: BTreeMap::new(),
                token_file: None,
                ca_file: None,
                client_cert: None,
                client_key: None,
                labels: BTreeMap::new(),
                parse_json: false,
                index: None,
                max_bytes: defaults::SHIP_MAX_BYTES,
                max_lines: defaults::SHIP_MAX_LINES,
                linger: defaults::SHIP_LINGER,
                max_unshipped: defaults::SHIP_MAX_UNSHIPPED,
                endpoint: None,
            };
            walk(self, table, "ship", SHIP_KEYS, &mut d);
            self.check_sink(&mut d);
            sinks.push(d);
        }
        sinks
    }

    /// A sink's name: it names a folder, so the characters of program names.
    fn sink_name(&mut self, f: &Field<'_, '_>) -> Option<String> {
        let name = self.string(f)?;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            self.error(
                f.span(),
                format!("`name` must be 1 to 64 letters, digits, `-` or `_`, found {name:?}"),
                "it names the sink's folder under the state dir, for example name = \"loki-eu\"",
            );
            return None;
        }
        Some(name)
    }

    /// `headers`: names an HTTP header may have, values without line breaks.
    fn headers(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let headers = self.env_table(f)?;
        for (name, value) in &headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                self.error(
                    f.span(),
                    format!("`{name}` is not an HTTP header name"),
                    "use letters, digits and `-`, as in X-Scope-OrgID",
                );
            } else if value.contains(['\r', '\n', '\0']) {
                // The value is not shown: it may be a secret.
                self.error(
                    f.span(),
                    format!("the value of header `{name}` holds a line break"),
                    "a header value is one line",
                );
            } else if name.eq_ignore_ascii_case("content-type")
                || name.eq_ignore_ascii_case("content-encoding")
                || name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("host")
            {
                self.error(
                    f.span(),
                    format!("steward sets the `{name}` header itself"),
                    "remove it from `headers`",
                );
            }
        }
        Some(headers)
    }

    /// `labels`: Prometheus label names, not the built-in ones.
    fn ship_labels(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let labels = self.env_table(f)?;
        for name in labels.keys() {
            if !valid_label_name(name) {
                self.error(
                    f.span(),
                    format!("`{name}` is not a label name"),
                    "use letters, digits and `_`, not starting with a digit",
                );
            } else if BUILT_IN_LABELS.contains(&name.as_str()) {
                self.error(
                    f.span(),
                    format!("every line already carries the label `{name}`"),
                    format!("the built-in labels are {}; name yours differently", BUILT_IN_LABELS.join(", ")),
                );
            }
        }
        Some(labels)
    }

    /// What an entry needs as a whole: a kind and a URL that fit each other, TLS options only
    /// with TLS, both halves of a client certificate.
    fn check_sink(&mut self, d: &mut ShipDraft) {
        if !d.kind_seen {
            self.error(
                d.span.clone(),
                "a [[ship]] entry has no `kind`",
                "add `kind = \"loki\"` (or \"otlp\", \"elasticsearch\", \"syslog\")",
            );
        }
        let Some(kind) = d.kind else { return };
        match &d.url {
            None => self.error(
                d.span.clone(),
                "a [[ship]] entry has no `url`",
                match kind {
                    SinkKind::Syslog => "add `url = \"tcp://127.0.0.1:514\"` (or tls://HOST:6514)",
                    _ => "add `url = \"http://HOST:PORT\"`",
                },
            ),
            Some((url, span)) => match ShipEndpoint::parse(kind, url) {
                Ok(endpoint) => d.endpoint = Some(endpoint),
                Err(why) => {
                    let example = match kind {
                        SinkKind::Syslog => "tcp://127.0.0.1:514",
                        SinkKind::Loki => "http://127.0.0.1:3100",
                        SinkKind::Otlp => "http://127.0.0.1:4318",
                        SinkKind::Elasticsearch => "https://es.example.com:9200",
                    };
                    self.error(
                        span.clone(),
                        format!("`url` is not a {} URL: {why}", kind.name()),
                        format!("for example: url = \"{example}\""),
                    );
                }
            },
        }
        if let Some((_, span)) = &d.encoding {
            if matches!(kind, SinkKind::Elasticsearch | SinkKind::Syslog) {
                self.error(
                    span.clone(),
                    format!("a {} sink has one encoding; `encoding` is for loki and otlp", kind.name()),
                    "remove `encoding`",
                );
            }
        }
        let protobuf = d.encoding.as_ref().is_none_or(|(e, _)| *e == ShipEncoding::Protobuf);
        if let (SinkKind::Loki, true, Some((true, span))) = (kind, protobuf, &d.gzip) {
            self.error(
                span.clone(),
                "Loki's protobuf bodies are snappy-compressed by the protocol, not gzipped",
                "remove `gzip`, or set encoding = \"json\" to gzip JSON bodies",
            );
        }
        if kind == SinkKind::Syslog {
            if let Some((_, span)) = &d.gzip {
                self.error(span.clone(), "syslog is not compressed", "remove `gzip`");
            }
            if !d.headers.is_empty() || d.token_file.is_some() {
                self.error(
                    d.span.clone(),
                    "syslog has no headers or tokens",
                    "remove `headers` and `token_file`; use client_cert for mutual TLS",
                );
            }
        }
        if let Some((_, span)) = &d.index {
            if kind != SinkKind::Elasticsearch {
                self.error(span.clone(), "`index` is for elasticsearch sinks", "remove `index`");
            }
        }
        let tls = d.endpoint.as_ref().is_some_and(|e| e.tls);
        for (key, value) in
            [("ca_file", &d.ca_file), ("client_cert", &d.client_cert), ("client_key", &d.client_key)]
        {
            if let (Some((_, span)), false, Some(_)) = (value, tls, &d.endpoint) {
                self.error(
                    span.clone(),
                    format!("`{key}` is for TLS, and this URL is not"),
                    "use an https:// (or tls://) URL, or remove the key",
                );
            }
        }
        match (&d.client_cert, &d.client_key) {
            (Some((_, span)), None) => {
                self.error(span.clone(), "`client_cert` needs `client_key`", "add client_key = \"PATH\"")
            }
            (None, Some((_, span))) => {
                self.error(span.clone(), "`client_key` needs `client_cert`", "add client_cert = \"PATH\"")
            }
            _ => {}
        }
    }

    /// The checks across the document: unique names, known programs.
    pub(super) fn check_ship(&mut self, sinks: &[ShipDraft], programs: &BTreeMap<String, Box<ProgramDraft>>) {
        let mut names: Vec<String> = Vec::new();
        for d in sinks {
            let name =
                d.name.as_ref().map(|(n, _)| n.clone()).or_else(|| d.kind.map(|k| k.name().to_owned()));
            if let Some(name) = name {
                if names.contains(&name) {
                    let span = d.name.as_ref().map_or(d.span.clone(), |(_, s)| s.clone());
                    self.error(
                        span,
                        format!("two [[ship]] entries are named `{name}`"),
                        "give each its own `name`: it names the sink's cursors",
                    );
                }
                names.push(name);
            }
            for (program, span) in &d.programs {
                if !programs.contains_key(program) {
                    let hint = match suggest(program, programs.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => "list programs that have a [programs.NAME] section, or remove `programs` to ship them all".to_owned(),
                    };
                    self.error(
                        span.clone(),
                        format!("`programs` names an unknown program `{program}`"),
                        hint,
                    );
                }
            }
        }
    }
}

impl ShipDraft {
    /// Only called once the whole document checked out.
    pub(super) fn into_spec(self) -> Option<ShipSpec> {
        let kind = self.kind?;
        let mut programs: Vec<String> = Vec::new();
        for (p, _) in self.programs {
            if !programs.contains(&p) {
                programs.push(p);
            }
        }
        Some(ShipSpec {
            name: self.name.map_or_else(|| kind.name().to_owned(), |(n, _)| n),
            kind,
            endpoint: self.endpoint?,
            programs,
            encoding: self.encoding.map_or(ShipEncoding::Protobuf, |(e, _)| e),
            gzip: self.gzip.is_none_or(|(g, _)| g),
            headers: self.headers,
            token_file: self.token_file,
            ca_file: self.ca_file.map(|(p, _)| p),
            client_cert: self.client_cert.zip(self.client_key).map(|((c, _), (k, _))| (c, k)),
            labels: self.labels,
            parse_json: self.parse_json,
            index: self.index.map_or_else(|| defaults::SHIP_INDEX.to_owned(), |(i, _)| i),
            max_bytes: self.max_bytes,
            max_lines: self.max_lines,
            linger: self.linger,
            max_unshipped: self.max_unshipped,
        })
    }
}
