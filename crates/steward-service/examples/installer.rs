//! A program that installs itself: `installer service install|uninstall|start|stop|reload|
//! pause|continue|status|render [--user]` describes it with a `ServiceSpec` and hands that to the `Manager` of this
//! OS; `installer run` is what the service manager starts, and runs as the service.
//!
//! ```text
//! cargo run -p steward-service --example installer -- service render
//! sudo target/debug/examples/installer service install && sudo target/debug/examples/installer service start
//! ```

use std::process::ExitCode;
use std::time::Duration;

use steward_service::manage::{self, Manager, Platform, RestartPolicy, Scope, ServiceSpec};
use steward_service::{Control, RunOptions};

const NAME: &str = "installer-example";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("service") => match service(&args[1..]) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some("run") => run(),
        _ => {
            eprintln!("usage: installer run | service install|uninstall|start|stop|reload|pause|continue|status|render [--user]");
            ExitCode::from(2)
        }
    }
}

/// The service, as the manager sees it.
fn spec(scope: Scope) -> Result<ServiceSpec, manage::Error> {
    let exe = std::env::current_exe().map_err(|e| manage::Error::io("find", "installer".as_ref(), e))?;
    Ok(ServiceSpec::new(NAME, exe)
        .args(["run"])
        .description("steward-service's installer example")
        .scope(scope)
        .restart(RestartPolicy::on_failure([Duration::from_secs(1)]))
        .stop_timeout(Duration::from_secs(10)))
}

fn service(args: &[String]) -> Result<ExitCode, manage::Error> {
    let scope = if args.iter().any(|a| a == "--user") { Scope::User } else { Scope::System };
    let wait = Some(Duration::from_secs(30));
    match args.first().map(String::as_str) {
        Some("render") => {
            let platform = Platform::native().unwrap_or(Platform::Systemd);
            print!("{}", manage::render::render(platform, &spec(scope)?)?);
        }
        Some(verb) => {
            let manager = Manager::native(NAME, scope)?;
            match verb {
                "install" => manager.install(&spec(scope)?)?,
                "uninstall" => manager.uninstall()?,
                "start" => drop(manager.start(wait)?),
                "stop" => drop(manager.stop(wait)?),
                "reload" => manager.reload()?,
                "pause" => drop(manager.pause()?),
                "continue" => drop(manager.resume()?),
                "status" => {
                    let s = manager.status()?;
                    println!("{NAME}: {} (pid {:?}, last exit {:?})", s.detail, s.pid, s.last_exit);
                    return Ok(if s.running() { ExitCode::SUCCESS } else { ExitCode::from(3) });
                }
                other => {
                    eprintln!("unknown verb {other}");
                    return Ok(ExitCode::from(2));
                }
            }
            println!("{verb}: done");
        }
        None => return Ok(ExitCode::from(2)),
    }
    Ok(ExitCode::SUCCESS)
}

/// What the manager starts: ready at once, says what it is asked, stops when asked.
fn run() -> ExitCode {
    steward_service::run(RunOptions::new(NAME).accept_pause(true), |ctx| {
        ctx.ready();
        for request in ctx.controls() {
            println!("control {:?}", request.control());
            if let Control::Stop(_) = request.control() {
                break;
            }
            request.ack();
        }
        Ok(())
    })
}
