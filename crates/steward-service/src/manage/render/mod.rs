//! What a service manager reads, rendered as text from a [`ServiceSpec`]: a systemd unit
//! ([`systemd`]), a launchd property list ([`launchd`]), and the settings registered with the
//! Windows Service Control Manager ([`windows`]).
//!
//! Everything here is pure: a spec in, text out. No file is read or written and no OS is
//! asked anything, so every renderer is compiled and tested on every OS, and a Linux unit can
//! be rendered on a Mac for packaging. Each renderer checks the spec against its platform
//! first: an option the platform cannot honour is an [`Error::Unsupported`] naming both.

pub mod launchd;
pub mod systemd;
pub mod windows;

use std::path::Path;
use std::time::Duration;

use super::{check_name, Error, Platform, ServiceSpec};

/// The text for `platform`. Windows services have no file: theirs is the list of settings
/// given to the Service Control Manager.
pub fn render(platform: Platform, spec: &ServiceSpec) -> Result<String, Error> {
    check_name(&spec.name)?;
    match platform {
        Platform::Systemd => systemd::unit(spec),
        Platform::Launchd => launchd::plist(spec),
        Platform::Windows => windows::render(spec),
    }
}

/// Rejects values that no service file format can carry: line breaks and other control
/// characters.
pub(crate) fn check_text(what: &str, value: &str) -> Result<(), Error> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(Error::invalid(
            what,
            value,
            match c {
                '\n' | '\r' => "it holds a line break",
                '\0' => "it holds a NUL character",
                _ => "it holds a control character",
            },
        )),
    }
}

/// Environment variable names the renderers accept (portable shell names: letters, digits
/// and `_`, not starting with a digit).
pub fn check_env_name(name: &str) -> Result<(), Error> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "environment variable name",
            name,
            "use letters, digits and `_`, not starting with a digit",
        ))
    }
}

/// A path as text, checked for control characters.
pub(crate) fn path_text(what: &str, path: &Path) -> Result<String, Error> {
    let text = path.to_string_lossy().into_owned();
    check_text(what, &text)?;
    Ok(text)
}

/// The executable and the arguments, checked.
pub(crate) fn command(spec: &ServiceSpec) -> Result<(String, Vec<String>), Error> {
    let exe = path_text("executable", &spec.executable)?;
    if exe.is_empty() {
        return Err(Error::invalid("executable", exe, "it is empty"));
    }
    for arg in &spec.args {
        check_text("argument", arg)?;
    }
    Ok((exe, spec.args.clone()))
}

/// The checked environment, in name order.
pub(crate) fn env(spec: &ServiceSpec) -> Result<Vec<(&str, &str)>, Error> {
    spec.env
        .iter()
        .map(|(k, v)| {
            check_env_name(k)?;
            check_text(&format!("environment variable {k}"), v)?;
            Ok((k.as_str(), v.as_str()))
        })
        .collect()
}

/// Whole seconds, rounded up (a timeout is never shortened).
pub(crate) fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A duration for people: `1day`, `45s 500ms`, `1h 30m` (humantime's style).
pub fn human(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "day"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(d.subsec_millis()), "ms"),
        (u64::from(d.subsec_micros() % 1000), "us"),
        (u64::from(d.subsec_nanos() % 1000), "ns"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| match (*unit, *n) {
            ("day", 1) => "1day".to_owned(),
            ("day", n) => format!("{n}days"),
            (unit, n) => format!("{n}{unit}"),
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks() {
        assert!(check_text("x", "plain text, with % and $").is_ok());
        let err = check_text("description", "a\nb").unwrap_err().to_string();
        assert!(err.contains("description") && err.contains("line break"), "{err}");
        assert!(check_env_name("RUST_LOG").is_ok());
        assert!(check_env_name("_X1").is_ok());
        for bad in ["", "1X", "A-B", "A=B", "A B"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(86_400)), "1day");
        assert_eq!(human(Duration::from_millis(45_500)), "45s 500ms");
        assert_eq!(human(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human(Duration::from_secs(2 * 86_400 + 5)), "2days 5s");
        assert_eq!(human(Duration::ZERO), "0s");
    }
}
