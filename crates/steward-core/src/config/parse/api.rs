//! `[api]` and `[[api.tokens]]`: the remote API's keys, and the checks that span them (TLS
//! off loopback, at least one token, unique names and tokens).
//!
//! A token given as `token_file` is read here, through [`Env::read_file`], and only its
//! SHA-256 is kept: the plain token never reaches the model.

use std::net::SocketAddr;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{schema, walk, Ctx, Field, Key, Kind, Span};
use crate::config::model::{defaults, ApiRole, ApiSettings, ApiToken, TlsFiles};

/// A token shorter than this in a `token_file` is refused: it could be guessed.
const MIN_TOKEN_LEN: usize = 16;

/// `[api]` as far as it has been checked. Each `*_span` is set when the key is written,
/// even if its value was wrong, so that the checks across keys neither miss a key nor
/// repeat a mistake already reported.
pub(super) struct ApiDraft {
    /// The `[api]` table, for mistakes about the table as a whole.
    span: Span,
    listen: Option<SocketAddr>,
    listen_span: Option<Span>,
    tls_cert: Option<PathBuf>,
    tls_cert_span: Option<Span>,
    tls_key: Option<PathBuf>,
    tls_key_span: Option<Span>,
    audit_log: Option<PathBuf>,
    tokens: Vec<TokenDraft>,
    tokens_span: Option<Span>,
}

pub(super) const API_KEYS: &[Key<ApiDraft>] = &[
    Key {
        name: "listen",
        doc: "The IP address and port to serve the remote API on. Required unless [dashboard] is set.",
        kind: Kind::Str,
        example: "listen = \"127.0.0.1:8443\"",
        set: |c, f, d| {
            d.listen_span = Some(f.span());
            d.listen = c.socket_addr(f);
        },
    },
    Key {
        name: "tls_cert",
        doc: "The certificate chain (PEM) to serve TLS with; needed off loopback.",
        kind: Kind::Path,
        example: "tls_cert = \"tls/cert.pem\"",
        set: |c, f, d| {
            d.tls_cert_span = Some(f.span());
            d.tls_cert = c.pem_file(f, "CERTIFICATE", "the certificate chain");
        },
    },
    Key {
        name: "tls_key",
        doc: "The private key (PEM) of tls_cert.",
        kind: Kind::Path,
        example: "tls_key = \"tls/key.pem\"",
        set: |c, f, d| {
            d.tls_key_span = Some(f.span());
            d.tls_key = c.pem_file(f, "PRIVATE KEY", "the private key");
        },
    },
    Key {
        name: "audit_log",
        doc: "Where control actions are logged (default: <state_dir>/audit.log).",
        kind: Kind::Path,
        example: "audit_log = \"/var/log/steward/audit.log\"",
        set: |c, f, d| d.audit_log = c.path(f),
    },
    Key {
        name: "tokens",
        doc: "Who may use the API: a name, a role and a token each. At least one.",
        kind: Kind::Tables(|| schema::table(TOKEN_KEYS, &["name", "role"])),
        example: "[[api.tokens]]",
        set: |c, f, d| {
            d.tokens_span = Some(f.span());
            d.tokens = c.tokens(f);
        },
    },
];

/// One `[[api.tokens]]` entry as far as it has been checked.
pub(super) struct TokenDraft {
    /// The entry, for a missing key.
    span: Span,
    name: Option<(String, Span)>,
    name_seen: bool,
    role: Option<ApiRole>,
    role_seen: bool,
    sha256: Option<[u8; 32]>,
    /// `token_sha256` and `token_file` as written: exactly one is allowed.
    secret_spans: Vec<Span>,
}

