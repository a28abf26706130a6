//! End to end: the web dashboard of a real daemon over real HTTP: the page and its headers,
//! sign-in (good, bad, throttled), the session cookie, CSRF, roles, the audit log, a reload
//! that removes a token, the session timeout, the live event stream, and what is (not) bound.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Digest as _;
use steward::api::audit::Entry;

const VIEWER: &str = "viewer-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const CSRF_REFUSED: &str = "missing or wrong CSRF token; reload the page";

fn sha256_hex(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn token_entry(name: &str, role: &str, token: &str) -> String {
    format!(
        "[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n",
        sha256_hex(token)
    )
}

/// A program that runs until stopped, `[dashboard]` with `dashboard_keys`, and the tokens.
fn config(dashboard_keys: &str, tokens: &str) -> String {
    format!(
        "[programs.web]\ncommand = {}\n\n[dashboard]\nlisten = \"127.0.0.1:0\"\n{dashboard_keys}\n{tokens}",
        child_cmd(&["--trap-term", "--sleep", "1h"]),
    )
}

fn both_tokens() -> String {
    format!("{}\n{}", token_entry("watcher", "viewer", VIEWER), token_entry("deployer", "operator", OPERATOR))
}

/// HOST:PORT of the dashboard's own listener, from its log line.
fn dashboard_addr(s: &Steward) -> String {
    let e = s.wait_for_event("the dashboard's address", |e| e.is_daemon("dashboard") && url_in(e).is_some());
    let url = url_in(&e).unwrap();
    url.strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/ui/"))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
}

/// A request to the dashboard at `addr`, with extra headers; the reply's head only.
async fn open(
    addr: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> hyper::Response<Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to the dashboard");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", addr);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    sender.send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.expect("a reply")
}

async fn call(addr: &str, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let resp = open(addr, method, path, headers, body).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("the body").to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// A signed-in session: its cookie header value and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![("cookie", self.cookie.as_str()), ("x-steward-csrf", self.csrf.as_str())]
    }
}

