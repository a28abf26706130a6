//! Extreme values in every numeric key of the config, then the pure decisions driven with
//! them at extreme event timings: a config that `steward check` accepts must never make
//! the state machine, backoff, alerts, health, memory limits or rotation panic (release
//! builds abort on a panic, which would take every supervised program down).
//!
//! Each generated config either parses, and is then driven, or is refused with located
//! errors.

use std::time::{Duration, Instant, UNIX_EPOCH};

use proptest::prelude::*;
use steward_core::alerts::{Evaluator, Observation};
use steward_core::config::{parse_str, Config, OnPlatform, Platform};
use steward_core::fsm::{Event, ExitStatus, Machine, Policy, State};
use steward_core::health::HealthCheck;
use steward_core::limits::MemoryGuard;
use steward_core::rotation::{self, FileState, Step};
use steward_core::units;

use crate::support::{origin, FakeEnv};

/// A duration as a config writes it: the edges of what parses, and arbitrary large ones.
fn duration(pick: u8, n: u64) -> String {
    match pick % 10 {
        0 => "0s".to_owned(),
        1 => "1ns".to_owned(),
        2 => "1y".to_owned(),
        3 => "365d 6h".to_owned(),
        4 => "9223372036854775807s".to_owned(),
        5 => "18446744073709551615s".to_owned(),
        6 => "300000000000y".to_owned(),
        7 => format!("{n}s"),
        8 => format!("{n}ns"),
        _ => format!("{}s", n % 31_557_601),
    }
}

/// A count as a bare integer: the edges of u32 and i64.
fn count(pick: u8, n: u64) -> String {
    match pick % 6 {
        0 => "0".to_owned(),
        1 => "1".to_owned(),
        2 => u32::MAX.to_string(),
        3 => i64::MAX.to_string(),
        4 => "-1".to_owned(),
        _ => (n as u32).to_string(),
    }
}

/// A size, bare or with a unit.
fn size(pick: u8, n: u64) -> String {
    match pick % 7 {
        0 => "0".to_owned(),
        1 => "1".to_owned(),
        2 => "\"4KB\"".to_owned(),
        3 => u64::MAX.to_string(),
        4 => "\"16EiB\"".to_owned(),
        5 => "\"15EiB\"".to_owned(),
        _ => n.to_string(),
    }
}

/// A config with one program, a health check, a memory limit and three alert rules, whose
/// every numeric key is drawn from the values above (one pick and one number per key).
fn config_text() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<u8>(), any::<u64>()), 20).prop_map(|v| {
        let d = |i: usize| duration(v[i].0, v[i].1);
        let c = |i: usize| count(v[i].0, v[i].1);
        let z = |i: usize| size(v[i].0, v[i].1);
        format!(
            r#"[supervisor]
watchdog = "{}"

[programs.web]
command = "web"
restart_delay = "{}"
restart_max_delay = "{}"
stable_after = "{}"
restart_window = "{}"
stop_timeout = "{}"
memory_grace = "{}"
max_restarts = {}
max_memory = {}
log = {{ max_size = {}, keep = {}, rotate_every = "hourly" }}
health = {{ tcp = "127.0.0.1:9", interval = "{}", timeout = "{}", start_period = "{}", retries = {} }}

[[alerts]]
name = "flapping"
when = "restarts > {} within {}"
command = ["notify"]
repeat_every = "{}"

[[alerts]]
name = "big"
when = "memory > {}"
command = ["notify"]

[[alerts]]
name = "sick"
when = "unhealthy for {}"
command = ["notify"]
"#,
            d(0),
            d(1),
            d(2),
            d(3),
            d(4),
            d(5),
            d(6),
            c(7),
            z(8),
            z(9),
            c(10),
            d(11),
            d(12),
            d(13),
            c(14),
            c(15),
            d(16),
            d(17),
            z(18).trim_matches('"'),
            d(19),
        )
    })
}

/// What happens to a program, with how long after the previous thing it happens.
fn timeline() -> impl Strategy<Value = Vec<(u8, Duration)>> {
    let gap = |pick: u8, n: u64| match pick % 6 {
        0 => Duration::ZERO,
        1 => Duration::from_nanos(1),
        2 => Duration::MAX,
        3 => units::MAX_DURATION,
        4 => Duration::from_nanos(n),
        _ => Duration::from_secs(n),
    };
    prop::collection::vec((0u8..12, any::<u8>(), any::<u64>()), 1..40)
        .prop_map(move |v| v.into_iter().map(|(kind, pick, n)| (kind, gap(pick, n))).collect())
}

fn event(kind: u8) -> Event {
    match kind {
        0 => Event::Start,
        1 => Event::Stop,
        2 => Event::Restart,
        3 => Event::AutoRestart { cause: "unhealthy".into() },
        4 => Event::Spawned { pid: 7 },
        5 => Event::SpawnFailed { reason: "gone".into() },
        6 => Event::Ready,
        7 => Event::Exited(ExitStatus::Code(0)),
        8 => Event::Exited(ExitStatus::Code(1)),
        9 => Event::Exited(ExitStatus::Signal(9)),
        _ => Event::TimerFired,
    }
}

