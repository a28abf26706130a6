//! `steward self-update`: install a newer signed release of steward itself over the installed
//! binary, restart the daemon through its service manager, and wait until the new version
//! answers. The steps and their safety are in `update/` (the boot counter in the daemon
//! confirms the new binary or rolls it back); this file is the order they run in.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use steward_core::release::Version;

use super::client::{Client, NotRunning};
use super::Cli;
use crate::protocol::VersionReply;
use crate::update::{self, gate, pending, release, restart, settings, swap};

/// How long the restarted daemon may take to answer with the new version.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct SelfUpdateArgs {
    /// Only say whether a newer version is available; change nothing.
    #[arg(long)]
    pub check: bool,
    /// Where steward's releases are: a folder, a manifest .json path, or its http(s) URL
    /// (default: [self_update] source in the config).
    #[arg(long, value_name = "URL|PATH")]
    pub source: Option<String>,
    /// A trusted minisign public key (the base64 line of the .pub file, RW...); repeat for
    /// several (default: [self_update] public_keys in the config).
    #[arg(long = "key", value_name = "RW...")]
    pub keys: Vec<String>,
    /// Install the source's version even when it is the running one (never an older one),
    /// or one that was rolled back before.
    #[arg(long)]
    pub reinstall: bool,
    /// The installed binary to replace (default: this one).
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,
    /// Swap the binary but do not restart the daemon: the new one runs from its next start.
    #[arg(long)]
    pub no_restart: bool,
}

pub fn self_update(cli: &Cli, args: &SelfUpdateArgs) -> anyhow::Result<ExitCode> {
    if cli.remote.is_some() {
        anyhow::bail!("self-update replaces the binary on this machine: run it there, without --remote");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(cli, args))
}

