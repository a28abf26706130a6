//! The sections of the config and their keys. Each `*_KEYS` table is the whole list of keys
//! that section accepts; each section has a draft that its keys fill in, checked as a whole
//! once walked (`ProgramDraft::finish`, `check_dependencies`).

use super::*;

#[derive(Default)]
pub(super) struct DocumentDraft {
    pub(super) supervisor: SupervisorDraft,
    pub(super) programs: BTreeMap<String, Box<ProgramDraft>>,
    pub(super) api: Option<api::ApiDraft>,
    pub(super) dashboard: Option<dashboard::DashboardDraft>,
    pub(super) metrics: MetricsSettings,
    pub(super) alerts: Vec<alerts::AlertDraft>,
    pub(super) ship: Vec<ship::ShipDraft>,
    pub(super) self_update: Option<crate::config::SelfUpdateSpec>,
}

pub(super) const ROOT_KEYS: &[Key<DocumentDraft>] = &[
    Key {
        name: "supervisor",
        doc: "The supervisor itself: where it keeps its state and the programs' logs, its systemd watchdog, config reloads.",
        kind: Kind::Table(|| schema::table(SUPERVISOR_KEYS, &[])),
        example: "[supervisor]",
        set: |c, f, d| c.section(f, SUPERVISOR_KEYS, &mut d.supervisor),
    },
    Key { name: "programs",
        doc: "The programs to run, one [programs.NAME] table each; NAME names its log files and the program in every command.",
        kind: Kind::Named(schema::program, schema::NAME_PATTERN), example: "[programs.web]", set: |c, f, d| c.programs(f, &mut d.programs) },
    Key { name: "api",
        doc: "The remote HTTP API: the address it listens on, its TLS certificate and its tokens. Without it, steward is reached through its local socket only.",
        kind: Kind::Table(api::schema), example: "[api]", set: |c, f, d| d.api = c.api(f) },
    Key { name: "dashboard",
        doc: "The web dashboard: a loopback address to serve it on, and how long a session lasts. It signs in with [[api.tokens]]; the remote API serves it under /ui/ too.",
        kind: Kind::Table(dashboard::schema), example: "[dashboard]", set: |c, f, d| d.dashboard = c.dashboard(f) },
    Key { name: "metrics",
        doc: "Prometheus metrics over HTTP.",
        kind: Kind::Table(alerts::metrics_schema), example: "[metrics]", set: |c, f, d| d.metrics = c.metrics(f) },
    Key { name: "alerts",
        doc: "Alerts: a condition on programs, and a webhook or a command to call when it holds.",
        kind: Kind::Tables(alerts::schema), example: "[[alerts]]", set: |c, f, d| d.alerts = c.alerts(f) },
    Key { name: "ship",
        doc: "Send the programs' logs to a central store: Loki, an OpenTelemetry collector, Elasticsearch/OpenSearch or syslog, one [[ship]] table per destination (docs/shipping.md).",
        kind: Kind::Tables(ship::schema), example: "[[ship]]", set: |c, f, d| d.ship = c.ship(f) },
    Key { name: "self_update",
        doc: "Where `steward self-update` looks for new versions of steward, and the keys it trusts.",
        kind: Kind::Table(release::self_update_schema), example: "[self_update]", set: |c, f, d| d.self_update = c.self_update(f) },
];

#[derive(Default)]
pub(super) struct SupervisorDraft {
    pub(super) state_dir: Option<PathBuf>,
    pub(super) state_dir_span: Option<Span>,
    pub(super) log_dir: Option<PathBuf>,
    pub(super) watchdog: Option<Duration>,
    pub(super) watch_config: Option<bool>,
}

