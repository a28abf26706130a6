//! `[api]` and `[[api.tokens]]`: what a valid table resolves to, and every mistake at its
//! line:col.

use crate::support::{dir, errors_with, hint, parse_with, single_error, FakeEnv};
use std::net::SocketAddr;
use steward_core::config::{ApiRole, TlsFiles};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
const PROGRAM: &str = "[programs.web]\ncommand = \"x\"\n";

/// A FakeEnv with a certificate, a key and a token file beside the config.
fn files() -> FakeEnv {
    FakeEnv::new()
        .file(dir().join("tls/cert.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .file(dir().join("tls/key.pem"), "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
        .file(dir().join("ci.token"), "correct-horse-battery-staple\n")
}

fn sha256_of(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[test]
fn no_api_table_means_no_remote_api() {
    let config = parse_with(PROGRAM, &FakeEnv::new()).unwrap();
    assert!(config.api.is_none());
    assert_eq!(config.audit_log(), dir().join(".steward").join("audit.log"));
}

#[test]
fn a_full_api_table_resolves() {
    let src = format!(
        r#"{PROGRAM}
[supervisor]
state_dir = "state"

[api]
listen = "0.0.0.0:8443"
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"
audit_log = "logs/audit.log"

[[api.tokens]]
name = "dashboard"
role = "viewer"
token_sha256 = "{upper}"

[[api.tokens]]
name = "ci@deploy"
role = "admin"
token_file = "ci.token"
"#,
        upper = HASH.to_uppercase()
    );
    let config = parse_with(&src, &files()).unwrap_or_else(|d| panic!("{d}"));
    let api = config.api.clone().expect("[api] is set");
    assert_eq!(api.listen, Some("0.0.0.0:8443".parse::<SocketAddr>().unwrap()));
    assert_eq!(api.tls, Some(TlsFiles { cert: dir().join("tls/cert.pem"), key: dir().join("tls/key.pem") }));
    assert_eq!(api.audit_log, dir().join("logs/audit.log"));
    assert_eq!(config.audit_log(), dir().join("logs/audit.log"));
    assert_eq!(api.tokens.len(), 2);
    assert_eq!((api.tokens[0].name.as_str(), api.tokens[0].role), ("dashboard", ApiRole::Viewer));
    assert_eq!(api.tokens[0].sha256, sha256_of("test"));
    assert_eq!((api.tokens[1].name.as_str(), api.tokens[1].role), ("ci@deploy", ApiRole::Admin));
    // The file's trailing newline is not part of the token.
    assert_eq!(api.tokens[1].sha256, sha256_of("correct-horse-battery-staple"));
}

#[test]
fn loopback_without_tls_is_fine_and_the_audit_log_defaults_to_the_state_dir() {
    for listen in ["127.0.0.1:0", "127.0.0.2:9000", "[::1]:8443"] {
        let src = format!(
            "{PROGRAM}[api]\nlisten = \"{listen}\"\n[[api.tokens]]\nname = \"a\"\nrole = \"operator\"\ntoken_sha256 = \"{HASH}\"\n"
        );
        let api = parse_with(&src, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}")).api.unwrap();
        assert_eq!(api.listen, Some(listen.parse::<SocketAddr>().unwrap()));
        assert_eq!(api.tls, None);
        assert_eq!(api.audit_log, dir().join(".steward").join("audit.log"));
    }
}

#[test]
fn debug_output_never_shows_a_token_hash() {
    let src = format!("{PROGRAM}[api]\nlisten = \"127.0.0.1:1\"\n[[api.tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken_sha256 = \"{HASH}\"\n");
    let config = parse_with(&src, &FakeEnv::new()).unwrap();
    let shown = format!("{:?}", config.api);
    assert!(shown.contains("<redacted>") && shown.contains("Admin"), "{shown}");
    assert!(!shown.contains("159") && !shown.contains("9f86"), "{shown}");
}

#[test]
fn roles_are_ordered_by_what_they_allow() {
    assert!(ApiRole::Viewer < ApiRole::Operator && ApiRole::Operator < ApiRole::Admin);
    for name in ApiRole::NAMES {
        assert_eq!(ApiRole::from_name(name).unwrap().name(), *name);
    }
    assert_eq!(ApiRole::from_name("root"), None);
}

// ---- mistakes ----------------------------------------------------------------------------

/// `[api]` with `body`, after one program (2 lines), so `[api]` is line 3 and `body` starts
/// on line 4.
fn api(body: &str) -> String {
    format!("{PROGRAM}[api]\n{body}")
}

fn token(name: &str, role: &str) -> String {
    format!("[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{HASH}\"\n")
}

#[test]
fn non_loopback_listen_without_tls() {
    let src = api(&format!("listen = \"0.0.0.0:8443\"\n{}", token("a", "viewer")));
    let d = single_error(&src, &files(), 4, 10, "would be plain HTTP off this machine");
    assert!(hint(&d).contains("tls_cert") && hint(&d).contains("127.0.0.1"), "{}", hint(&d));
}

#[test]
fn tls_cert_without_tls_key_and_the_reverse() {
    let src = api(&format!("listen = \"0.0.0.0:1\"\ntls_cert = \"tls/cert.pem\"\n{}", token("a", "viewer")));
    let d = single_error(&src, &files(), 5, 12, "`tls_cert` is set but `tls_key` is not");
    assert!(hint(&d).contains("tls_key = "));
    let src = api(&format!("listen = \"127.0.0.1:1\"\ntls_key = \"tls/key.pem\"\n{}", token("a", "viewer")));
    single_error(&src, &files(), 5, 11, "`tls_key` is set but `tls_cert` is not");
}

#[test]
fn unreadable_or_non_pem_tls_files() {
    let src = api(&format!(
        "listen = \"0.0.0.0:1\"\ntls_cert = \"missing.pem\"\ntls_key = \"ci.token\"\n{}",
        token("a", "viewer")
    ));
    let diags = errors_with(&src, &files());
    assert_eq!(diags.len(), 2, "{diags}");
    assert_eq!((diags.0[0].line, diags.0[0].col), (5, 12));
    assert!(diags.0[0].message.contains("cannot read `tls_cert` file"), "{diags}");
    assert!(diags.0[0].message.contains("missing.pem"), "{diags}");
    assert_eq!((diags.0[1].line, diags.0[1].col), (6, 11));
    assert!(diags.0[1].message.contains("holds no PEM PRIVATE KEY"), "{diags}");
}

#[test]
fn listen_must_be_an_address_and_a_port() {
    for bad in ["localhost:8443", "127.0.0.1", "8443", "::1:8443"] {
        let src = api(&format!("listen = \"{bad}\"\n{}", token("a", "viewer")));
        let d = single_error(&src, &files(), 4, 10, "`listen` must be an IP address and a port");
        assert!(hint(&d).contains("127.0.0.1:8443"));
    }
}

#[test]
fn api_without_listen() {
    let src = api(&token("a", "viewer"));
    let d = single_error(&src, &files(), 3, 1, "[api] has no `listen`");
    assert!(hint(&d).contains("remove [api]"));
}

#[test]
fn a_listener_needs_tokens() {
    let d = single_error(&api("listen = \"127.0.0.1:8443\"\n"), &files(), 4, 10, "has no tokens");
    assert!(hint(&d).contains("[[api.tokens]]") && hint(&d).contains("loopback too"), "{}", hint(&d));
    let d =
        single_error(&api("listen = \"127.0.0.1:8443\"\ntokens = []\n"), &files(), 5, 10, "has no tokens");
    assert!(hint(&d).contains("token_sha256"));
}

#[test]
fn tokens_must_be_tables() {
    let src = api("listen = \"127.0.0.1:1\"\ntokens = \"secret\"\n");
    let diags = errors_with(&src, &files());
    assert!(diags.0[0].message.contains("`tokens` must be an array of tables"), "{diags}");
    assert_eq!((diags.0[0].line, diags.0[0].col), (5, 10));
}

#[test]
fn bad_token_hash() {
    let src = api(
        "listen = \"127.0.0.1:1\"\n[[api.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken_sha256 = \"abc\"\n",
    );
    let d = single_error(
        &src,
        &files(),
        8,
        16,
        "`token_sha256` must be 64 hex digits (a SHA-256), found 3 characters",
    );
    assert!(hint(&d).contains("sha256sum"));
    let not_hex = format!("{}xy", &HASH[..62]);
    let src = api(&format!(
        "listen = \"127.0.0.1:1\"\n[[api.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken_sha256 = \"{not_hex}\"\n"
    ));
    single_error(&src, &files(), 8, 16, "found a character that is not a hex digit");
}

#[test]
fn unknown_role_suggests_the_closest() {
    let src = api(&format!("listen = \"127.0.0.1:1\"\n{}", token("a", "operater")));
    let d = single_error(&src, &files(), 7, 8, "`role` must be one of \"viewer\", \"operator\", \"admin\"");
    assert_eq!(hint(&d), "did you mean \"operator\"?");
}

#[test]
fn duplicate_token_names_and_tokens() {
    let src = api(&format!("listen = \"127.0.0.1:1\"\n{}{}", token("ci", "viewer"), token("ci", "admin")));
    let diags = errors_with(&src, &files());
    assert_eq!(diags.len(), 2, "{diags}");
    // The second entry's name, then its hash (the same token as the first).
    assert_eq!((diags.0[0].line, diags.0[0].col), (10, 8));
    assert!(diags.0[0].message.contains("two [[api.tokens]] are named `ci`"), "{diags}");
    assert_eq!((diags.0[1].line, diags.0[1].col), (12, 16));
    assert!(diags.0[1].message.contains("are the same token"), "{diags}");
}

#[test]
fn a_token_entry_needs_name_role_and_one_secret() {
    let src = api("listen = \"127.0.0.1:1\"\n[[api.tokens]]\nrole = \"viewer\"\n");
    let diags = errors_with(&src, &files());
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["a [[api.tokens]] entry has no `name`", "a [[api.tokens]] entry has no token"],
        "{diags}"
    );
    // At the entry's `[[api.tokens]]` header.
    assert!(diags.iter().all(|d| (d.line, d.col) == (5, 1)), "{diags}");
    let src = api(&format!(
        "listen = \"127.0.0.1:1\"\n{}[[api.tokens]]\nname = \"b\"\ntoken_sha256 = \"{}\"\n",
        token("a", "viewer"),
        "0".repeat(64)
    ));
    let d = single_error(&src, &files(), 9, 1, "a [[api.tokens]] entry has no `role`");
    assert!(hint(&d).contains("\"operator\""));

    let src = api(&format!("listen = \"127.0.0.1:1\"\n{}token_file = \"ci.token\"\n", token("a", "viewer")));
    let d = single_error(&src, &files(), 9, 14, "has both `token_sha256` and `token_file`");
    assert_eq!(hint(&d), "keep one of them");
}

#[test]
fn token_file_mistakes() {
    let src = api("listen = \"127.0.0.1:1\"\n[[api.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken_file = \"nope.token\"\n");
    let d = single_error(&src, &files(), 8, 14, "cannot read token_file");
    assert!(d.message.contains("nope.token"));
    let env = files().file(dir().join("short.token"), "hunter2\n");
    let src = api("listen = \"127.0.0.1:1\"\n[[api.tokens]]\nname = \"a\"\nrole = \"viewer\"\ntoken_file = \"short.token\"\n");
    let d = single_error(&src, &env, 8, 14, "is 7 characters long; at least 16 are needed");
    assert!(hint(&d).contains("openssl rand"));
}

#[test]
fn invalid_token_name() {
    let src = api(&format!("listen = \"127.0.0.1:1\"\n{}", token("my bot", "viewer")));
    single_error(&src, &files(), 6, 8, "invalid token name \"my bot\": ' ' is not allowed");
}

#[test]
fn unknown_keys_in_api_and_tokens() {
    let src = api(&format!("listen = \"127.0.0.1:1\"\ntls_crt = \"x\"\n{}", token("a", "viewer")));
    let d = single_error(&src, &files(), 5, 1, "unknown key `tls_crt` in [api]");
    assert_eq!(hint(&d), "did you mean `tls_cert`?");
    let src = api(&format!("listen = \"127.0.0.1:1\"\n{}rolle = \"x\"\n", token("a", "viewer")));
    let d = single_error(&src, &files(), 9, 1, "unknown key `rolle` in [api.tokens]");
    assert_eq!(hint(&d), "did you mean `role`?");
}
