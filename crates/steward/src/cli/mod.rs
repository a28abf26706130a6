//! The command line. One file per verb; each verb is a thin layer over the library.
//!
//! Exit codes (documented in README.md):
//! - 0: success (`run`: an orderly shutdown; `check`: the file is valid; a control verb:
//!   every program reached the state asked for)
//! - 1: the config is invalid, or the verb failed (the message says why)
//! - 2: the command line itself is wrong (unknown verb or flag)
//! - 3: no steward is running for this config (control verbs)
//! - 4: permission denied on the local socket: the steward there is another user's
//! - 5: `run` stopped, but not cleanly: a program did not stop within its `stop_timeout` at
//!   shutdown and was killed (a container runtime sees this code, see docs/containers.md)
//!
//! A closed stdout (`steward status | head -1`) ends a verb quietly with 0, as ripgrep does:
//! verbs print with `outln!` and `out!`, which return the write error instead of
//! panicking like `println!`, and [`main`] takes a broken pipe for [`StdoutClosed`].

/// `println!` to stdout that returns `anyhow::Result<()>` instead of panicking when the
/// write fails; a broken pipe becomes [`StdoutClosed`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::stdout_result(writeln!(std::io::stdout().lock(), $($arg)*))
    }};
}

/// `eprintln!` that cannot panic: when stderr is gone (a closed terminal), the message is
/// lost, where `eprintln!` would panic and the release build abort.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `print!` to stdout, like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        $crate::cli::stdout_result(write!(stdout, $($arg)*).and_then(|()| stdout.flush()))
    }};
}

mod check;
pub mod client;
mod completions;
mod ctl;
mod daemonctl;
mod deploy;
mod events;
mod init;
mod logs;
mod man;
mod remote;
mod run;
mod scale;
mod schema;
mod self_update;
mod service;
mod status;
mod top;
mod wrap;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version = crate::update::running_version(),
    about = "Run any program as a supervised background service",
    long_about = "steward runs the programs declared in a TOML file, restarts them with backoff when \
                  they fail, stops their whole process tree, and captures their output into rotated \
                  log files.\n\nStart with `steward run --demo`, `steward init -- COMMAND ARGS..` to write a \
                  config, or `steward check -c FILE` to validate one."
)]
pub struct Cli {
    /// The config file. Relative paths inside it are resolved from its folder.
    #[arg(short = 'c', long, global = true, default_value = "steward.toml", env = "STEWARD_CONFIG")]
    pub config: PathBuf,

    /// How steward's own log lines on stderr look.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Control a steward over its remote API instead of the local socket:
    /// https://HOST:PORT (or http://127.0.0.1:PORT). See docs/remote-api.md.
    #[arg(long, global = true, value_name = "URL")]
    pub remote: Option<String>,

