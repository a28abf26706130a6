//! The config parser: TOML text in, a [`Config`] or every mistake (as [`Diagnostics`]) out.
//!
//! The document is parsed with spans on every key and value, then walked by hand, section by
//! section, so that one bad value does not hide the others. Each section is a table of
//! `Key`s: a key's name, an example line (shown in hints) and a function that checks the
//! value and stores it in that section's draft, with what the value is and does for the JSON
//! Schema editors read (`schema.rs`). Adding a key is one entry in the right
//! table (`keys.rs`, or the file of its section) plus, if it needs one, a field in the draft.
//! `values.rs` checks single values; `suggest.rs` finds the key a typo meant.
//!
//! Checks that span several keys (`restart_max_delay >= restart_delay`, a missing `command`,
//! the warning about a hot restart loop) run after a program's keys are walked; checks that span programs (`depends_on`) run after
//! the whole document is walked.

mod alerts;
mod api;
mod dashboard;
mod health;
mod instances;
mod keys;
mod release;
pub mod schema;
mod ship;
mod suggest;
mod values;

use super::diag::{Diagnostic, Diagnostics};
use super::model::{
    defaults, Config, GroupSpec, LogFormat, LogSpec, MetricsSettings, ProgramSpec, Readiness, RestartPolicy,
    RotateEvery, SourceText, StopSignal, SupervisorSettings,
};
use super::{instance, interp};
use crate::{deps, units};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use keys::{check_dependencies, DocumentDraft, ProgramDraft, PROGRAM_KEYS, ROOT_KEYS};
use schema::Kind;
use suggest::suggest;
pub use values::check_program_name;
use values::{join_quoted, MAX_KEEP};

/// Where the parser gets the outside world from: variables for interpolation, the text of
/// env files, and the platform the config is for. Tests pass a fake; [`OsEnv`] is the real
/// one, and [`OnPlatform`] names the platform.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
    /// The platform the config will run on: some keys need what only some platforms have.
    /// `None` (the default): no particular platform, and no key is refused for it. The core
    /// never asks which OS it runs on; the binary says it (or the one the user names).
    fn platform(&self) -> Option<Platform> {
        None
    }
}

/// A platform steward runs on, as far as the config is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Linux,
    MacOs,
    Windows,
    /// A Unix other than Linux and macOS (the BSDs).
    OtherUnix,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Linux, Platform::MacOs, Platform::Windows, Platform::OtherUnix];

    /// As people write it.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Linux => "Linux",
            Platform::MacOs => "macOS",
            Platform::Windows => "Windows",
            Platform::OtherUnix => "this Unix",
        }
    }

    /// Unix datagram sockets, which `ready = "notify"` needs.
    pub fn has_unix_sockets(self) -> bool {
        self != Platform::Windows
    }

    /// steward passes listening sockets to programs (`[programs.NAME.sockets.X]`): as systemd
    /// does on Linux, by the systemfd protocol on Windows.
    pub fn passes_sockets(self) -> bool {
        matches!(self, Platform::Linux | Platform::Windows)
    }

    /// The longest path a Unix socket may have (`sockaddr_un.sun_path` less its final NUL):
    /// 108 bytes on Linux, 104 on macOS and the BSDs. `None` on Windows, where steward's
    /// sockets are named pipes.
    pub fn max_socket_path(self) -> Option<usize> {
        match self {
            Platform::Linux => Some(107),
            Platform::MacOs | Platform::OtherUnix => Some(103),
            Platform::Windows => None,
        }
    }

    /// steward reads the memory of process trees (`max_memory`, `memory >` alerts): from
    /// `/proc` on Linux, from Job Objects on Windows.
    pub fn reads_tree_memory(self) -> bool {
        matches!(self, Platform::Linux | Platform::Windows)
    }
}

/// `env` for a config that runs on `platform`.
pub struct OnPlatform<E> {
    pub env: E,
    pub platform: Platform,
}

impl<E: Env> Env for OnPlatform<E> {
    fn var(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.env.read_file(path)
    }
    fn platform(&self) -> Option<Platform> {
        Some(self.platform)
    }
}

/// The supervisor's own environment and file system.
pub struct OsEnv;

/// No variables and no files: for configs that must not depend on the machine (tests,
/// rendering examples).
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

