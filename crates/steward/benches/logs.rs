//! Micro-benchmarks of log capture: line framing (`logs::pump`) into a `LogFile` in a
//! temporary folder, without and with rotation, and `LogFile` writes on their own.
//! `cargo bench -p steward --bench logs`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use steward::logs::{self, LogFile};
use steward_core::config::LogSpec;

/// `n` numbered 100-byte lines, like the harness's log generator.
fn lines(n: usize) -> Vec<u8> {
    (1..=n).flat_map(|i| format!("{i:010} {}\n", "x".repeat(88)).into_bytes()).collect()
}

fn spec(max_size: u64) -> LogSpec {
    LogSpec { max_size, keep: 5, rotate_every: None, compress: false, ..Default::default() }
}

fn pump(c: &mut Criterion) {
    let data = lines(160_000); // 16 MB
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("pump_to_logfile");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    // No rotation, and rotation every 4 MiB (not a multiple of the line length).
    for (name, max_size) in [("no_rotation", 0), ("rotate_4MiB", 4 << 20)] {
        g.bench_function(name, |b| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bench.out.log");
            b.iter(|| {
                let _ = std::fs::remove_file(&path);
                let log = LogFile::open(path.clone(), spec(max_size)).unwrap().shared();
                let n = runtime.block_on(logs::pump(&data[..], log)).unwrap();
                assert_eq!(n, data.len() as u64);
            })
        });
    }
    g.finish();
}

fn write_lines(c: &mut Criterion) {
    // What one pump read hands over: 128 KiB of whole lines (1310 lines).
    let chunk = lines(1310);
    let mut g = c.benchmark_group("logfile_write_lines");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("128KiB_chunk", |b| {
        let dir = tempfile::tempdir().unwrap();
        // Rotation at 64 MiB keeps the file (and the folder) bounded during the run.
        let mut log = LogFile::open(dir.path().join("bench.out.log"), spec(64 << 20)).unwrap();
        b.iter(|| log.write_lines(black_box(&chunk), SystemTime::now()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, pump, write_lines);
criterion_main!(benches);
