//! The config parser: TOML text in, a [`Config`] or every mistake (as [`Diagnostics`]) out.
//!
//! The document is parsed with spans on every key and value, then walked by hand, section by
//! section, so that one bad value does not hide the others. Each section is a table of
//! [`Key`]s: a key's name, an example line (shown in hints) and a function that checks the
//! value and stores it in that section's draft. Adding a key is one entry in the right
//! table plus, if it needs one, a field in the draft.
//!
//! Checks that span several keys (`restart_max_delay >= restart_delay`, a missing `command`)
//! run after a program's keys are walked; checks that span programs (`depends_on`) run after
//! the whole document is walked.

mod alerts;
mod api;
mod health;

use super::diag::{Diagnostic, Diagnostics};
use super::interp;
use super::model::{
    defaults, Config, LogSpec, MetricsSettings, ProgramSpec, Readiness, RestartPolicy, RotateEvery,
    StopSignal, SupervisorSettings,
};
use crate::{deps, units};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// Where the parser gets the outside world from: variables for interpolation, the text of
/// env files, and the platform the config is for. Tests pass a fake; [`OsEnv`] is the real
/// one, and [`OnPlatform`] names the platform.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
    /// The platform the config will run on: some keys need what only some platforms have.
    /// `None` (the default): no particular platform, and no key is refused for it. The core
    /// never asks which OS it runs on; the binary says it (or the one the user names).
    fn platform(&self) -> Option<Platform> {
        None
    }
}

/// A platform steward runs on, as far as the config is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Linux,
    MacOs,
    Windows,
    /// A Unix other than Linux and macOS (the BSDs).
    OtherUnix,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Linux, Platform::MacOs, Platform::Windows, Platform::OtherUnix];

    /// As people write it.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Linux => "Linux",
            Platform::MacOs => "macOS",
            Platform::Windows => "Windows",
            Platform::OtherUnix => "this Unix",
        }
    }

    /// Unix datagram sockets, which `ready = "notify"` needs.
    pub fn has_unix_sockets(self) -> bool {
        self != Platform::Windows
    }

    /// steward reads the memory of process trees (`max_memory`, `memory >` alerts): from
    /// `/proc` on Linux, from Job Objects on Windows.
    pub fn reads_tree_memory(self) -> bool {
        matches!(self, Platform::Linux | Platform::Windows)
    }
}

/// `env` for a config that runs on `platform`.
pub struct OnPlatform<E> {
    pub env: E,
    pub platform: Platform,
}

impl<E: Env> Env for OnPlatform<E> {
    fn var(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.env.read_file(path)
    }
    fn platform(&self) -> Option<Platform> {
        Some(self.platform)
    }
}

/// The supervisor's own environment and file system.
pub struct OsEnv;

/// No variables and no files: for configs that must not depend on the machine (tests,
/// rendering examples).
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

impl Env for OsEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Reads the config file at `path` (made absolute first, without resolving links) and
/// parses it against the real environment, for no particular platform ([`Env::platform`]).
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, &OsEnv)
}

/// [`load`] with the environment `env` (such as [`OsEnv`] [`OnPlatform`]).
pub fn load_with(path: &Path, env: &dyn Env) -> Result<Config, Diagnostics> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let src = std::fs::read_to_string(&path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "create it, or give the path of an existing config file",
            std::io::ErrorKind::PermissionDenied => "make it readable by the user steward runs as",
            std::io::ErrorKind::InvalidData => "save the file as UTF-8 text",
            _ => "check the path and its permissions",
        };
        Diagnostic::whole_file(&path, format!("cannot read the config file: {e}"), hint)
    })?;
    parse_str(&src, &path, env)
}

/// Parses config text. `origin` is the file it came from: it names the file in diagnostics
/// and its folder is where relative paths are resolved from (it is not read).
pub fn parse_str(src: &str, origin: &Path, env: &dyn Env) -> Result<Config, Diagnostics> {
    // Editors on Windows may save a byte order mark; it is not part of the TOML.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let dir = origin.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ctx = Ctx { src, file: origin, dir, env, diags: Vec::new() };

    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    if !syntax_errors.is_empty() {
        // Checking a half-understood document would only add confusing follow-up errors.
        for e in syntax_errors {
            let hint = if e.message().contains("duplicate key") {
                "each key may be set only once in a table (and each [table] header used once)"
            } else {
                "fix the TOML syntax here; the rest of the file is checked once it parses"
            };
            ctx.error(e.span().unwrap_or(0..0), format!("invalid TOML: {}", e.message()), hint);
        }
        return Err(ctx.finish());
    }

    let mut draft = DocumentDraft::default();
    walk(&mut ctx, doc.get_ref(), "", ROOT_KEYS, &mut draft);
    check_dependencies(&mut ctx, &draft.programs);
    ctx.check_alerts(&draft.alerts, &draft.programs);
    if !ctx.diags.is_empty() {
        return Err(ctx.finish());
    }
    Ok(draft.into_config(&ctx.dir, origin))
}

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

