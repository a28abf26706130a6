//! What one resource sample of 500 programs costs: the CPU time of `resources::sample` over
//! 500 real process trees (each a `steward-testchild` in a group of its own, as programs
//! are), averaged over 20 samples. Prints the figure for docs/benchmarks.md; Linux only.
//!
//! ```sh
//! cargo bench -p steward --bench resource_sampling
//! ```

#[cfg(target_os = "linux")]
fn main() {
    linux::run();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("resource sampling: this measurement runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use steward::process::{self, Spawned};
    use steward::resources;
    use testkit::{testchild, wait_until, DEADLINE};

    const PROGRAMS: usize = 500;
    const ROUNDS: u32 = 20;
    /// How often steward samples with the default `memory_grace` (30s / 4, at most 5 s).
    const EVERY: Duration = Duration::from_secs(5);

    /// Kills every tree on drop, so an interrupted run leaves nothing behind.
    struct Trees(Vec<Spawned>);

    impl Drop for Trees {
        fn drop(&mut self) {
            for s in &self.0 {
                let _ = s.tree.kill();
            }
        }
    }

    /// CPU time this thread has used.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    pub fn run() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Spawning needs the runtime (tokio's child handles); sampling itself is blocking.
        let _guard = runtime.enter();
        let trees = Trees(
            (0..PROGRAMS)
                .map(|_| {
                    let mut cmd = tokio::process::Command::new(testchild());
                    cmd.args(["--sleep", "1h"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    process::spawn_command(cmd).expect("spawn a test child")
                })
                .collect(),
        );
        let refs: Vec<_> = trees.0.iter().map(|s| s.tree.reference()).collect();
        wait_until(DEADLINE, "every program to be sampled", || {
            resources::sample(&refs).iter().all(Option::is_some).then_some(())
        });
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
            .count();
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        for _ in 0..ROUNDS {
            assert_eq!(resources::sample(&refs).len(), PROGRAMS);
        }
        let cpu = (thread_cpu() - cpu0) / ROUNDS;
        let wall = wall0.elapsed() / ROUNDS;
        println!(
            "resource sampling: {PROGRAMS} programs, {processes} processes on the machine: {:.2} ms CPU \
             ({:.2} ms wall) per sample; at one sample every {EVERY:?}, {:.3}% of a core",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() / EVERY.as_secs_f64() * 100.0
        );
    }
}