pub(super) const SUPERVISOR_KEYS: &[Key<SupervisorDraft>] = &[
    Key { name: "watch_config",
        doc: "Reload when the config file changes on disk, as `steward reload` does (default false).",
        kind: Kind::Bool, example: "watch_config = true", set: |c, f, d| d.watch_config = c.bool(f) },
    Key {
        name: "state_dir",
        doc: "Where steward keeps its lock, its local API socket and its audit log (default: .steward beside the config file).",
        kind: Kind::Path,
        example: "state_dir = \"/var/lib/steward\"",
        set: |c, f, d| {
            d.state_dir_span = Some(f.span());
            d.state_dir = c.path(f);
        },
    },
    Key { name: "log_dir",
        doc: "Where program output is written, one file per program and stream (default: <state_dir>/logs).",
        kind: Kind::Path, example: "log_dir = \"/var/log/steward\"", set: |c, f, d| d.log_dir = c.path(f) },
    Key {
        name: "watchdog",
        doc: "Under systemd: WatchdogSec= of steward's unit; steward pings systemd every half of it (default: off).",
        kind: Kind::Duration,
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
pub(super) struct ProgramDraft {
    pub(super) spec: ProgramSpec,
    /// Where the program's name is written (`[programs.NAME]`), for program-wide errors.
    pub(super) name_span: Span,
    pub(super) has_command: bool,
    pub(super) command_span: Option<Span>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) env_file: BTreeMap<String, String>,
    pub(super) restart_delay_span: Option<Span>,
    pub(super) restart_max_delay_span: Option<Span>,
    pub(super) depends_on: Vec<(String, Span)>,
    pub(super) limit_spans: health::LimitSpans,
    /// `instances`, `sockets`, `update`: what the program's processes share.
    pub(super) group: instances::GroupDraft,
    /// `[programs.NAME.release]`: where it is written, and the spec if it had no mistake.
    pub(super) release_span: Option<Span>,
    pub(super) release: Option<crate::config::model::ReleaseSpec>,
}

pub(super) const PROGRAM_KEYS: &[Key<ProgramDraft>] = &[
    Key {
        name: "command",
        doc: "The program to run and its arguments: an array (the program first), or one string split like a shell splits words. Required.",
        kind: Kind::Command,
        example: "command = [\"python3\", \"app.py\", \"--port\", \"8080\"]",
        set: |c, f, d| {
            d.has_command = true;
            d.command_span = Some(f.span());
            if let Some(argv) = c.command(f) {
                d.spec.command = argv;
            }
        },
    },
    Key {
        name: "cwd",
        doc: "The working directory (default: the config file's folder).",
        kind: Kind::Path,
        example: "cwd = \"app\"",
        set: |c, f, d| {
            if let Some(p) = c.cwd(f) {
                d.spec.cwd = p;
            }
        },
    },
    Key {
        name: "env",
        doc: "Environment variables added to steward's own; they win over env_file.",
        kind: Kind::StringMap,
        example: "env = { RUST_LOG = \"info\", PORT = \"8080\" }",
        set: |c, f, d| d.env = c.env_table(f).unwrap_or_default(),
    },
    Key {
        name: "env_file",
        doc: "A dotenv file (NAME=value lines) read when the config is loaded.",
        kind: Kind::Path,
        example: "env_file = \".env\"",
        set: |c, f, d| d.env_file = c.env_file(f).unwrap_or_default(),
    },
    Key {
        name: "autostart",
        doc: "Start the program with steward (default true).",
        kind: Kind::Bool,
        example: "autostart = false",
        set: |c, f, d| {
            if let Some(b) = c.bool(f) {
                d.spec.autostart = b;
            }
        },
    },
    Key {
        name: "restart",
        doc: "When to restart the program after it exits (default \"on-failure\").",
        kind: Kind::Choice(RestartPolicy::NAMES),
        example: "restart = \"always\"",
        set: |c, f, d| {
            if let Some(r) = c.choice(f, RestartPolicy::from_name, RestartPolicy::NAMES) {
                d.spec.restart = r;
            }
        },
    },
    Key {
        name: "success_exit_codes",
        doc: "Exit codes that count as success, for restart = \"on-failure\" (default [0]).",
        kind: Kind::Ints { min: i32::MIN as i64, max: i32::MAX as i64, min_items: 0 },
        example: "success_exit_codes = [0, 2]",
        set: |c, f, d| {
            if let Some(codes) = c.exit_codes(f) {
                d.spec.success_exit_codes = codes;
            }
        },
    },
    Key {
        name: "restart_delay",
        doc: "The first wait before a restart; it doubles on each failure in a row (default \"100ms\").",
        kind: Kind::Duration,
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
        doc: "The longest wait before a restart (default \"30s\").",
        kind: Kind::Duration,
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
        doc: "How long a process must run for the backoff to start over (default \"10s\").",
        kind: Kind::Duration,
        example: "stable_after = \"30s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.stable_after = v;
            }
        },
    },
    Key {
        name: "max_restarts",
        doc: "Restarts allowed per restart_window before the program is Fatal (default 10).",
        kind: schema::U32,
        example: "max_restarts = 5",
        set: |c, f, d| {
            if let Some(v) = c.u32(f) {
                d.spec.max_restarts = v;
            }
        },
    },
    Key {
        name: "restart_window",
        doc: "The window max_restarts counts in (default \"60s\").",
        kind: Kind::Duration,
        example: "restart_window = \"5m\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.restart_window = v;
            }
        },
    },
    Key {
        name: "stop_signal",
        doc: "The signal that asks the program to stop (default \"TERM\"; on Windows \"ctrl-c\", \"ctrl-break\" or \"close\").",
        kind: Kind::Signal(StopSignal::NAMES),
        example: "stop_signal = \"INT\"",
        set: |c, f, d| {
            if let Some(s) = c.choice(f, StopSignal::from_name, StopSignal::NAMES) {
                d.spec.stop_signal = s;
            }
        },
    },
    Key {
        name: "stop_timeout",
        doc: "How long to wait after stop_signal before the process tree is killed (default \"10s\").",
        kind: Kind::Duration,
        example: "stop_timeout = \"30s\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.stop_timeout = v;
            }
        },
    },
    Key {
        name: "depends_on",
        doc: "Programs that must be ready before this one starts (and stop after it).",
        kind: Kind::Strings { min_items: 0 },
        example: "depends_on = [\"db\", \"cache\"]",
        set: |c, f, d| d.depends_on = c.depends_on(f).unwrap_or_default(),
    },
    Key {
        name: "ready",
        doc: "When the program counts as ready: \"up\" once it runs, \"notify\" when it sends READY=1 (sd_notify) (default \"up\").",
        kind: Kind::Choice(Readiness::NAMES),
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
        doc: "How the program's log files rotate.",
        kind: Kind::Table(|| schema::table(LOG_KEYS, &[])),
        example: "[programs.web.log]",
        set: |c, f, d| c.section(f, LOG_KEYS, &mut d.spec.log),
    },
    Key { name: "health",
        doc: "A health check: an http, tcp or exec probe, and what to do when it fails.",
        kind: Kind::Table(health::schema), example: "[programs.web.health]", set: |c, f, d| d.spec.health = c.health(f).map(Box::new) },
    Key { name: "max_memory",
        doc: "Restart the program when its process tree uses more memory than this for memory_grace (Linux, Windows).",
        kind: Kind::Size, example: "max_memory = \"512MB\"", set: health::set_max_memory },
    Key {
        name: "memory_grace",
        doc: "How long the process tree may stay above max_memory (default \"30s\").",
        kind: Kind::Duration,
        example: "memory_grace = \"1m\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.spec.memory_grace = v;
            }
        },
    },
    Key {
        name: "hard_memory_limit",
        doc: "Windows: also make max_memory the Job Object's memory limit, so allocations above it fail (default false).",
        kind: Kind::Bool,
        example: "hard_memory_limit = true",
        set: health::set_hard_memory_limit,
    },
    // Read before the other keys (`Ctx::instances_of`), so that `%{instance}` is known.
    Key { name: "instances",
        doc: "Run this many processes of the program, NAME:0 to NAME:N-1; %{instance} is each one's number.",
        kind: Kind::Int { min: 1, max: defaults::MAX_INSTANCES as i64 }, example: instances::INSTANCES_EXAMPLE, set: |_, _, _| {} },
    Key {
        name: "instance_env",
        doc: "An environment variable that also gets the instance number (beside STEWARD_INSTANCE).",
        kind: Kind::Str,
        example: "instance_env = \"NODE_APP_INSTANCE\"",
        set: |c, f, d| d.group.instance_env = c.instance_env(f),
    },
    Key {
        name: "sockets",
        doc: "Sockets steward binds once and passes to every process (systemd socket activation), one [programs.NAME.sockets.SOCKET] table each.",
        kind: Kind::Named(instances::socket_schema, schema::SOCKET_NAME_PATTERN),
        example: "[programs.web.sockets.http]",
        set: |c, f, d| d.group.sockets = c.sockets(f),
    },
    Key {
        name: "update",
        doc: "How a restart or a reload replaces the processes of a program with instances or sockets.",
        kind: Kind::Table(|| schema::table(instances::UPDATE_KEYS, &[])),
        example: "[programs.web.update]",
        set: |c, f, d| {
            let mut update = crate::config::model::UpdateSpec::default();
            c.section(f, instances::UPDATE_KEYS, &mut update);
            d.group.update = Some((update, f.span()));
        },
    },
    Key {
        name: "release",
        doc: "Signed releases of the program that `steward deploy` installs and switches between.",
        kind: Kind::Table(release::schema),
        example: "[programs.web.release]",
        set: |c, f, d| {
            d.release_span = Some(f.span());
            d.release = c.release(f);
        },
    },
];

