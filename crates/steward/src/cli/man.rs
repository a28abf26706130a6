//! `steward man --out DIR`: steward(1) and one page per verb (steward-VERB(1), and
//! steward-service-install(1) for a verb's own verbs) from the clap definitions, and
//! steward.toml(5) from the config reference, docs/config.md, converted by the build script
//! (build/config_page.rs) and built into the binary.
//!
//! The pages come from the same definitions as `--help` and the same file as the docs, so
//! they cannot drift apart; a packaging script calls this to ship them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Cli;

/// The name of the manual the pages belong to (the centre of each page's header).
const MANUAL: &str = "steward manual";

/// steward.toml(5) as the build script wrote it, with stand-ins for the version and date
/// (build/config_page.rs names them).
const CONFIG_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/steward.toml.5"));

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The folder to write the pages into; created if missing. Existing pages are replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the folder {} for the man pages", args.out.display()))?;
    for page in pages()? {
        let path = args.out.join(&page.file);
        std::fs::write(&path, &page.roff)
            .with_context(|| format!("cannot write the man page {}", path.display()))?;
        outln!("{}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One man page: its file name (`steward-run.1`) and its roff source.
struct Page {
    file: String,
    roff: Vec<u8>,
}

/// Every page: steward(1), a page per visible verb and sub-verb, and steward.toml(5).
fn pages() -> anyhow::Result<Vec<Page>> {
    let version = crate::update::running_version();
    // `help` is a verb clap adds; its page would only repeat steward(1).
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let date = date();
    let mut pages = Vec::new();
    command_pages(&cli, None, version, &date, &mut pages)?;
    let config_page = CONFIG_PAGE.replace("@STEWARD_VERSION@", version).replace("@PAGE_DATE@", &date);
    pages.push(Page { file: "steward.toml.5".into(), roff: config_page.into_bytes() });
    Ok(pages)
}

/// The page of `cmd` (a verb of `parent`, the page name of the command above it), then those
/// of its visible sub-verbs, depth first.
fn command_pages(
    cmd: &clap::Command,
    parent: Option<&str>,
    version: &str,
    date: &str,
    pages: &mut Vec<Page>,
) -> anyhow::Result<()> {
    let man =
        clap_mangen::Man::new(cmd.clone()).date(date).source(format!("steward {version}")).manual(MANUAL);
    let file = man.get_filename();
    let mut roff = Vec::new();
    man.render(&mut roff).with_context(|| format!("cannot render the man page {file}"))?;
    roff.extend_from_slice(see_also(parent).as_bytes());
    pages.push(Page { file, roff });
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_pages(sub, Some(name), version, date, pages)?;
    }
    Ok(())
}

/// The date in the pages' headers: `SOURCE_DATE_EPOCH` when set, as package builds set it so
/// that the same sources give the same pages; else today (UTC).
fn date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let when = match epoch {
        Some(secs) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        None => std::time::SystemTime::now(),
    };
    // "2026-12-04T05:00:00Z": the date part.
    humantime::format_rfc3339_seconds(when).to_string()[..10].to_owned()
}

/// A SEE ALSO section: the page of the command above, and steward.toml(5).
fn see_also(parent: Option<&str>) -> String {
    let mut refs = Vec::new();
    if let Some(parent) = parent {
        refs.push(format!("\\fB{}\\fR(1)", parent.replace('-', "\\-")));
    }
    refs.push("\\fBsteward.toml\\fR(5)".to_owned());
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", "))
}
