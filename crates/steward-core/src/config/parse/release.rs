//! `[programs.NAME.release]` and what it changes in the rest of the program: `%{release}`
//! is kept for the runtime ([`crate::config::instance`]), the `command` must run something
//! inside it, and a `cwd` that starts with it stays as written.
//!
//! The table is one for the whole program: with `instances`, every instance runs the same
//! release, so it may not differ between them.

use super::*;
use crate::config::model::{ReleaseSource, ReleaseSpec, SelfUpdateSpec};
use crate::release::RELEASE_MARK;
use instance::Release;

/// The table as far as it has been checked.
#[derive(Default)]
pub(super) struct ReleaseDraft {
    source: Option<ReleaseSource>,
    /// `None`: the key is absent; `Some(None)`: present and wrong (reported).
    public_keys: Option<Option<Vec<String>>>,
    keep: Option<u32>,
    healthy_for: Option<Duration>,
    ready_timeout: Option<Duration>,
    check_every: Option<Duration>,
    ca_file: Option<PathBuf>,
}

const PUBLIC_KEYS_EXAMPLE: &str =
    "public_keys = [\"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\"]";

pub(super) const RELEASE_KEYS: &[Key<ReleaseDraft>] = &[
    Key {
        name: "source",
        doc: "Where releases come from: an http(s) URL of a manifest, a file:// URL or a path.",
        kind: Kind::Str,
        example: "source = \"https://releases.example.com/api/manifest.json\"",
        set: |c, f, d| d.source = c.release_source(f),
    },
    Key {
        name: "public_keys",
        doc: "The minisign public keys whose signatures steward trusts (the base64 line of each .pub file). Required.",
        kind: Kind::Strings { min_items: 1 },
        example: PUBLIC_KEYS_EXAMPLE,
        set: |c, f, d| d.public_keys = Some(c.public_keys(f)),
    },
    Key {
        name: "keep",
        doc: "How many installed versions to keep (default 3).",
        kind: Kind::Int { min: defaults::RELEASE_MIN_KEEP as i64, max: u32::MAX as i64 },
        example: "keep = 3",
        set: |c, f, d| {
            match c.u32(f) {
            Some(n) if n < defaults::RELEASE_MIN_KEEP => c.error(
                f.span(),
                format!("`keep` is {n}; steward keeps at least {} versions", defaults::RELEASE_MIN_KEEP),
                "the current version and the previous one stay installed, for a rollback: write `keep = 2` or more",
            ),
            Some(n) => d.keep = Some(n),
            None => {}
        }
        },
    },
    Key {
        name: "healthy_for",
        doc: "How long a new version must stay up and ready to be kept (default \"10s\").",
        kind: Kind::Duration,
        example: "healthy_for = \"30s\"",
        set: |c, f, d| d.healthy_for = c.duration(f),
    },
    Key {
        name: "ca_file",
        doc: "A CA certificate (PEM) to trust for an https source, instead of the built-in roots.",
        kind: Kind::Path,
        example: "ca_file = \"/etc/steward/releases-ca.pem\"",
        set: |c, f, d| d.ca_file = c.path(f),
    },
    Key {
        name: "ready_timeout",
        doc: "How long a new version may take to be ready (default \"60s\").",
        kind: Kind::Duration,
        example: "ready_timeout = \"60s\"",
        set: |c, f, d| d.ready_timeout = c.duration(f),
    },
    Key {
        name: "check_every",
        doc: "Look for a new release this often and deploy it, at least \"1m\" (default: only on `steward deploy`).",
        kind: Kind::Duration,
        example: "check_every = \"10m\"",
        set: |c, f, d| match c.duration(f) {
            Some(v) if v < defaults::MIN_CHECK_EVERY => c.error(
                f.span(),
                format!("`check_every` is {}; the shortest is 1m", units::format_duration(v)),
                "look for new releases at most once a minute (`check_every = \"1m\"`), or remove the key \
                 and run `steward deploy` when a release is out",
            ),
            Some(v) => d.check_every = Some(v),
            None => {}
        },
    },
];

#[derive(Default)]
pub(super) struct SelfUpdateDraft {
    source: Option<ReleaseSource>,
    public_keys: Option<Option<Vec<String>>>,
    confirm_within: Option<Duration>,
}

