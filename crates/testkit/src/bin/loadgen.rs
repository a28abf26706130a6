//! `steward-loadgen`: a command line over [`testkit::load`], for people and scripts.
//!
//! Sends HTTP load to a `steward-testserver` (or any server answering `pid=<pid> rev=<rev>`
//! with an `x-pid` header) for `--duration`, then prints the [`testkit::load::Report`] as
//! JSON on stdout. See `--help` ([`args::USAGE`]) for the flags and exit codes. Loopback
//! addresses and Unix sockets only: it is a test tool.
//!
//! ```text
//! steward-loadgen --addr 127.0.0.1:8080 --concurrency 32 --duration 5s --keep-alive
//! ```

#[path = "loadgen/args.rs"]
mod args;

use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args_os().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("steward-loadgen: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let load = match testkit::load::start(opts.config) {
        Ok(load) => load,
        Err(e) => {
            eprintln!("steward-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    // The run's length, not a wait for something to happen: this is the one sleep.
    std::thread::sleep(opts.duration);
    let mut report = load.stop();
    if !opts.records {
        report.responses.clear();
    }
    let json = serde_json::to_string_pretty(&report).expect("a report serialises");
    let mut out = io::stdout().lock();
    // A closed stdout (`| head`) is not a failure of the load.
    let _ = writeln!(out, "{json}").and_then(|()| out.flush());
    if report.counts.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
