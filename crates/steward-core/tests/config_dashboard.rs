//! `[dashboard]`: what a valid table resolves to, how it changes what `[api]` needs, and
//! every mistake at its line:col with a hint.

use crate::support::{errors_with, hint, parse_with, single_error, FakeEnv};
use std::net::SocketAddr;
use std::time::Duration;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
const PROGRAM: &str = "[programs.web]\ncommand = \"x\"\n";

fn token(name: &str, role: &str) -> String {
    format!("[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{HASH}\"\n")
}

/// One program (lines 1-2), `[dashboard]` on line 3 with `body` from line 4, then `rest`.
fn dashboard(body: &str, rest: &str) -> String {
    format!("{PROGRAM}[dashboard]\n{body}{rest}")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn no_dashboard_table_means_no_dashboard() {
    let config = parse_with(PROGRAM, &FakeEnv::new()).unwrap();
    assert!(config.dashboard.is_none());
}

#[test]
fn a_dashboard_with_tokens_only_needs_no_api_listener() {
    let src = dashboard("listen = \"127.0.0.1:8080\"\n", &token("ops", "operator"));
    let config = parse_with(&src, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}"));
    let d = config.dashboard.expect("[dashboard] is set");
    assert_eq!(d.listen, Some(addr("127.0.0.1:8080")));
    assert_eq!(d.session_timeout, Duration::from_secs(12 * 3600), "the default");
    let api = config.api.expect("[api] holds the tokens");
    assert_eq!(api.listen, None, "no remote API");
    assert_eq!(api.tokens.len(), 1);
    assert_eq!(api.tokens[0].name, "ops");
}

#[test]
fn session_timeout_and_ipv6_loopback() {
    let src = dashboard("listen = \"[::1]:0\"\nsession_timeout = \"30m\"\n", &token("a", "viewer"));
    let d = parse_with(&src, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}")).dashboard.unwrap();
    assert_eq!(d.listen, Some(addr("[::1]:0")));
    assert_eq!(d.session_timeout, Duration::from_secs(1800));
}

#[test]
fn without_a_listen_of_its_own_it_is_served_on_the_remote_api() {
    let src = dashboard(
        "session_timeout = \"1h\"\n",
        &format!("[api]\nlisten = \"127.0.0.1:8443\"\n{}", token("a", "viewer")),
    );
    let config = parse_with(&src, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.dashboard.unwrap().listen, None);
    assert_eq!(config.api.unwrap().listen, Some(addr("127.0.0.1:8443")));
}

#[test]
fn off_loopback_is_refused_and_points_at_the_tls_listener() {
    for bad in ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080"] {
        let src = dashboard(&format!("listen = \"{bad}\"\n"), &token("a", "viewer"));
        let d = single_error(&src, &FakeEnv::new(), 4, 10, "would be plain HTTP off this machine");
        assert!(hint(&d).contains("127.0.0.1:8080"), "{}", hint(&d));
        assert!(hint(&d).contains("https://HOST:PORT/ui/") && hint(&d).contains("tls_cert"), "{}", hint(&d));
    }
}

#[test]
fn a_dashboard_needs_tokens() {
    let src = dashboard("listen = \"127.0.0.1:8080\"\n", "");
    let d = single_error(&src, &FakeEnv::new(), 3, 1, "the dashboard has no tokens to sign in with");
    assert!(hint(&d).contains("[[api.tokens]]") && hint(&d).contains("token_sha256"), "{}", hint(&d));
    // `[api]` without tokens: said once, by `[api]`.
    let src = dashboard("listen = \"127.0.0.1:8080\"\n", "[api]\ntokens = []\n");
    let d = single_error(&src, &FakeEnv::new(), 6, 10, "has no tokens");
    assert!(hint(&d).contains("[[api.tokens]]"), "{}", hint(&d));
}

#[test]
fn a_dashboard_needs_somewhere_to_listen() {
    let src = dashboard("session_timeout = \"1h\"\n", &token("a", "viewer"));
    let d = single_error(&src, &FakeEnv::new(), 3, 1, "the dashboard has nowhere to listen");
    assert!(hint(&d).contains("listen = \"127.0.0.1:8080\"") && hint(&d).contains("/ui/"), "{}", hint(&d));
}

#[test]
fn session_timeout_must_be_a_positive_duration() {
    let src = dashboard("listen = \"127.0.0.1:8080\"\nsession_timeout = \"0s\"\n", &token("a", "viewer"));
    let d = single_error(&src, &FakeEnv::new(), 5, 19, "`session_timeout` must be longer than 0");
    assert!(hint(&d).contains("12h"), "{}", hint(&d));
    let src = dashboard("listen = \"127.0.0.1:8080\"\nsession_timeout = \"soon\"\n", &token("a", "viewer"));
    single_error(&src, &FakeEnv::new(), 5, 19, "`session_timeout` is not a valid duration");
}

#[test]
fn listen_must_be_an_address_and_unknown_keys_are_named() {
    let src = dashboard("listen = \"localhost:8080\"\n", &token("a", "viewer"));
    single_error(&src, &FakeEnv::new(), 4, 10, "`listen` must be an IP address and a port");
    let src = dashboard("listen = \"127.0.0.1:8080\"\nsession_timout = \"1h\"\n", &token("a", "viewer"));
    let diags = errors_with(&src, &FakeEnv::new());
    assert_eq!(diags.len(), 1, "{diags}");
    assert!(hint(&diags.0[0]).contains("session_timeout"), "{diags}");
}

#[test]
fn api_without_listen_is_still_an_error_without_a_dashboard() {
    let src = format!("{PROGRAM}[api]\n{}", token("a", "viewer"));
    let d = single_error(&src, &FakeEnv::new(), 3, 1, "[api] has no `listen`");
    assert!(hint(&d).contains("remove [api]"));
}
