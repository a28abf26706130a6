//! The config file: TOML text through parsing, validation and interpolation, as `steward
//! check`, `run` and every reload see it.
//!
//! The input is the config text, optionally followed by a line `#--- file ---` and the
//! text that every file the config names (`env_file`, `token_file`) reads as.
//!
//! What must hold: a config is accepted, or refused with diagnostics that each point at a
//! real line of the file (or name another file), sorted by position, with a message and a
//! hint; an accepted config is valid (absolute paths, commands, dependencies that order),
//! the same every time it is parsed, and unchanged against itself on reload.

use std::path::{Path, PathBuf};

use steward_core::config::{parse_str, Config, Env, Platform};
use steward_core::{deps, reload};

const SEPARATOR: &str = "\n#--- file ---\n";

struct FuzzEnv<'a> {
    file: Option<&'a str>,
    platform: Option<Platform>,
}

impl Env for FuzzEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.file
            .map(str::to_owned)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn platform(&self) -> Option<Platform> {
        self.platform
    }
}

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (src, file) = match text.split_once(SEPARATOR) {
        Some((src, file)) => (src, Some(file)),
        None => (text, None),
    };
    // Each input is checked for one platform (or none), picked from its length.
    let platform = match src.len() % 5 {
        0 => None,
        i => Some(Platform::ALL[i - 1]),
    };
    let env = FuzzEnv { file, platform };
    let origin = PathBuf::from("/srv/app/steward.toml");
    match parse_str(src, &origin, &env) {
        Ok(config) => accepted(src, &origin, &env, &config),
        Err(diags) => refused(src, &origin, &diags),
    }
}

fn refused(src: &str, origin: &Path, diags: &steward_core::config::Diagnostics) {
    assert!(!diags.is_empty(), "refused without a diagnostic");
    let shown = diags.to_string();
    assert!(!shown.is_empty());
    // The parser skips a byte order mark; lines and columns count from after it.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src.split('\n').collect();
    let mut last = (0, 0);
    for d in diags {
        assert!(d.line >= 1 && d.col >= 1 && d.width >= 1, "{d:?}");
        assert!(!d.message.is_empty(), "{d:?}");
        assert!(d.hint.as_ref().is_some_and(|h| !h.is_empty()), "no hint: {d:?}");
        if d.file != origin {
            continue;
        }
        assert!((d.line, d.col) >= last, "diagnostics out of order: {diags:?}");
        last = (d.line, d.col);
        if let Some(shown_line) = &d.source_line {
            let real = lines.get(d.line - 1).unwrap_or_else(|| panic!("line {} past the end: {d:?}", d.line));
            let real = real.strip_suffix('\r').unwrap_or(real);
            assert_eq!(shown_line, real, "the snippet is not line {}", d.line);
            assert!(d.col <= real.chars().count() + 1, "column past the end of the line: {d:?}");
        }
    }
}

fn accepted(src: &str, origin: &Path, env: &FuzzEnv<'_>, config: &Config) {
    let settings = &config.supervisor;
    assert!(settings.state_dir.is_absolute() && settings.log_dir.is_absolute(), "{settings:?}");
    for (name, p) in &config.programs {
        assert_eq!(&p.name, name);
        assert!(!p.command.is_empty() && !p.command[0].is_empty(), "{name}: empty command");
        assert!(p.cwd.is_absolute(), "{name}: cwd {:?}", p.cwd);
        assert!(p.restart_max_delay >= p.restart_delay, "{name}: max delay below delay");
        for d in &p.depends_on {
            assert!(config.programs.contains_key(d), "{name} depends on unknown {d}");
        }
    }
    let graph = config.programs.iter().map(|(n, p)| (n.clone(), p.depends_on.clone())).collect();
    let order = deps::topo_order(&graph).expect("an accepted config has no dependency cycle");
    assert_eq!(order.len(), config.programs.len());
    for alert in &config.alerts {
        for p in &alert.programs {
            assert!(config.programs.contains_key(p), "alert {} names unknown {p}", alert.name);
        }
    }
    let again = parse_str(src, origin, env).expect("accepted once, refused the next time");
    assert!(&again == config, "two parses of one text differ");
    let diff = reload::diff(config, &again);
    assert!(diff.is_empty() && diff.unchanged.len() == config.programs.len(), "{diff:?}");
}
