//! The release history of one program (`state.json`) and which installed versions may go.
//!
//! `current` only ever changes when a switch succeeds: a steward killed in the middle of one
//! still names the complete old version as current on the next start, and finds the switch it
//! was making in `switching` ([`History::interrupted`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Version;

/// What has been installed and run. JSON, with versions as strings; a missing field is its
/// default, and unknown fields are ignored, so other stewards' files can be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// The version the program runs (or would run): the last switch that succeeded.
    pub current: Option<Version>,
    /// The version before `current`: what a rollback goes back to.
    pub previous: Option<Version>,
    /// The newest version that ever ran successfully: anything older is a downgrade.
    pub floor: Option<Version>,
    /// Versions that failed their switch: never picked again on their own.
    pub quarantined: BTreeSet<Version>,
    /// The switch under way, if any.
    pub switching: Option<Switching>,
}

/// A switch from one version to another, under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switching {
    /// `None` for the first install.
    pub from: Option<Version>,
    pub to: Version,
}

impl History {
    /// A switch to `to` starts. `current` stays as it is until [`History::succeeded`]. A
    /// switch already under way is replaced (the caller finished it first).
    pub fn begin(&mut self, to: Version) {
        self.switching = Some(Switching { from: self.current.clone(), to });
    }

    /// The switch under way succeeded: `to` becomes current, the version it replaced becomes
    /// previous (unless it was the same version), the floor rises to `to`, and `to` is no
    /// longer quarantined (it has just proved itself). Without a switch: nothing changes.
    pub fn succeeded(&mut self) {
        let Some(Switching { from, to }) = self.switching.take() else { return };
        if let Some(from) = from.filter(|f| *f != to) {
            self.previous = Some(from);
        }
        if self.floor.as_ref().is_none_or(|floor| *floor < to) {
            self.floor = Some(to.clone());
        }
        self.quarantined.remove(&to);
        self.current = Some(to);
    }

    /// The switch under way failed: `to` is quarantined, and `current` (what the caller puts
    /// back) is unchanged. Without a switch: nothing changes.
    pub fn failed(&mut self) {
        if let Some(Switching { to, .. }) = self.switching.take() {
            self.quarantined.insert(to);
        }
    }

    /// At start: a switch left by a steward that was killed during it. It is cleared and
    /// returned, so the caller can report it; `current` names the version to run.
    pub fn interrupted(&mut self) -> Option<Switching> {
        self.switching.take()
    }

    /// The version a rollback goes back to. A rollback is [`History::begin`] with it, then
    /// [`History::succeeded`]: current and previous swap, the floor stays, and nothing is
    /// quarantined.
    pub fn rollback_target(&self) -> Option<&Version> {
        self.previous.as_ref()
    }

    pub fn is_quarantined(&self, version: &Version) -> bool {
        self.quarantined.contains(version)
    }

    /// The versions that must stay installed whatever `keep` says: current, previous and
    /// both ends of a switch under way.
    pub fn protected(&self) -> BTreeSet<Version> {
        let switching = self.switching.iter().flat_map(|s| s.from.iter().chain([&s.to]));
        self.current.iter().chain(&self.previous).chain(switching).cloned().collect()
    }
}

/// The installed versions to delete, quarantined ones first, then the oldest first.
///
/// Never current, previous, either end of a switch under way, or a version that `running`
/// processes still use. Quarantined versions (failed, and never picked again on their own)
/// all go. Of the others, the newest are kept so that `keep` versions stay installed in all,
/// counting the protected ones; when those alone are `keep` or more, nothing else stays.
pub fn to_remove(
    installed: &BTreeSet<Version>,
    history: &History,
    keep: usize,
    running: &BTreeSet<Version>,
) -> Vec<Version> {
    let mut protected = history.protected();
    protected.extend(running.iter().cloned());
    let kept = installed.iter().filter(|v| protected.contains(*v)).count();
    let (quarantined, others): (Vec<&Version>, Vec<&Version>) =
        installed.iter().filter(|v| !protected.contains(*v)).partition(|v| history.is_quarantined(v));
    // `others` is in ascending order: keep its newest `room` versions.
    let room = keep.saturating_sub(kept).min(others.len());
    let old = &others[..others.len() - room];
    quarantined.into_iter().chain(old.iter().copied()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn protected_versions() {
        let h = History {
            current: Some(v("2.0.0")),
            previous: Some(v("1.0.0")),
            switching: Some(Switching { from: Some(v("2.0.0")), to: v("3.0.0") }),
            ..History::default()
        };
        let p: Vec<String> = h.protected().iter().map(ToString::to_string).collect();
        assert_eq!(p, ["1.0.0", "2.0.0", "3.0.0"]);
    }
}
