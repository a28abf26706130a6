//! `GET /v1/events[?follow=true]`: newline-delimited JSON, one [`EventRecord`] per line:
//! the recent history, then (when following) every new event as it happens.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::ApiError;
use crate::protocol::{EventRecord, ExitInfo};
use crate::supervise::{Control, Event, EventKind};

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    follow: bool,
}

pub async fn events(State(control): State<Control>, Query(p): Query<Params>) -> Result<Response, ApiError> {
    let (history, rx) = control.events().await?;
    let past = stream::iter(history.into_iter().map(|r| Ok::<_, std::convert::Infallible>(line(&r))));
    let body = if p.follow {
        let live = stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(r) => Some((Ok(line(&r)), rx)),
                // A slow reader missed some: say so in the stream rather than stall steward.
                Err(RecvError::Lagged(n)) => {
                    let note = format!("{{\"kind\":\"lagged\",\"message\":\"{n} events were skipped\"}}\n");
                    Some((Ok(Bytes::from(note)), rx))
                }
                Err(RecvError::Closed) => None,
            }
        });
        Body::from_stream(past.chain(live))
    } else {
        Body::from_stream(past)
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .expect("static headers are valid"))
}

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(&record(e)).expect("event records serialize");
    v.push(b'\n');
    Bytes::from(v)
}

/// A supervisor event as the API shows it (docs/api.md).
pub fn record(e: &Event) -> EventRecord {
    let name = |s: &str| Some(s.to_owned());
    let (kind, from, to, message) = match &e.kind {
        EventKind::State { change, .. } => {
            ("state", name(change.from.name()), name(change.to.name()), change.reason.to_string())
        }
        EventKind::Health { from, to, message } => {
            ("health", name(from.name()), name(to.name()), message.clone())
        }
        EventKind::Limit { message } => ("limit", None, None, message.clone()),
        EventKind::Alert { status, message } => ("alert", None, name(status.name()), message.clone()),
        EventKind::LogOpenFailed { message, .. } => ("log", None, None, message.clone()),
        EventKind::Rollout { step, message } => ("rollout", None, name(step), message.clone()),
        EventKind::Deploy { step, message, .. } => ("deploy", None, name(step), message.clone()),
        EventKind::Ship { sink, step, message } => ("ship", Some(sink.clone()), name(step), message.clone()),
    };
    EventRecord {
        time: humantime::format_rfc3339_millis(e.time).to_string(),
        program: e.program.to_string(),
        kind: kind.to_owned(),
        from,
        to,
        message,
        pid: match e.kind {
            EventKind::State { pid, .. } => pid,
            _ => None,
        },
        exit: e.exit().map(ExitInfo::from),
        stream: match e.kind {
            EventKind::LogOpenFailed { stream, .. } => name(stream.name()),
            _ => None,
        },
        version: match &e.kind {
            EventKind::Deploy { version, .. } => Some(version.clone()),
            _ => None,
        },
    }
}