impl Env for OsEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Reads the config file at `path` (made absolute first, without resolving links) and
/// parses it against the real environment, for no particular platform ([`Env::platform`]).
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, &OsEnv)
}

/// [`load`] with the environment `env` (such as [`OsEnv`] [`OnPlatform`]).
pub fn load_with(path: &Path, env: &dyn Env) -> Result<Config, Diagnostics> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let src = std::fs::read_to_string(&path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "create it, or give the path of an existing config file",
            std::io::ErrorKind::PermissionDenied => "make it readable by the user steward runs as",
            std::io::ErrorKind::InvalidData => "save the file as UTF-8 text",
            _ => "check the path and its permissions",
        };
        Diagnostic::whole_file(&path, format!("cannot read the config file: {e}"), hint)
    })?;
    parse_str(&src, &path, env)
}

/// Parses config text. `origin` is the file it came from: it names the file in diagnostics
/// and its folder is where relative paths are resolved from (it is not read).
pub fn parse_str(src: &str, origin: &Path, env: &dyn Env) -> Result<Config, Diagnostics> {
    // Editors on Windows may save a byte order mark; it is not part of the TOML.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    parse_scaled(src, origin, env, None)
}

/// The config `config` was parsed from, with `program` scaled to `instances`: parsed again
/// from the same text, so that the new instances get specs checked like the others.
pub fn scaled(config: &Config, program: &str, instances: u32, env: &dyn Env) -> Result<Config, Diagnostics> {
    parse_scaled(&config.text.0, &config.source, env, Some((program, instances)))
}

fn parse_scaled(
    src: &str,
    origin: &Path,
    env: &dyn Env,
    scale: Option<(&str, u32)>,
) -> Result<Config, Diagnostics> {
    let text: std::sync::Arc<str> = src.into();
    let dir = origin.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ctx = Ctx {
        src,
        file: origin,
        dir,
        env,
        diags: Vec::new(),
        warnings: Vec::new(),
        instance: None,
        release: instance::Release::Absent,
        scale: scale.map(|(p, n)| (p.to_owned(), n)),
    };

    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    if !syntax_errors.is_empty() {
        // Checking a half-understood document would only add confusing follow-up errors.
        for e in syntax_errors {
            let hint = if e.message().contains("duplicate key") {
                "each key may be set only once in a table (and each [table] header used once)"
            } else {
                "fix the TOML syntax here; the rest of the file is checked once it parses"
            };
            ctx.error(e.span().unwrap_or(0..0), format!("invalid TOML: {}", e.message()), hint);
        }
        return Err(ctx.finish());
    }

    let mut draft = DocumentDraft::default();
    walk(&mut ctx, doc.get_ref(), "", ROOT_KEYS, &mut draft);
    check_dependencies(&mut ctx, &draft.programs);
    ctx.check_dashboard(draft.dashboard.as_ref(), draft.api.as_ref());
    ctx.check_instance_names(&draft.programs);
    ctx.check_alerts(&draft.alerts, &draft.programs);
    ctx.check_ship(&draft.ship, &draft.programs);
    ctx.check_socket_paths(&draft);
    if !ctx.diags.is_empty() {
        return Err(ctx.finish());
    }
    // The document is the parse's largest part (a map node of about 1 KB for each table);
    // gone before the config is built, it is not held at the same time.
    drop(doc);
    let warnings = ctx.finish();
    Ok(draft.into_config(&ctx.dir, origin, SourceText(text), warnings))
}

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

/// The state of one parse: the text (for spans), where relative paths start, the
/// environment, and the mistakes found so far.
struct Ctx<'a> {
    src: &'a str,
    file: &'a Path,
    dir: PathBuf,
    env: &'a dyn Env,
    /// Errors: any of them refuses the file.
    diags: Vec<Diagnostic>,
    /// Warnings: shown, but the file is valid.
    warnings: Vec<Diagnostic>,
    /// `%{instance}` while a program with `instances` is walked.
    instance: Option<u32>,
    /// Whether `%{release}` is kept (while a program with `[release]` is walked).
    release: instance::Release,
    /// A program whose `instances` is replaced (`steward scale`).
    scale: Option<(String, u32)>,
}

