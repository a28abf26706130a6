//! Where steward's own releases come from: the `[self_update]` table of the config
//! (`steward_core::config::SelfUpdateSpec`, checked with the rest of the file), overridden by
//! the CLI's `--source` and `--key` flags.
//!
//! ```toml
//! [self_update]
//! source = "https://releases.example.com/steward/manifest.json"  # or a folder, or a .json path
//! public_keys = ["RWQ..."]   # minisign public keys (the base64 line of the .pub file)
//! confirm_within = "2m"      # how long a new steward may take to settle before it counts as failed
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use steward_core::config::{Config, ReleaseSource};

/// How long a new steward may take to settle after a self-update before the boot counter
/// counts its start as failed.
pub const CONFIRM_WITHIN: Duration = steward_core::config::defaults::CONFIRM_WITHIN;

/// The `[self_update]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A folder, a `.json` path (absolute: resolved from the config file's folder), or an
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
    #[error("the config {} is invalid; `steward check -c {}` shows where", path.display(), path.display())]
    Invalid { path: PathBuf },
}

/// The settings of a checked config (defaults without a `[self_update]` table).
pub fn of(config: &Config) -> Settings {
    let Some(spec) = &config.self_update else { return Settings::default() };
    Settings {
        source: spec.source.as_ref().map(|s| match s {
            ReleaseSource::Url(url) => url.clone(),
            ReleaseSource::Path(p) => p.display().to_string(),
        }),
        public_keys: spec.public_keys.clone(),
        confirm_within: spec.confirm_within,
    }
}

/// The `[self_update]` table of the config file at `config`.
pub fn read(config: &Path) -> Result<Settings, SettingsError> {
    steward_core::config::load_with(config, &crate::process::host_env())
        .map(|c| of(&c))
        .map_err(|_| SettingsError::Invalid { path: config.to_path_buf() })
}

/// A `--source` as given on the command line: a relative path is taken from the current
/// folder; URLs and absolute paths are kept.
pub fn resolve_source(source: &str) -> String {
    let is_url = ["http://", "https://", "file://"].iter().any(|s| source.starts_with(s));
    if is_url || Path::new(source).is_absolute() {
        return source.to_owned();
    }
    std::path::absolute(source).map_or_else(|_| source.to_owned(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, text).unwrap();
        read(&path).unwrap()
    }

    #[test]
    fn the_table_and_its_defaults() {
        assert_eq!(parsed("[programs.a]\ncommand = \"x\"\n"), Settings::default());
        let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        let s = parsed(&format!(
            "[self_update]\nsource = \"https://r.example/steward/manifest.json\"\npublic_keys = [\"{key}\"]\nconfirm_within = \"30s\"\n"
        ));
        assert_eq!(s.source.as_deref(), Some("https://r.example/steward/manifest.json"));
        assert_eq!(s.public_keys, [key]);
        assert_eq!(s.confirm_within, Duration::from_secs(30));
    }

    #[test]
    fn relative_sources_are_taken_from_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, "[self_update]\nsource = \"releases\"\n").unwrap();
        let s = read(&path).unwrap();
        assert_eq!(s.source, Some(dir.path().join("releases").display().to_string()));
    }

    #[test]
    fn a_bad_table_is_an_invalid_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, "[self_update]\nsorce = \"x\"\n").unwrap();
        assert!(read(&path).is_err());
    }
}
