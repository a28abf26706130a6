//! Where steward's own releases come from: the `[self_update]` table of the config file,
//! overridden by the CLI's `--source` and `--key` flags.
//!
//! ```toml
//! [self_update]
//! source = "https://releases.example.com/steward/manifest.json"  # or a folder, or a .json path
//! public_keys = ["RWQ..."]   # minisign public keys (the base64 line of the .pub file)
//! confirm_within = "2m"      # how long a new steward may take to settle before it counts as failed
//! ```
//!
//! The table is read here from the file's TOML, not by the config parser, so it changes
//! nothing that a reload compares (the lead may move it into steward-core later).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a new steward may take to settle after a self-update before the boot counter
/// counts its start as failed.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(120);

/// The `[self_update]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A folder, a `.json` path (relative ones resolved from the config file's folder), or an
    /// http(s)/file URL of a manifest.
    pub source: Option<String>,
    pub public_keys: Vec<String>,
    pub confirm_within: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { source: None, public_keys: Vec::new(), confirm_within: CONFIRM_WITHIN }
    }
}

/// `[self_update]` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the config {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the config {} is not valid TOML; `steward check -c {}` shows where", path.display(), path.display())]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("[self_update] in {}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

/// The `[self_update]` table of the config file at `config` (defaults without one).
pub fn read(config: &Path) -> Result<Settings, SettingsError> {
    let text = std::fs::read_to_string(config)
        .map_err(|source| SettingsError::Read { path: config.to_path_buf(), source })?;
    parse(&text).map_err(|e| match e {
        ParseError::Toml(source) => SettingsError::Toml { path: config.to_path_buf(), source },
        ParseError::Invalid(what) => SettingsError::Invalid { path: config.to_path_buf(), what },
    })
}

enum ParseError {
    Toml(toml::de::Error),
    Invalid(String),
}

fn parse(text: &str) -> Result<Settings, ParseError> {
    let doc: toml::Table = text.parse().map_err(ParseError::Toml)?;
    let mut settings = Settings::default();
    let Some(table) = doc.get("self_update") else { return Ok(settings) };
    let table = table.as_table().ok_or_else(|| ParseError::Invalid("must be a table".into()))?;
    for (key, value) in table {
        match key.as_str() {
            "source" => {
                let s = value.as_str().filter(|s| !s.trim().is_empty());
                let s = s.ok_or_else(|| ParseError::Invalid("`source` must be a non-empty string".into()))?;
                settings.source = Some(s.to_owned());
            }
            "public_keys" => {
                let keys = value
                    .as_array()
                    .ok_or_else(|| ParseError::Invalid("`public_keys` must be an array of strings".into()))?;
                settings.public_keys =
                    keys.iter().map(|k| k.as_str().map(str::to_owned)).collect::<Option<_>>().ok_or_else(
                        || ParseError::Invalid("`public_keys` must be an array of strings".into()),
                    )?;
            }
            "confirm_within" => {
                let text = value.as_str().ok_or_else(|| {
                    ParseError::Invalid("`confirm_within` must be a duration such as \"2m\"".into())
                })?;
                settings.confirm_within =
                    humantime::parse_duration(text).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                        ParseError::Invalid(format!(
                            "`confirm_within = \"{text}\"` is not a duration such as \"2m\""
                        ))
                    })?;
            }
            other => {
                return Err(ParseError::Invalid(format!(
                    "unknown key `{other}` (known: source, public_keys, confirm_within)"
                )))
            }
        }
    }
    Ok(settings)
}

/// A `source` as written in the config file at `config`: a relative path is taken from the
/// config file's folder; URLs and absolute paths are kept.
pub fn resolve_source(source: &str, config: &Path) -> String {
    let is_url = ["http://", "https://", "file://"].iter().any(|s| source.starts_with(s));
    if is_url || Path::new(source).is_absolute() {
        return source.to_owned();
    }
    let abs = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    dir.join(source).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Settings, String> {
        parse(text).map_err(|e| match e {
            ParseError::Toml(e) => e.to_string(),
            ParseError::Invalid(w) => w,
        })
    }

    #[test]
    fn the_table_and_its_defaults() {
        assert_eq!(parsed("[programs.a]\ncommand = \"x\"\n").unwrap(), Settings::default());
        let s = parsed(
            "[self_update]\nsource = \"releases\"\npublic_keys = [\"RWQ1\", \"RWQ2\"]\nconfirm_within = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(s.source.as_deref(), Some("releases"));
        assert_eq!(s.public_keys, ["RWQ1", "RWQ2"]);
        assert_eq!(s.confirm_within, Duration::from_secs(30));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("self_update = 3\n", "must be a table"),
            ("[self_update]\nsource = 3\n", "`source`"),
            ("[self_update]\npublic_keys = \"RW\"\n", "`public_keys`"),
            ("[self_update]\nconfirm_within = \"soon\"\n", "\"soon\""),
            ("[self_update]\nsoruce = \"x\"\n", "unknown key `soruce`"),
        ] {
            let e = parsed(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn relative_sources_are_taken_from_the_config_folder() {
        let config = Path::new("/etc/steward/steward.toml");
        assert_eq!(resolve_source("https://h/m.json", config), "https://h/m.json");
        assert_eq!(resolve_source("file:///m.json", config), "file:///m.json");
        if cfg!(unix) {
            assert_eq!(resolve_source("/srv/r", config), "/srv/r");
            assert_eq!(resolve_source("r", config), "/etc/steward/r");
        }
    }
}
