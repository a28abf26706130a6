//! `[[alerts]]` and `[metrics]`: their keys, and the checks that span the document (unique
//! alert names, `programs` naming real programs, conditions that could ever hold).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{schema, suggest, walk, Ctx, Field, Key, Kind, Platform, ProgramDraft, Span};
use crate::alerts::{self, Condition};
use crate::config::model::{AlertSpec, HttpUrl, MetricsSettings};

/// One `[[alerts]]` entry as far as it has been checked.
pub(super) struct AlertDraft {
    /// The entry, for a missing key.
    span: Span,
    name: Option<(String, Span)>,
    name_seen: bool,
    when: Option<(Condition, Span)>,
    when_seen: bool,
    webhook: Option<HttpUrl>,
    command: Option<Vec<String>>,
    repeat_every: Option<Duration>,
    programs: Vec<(String, Span)>,
}

pub(super) const ALERT_KEYS: &[Key<AlertDraft>] = &[
    Key {
        name: "name",
        doc: "The alert's name, carried by its notifications. Required, unique.",
        kind: Kind::Str,
        example: "name = \"flapping\"",
        set: |c, f, d| {
            d.name_seen = true;
            d.name = c.alert_name(f).map(|n| (n, f.span()));
        },
    },
    Key {
        name: "when",
        doc: "The condition: `restarts > N within D`, `state == \"fatal\"`, `unhealthy for D` or `memory > SIZE`. Required.",
        kind: Kind::Str,
        example: "when = \"restarts > 3 within 10m\"",
        set: |c, f, d| {
            d.when_seen = true;
            d.when = c.condition(f).map(|w| (w, f.span()));
        },
    },
    Key {
        name: "webhook",
        doc: "An http:// URL to POST the alert to.",
        kind: Kind::Str,
        example: "webhook = \"http://127.0.0.1:9000/hooks/steward\"",
        set: |c, f, d| d.webhook = c.http_url(f),
    },
    Key {
        name: "command",
        doc: "A program to run when the alert fires.",
        kind: Kind::Command,
        example: "command = [\"notify-send\", \"steward alert\"]",
        set: |c, f, d| d.command = c.command(f),
    },
    Key {
        name: "repeat_every",
        doc: "Notify again this often while the condition holds (default: once).",
        kind: Kind::Duration,
        example: "repeat_every = \"1h\"",
        set: |c, f, d| d.repeat_every = c.positive_duration(f),
    },
    Key {
        name: "programs",
        doc: "The programs the alert watches (default: all).",
        kind: Kind::Strings { min_items: 0 },
        example: "programs = [\"web\", \"worker\"]",
        set: |c, f, d| d.programs = c.depends_on(f).unwrap_or_default(),
    },
];

/// `[metrics]` as far as it has been checked.
#[derive(Default)]
pub(super) struct MetricsDraft {
    listen: Option<(SocketAddr, Span)>,
    allow_remote: bool,
}

pub(super) const METRICS_KEYS: &[Key<MetricsDraft>] = &[
    Key {
        name: "listen",
        doc: "The IP address and port to serve /metrics on.",
        kind: Kind::Str,
        example: "listen = \"127.0.0.1:9100\"",
        set: |c, f, d| d.listen = c.listen_addr(f).map(|a| (a, f.span())),
    },
    Key {
        name: "allow_remote",
        doc: "Allow listen off loopback: metrics have no authentication (default false).",
        kind: Kind::Bool,
        example: "allow_remote = true",
        set: |c, f, d| d.allow_remote = c.bool(f).unwrap_or(false),
    },
];

/// The schema of one `[[alerts]]` entry.
pub(super) fn schema() -> serde_json::Value {
    schema::table(ALERT_KEYS, &["name", "when"])
}

/// The schema of `[metrics]`.
pub(super) fn metrics_schema() -> serde_json::Value {
    schema::table(METRICS_KEYS, &[])
}