pub(super) const LOG_KEYS: &[Key<LogSpec>] = &[
    Key {
        name: "max_size",
        doc: "Rotate when a log file would grow past this size; 0: never by size (default \"50MB\").",
        kind: Kind::Size,
        example: "max_size = \"10MB\"",
        set: |c, f, d| {
            if let Some(v) = c.size(f) {
                c.check_max_size(f, v);
                d.max_size = v;
            }
        },
    },
    Key {
        name: "rotate_every",
        doc: "Also rotate at the start of every hour or day (default: by size only).",
        kind: Kind::Choice(RotateEvery::NAMES),
        example: "rotate_every = \"daily\"",
        set: |c, f, d| {
            if let Some(v) = c.choice(f, RotateEvery::from_name, RotateEvery::NAMES) {
                d.rotate_every = Some(v);
            }
        },
    },
    Key {
        name: "keep",
        doc: "How many rotated files to keep (default 10).",
        kind: Kind::Int { min: 0, max: MAX_KEEP as i64 },
        example: "keep = 5",
        set: |c, f, d| match c.u32(f) {
            Some(v) if v > MAX_KEEP => c.error(
                f.span(),
                format!("`keep` is {v}; steward keeps at most {MAX_KEEP} rotated files"),
                "keep fewer, larger files: raise `max_size` instead",
            ),
            Some(v) => d.keep = v,
            None => {}
        },
    },
    Key {
        name: "compress",
        doc: "Gzip rotated files (default false).",
        kind: Kind::Bool,
        example: "compress = true",
        set: |c, f, d| {
            if let Some(v) = c.bool(f) {
                d.compress = v;
            }
        },
    },
    Key {
        name: "multiline_start",
        doc: "Shipping: group lines into records, each beginning with a line that matches this regular expression (such as \"^\\\\S\": continuation lines start with a space). Other lines join the record before them.",
        kind: Kind::Str,
        example: "multiline_start = \"^\\\\d{4}-\\\\d{2}-\\\\d{2}\"",
        set: |c, f, d| {
            if let Some(pattern) = c.string(f) {
                match regex::Regex::new(&pattern) {
                    Ok(_) => {
                        let m = d.multiline.get_or_insert_with(multiline_default);
                        m.start = pattern;
                    }
                    Err(e) => c.error(
                        f.span(),
                        format!("`multiline_start` is not a valid regular expression: {}", e.to_string().lines().last().unwrap_or("")),
                        "write a pattern such as \"^\\\\S\" or \"^\\\\d{4}-\\\\d{2}-\\\\d{2}\" (regex syntax: docs/shipping.md)",
                    ),
                }
            }
        },
    },
    Key {
        name: "multiline_timeout",
        doc: "With multiline_start: send a record whose next line has not come within this time (default \"1s\").",
        kind: Kind::Duration,
        example: "multiline_timeout = \"500ms\"",
        set: |c, f, d| {
            if let Some(v) = c.duration(f) {
                d.multiline.get_or_insert_with(multiline_default).timeout = v;
            }
        },
    },
    Key {
        name: "multiline_max_lines",
        doc: "With multiline_start: the most lines in one record (default 500).",
        kind: Kind::Int { min: 1, max: 100_000 },
        example: "multiline_max_lines = 200",
        set: |c, f, d| {
            if let Some(v) = c.in_range(f, 1u32, 100_000) {
                d.multiline.get_or_insert_with(multiline_default).max_lines = v;
            }
        },
    },
    Key {
        name: "format",
        doc: "How each line is stored: \"plain\" as written (default), or \"cri\": the capture time and stream before each line, which keeps shipped lines from being stored twice in Loki after a crash (docs/shipping.md).",
        kind: Kind::Choice(LogFormat::NAMES),
        example: "format = \"cri\"",
        set: |c, f, d| {
            if let Some(v) = c.choice(f, LogFormat::from_name, LogFormat::NAMES) {
                d.format = v;
            }
        },
    },
];

