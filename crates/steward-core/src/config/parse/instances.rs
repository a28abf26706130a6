//! The keys of a program that several processes share: `instances`, `instance_env`,
//! `[programs.NAME.sockets.SOCKET]` and `[programs.NAME.update]`.
//!
//! A program with `instances = N` is walked N times, once per instance number, with
//! `%{instance}` expanded in every string ([`crate::config::instance`]): each instance gets a
//! checked spec of its own, and a value that is wrong for one instance only (a port out of
//! range) is reported at its place, naming the instance.

use super::*;
use crate::config::model::{GroupSpec, ListenAddr, OnFailure, SocketSpec, Strategy, UpdateSpec};

/// What a program's processes share, as far as it has been checked.
#[derive(Default)]
pub(super) struct GroupDraft {
    /// `instances = N`: read before the program's other keys, so that `%{instance}` is known
    /// while they are walked.
    pub(super) instances: Option<u32>,
    pub(super) instance_env: Option<String>,
    pub(super) sockets: Vec<SocketSpec>,
    pub(super) update: Option<(UpdateSpec, Span)>,
    /// The drafts of instances 1..N (instance 0 is the program's own draft).
    pub(super) more: Vec<ProgramDraft>,
}

impl GroupDraft {
    /// The group, when the program has one (`instances` or `sockets`).
    pub(super) fn spec(&self, name: &str) -> Option<GroupSpec> {
        (self.instances.is_some() || !self.sockets.is_empty()).then(|| GroupSpec {
            name: name.to_owned(),
            instances: self.instances,
            sockets: self.sockets.clone(),
            update: self.update.as_ref().map(|(u, _)| u.clone()).unwrap_or_default(),
        })
    }
}

pub(super) const INSTANCES_EXAMPLE: &str = "instances = 4";

pub(super) const UPDATE_KEYS: &[Key<UpdateSpec>] = &[
    Key {
        name: "strategy",
        doc: "\"rolling\" replaces processes a few at a time, \"recreate\" stops them all first (default \"rolling\").",
        kind: Kind::Choice(Strategy::NAMES),
        example: "strategy = \"rolling\"",
        set: |c, f, d| {
            if let Some(s) = c.choice(f, Strategy::from_name, Strategy::NAMES) {
                d.strategy = s;
            }
        },
    },
    Key {
        name: "max_surge",
        doc: "Processes that may run above instances while rolling (default 1).",
        kind: schema::U32,
        example: "max_surge = 1",
        set: |c, f, d| {
            if let Some(v) = c.u32(f) {
                d.max_surge = v;
            }
        },
    },
    Key {
        name: "max_unavailable",
        doc: "Processes that may be missing below instances while rolling (default 0).",
        kind: schema::U32,
        example: "max_unavailable = 0",
        set: |c, f, d| {
            if let Some(v) = c.u32(f) {
                d.max_unavailable = v;
            }
        },
    },
    Key {
        name: "min_ready",
        doc: "How long a new process must stay ready before the roll goes on (default \"0s\").",
        kind: Kind::Duration,
        example: "min_ready = \"5s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.min_ready = v;
            }
        },
    },
    Key {
        name: "ready_timeout",
        doc: "How long a new process may take to be ready (default \"60s\").",
        kind: Kind::Duration,
        example: "ready_timeout = \"60s\"",
        set: |c, f, d| {
            if let Some(v) = c.positive_duration(f) {
                d.ready_timeout = v;
            }
        },
    },
    Key {
        name: "progress_timeout",
        doc: "How long the whole roll may go without progress (default: none).",
        kind: Kind::Duration,
        example: "progress_timeout = \"10m\"",
        set: |c, f, d| {
            if let Some(v) = c.positive_duration(f) {
                d.progress_timeout = Some(v);
            }
        },
    },
    Key {
        name: "on_failure",
        doc: "What a failed roll does: \"pause\" where it is, or \"rollback\" (default \"pause\").",
        kind: Kind::Choice(OnFailure::NAMES),
        example: "on_failure = \"rollback\"",
        set: |c, f, d| {
            if let Some(v) = c.choice(f, OnFailure::from_name, OnFailure::NAMES) {
                d.on_failure = v;
            }
        },
    },
];

