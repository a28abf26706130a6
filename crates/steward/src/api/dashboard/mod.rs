//! The web dashboard: a page embedded in the binary (`assets.rs`), signed in with an
//! `[[api.tokens]]` token for a session cookie ([`session`]), that drives the API's own
//! router under `/ui/api/` and follows one Server-Sent Events stream (`stream.rs`).
//! docs/dashboard.md is the user's guide; the routes:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /ui/, /ui/app.js, /ui/app.css, /ui/icon.svg | the page (no sign-in needed) |
//! | POST | /ui/session | `{"token": ..}` → `{"name","role","csrf"}` and the cookie |
//! | GET, DELETE | /ui/session | who is signed in; sign out |
//! | GET | /ui/api/stream | `text/event-stream`: hello, status, event, history, usage |
//! | any | /ui/api/v1/... | the API ([`super::router`]) as the session's token |
//!
//! It is served under `/ui/` on the remote API's listener, and on `[dashboard] listen` of
//! its own (loopback only: plain HTTP). Every answer carries a strict
//! Content-Security-Policy; every request that changes something needs the session's CSRF
//! token in `X-Steward-CSRF` and, if it says where it comes from (`Origin`), this host.
//! Roles are the API's ([`super::auth::required_role`]); control actions are written to
//! the audit log with transport `dashboard` and the token's name.

mod assets;
pub mod session;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_service::Service as _;

use super::audit::{self, AuditLog, Entry};
use super::auth::{self, Caller, FailureThrottle, LiveTokens};
use super::{ApiError, ApiState};
use crate::protocol::VersionReply;
use session::{Active, Sessions};

pub use assets::total_size as assets_size;

/// The transport the audit log names for actions taken from the dashboard.
const TRANSPORT: &str = "dashboard";

/// The header every action must carry: the `csrf` of the session.
pub const CSRF_HEADER: &str = "x-steward-csrf";

/// What the page may load and talk to: itself only.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const CSRF_REFUSED: &str = "missing or wrong CSRF token; reload the page";
const SIGNED_OUT: &str = "not signed in, or the session has ended; sign in again";

/// One dashboard: its sessions and how it reaches the API. Shared by both listeners.
pub struct Dashboard {
    state: ApiState,
    tokens: LiveTokens,
    sessions: Sessions,
    throttle: FailureThrottle,
    audit: AuditLog,
    /// The API's router, its control actions audited as the dashboard's.
    api: Router,
    version: String,
}

impl Dashboard {
    pub fn new(
        state: ApiState,
        info: VersionReply,
        audit: AuditLog,
        tokens: LiveTokens,
        session_timeout: Duration,
    ) -> Arc<Dashboard> {
        let version = info.version.clone();
        let api = audit::audited(super::router(state.clone(), info), audit.clone(), TRANSPORT);
        Arc::new(Dashboard {
            state,
            tokens,
            sessions: Sessions::new(session_timeout),
            throttle: FailureThrottle::new(audit.clone(), TRANSPORT),
            audit,
            api,
            version,
        })
    }

    /// The session of the request's cookie, if it is still good, used now.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Active)> {
        let id = session::cookie_id(headers)?;
        let active = self.sessions.get(id, &self.tokens.current(), Instant::now(), true)?;
        Some((id.to_owned(), active))
    }
}

/// The `/ui` routes, for the remote API's listener.
pub fn routes(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { assets::serve("index.html", &headers) }))
        .route("/ui/session", get(whoami).post(sign_in).delete(sign_out))
        .route("/ui/api/stream", get(stream::stream))
        .route("/ui/api/{*path}", any(api))
        .route(
            "/ui/{*file}",
            get(|State(_): State<Arc<Dashboard>>, req: Request| async move {
                let name = req.uri().path().trim_start_matches("/ui/").to_owned();
                assets::serve(&name, req.headers())
            }),
        )
        .with_state(dashboard)
        .layer(axum::middleware::map_response(secure_headers))
}

/// The dashboard's own listener: `/` leads to `/ui/`; nothing else is served.
pub fn standalone(dashboard: Arc<Dashboard>) -> Router {
    let router = routes(dashboard)
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "the dashboard is at /ui/") });
    super::metrics::counted(router)
}

/// Serves [`standalone`] on `listener` (`[dashboard] listen`) until `stop` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    dashboard: Arc<Dashboard>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use super::connections::{Limited, Limits};
    let listener = Limited::new(listener, Limits::REMOTE, "the dashboard");
    if let Err(e) = super::connections::serve(listener, standalone(dashboard), stop).await {
        tracing::error!(event = "dashboard", "the dashboard's listener failed: {e}");
    }
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CSP));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    ApiError::new(status, message).into_response()
}

fn peer_of(req: &Request) -> Option<SocketAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// An `Origin` header, when there is one, must name the host the request was sent to: a
/// page elsewhere cannot act through a signed-in browser.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else { return true };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// An action's CSRF check: the session's token in [`CSRF_HEADER`], from this origin.
fn csrf_ok(headers: &HeaderMap, active: &Active) -> bool {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    same_origin(headers) && session::same_secret(sent, &active.csrf)
}

fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What the page is told about its session.
#[derive(Serialize)]
struct SessionReply<'a> {
    name: &'a str,
    role: &'static str,
    csrf: &'a str,
}

fn session_reply(active: &Active) -> Response {
    Json(SessionReply { name: &active.name, role: active.role.name(), csrf: &active.csrf }).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(d): State<Arc<Dashboard>>, req: Request) -> Response {
    let peer = peer_of(&req);
    if !same_origin(req.headers()) {
        return error(StatusCode::FORBIDDEN, CSRF_REFUSED);
    }
    if let Err(reply) = d.throttle.check(peer) {
        return reply;
    }
    let body = match axum::body::to_bytes(req.into_body(), 16 * 1024).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the sign-in request is too large"),
    };
    let Ok(SignIn { token }) = serde_json::from_slice::<SignIn>(&body) else {
        return error(StatusCode::BAD_REQUEST, "send {\"token\": \"...\"} as JSON");
    };
    let tokens = d.tokens.current();
    let Some(entry) = tokens.find(token.trim().as_bytes()) else {
        d.throttle.failed(peer);
        let why = "the token matches none of this steward's [[api.tokens]]";
        d.audit.record(
            &Entry::begin("unauthenticated", TRANSPORT, peer, "sign-in")
                .denied(StatusCode::UNAUTHORIZED, why),
        );
        let who = peer.map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(event = "dashboard", "refused a dashboard sign-in from {who}: {why}");
        return error(StatusCode::UNAUTHORIZED, why);
    };
    let (id, active) = d.sessions.create(entry, Instant::now());
    let mut line = Entry::begin(&active.name, TRANSPORT, peer, "sign-in");
    line.result = "ok".into();
    line.status = 200;
    line.error = None;
    d.audit.record(&line);
    let mut reply = session_reply(&active);
    let cookie = format!("{}={id}; HttpOnly; Secure; SameSite=Strict; Path=/ui", session::COOKIE);
    reply
        .headers_mut()
        .insert(SET_COOKIE, HeaderValue::from_str(&cookie).expect("base64url is a valid header"));
    reply
}

async fn whoami(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    match d.session(&headers) {
        Some((_, active)) => session_reply(&active),
        None => error(StatusCode::UNAUTHORIZED, SIGNED_OUT),
    }
}

async fn sign_out(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some((id, active)) = d.session(&headers) else {
        return error(StatusCode::UNAUTHORIZED, SIGNED_OUT);
    };
    if !csrf_ok(&headers, &active) {
        return error(StatusCode::FORBIDDEN, CSRF_REFUSED);
    }
    d.sessions.remove(&id);
    let cookie = format!("{}=; HttpOnly; Secure; SameSite=Strict; Path=/ui; Max-Age=0", session::COOKIE);
    let mut reply = StatusCode::NO_CONTENT.into_response();
    reply.headers_mut().insert(SET_COOKIE, HeaderValue::from_str(&cookie).expect("a valid header"));
    reply
}

/// `/ui/api/<API path>`: the API's router, as the session's token.
async fn api(State(d): State<Arc<Dashboard>>, req: Request) -> Response {
    let peer = peer_of(&req);
    let Some((_, active)) = d.session(req.headers()) else {
        return error(StatusCode::UNAUTHORIZED, SIGNED_OUT);
    };
    let path = req.uri().path().strip_prefix("/ui/api").unwrap_or("/").to_owned();
    let method = req.method().clone();
    let action = audit::control_action(&method, &path);
    let deny = |status: StatusCode, why: &str| {
        if let Some(action) = action {
            d.audit.record(&Entry::begin(&active.name, TRANSPORT, peer, action).denied(status, why));
        }
        tracing::warn!(
            event = "dashboard",
            "refused {method} {path} from the dashboard session of `{}`: {why}",
            active.name
        );
        error(status, why)
    };
    if changes_something(&method) && !csrf_ok(req.headers(), &active) {
        return deny(StatusCode::FORBIDDEN, CSRF_REFUSED);
    }
    let needed = auth::required_role(&method, &path);
    if active.role < needed {
        let why = format!(
            "{method} {path} needs the {} role; token `{}` has the {} role",
            needed.name(),
            active.name,
            active.role.name()
        );
        return deny(StatusCode::FORBIDDEN, &why);
    }
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let Ok(uri) = format!("{path}{query}").parse::<Uri>() else {
        return error(StatusCode::BAD_REQUEST, "not a valid path");
    };
    // A new request, not this one re-addressed: this route's own path parameters are in
    // its extensions and would be taken for the API route's.
    let (parts, body) = req.into_parts();
    let mut req = Request::new(body);
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers;
    if let Some(connect) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        req.extensions_mut().insert(*connect);
    }
    req.extensions_mut().insert(Caller { name: active.name.clone(), role: active.role, peer });
    let mut router = d.api.clone();
    match router.call(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_the_host() {
        assert!(
            same_origin(&headers(&[("host", "127.0.0.1:8080")])),
            "no Origin: a same-origin GET or a tool"
        );
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("host", "Example.org:443"), ("origin", "https://example.org:443")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])));
    }
}