/// The state of one parse: the text (for spans), where relative paths start, the
/// environment, and the mistakes found so far.
struct Ctx<'a> {
    src: &'a str,
    file: &'a Path,
    dir: PathBuf,
    env: &'a dyn Env,
    diags: Vec<Diagnostic>,
}

/// One key of a section.
struct Key<T> {
    name: &'static str,
    /// A correct line for this key, shown in the hint when the value is wrong.
    example: &'static str,
    /// Checks the value and stores it in the section's draft; reports mistakes to the `Ctx`.
    set: fn(&mut Ctx<'_>, &Field<'_, '_>, &mut T),
}

/// A value being checked, with what messages need to name it.
struct Field<'v, 'i> {
    /// Dotted path of the table the key is in (`programs.web`), empty at the top level.
    section: String,
    /// How messages name the value: `restart`, `env.PORT`, `command[1]`.
    name: String,
    example: &'static str,
    value: &'v Value<'i>,
}

impl<'v, 'i> Field<'v, 'i> {
    fn element(&self, index: usize, value: &'v Value<'i>) -> Self {
        Field {
            section: self.section.clone(),
            name: format!("{}[{index}]", self.name),
            example: self.example,
            value,
        }
    }

    fn entry(&self, key: &str, value: &'v Value<'i>) -> Self {
        Field {
            section: self.section.clone(),
            name: format!("{}.{key}", self.name),
            example: self.example,
            value,
        }
    }

    /// The dotted path of this value when it is a table of its own (`programs.web.log`).
    fn table_path(&self) -> String {
        if self.section.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.section, self.name)
        }
    }

    fn span(&self) -> Span {
        self.value.span()
    }
}

