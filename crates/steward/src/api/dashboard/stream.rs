//! `GET /ui/api/stream`: the page's only live feed, as Server-Sent Events. First `hello`
//! (who is signed in), `status` (as `/v1/status`), the recent `event`s and the usage
//! `history` of the last hour; then each new `event`, a `status` again after state or health
//! changes (at most one per [`STATUS_EVERY`]), and a `usage` sample per sampling tick. A
//! `: keepalive` comment goes out every [`KEEPALIVE`] while connected.
//!
//! The stream ends when its session does (signed out, timed out, its token removed by a
//! reload); the browser then reconnects, gets 401 and shows the sign-in. While it is open it
//! holds a usage [`Watch`](crate::api::usage::Watch), so the sampler runs only while
//! someone looks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt as _};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::session::Active;
use super::Dashboard;
use crate::api::usage::{Sample, Watch};
use crate::api::ApiError;
use crate::supervise::{Event, EventKind};

/// At most one `status` per this long.
pub const STATUS_EVERY: Duration = Duration::from_millis(200);
/// A comment this often keeps proxies and the browser from closing an idle stream.
pub const KEEPALIVE: Duration = Duration::from_secs(20);

fn sse(name: &str, data: &impl serde::Serialize) -> SseEvent {
    let json = serde_json::to_string(data).expect("stream items serialize");
    SseEvent::default().event(name).data(json)
}

pub async fn stream(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some((id, active)) = d.session(&headers) else {
        return super::error(StatusCode::UNAUTHORIZED, super::SIGNED_OUT);
    };
    let control = d.state.control.clone();
    let (history, events) = match control.events().await {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let snapshot = match control.snapshot().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (usage_history, samples, watch) = d.state.usage.subscribe();
    let hello = serde_json::json!({"name": active.name, "role": active.role.name(), "version": d.version});
    let mut first = vec![
        sse("hello", &hello),
        sse("status", &crate::api::status::reply(snapshot, std::time::SystemTime::now())),
    ];
    first.extend(history.iter().map(|e| sse("event", &crate::api::events::record(e))));
    first.push(sse("history", &usage_history));
    let live = Live {
        tokens: d.tokens.changed(),
        d,
        id,
        active,
        events,
        samples: Some(samples),
        _watch: watch,
        status_due: None,
        last_status: Instant::now(),
    };
    let live = stream::unfold(live, |mut live| async move { live.next().await.map(|e| (e, live)) });
    let all = stream::iter(first).chain(live).map(Ok::<_, Infallible>);
    Sse::new(all).keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive")).into_response()
}

/// An open stream after its first items.
struct Live {
    d: Arc<Dashboard>,
    id: String,
    active: Active,
    tokens: watch::Receiver<u64>,
    events: broadcast::Receiver<Event>,
    /// `None` once the sampler is gone (steward is shutting down).
    samples: Option<broadcast::Receiver<Arc<Sample>>>,
    _watch: Watch,
    /// When the next `status` goes out, if one is due.
    status_due: Option<Instant>,
    last_status: Instant,
}

impl Live {
    /// Whether the session is still good (looked at, not used).
    fn still_signed_in(&mut self) -> bool {
        match self.d.sessions.get(&self.id, &self.d.tokens.current(), Instant::now(), false) {
            Some(active) => {
                self.active = active;
                true
            }
            None => false,
        }
    }

    fn status_soon(&mut self) {
        if self.status_due.is_none() {
            self.status_due = Some((self.last_status + STATUS_EVERY).max(Instant::now()));
        }
    }

    /// The next item, or `None` to end the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            let expires = tokio::time::Instant::from_std(self.active.expires);
            let status_at = self.status_due.map(tokio::time::Instant::from_std);
            tokio::select! {
                changed = self.active.ended.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                changed = self.tokens.changed() => {
                    if changed.is_err() || !self.still_signed_in() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(expires) => {
                    if !self.still_signed_in() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(status_at.unwrap_or(expires)), if status_at.is_some() => {
                    self.status_due = None;
                    self.last_status = Instant::now();
                    let snapshot = self.d.state.control.snapshot().await.ok()?;
                    return Some(sse("status", &crate::api::status::reply(snapshot, std::time::SystemTime::now())));
                }
                event = self.events.recv() => match event {
                    Ok(e) => {
                        if matches!(e.kind, EventKind::State { .. } | EventKind::Health { .. }) {
                            self.status_soon();
                        }
                        return Some(sse("event", &crate::api::events::record(&e)));
                    }
                    // Missed some: the next status says where things stand.
                    Err(RecvError::Lagged(_)) => self.status_soon(),
                    Err(RecvError::Closed) => return None,
                },
                sample = async { self.samples.as_mut()?.recv().await.ok() }, if self.samples.is_some() => match sample {
                    Some(s) => return Some(sse("usage", &*s)),
                    None => {
                        // Lagged: the next one comes; closed: no more.
                        if let Some(rx) = &self.samples {
                            if rx.is_closed() {
                                self.samples = None;
                            }
                        }
                    }
                },
            }
        }
    }
}