async fn sign_in(addr: &str, token: &str) -> (Session, Reply) {
    let r = call(addr, Method::POST, "/ui/session", &[], &serde_json::json!({ "token": token }).to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let set = r.header("set-cookie").to_owned();
    let cookie = set.split(';').next().unwrap().trim().to_owned();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    (Session { cookie, csrf }, r)
}

async fn state_of(addr: &str, session: &Session, name: &str) -> String {
    let r = call(addr, Method::GET, "/ui/api/v1/status", &[("cookie", &session.cookie)], "").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let programs = r.json()["programs"].as_array().unwrap().clone();
    programs
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn wait_state(addr: &str, session: &Session, name: &str, state: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if state_of(addr, session, name).await == state {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not become {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn audit(s: &Steward) -> Vec<Entry> {
    let text = std::fs::read_to_string(s.path(".steward/audit.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line ({e}): {l}")))
        .collect()
}

#[test]
fn the_page_and_its_headers() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    rt().block_on(async {
        for (path, to) in [("/", "/ui/"), ("/ui", "/ui/")] {
            let r = call(&addr, Method::GET, path, &[], "").await;
            assert!(r.status.is_redirection(), "{path}: {r:?}");
            assert_eq!(r.header("location"), to);
        }
        for (path, kind, needle) in [
            ("/ui/", "text/html", "id=\"signin\""),
            ("/ui/app.js", "text/javascript", "EventSource"),
            ("/ui/app.css", "text/css", "prefers-color-scheme"),
            ("/ui/icon.svg", "image/svg+xml", "<svg"),
        ] {
            let r = call(&addr, Method::GET, path, &[], "").await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {r:?}");
            assert!(r.header("content-type").starts_with(kind), "{path}: {r:?}");
            assert!(r.body.contains(needle), "{path}");
            assert_eq!(r.header("content-security-policy"), CSP, "{path}");
            assert_eq!(r.header("x-content-type-options"), "nosniff");
            assert_eq!(r.header("referrer-policy"), "no-referrer");
            assert_eq!(r.header("cache-control"), "no-cache");
            let etag = r.header("etag").to_owned();
            assert!(etag.starts_with('"'), "{path}: {etag}");
            let again = call(&addr, Method::GET, path, &[("if-none-match", &etag)], "").await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
            assert!(again.body.is_empty());
        }
        // Not a file of the page; the API needs a session; JSON errors carry the CSP too.
        let r = call(&addr, Method::GET, "/ui/nothing.js", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.header("content-security-policy"), CSP);
        for path in ["/ui/api/v1/status", "/ui/api/stream", "/ui/session"] {
            let r = call(&addr, Method::GET, path, &[], "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
            assert!(r.json()["error"].as_str().unwrap().contains("sign in"), "{r:?}");
        }
        let r = call(&addr, Method::GET, "/v1/status", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "the API is not served here but under /ui/api/");
    });
}

#[test]
fn sign_in_csrf_roles_and_the_audit_log() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    s.wait_started("web");
    rt().block_on(async {
        let r =
            call(&addr, Method::POST, "/ui/session", &[], r#"{"token":"not-a-token-of-this-steward"}"#).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        assert!(r.json()["error"].as_str().unwrap().contains("[[api.tokens]]"));
        assert!(r.header("set-cookie").is_empty());
        let r = call(&addr, Method::POST, "/ui/session", &[], "not json").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");

        let (ops, r) = sign_in(&addr, OPERATOR).await;
        assert_eq!(r.json()["name"], "deployer");
        assert_eq!(r.json()["role"], "operator");
        let set = r.header("set-cookie");
        let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
        for a in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
            assert!(attrs.contains(&a), "{a} in {set}");
        }
        let id = ops.cookie.strip_prefix("steward_session=").unwrap();
        assert_eq!(id.len(), 43, "256 bits in base64url: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
        assert!(!set.contains(OPERATOR) && !r.body.contains(OPERATOR), "the token is never echoed");

        let me = call(&addr, Method::GET, "/ui/session", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(
            (me.json()["name"].as_str(), me.json()["csrf"].as_str()),
            (Some("deployer"), Some(ops.csrf.as_str()))
        );
        assert_eq!(state_of(&addr, &ops, "web").await, "running");

        // Actions without the CSRF token, with a wrong one, or from another origin: 403, and
        // nothing happens.
        let stop = r#"{"names":["web"]}"#;
        let wrong = "x".repeat(ops.csrf.len());
        let origin = format!("http://{addr}");
        for headers in [
            vec![("cookie", ops.cookie.as_str())],
            vec![("cookie", ops.cookie.as_str()), ("x-steward-csrf", wrong.as_str())],
            vec![
                ("cookie", ops.cookie.as_str()),
                ("x-steward-csrf", ops.csrf.as_str()),
                ("origin", "http://evil.example"),
            ],
        ] {
            let r = call(&addr, Method::POST, "/ui/api/v1/stop", &headers, stop).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}: {r:?}");
            assert_eq!(r.json()["error"], CSRF_REFUSED);
        }
        let r = call(
            &addr,
            Method::POST,
            "/ui/session",
            &[("origin", "http://evil.example")],
            &format!(r#"{{"token":"{OPERATOR}"}}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a sign-in from another origin: {r:?}");
        assert_eq!(state_of(&addr, &ops, "web").await, "running", "no refused request stopped it");

        // With it (and this origin): done.
        let mut headers = ops.headers();
        headers.push(("origin", &origin));
        let r = call(&addr, Method::POST, "/ui/api/v1/stop", &headers, stop).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.json()["results"][0]["state"], "stopped", "{r:?}");

        // A viewer reads but may not act.
        let (viewer, _) = sign_in(&addr, VIEWER).await;
        let r = call(&addr, Method::POST, "/ui/api/v1/start", &viewer.headers(), stop).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
        assert!(r.json()["error"].as_str().unwrap().contains("operator role"), "{r:?}");
        assert_eq!(state_of(&addr, &viewer, "web").await, "stopped");
        let r = call(&addr, Method::POST, "/ui/api/v1/reload", &viewer.headers(), "{}").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");

        // Signing out ends the session, for every request.
        let r = call(&addr, Method::DELETE, "/ui/session", &[("cookie", &viewer.cookie)], "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "sign-out needs the CSRF token too: {r:?}");
        let r = call(&addr, Method::DELETE, "/ui/session", &viewer.headers(), "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
        assert!(r.header("set-cookie").contains("Max-Age=0"), "{r:?}");
        for path in ["/ui/session", "/ui/api/v1/status"] {
            let r = call(&addr, Method::GET, path, &[("cookie", &viewer.cookie)], "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        }
    });

    let lines = audit(&s);
    let find = |who: &str, action: &str, result: &str| {
        lines.iter().filter(|e| e.who == who && e.action == action && e.result == result).count()
    };
    assert!(lines.iter().all(|e| e.transport == "dashboard"), "{lines:#?}");
    assert_eq!(find("deployer", "stop", "ok"), 1, "{lines:#?}");
    assert_eq!(find("deployer", "stop", "denied"), 3, "the CSRF refusals: {lines:#?}");
    assert_eq!(find("watcher", "start", "denied"), 1, "{lines:#?}");
    assert_eq!(find("deployer", "sign-in", "ok"), 1, "{lines:#?}");
    assert_eq!(find("unauthenticated", "sign-in", "denied"), 1, "{lines:#?}");
    let stopped = lines.iter().find(|e| e.action == "stop" && e.result == "ok").unwrap();
    assert_eq!(stopped.targets, ["web"]);
    assert!(stopped.peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:")), "{stopped:?}");
    let text = std::fs::read_to_string(s.path(".steward/audit.log")).unwrap();
    assert!(!text.contains(OPERATOR) && !text.contains(VIEWER), "no token in the audit log");
}

#[test]
fn failed_sign_ins_are_throttled() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    rt().block_on(async {
        let mut throttled = None;
        for _ in 0..40 {
            let r =
                call(&addr, Method::POST, "/ui/session", &[], r#"{"token":"guess-0123456789abcdef"}"#).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                throttled = Some(r);
                break;
            }
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        }
        let r = throttled.expect("a 429 after a burst of wrong tokens");
        assert!(r.header("retry-after").parse::<u64>().is_ok_and(|n| n >= 1), "{r:?}");
        assert!(r.json()["error"].as_str().unwrap().contains("too many failed"), "{r:?}");
        // The right token too, while throttled: guessing must not go on at full speed.
        let r = call(&addr, Method::POST, "/ui/session", &[], &format!(r#"{{"token":"{OPERATOR}"}}"#)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    });
}

/// Reads an SSE body until `until` holds for what was read, or the deadline; returns the text.
async fn read_sse(body: &mut Incoming, text: &mut String, until: impl Fn(&str) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !until(text) {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(data));
                }
            }
            Ok(_) => return false, // the stream ended
            Err(_) => panic!("the stream did not deliver in time; so far:\n{text}"),
        }
    }
    true
}

/// The `data:` of each SSE item named `name`, as JSON.
fn items(text: &str, name: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l == format!("event: {name}")))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad data ({e}): {d}")))
        .collect()
}

#[test]
fn the_stream_delivers_status_events_and_usage() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    s.wait_started("web");
    rt().block_on(async {
        let (ops, _) = sign_in(&addr, OPERATOR).await;
        wait_state(&addr, &ops, "web", "running").await;
        let resp = open(&addr, Method::GET, "/ui/api/stream", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        assert_eq!(resp.headers()["content-security-policy"], CSP);
        let mut body = resp.into_body();
        let mut text = String::new();
        read_sse(&mut body, &mut text, |t| t.contains("event: history")).await;
        let hello = &items(&text, "hello")[0];
        assert_eq!((hello["name"].as_str(), hello["role"].as_str()), (Some("deployer"), Some("operator")));
        assert!(hello["version"].is_string());
        let status = &items(&text, "status")[0];
        assert_eq!(status["programs"][0]["name"], "web");
        assert_eq!(status["programs"][0]["state"], "running");
        assert!(
            items(&text, "event").iter().any(|e| e["program"] == "web" && e["to"] == "running"),
            "{text}"
        );
        assert!(items(&text, "history")[0]["step_secs"].is_u64(), "{text}");

        // A usage sample comes on the sampler's tick.
        read_sse(&mut body, &mut text, |t| t.contains("event: usage")).await;
        let usage = &items(&text, "usage")[0];
        assert!(usage["programs"].as_array().unwrap().iter().any(|p| p["name"] == "web"), "{usage}");

        // The log of a program, through the API's route with a path parameter.
        let r = call(&addr, Method::GET, "/ui/api/v1/logs/web?lines=5", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");

        // A state change: its events, then a status that shows it.
        let r = call(&addr, Method::POST, "/ui/api/v1/stop", &ops.headers(), r#"{"names":["web"]}"#).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        let stopped = |t: &str| {
            items(t, "status").iter().any(|s| s["programs"][0]["state"] == "stopped")
                && items(t, "event").iter().any(|e| e["program"] == "web" && e["to"] == "stopped")
        };
        assert!(read_sse(&mut body, &mut text, stopped).await, "{text}");
    });
}

#[test]
fn a_reload_that_removes_the_token_ends_its_sessions_and_streams() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    rt().block_on(async {
        let (ops, _) = sign_in(&addr, OPERATOR).await;
        let (viewer, _) = sign_in(&addr, VIEWER).await;
        let resp = open(&addr, Method::GET, "/ui/api/stream", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let mut text = String::new();
        read_sse(&mut body, &mut text, |t| t.contains("event: status")).await;

        // The operator's token is gone from the file; a reload reads it.
        std::fs::write(s.config_path(), config("", &token_entry("watcher", "viewer", VIEWER))).unwrap();
        let out = s.cli(["reload"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let ended = read_sse(&mut body, &mut text, |_| false).await;
        assert!(!ended, "the stream ends");
        for path in ["/ui/session", "/ui/api/v1/status"] {
            let r = call(&addr, Method::GET, path, &[("cookie", &ops.cookie)], "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
        }
        let r = call(&addr, Method::POST, "/ui/session", &[], &format!(r#"{{"token":"{OPERATOR}"}}"#)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the removed token signs in no more");
        let r = call(&addr, Method::GET, "/ui/session", &[("cookie", &viewer.cookie)], "").await;
        assert_eq!(r.status, StatusCode::OK, "a token still configured keeps its session");
    });
}

/// SIGHUP reloads as `steward reload` does: a token gone from the file signs in no more.
#[cfg(unix)]
#[test]
fn a_sighup_reload_reads_the_tokens_again() {
    let s = start(&config("", &both_tokens()));
    let addr = dashboard_addr(&s);
    let rt = rt();
    let (ops, _) = rt.block_on(sign_in(&addr, OPERATOR));
    std::fs::write(s.config_path(), config("", &token_entry("watcher", "viewer", VIEWER))).unwrap();
    // SAFETY: a signal to the steward this test started.
    unsafe { libc::kill(s.daemon().pid() as libc::pid_t, libc::SIGHUP) };
    testkit::wait_until(DEADLINE, "the operator's session to end after SIGHUP", || {
        let r = rt.block_on(call(&addr, Method::GET, "/ui/session", &[("cookie", &ops.cookie)], ""));
        (r.status == StatusCode::UNAUTHORIZED).then_some(())
    });
    let body = format!(r#"{{"token":"{OPERATOR}"}}"#);
    let r = rt.block_on(call(&addr, Method::POST, "/ui/session", &[], &body));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the removed token signs in no more");
}

#[test]
fn an_unused_session_times_out() {
    let s = start(&config("session_timeout = \"1s\"", &both_tokens()));
    let addr = dashboard_addr(&s);
    rt().block_on(async {
        let signed_in = Instant::now();
        let (ops, _) = sign_in(&addr, OPERATOR).await;
        // Looked at only once the timeout has passed (every use would keep it alive).
        let deadline = signed_in + DEADLINE;
        while signed_in.elapsed() < Duration::from_millis(1200) {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = call(&addr, Method::GET, "/ui/session", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        let (again, _) = sign_in(&addr, OPERATOR).await;
        let r = call(&addr, Method::GET, "/ui/session", &[("cookie", &again.cookie)], "").await;
        assert_eq!(r.status, StatusCode::OK, "a new sign-in works: {r:?}");
    });
}

#[test]
fn the_remote_api_serves_the_dashboard_under_ui() {
    let cfg = format!(
        "[programs.web]\ncommand = {}\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n{}",
        child_cmd(&["--trap-term", "--sleep", "1h"]),
        both_tokens()
    );
    let s = start(&cfg);
    let e = s.wait_for_event("the remote API's address", |e| e.is_daemon("api") && url_in(e).is_some());
    let addr = url_in(&e).unwrap().strip_prefix("http://").unwrap().to_owned();
    rt().block_on(async {
        let r = call(&addr, Method::GET, "/ui/", &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(r.header("content-security-policy"), CSP);
        let (ops, _) = sign_in(&addr, OPERATOR).await;
        assert!(!state_of(&addr, &ops, "web").await.is_empty(), "the status through /ui/api/");
        // The API itself still wants a bearer token, not the cookie.
        let r = call(&addr, Method::GET, "/v1/status", &[("cookie", &ops.cookie)], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        let r = call(&addr, Method::GET, "/v1/status", &[("authorization", &format!("Bearer {VIEWER}"))], "")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    });
    assert!(s.events().iter().all(|e| !e.is_daemon("dashboard")), "no listener of its own");
}

#[test]
fn without_a_dashboard_or_remote_api_nothing_is_bound() {
    let s = start(&format!("[programs.web]\ncommand = {}\n", child_cmd(&["--trap-term", "--sleep", "1h"])));
    s.wait_started("web");
    s.wait_api();
    let events = s.events();
    assert!(events.iter().all(|e| !e.is_daemon("dashboard")), "{events:?}");
    assert!(events.iter().all(|e| !(e.is_daemon("api") && url_in(e).is_some())), "{events:?}");
    #[cfg(target_os = "linux")]
    {
        // steward's own TCP sockets: none listening.
        let pid = s.daemon().pid();
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
            .collect();
        for table in ["tcp", "tcp6"] {
            let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                // st 0A is LISTEN; column 9 is the inode.
                assert!(
                    !(cols.get(3) == Some(&"0A") && inodes.iter().any(|i| cols.get(9) == Some(&i.as_str()))),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn off_loopback_is_a_config_error() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.toml");
    std::fs::write(
        &path,
        format!(
            "[programs.web]\ncommand = \"x\"\n\n[dashboard]\nlisten = \"0.0.0.0:8080\"\n\n{}",
            both_tokens()
        ),
    )
    .unwrap();
    let out = Command::new(STEWARD).args(["-c", &path.to_string_lossy(), "check"]).output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("plain HTTP off this machine") && text.contains("/ui/"), "{text}");
    assert!(text.contains(":5:"), "located at the line: {text}");
}