/// Walks the keys of one table: known keys go to their `set`, unknown keys are errors.
fn walk<T>(ctx: &mut Ctx<'_>, table: &DeTable<'_>, section: &str, keys: &[Key<T>], draft: &mut T) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        match keys.iter().find(|k| k.name == name) {
            Some(k) => {
                let field =
                    Field { section: section.to_owned(), name: k.name.to_owned(), example: k.example, value };
                (k.set)(ctx, &field, draft);
            }
            None => ctx.unknown_key(key, value, section, keys.iter().map(|k| k.name)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The sections. Each `*_KEYS` table is the whole list of keys that section accepts.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct DocumentDraft {
    supervisor: SupervisorDraft,
    programs: BTreeMap<String, ProgramDraft>,
    api: Option<api::ApiDraft>,
    metrics: MetricsSettings,
    alerts: Vec<alerts::AlertDraft>,
}

const ROOT_KEYS: &[Key<DocumentDraft>] = &[
    Key {
        name: "supervisor",
        example: "[supervisor]",
        set: |c, f, d| c.section(f, SUPERVISOR_KEYS, &mut d.supervisor),
    },
    Key { name: "programs", example: "[programs.web]", set: |c, f, d| c.programs(f, &mut d.programs) },
    Key { name: "api", example: "[api]", set: |c, f, d| d.api = c.api(f) },
    Key { name: "metrics", example: "[metrics]", set: |c, f, d| d.metrics = c.metrics(f) },
    Key { name: "alerts", example: "[[alerts]]", set: |c, f, d| d.alerts = c.alerts(f) },
];

#[derive(Default)]
struct SupervisorDraft {
    state_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    watchdog: Option<Duration>,
    watch_config: Option<bool>,
}

const SUPERVISOR_KEYS: &[Key<SupervisorDraft>] = &[
    Key { name: "watch_config", example: "watch_config = true", set: |c, f, d| d.watch_config = c.bool(f) },
    Key {
        name: "state_dir",
        example: "state_dir = \"/var/lib/steward\"",
        set: |c, f, d| d.state_dir = c.path(f),
    },
    Key { name: "log_dir", example: "log_dir = \"/var/log/steward\"", set: |c, f, d| d.log_dir = c.path(f) },
    Key {
        name: "watchdog",
        example: "watchdog = \"30s\"",
        set: |c, f, d| {
            d.watchdog = c.duration(f).filter(|w| {
                let ok = !w.is_zero();
                if !ok {
                    c.error(
                        f.span(),
                        "`watchdog` must be longer than 0",
                        "remove the key to turn the watchdog off",
                    );
                }
                ok
            })
        },
    },
];

/// A program as far as it has been checked. `spec` starts with every default filled in.
struct ProgramDraft {
    spec: ProgramSpec,
    /// Where the program's name is written (`[programs.NAME]`), for program-wide errors.
    name_span: Span,
    has_command: bool,
    env: BTreeMap<String, String>,
    env_file: BTreeMap<String, String>,
    restart_delay_span: Option<Span>,
    restart_max_delay_span: Option<Span>,
    depends_on: Vec<(String, Span)>,
    limit_spans: health::LimitSpans,
}

const PROGRAM_KEYS: &[Key<ProgramDraft>] = &[
    Key {
        name: "command",
        example: "command = [\"python3\", \"app.py\", \"--port\", \"8080\"]",
        set: |c, f, d| {
            d.has_command = true;
            if let Some(argv) = c.command(f) {
                d.spec.command = argv;
            }
        },
    },
    Key {
        name: "cwd",
        example: "cwd = \"app\"",
        set: |c, f, d| {
            if let Some(p) = c.path(f) {
                d.spec.cwd = p;
            }
        },
    },
    Key {
        name: "env",
        example: "env = { RUST_LOG = \"info\", PORT = \"8080\" }",
        set: |c, f, d| d.env = c.env_table(f).unwrap_or_default(),
    },
    Key {
        name: "env_file",
        example: "env_file = \".env\"",
        set: |c, f, d| d.env_file = c.env_file(f).unwrap_or_default(),
    },
    Key {
        name: "autostart",
        example: "autostart = false",
        set: |c, f, d| {
            if let Some(b) = c.bool(f) {
                d.spec.autostart = b;
            }
        },
    },
    Key {
        name: "restart",
        example: "restart = \"always\"",
        set: |c, f, d| {
            if let Some(r) = c.choice(f, RestartPolicy::from_name, RestartPolicy::NAMES) {
                d.spec.restart = r;
            }
        },
    },
    Key {
        name: "success_exit_codes",
        example: "success_exit_codes = [0, 2]",
        set: |c, f, d| {
            if let Some(codes) = c.exit_codes(f) {
                d.spec.success_exit_codes = codes;
            }
        },
    },
    Key {
        name: "restart_delay",
        example: "restart_delay = \"500ms\"",
        set: |c, f, d| {
            d.restart_delay_span = Some(f.span());
            if let Some(v) = c.duration(f) {
                d.spec.restart_delay = v;
            }
        },
    },
    Key {
        name: "restart_max_delay",
        example: "restart_max_delay = \"1m\"",
        set: |c, f, d| {
            d.restart_max_delay_span = Some(f.span());
            if let Some(v) = c.duration(f) {
                d.spec.restart_max_delay = v;
            }
        },
    },
    Key {
        name: "stable_after",
        example: "stable_after = \"30s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.stable_after = v;
            }
        },
    },
    Key {
        name: "max_restarts",
        example: "max_restarts = 5",
        set: |c, f, d| {
            if let Some(v) = c.u32(f) {
                d.spec.max_restarts = v;
            }
        },
    },
    Key {
        name: "restart_window",
        example: "restart_window = \"5m\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.restart_window = v;
            }
        },
    },
    Key {
        name: "stop_signal",
        example: "stop_signal = \"INT\"",
        set: |c, f, d| {
            if let Some(s) = c.choice(f, StopSignal::from_name, StopSignal::NAMES) {
                d.spec.stop_signal = s;
            }
        },
    },
    Key {
        name: "stop_timeout",
        example: "stop_timeout = \"30s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.stop_timeout = v;
            }
        },
    },
    Key {
        name: "depends_on",
        example: "depends_on = [\"db\", \"cache\"]",
        set: |c, f, d| d.depends_on = c.depends_on(f).unwrap_or_default(),
    },
    Key {
        name: "ready",
        example: "ready = \"notify\"",
        set: |c, f, d| {
            if let Some(r) = c.choice(f, Readiness::from_name, Readiness::NAMES) {
                if r == Readiness::Notify && !c.platform_has(Platform::has_unix_sockets) {
                    c.error(
                        f.span(),
                        "`ready = \"notify\"` needs Unix datagram sockets (sd_notify), which Windows lacks",
                        "remove it, or write `ready = \"up\"`",
                    );
                }
                d.spec.ready = r;
            }
        },
    },
    Key {
        name: "log",
        example: "[programs.web.log]",
        set: |c, f, d| c.section(f, LOG_KEYS, &mut d.spec.log),
    },
    Key { name: "health", example: "[programs.web.health]", set: |c, f, d| d.spec.health = c.health(f) },
    Key { name: "max_memory", example: "max_memory = \"512MB\"", set: health::set_max_memory },
    Key {
        name: "memory_grace",
        example: "memory_grace = \"1m\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.memory_grace = v;
            }
        },
    },
    Key {
        name: "hard_memory_limit",
        example: "hard_memory_limit = true",
        set: health::set_hard_memory_limit,
    },
];