#[derive(Default)]
pub(super) struct SocketDraft {
    listen: Option<ListenAddr>,
    has_listen: bool,
    backlog: Option<u32>,
}

pub(super) const SOCKET_KEYS: &[Key<SocketDraft>] = &[
    Key {
        name: "listen",
        doc: "The address to bind: \"tcp://IP:PORT\", \"IP:PORT\" or \"unix://PATH\". Required.",
        kind: Kind::Str,
        example: "listen = \"tcp://0.0.0.0:8080\"",
        set: |c, f, d| {
            d.has_listen = true;
            d.listen = c.socket_listen(f);
        },
    },
    Key {
        name: "backlog",
        doc: "The listen backlog (default 1024).",
        kind: Kind::Int { min: 1, max: 65535 },
        example: "backlog = 1024",
        set: |c, f, d| d.backlog = c.between(f, 1u32, 65535),
    },
];

/// The schema of `[programs.NAME.sockets.SOCKET]`.
pub(super) fn socket_schema() -> serde_json::Value {
    schema::table(SOCKET_KEYS, &["listen"])
}

impl Ctx<'_> {
    /// `instances` of a program's table, read before its other keys. `None` when absent
    /// (or wrong: then an error is reported).
    pub(super) fn instances_of(&mut self, body: &DeTable<'_>, section: &str) -> Option<u32> {
        let (_, value) = body.get_key_value("instances")?;
        let f = Field {
            section: section.to_owned(),
            name: "instances".to_owned(),
            example: INSTANCES_EXAMPLE,
            value,
        };
        let n = self.u32(&f)?;
        if n == 0 || n > defaults::MAX_INSTANCES {
            self.error(
                f.span(),
                format!("`instances` is {n}; it must be 1 to {}", defaults::MAX_INSTANCES),
                "to keep the program stopped, write `autostart = false`",
            );
            return None;
        }
        Some(n)
    }

    /// Walks the program's table again for instances `from..n`, with `%{instance}` set to
    /// each. The first instance with a mistake of its own (instance 0, the program's draft,
    /// passed) is reported, and the others are not walked.
    pub(super) fn more_instances(
        &mut self,
        body: &DeTable<'_>,
        section: &str,
        name: &str,
        name_span: Span,
        n: u32,
    ) -> Vec<ProgramDraft> {
        let mut drafts = Vec::new();
        for index in 1..n {
            let (errors, warnings) = (self.diags.len(), self.warnings.len());
            self.instance = Some(index);
            let mut draft = ProgramDraft::new(name, name_span.clone(), &self.dir);
            walk(self, body, section, PROGRAM_KEYS, &mut draft);
            self.check_program(&draft, errors);
            // Instance 0 has shown the warnings already.
            self.warnings.truncate(warnings);
            if self.diags.len() > errors {
                for d in &mut self.diags[errors..] {
                    d.message = format!("{} (in instance {index}, `%{{instance}}` = {index})", d.message);
                }
                self.instance = None;
                return Vec::new();
            }
            drafts.push(draft);
        }
        self.instance = None;
        drafts
    }

    /// `instance_env = "NODE_APP_INSTANCE"`: a second variable with the instance number.
    pub(super) fn instance_env(&mut self, f: &Field<'_, '_>) -> Option<String> {
        let name = self.string(f)?;
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.error(
                f.span(),
                format!("`instance_env` is \"{name}\", not a variable name"),
                "use letters, digits and `_`, not starting with a digit: `instance_env = \"NODE_APP_INSTANCE\"`",
            );
            return None;
        }
        Some(name)
    }

    /// `[programs.NAME.sockets.SOCKET]` tables, in name order.
    pub(super) fn sockets(&mut self, f: &Field<'_, '_>) -> Vec<SocketSpec> {
        let Some(table) = self.table(f) else { return Vec::new() };
        let mut sockets = Vec::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let valid = !name.is_empty()
                && name.len() <= 255
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !valid {
                self.error(
                    key.span(),
                    format!("invalid socket name `{name}`"),
                    "use letters, digits, `_`, `-` and `.`: programs read it from LISTEN_FDNAMES",
                );
            }
            let field = Field {
                section: f.table_path(),
                name: name.to_owned(),
                example: "[programs.web.sockets.http]",
                value,
            };
            let mut draft = SocketDraft::default();
            self.section(&field, SOCKET_KEYS, &mut draft);
            if !draft.has_listen {
                self.error(
                    key.span(),
                    format!("socket `{name}` has no `listen`"),
                    format!("add the address to bind, for example: `{}`", SOCKET_KEYS[0].example),
                );
            }
            if let Some(listen) = draft.listen {
                let backlog = draft.backlog.unwrap_or(defaults::BACKLOG);
                sockets.push(SocketSpec { name: name.to_owned(), listen, backlog });
            }
        }
        if let Some(platform) = self.env.platform().filter(|p| !p.passes_sockets() && !sockets.is_empty()) {
            self.error(
                f.span(),
                format!(
                    "steward passes sockets to programs on Linux and Windows only, for now, not on {}",
                    platform.name()
                ),
                "remove the `sockets` tables; each instance can bind a port of its own with `%{instance}`",
            );
        }
        sockets
    }

    /// `tcp://HOST:PORT` (an IP address; `[..]` for IPv6), `HOST:PORT`, or `unix://PATH`
    /// (relative to the config file's folder).
    fn socket_listen(&mut self, f: &Field<'_, '_>) -> Option<ListenAddr> {
        let text = self.string(f)?;
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                self.error(
                    f.span(),
                    "`listen` has no path after `unix://`",
                    "for example: `listen = \"unix:///run/web.sock\"`",
                );
                return None;
            }
            if !self.platform_has(Platform::has_unix_sockets) {
                self.error(
                    f.span(),
                    "Unix sockets cannot be passed on Windows",
                    "listen on `tcp://127.0.0.1:PORT`",
                );
                return None;
            }
            if path.contains(crate::release::RELEASE_MARK) {
                self.error(
                    f.span(),
                    "`listen` cannot use `%{release}`: steward binds its sockets before a release is chosen",
                    "put the socket outside the release, for example under `/run`",
                );
                return None;
            }
            return Some(ListenAddr::Unix(self.dir.join(path)));
        }
        let addr = text.strip_prefix("tcp://").unwrap_or(&text);
        match addr.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(ListenAddr::Tcp(a)),
            Err(_) => {
                self.error(
                    f.span(),
                    format!("`listen` is \"{text}\", not `tcp://IP:PORT` or `unix://PATH`"),
                    "give an IP address, not a host name: `tcp://0.0.0.0:8080`, `tcp://[::]:8080` or `tcp://127.0.0.1:8080`",
                );
                None
            }
        }
    }

    /// The log files of instance `web:2` are `web.2.*.log`: a program named `web.2` beside a
    /// `web` with `instances` would write the same files.
    pub(super) fn check_instance_names(&mut self, programs: &BTreeMap<String, Box<ProgramDraft>>) {
        for (name, draft) in programs {
            let Some((group, index)) = name.rsplit_once('.') else { continue };
            let clashes = !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit())
                && programs.get(group).is_some_and(|g| g.group.instances.is_some());
            if clashes {
                self.error(
                    draft.name_span.clone(),
                    format!("program `{name}` would share its log files with instance {group}:{index}"),
                    format!("rename it: `{group}` has `instances`, whose logs are `{group}.N.out.log`"),
                );
            }
        }
    }

    /// Checks across a program's group keys.
    pub(super) fn check_group(&mut self, d: &ProgramDraft) {
        let g = &d.group;
        if let Some((update, span)) = &g.update {
            if update.max_surge == 0 && update.max_unavailable == 0 {
                self.error(
                    span.clone(),
                    "`max_surge` and `max_unavailable` are both 0: a roll could never replace a process",
                    "allow one more process while rolling (`max_surge = 1`), or one fewer (`max_unavailable = 1`)",
                );
            }
            if g.instances.is_none() && g.sockets.is_empty() {
                self.warn(
                    span.clone(),
                    format!(
                        "[programs.{}.update] has no effect without `instances` or `sockets`",
                        d.spec.name
                    ),
                    "add `instances = N` or a [programs.NAME.sockets.SOCKET] table, or remove [update]",
                );
            }
        }
        if g.instance_env.is_some() && g.instances.is_none() {
            self.error(
                d.name_span.clone(),
                format!("program `{}` has `instance_env` but no `instances`", d.spec.name),
                "add `instances = N`, or remove `instance_env`",
            );
        }
    }
}