pub(super) const SELF_UPDATE_KEYS: &[Key<SelfUpdateDraft>] = &[
    Key {
        name: "source",
        doc: "Where new versions of steward come from: an http(s) URL of a manifest, a file:// URL or a path.",
        kind: Kind::Str,
        example: "source = \"https://releases.example.com/steward/manifest.json\"",
        set: |c, f, d| d.source = c.release_source(f),
    },
    Key {
        name: "public_keys",
        doc: "The minisign public keys whose signatures steward trusts.",
        kind: Kind::Strings { min_items: 1 },
        example: PUBLIC_KEYS_EXAMPLE,
        set: |c, f, d| d.public_keys = Some(c.public_keys(f)),
    },
    Key {
        name: "confirm_within",
        doc: "How long a new steward has to start and confirm itself before it is rolled back (default \"2m\").",
        kind: Kind::Duration,
        example: "confirm_within = \"2m\"",
        set: |c, f, d| d.confirm_within = c.duration(f),
    },
];

/// The schema of `[programs.NAME.release]`.
pub(super) fn schema() -> serde_json::Value {
    schema::table(RELEASE_KEYS, &["public_keys"])
}

/// The schema of `[self_update]`.
pub(super) fn self_update_schema() -> serde_json::Value {
    schema::table(SELF_UPDATE_KEYS, &[])
}

