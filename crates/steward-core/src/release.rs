//! The rules of signed releases, pure: no I/O and no clock (`now` is a parameter).
//!
//! - [`Manifest::parse`]: a manifest's JSON, checked field by field ([`manifest`]).
//! - [`accept`]: whether a verified manifest may be installed here and now, and which of its
//!   archives; or a [`Refusal`] that says what failed and what to do.
//! - [`comment_fields`] and [`file_release`]: the `name=api version=1.4.0` a signature's
//!   trusted comment carries for `steward deploy --file`.
//! - [`History`] and [`to_remove`]: what was installed and run, how a switch changes it, and
//!   which installed versions may be deleted ([`history`]).
//!
//! Checking the signature, downloading, unpacking and switching are the runtime's: it calls
//! these with what it read.

pub mod history;
pub mod manifest;

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

pub use history::{to_remove, History, Switching};
pub use manifest::{Artifact, Manifest, ManifestError, ANY_TARGET, SCHEMA};
pub use semver::Version;

/// The text that stands for a release's folder in a program's config (`%{release}/bin/api`).
pub const RELEASE_MARK: &str = "%{release}";

/// This machine's target, as manifests name it: `linux-x86_64`, `windows-x86_64`,
/// `macos-aarch64`...
pub fn host_target() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// What a deploy expects of a manifest (its signature already verified).
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    /// The program deployed to.
    pub name: &'a str,
    /// Usually [`host_target`].
    pub target: &'a str,
    pub now: SystemTime,
    /// The version the program runs now (`History::current`).
    pub installed: Option<&'a Version>,
    /// The newest version that ever ran successfully (`History::floor`).
    pub floor: Option<&'a Version>,
    /// `--allow-downgrade`: install a version older than `installed` or `floor`.
    pub allow_downgrade: bool,
}

/// Why a manifest is not installed. The `Display` says what failed and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The manifest is for another program.
    WrongName { expected: String, found: String },
    /// `now` is past the manifest's `expires`.
    Expired { expires: SystemTime, now: SystemTime },
    /// Its version is the one the program runs: nothing to do.
    AlreadyInstalled { version: Version },
    /// Its version is older than `newer`, without `allow_downgrade`.
    Downgrade { version: Version, newer: Version, of: DowngradeOf },
    /// No archive for the target, nor one for any target.
    NoArtifact { target: String, offered: Vec<String> },
}

/// What a downgrade is older than.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DowngradeOf {
    /// The version installed now.
    Installed,
    /// The newest version that ever ran successfully (installed now is older: after a
    /// rollback).
    Floor,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongName { expected, found } => write!(
                f,
                "the manifest is for program `{found}`, not `{expected}`: check the `source` of \
                 [programs.{expected}.release], or ask the publisher for `{expected}`'s manifest"
            ),
            Refusal::Expired { expires, now } => {
                let ago = now.duration_since(*expires).unwrap_or_default();
                let ago = humantime::format_duration(std::time::Duration::from_secs(ago.as_secs()));
                write!(
                    f,
                    "the manifest expired at {} ({ago} ago): the publisher must re-sign it with a later `expires`",
                    humantime::format_rfc3339_seconds(*expires)
                )
            }
            Refusal::AlreadyInstalled { version } => {
                write!(f, "version {version} is already installed: nothing to do")
            }
            Refusal::Downgrade { version, newer, of: DowngradeOf::Installed } => write!(
                f,
                "version {version} is older than the installed {newer}: pass --allow-downgrade to install it anyway"
            ),
            Refusal::Downgrade { version, newer, of: DowngradeOf::Floor } => write!(
                f,
                "version {version} is older than {newer}, which already ran here (a downgrade can bring back \
                 what a newer version fixed): pass --allow-downgrade to install it anyway"
            ),
            Refusal::NoArtifact { target, offered } => write!(
                f,
                "the manifest has no archive for {target} (it offers: {}): ask the publisher for a {target} \
                 build, or an `any` one for a script",
                offered.join(", ")
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether `m` may be installed for `e`, and which of its archives. Checked in this order:
/// the program's name, the expiry, the version against what is installed and the floor, then
/// an archive for the target (one built for it before an `any` one).
pub fn accept<'m>(m: &'m Manifest, e: &Expect<'_>) -> Result<&'m Artifact, Refusal> {
    if m.name != e.name {
        return Err(Refusal::WrongName { expected: e.name.to_owned(), found: m.name.clone() });
    }
    if e.now > m.expires {
        return Err(Refusal::Expired { expires: m.expires, now: e.now });
    }
    if e.installed == Some(&m.version) {
        return Err(Refusal::AlreadyInstalled { version: m.version.clone() });
    }
    if !e.allow_downgrade {
        let newer = [(e.installed, DowngradeOf::Installed), (e.floor, DowngradeOf::Floor)]
            .into_iter()
            .find_map(|(v, of)| v.filter(|v| m.version < **v).map(|v| (v, of)));
        if let Some((newer, of)) = newer {
            return Err(Refusal::Downgrade { version: m.version.clone(), newer: newer.clone(), of });
        }
    }
    m.artifact_for(e.target)
        .ok_or_else(|| Refusal::NoArtifact { target: e.target.to_owned(), offered: m.targets() })
}

/// The whitespace-separated `key=value` fields of a signature's trusted comment
/// (`name=api version=1.4.0`). Words without `=` are ignored; a key given twice keeps its
/// last value.
pub fn comment_fields(trusted_comment: &str) -> BTreeMap<String, String> {
    trusted_comment
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// Why a trusted comment does not name a release.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    #[error(
        "the signature's trusted comment has no `{0}=`: sign the archive with \
         `minisign -S -m ARCHIVE -t \"name=PROGRAM version=X.Y.Z\"`"
    )]
    Missing(&'static str),
    #[error(
        "the signature's trusted comment has `version={text}`, not a semantic version such as 1.4.0: {why}"
    )]
    BadVersion { text: String, why: String },
}

/// The program and version a signed archive is for (`steward deploy --file`), from its
/// signature's trusted comment.
pub fn file_release(trusted_comment: &str) -> Result<(String, Version), CommentError> {
    let mut fields = comment_fields(trusted_comment);
    let name = fields.remove("name").filter(|n| !n.is_empty()).ok_or(CommentError::Missing("name"))?;
    let text = fields.remove("version").filter(|v| !v.is_empty()).ok_or(CommentError::Missing("version"))?;
    match Version::parse(&text) {
        Ok(version) => Ok((name, version)),
        Err(e) => Err(CommentError::BadVersion { text, why: e.to_string() }),
    }
}
