//! Tokens and roles for the remote API. Every remote request needs `Authorization: Bearer
//! TOKEN`; the SHA-256 of the token is compared, in constant time, with every configured
//! `[[api.tokens]]` hash, and the matching entry's role must be at least the route's.
//!
//! | route | role |
//! |---|---|
//! | every `GET` (status, logs, events, version, metrics) | viewer |
//! | `POST /v1/start`, `/v1/stop`, `/v1/restart`, `/v1/reload`, `/v1/scale`, `/v1/deploy`, `/v1/rollback` | operator |
//! | `POST /v1/shutdown`, and any other method or route | admin |
//!
//! No token, or one that matches no entry: 401 with `WWW-Authenticate: Bearer`. A role too
//! low: 403. Both answers carry the usual JSON error, and a refused control action is
//! written to the audit log. The local socket does not pass through here: its file
//! permissions are its authentication.
//!
//! Failed authentications are throttled per peer (IP address): after
//! [`FailureLimit::DEFAULT`]'s burst of 10, one more a second. A peer over that gets 429 with
//! `Retry-After`, without its token being looked at (a right token too: guessing must not go
//! on at full speed), and without an audit line; once it is let through again, one audit line
//! says how many were refused (`"result":"throttled"`). Every answer, 401, 403 and 429
//! included, is counted in `steward_api_requests_total`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest as _, Sha256};
use steward_core::config::{ApiRole, ApiToken};
use steward_core::throttle::{Check, FailureLimit, Throttle};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

use super::audit::{self, AuditLog, Entry};
use super::ApiError;

/// Who made a remote request: put on the request by [`protect`] for the handlers and the
/// audit log.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The `name` of the matching `[[api.tokens]]` entry.
    pub name: String,
    pub role: ApiRole,
    pub peer: Option<SocketAddr>,
}

/// The role a request needs. Reads are the viewer's; a route that is not known to be a
/// read or an operator's action is the admin's, so a new control route is never open to
/// less by accident.
pub fn required_role(method: &Method, path: &str) -> ApiRole {
    if method == Method::GET || method == Method::HEAD {
        return ApiRole::Viewer;
    }
    match (method, path) {
        (
            &Method::POST,
            "/v1/start" | "/v1/stop" | "/v1/restart" | "/v1/reload" | "/v1/scale" | "/v1/deploy"
            | "/v1/rollback",
        ) => ApiRole::Operator,
        _ => ApiRole::Admin,
    }
}

/// The configured tokens, by hash.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<ApiToken>,
}

impl Tokens {
    pub fn new(entries: Vec<ApiToken>) -> Tokens {
        Tokens { entries }
    }

    /// The entry whose hash is the SHA-256 of `presented`. Every entry is compared, in
    /// constant time, whether or not one matched already, so the time taken says nothing
    /// about which entry (if any) matched or how much of a hash was right.
    pub fn find(&self, presented: &[u8]) -> Option<&ApiToken> {
        self.find_digest(&Sha256::digest(presented).into())
    }

