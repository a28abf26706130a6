//! Micro-benchmarks of the pure core's hot paths: config parsing, state-machine steps and
//! rotation decisions. `cargo bench -p steward-core`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use steward_core::config::parse::EmptyEnv;
use steward_core::config::{self, Config, LogSpec};
use steward_core::fsm::{Event, ExitStatus, Machine, Policy};
use steward_core::rotation::{self, FileState};

/// A config of `n` programs, each with a few of the keys people set.
fn config_text(n: usize) -> String {
    let mut s = String::from("[supervisor]\nstate_dir = \"/tmp/st\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "\n[programs.app{i}]\ncommand = [\"/usr/bin/app\", \"--port\", \"{port}\"]\n\
             restart = \"always\"\nrestart_delay = \"200ms\"\nenv = {{ RUST_LOG = \"info\", PORT = \"{port}\" }}\n\
             [programs.app{i}.log]\nmax_size = \"10MB\"\nkeep = 5\n",
            port = 8000 + i
        ));
    }
    s
}

fn parse(text: &str) -> Config {
    config::parse_str(text, Path::new("/tmp/st/steward.toml"), &EmptyEnv).expect("valid config")
}

fn config_parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("config_parse");
    for n in [10, 500] {
        let text = config_text(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{n}_programs"), |b| b.iter(|| parse(black_box(&text))));
    }
    g.finish();
}

/// The policy of a program with `restart`, no delay and no give-up (the restart benchmark's
/// fastest config), taken from a parsed config so that it follows the real defaults.
fn policy(restart: &str) -> Policy {
    let text = format!(
        "[programs.p]\ncommand = [\"x\"]\nrestart = \"{restart}\"\nrestart_delay = \"0ms\"\n\
         restart_max_delay = \"0ms\"\nmax_restarts = 1000000000\n"
    );
    Policy::from_spec(&parse(&text).programs["p"])
}

fn fsm_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("fsm");
    // One crash and restart: Exited -> Backoff (KillTree, ArmTimer), TimerFired -> Spawn,
    // Spawned -> Running. The retry window keeps growing, as in a long crash loop.
    g.bench_function("crash_restart_cycle", |b| {
        let mut m = Machine::new(policy("always"));
        let mut now = Instant::now();
        m.handle(Event::Start, now);
        m.handle(Event::Spawned { pid: 1 }, now);
        b.iter(|| {
            now += Duration::from_millis(1);
            black_box(m.handle(Event::Exited(ExitStatus::Code(1)), now));
            black_box(m.handle(Event::TimerFired, now));
            black_box(m.handle(Event::Spawned { pid: 2 }, now));
        })
    });
    // A stop and a start by hand: Stop -> Stopping (Signal, ArmTimer), Exited -> Stopped,
    // Start -> Starting (Spawn), Spawned -> Running.
    g.bench_function("stop_start_cycle", |b| {
        b.iter_batched(
            || {
                let mut m = Machine::new(policy("on-failure"));
                let now = Instant::now();
                m.handle(Event::Start, now);
                m.handle(Event::Spawned { pid: 1 }, now);
                (m, now)
            },
            |(mut m, now)| {
                black_box(m.handle(Event::Stop, now));
                black_box(m.handle(Event::Exited(ExitStatus::Signal(15)), now));
                black_box(m.handle(Event::Start, now));
                black_box(m.handle(Event::Spawned { pid: 2 }, now));
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn rotation_decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("rotation_next_step");
    // What one pump read hands over: 128 KiB of 100-byte lines.
    let chunk: Vec<u8> =
        (0..1311).flat_map(|i| format!("{i:010} {}\n", "x".repeat(88)).into_bytes()).collect();
    let spec = LogSpec { max_size: 10 << 20, keep: 100, ..LogSpec::default() };
    let now = SystemTime::now();
    let fits = FileState { len: 1 << 20, started: Some(now), at_line_start: true };
    g.bench_function("fits", |b| b.iter(|| rotation::next_step(&spec, black_box(&fits), &chunk, now)));
    // The chunk crosses max_size: find the last whole line that fits (searched backwards
    // from the end of the room left, so it costs about one line).
    let crosses = FileState { len: (10 << 20) - 65_000, started: Some(now), at_line_start: true };
    g.bench_function("crosses_max_size", |b| {
        b.iter(|| rotation::next_step(&spec, black_box(&crosses), &chunk, now))
    });
    g.finish();
}

criterion_group!(benches, config_parsing, fsm_steps, rotation_decisions);
criterion_main!(benches);
