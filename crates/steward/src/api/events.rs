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

use super::types::EventRecord;
use super::ApiError;
use crate::supervise::Control;

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

fn line(r: &EventRecord) -> Bytes {
    let mut v = serde_json::to_vec(r).expect("event records serialize");
    v.push(b'\n');
    Bytes::from(v)
}