impl Ctx<'_> {
    /// `[[alerts]]`: an array of tables, each checked on its own.
    pub(super) fn alerts(&mut self, f: &Field<'_, '_>) -> Vec<AlertDraft> {
        let Some(items) = self.array(f, "an array of tables ([[alerts]])") else { return Vec::new() };
        let mut alerts = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = f.element(i, item);
            let Some(table) = self.table(&field) else { continue };
            let mut d = AlertDraft {
                span: item.span(),
                name: None,
                name_seen: false,
                when: None,
                when_seen: false,
                webhook: None,
                command: None,
                repeat_every: None,
                programs: Vec::new(),
            };
            walk(self, table, "alerts", ALERT_KEYS, &mut d);
            if !d.name_seen {
                self.error(
                    d.span.clone(),
                    "an [[alerts]] entry has no `name`",
                    "add `name = \"flapping\"`: notifications carry it",
                );
            }
            if !d.when_seen {
                self.error(
                    d.span.clone(),
                    "an [[alerts]] entry has no `when`",
                    format!("add the condition, one of {}", alerts::FORMS),
                );
            }
            alerts.push(d);
        }
        alerts
    }

    /// `[metrics]`: its keys, then `listen` off loopback needs `allow_remote`.
    pub(super) fn metrics(&mut self, f: &Field<'_, '_>) -> MetricsSettings {
        let mut d = MetricsDraft::default();
        let Some(table) = self.table(f) else { return MetricsSettings::default() };
        walk(self, table, "metrics", METRICS_KEYS, &mut d);
        if let Some((addr, span)) = &d.listen {
            if !addr.ip().is_loopback() && !d.allow_remote {
                self.error(
                    span.clone(),
                    format!("metrics on {addr} would be readable by anyone who reaches this machine"),
                    "metrics have no authentication: listen on a loopback address such as \
                     \"127.0.0.1:9100\", or add `allow_remote = true` if a firewall guards the port",
                );
            }
        }
        MetricsSettings { listen: d.listen.map(|(a, _)| a) }
    }

    /// The checks across the document: unique names, known programs, conditions that can hold.
    pub(super) fn check_alerts(
        &mut self,
        alerts: &[AlertDraft],
        programs: &BTreeMap<String, Box<ProgramDraft>>,
    ) {
        let mut names: Vec<&str> = Vec::new();
        for a in alerts {
            if let Some((name, span)) = &a.name {
                if names.contains(&name.as_str()) {
                    self.error(
                        span.clone(),
                        format!("two [[alerts]] are named `{name}`"),
                        "give each alert its own name: notifications and events carry it",
                    );
                }
                names.push(name);
            }
            for (program, span) in &a.programs {
                if !programs.contains_key(program) {
                    let hint = match suggest(program, programs.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => "list programs that have a [programs.NAME] section, or remove `programs` \
                                 to cover them all"
                            .to_owned(),
                    };
                    self.error(
                        span.clone(),
                        format!("`programs` names an unknown program `{program}`"),
                        hint,
                    );
                }
            }
            let Some((when, span)) = &a.when else { continue };
            let covered: Vec<&ProgramDraft> = programs
                .iter()
                .filter(|(n, _)| a.programs.is_empty() || a.programs.iter().any(|(p, _)| p == *n))
                .map(|(_, p)| &**p)
                .collect();
            match when {
                Condition::UnhealthyFor(_) if !covered.is_empty() && covered.iter().all(|p| p.spec.health.is_none()) => {
                    self.error(
                        span.clone(),
                        "`unhealthy for` can never hold: none of the programs it covers has a health check",
                        "add a [programs.NAME.health] table to the programs it is for",
                    )
                }
                Condition::MemoryAbove(_) if !self.platform_has(Platform::reads_tree_memory) => self.error(
                    span.clone(),
                    "`memory >` needs the memory of process trees, which steward reads on Linux and Windows only",
                    format!("remove this alert on {}", self.platform_name()),
                ),
                _ => {}
            }
        }
    }

    /// An alert's `name`: letters, digits, `_`, `-`, `.`.
    fn alert_name(&mut self, f: &Field<'_, '_>) -> Option<String> {
        let name = self.string(f)?;
        let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
        if name.is_empty() || bad.is_some() {
            let why = bad.map_or("it is empty".to_owned(), |c| format!("{c:?} is not allowed"));
            self.error(
                f.span(),
                format!("invalid alert name \"{name}\": {why}"),
                "use letters, digits, `_`, `-` and `.`",
            );
            return None;
        }
        Some(name)
    }

    /// `when`: a condition, with mistakes pointed at inside the string.
    fn condition(&mut self, f: &Field<'_, '_>) -> Option<Condition> {
        let text = self.string(f)?;
        alerts::parse_condition(&text)
            .map_err(|e| {
                let span = self.span_in_string(f.span(), &text, e.span.clone());
                self.error(span, format!("`when`: {}", e.message), e.hint);
            })
            .ok()
    }

    /// `listen`: an IP address and a port (no host names: they could resolve elsewhere).
    fn listen_addr(&mut self, f: &Field<'_, '_>) -> Option<SocketAddr> {
        let text = self.string(f)?;
        let addr = text.parse::<SocketAddr>().ok();
        if addr.is_none() {
            self.error(
                f.span(),
                format!("`listen` must be an IP address and a port, found \"{text}\""),
                "for example \"127.0.0.1:9100\" or \"[::1]:9100\"",
            );
        }
        addr
    }
}

impl AlertDraft {
    /// Only called once the whole document checked out.
    pub(super) fn into_spec(self) -> Option<AlertSpec> {
        Some(AlertSpec {
            name: self.name?.0,
            when: self.when?.0,
            webhook: self.webhook,
            command: self.command,
            repeat_every: self.repeat_every,
            programs: {
                let mut seen = Vec::new();
                for (p, _) in self.programs {
                    if !seen.contains(&p) {
                        seen.push(p);
                    }
                }
                seen
            },
        })
    }
}
