//! End to end: the remote API of a real daemon, over real TLS with a certificate made for
//! the test, with real tokens; the CLI with `--remote`; the audit log; what a slow or
//! guessing client gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use sha2::Digest as _;
use steward::api::audit::Entry;
use steward::api::connections::HEADER_TIMEOUT;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub(crate) const VIEWER: &str = "viewer-token-0123456789abcdef";
pub(crate) const OPERATOR: &str = "operator-token-0123456789abcdef";
pub(crate) const ADMIN: &str = "admin-token-0123456789abcdef";

fn sha256_hex(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Files the daemon needs before it starts (a certificate, a key, token files), in their own
/// temp dir: the daemon's dir is made by [`Steward::start`].
pub(crate) struct Secrets {
    dir: testkit::tempfile::TempDir,
}

impl Secrets {
    pub(crate) fn new() -> Secrets {
        let dir = testkit::tempfile::tempdir().expect("temp dir");
        // A self-signed certificate for the names the tests connect to.
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("generate a test certificate");
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        for (name, token) in [
            ("viewer", VIEWER),
            ("operator", OPERATOR),
            ("admin", ADMIN),
            ("wrong", "not-a-token-of-this-steward"),
        ] {
            // With a newline, as `echo TOKEN > file` writes it.
            std::fs::write(dir.path().join(format!("{name}.token")), format!("{token}\n")).unwrap();
        }
        Secrets { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.path("cert.pem")
    }

    pub(crate) fn token(&self, role: &str) -> String {
        self.path(&format!("{role}.token")).to_string_lossy().into_owned()
    }
}

/// `[api]` with the three roles; `tls` adds the test certificate. The admin's token is given
/// as a file, the others as hashes.
pub(crate) fn config(secrets: &Secrets, tls: bool) -> String {
    let tls_keys = if tls {
        format!(
            "tls_cert = {}\ntls_key = {}\n",
            q(secrets.cert().to_string_lossy()),
            q(secrets.path("key.pem").to_string_lossy())
        )
    } else {
        String::new()
    };
    format!(
        r#"
[programs.web]
command = {sleep}

[api]
listen = "127.0.0.1:0"
{tls_keys}
[[api.tokens]]
name = "dashboard"
role = "viewer"
token_sha256 = "{viewer}"

[[api.tokens]]
name = "deployer"
role = "operator"
token_sha256 = "{operator}"

[[api.tokens]]
name = "root"
role = "admin"
token_file = {admin_file}
"#,
        sleep = child_cmd(&["--trap-term", "--sleep", "1h"]),
        viewer = sha256_hex(VIEWER),
        operator = sha256_hex(OPERATOR),
        admin_file = q(secrets.token("admin")),
    )
}

/// The URL the daemon logged for its remote API (it listens on port 0).
pub(crate) fn remote_url(s: &Steward) -> String {
    let listening =
        s.wait_for_event("the remote API's address", |e| e.is_daemon("api") && url_in(e).is_some());
    url_in(&listening).unwrap()
}

pub(crate) fn host_port(url: &str) -> String {
    url.split("://").nth(1).unwrap().to_owned()
}

/// What a request got back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A TLS client trusting `ca` alone.
pub(crate) fn tls_client(ca: &Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// One request to `addr` (HOST:PORT), over TLS when `tls` is given. Err: the connection or
/// the TLS handshake failed.
pub(crate) fn call(
    addr: &str,
    tls: Option<&rustls::ClientConfig>,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<Reply, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let mut req = Request::builder().method(method).uri(path).header("host", addr);
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let resp = match tls {
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config.clone()));
                let name = ServerName::try_from("127.0.0.1").unwrap();
                let stream = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
                send(stream, req).await?
            }
            None => send(tcp, req).await?,
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    })
}

async fn send<S>(
    stream: S,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"))
}

/// `steward ARGS...` as its own process, without a token file from the environment.
pub(crate) fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(STEWARD)
        .args(args)
        .current_dir(dir)
        .env_remove("STEWARD_TOKEN_FILE")
        .output()
        .expect("run the steward CLI")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

pub(crate) fn audit(s: &Steward) -> Vec<Entry> {
    let text = std::fs::read_to_string(s.path(".steward/audit.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line ({e}): {l}")))
        .collect()
}

