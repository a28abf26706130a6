//! Prometheus metrics, encoded with the prometheus-client crate: the exposition of a
//! supervisor [`Snapshot`]. The API serves it as `GET /metrics` (`api::metrics`).
//!
//! Nothing is collected between scrapes: a scrape asks the supervisor for a [`Snapshot`] of
//! its programs, samples their process trees right then ([`collect`], on a blocking thread)
//! and builds a fresh registry. So metrics cost nothing while nobody scrapes, and an idle
//! steward has no timer for them.
//!
//! Formats: the OpenMetrics text format when the scraper asks for it (Prometheus does, in
//! its `Accept` header), else the Prometheus text format 0.0.4, which `promtool check
//! metrics` and older scrapers read. The two differ only in how counters are named in
//! `# HELP`/`# TYPE` lines and in the `# EOF` line ([`to_prometheus_text`]).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::SystemTime;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::protocol::SinkInfo;
use steward_core::fsm::{ExitStatus, State as ProgramState};
use steward_core::health::Health;

use crate::process::TreeRef;
use crate::resources::{self, Usage};
use crate::supervise::{Snapshot, Stream};

/// API requests by status code (all API listeners of this process).
static API_REQUESTS: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());

/// Count one API request by the status code of its reply.
pub fn count_api_request(code: u16) {
    let mut counts = API_REQUESTS.lock().unwrap_or_else(|e| e.into_inner());
    *counts.entry(code).or_default() += 1;
}

/// Sample the process trees of `snapshot` now and render the exposition. Blocking: it reads
/// `/proc` (or the Job Objects), so call it on a blocking thread.
pub fn collect(snapshot: &Snapshot, sinks: &[SinkInfo], openmetrics: bool) -> String {
    let trees: Vec<TreeRef> = snapshot.programs.iter().filter_map(|p| p.tree.clone()).collect();
    let mut sampled = resources::sample(&trees).into_iter();
    let usage: Vec<Option<Usage>> =
        snapshot.programs.iter().map(|p| p.tree.as_ref().and_then(|_| sampled.next().flatten())).collect();
    render(snapshot, &usage, resources::own(), sinks, openmetrics)
}