const LOG_KEYS: &[Key<LogSpec>] = &[
    Key {
        name: "max_size",
        example: "max_size = \"10MB\"",
        set: |c, f, d| {
            if let Some(v) = c.size(f) {
                d.max_size = v;
            }
        },
    },
    Key {
        name: "rotate_every",
        example: "rotate_every = \"daily\"",
        set: |c, f, d| {
            if let Some(v) = c.choice(f, RotateEvery::from_name, RotateEvery::NAMES) {
                d.rotate_every = Some(v);
            }
        },
    },
    Key {
        name: "keep",
        example: "keep = 5",
        set: |c, f, d| {
            if let Some(v) = c.u32(f) {
                d.keep = v;
            }
        },
    },
    Key {
        name: "compress",
        example: "compress = true",
        set: |c, f, d| {
            if let Some(v) = c.bool(f) {
                d.compress = v;
            }
        },
    },
];

impl ProgramDraft {
    fn new(name: &str, name_span: Span, dir: &Path) -> Self {
        let spec = ProgramSpec {
            name: name.to_owned(),
            command: Vec::new(),
            cwd: dir.to_path_buf(),
            env: BTreeMap::new(),
            autostart: true,
            restart: RestartPolicy::default(),
            success_exit_codes: vec![0],
            restart_delay: defaults::RESTART_DELAY,
            restart_max_delay: defaults::RESTART_MAX_DELAY,
            stable_after: defaults::STABLE_AFTER,
            max_restarts: defaults::MAX_RESTARTS,
            restart_window: defaults::RESTART_WINDOW,
            stop_signal: StopSignal::default(),
            stop_timeout: defaults::STOP_TIMEOUT,
            depends_on: Vec::new(),
            ready: Readiness::default(),
            log: LogSpec::default(),
            health: None,
            max_memory: None,
            memory_grace: defaults::MEMORY_GRACE,
            hard_memory_limit: false,
        };
        ProgramDraft {
            spec,
            name_span,
            has_command: false,
            env: BTreeMap::new(),
            env_file: BTreeMap::new(),
            restart_delay_span: None,
            restart_max_delay_span: None,
            depends_on: Vec::new(),
            limit_spans: health::LimitSpans::default(),
        }
    }

    fn into_spec(self) -> ProgramSpec {
        let mut spec = self.spec;
        // `env` wins over `env_file`.
        spec.env = self.env_file;
        spec.env.extend(self.env);
        let mut seen = BTreeSet::new();
        spec.depends_on =
            self.depends_on.into_iter().map(|(n, _)| n).filter(|n| seen.insert(n.clone())).collect();
        spec
    }
}

impl DocumentDraft {
    fn into_config(self, dir: &Path, origin: &Path) -> Config {
        let state_dir = self.supervisor.state_dir.unwrap_or_else(|| dir.join(defaults::STATE_DIR));
        let log_dir = self.supervisor.log_dir.unwrap_or_else(|| state_dir.join(defaults::LOG_SUBDIR));
        let api = self.api.and_then(|a| a.into_settings(&state_dir));
        Config {
            source: origin.to_path_buf(),
            supervisor: SupervisorSettings {
                state_dir,
                log_dir,
                watchdog: self.supervisor.watchdog,
                watch_config: self.supervisor.watch_config.unwrap_or(false),
            },
            programs: self.programs.into_iter().map(|(name, p)| (name, p.into_spec())).collect(),
            api,
            metrics: self.metrics,
            alerts: self.alerts.into_iter().filter_map(alerts::AlertDraft::into_spec).collect(),
        }
    }
}

