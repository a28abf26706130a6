//! `[programs.NAME.health]` and a program's memory keys (`max_memory`, `memory_grace`,
//! `hard_memory_limit`), with the checks that span them: exactly one probe kind,
//! `expect_status` only with `http`, `hard_memory_limit` only with `max_memory`.

use std::time::Duration;

use super::{schema, walk, Ctx, Field, Key, Kind, Platform, ProgramDraft, Span};
use crate::config::model::{defaults, split_host_port, HealthSpec, HttpUrl, OnUnhealthy, Probe};

/// The health table as far as it has been checked.
pub(super) struct HealthDraft {
    /// The table, for mistakes about it as a whole.
    span: Span,
    /// Each probe key written (`http`, `tcp`, `exec`) with its span, valid or not.
    kinds: Vec<(&'static str, Span)>,
    probe: Option<Probe>,
    expect_status: Option<(Vec<u16>, Span)>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period: Duration,
    on_unhealthy: OnUnhealthy,
}

pub(super) const HEALTH_KEYS: &[Key<HealthDraft>] = &[
    Key {
        name: "http",
        doc: "Probe: an http:// URL that must answer 2xx (or expect_status).",
        kind: Kind::Str,
        example: "http = \"http://127.0.0.1:8080/healthz\"",
        set: |c, f, d| {
            d.kinds.push(("http", f.span()));
            if let Some(url) = c.http_url(f) {
                d.probe = Some(Probe::Http { url, expect_status: Vec::new() });
            }
        },
    },
    Key {
        name: "tcp",
        doc: "Probe: a HOST:PORT that must accept a connection.",
        kind: Kind::Str,
        example: "tcp = \"127.0.0.1:5432\"",
        set: |c, f, d| {
            d.kinds.push(("tcp", f.span()));
            if let Some((host, port)) = c.host_port(f) {
                d.probe = Some(Probe::Tcp { host, port });
            }
        },
    },
    Key {
        name: "exec",
        doc: "Probe: a command that must exit 0.",
        kind: Kind::Command,
        example: "exec = [\"pg_isready\", \"-q\"]",
        set: |c, f, d| {
            d.kinds.push(("exec", f.span()));
            if let Some(command) = c.command(f) {
                d.probe = Some(Probe::Exec { command });
            }
        },
    },
    Key {
        name: "expect_status",
        doc: "The HTTP statuses an http probe accepts (default: any 2xx).",
        kind: Kind::Ints { min: 100, max: 599, min_items: 1 },
        example: "expect_status = [200, 204]",
        set: |c, f, d| {
            if let Some(codes) = c.status_codes(f) {
                d.expect_status = Some((codes, f.span()));
            }
        },
    },
    Key {
        name: "interval",
        doc: "Time between probes (default \"10s\").",
        kind: Kind::Duration,
        example: "interval = \"10s\"",
        set: |c, f, d| {
            if let Some(v) = c.positive_duration(f) {
                d.interval = v;
            }
        },
    },
    Key {
        name: "timeout",
        doc: "How long one probe may take (default \"5s\").",
        kind: Kind::Duration,
        example: "timeout = \"5s\"",
        set: |c, f, d| {
            if let Some(v) = c.positive_duration(f) {
                d.timeout = v;
            }
        },
    },
    Key {
        name: "retries",
        doc: "Failed probes in a row that make the program unhealthy (default 3).",
        kind: Kind::Int { min: 1, max: 1000 },
        example: "retries = 3",
        set: |c, f, d| {
            if let Some(v) = c.between(f, 1u32, 1000) {
                d.retries = v;
            }
        },
    },
    Key {
        name: "start_period",
        doc: "Failures in this time after a start do not count (default \"0s\").",
        kind: Kind::Duration,
        example: "start_period = \"30s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.start_period = v;
            }
        },
    },
    Key {
        name: "on_unhealthy",
        doc: "What to do when the program turns unhealthy (default \"none\").",
        kind: Kind::Choice(OnUnhealthy::NAMES),
        example: "on_unhealthy = \"restart\"",
        set: |c, f, d| {
            if let Some(v) = c.choice(f, OnUnhealthy::from_name, OnUnhealthy::NAMES) {
                d.on_unhealthy = v;
            }
        },
    },
];

/// The schema of `[programs.NAME.health]`: one probe, `http`, `tcp` or `exec`.
pub(super) fn schema() -> serde_json::Value {
    let mut table = schema::table(HEALTH_KEYS, &[]);
    table["oneOf"] = serde_json::json!([
        { "required": ["http"] },
        { "required": ["tcp"] },
        { "required": ["exec"] },
    ]);
    table
}

/// Spans of the memory keys, for the checks across them.
#[derive(Default)]
pub(super) struct LimitSpans {
    hard_memory_limit: Option<Span>,
    max_memory: Option<Span>,
}

pub(super) fn set_max_memory(c: &mut Ctx<'_>, f: &Field<'_, '_>, d: &mut ProgramDraft) {
    d.limit_spans.max_memory = Some(f.span());
    match c.size(f) {
        Some(0) => c.error(
            f.span(),
            "`max_memory` must be more than 0",
            "remove the key for no limit, or write a size such as \"512MB\"",
        ),
        Some(v) => d.spec.max_memory = Some(v),
        None => {}
    }
    if !c.platform_has(Platform::reads_tree_memory) {
        let hint = format!("remove `max_memory` on {}", c.platform_name());
        c.error(
            f.span(),
            "`max_memory` needs the memory of process trees, which steward reads on Linux and Windows only",
            hint,
        );
    }
}