    /// The file holding the token for --remote.
    #[arg(long, global = true, value_name = "PATH", env = "STEWARD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Trust this certificate (or CA, PEM) for --remote, instead of the built-in roots: for a
    /// private CA or a self-signed certificate.
    #[arg(long, global = true, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// JSON lines with timestamp, level, program, event and message.
    Json,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one run: a CLI call does
// not pay for the whole tree (docs/benchmarks.md, section 13).
#[command(defer = true)]
pub enum Command {
    /// Run the supervisor in the foreground until SIGTERM or Ctrl+C, then stop every
    /// program in reverse dependency order and exit 0 (5 if one had to be killed after its
    /// stop_timeout). As a container's PID 1 it also reaps orphans (docs/containers.md).
    Run(run::RunArgs),
    /// Validate the config file: print every error and warning with file:line:col, exit 1 if
    /// there is an error, 0 if the file is valid (warnings or not).
    Check(check::CheckArgs),
    /// Start a config file: a commented steward.toml with COMMAND as its first program
    ///
    /// `init -- python3 app.py` writes steward.toml (or the -c path) with that program,
    /// named after its file (`app`... or --name); without a command, an example program,
    /// commented out. Never overwrites a file: add programs to one with `steward add`.
    Init(init::InitArgs),
    /// Add a program to the config file: `add NAME -- COMMAND ARGS..`
    ///
    /// Appends [programs.NAME] and keeps the rest of the file (comments, layout) as it was;
    /// refuses a name already there, and a result `steward check` would not accept.
    Add(init::AddArgs),
    /// Print the JSON Schema of the config file, for editors (taplo, Even Better TOML)
    Schema(schema::SchemaArgs),
    /// Show each program: state, pid, uptime, restarts, last exit and health.
    Status(status::StatusArgs),
    /// A live full-screen view of the programs, in the terminal: state, pid, uptime, CPU,
    /// memory, restarts and health; start, stop, restart and log tails from the keyboard
    ///
    /// Keys: ↑/↓ or j/k select, s start, x stop, r restart, l the log's tail (e: stderr),
    /// / filter by name, q or Ctrl+C quit. Works with --remote (a viewer token sees, an
    /// operator's also acts). Needs a terminal: for a file or a pipe, use `steward status`.
    /// See docs/top.md.
    Top(top::TopArgs),
    /// Start programs (and what they depend on); returns once they are running.
    Start(ctl::CtlArgs),
    /// Stop programs; returns once they are down.
    Stop(ctl::CtlArgs),
    /// Stop programs if they run, then start them; returns once a new process runs.
    Restart(ctl::CtlArgs),
    /// Change a program's number of instances: `scale web 6 | +2 | -1`. Only the difference
    /// starts or stops; the other instances keep running.
    Scale(scale::ScaleArgs),
    /// Deploy a new release of a program with `[release]`: fetch, verify its signature, switch,
    /// wait until it proves itself, and roll back by itself if it does not
    ///
    /// `deploy api --latest`, `deploy api 1.4.0`, or `deploy api --file api-1.4.0.tar.gz`
    /// (signed: api-1.4.0.tar.gz.minisig beside it). Exit 0 once the new version is ready and
    /// stayed up for `healthy_for`; exit 1 when it failed and steward went back. See
    /// docs/deploy.md.
    Deploy(deploy::DeployArgs),
    /// Take a program with `[release]` back to the version it ran before.
    Rollback(deploy::RollbackArgs),
    /// List a program's installed releases: which runs, which a rollback goes to, which failed.
    Versions(deploy::VersionsArgs),
    /// Print the end of a program's log (each instance's, merged, for a program with
    /// `instances`), and follow it with -f.
    Logs(logs::LogsArgs),
    /// Re-read the config file and apply only the difference. An invalid file changes
    /// nothing: its errors are printed and the command exits 1.
    Reload(daemonctl::ReloadArgs),
    /// Stop every program in reverse dependency order, then stop steward.
    Shutdown,
    /// Print recent state changes, and follow them with -f.
    Events(events::EventsArgs),
    /// Install steward as a service started at boot (systemd, launchd, Windows SCM), or render its unit
    ///
    /// `service install|uninstall|start|stop|status` manage it; `service render` prints the
    /// unit, plist or Windows service settings. See docs/services.md.
    Service(service::ServiceArgs),
    /// Run one program as a service: `wrap install NAME -- PROGRAM ARGS..`
    ///
    /// `wrap show NAME` prints the config it generated; `wrap uninstall NAME` removes both.
    Wrap(wrap::WrapArgs),
    /// Install a newer signed release of steward over this binary and restart the daemon
    /// through its service manager; a new version that fails to start is rolled back.
    /// See docs/self-update.md.
    SelfUpdate(self_update::SelfUpdateArgs),
    /// Print the shell script that completes steward's verbs, flags and program names
    ///
    /// Bash: `steward completions bash > /usr/share/bash-completion/completions/steward`, or
    /// `source <(steward completions bash)` in ~/.bashrc; also zsh, fish, powershell and
    /// elvish. On TAB the script asks `steward` on PATH, which asks the running steward for its
    /// programs (or reads the config file when none runs). See docs/shell.md.
    Completions(completions::CompletionsArgs),
    /// Write the man pages: steward(1), one page per verb (steward-VERB(1)), and
    /// steward.toml(5)
    ///
    /// `steward man --out DIR` creates DIR and writes the pages into it; read one with
    /// `man -l DIR/steward-run.1`, or install them under /usr/share/man. See docs/shell.md.
    Man(man::ManArgs),
}

pub fn main() -> ExitCode {
    // Called back by a completion script on TAB: print the candidates and exit.
    completions::complete_if_asked();
    let cli = Cli::parse();
    // The Windows service host logs to a file and the Event Log: it has no stderr.
    if !matches!(&cli.command, Command::Service(s) if s.is_host()) {
        init_logging(cli.log_format);
    }
    let result = match &cli.command {
        Command::Run(args) => run::run(&cli, args),
        Command::Check(args) => check::check(&cli, args),
        Command::Init(args) => init::init(&cli, args),
        Command::Add(args) => init::add(&cli, args),
        Command::Schema(args) => schema::schema(args),
        Command::Service(args) => service::service(&cli, args),
        Command::Wrap(args) => wrap::wrap(&cli, args),
        Command::SelfUpdate(args) => self_update::self_update(&cli, args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
        Command::Top(args) => top::top(&cli, args),
        control => run_client(&cli, control),
    };
    match result {
        Ok(code) => code,
        // Whoever read our output stopped reading (`| head`): nothing left to say.
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<client::NotRunning>().is_some() => {
            errln!("error: {e}");
            ExitCode::from(3)
        }
        Err(e) if e.downcast_ref::<client::PermissionDenied>().is_some() => {
            errln!("error: {e}");
            ExitCode::from(4)
        }
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Writing to stdout failed because its reader is gone (`EPIPE`): the verb ends quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// A write to stdout as the verbs see it: a broken pipe is [`StdoutClosed`], any other
/// failure (a full disk) an error to report.
fn stdout_result(written: std::io::Result<()>) -> anyhow::Result<()> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// The control verbs: each one request (or stream) to the daemon's API.
fn run_client(cli: &Cli, command: &Command) -> anyhow::Result<ExitCode> {
    let client = client::Client::locate(cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match command {
            Command::Status(a) => status::status(&client, a).await,
            Command::Start(a) => ctl::ctl(&client, "start", a).await,
            Command::Stop(a) => ctl::ctl(&client, "stop", a).await,
            Command::Restart(a) => ctl::ctl(&client, "restart", a).await,
            Command::Logs(a) => logs::logs(&client, a).await,
            Command::Scale(a) => scale::scale(&client, a).await,
            Command::Deploy(a) => deploy::deploy(&client, a).await,
            Command::Rollback(a) => deploy::rollback(&client, a).await,
            Command::Versions(a) => deploy::versions(&client, a).await,
            Command::Reload(a) => daemonctl::reload(&client, a).await,
            Command::Shutdown => daemonctl::shutdown(&client).await,
            Command::Events(a) => events::events(&client, a).await,
            Command::Run(_)
            | Command::Check(_)
            | Command::Init(_)
            | Command::Add(_)
            | Command::Schema(_)
            | Command::Service(_)
            | Command::Wrap(_)
            | Command::SelfUpdate(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Top(_) => {
                unreachable!("handled by main")
            }
        }
    })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STEWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Under systemd, structured entries to journald (fields PROGRAM, EVENT, EXIT_CODE).
    #[cfg(unix)]
    if let Some(journal) = steward_service::log::journald("steward") {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::registry().with(filter).with(journal).init();
        return;
    }
    use std::io::IsTerminal as _;
    // Colour only for a person at a terminal; never in files, pipes or journald.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init()
        }
    }
}
