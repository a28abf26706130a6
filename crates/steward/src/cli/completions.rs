//! `steward completions bash|zsh|fish|powershell|elvish`, and the completing itself.
//!
//! The script a shell sources is small: on TAB it runs `COMPLETE=<shell> steward -- WORDS..`,
//! and this binary answers with the candidates ([`complete_if_asked`], the first thing
//! [`super::main`] does). So completion knows everything clap knows (verbs, flags, values),
//! and program names come from where they are true now: the steward that runs for the config
//! (`status` over the local socket), or the config file when none runs ([`program_names`]).
//! This is clap_complete's dynamic engine (`CompleteEnv`), which has the same protocol for
//! every shell it supports, so every shell here gets program names.
//!
//! A TAB must never hang or print noise: the daemon gets [`DAEMON_TIMEOUT`] to answer, and
//! any failure (no daemon, no file, a file that does not parse) just means fewer candidates.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory as _;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;

use super::client::Client;
use super::Cli;
use crate::protocol::StatusReply;

/// The variable that makes steward complete instead of run (clap_complete's default, which
/// the generated scripts set).
const VAR: &str = "COMPLETE";

/// How long a TAB waits for the running steward's program list before it falls back to the
/// config file.
const DAEMON_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

/// Prints the script that registers steward's completion with `args.shell`. The script calls
/// `steward` from `PATH` (as an installed package does), not the path of this binary.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
        Shell::Elvish => &Elvish,
    };
    let mut script = Vec::new();
    shell.write_registration(VAR, "steward", "steward", "steward", &mut script)?;
    super::stdout_result(std::io::stdout().lock().write_all(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// When a completion script called steward (`COMPLETE=bash steward -- steward st`), prints
/// the candidates and exits; otherwise returns and steward runs as usual.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command).var(VAR).complete();
}

/// The candidates for a program name: the running steward's programs (with their state as
/// the description, which zsh, fish and PowerShell show), or the config file's programs when
/// no steward answers. Only names that start with `current`.
pub fn program_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else { return Vec::new() };
    let words: Vec<OsString> = std::env::args_os().collect();
    let config = config_in(&words);
    let named = match from_daemon(&config) {
        Some(running) => running,
        None => from_config(&config).into_iter().map(|name| (name, None)).collect(),
    };
    named
        .into_iter()
        .filter(|(name, _)| name.starts_with(current))
        .map(|(name, state)| CompletionCandidate::new(name).help(state.map(Into::into)))
        .collect()
}

/// The config the command line being completed names (`-c FILE`, `-cFILE`, `--config FILE`,
/// `--config=FILE`), else `STEWARD_CONFIG`, else `steward.toml`, as [`Cli`] reads it. `words`
/// is this process's argv: `steward -- steward -c FILE restart w`.
fn config_in(words: &[OsString]) -> PathBuf {
    let line = words.iter().position(|w| w == "--").map_or(&[][..], |i| &words[i + 1..]);
    let mut named = None;
    let mut words = line.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        } else if word == "-c" || word == "--config" {
            named = words.next().map(|w| w.into_owned());
        } else if let Some(path) = word.strip_prefix("--config=") {
            named = Some(path.to_owned());
        } else if let Some(path) = word.strip_prefix("-c").filter(|p| !p.is_empty()) {
            named = Some(path.strip_prefix('=').unwrap_or(path).to_owned());
        }
    }
    // A path the shell has not expanded yet (`~/x.toml`) names nothing steward can read.
    match named.filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("STEWARD_CONFIG").map_or_else(|| "steward.toml".into(), PathBuf::from),
    }
}

/// The programs of the steward running for `config`, each with its state; `None` if none
/// answers within [`DAEMON_TIMEOUT`]. A program with instances is offered once, by its name.
fn from_daemon(config: &Path) -> Option<Vec<(String, Option<String>)>> {
    let client = Client::local(config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let reply: StatusReply = runtime
        .block_on(async { tokio::time::timeout(DAEMON_TIMEOUT, client.get("/v1/status")).await })
        .ok()?
        .ok()?;
    let mut named: Vec<(String, Option<String>)> = Vec::new();
    for p in &reply.programs {
        let (name, state) = match &p.program {
            Some(program) => {
                let group = reply.groups.iter().find(|g| &g.name == program);
                (
                    program,
                    group.map_or_else(|| p.state.clone(), |g| format!("running {}/{}", g.running, g.total)),
                )
            }
            None => (&p.name, p.state.clone()),
        };
        if !named.iter().any(|(n, _)| n == name) {
            named.push((name.clone(), Some(state)));
        }
    }
    Some(named)
}

/// The program names of the config file: from the full parse, or, for a file that does not
/// validate (half edited, a variable unset in this shell), the keys of its `[programs]` table.
fn from_config(config: &Path) -> Vec<String> {
    if let Ok(c) = steward_core::config::load_with(config, &crate::process::host_env()) {
        return c.programs.into_keys().collect();
    }
    let Ok(text) = std::fs::read_to_string(config) else { return Vec::new() };
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    match table.get("programs").and_then(|p| p.as_table()) {
        Some(programs) => programs.keys().cloned().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<OsString> {
        let mut words: Vec<OsString> = vec!["/usr/bin/steward".into(), "--".into()];
        words.extend(line.split(' ').map(OsString::from));
        words
    }

    #[test]
    fn the_config_is_the_one_the_line_names() {
        assert_eq!(config_in(&argv("steward -c a.toml restart w")), Path::new("a.toml"));
        assert_eq!(config_in(&argv("steward -cb.toml restart w")), Path::new("b.toml"));
        assert_eq!(config_in(&argv("steward --config c.toml logs ")), Path::new("c.toml"));
        assert_eq!(config_in(&argv("steward restart --config=d.toml w")), Path::new("d.toml"));
        // The last one wins, as clap has it.
        assert_eq!(config_in(&argv("steward -c a.toml -c e.toml stop ")), Path::new("e.toml"));
        // After `--` a word is a value, not a flag.
        let after = config_in(&argv("steward stop -- -c f.toml"));
        assert_ne!(after, Path::new("f.toml"));
    }
}
