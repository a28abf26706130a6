//! Dashboard sessions: made at sign-in, kept in memory only (a restart of steward signs
//! everyone out), each with a CSRF token that every action must echo.
//!
//! A session id is 256 random bits from the operating system's CSPRNG (through rustls'
//! ring provider, already linked for TLS), sent as base64url in an HttpOnly cookie. The map
//! is keyed by the SHA-256 of the id, so looking one up takes the same time whatever part of
//! a guessed id is right; the CSRF token is compared in constant time. A session ends when it
//! is signed out, unused for `session_timeout`, or its token is no longer configured; its
//! `ended` channel closes then, which ends its open event stream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use steward_core::config::{ApiRole, ApiToken};
use subtle::ConstantTimeEq as _;
use tokio::sync::watch;

use crate::api::auth::Tokens;

/// The cookie's name.
pub const COOKIE: &str = "steward_session";

/// Sessions beyond this many push out the least recently used: a flood of sign-ins (each
/// needs a valid token) cannot grow memory without end.
const MAX_SESSIONS: usize = 1024;

/// A signed-in session, as a request sees it.
#[derive(Clone, Debug)]
pub struct Active {
    pub name: String,
    pub role: ApiRole,
    pub csrf: String,
    /// When it times out unless used again.
    pub expires: Instant,
    /// Closed when the session ends.
    pub ended: watch::Receiver<()>,
}

struct Session {
    /// The SHA-256 of its token: checked against the configured ones at each use.
    token: [u8; 32],
    name: String,
    role: ApiRole,
    csrf: String,
    last_used: Instant,
    /// Dropped with the session, which closes every `Active::ended`.
    ended: watch::Sender<()>,
}

impl Session {
    fn active(&self, timeout: Duration) -> Active {
        Active {
            name: self.name.clone(),
            role: self.role,
            csrf: self.csrf.clone(),
            expires: self.last_used + timeout,
            ended: self.ended.subscribe(),
        }
    }
}

/// Every session of one dashboard.
pub struct Sessions {
    timeout: Duration,
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 bytes from the CSPRNG, as base64url without padding (43 characters).
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the operating system's random number generator works");
    base64url(&bytes)
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Constant-time equality of two strings of any length.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    pub fn new(timeout: Duration) -> Sessions {
        Sessions { timeout, map: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `token`: its id (for the cookie) and what the page is told.
    pub fn create(&self, token: &ApiToken, now: Instant) -> (String, Active) {
        let id = random_id();
        let (ended, _) = watch::channel(());
        let session = Session {
            token: token.sha256,
            name: token.name.clone(),
            role: token.role,
            csrf: random_id(),
            last_used: now,
            ended,
        };
        let active = session.active(self.timeout);
        let mut map = self.lock();
        map.retain(|_, s| now.duration_since(s.last_used) < self.timeout);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(key(&id), session);
        (id, active)
    }

    /// The session `id` names, if it is still good, used now (`touch`) or only looked at.
    /// One that timed out or whose token is gone is ended here.
    pub fn get(&self, id: &str, tokens: &Tokens, now: Instant, touch: bool) -> Option<Active> {
        let key = key(id);
        let mut map = self.lock();
        let session = map.get_mut(&key)?;
        let entry = tokens.find_digest(&session.token);
        let Some(entry) = entry.filter(|_| now.duration_since(session.last_used) < self.timeout) else {
            map.remove(&key);
            return None;
        };
        // A reload may have renamed the entry or changed its role.
        session.name.clone_from(&entry.name);
        session.role = entry.role;
        if touch {
            session.last_used = now;
        }
        Some(session.active(self.timeout))
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(&key(id));
    }
}

/// The session id of a `Cookie` header, if it has one.
pub fn cookie_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, role: ApiRole, secret: &str) -> ApiToken {
        ApiToken { name: name.into(), role, sha256: Sha256::digest(secret.as_bytes()).into() }
    }

    #[test]
    fn base64url_of_known_bytes() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let id = random_id();
        assert_eq!(id.len(), 43);
        assert_ne!(id, random_id());
    }

    #[test]
    fn sessions_time_out_and_follow_the_tokens() {
        let ops = token("ops", ApiRole::Operator, "ops-secret-0123456789");
        let tokens = Tokens::new(vec![ops.clone()]);
        let sessions = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, active) = sessions.create(&ops, t0);
        assert_eq!((active.name.as_str(), active.role), ("ops", ApiRole::Operator));
        assert!(sessions.get("not-an-id", &tokens, t0, true).is_none());
        assert!(sessions.get(&id, &tokens, t0 + Duration::from_secs(50), true).is_some());
        // Used at 50 s: good until 110 s.
        assert!(sessions.get(&id, &tokens, t0 + Duration::from_secs(100), false).is_some());
        let ended = active.ended.clone();
        assert!(sessions.get(&id, &tokens, t0 + Duration::from_secs(111), true).is_none());
        assert!(ended.has_changed().is_err(), "the session's stream is told");
        assert!(sessions.get(&id, &tokens, t0, true).is_none(), "gone for good");

        let (id, _) = sessions.create(&ops, t0);
        assert!(sessions.get(&id, &Tokens::new(vec![]), t0, true).is_none(), "its token was removed");
        let (id, _) = sessions.create(&ops, t0);
        let other = Tokens::new(vec![token("other", ApiRole::Admin, "x-0123456789abcdef")]);
        assert!(sessions.get(&id, &other, t0, false).is_none());
        assert!(sessions.get(&id, &tokens, t0, true).is_none(), "ended, not only hidden");
    }

    #[test]
    fn cookies_and_secrets() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("cookie", "a=b; steward_session=abc ; c=d".parse().unwrap());
        assert_eq!(cookie_id(&h), Some("abc"));
        h.insert("cookie", "steward_sessionx=abc".parse().unwrap());
        assert_eq!(cookie_id(&h), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
