//! A fake environment for config tests, so they never depend on the machine they run on.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use steward_core::config::{parse_str, Config, Diagnostic, Diagnostics, Env};

#[derive(Default)]
pub struct FakeEnv {
    pub vars: HashMap<String, String>,
    pub files: HashMap<PathBuf, String>,
}

impl FakeEnv {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn file(mut self, path: impl Into<PathBuf>, text: &str) -> Self {
        self.files.insert(path.into(), text.to_owned());
        self
    }
}

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
}

/// The folder the fake config file lives in: absolute on every OS, and not the current dir.
pub fn dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\srv\app")
    } else {
        PathBuf::from("/srv/app")
    }
}

pub fn origin() -> PathBuf {
    dir().join("steward.toml")
}

pub fn parse_with(src: &str, env: &FakeEnv) -> Result<Config, Diagnostics> {
    parse_str(src, &origin(), env)
}

pub fn parse(src: &str) -> Config {
    match parse_with(src, &FakeEnv::new()) {
        Ok(config) => config,
        Err(diags) => panic!("expected the config to parse, got:\n{diags}"),
    }
}

pub fn errors_with(src: &str, env: &FakeEnv) -> Diagnostics {
    match parse_with(src, env) {
        Ok(config) => panic!("expected errors, the config parsed: {config:?}"),
        Err(diags) => diags,
    }
}

pub fn errors(src: &str) -> Diagnostics {
    errors_with(src, &FakeEnv::new())
}

/// Asserts that `src` fails with exactly one diagnostic, at `line:col`, whose message contains
/// `fragment` and which has a hint; returns it for more checks.
#[track_caller]
pub fn single_error(src: &str, env: &FakeEnv, line: usize, col: usize, fragment: &str) -> Diagnostic {
    let diags = errors_with(src, env);
    assert_eq!(diags.len(), 1, "expected one error, got:\n{diags}");
    let d = diags.0[0].clone();
    assert_eq!((d.line, d.col), (line, col), "wrong position for:\n{diags}");
    assert!(d.message.contains(fragment), "message {:?} lacks {fragment:?}", d.message);
    assert!(d.hint.as_deref().is_some_and(|h| !h.is_empty()), "no hint in:\n{diags}");
    assert_eq!(d.file, origin());
    d
}

#[track_caller]
pub fn hint(d: &Diagnostic) -> &str {
    d.hint.as_deref().unwrap_or("")
}