async fn run(cli: &Cli, args: &SelfUpdateArgs) -> anyhow::Result<ExitCode> {
    let config = match steward_core::config::load_with(&cli.config, &crate::process::host_env()) {
        Ok(c) => c,
        Err(diags) => {
            errln!("{diags}");
            anyhow::bail!("the config {} is invalid: fix it before updating steward", cli.config.display());
        }
    };
    let settings = settings::of(&config);
    let source = match (&args.source, &settings.source) {
        (Some(s), _) => settings::resolve_source(s),
        (None, Some(s)) => s.clone(),
        (None, None) => anyhow::bail!(
            "no release source: set `source` in [self_update] of {}, or pass --source URL|PATH",
            cli.config.display()
        ),
    };
    let keys = if args.keys.is_empty() { settings.public_keys.clone() } else { args.keys.clone() };
    let client = Client::locate(cli)?;
    let daemon = match client.get::<VersionReply>("/v1/version").await {
        Ok(v) => Some(v),
        Err(e) if e.downcast_ref::<NotRunning>().is_some() => None,
        Err(e) => return Err(e.context("cannot ask the running steward its version")),
    };
    let running = daemon.as_ref().map_or(update::running_version(), |d| d.version.as_str());
    let installed = Version::parse(running)
        .with_context(|| format!("the running steward's version {running:?} is not semver"))?;
    let update_dir = update::dir(&config.supervisor.state_dir);
    let quarantined = pending::quarantined(&update_dir);

    let offer = match release::find(&source, &keys, &installed, args.reinstall, &quarantined).await? {
        release::Found::UpToDate(v) => {
            outln!("steward {v} is up to date")?;
            return Ok(ExitCode::SUCCESS);
        }
        release::Found::Newer(offer) => offer,
    };
    let to = offer.manifest.version.to_string();
    if args.check {
        outln!("steward {to} is available (running {installed})")?;
        return Ok(ExitCode::SUCCESS);
    }

    let exe = match &args.exe {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_exe().context("cannot find this binary's path; pass --exe PATH")?,
    };
    swap::check_replaceable(&exe)?;
    if let Some(p) = pending::read(&update_dir)? {
        anyhow::bail!(
            "a self-update from {} to {} is still in flight (step {}): the daemon settles it when it \
             starts; restart steward, then try again",
            p.from,
            p.to,
            p.step.name()
        );
    }
    release::sweep(&update_dir);
    let new = release::stage(&offer, &update_dir).await?;
    stop_after("staged");
    gate::check(&new, &cli.config, &to).await?;

    // From here the installed binary changes: record first, so that any interruption is
    // settled by the next daemon start (see update/boot.rs).
    let from = installed.to_string();
    let backup = update_dir.join("backup").join(format!("steward-{from}{}", std::env::consts::EXE_SUFFIX));
    swap::backup(&exe, &backup)?;
    let mut record = pending::Pending {
        from: from.clone(),
        to: to.clone(),
        exe: exe.clone(),
        backup,
        attempts: 0,
        step: pending::Step::Recorded,
    };
    pending::write(&update_dir, &record)?;
    stop_after("recorded");
    if let Err(e) = swap::replace(&new, &exe, &from) {
        let _ = pending::remove(&update_dir);
        return Err(anyhow::Error::new(e).context("the swap failed; the installed binary is unchanged"));
    }
    record.step = pending::Step::Swapped;
    pending::write(&update_dir, &record)?;
    stop_after("swapped");
    outln!("installed steward {to} at {} (was {from})", exe.display())?;

    let Some(daemon) = daemon else {
        outln!("no steward is running for this config: the next one started runs {to}")?;
        return Ok(ExitCode::SUCCESS);
    };
    if args.no_restart {
        outln!("not restarted (--no-restart): steward {from} runs until its next start")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Before the restart: the new daemon rewrites the record as soon as it starts.
    record.step = pending::Step::Restarting;
    pending::write(&update_dir, &record)?;
    let asked = Instant::now();
    match restart::restart(daemon.service.as_ref(), daemon.pid)? {
        restart::Restarted::ByHand => {
            outln!(
                "steward runs in the foreground (`steward run`, pid {}): restart it to run {to}",
                daemon.pid
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        restart::Restarted::Asked => {}
    }
    let service = daemon.service.as_ref().map_or(String::new(), |s| format!(" ({} {})", s.manager, s.name));
    let now = wait_for(&client, &to, daemon.pid, &update_dir).await?;
    outln!(
        "steward {to} is running (pid {}), restarted through its service manager{service} in {:.1}s",
        now.pid,
        asked.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Waits until a daemon other than `old_pid` answers with version `to`. A restart has no
/// event to wait on, so this asks again with a growing pause, bounded by [`ANSWER_WITHIN`].
async fn wait_for(
    client: &Client,
    to: &str,
    old_pid: u32,
    update_dir: &std::path::Path,
) -> anyhow::Result<VersionReply> {
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut pause = Duration::from_millis(20);
    let mut last;
    loop {
        match client.get::<VersionReply>("/v1/version").await {
            Ok(v) if v.pid != old_pid && v.version == to => return Ok(v),
            Ok(v) if v.pid != old_pid && pending::quarantined(update_dir).contains(to) => anyhow::bail!(
                "steward {to} failed to start and was rolled back: steward {} runs again (pid {}); its \
                 log says why",
                v.version,
                v.pid
            ),
            Ok(v) => last = format!("steward {} (pid {}) answers", v.version, v.pid),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "steward {to} did not answer within {}s of the restart (last: {last}); see its log. If it \
                 fails to start, the next starts roll it back",
                ANSWER_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// `STEWARD_TEST_STOP_AFTER=<step>` (debug builds): end here, as a kill -9 would.
fn stop_after(step: &str) {
    if update::test_hook("STEWARD_TEST_STOP_AFTER").as_deref() == Some(step) {
        errln!("STEWARD_TEST_STOP_AFTER={step}: stopping here");
        std::process::exit(137);
    }
}