fn wait_state(addr: &str, tls: &rustls::ClientConfig, name: &str, state: &str) {
    wait_until(DEADLINE, &format!("{name} to be {state}"), || {
        let r = call(addr, Some(tls), Method::GET, "/v1/status", Some(VIEWER), "").ok()?;
        let programs = r.json()["programs"].as_array()?.clone();
        programs.iter().any(|p| p["name"] == name && p["state"] == state).then_some(())
    });
}

#[test]
fn tls_tokens_roles_and_the_audit_log() {
    let secrets = Secrets::new();
    let s = start(&config(&secrets, true));
    let url = remote_url(&s);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let addr = host_port(&url);
    let tls = tls_client(&secrets.cert());
    wait_state(&addr, &tls, "web", "running");

    // No token, or one that is not configured: 401 with a Bearer challenge and a JSON error.
    for token in [None, Some("not-a-token-of-this-steward")] {
        let r = call(&addr, Some(&tls), Method::GET, "/v1/status", token, "").unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        let challenge = r.headers.get(WWW_AUTHENTICATE).expect("WWW-Authenticate").to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(r.json()["error"].as_str().unwrap().contains("token"), "{r:?}");
    }
    let r = call(&addr, Some(&tls), Method::POST, "/v1/stop", None, r#"{"names":["web"]}"#).unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A viewer reads, but may not stop: 403, saying which role it takes.
    let r = call(&addr, Some(&tls), Method::GET, "/v1/status", Some(VIEWER), "").unwrap();
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = call(&addr, Some(&tls), Method::POST, "/v1/stop", Some(VIEWER), r#"{"names":["web"]}"#).unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let error = r.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("needs the operator role") && error.contains("`dashboard`"), "{error}");
    wait_state(&addr, &tls, "web", "running");

    // An operator stops, but may not shut steward down.
    let r =
        call(&addr, Some(&tls), Method::POST, "/v1/stop", Some(OPERATOR), r#"{"names":["web"]}"#).unwrap();
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["results"][0]["state"], "stopped", "{r:?}");
    let r = call(&addr, Some(&tls), Method::POST, "/v1/shutdown", Some(OPERATOR), "{}").unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains("needs the admin role"), "{r:?}");

    // The CLI, trusting the test certificate.
    let dir = s.dir();
    let remote = |role: &str, args: &[&str]| {
        let token = secrets.token(role);
        let cert = secrets.cert().to_string_lossy().into_owned();
        let mut all =
            vec!["--remote", url.as_str(), "--token-file", token.as_str(), "--ca-file", cert.as_str()];
        all.extend_from_slice(args);
        cli(dir, &all)
    };
    let table = ok(&remote("viewer", &["status"]));
    assert!(table.lines().any(|l| l.starts_with("web") && l.contains("stopped")), "{table}");
    let out = remote("viewer", &["start", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTTP 403") && stderr(&out).contains("needs the operator role"),
        "{}",
        stderr(&out)
    );
    let out = remote("wrong", &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not accept the token") && stderr(&out).contains("HTTP 401"),
        "{}",
        stderr(&out)
    );
    let started = ok(&remote("operator", &["start", "web"]));
    assert!(started.contains("web: running"), "{started}");

    // A client that does not trust the certificate gets no TLS session.
    let untrusting =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
            .with_no_client_auth();
    let e = call(&addr, Some(&untrusting), Method::GET, "/v1/status", Some(VIEWER), "").unwrap_err();
    assert!(e.starts_with("TLS:") && e.contains("UnknownIssuer"), "{e}");
    let token = secrets.token("viewer");
    let out = cli(dir, &["--remote", &url, "--token-file", &token, "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no TLS session") && stderr(&out).contains("--ca-file"),
        "{}",
        stderr(&out)
    );
    // Nor does plain HTTP on the TLS port.
    assert!(call(&addr, None, Method::GET, "/v1/status", Some(VIEWER), "").is_err());

    // The admin shuts steward down, over the CLI (it reads its reply until steward is gone).
    let out = ok(&remote("admin", &["shutdown"]));
    assert!(out.contains("steward stopped"), "{out}");
    let status = s.daemon().wait_exit(DEADLINE);
    assert!(status.success(), "steward exited with {status}\n{}", s.daemon().dump());

    // Every control action, allowed or not, with who and how it ended; reads are not there.
    let lines = audit(&s);
    let summary: Vec<(&str, &str, &str, &str, u16)> = lines
        .iter()
        .map(|e| (e.who.as_str(), e.transport.as_str(), e.action.as_str(), e.result.as_str(), e.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("unauthenticated", "https", "stop", "denied", 401),
            ("dashboard", "https", "stop", "denied", 403),
            ("deployer", "https", "stop", "ok", 200),
            ("deployer", "https", "shutdown", "denied", 403),
            ("dashboard", "https", "start", "denied", 403),
            ("deployer", "https", "start", "ok", 200),
            ("root", "https", "shutdown", "ok", 200),
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[2].targets, ["web"]);
    assert!(lines[2].peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:")), "{:?}", lines[2]);
    assert!(lines[1].error.as_deref().is_some_and(|e| e.contains("operator")), "{:?}", lines[1]);
    let text = std::fs::read_to_string(s.path(".steward/audit.log")).unwrap();
    for secret in [VIEWER, OPERATOR, ADMIN] {
        assert!(!text.contains(secret), "a token in the audit log");
    }
    assert!(!s.log().contains(VIEWER) && !s.log().contains(OPERATOR), "a token in steward's log");
}

#[test]
fn plain_http_on_loopback_and_the_local_socket_is_audited_too() {
    let secrets = Secrets::new();
    let s = start(&config(&secrets, false));
    let url = remote_url(&s);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr = host_port(&url);
    s.wait_for("web", "started");

    let r = call(&addr, None, Method::GET, "/v1/status", None, "").unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The admin's token comes from a token_file; the file's newline is not part of it.
    let r = call(&addr, None, Method::GET, "/v1/version", Some(ADMIN), "").unwrap();
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    let dir = s.dir();
    let token = secrets.token("operator");
    let out = ok(&cli(dir, &["--remote", &url, "--token-file", &token, "status", "--json"]));
    assert!(out.contains("\"web\""), "{out}");
    let out = ok(&cli(dir, &["--remote", &url, "--token-file", &token, "restart", "web"]));
    assert!(out.contains("web: running"), "{out}");
    // --ca-file means https.
    let cert = secrets.cert().to_string_lossy().into_owned();
    let out = cli(dir, &["--remote", &url, "--token-file", &token, "--ca-file", &cert, "status"]);
    assert!(stderr(&out).contains("--ca-file is for https://"), "{}", stderr(&out));
    // Without a token file, --remote says what it needs.
    let out = cli(dir, &["--remote", &url, "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--token-file"), "{}", stderr(&out));

    // The local socket needs no token, and its actions are recorded as `local`.
    let config = s.path("steward.toml").to_string_lossy().into_owned();
    ok(&cli(dir, &["-c", &config, "stop", "web"]));
    let lines = audit(&s);
    let summary: Vec<(&str, &str, &str, &str)> = lines
        .iter()
        .map(|e| (e.who.as_str(), e.transport.as_str(), e.action.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("deployer", "http", "restart", "ok"), ("local", "local", "stop", "ok")],
        "{lines:#?}"
    );
    assert_eq!(lines[1].peer, None);
    s.shutdown();
}

#[test]
fn a_taken_port_stops_steward_with_the_address_in_the_error() {
    let secrets = Secrets::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config(&secrets, false).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let s = start(&cfg);
    let status = s.daemon().wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(1), "{}", s.daemon().dump());
    let log = s.log();
    assert!(log.contains(&format!("cannot listen on 127.0.0.1:{port} for the remote API")), "{log}");
    // Nothing was started.
    assert_eq!(s.events_of("web", "started").len(), 0, "{log}");
}

/// The value of the sample `series` (name and labels exactly as exposed), 0 if absent.
fn sample(text: &str, series: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

#[test]
fn wrong_tokens_are_throttled_counted_and_summed_up_in_the_audit_log() {
    let secrets = Secrets::new();
    let cfg = format!("{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n", config(&secrets, false));
    let s = start(&cfg);
    let addr = host_port(&remote_url(&s));
    let metrics = s.wait_for_event("the metrics listener", |e| e.is_daemon("metrics") && url_in(e).is_some());
    let metrics = host_port(url_in(&metrics).unwrap().trim_end_matches("/metrics"));
    s.wait_for("web", "started");

    // 500 guesses as fast as one kept-alive connection goes, each a control action (with no
    // body: a refused request's body is never read).
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let replies: Vec<(StatusCode, Option<u64>)> = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let mut replies = Vec::new();
        for i in 0..500 {
            let req = Request::post("/v1/stop")
                .header("host", &addr)
                .header(AUTHORIZATION, format!("Bearer guess-{i}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = sender.send_request(req).await.expect("steward answers every guess");
            let retry = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
            let status = resp.status();
            resp.into_body().collect().await.unwrap();
            replies.push((status, retry));
        }
        replies
    });
    let elapsed = started.elapsed();
    let unauthorized = replies.iter().filter(|r| r.0 == StatusCode::UNAUTHORIZED).count();
    let throttled = replies.iter().filter(|r| r.0 == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(unauthorized + throttled, 500, "{replies:?}");
    // A burst of 10, then one a second.
    let most = 10 + elapsed.as_secs() as usize + 1;
    assert!((10..=most).contains(&unauthorized), "{unauthorized} guesses checked in {elapsed:?}");
    assert!(
        replies.iter().filter(|r| r.0 == StatusCode::TOO_MANY_REQUESTS).all(|r| r.1.is_some_and(|s| s >= 1)),
        "every 429 says when to come back: {replies:?}"
    );

    // The peer is let through again (after Retry-After), with a right token.
    let mut polled = 0;
    wait_until(DEADLINE, "the guessing peer to be let through again", || {
        let r = call(&addr, None, Method::GET, "/v1/status", Some(VIEWER), "").ok()?;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            polled += 1;
            return None;
        }
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        Some(())
    });

    // Every refusal is counted, by its code.
    let r = call(&metrics, None, Method::GET, "/metrics", None, "").unwrap();
    assert_eq!(
        sample(&r.body, "steward_api_requests_total{code=\"401\"}"),
        unauthorized as u64,
        "{}",
        r.body
    );
    assert_eq!(
        sample(&r.body, "steward_api_requests_total{code=\"429\"}"),
        (throttled + polled) as u64,
        "{}",
        r.body
    );

    // The audit log has a line per guess that was checked, and for the ones that were not, a
    // line each time the peer was let through again (at most once per guess checked, and
    // once for the right token at the end).
    let lines = audit(&s);
    let denied = lines.iter().filter(|e| e.result == "denied" && e.status == 401).count();
    assert_eq!(denied, unauthorized, "{lines:#?}");
    let summaries: Vec<&Entry> = lines.iter().filter(|e| e.result == "throttled").collect();
    assert!((1..=unauthorized).contains(&summaries.len()), "{lines:#?}");
    let refused: u64 = summaries.iter().map(|e| e.refused.unwrap_or(0)).sum();
    assert_eq!(refused, (throttled + polled) as u64, "{lines:#?}");
    assert!(summaries.iter().all(|e| (e.action.as_str(), e.status) == ("authenticate", 429)), "{lines:#?}");
    assert_eq!(lines.len(), denied + summaries.len(), "{lines:#?}");
    s.shutdown();
}

/// How long until the server closes `read`: it is read to the end while `poke` is called
/// every quarter second (a slow client's next header line), for at most `limit`.
async fn closed_after(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    poke: &[u8],
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let mut reader = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = read.read_to_end(&mut sink).await;
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut reader => return started.elapsed(),
            _ = tick.tick() => {
                assert!(started.elapsed() < limit, "the connection is still open after {limit:?}");
                if !poke.is_empty() {
                    let _ = write.write_all(poke).await;
                }
            }
        }
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed_at_the_header_timeout() {
    let secrets = Secrets::new();
    let s = start(&config(&secrets, false));
    let addr = host_port(&remote_url(&s));
    s.wait_for("web", "started");
    let limit = HEADER_TIMEOUT * 4;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // Slowloris: the headers never end, a line arrives now and then.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /v1/status HTTP/1.1\r\nHost: steward\r\n").await.unwrap();
        let (read, write) = tcp.into_split();
        let after = closed_after(read, write, b"X-Slow: 1\r\n", limit).await;
        assert!(after >= HEADER_TIMEOUT - Duration::from_millis(500), "closed after {after:?}");

        // Kept alive after a request, then silent.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request =
            format!("GET /v1/version HTTP/1.1\r\nHost: steward\r\nAuthorization: Bearer {VIEWER}\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
        let (read, write) = tcp.into_split();
        let after = closed_after(read, write, b"", limit).await;
        assert!(after >= HEADER_TIMEOUT - Duration::from_millis(500), "closed after {after:?}");
    });
    // Still serving.
    let r = call(&addr, None, Method::GET, "/v1/version", Some(VIEWER), "").unwrap();
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    s.shutdown();
}
