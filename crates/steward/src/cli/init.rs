//! `steward init [-- COMMAND ARGS..]` and `steward add NAME -- COMMAND ARGS..`: start a config
//! file from nothing, and add programs to it, without learning TOML first.
//!
//! The file stays the source of truth: `init` writes a commented starter that `steward check`
//! accepts, `add` appends a `[programs.NAME]` table to it and keeps everything else as it was
//! (comments, order, spacing: `toml_edit`). Values are written by `toml_edit`, never pasted
//! into the text, and `$`/`%` are escaped where steward would read `${VAR}` or `%{instance}`,
//! so the program gets its arguments exactly as they were typed. Before anything is written,
//! the new text is parsed by steward's own parser, and the program must read back with the
//! same command: a file `init` or `add` writes always passes `steward check` (if the file
//! passed it before).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use steward_core::config::parse::{check_program_name, OsEnv};
use toml_edit::{DocumentMut, Item, Table};

use super::Cli;

#[derive(Debug, clap::Args)]
#[command(after_help = INIT_HELP)]
pub struct InitArgs {
    /// The first program's name. Default: the command's file name, without its extension.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The first program and its arguments, after `--`. Without one, the file has an example
    /// program, commented out.
    #[arg(last = true, value_name = "COMMAND ARGS")]
    pub command: Vec<String>,
}

const INIT_HELP: &str = "\
Examples:
  steward init -- python3 -m http.server 8000
  steward init --name api -- ./target/release/api --port 8080
  steward init -c /srv/app/steward.toml

Then: `steward check` validates the file, `steward run` runs it, `steward add NAME -- COMMAND`
adds a program. The file is the source of truth: edit it freely (docs/config.md).";

#[derive(Debug, clap::Args)]
#[command(after_help = ADD_HELP)]
pub struct AddArgs {
    /// The program's name: letters, digits, `_`, `-` and `.` (it names its log files).
    pub name: String,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND ARGS")]
    pub command: Vec<String>,
}

const ADD_HELP: &str = "\
Examples:
  steward add worker -- python3 worker.py --queue jobs
  steward add web -- node server.js

Appends a [programs.NAME] table to the config file, keeping its comments and layout. The
file must pass `steward check` before and after; a running steward picks the program up on
`steward reload`.";

/// What starts the file: what it is, where to read on, how editors check it.
const HEADER: &str = "\
# steward.toml: the programs steward runs, and how.
# `steward check` validates this file, `steward run` runs it in the foreground.
# Every key, with its default: docs/config.md. Editors complete and check this file
# with the schema from `steward schema` (docs/config.md, \"Editors\").

# The supervisor's own settings; the defaults keep its state and logs beside this file.
# [supervisor]
# state_dir = \".steward\"
# watch_config = true       # reload when this file changes
";

/// The keys most programs want next, commented out, after a program's `command`.
const PROGRAM_HINTS: &str = "\
# cwd = \"app\"              # working directory (default: this file's folder)
# env = { PORT = \"8080\" }
# restart = \"always\"       # or \"on-failure\" (the default), \"never\"
# stop_timeout = \"10s\"     # then the whole process tree is killed
# depends_on = [\"db\"]      # start after these programs are ready
";

/// Without a command: an example program to start from, commented out.
const EXAMPLE_PROGRAM: &str = "\
# A program: `steward add NAME -- COMMAND ARGS..` adds one, or write it here.
# [programs.web]
# command = [\"python3\", \"-m\", \"http.server\", \"8000\"]
";

const MORE_PROGRAMS: &str = "\
# More programs: `steward add NAME -- COMMAND ARGS..`, or another [programs.NAME] table.
";