pub(super) const TOKEN_KEYS: &[Key<TokenDraft>] = &[
    Key {
        name: "name",
        doc: "Who uses this token: the audit log names callers by it.",
        kind: Kind::Str,
        example: "name = \"deploy-bot\"",
        set: |c, f, d| {
            d.name_seen = true;
            d.name = c.token_name(f).map(|n| (n, f.span()));
        },
    },
    Key {
        name: "role",
        doc: "What the token may do: \"viewer\" reads; \"operator\" also starts, stops, restarts, reloads and deploys; \"admin\" may do everything.",
        kind: Kind::Choice(ApiRole::NAMES),
        example: "role = \"operator\"",
        set: |c, f, d| {
            d.role_seen = true;
            d.role = c.choice(f, ApiRole::from_name, ApiRole::NAMES);
        },
    },
    Key {
        name: "token_sha256",
        doc: "The SHA-256 of the token, 64 hex digits (or give token_file).",
        kind: Kind::Str,
        example: "token_sha256 = \"<64 hex digits: printf %s \\\"$TOKEN\\\" | sha256sum>\"",
        set: |c, f, d| {
            d.secret_spans.push(f.span());
            d.sha256 = c.sha256_hex(f);
        },
    },
    Key {
        name: "token_file",
        doc: "A file that holds the token (or give token_sha256).",
        kind: Kind::Path,
        example: "token_file = \"/etc/steward/deploy-bot.token\"",
        set: |c, f, d| {
            d.secret_spans.push(f.span());
            d.sha256 = c.token_file(f);
        },
    },
];

/// The schema of `[api]`.
pub(super) fn schema() -> serde_json::Value {
    // `listen` may be left out with `[dashboard]`, which the schema of one table cannot say.
    schema::table(API_KEYS, &["tokens"])
}

