//! A minimal service: it starts, says it is ready, logs each control it gets, and stops when
//! asked. Run it from a console (Ctrl+C stops it, `kill -HUP` reloads it), or install it
//! as a service.
//!
//! ```text
//! cargo run -p steward-service --example minimal -- [--start-delay MS] [--fail CODE] [--panic]
//!     [--log FILE] [--log-dir DIR]
//! ```
//! It also installs and controls itself, as any program can in a few lines:
//!
//! ```text
//! minimal service install [--name NAME] [--user] [--working-dir DIR] [--env KEY=VALUE]... [-- ARGS...]
//! minimal service uninstall|start|stop|reload|pause|continue|status|render [--name NAME] [--user]
//! ```
//! (ARGS are the options below, for the installed service.)
//!
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
use steward_service::manage::{Manager, RestartPolicy, Scope, ServiceSpec};
use steward_service::{Control, Failure, RunOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("service") {
        return match service(&args[1..]) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("minimal: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
            let to = steward_service::log::init(ctx.name(), ctx.mode(), &LogOptions::new().file_in(dir))?;
            tracing::info!(pid = std::process::id(), "starting; the log goes to {}", to[0]);
        }
        say(&format!("starting ({:?}), pid {}", ctx.mode(), std::process::id()));
        // What the manager set up: the working directory and a variable the install set.
        let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        say(&format!("working directory {dir}"));
        if let Ok(note) = std::env::var("MINIMAL_NOTE") {
            say(&format!("MINIMAL_NOTE={note}"));
        }
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

/// `service VERB ...`: install, uninstall, start, stop, status or render this program as the
/// service NAME (default `minimal`), with the rest of the command line after `--` as its
/// arguments.
fn service(args: &[String]) -> Result<String, Box<dyn std::error::Error>> {
    let (ours, theirs) = match args.iter().position(|a| a == "--") {
        Some(at) => (&args[..at], &args[at + 1..]),
        None => (args, &[][..]),
    };
    let value = |name: &str| ours.iter().position(|a| a == name).and_then(|at| ours.get(at + 1));
    let name = value("--name").map_or("minimal", String::as_str);
    let scope = if ours.iter().any(|a| a == "--user") { Scope::User } else { Scope::System };
    let restart = RestartPolicy::on_failure([Duration::from_secs(1), Duration::from_secs(5)]);
    // The SCM counts failures within a window; systemd cannot (an explicit error there).
    let restart = if cfg!(windows) { restart.reset_after(Duration::from_secs(60)) } else { restart };
    let mut spec = ServiceSpec::new(name, std::env::current_exe()?)
        .description("steward-service's minimal example")
        .args(theirs)
        .scope(scope)
        .restart(restart)
        .stop_timeout(Duration::from_secs(20));
    if let Some(dir) = value("--working-dir") {
        spec = spec.working_dir(dir);
    }
    for pair in ours.windows(2).filter(|w| w[0] == "--env").map(|w| &w[1]) {
        let (key, val) =
            pair.split_once('=').ok_or_else(|| format!("--env wants KEY=VALUE, not {pair:?}"))?;
        spec = spec.env(key, val);
    }
    let manager = Manager::native(name, scope)?;
    let wait = Some(Duration::from_secs(60));
    Ok(match ours.first().map(String::as_str) {
        Some("install") => manager.install(&spec).map(|()| format!("installed {name}"))?,
        Some("uninstall") => manager.uninstall().map(|()| format!("uninstalled {name}"))?,
        Some("start") => format!("{:?}", manager.start(wait)?.state),
        Some("stop") => format!("{:?}", manager.stop(wait)?.state),
        Some("reload") => manager.reload().map(|()| "reload sent".to_owned())?,
        Some("pause") => format!("{:?}", manager.pause()?.state),
        Some("continue") => format!("{:?}", manager.resume()?.state),
        Some("status") => {
            let status = manager.status()?;
            format!("{:?} pid {:?} last exit {:?}", status.state, status.pid, status.last_exit)
        }
        Some("render") => manager.render(&spec)?,
        other => {
            return Err(
                format!("unknown verb {other:?}: install, uninstall, start, stop, reload, pause, continue, status or render").into()
            )
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