pub fn init(cli: &Cli, args: &InitArgs) -> anyhow::Result<ExitCode> {
    let path = &cli.config;
    if path.exists() {
        bail!(
            "{} already exists; init writes a new file only.\n\
             To add a program to it: steward add NAME -- COMMAND ARGS..\n\
             To start over: move it away, then run init again",
            path.display()
        );
    }
    let mut text = HEADER.to_owned();
    let name = match args.command.as_slice() {
        [] => {
            if args.name.is_some() {
                bail!("--name names the program given after `--`; give its command too: steward init --name NAME -- COMMAND ARGS..");
            }
            text.push('\n');
            text.push_str(EXAMPLE_PROGRAM);
            None
        }
        command => {
            let name = match &args.name {
                Some(name) => checked_name(name)?.to_owned(),
                None => name_from_command(&command[0]),
            };
            let mut doc = DocumentMut::new();
            insert_program(&mut doc, &name, command);
            text.push('\n');
            text.push_str(&doc.to_string());
            text.push_str(PROGRAM_HINTS);
            text.push('\n');
            text.push_str(MORE_PROGRAMS);
            Some((name, command))
        }
    };
    verify(path, &text, name.as_ref().map(|(n, c)| (n.as_str(), *c)))?;
    create_new(path, &text)?;
    match &name {
        Some((name, _)) => outln!("wrote {} with program `{name}`", path.display())?,
        None => outln!("wrote {} (no program yet)", path.display())?,
    }
    next_steps(cli, if name.is_none() { Next::Init } else { Next::Program })?;
    Ok(ExitCode::SUCCESS)
}

pub fn add(cli: &Cli, args: &AddArgs) -> anyhow::Result<ExitCode> {
    let path = &cli.config;
    let name = checked_name(&args.name)?;
    let old = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "{} does not exist; start it with: steward init -- {}",
            path.display(),
            shell_words::join(&args.command)
        ),
        _ => anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
    })?;
    let mut doc: DocumentMut = old
        .parse()
        .with_context(|| format!("{} is not valid TOML; `steward check` shows where", path.display()))?;
    if doc.get("programs").and_then(Item::as_table_like).is_some_and(|p| p.contains_key(name)) {
        bail!(
            "{} already has a program `{name}`; choose another name, or edit [programs.{name}] in the file",
            path.display()
        );
    }
    if doc.get("programs").is_some_and(|p| !p.is_table()) {
        bail!(
            "`programs` in {} is not written as [programs.NAME] tables; add the program by hand",
            path.display()
        );
    }
    // What ended the file (comments after its last table) stays before the new table.
    let trailing = doc.trailing().as_str().unwrap_or("").to_owned();
    doc.set_trailing("");
    insert_program(&mut doc, name, &args.command);
    if let Some(table) = doc.get_mut("programs").and_then(|p| p.get_mut(name)).and_then(Item::as_table_mut) {
        let gap =
            if old.is_empty() || old.ends_with("\n\n") || trailing.ends_with("\n\n") { "" } else { "\n" };
        table.decor_mut().set_prefix(format!("{trailing}{gap}"));
    }
    let text = doc.to_string();
    // The file must have checked out before: a mistake already in it is not ours to report
    // as if `add` made it.
    if let Err(diags) = steward_core::config::parse_str(&old, path, &OsEnv) {
        bail!(
            "{} does not pass `steward check` as it is; fix it first, then add the program:\n{diags}",
            path.display()
        );
    }
    verify(path, &text, Some((name, &args.command)))?;
    write_replacing(path, &text)?;
    outln!("added program `{name}` to {}", path.display())?;
    next_steps(cli, Next::Added)?;
    Ok(ExitCode::SUCCESS)
}

/// `[programs.NAME]` with `command` in `doc`, as a table of its own (not `[programs]`).
fn insert_program(doc: &mut DocumentMut, name: &str, command: &[String]) {
    let programs = doc.entry("programs").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let mut program = Table::new();
    let argv: toml_edit::Array = command.iter().map(|a| literal(a)).collect();
    program.insert("command", toml_edit::value(argv));
    if let Some(programs) = programs.as_table_mut() {
        programs.insert(name, Item::Table(program));
    }
}

/// Checks `text` for the config at `path`: steward's parser accepts it, and the program
/// `name` reads back with exactly `command`.
fn verify(path: &Path, text: &str, program: Option<(&str, &[String])>) -> anyhow::Result<()> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let config = steward_core::config::parse_str(text, &path, &OsEnv)
        .map_err(|diags| anyhow::anyhow!("the new file would not pass `steward check`:\n{diags}"))?;
    if let Some((name, command)) = program {
        let read = config.programs.get(name).map(|p| p.command.as_slice());
        if read != Some(command) {
            bail!(
                "program `{name}` would not run the command given: it reads back as {read:?}; \
                 write it in the file by hand (docs/config.md, `command`)"
            );
        }
    }
    Ok(())
}