impl Ctx<'_> {
    /// `[api]`: its keys, then the checks across them.
    pub(super) fn api(&mut self, f: &Field<'_, '_>) -> Option<ApiDraft> {
        let table = self.table(f)?;
        let mut d = ApiDraft {
            span: f.span(),
            listen: None,
            listen_span: None,
            tls_cert: None,
            tls_cert_span: None,
            tls_key: None,
            tls_key_span: None,
            audit_log: None,
            tokens: Vec::new(),
            tokens_span: None,
        };
        walk(self, table, &f.table_path(), API_KEYS, &mut d);
        self.check_api(&d);
        Some(d)
    }

    /// The checks within `[api]`. A missing `listen` is checked with `[dashboard]`
    /// ([`Ctx::check_api_listen`]): without a remote API, `[api]` may hold only tokens.
    fn check_api(&mut self, d: &ApiDraft) {
        let listen_span = d.listen_span.clone().unwrap_or_else(|| d.span.clone());
        match (&d.tls_cert_span, &d.tls_key_span) {
            (Some(_), None) => self.error(
                d.tls_cert_span.clone().unwrap_or_default(),
                "`tls_cert` is set but `tls_key` is not",
                "add the certificate's private key: `tls_key = \"tls/key.pem\"`",
            ),
            (None, Some(_)) => self.error(
                d.tls_key_span.clone().unwrap_or_default(),
                "`tls_key` is set but `tls_cert` is not",
                "add the certificate chain: `tls_cert = \"tls/cert.pem\"`",
            ),
            (None, None) => {
                if let Some(addr) = d.listen.filter(|a| !a.ip().is_loopback()) {
                    self.error(
                        listen_span.clone(),
                        format!("the remote API on {addr} would be plain HTTP off this machine"),
                        "set `tls_cert` and `tls_key` to serve it over TLS, or listen on a loopback \
                         address such as \"127.0.0.1:8443\"",
                    );
                }
            }
            (Some(_), Some(_)) => {}
        }
        if d.tokens.is_empty() {
            self.error(
                d.tokens_span.clone().unwrap_or(listen_span),
                "the remote API has no tokens, so nobody could use it",
                "add a [[api.tokens]] table with `name`, `role` and `token_sha256` (or `token_file`); \
                 every remote request needs a token, on loopback too",
            );
        }
        let mut names: Vec<&str> = Vec::new();
        let mut hashes: Vec<(&[u8; 32], &str)> = Vec::new();
        for t in &d.tokens {
            if let Some((name, span)) = &t.name {
                if names.contains(&name.as_str()) {
                    self.error(
                        span.clone(),
                        format!("two [[api.tokens]] are named `{name}`"),
                        "give each token its own name: the name is who the audit log says acted",
                    );
                } else {
                    names.push(name);
                }
            }
            if let (Some(hash), Some(span)) = (&t.sha256, t.secret_spans.first()) {
                let this = t.name.as_ref().map_or("?", |(n, _)| n.as_str());
                match hashes.iter().find(|(h, _)| *h == hash) {
                    Some((_, other)) => self.error(
                        span.clone(),
                        format!("tokens `{other}` and `{this}` are the same token"),
                        "give each caller its own token, so the audit log can tell them apart",
                    ),
                    None => hashes.push((hash, this)),
                }
            }
        }
    }

    /// `[api]` without `listen` only holds the dashboard's tokens: an error without
    /// `[dashboard]`.
    pub(super) fn check_api_listen(&mut self, api: Option<&ApiDraft>, dashboard: bool) {
        if let Some(d) = api.filter(|d| d.listen_span.is_none() && !dashboard) {
            self.error(
                d.span.clone(),
                "[api] has no `listen`",
                "add the address to serve the remote API on, for example `listen = \"127.0.0.1:8443\"`, \
                 or remove [api] to keep the API on the local socket only",
            );
        }
    }

    /// `[[api.tokens]]`: an array of tables, each checked on its own.
    fn tokens(&mut self, f: &Field<'_, '_>) -> Vec<TokenDraft> {
        let Some(items) = self.array(f, "an array of tables ([[api.tokens]])") else { return Vec::new() };
        let mut tokens = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = f.element(i, item);
            let Some(table) = self.table(&field) else { continue };
            let mut t = TokenDraft {
                span: item.span(),
                name: None,
                name_seen: false,
                role: None,
                role_seen: false,
                sha256: None,
                secret_spans: Vec::new(),
            };
            walk(self, table, "api.tokens", TOKEN_KEYS, &mut t);
            self.check_token(&t);
            tokens.push(t);
        }
        tokens
    }

    /// The keys every entry needs.
    fn check_token(&mut self, t: &TokenDraft) {
        let missing = |c: &mut Self, what: &str, hint: &str| {
            c.error(t.span.clone(), format!("a [[api.tokens]] entry has no {what}"), hint);
        };
        if !t.name_seen {
            missing(self, "`name`", "add `name = \"deploy-bot\"`: the audit log names callers by it");
        }
        if !t.role_seen {
            missing(self, "`role`", "add `role = \"viewer\"`, \"operator\" or \"admin\"");
        }
        let mut secrets = t.secret_spans.clone();
        secrets.sort_by_key(|span| span.start);
        match secrets.as_slice() {
            [] => missing(
                self,
                "token",
                "add `token_sha256 = \"...\"` (the SHA-256 of the token, in hex) or `token_file = \"PATH\"`",
            ),
            [_] => {}
            [_, second, ..] => {
                self.error(
                    second.clone(),
                    "a [[api.tokens]] entry has both `token_sha256` and `token_file`",
                    "keep one of them",
                );
            }
        }
    }

    /// `listen`: an IP address and a port.
    pub(super) fn socket_addr(&mut self, f: &Field<'_, '_>) -> Option<SocketAddr> {
        let text = self.string(f)?;
        let addr = text.parse::<SocketAddr>().ok();
        if addr.is_none() {
            self.error(
                f.span(),
                format!("`{}` must be an IP address and a port, found \"{text}\"", f.name),
                "for example \"127.0.0.1:8443\", \"0.0.0.0:8443\" (every IPv4 interface) or \
                 \"[::1]:8443\"; host names are not accepted",
            );
        }
        addr
    }

    /// `tls_cert`, `tls_key`: a path to a readable PEM file holding a `label` block. The
    /// daemon reads the file again when it starts; this catches a wrong path at `check` time.
    fn pem_file(&mut self, f: &Field<'_, '_>, label: &str, what: &str) -> Option<PathBuf> {
        let path = self.path(f)?;
        match self.env.read_file(&path) {
            Ok(text) if text.contains("-----BEGIN ") && text.contains(&format!("{label}-----")) => Some(path),
            Ok(_) => {
                self.error(
                    f.span(),
                    format!("`{}` names `{}`, which holds no PEM {label}", f.name, path.display()),
                    format!("give {what} in PEM form (a `-----BEGIN ...{label}-----` block)"),
                );
                None
            }
            Err(e) => {
                self.error(
                    f.span(),
                    format!("cannot read `{}` file `{}`: {e}", f.name, path.display()),
                    "fix the path (a relative path is resolved from the config file's folder) or \
                     make the file readable by the user steward runs as",
                );
                None
            }
        }
    }

    /// A token's `name`: it goes into the audit log and messages, so it is kept plain.
    fn token_name(&mut self, f: &Field<'_, '_>) -> Option<String> {
        let name = self.string(f)?;
        let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')));
        if name.is_empty() || bad.is_some() {
            let why = bad.map_or("it is empty".to_owned(), |c| format!("{c:?} is not allowed"));
            self.error(
                f.span(),
                format!("invalid token name \"{name}\": {why}"),
                "use letters, digits, `_`, `-`, `.` and `@`",
            );
            return None;
        }
        Some(name)
    }

    /// `token_sha256`: 64 hex digits.
    fn sha256_hex(&mut self, f: &Field<'_, '_>) -> Option<[u8; 32]> {
        let text = self.string(f)?;
        let hash = parse_sha256_hex(&text);
        if hash.is_none() {
            let found = if text.len() == 64 {
                "a character that is not a hex digit".to_owned()
            } else {
                format!("{} characters", text.chars().count())
            };
            self.error(
                f.span(),
                format!("`{}` must be 64 hex digits (a SHA-256), found {found}", f.name),
                "hash the token: `printf %s \"$TOKEN\" | sha256sum`, or give it in a file with \
                 `token_file = \"PATH\"`",
            );
        }
        hash
    }

    /// `token_file`: the token is the file's text without surrounding whitespace.
    fn token_file(&mut self, f: &Field<'_, '_>) -> Option<[u8; 32]> {
        let (path, text) = self.file_text(f)?;
        let token = text.trim();
        if token.chars().count() < MIN_TOKEN_LEN {
            self.error(
                f.span(),
                format!(
                    "the token in `{}` is {} characters long; at least {MIN_TOKEN_LEN} are needed",
                    path.display(),
                    token.chars().count()
                ),
                "put a long random token in the file, for example the output of `openssl rand -hex 32`",
            );
            return None;
        }
        Some(Sha256::digest(token.as_bytes()).into())
    }
}