/// `depends_on`: every name must be a program, not the program itself, and without cycles.
fn check_dependencies(ctx: &mut Ctx<'_>, programs: &BTreeMap<String, ProgramDraft>) {
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut edge_spans: BTreeMap<(String, String), Span> = BTreeMap::new();
    for (name, program) in programs {
        let edges = graph.entry(name.clone()).or_default();
        for (dep, span) in &program.depends_on {
            if dep == name {
                ctx.error(
                    span.clone(),
                    format!("program `{name}` depends on itself"),
                    format!("remove \"{dep}\" from `depends_on` in [programs.{name}]"),
                );
            } else if !programs.contains_key(dep) {
                let hint = match suggest(dep, programs.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None if programs.len() <= 1 => "add a [programs.NAME] section for it".to_owned(),
                    None => {
                        format!("the programs are: {}", join_quoted(programs.keys().map(String::as_str), "`"))
                    }
                };
                ctx.error(span.clone(), format!("`depends_on` names an unknown program `{dep}`"), hint);
            } else if !edges.contains(dep) {
                edges.push(dep.clone());
                edge_spans.insert((name.clone(), dep.clone()), span.clone());
            }
        }
    }
    // Report every cycle: after each one, drop the edge it was reported at and look again.
    while let Err(cycle) = deps::topo_order(&graph) {
        let (from, to) = (cycle[0].clone(), cycle[1].clone());
        let span = edge_spans.get(&(from.clone(), to.clone())).cloned().unwrap_or(0..0);
        ctx.error(
            span,
            format!("dependency cycle: {}", cycle.join(" -> ")),
            "programs in a cycle could never start; remove one of these `depends_on` entries".to_owned(),
        );
        if let Some(edges) = graph.get_mut(&from) {
            edges.retain(|d| *d != to);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checking single values. Each returns `None` after reporting what was wrong.
// ---------------------------------------------------------------------------------------

impl Ctx<'_> {
    /// Whether the platform the config is for has `what` (with no platform named: yes).
    fn platform_has(&self, what: fn(Platform) -> bool) -> bool {
        self.env.platform().is_none_or(what)
    }

    /// The platform's name for a hint, or "this OS".
    fn platform_name(&self) -> &'static str {
        self.env.platform().map_or("this OS", Platform::name)
    }

    fn error(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::at(self.file, self.src, span, message, Some(hint.into())));
    }

    fn finish(&mut self) -> Diagnostics {
        let mut diags = std::mem::take(&mut self.diags);
        diags.sort_by_key(|d| (d.line, d.col));
        Diagnostics(diags)
    }

    fn unknown_key<'n>(
        &mut self,
        key: &Spanned<toml::de::DeString<'_>>,
        value: &Value<'_>,
        section: &str,
        known: impl Iterator<Item = &'n str> + Clone,
    ) {
        let name: &str = key.get_ref();
        let message = if !section.is_empty() {
            format!("unknown key `{name}` in [{section}]")
        } else if value.get_ref().is_table() {
            format!("unknown table `[{name}]`")
        } else {
            format!("unknown key `{name}` at the top level")
        };
        let hint = match suggest(name, known.clone()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if section.is_empty() => {
                "the file has a [supervisor] table, [programs.NAME] tables, an [api] table, a [metrics] table and [[alerts]]"
                    .to_owned()
            }
            None => format!("the keys of [{section}] are: {}", join_quoted(known, "`")),
        };
        self.error(key.span(), message, hint);
    }

    fn wrong_type(&mut self, f: &Field<'_, '_>, expected: &str) {
        self.error(
            f.span(),
            format!("`{}` must be {expected}, found {}", f.name, kind(f.value.get_ref())),
            format!("for example: `{}`", f.example),
        );
    }

    fn table<'v, 'i>(&mut self, f: &Field<'v, 'i>) -> Option<&'v DeTable<'i>> {
        match f.value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(f, "a table");
                None
            }
        }
    }

    fn array<'v, 'i>(&mut self, f: &Field<'v, 'i>, expected: &str) -> Option<&'v DeArray<'i>> {
        match f.value.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.wrong_type(f, expected);
                None
            }
        }
    }

    /// A sub-table checked against its own key list.
    fn section<T>(&mut self, f: &Field<'_, '_>, keys: &[Key<T>], draft: &mut T) {
        if let Some(table) = self.table(f) {
            walk(self, table, &f.table_path(), keys, draft);
        }
    }

    /// `[programs.NAME]` tables.
    fn programs(&mut self, f: &Field<'_, '_>, programs: &mut BTreeMap<String, ProgramDraft>) {
        let Some(table) = self.table(f) else { return };
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let errors_before = self.diags.len();
            if let Err(why) = check_program_name(name) {
                self.error(
                    key.span(),
                    format!("invalid program name `{name}`: {why}"),
                    "use letters, digits, `_`, `-` and `.`, not starting with `.`; the name becomes a file name",
                );
            }
            let field = Field {
                section: "programs".to_owned(),
                name: name.to_owned(),
                example: "[programs.web]",
                value,
            };
            let Some(body) = self.table(&field) else { continue };
            let mut draft = ProgramDraft::new(name, key.span(), &self.dir);
            walk(self, body, &field.table_path(), PROGRAM_KEYS, &mut draft);
            self.check_program(&draft, errors_before);
            programs.insert(name.to_owned(), draft);
        }
    }

    /// Checks that need several keys of one program.
    fn check_program(&mut self, d: &ProgramDraft, errors_before: usize) {
        self.check_limits(d);
        let name = d.spec.name.clone();
        if !d.has_command {
            self.error(
                d.name_span.clone(),
                format!("program `{name}` has no `command`"),
                format!("add the program to run, for example: `{}`", PROGRAM_KEYS[0].example),
            );
        }
        // Only compare durations that were read without mistakes.
        if self.diags.len() == errors_before && d.spec.restart_max_delay < d.spec.restart_delay {
            let (max, delay) = (
                units::format_duration(d.spec.restart_max_delay),
                units::format_duration(d.spec.restart_delay),
            );
            match d.restart_max_delay_span.clone() {
                Some(span) => self.error(
                    span,
                    format!("`restart_max_delay` ({max}) is shorter than `restart_delay` ({delay})"),
                    "make `restart_max_delay` at least as long as `restart_delay`",
                ),
                None => self.error(
                    d.restart_delay_span.clone().unwrap_or_else(|| d.name_span.clone()),
                    format!(
                        "`restart_delay` ({delay}) is longer than the default `restart_max_delay` ({max})"
                    ),
                    format!("also set `restart_max_delay` to at least \"{delay}\""),
                ),
            }
        }
    }

    /// A string value, with `${...}` expanded.
    fn string(&mut self, f: &Field<'_, '_>) -> Option<String> {
        match f.value.get_ref() {
            DeValue::String(s) => self.interpolate(f, s),
            _ => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    fn interpolate(&mut self, f: &Field<'_, '_>, raw: &str) -> Option<String> {
        let env = self.env;
        match interp::expand(raw, &|name| env.var(name)) {
            Ok(v) => Some(v),
            Err(errors) => {
                for e in errors {
                    let span = self.span_in_string(f.span(), raw, e.offset..e.offset + e.len);
                    self.error(span, format!("{} (in `{}`)", e.message, f.name), e.hint);
                }
                None
            }
        }
    }

    /// Maps a byte range of a string's decoded value to the source, when the source text up to
    /// there is the same as the value (no escapes before it); otherwise the whole value.
    fn span_in_string(&self, value_span: Span, decoded: &str, inner: Span) -> Span {
        let raw = &self.src[value_span.clone()];
        let delim = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            1
        } else {
            return value_span;
        };
        let mut body_start = value_span.start + delim;
        if delim == 3 {
            // A newline right after the opening delimiter is not part of the value.
            let after = &self.src[body_start..];
            body_start += if after.starts_with("\r\n") { 2 } else { usize::from(after.starts_with('\n')) };
        }
        let body = self.src.get(body_start..value_span.end.saturating_sub(delim)).unwrap_or("");
        if body.get(..inner.end).is_some() && body.get(..inner.end) == decoded.get(..inner.end) {
            body_start + inner.start..body_start + inner.end
        } else {
            value_span
        }
    }

    fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        match f.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(f, "a boolean");
                None
            }
        }
    }

    fn integer(&mut self, f: &Field<'_, '_>, expected: &str) -> Option<i128> {
        match f.value.get_ref() {
            DeValue::Integer(i) => {
                let parsed = i128::from_str_radix(i.as_str(), i.radix()).ok();
                if parsed.is_none() {
                    self.error(
                        f.span(),
                        format!("`{}` is not a valid integer", f.name),
                        format!("for example: `{}`", f.example),
                    );
                }
                parsed
            }
            _ => {
                self.wrong_type(f, expected);
                None
            }
        }
    }

    fn in_range<T: TryFrom<i128> + std::fmt::Display + Copy>(
        &mut self,
        f: &Field<'_, '_>,
        min: T,
        max: T,
    ) -> Option<T> {
        let n = self.integer(f, "an integer")?;
        let value = T::try_from(n).ok();
        if value.is_none() {
            self.error(
                f.span(),
                format!("`{}` must be between {min} and {max}, found {n}", f.name),
                format!("for example: `{}`", f.example),
            );
        }
        value
    }

    fn u32(&mut self, f: &Field<'_, '_>) -> Option<u32> {
        self.in_range(f, u32::MIN, u32::MAX)
    }

    fn duration(&mut self, f: &Field<'_, '_>) -> Option<Duration> {
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                units::parse_duration(&text)
                    .map_err(|e| {
                        self.error(
                            f.span(),
                            format!("`{}` is not a valid duration: {e}", f.name),
                            "write a number with a unit, such as \"150ms\", \"10s\", \"5m\" or \"1h30m\"",
                        )
                    })
                    .ok()
            }
            DeValue::Integer(i) => {
                self.error(
                    f.span(),
                    format!("`{}` must be a duration string such as \"10s\", found an integer", f.name),
                    format!("add a unit and quotes: `{} = \"{}s\"`", f.name, i.as_str()),
                );
                None
            }
            _ => {
                self.wrong_type(f, "a duration string such as \"10s\"");
                None
            }
        }
    }

    fn size(&mut self, f: &Field<'_, '_>) -> Option<u64> {
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                units::parse_size(&text)
                    .map_err(|e| {
                        self.error(
                            f.span(),
                            format!("`{}` is not a valid size: {e}", f.name),
                            "write a number of bytes or a size with a unit, such as \"500KB\", \"50MB\" or \"1GiB\"",
                        )
                    })
                    .ok()
            }
            DeValue::Integer(_) => self.in_range(f, u64::MIN, u64::MAX),
            _ => {
                self.wrong_type(f, "a size such as \"50MB\" or a number of bytes");
                None
            }
        }
    }

    /// One of a fixed set of names (an enum of the model).
    fn choice<E>(
        &mut self,
        f: &Field<'_, '_>,
        from_name: fn(&str) -> Option<E>,
        names: &[&str],
    ) -> Option<E> {
        let text = self.string(f)?;
        let value = from_name(&text);
        if value.is_none() {
            let hint = match suggest(&text, names.iter().copied()) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("for example: `{}`", f.example),
            };
            self.error(
                f.span(),
                format!(
                    "`{}` must be one of {}, found \"{text}\"",
                    f.name,
                    join_quoted(names.iter().copied(), "\"")
                ),
                hint,
            );
        }
        value
    }

    /// A path, resolved from the config file's folder when relative.
    fn path(&mut self, f: &Field<'_, '_>) -> Option<PathBuf> {
        let text = self.string(f)?;
        if text.is_empty() {
            self.error(f.span(), format!("`{}` is empty", f.name), format!("for example: `{}`", f.example));
            return None;
        }
        Some(self.dir.join(text))
    }

    /// A path key whose file is read at load (`env_file`, `token_file`): its path and text,
    /// or an error at the key saying why it cannot be read.
    fn file_text(&mut self, f: &Field<'_, '_>) -> Option<(PathBuf, String)> {
        let path = self.path(f)?;
        match self.env.read_file(&path) {
            Ok(text) => Some((path, text)),
            Err(e) => {
                self.error(
                    f.span(),
                    format!("cannot read {} `{}`: {e}", f.name, path.display()),
                    "create the file or fix the path; a relative path is resolved from the config file's folder",
                );
                None
            }
        }
    }

    /// `command`: an array of strings, or one string split like a POSIX shell splits words.
    fn command(&mut self, f: &Field<'_, '_>) -> Option<Vec<String>> {
        let empty_hint = format!("give the program to run and its arguments, for example: `{}`", f.example);
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                match shell_words::split(&text) {
                    Ok(argv) if argv.is_empty() => {
                        self.error(f.span(), format!("`{}` is empty", f.name), empty_hint);
                        None
                    }
                    Ok(argv) => Some(argv),
                    Err(_) => {
                        self.error(
                            f.span(),
                            format!("`{}` has an unbalanced quote", f.name),
                            "close the quote, or write the command as an array: `command = [\"sh\", \"-c\", \"echo 'hi'\"]`",
                        );
                        None
                    }
                }
            }
            DeValue::Array(items) => {
                if items.is_empty() {
                    self.error(f.span(), format!("`{}` is empty", f.name), empty_hint);
                    return None;
                }
                let argv: Vec<Option<String>> =
                    items.iter().enumerate().map(|(i, item)| self.string(&f.element(i, item))).collect();
                let argv: Vec<String> = argv.into_iter().collect::<Option<_>>()?;
                if argv[0].is_empty() {
                    self.error(
                        items[0].span(),
                        format!("`{}[0]`, the program to run, is empty", f.name),
                        empty_hint,
                    );
                    return None;
                }
                Some(argv)
            }
            _ => {
                self.wrong_type(f, "an array of strings or a string");
                None
            }
        }
    }

    /// `env`: a table of strings.
    fn env_table(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let table = self.table(f)?;
        let mut vars = BTreeMap::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            if name.is_empty() || name.contains(['=', '\0']) {
                self.error(
                    key.span(),
                    format!("`{name}` cannot be an environment variable name"),
                    "names must be non-empty and cannot contain `=`",
                );
                ok = false;
                continue;
            }
            let entry = f.entry(name, value);
            if let DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) = value.get_ref() {
                let raw = &self.src[value.span()];
                self.error(
                    value.span(),
                    format!("`{}` must be a string, found {}", entry.name, kind(value.get_ref())),
                    format!("quote it: `{name} = \"{raw}\"`"),
                );
                ok = false;
                continue;
            }
            match self.string(&entry) {
                Some(v) => {
                    vars.insert(name.to_owned(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(vars)
    }

    /// `env_file`: read through [`Env::read_file`] and parsed as dotenv.
    fn env_file(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let (path, text) = self.file_text(f)?;
        let mut vars = BTreeMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((k, v)) => {
                    vars.insert(k, v);
                }
                Err(e) => {
                    let what = match e {
                        dotenvy::Error::LineParse(line, _) => format!("cannot parse the line `{line}`"),
                        other => other.to_string(),
                    };
                    self.error(
                        f.span(),
                        format!("env_file `{}`: {what}", path.display()),
                        "each line must be `NAME=value`; quote values that contain spaces or `#`",
                    );
                    return None;
                }
            }
        }
        Some(vars)
    }

    /// `success_exit_codes`: integers in the i32 range.
    fn exit_codes(&mut self, f: &Field<'_, '_>) -> Option<Vec<i32>> {
        let items = self.array(f, "an array of integers")?;
        let codes: Vec<Option<i32>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.in_range(&f.element(i, item), i32::MIN, i32::MAX))
            .collect();
        codes.into_iter().collect()
    }

    /// `depends_on`: names with their spans; checked against the programs later.
    fn depends_on(&mut self, f: &Field<'_, '_>) -> Option<Vec<(String, Span)>> {
        let items = self.array(f, "an array of program names")?;
        let names: Vec<Option<(String, Span)>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(&f.element(i, item)).map(|s| (s, item.span())))
            .collect();
        names.into_iter().collect()
    }
}