    /// The entry whose hash is `digest`, compared as [`Tokens::find`] does.
    pub fn find_digest(&self, digest: &[u8; 32]) -> Option<&ApiToken> {
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let same = entry.sha256.ct_eq(digest);
            index = u64::conditional_select(&index, &(i as u64), same);
            found |= same;
        }
        bool::from(found).then(|| &self.entries[index as usize])
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// `router` behind token checks; refused control actions go to `audit`.
pub fn protect(router: Router, tokens: Tokens, audit: AuditLog, transport: &'static str) -> Router {
    let throttle = FailureThrottle::new(audit.clone(), transport);
    let guard = Guard { tokens: Arc::new(tokens), audit, transport, throttle };
    router.layer(axum::middleware::from_fn_with_state(guard, authorize))
}

#[derive(Clone)]
struct Guard {
    tokens: Arc<Tokens>,
    audit: AuditLog,
    transport: &'static str,
    throttle: FailureThrottle,
}

/// Failed authentications per peer address, and the answer (429) to a peer over the limit:
/// shared by the token check here and the dashboard's sign-in.
#[derive(Clone)]
pub struct FailureThrottle {
    throttle: Arc<Mutex<Throttle<IpAddr>>>,
    audit: AuditLog,
    transport: &'static str,
}

impl FailureThrottle {
    pub fn new(audit: AuditLog, transport: &'static str) -> FailureThrottle {
        FailureThrottle {
            throttle: Arc::new(Mutex::new(Throttle::new(FailureLimit::DEFAULT))),
            audit,
            transport,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Throttle<IpAddr>> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a failed authentication of `peer`.
    pub fn failed(&self, peer: Option<SocketAddr>) {
        if let Some(addr) = peer {
            self.lock().failed(&addr.ip().to_canonical(), Instant::now());
        }
    }

    /// `Err` with the 429 answer when `peer` failed too often to be heard now.
    #[allow(clippy::result_large_err)] // the answer is built once per refused request
    pub fn check(&self, peer: Option<SocketAddr>) -> Result<(), Response> {
        let Some(addr) = peer else { return Ok(()) };
        let ip = addr.ip().to_canonical();
        let check = self.lock().check(&ip, Instant::now());
        match check {
            Check::Refused { retry_after, first } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                if first {
                    tracing::warn!(
                        event = "api",
                        "too many failed authentications from {ip}: refusing its requests (429) for now; one audit line will say how many"
                    );
                }
                let mut reply = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many failed authentications from {ip}; try again in {seconds} s"),
                )
                .into_response();
                reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
                Err(reply)
            }
            Check::Allowed { refused_before } if refused_before > 0 => {
                let why =
                    format!("{refused_before} requests refused (429) after too many failed authentications");
                self.audit.record(
                    &Entry::begin("unauthenticated", self.transport, peer, "authenticate")
                        .throttled(refused_before, &why),
                );
                Ok(())
            }
            Check::Allowed { .. } => Ok(()),
        }
    }
}

async fn authorize(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Err(reply) = guard.throttle.check(peer) {
        return reply;
    }
    let needed = required_role(req.method(), req.uri().path());
    let route = format!("{} {}", req.method(), req.uri().path());
    let action = audit::control_action(req.method(), req.uri().path());
    let deny = |who: &str, status: StatusCode, why: String| {
        if let Some(action) = action {
            guard.audit.record(&Entry::begin(who, guard.transport, peer, action).denied(status, &why));
        }
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(event = "api", "refused {route} from {peer}: {why}");
        ApiError::new(status, why).into_response()
    };

    let failed = || guard.throttle.failed(peer);
    let caller = match bearer(req.headers()) {
        None => {
            failed();
            let mut reply = deny(
                "unauthenticated",
                StatusCode::UNAUTHORIZED,
                "this API needs a token: send `Authorization: Bearer TOKEN`".into(),
            );
            reply
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"steward\""));
            return reply;
        }
        Some(token) => match guard.tokens.find(token) {
            Some(entry) => Caller { name: entry.name.clone(), role: entry.role, peer },
            None => {
                failed();
                let mut reply = deny(
                    "unauthenticated",
                    StatusCode::UNAUTHORIZED,
                    "the token matches none of this steward's [[api.tokens]]".into(),
                );
                reply.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"steward\", error=\"invalid_token\""),
                );
                return reply;
            }
        },
    };
    if caller.role < needed {
        let why = format!(
            "{route} needs the {} role; token `{}` has the {} role",
            needed.name(),
            caller.name,
            caller.role.name()
        );
        return deny(&caller.name, StatusCode::FORBIDDEN, why);
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The tokens as the config says now, for the dashboard: its sessions end when their token
/// is gone from the config after a reload (the remote API's own check keeps the tokens it
/// started with until steward restarts).
#[derive(Clone)]
pub struct LiveTokens {
    inner: Arc<LiveInner>,
}

struct LiveInner {
    tokens: std::sync::RwLock<Arc<Tokens>>,
    /// The config file, read again after a reload that changed `[api]`.
    source: std::path::PathBuf,
    /// Bumped on every change, so that open streams look at their session again.
    changed: tokio::sync::watch::Sender<u64>,
}

impl LiveTokens {
    pub fn new(tokens: Vec<ApiToken>, source: std::path::PathBuf) -> LiveTokens {
        let (changed, _) = tokio::sync::watch::channel(0);
        LiveTokens {
            inner: Arc::new(LiveInner {
                tokens: std::sync::RwLock::new(Arc::new(Tokens::new(tokens))),
                source,
                changed,
            }),
        }
    }

    pub fn current(&self) -> Arc<Tokens> {
        self.inner.tokens.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, tokens: Vec<ApiToken>) {
        *self.inner.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Tokens::new(tokens));
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Wakes when the tokens change.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// After a reload that applied: the tokens of the config file as it is now. A file that
    /// does not load keeps the tokens as they were (the reload was refused then, too).
    pub fn reread(&self) {
        match steward_core::config::load_with(&self.inner.source, &crate::process::host_env()) {
            Ok(config) => {
                self.set(config.api.map(|a| a.tokens).unwrap_or_default());
                tracing::info!(event = "dashboard", "the dashboard's tokens are the config's again");
            }
            Err(_) => tracing::warn!(
                event = "dashboard",
                "cannot read the tokens again from {}; the dashboard keeps the ones it had",
                self.inner.source.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, role: ApiRole, secret: &str) -> ApiToken {
        ApiToken { name: name.into(), role, sha256: Sha256::digest(secret.as_bytes()).into() }
    }

    #[test]
    fn the_route_table() {
        use ApiRole::*;
        let table = [
            (Method::GET, "/v1/status", Viewer),
            (Method::GET, "/v1/version", Viewer),
            (Method::GET, "/v1/events", Viewer),
            (Method::GET, "/v1/logs/web", Viewer),
            (Method::GET, "/v1/metrics", Viewer),
            (Method::GET, "/metrics", Viewer),
            (Method::HEAD, "/v1/status", Viewer),
            (Method::POST, "/v1/start", Operator),
            (Method::POST, "/v1/stop", Operator),
            (Method::POST, "/v1/restart", Operator),
            (Method::POST, "/v1/reload", Operator),
            (Method::POST, "/v1/scale", Operator),
            (Method::POST, "/v1/deploy", Operator),
            (Method::POST, "/v1/rollback", Operator),
            (Method::GET, "/v1/releases/web", Viewer),
            (Method::POST, "/v1/shutdown", Admin),
            // Unknown: the most privileged, never the least.
            (Method::POST, "/v1/something-new", Admin),
            (Method::DELETE, "/v1/stop", Admin),
            (Method::PUT, "/v1/start", Admin),
            (Method::POST, "/v1/stop/", Admin),
        ];
        for (method, path, role) in table {
            assert_eq!(required_role(&method, path), role, "{method} {path}");
        }
    }

    #[test]
    fn tokens_match_by_hash_whichever_entry_it_is() {
        let tokens = Tokens::new(vec![
            token("view", ApiRole::Viewer, "viewer-secret-0123456789"),
            token("ops", ApiRole::Operator, "operator-secret-0123456789"),
            token("root", ApiRole::Admin, "admin-secret-0123456789"),
        ]);
        assert_eq!(tokens.find(b"viewer-secret-0123456789").map(|t| t.name.as_str()), Some("view"));
        assert_eq!(tokens.find(b"operator-secret-0123456789").map(|t| t.name.as_str()), Some("ops"));
        assert_eq!(tokens.find(b"admin-secret-0123456789").map(|t| t.name.as_str()), Some("root"));
        assert!(tokens.find(b"admin-secret-012345678").is_none(), "a prefix is not the token");
        assert!(tokens.find(b"admin-secret-01234567890").is_none());
        assert!(tokens.find(b"").is_none());
        assert!(Tokens::new(vec![]).find(b"anything").is_none());
    }

    #[test]
    fn bearer_headers() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            bearer(&h).map(|t| String::from_utf8(t.to_vec()).unwrap())
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer   abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(with("Bearer  "), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