impl ApiDraft {
    /// Whether `[api] listen` is written (rightly or not).
    pub(super) fn has_listen(&self) -> bool {
        self.listen_span.is_some()
    }
    /// Only called once the whole document checked out, so every required value is there.
    pub(super) fn into_settings(self, state_dir: &std::path::Path) -> Option<ApiSettings> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        let tokens = self
            .tokens
            .into_iter()
            .filter_map(|t| Some(ApiToken { name: t.name?.0, role: t.role?, sha256: t.sha256? }))
            .collect();
        if self.listen_span.is_some() && self.listen.is_none() {
            return None;
        }
        Some(ApiSettings {
            listen: self.listen,
            tls,
            audit_log: self.audit_log.unwrap_or_else(|| state_dir.join(defaults::AUDIT_LOG)),
            tokens,
        })
    }
}

/// 64 hex digits, either case, to 32 bytes.
fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_parses_both_cases_and_nothing_else() {
        let lower = "00ff".repeat(16);
        let upper = lower.to_uppercase();
        let expected: [u8; 32] = std::array::from_fn(|i| if i % 2 == 0 { 0 } else { 0xff });
        assert_eq!(parse_sha256_hex(&lower), Some(expected));
        assert_eq!(parse_sha256_hex(&upper), Some(expected));
        assert_eq!(parse_sha256_hex(&lower[..62]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &lower[..62])), None);
        assert_eq!(parse_sha256_hex(&format!("{}+1", &lower[..62])), None);
    }
}