/// `name` if it can name a program, or an error that says why not.
fn checked_name(name: &str) -> anyhow::Result<&str> {
    check_program_name(name).map_err(|why| {
        anyhow::anyhow!(
            "invalid program name `{name}`: {why}\n\
             use letters, digits, `_`, `-` and `.`, not starting or ending with `.`: the name becomes a file name"
        )
    })?;
    Ok(name)
}

/// A program name from a command: its file name without the extension (`./app.js` → `app`,
/// `/usr/bin/python3` → `python3`), other characters as `-`; `app` if nothing usable is left.
fn name_from_command(program: &str) -> String {
    // Both separators: a Windows path is split the same on every OS.
    let file = program.rsplit(['/', '\\']).next().unwrap_or(program);
    let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '-' })
        .collect();
    let name = name.trim_matches(['.', '-']).to_owned();
    if check_program_name(&name).is_ok() {
        name
    } else {
        "app".to_owned()
    }
}

/// `arg` as a config string whose value is exactly `arg`: `${` and `$$` (interpolation) and
/// `%{` (instance templates) are escaped as `$$` and `%%`. A lone `$` (`$HOME`) or `%` is
/// kept: steward leaves those alone.
fn literal(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some('{' | '$')) => out.push_str("$$"),
            ('%', Some('{')) => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes a file that must not exist yet. Created with `create_new`: if another process
/// made it meanwhile, that file is kept.
fn create_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AlreadyExists => "; run `steward add` to add a program to it",
            std::io::ErrorKind::NotFound => "; create its folder first",
            _ => "",
        };
        anyhow::anyhow!("cannot create {}: {e}{hint}", path.display())
    })?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| {
        // Half a config is worse than none.
        let _ = std::fs::remove_file(path);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

/// Replaces `path` with `text` in one rename, from a temporary file beside it with the
/// same permissions: a reader (a running steward with `watch_config`) sees the old file or
/// the new one, never half of it.
pub(super) fn write_replacing(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(text.as_bytes()).and_then(|()| tmp.as_file().sync_all()).map_err(fail)?;
    // The new file keeps the old one's permissions; a first file gets those any new file
    // of this user gets (the temporary file is private).
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => std::fs::File::create(path).and_then(|f| f.metadata()).map_err(fail)?,
    };
    std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Which file the next steps are for.
#[derive(Clone, Copy, PartialEq)]
enum Next {
    /// A new file without a program.
    Init,
    /// A new file with its first program.
    Program,
    /// A program added to a file a steward may already run.
    Added,
}

/// What to run next, with `-c` when the file is not the default one.
fn next_steps(cli: &Cli, next: Next) -> anyhow::Result<()> {
    let config = if cli.config == Path::new("steward.toml") {
        String::new()
    } else {
        format!(" -c {}", shell_words::quote(&cli.config.to_string_lossy()))
    };
    outln!("next:")?;
    if next == Next::Init {
        outln!("  steward add{config} NAME -- COMMAND ARGS..   add a program")?;
    }
    outln!("  steward check{config}    validate the file")?;
    outln!("  steward run{config}      run its programs in the foreground (Ctrl+C stops them)")?;
    if next == Next::Added {
        outln!("  steward reload{config}   or apply the file to the steward that runs it")?;
    }
    if next != Next::Init {
        outln!("  steward add{config} NAME -- COMMAND ARGS..   add another program")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_program_file() {
        assert_eq!(name_from_command("python3"), "python3");
        assert_eq!(name_from_command("./app.js"), "app");
        assert_eq!(name_from_command("/usr/local/bin/my server"), "my-server");
        assert_eq!(name_from_command("C:\\apps\\api.exe"), "api");
        assert_eq!(name_from_command("con"), "app", "reserved on Windows");
        assert_eq!(name_from_command("..."), "app");
        assert_eq!(name_from_command(".hidden.sh"), "hidden");
    }

    #[test]
    fn literals_escape_only_what_steward_would_expand() {
        assert_eq!(literal("plain $HOME 50%"), "plain $HOME 50%");
        assert_eq!(literal("${HOME}"), "$${HOME}");
        assert_eq!(literal("$$"), "$$$");
        assert_eq!(literal("%{instance}"), "%%{instance}");
    }
}