/// Drives every pure decision the config feeds, at the timings of `timeline`.
fn drive(config: &Config, timeline: &[(u8, Duration)]) {
    let spec = &config.programs["web"];
    let mut machine = Machine::new(Policy::from_spec(spec));
    let mut alerts = Evaluator::new(config.alerts.clone());
    let mut health = spec.health.as_deref().map(HealthCheck::new);
    let mut memory = spec.max_memory.map(|limit| MemoryGuard::new(limit, spec.memory_grace));
    let mut file = FileState::EMPTY;
    let mut now = Instant::now();
    let mut wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for &(kind, gap) in timeline {
        now = units::later(now, gap);
        wall = wall.checked_add(gap).unwrap_or(wall);
        let step = machine.handle(event(kind), now);
        if step.change.is_some() {
            alerts.observe("web", Observation::State(machine.state()), now);
        }
        if kind == 8 {
            alerts.observe("web", Observation::Restarted, now);
        }
        if let Some(h) = &mut health {
            if machine.state() == State::Running {
                h.started(now);
            }
            let change = h.observe(kind % 2 == 0, now).change;
            if let Some(c) = change {
                alerts.observe("web", Observation::Health(c.to), now);
            }
        }
        let rss = u64::from(kind).saturating_mul(u64::MAX / 11);
        if let Some(m) = &mut memory {
            m.observe(rss, now);
        }
        alerts.observe("web", Observation::Memory(Some(rss)), now);
        alerts.tick(now);
        if let Some(at) = alerts.next_deadline(now) {
            alerts.tick(at);
        }
        // Rotation: a line of `kind` bytes (none for 0) onto a file of extreme length.
        file.len = file.len.saturating_add(gap.as_secs());
        file.started.get_or_insert(wall);
        let line = vec![b'x'; usize::from(kind)];
        match rotation::next_step(&spec.log, &file, &line, wall) {
            Step::Rotate | Step::CutLine => {
                file = FileState::EMPTY;
                rotation::next_stamp(wall, Some(rotation::Stamp::from_time(wall)));
            }
            Step::Write(n) => {
                assert!(n <= line.len());
                file.len = file.len.saturating_add(n as u64);
            }
        }
    }
}

fn check(text: &str, timeline: &[(u8, Duration)]) {
    let env = OnPlatform { env: FakeEnv::new(), platform: Platform::Linux };
    match parse_str(text, &origin(), &env) {
        Ok(config) => drive(&config, timeline),
        Err(diags) => {
            for d in diags.iter() {
                assert!(d.line > 0 && d.col > 0, "an error without a place: {d}\nin:\n{text}");
                assert!(d.line <= text.lines().count(), "{d}\nin:\n{text}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_accepted_value_panics_at_run_time(text in config_text(), timeline in timeline()) {
        check(&text, &timeline);
    }
}

/// The values that panicked before durations were capped: they are refused now, at the key.
#[test]
fn the_durations_that_used_to_panic_are_refused() {
    for key in [
        "stop_timeout",
        "restart_delay",
        "restart_max_delay",
        "restart_window",
        "stable_after",
        "memory_grace",
    ] {
        for value in ["9223372036854775807s", "300000000000y"] {
            let text = format!("[programs.web]\ncommand = \"web\"\n{key} = \"{value}\"\n");
            let diags = crate::support::errors(&text);
            let d = diags.iter().next().unwrap_or_else(|| panic!("{key} = {value} was accepted"));
            assert_eq!((d.line, d.message.contains("longer than a year")), (3, true), "{d}");
        }
    }
}

/// The largest values accepted still drive everything.
#[test]
fn the_largest_accepted_values_run() {
    let text = config_text_with_every_key_at("1y", &u32::MAX.to_string(), &u64::MAX.to_string());
    let env = OnPlatform { env: FakeEnv::new(), platform: Platform::Linux };
    let config = parse_str(&text, &origin(), &env).unwrap_or_else(|d| panic!("{d}"));
    let gaps = [Duration::ZERO, Duration::MAX, units::MAX_DURATION, Duration::from_nanos(1)];
    let timeline: Vec<(u8, Duration)> = (0..48u8).map(|i| (i % 12, gaps[usize::from(i) % 4])).collect();
    drive(&config, &timeline);
}

fn config_text_with_every_key_at(d: &str, n: &str, size: &str) -> String {
    format!(
        r#"[supervisor]
watchdog = "{d}"

[programs.web]
command = "web"
restart_delay = "{d}"
restart_max_delay = "{d}"
stable_after = "{d}"
restart_window = "{d}"
stop_timeout = "{d}"
memory_grace = "{d}"
max_restarts = {n}
max_memory = {size}
log = {{ max_size = {size}, keep = 10000, rotate_every = "daily" }}
health = {{ tcp = "127.0.0.1:9", interval = "{d}", timeout = "{d}", start_period = "{d}", retries = 1000 }}

[[alerts]]
name = "flapping"
when = "restarts > {n} within {d}"
command = ["notify"]
repeat_every = "{d}"

[[alerts]]
name = "big"
when = "memory > {size}"
command = ["notify"]

[[alerts]]
name = "sick"
when = "unhealthy for {d}"
command = ["notify"]
"#
    )
}