/// One key of a section.
struct Key<T> {
    name: &'static str,
    /// What the key does, in a line: the description editors show (`schema.rs`).
    doc: &'static str,
    /// What its value is, for the JSON Schema.
    kind: Kind,
    /// A correct line for this key, shown in the hint when the value is wrong.
    example: &'static str,
    /// Checks the value and stores it in the section's draft; reports mistakes to the `Ctx`.
    set: fn(&mut Ctx<'_>, &Field<'_, '_>, &mut T),
}

/// A value being checked, with what messages need to name it.
struct Field<'v, 'i> {
    /// Dotted path of the table the key is in (`programs.web`), empty at the top level.
    section: String,
    /// How messages name the value: `restart`, `env.PORT`, `command[1]`.
    name: String,
    example: &'static str,
    value: &'v Value<'i>,
}

impl<'v, 'i> Field<'v, 'i> {
    fn element(&self, index: usize, value: &'v Value<'i>) -> Self {
        Field {
            section: self.section.clone(),
            name: format!("{}[{index}]", self.name),
            example: self.example,
            value,
        }
    }

    fn entry(&self, key: &str, value: &'v Value<'i>) -> Self {
        Field {
            section: self.section.clone(),
            name: format!("{}.{key}", self.name),
            example: self.example,
            value,
        }
    }

    /// The dotted path of this value when it is a table of its own (`programs.web.log`).
    fn table_path(&self) -> String {
        if self.section.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.section, self.name)
        }
    }

    fn span(&self) -> Span {
        self.value.span()
    }
}

/// Walks the keys of one table: known keys go to their `set`, unknown keys are errors.
fn walk<T>(ctx: &mut Ctx<'_>, table: &DeTable<'_>, section: &str, keys: &[Key<T>], draft: &mut T) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        match keys.iter().find(|k| k.name == name) {
            Some(k) => {
                let field =
                    Field { section: section.to_owned(), name: k.name.to_owned(), example: k.example, value };
                (k.set)(ctx, &field, draft);
            }
            None => ctx.unknown_key(key, value, section, keys.iter().map(|k| k.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One config that asks for everything some platforms lack.
    const NEEDS_PLATFORM: &str = r#"
[programs.web]
command = ["web"]
ready = "notify"
max_memory = "512MB"

[[alerts]]
name = "big"
when = "memory > 1GB"
command = ["notify-me"]
"#;

    /// The messages of the errors `NEEDS_PLATFORM` gets on `platform`.
    fn errors_on(platform: Option<Platform>) -> Vec<String> {
        let origin = Path::new("/srv/steward.toml");
        let result = match platform {
            Some(platform) => parse_str(NEEDS_PLATFORM, origin, &OnPlatform { env: EmptyEnv, platform }),
            None => parse_str(NEEDS_PLATFORM, origin, &EmptyEnv),
        };
        match result {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn each_platform_gets_its_own_answer() {
        assert_eq!(errors_on(None), Vec::<String>::new(), "no platform named: nothing refused");
        assert_eq!(errors_on(Some(Platform::Linux)), Vec::<String>::new());
        let windows = errors_on(Some(Platform::Windows));
        assert_eq!(windows.len(), 1, "{windows:#?}");
        assert!(windows[0].contains("`ready = \"notify\"` needs Unix datagram sockets"), "{windows:#?}");
        for unix in [Platform::MacOs, Platform::OtherUnix] {
            let errors = errors_on(Some(unix));
            assert_eq!(errors.len(), 2, "{unix:?}: {errors:#?}");
            assert!(errors[0].contains("`max_memory` needs the memory of process trees"), "{errors:#?}");
            assert!(errors[0].contains(&format!("remove `max_memory` on {}", unix.name())), "{errors:#?}");
            assert!(errors[1].contains("`memory >` needs the memory of process trees"), "{errors:#?}");
        }
    }

    #[test]
    fn program_names() {
        for ok in ["web", "api-v2", "worker_1", "a.b", "Web2"] {
            assert_eq!(check_program_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".hidden", "my app", "a/b", "a\\b", "trailing.", "con", "NUL.log", "com1", "lpt9"] {
            assert!(check_program_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_program_name("com10"), Ok(()));
        assert_eq!(check_program_name("console"), Ok(()));
    }
}