/// `multiline_*` before `multiline_start` is seen: the start stays empty, which the program's
/// check reports.
fn multiline_default() -> crate::config::Multiline {
    crate::config::Multiline { start: String::new(), timeout: Duration::from_secs(1), max_lines: 500 }
}

impl ProgramDraft {
    pub(super) fn new(name: &str, name_span: Span, dir: &Path) -> Self {
        let spec = ProgramSpec {
            name: name.to_owned(),
            instance: None,
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
            release: None,
        };
        ProgramDraft {
            spec,
            name_span,
            has_command: false,
            command_span: None,
            env: BTreeMap::new(),
            env_file: BTreeMap::new(),
            restart_delay_span: None,
            restart_max_delay_span: None,
            depends_on: Vec::new(),
            limit_spans: health::LimitSpans::default(),
            group: instances::GroupDraft::default(),
            release_span: None,
            release: None,
        }
    }

    /// The program's specs: itself, or one per instance (`web:0`..) with the instance number
    /// in `STEWARD_INSTANCE` (and `instance_env`); and its group, if it has one.
    pub(super) fn into_specs(mut self) -> (Vec<ProgramSpec>, Option<GroupSpec>) {
        let group = self.group.spec(&self.spec.name);
        let Some(_) = self.group.instances else { return (vec![self.into_spec()], group) };
        let name = self.spec.name.clone();
        let instance_env = self.group.instance_env.take();
        let more = std::mem::take(&mut self.group.more);
        let specs = std::iter::once(self)
            .chain(more)
            .enumerate()
            .map(|(index, draft)| {
                let index = index as u32;
                let mut spec = draft.into_spec();
                spec.name = crate::config::model::instance_name(&name, index);
                spec.instance = Some(index);
                spec.env.insert("STEWARD_INSTANCE".into(), index.to_string());
                if let Some(var) = &instance_env {
                    spec.env.insert(var.clone(), index.to_string());
                }
                spec
            })
            .collect();
        (specs, group)
    }