/// Program names become file names (logs, state), on every OS.
fn check_program_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("{c:?} is not allowed"));
    }
    if name.starts_with('.') {
        return Err("it starts with `.`".to_owned());
    }
    if name.ends_with('.') {
        return Err("it ends with `.`, which Windows drops from file names".to_owned());
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'));
    if reserved {
        return Err(format!("`{stem}` is a reserved device name on Windows"));
    }
    Ok(())
}

/// "a string", "an integer", ... for messages.
fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn join_quoted<'n>(names: impl Iterator<Item = &'n str>, quote: &str) -> String {
    names.map(|n| format!("{quote}{n}{quote}")).collect::<Vec<_>>().join(", ")
}

/// The closest known name to a misspelt one, if it is close enough to be a likely typo.
fn suggest<'n>(wrong: &str, known: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    let wrong_lower = wrong.to_lowercase();
    let limit = (wrong.chars().count() / 3).max(1);
    known
        .map(|k| (edit_distance(&wrong_lower, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One config that asks for everything some platforms lack.
    const NEEDS_PLATFORM: &str = r#"
[programs.web]
command = ["web"]
ready = "notify"
max_memory = "512MB"

[[alerts]]
name = "big"
when = "memory > 1GB"
command = ["notify-me"]
"#;

    /// The messages of the errors `NEEDS_PLATFORM` gets on `platform`.
    fn errors_on(platform: Option<Platform>) -> Vec<String> {
        let origin = Path::new("/srv/steward.toml");
        let result = match platform {
            Some(platform) => parse_str(NEEDS_PLATFORM, origin, &OnPlatform { env: EmptyEnv, platform }),
            None => parse_str(NEEDS_PLATFORM, origin, &EmptyEnv),
        };
        match result {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn each_platform_gets_its_own_answer() {
        assert_eq!(errors_on(None), Vec::<String>::new(), "no platform named: nothing refused");
        assert_eq!(errors_on(Some(Platform::Linux)), Vec::<String>::new());
        let windows = errors_on(Some(Platform::Windows));
        assert_eq!(windows.len(), 1, "{windows:#?}");
        assert!(windows[0].contains("`ready = \"notify\"` needs Unix datagram sockets"), "{windows:#?}");
        for unix in [Platform::MacOs, Platform::OtherUnix] {
            let errors = errors_on(Some(unix));
            assert_eq!(errors.len(), 2, "{unix:?}: {errors:#?}");
            assert!(errors[0].contains("`max_memory` needs the memory of process trees"), "{errors:#?}");
            assert!(errors[0].contains(&format!("remove `max_memory` on {}", unix.name())), "{errors:#?}");
            assert!(errors[1].contains("`memory >` needs the memory of process trees"), "{errors:#?}");
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("restart", "restart"), 0);
        assert_eq!(edit_distance("restrat", "restart"), 1);
        assert_eq!(edit_distance("comand", "command"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["command", "cwd", "restart", "restart_delay"];
        assert_eq!(suggest("restrat", keys.iter().copied()), Some("restart"));
        assert_eq!(suggest("Command", keys.iter().copied()), Some("command"));
        assert_eq!(suggest("cdw", keys.iter().copied()), Some("cwd"));
        assert_eq!(suggest("banana", keys.iter().copied()), None);
    }

    #[test]
    fn program_names() {
        for ok in ["web", "api-v2", "worker_1", "a.b", "Web2"] {
            assert_eq!(check_program_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".hidden", "my app", "a/b", "a\\b", "trailing.", "con", "NUL.log", "com1", "lpt9"] {
            assert!(check_program_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_program_name("com10"), Ok(()));
        assert_eq!(check_program_name("console"), Ok(()));
    }
}