type Labels = Vec<(&'static str, String)>;

/// `program="web"`, and `instance="2"` for an instance (`web:2`): the slot, never the pid,
/// so the series stay as many as the instances.
fn program(name: &str) -> Labels {
    match name.split_once(':') {
        Some((group, index)) => vec![("program", group.to_owned()), ("instance", index.to_owned())],
        None => vec![("program", name.to_owned())],
    }
}

/// [`program`]'s labels and one more.
fn program_and(name: &str, label: (&'static str, String)) -> Labels {
    let mut labels = program(name);
    labels.push(label);
    labels
}

/// The exposition of `snapshot`; `usage` is per program, in the same order.
pub fn render(
    snapshot: &Snapshot,
    usage: &[Option<Usage>],
    own: Option<Usage>,
    sinks: &[SinkInfo],
    openmetrics: bool,
) -> String {
    let mut registry = Registry::default();
    if !sinks.is_empty() {
        register_sinks(&mut registry, sinks);
    }

    let up = Family::<Labels, Gauge>::default();
    let state = Family::<Labels, Gauge>::default();
    let restarts = Family::<Labels, Counter>::default();
    let last_exit = Family::<Labels, Gauge>::default();
    let start_time = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let cpu = Family::<Labels, Counter<f64, AtomicU64>>::default();
    let rss = Family::<Labels, Gauge>::default();
    let health = Family::<Labels, Gauge>::default();
    let log_open_failures = Family::<Labels, Counter>::default();
    let memory_limit = Family::<Labels, Gauge>::default();
    for (p, usage) in snapshot.programs.iter().zip(usage) {
        let status = &p.status;
        up.get_or_create(&program(&p.name)).set(i64::from(status.state == ProgramState::Running));
        for s in ProgramState::ALL {
            let labels = program_and(&p.name, ("state", s.name().to_owned()));
            state.get_or_create(&labels).set(i64::from(status.state == s));
        }
        restarts.get_or_create(&program(&p.name)).inc_by(status.restarts);
        if let Some(exit) = status.last_exit {
            let code = match exit {
                ExitStatus::Code(c) => i64::from(c),
                // As shells report it.
                ExitStatus::Signal(s) => 128 + i64::from(s),
            };
            last_exit.get_or_create(&program(&p.name)).set(code);
        }
        if let Some(since) = status.since {
            start_time.get_or_create(&program(&p.name)).set(unix_seconds(since));
        }
        if let Some(u) = usage {
            cpu.get_or_create(&program(&p.name)).inc_by(u.cpu_seconds);
            rss.get_or_create(&program(&p.name)).set(i64::try_from(u.rss_bytes).unwrap_or(i64::MAX));
        }
        if let Some(limit) = p.max_memory {
            memory_limit.get_or_create(&program(&p.name)).set(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        for (stream, failures) in Stream::BOTH.iter().zip(p.log_open_failures) {
            let labels = program_and(&p.name, ("stream", stream.name().to_owned()));
            log_open_failures.get_or_create(&labels).inc_by(failures);
        }
        if let Some(h) = p.health {
            for each in Health::ALL {
                let labels = program_and(&p.name, ("health", each.name().to_owned()));
                health.get_or_create(&labels).set(i64::from(h == each));
            }
        }
    }
    registry.register("steward_program_up", "Whether the program is running (1) or not (0)", up);
    // Only with programs that run a release: a program's version as a label, Prometheus's
    // info pattern (join on it to see which version a series came from).
    if snapshot.programs.iter().any(|p| p.version.is_some()) {
        let info = Family::<Labels, Gauge>::default();
        for p in &snapshot.programs {
            if let Some(v) = &p.version {
                info.get_or_create(&program_and(&p.name, ("version", v.to_string()))).set(1);
            }
        }
        registry.register(
            "steward_program_version_info",
            "The release version the program runs (programs with [release])",
            info,
        );
    }
    if snapshot.groups.iter().any(|g| g.instances.is_some()) {
        let instances = Family::<Labels, Gauge>::default();
        for g in &snapshot.groups {
            if let Some(n) = g.instances {
                instances.get_or_create(&program(&g.name)).set(i64::from(n));
            }
        }
        registry.register(
            "steward_program_instances",
            "The instances a program with `instances` has now (as configured, or scaled to)",
            instances,
        );
    }
    registry.register("steward_program_state", "The program's state: 1 for the state it is in", state);
    registry.register("steward_program_restarts", "Automatic restarts since steward started", restarts);
    registry.register(
        "steward_program_last_exit_code",
        "Exit code of the program's last process (128+N for a signal N)",
        last_exit,
    );
    registry.register(
        "steward_program_start_time_seconds",
        "When the program's current process started, in seconds since the Unix epoch",
        start_time,
    );
    registry.register(
        "steward_program_cpu_seconds",
        "CPU time (user and system) of the program's process tree; starts over with each process",
        cpu,
    );
    registry.register(
        "steward_program_memory_rss_bytes",
        "Resident memory of the program's whole process tree",
        rss,
    );
    registry.register(
        "steward_program_memory_limit_bytes",
        "The program's max_memory (programs with one only)",
        memory_limit,
    );
    registry.register(
        "steward_log_open_failures",
        "Runs whose output on the stream was discarded because its log file could not be opened",
        log_open_failures,
    );
    registry.register(
        "steward_program_health",
        "The program's health check result: 1 for the value it has (programs with a check only)",
        health,
    );

    let build = Family::<Labels, Gauge>::default();
    build.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())]).set(1);
    registry.register("steward_build_info", "steward's version, as a label", build);
    let reloads = Family::<Labels, Counter>::default();
    reloads.get_or_create(&vec![("result", "applied".to_owned())]).inc_by(snapshot.reloads_applied);
    reloads.get_or_create(&vec![("result", "rejected".to_owned())]).inc_by(snapshot.reloads_rejected);
    registry.register("steward_reloads", "Config reloads, applied or rejected (invalid config)", reloads);
    let api = Family::<Labels, Counter>::default();
    for (code, n) in API_REQUESTS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        api.get_or_create(&vec![("code", code.to_string())]).inc_by(*n);
    }
    registry.register("steward_api_requests", "Requests to steward's API, by HTTP status code", api);
    let firing = Family::<Labels, Gauge>::default();
    for (alert, program) in &snapshot.alerts_firing {
        firing.get_or_create(&vec![("alert", alert.clone()), ("program", program.clone())]).set(1);
    }
    registry.register("steward_alert_firing", "Alerts firing now (1 per alert and program)", firing);

    let start = Gauge::<f64, AtomicU64>::default();
    start.set(unix_seconds(snapshot.started_at));
    registry.register(
        "process_start_time_seconds",
        "When steward started, in seconds since the Unix epoch",
        start,
    );
    if let Some(own) = own {
        let rss = Gauge::<i64>::default();
        rss.set(i64::try_from(own.rss_bytes).unwrap_or(i64::MAX));
        registry.register("process_resident_memory_bytes", "steward's own resident memory", rss);
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by(own.cpu_seconds);
        registry.register("process_cpu_seconds", "steward's own CPU time (user and system)", cpu);
    }

    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    if openmetrics {
        text
    } else {
        to_prometheus_text(&text)
    }
}