    pub(super) fn into_spec(self) -> ProgramSpec {
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
    pub(super) fn into_config(
        self,
        dir: &Path,
        origin: &Path,
        text: SourceText,
        warnings: Diagnostics,
    ) -> Config {
        let state_dir = self.supervisor.state_dir.unwrap_or_else(|| dir.join(defaults::STATE_DIR));
        let log_dir = self.supervisor.log_dir.unwrap_or_else(|| state_dir.join(defaults::LOG_SUBDIR));
        let api = self.api.and_then(|a| a.into_settings(&state_dir));
        let mut programs = BTreeMap::new();
        let mut groups = BTreeMap::new();
        let mut releases = BTreeMap::new();
        for (name, mut draft) in self.programs {
            if let Some(release) = draft.release.take() {
                releases.insert(name.clone(), release);
            }
            let (specs, group) = draft.into_specs();
            programs.extend(specs.into_iter().map(|s| (s.name.clone(), std::sync::Arc::new(s))));
            if let Some(group) = group {
                groups.insert(name, group);
            }
        }
        Config {
            source: origin.to_path_buf(),
            supervisor: SupervisorSettings {
                state_dir,
                log_dir,
                watchdog: self.supervisor.watchdog,
                watch_config: self.supervisor.watch_config.unwrap_or(false),
            },
            programs,
            groups,
            releases,
            self_update: self.self_update,
            text,
            api,
            dashboard: self.dashboard.map(dashboard::DashboardDraft::into_settings),
            metrics: self.metrics,
            alerts: self.alerts.into_iter().filter_map(alerts::AlertDraft::into_spec).collect(),
            ship: self.ship.into_iter().filter_map(ship::ShipDraft::into_spec).collect(),
            warnings,
        }
    }
}

/// `depends_on`: every name must be a program, not the program itself, and without cycles.
pub(super) fn check_dependencies(ctx: &mut Ctx<'_>, programs: &BTreeMap<String, Box<ProgramDraft>>) {
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