pub(super) fn set_hard_memory_limit(c: &mut Ctx<'_>, f: &Field<'_, '_>, d: &mut ProgramDraft) {
    d.limit_spans.hard_memory_limit = Some(f.span());
    if let Some(v) = c.bool(f) {
        d.spec.hard_memory_limit = v;
    }
}

impl Ctx<'_> {
    /// `[programs.NAME.health]`: its keys, then the checks across them. `None` after a
    /// mistake (reported).
    pub(super) fn health(&mut self, f: &Field<'_, '_>) -> Option<HealthSpec> {
        let table = self.table(f)?;
        let errors_before = self.diags.len();
        let mut d = HealthDraft {
            span: f.span(),
            kinds: Vec::new(),
            probe: None,
            expect_status: None,
            interval: defaults::HEALTH_INTERVAL,
            timeout: defaults::HEALTH_TIMEOUT,
            retries: defaults::HEALTH_RETRIES,
            start_period: Duration::ZERO,
            on_unhealthy: OnUnhealthy::default(),
        };
        let path = f.table_path();
        walk(self, table, &path, HEALTH_KEYS, &mut d);
        // Tables are walked in key order; report the probe written second.
        d.kinds.sort_by_key(|(_, span)| span.start);
        match d.kinds.as_slice() {
            [] => self.error(
                d.span.clone(),
                format!("[{path}] has no probe"),
                "add one of `http = \"http://127.0.0.1:8080/healthz\"`, `tcp = \"127.0.0.1:5432\"` \
                 or `exec = [\"pg_isready\", \"-q\"]`",
            ),
            [_] => {}
            [(first, _), (second, span), ..] => self.error(
                span.clone(),
                format!("[{path}] has both `{first}` and `{second}`; a health check has one probe"),
                format!("keep one of them, or move `{second}` into an exec probe that checks both"),
            ),
        }
        if let Some((codes, span)) = d.expect_status {
            match &mut d.probe {
                Some(Probe::Http { expect_status, .. }) => *expect_status = codes,
                _ if d.kinds.iter().any(|(k, _)| *k == "http") => {}
                _ => self.error(
                    span,
                    "`expect_status` only applies to an `http` probe",
                    "remove it, or probe with `http = \"URL\"`",
                ),
            }
        }
        if self.diags.len() != errors_before {
            return None;
        }
        Some(HealthSpec {
            probe: d.probe?,
            interval: d.interval,
            timeout: d.timeout,
            retries: d.retries,
            start_period: d.start_period,
            on_unhealthy: d.on_unhealthy,
        })
    }

    /// The memory keys together: `hard_memory_limit` needs `max_memory`.
    pub(super) fn check_limits(&mut self, d: &ProgramDraft) {
        if let (Some(span), None) = (&d.limit_spans.hard_memory_limit, &d.limit_spans.max_memory) {
            if d.spec.hard_memory_limit {
                self.error(
                    span.clone(),
                    "`hard_memory_limit` needs `max_memory`",
                    "add the limit, for example `max_memory = \"512MB\"`",
                );
            }
        }
    }

    /// A plain `http://` URL.
    pub(super) fn http_url(&mut self, f: &Field<'_, '_>) -> Option<HttpUrl> {
        let text = self.string(f)?;
        HttpUrl::parse(&text)
            .map_err(|why| {
                let hint = if why.contains("https") {
                    "probe the plain-HTTP port, or use `tcp = \"HOST:PORT\"` or an exec probe such as \
                     `exec = [\"curl\", \"-fsS\", \"https://...\"]`"
                } else {
                    "for example \"http://127.0.0.1:8080/healthz\""
                };
                self.error(f.span(), format!("`{}` is not a usable URL: {why}", f.name), hint)
            })
            .ok()
    }

    /// `HOST:PORT`.
    fn host_port(&mut self, f: &Field<'_, '_>) -> Option<(String, u16)> {
        let text = self.string(f)?;
        split_host_port(&text, None)
            .map_err(|why| {
                self.error(
                    f.span(),
                    format!("`{}` must be HOST:PORT, found \"{text}\": {why}", f.name),
                    "for example \"127.0.0.1:5432\", \"localhost:6379\" or \"[::1]:8080\"",
                )
            })
            .ok()
    }

    /// HTTP status codes, 100 to 599.
    fn status_codes(&mut self, f: &Field<'_, '_>) -> Option<Vec<u16>> {
        let items = self.array(f, "an array of HTTP status codes")?;
        if items.is_empty() {
            self.error(f.span(), "`expect_status` is empty", "remove it to accept any 2xx");
            return None;
        }
        let codes: Vec<Option<u16>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.between(&f.element(i, item), 100u16, 599))
            .collect();
        codes.into_iter().collect()
    }

    /// An integer in `min..=max`.
    pub(super) fn between<T>(&mut self, f: &Field<'_, '_>, min: T, max: T) -> Option<T>
    where
        T: TryFrom<i128> + PartialOrd + std::fmt::Display + Copy,
    {
        let n = self.in_range(f, min, max)?;
        if n < min || n > max {
            self.error(
                f.span(),
                format!("`{}` must be between {min} and {max}, found {n}", f.name),
                format!("for example: `{}`", f.example),
            );
            return None;
        }
        Some(n)
    }

    /// A duration longer than zero.
    pub(super) fn positive_duration(&mut self, f: &Field<'_, '_>) -> Option<Duration> {
        let d = self.duration(f)?;
        if d.is_zero() {
            self.error(
                f.span(),
                format!("`{}` must be longer than 0", f.name),
                format!("for example: `{}`", f.example),
            );
            return None;
        }
        Some(d)
    }
}