/// `[[ship]]`: each sink's counters, labelled `sink="NAME"` (only with sinks).
fn register_sinks(registry: &mut Registry, sinks: &[SinkInfo]) {
    let sink = |s: &SinkInfo| vec![("sink", s.name.clone())];
    let counter = |f: fn(&SinkInfo) -> u64| {
        let family = Family::<Labels, Counter>::default();
        for s in sinks {
            family.get_or_create(&sink(s)).inc_by(f(s));
        }
        family
    };
    registry.register(
        "steward_ship_sent_lines",
        "Lines the sink's receiver acknowledged",
        counter(|s| s.sent_lines),
    );
    registry.register(
        "steward_ship_sent_bytes",
        "Bytes of lines the sink's receiver acknowledged",
        counter(|s| s.sent_bytes),
    );
    registry.register(
        "steward_ship_retries",
        "Requests the sink sent again after an error or a busy answer",
        counter(|s| s.retries),
    );
    let dropped = Family::<Labels, Counter>::default();
    for s in sinks {
        for (reason, n) in [
            ("refused", s.dropped_refused),
            ("retention", s.dropped_retention),
            ("rejected", s.rejected_by_receiver),
        ] {
            dropped.get_or_create(&vec![("sink", s.name.clone()), ("reason", reason.to_owned())]).inc_by(n);
        }
    }
    registry.register(
        "steward_ship_dropped_lines",
        "Lines not delivered: refused for good (dead-lettered), deleted by retention before they were sent, or rejected by an OTLP collector",
        dropped,
    );
    let up = Family::<Labels, Gauge>::default();
    let lag_bytes = Family::<Labels, Gauge>::default();
    let lag_seconds = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for s in sinks {
        up.get_or_create(&sink(s)).set(i64::from(s.up));
        lag_bytes.get_or_create(&sink(s)).set(i64::try_from(s.lag_bytes.unwrap_or(0)).unwrap_or(i64::MAX));
        lag_seconds.get_or_create(&sink(s)).set(s.lag_seconds);
    }
    registry.register(
        "steward_ship_sink_up",
        "Whether the sink's last request was delivered (1) or failed (0)",
        up,
    );
    registry.register(
        "steward_ship_lag_bytes",
        "Bytes of the shipped log files the sink's receiver has not acknowledged yet",
        lag_bytes,
    );
    registry.register(
        "steward_ship_lag_seconds",
        "How long the oldest line not yet acknowledged has waited",
        lag_seconds,
    );
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// OpenMetrics text to the Prometheus text format 0.0.4. In OpenMetrics a counter family
/// `x` has samples `x_total`; in the older format the family is named `x_total` itself, so
/// the `# HELP` and `# TYPE` lines of counters are renamed. `# UNIT` and `# EOF` do not exist
/// there and are dropped. Samples are the same in both.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::{ProgramSnapshot, Status};
    use std::time::Duration;

    fn sample(name: &str, state: ProgramState) -> ProgramSnapshot {
        ProgramSnapshot {
            name: name.into(),
            status: Status {
                state,
                pid: None,
                since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                restarts: 3,
                last_exit: Some(ExitStatus::Signal(9)),
                last_error: None,
            },
            health: Some(Health::Healthy),
            waiting_for: Vec::new(),
            tree: None,
            log_open_failures: [0, 2],
            version: None,
            max_memory: None,
        }
    }

    #[test]
    fn a_release_version_is_an_info_metric_only_when_a_program_runs_one() {
        let mut snap = snapshot();
        let text = render(&snap, &[None, None], None, &[], false);
        assert!(!text.contains("steward_program_version_info"), "{text}");
        snap.programs[0].version = Some(steward_core::release::Version::new(1, 4, 0));
        let text = render(&snap, &[None, None], None, &[], false);
        let name = &snap.programs[0].name;
        assert!(
            text.contains(&format!("steward_program_version_info{{program=\"{name}\",version=\"1.4.0\"}} 1")),
            "{text}"
        );
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            programs: vec![sample("web", ProgramState::Running), sample("db", ProgramState::Backoff)],
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
            reloads_applied: 2,
            reloads_rejected: 1,
            groups: Vec::new(),
            alerts_firing: vec![("flapping".into(), "db".into())],
        }
    }

    #[test]
    fn instances_are_labelled_by_their_number() {
        let mut snap = snapshot();
        snap.programs = vec![sample("web:0", ProgramState::Running), sample("web:1", ProgramState::Backoff)];
        snap.groups = vec![crate::supervise::GroupSnapshot {
            name: "web".into(),
            instances: Some(2),
            sockets: vec![],
            rollout: None,
        }];
        let om = render(&snap, &[None, None], None, &[], true);
        for line in [
            "steward_program_up{program=\"web\",instance=\"0\"} 1",
            "steward_program_up{program=\"web\",instance=\"1\"} 0",
            "steward_program_state{program=\"web\",instance=\"1\",state=\"backoff\"} 1",
            "steward_program_instances{program=\"web\"} 2",
        ] {
            assert!(om.lines().any(|l| l == line), "no line {line:?} in\n{om}");
        }
        // Without instances there is no instances series at all.
        assert!(!render(&snapshot(), &[None, None], None, &[], true).contains("steward_program_instances"));
    }

    #[test]
    fn programs_and_steward_in_both_formats() {
        let usage = [Some(Usage { rss_bytes: 4096, cpu_seconds: 1.5, processes: 2 }), None];
        let om = render(&snapshot(), &usage, None, &[], true);
        for line in [
            "# TYPE steward_program_restarts counter",
            "steward_program_restarts_total{program=\"web\"} 3",
            "steward_program_up{program=\"web\"} 1",
            "steward_program_up{program=\"db\"} 0",
            "steward_program_state{program=\"db\",state=\"backoff\"} 1",
            "steward_program_state{program=\"db\",state=\"running\"} 0",
            "steward_program_last_exit_code{program=\"web\"} 137",
            "steward_program_start_time_seconds{program=\"web\"} 1700000000.0",
            "steward_program_cpu_seconds_total{program=\"web\"} 1.5",
            "steward_program_memory_rss_bytes{program=\"web\"} 4096",
            "steward_program_health{program=\"web\",health=\"healthy\"} 1",
            "steward_program_health{program=\"web\",health=\"unhealthy\"} 0",
            "steward_log_open_failures_total{program=\"web\",stream=\"stdout\"} 0",
            "steward_log_open_failures_total{program=\"db\",stream=\"stderr\"} 2",
            "steward_reloads_total{result=\"rejected\"} 1",
            "steward_alert_firing{alert=\"flapping\",program=\"db\"} 1",
            "process_start_time_seconds 1600000000.0",
            "# EOF",
        ] {
            assert!(om.lines().any(|l| l == line), "no line {line:?} in\n{om}");
        }
        // A program never sampled has no memory line.
        assert!(!om.contains("steward_program_memory_rss_bytes{program=\"db\"}"), "{om}");
        let text = render(&snapshot(), &usage, None, &[], false);
        assert!(text.contains("# TYPE steward_program_restarts_total counter\n"), "{text}");
        assert!(text.contains("# HELP steward_program_restarts_total Automatic"), "{text}");
        assert!(text.contains("steward_program_restarts_total{program=\"web\"} 3\n"), "{text}");
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn only_counter_descriptors_are_renamed() {
        let om =
            "# HELP a_seconds A.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\n\
                  # HELP b B.\n# TYPE b gauge\nb 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_seconds_total A.\n# TYPE a_seconds_total counter\na_seconds_total 1\n# HELP b B.\n# TYPE b gauge\nb 2\n"
        );
    }
}
