//! A minimal service: it starts, says it is ready, logs each control it gets, and stops when
//! asked. Run it from a console (Ctrl+C stops it, `kill -HUP` reloads it), or install it
//! as a service.
//!
//! ```text
//! cargo run -p steward-service --example minimal -- [--start-delay MS] [--fail CODE] [--panic]
//!     [--log FILE] [--log-dir DIR]
//! ```
//! `--start-delay` makes the start slow (the manager sees it pending meanwhile); `--fail`
//! ends it as a failure with that exit code once it is asked to stop, so the manager's
//! recovery can be seen; `--panic` panics once ready. What it does goes to stdout, and also
//! to `--log` (a Windows service has no console). `--log-dir` sets up the library's log
//! (`steward_service::log`): the Event Log under the SCM, the journal under systemd, daily
//! files in DIR otherwise.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use steward_service::log::LogOptions;
use steward_service::{Control, Failure, RunOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)?.parse().ok()
    };
    let start_delay = Duration::from_millis(option("--start-delay").unwrap_or(0));
    let fail = option("--fail").and_then(|c| u32::try_from(c).ok());
    let path =
        |name: &str| args.iter().position(|a| a == name).and_then(|at| args.get(at + 1)).map(PathBuf::from);
    let log = path("--log");
    let log_dir = path("--log-dir");
    let panic = args.iter().any(|a| a == "--panic");
    let say = move |line: &str| say(line, log.as_deref());

    steward_service::run(RunOptions::new("minimal").accept_pause(true), move |ctx| {
        if let Some(dir) = log_dir {
            let to = steward_service::log::init("minimal", ctx.mode(), &LogOptions::new().file_in(dir))?;
            tracing::info!(pid = std::process::id(), "starting; the log goes to {}", to[0]);
        }
        say(&format!("starting ({:?}), pid {}", ctx.mode(), std::process::id()));
        std::thread::sleep(start_delay);
        ctx.ready();
        say("ready");
        if panic {
            panic!("asked to panic");
        }
        for request in ctx.controls() {
            say(&format!("control {:?}", request.control()));
            if let Control::Stop(_) = request.control() {
                break;
            }
            request.ack();
        }
        match fail {
            Some(code) => Err(Failure::new(code, "asked to fail").into()),
            None => {
                say("stopped");
                Ok(())
            }
        }
    })
}

/// One line on stdout, at once (a pipe would hold it back), and in the log file if any.
fn say(line: &str, log: Option<&std::path::Path>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Some(path) = log {
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{line}");
        }
    }
}