impl Ctx<'_> {
    /// `[self_update]`: `None` after a mistake (reported).
    pub(super) fn self_update(&mut self, f: &Field<'_, '_>) -> Option<SelfUpdateSpec> {
        let errors = self.diags.len();
        let mut draft = SelfUpdateDraft::default();
        self.table(f)?;
        self.section(f, SELF_UPDATE_KEYS, &mut draft);
        if self.diags.len() > errors {
            return None;
        }
        Some(SelfUpdateSpec {
            source: draft.source,
            public_keys: draft.public_keys.flatten().unwrap_or_default(),
            confirm_within: draft.confirm_within.unwrap_or(defaults::CONFIRM_WITHIN),
        })
    }

    /// `[programs.NAME.release]`: `None` after a mistake (reported).
    pub(super) fn release(&mut self, f: &Field<'_, '_>) -> Option<ReleaseSpec> {
        let errors = self.diags.len();
        let mut draft = ReleaseDraft::default();
        self.table(f)?;
        self.section(f, RELEASE_KEYS, &mut draft);
        if draft.public_keys.is_none() {
            self.error(
                f.span(),
                format!("[{}] has no `public_keys`", f.table_path()),
                format!(
                    "add the keys whose signatures steward trusts, the base64 line of each minisign .pub file: `{PUBLIC_KEYS_EXAMPLE}`"
                ),
            );
        }
        if self.diags.len() > errors {
            return None;
        }
        Some(ReleaseSpec {
            source: draft.source,
            public_keys: draft.public_keys.flatten()?,
            keep: draft.keep.unwrap_or(defaults::RELEASE_KEEP),
            healthy_for: draft.healthy_for.unwrap_or(defaults::HEALTHY_FOR),
            ready_timeout: draft.ready_timeout.unwrap_or(defaults::READY_TIMEOUT),
            ca_file: draft.ca_file,
            check_every: draft.check_every,
        })
    }

    /// `source`: an `http://` or `https://` URL, a `file://` URL, or a path (relative to the
    /// config file's folder).
    fn release_source(&mut self, f: &Field<'_, '_>) -> Option<ReleaseSource> {
        let text = self.string(f)?;
        let hint = "write an http(s) URL of a manifest, a folder that holds `manifest.json`, or the path of \
                    a manifest: `source = \"https://releases.example.com/api/manifest.json\"`";
        if text.trim().is_empty() {
            self.error(f.span(), "`source` is empty", hint);
            return None;
        }
        if text.contains(RELEASE_MARK) {
            self.error(f.span(), "`source` cannot use `%{release}`: it is where releases come from", hint);
            return None;
        }
        let scheme = text.split_once("://").map(|(s, rest)| (s.to_ascii_lowercase(), rest));
        match scheme {
            Some((s, rest)) if s == "http" || s == "https" => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                if host.is_empty() || rest.contains(char::is_whitespace) {
                    self.error(
                        f.span(),
                        format!("`source` \"{text}\" is not a valid URL (no host, or a space)"),
                        hint,
                    );
                    return None;
                }
                Some(ReleaseSource::Url(text))
            }
            Some((s, rest)) if s == "file" => {
                // `file:///srv/x` and `file://localhost/srv/x`; `file:///C:/x` on Windows.
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                let path = match path.as_bytes() {
                    [b'/', drive, b':', ..] if drive.is_ascii_alphabetic() => &path[1..],
                    _ => path,
                };
                let absolute = path.starts_with('/') || path.as_bytes().get(1) == Some(&b':');
                if !absolute {
                    self.error(
                        f.span(),
                        format!("`source` \"{text}\" is not a `file://` URL of an absolute path"),
                        "write three slashes for an absolute path: `source = \"file:///srv/releases/api\"`, \
                         or give the path itself",
                    );
                    return None;
                }
                Some(ReleaseSource::Path(self.dir.join(path)))
            }
            // A Windows path (`C:\x`) has no `://`: anything with it is a URL of another kind.
            Some((s, _))
                if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                self.error(
                    f.span(),
                    format!(
                        "`source` is a `{s}://` URL; steward fetches releases over http, https or from files"
                    ),
                    hint,
                );
                None
            }
            _ => Some(ReleaseSource::Path(self.dir.join(text))),
        }
    }

    /// `public_keys`: a non-empty array of minisign public keys (base64), each checked.
    fn public_keys(&mut self, f: &Field<'_, '_>) -> Option<Vec<String>> {
        let items = self.array(f, "an array of minisign public keys")?;
        if items.is_empty() {
            self.error(
                f.span(),
                "`public_keys` is empty: no release could ever be trusted",
                format!("add the base64 line of each minisign .pub file: `{PUBLIC_KEYS_EXAMPLE}`"),
            );
            return None;
        }
        let mut keys = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(text) = self.string(&f.element(i, item)) else { continue };
            let key = text.trim();
            if minisign_verify::PublicKey::from_base64(key).is_err() {
                self.error(
                    item.span(),
                    format!("`public_keys[{i}]` is not a minisign public key"),
                    "use the base64 line of the .pub file (it starts with RW), not its comment line or the secret key",
                );
                continue;
            }
            keys.push(key.to_owned());
        }
        (keys.len() == items.len()).then_some(keys)
    }

    /// `cwd`: a path, from the config file's folder; or one that starts with `%{release}`,
    /// kept as written for the runtime (which puts the release's absolute folder there).
    pub(super) fn cwd(&mut self, f: &Field<'_, '_>) -> Option<PathBuf> {
        let text = self.string(f)?;
        if self.release == Release::Absent {
            // Any `%{release}` here is literal text (written `%%{release}`).
            return self.path_of(f, text);
        }
        if text.starts_with(RELEASE_MARK) {
            return Some(PathBuf::from(text));
        }
        if text.contains(RELEASE_MARK) {
            self.error(
                f.span(),
                "`cwd` has `%{release}` after its start",
                "`%{release}` is an absolute folder: begin `cwd` with it, as in `cwd = \"%{release}/app\"`",
            );
            return None;
        }
        self.path_of(f, text)
    }

    /// A program with `[release]` runs what it installed: its command must be inside it.
    pub(super) fn check_release_command(&mut self, d: &ProgramDraft) {
        let Some(span) = d.command_span.clone() else { return };
        if self.release == Release::Kept && !d.spec.command.is_empty() && !d.spec.needs_release() {
            self.error(
                span,
                format!(
                    "program `{}` has [release], and its `command` does not use `%{{release}}`",
                    d.spec.name
                ),
                "a program with [release] runs its installed release: write the path inside it, \
                 e.g. `command = \"%{release}/bin/api\"`",
            );
        }
    }

    /// With `instances`, each instance's table was read on its own: they must agree.
    pub(super) fn check_release_instances(&mut self, d: &ProgramDraft) {
        let Some(span) = d.release_span.clone() else { return };
        if d.group.more.iter().any(|other| other.release != d.release) {
            self.error(
                span,
                format!("[programs.{}.release] differs between instances", d.spec.name),
                "every instance runs the same release: remove `%{instance}` from the [release] table",
            );
        }
    }
}
