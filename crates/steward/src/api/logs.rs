//! `GET /v1/logs/{name}?stderr=true&lines=N&follow=true`: the last N lines of the program's
//! log, then (when following) every line as steward writes it. The live lines come from
//! the writer itself, not from watching the file, so following survives any rotation.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::ApiError;
use crate::supervise::Control;

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    stderr: bool,
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default)]
    follow: bool,
}

fn default_lines() -> usize {
    10
}

pub async fn logs(
    State(control): State<Control>,
    Path(name): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let access = control.logs(name, p.stderr, p.lines, p.follow).await?;
    let head = stream::once(async move { Ok::<_, std::convert::Infallible>(Bytes::from(access.tail)) });
    let body = if access.feeds.is_empty() {
        Body::from_stream(head)
    } else {
        // Several feeds (the instances of a program) merge as their lines come.
        let live = stream::select_all(access.feeds.into_iter().map(|feed| {
            stream::unfold(feed, |mut feed| async move {
                let bytes = match feed.rx.recv().await {
                    Ok(b) => b,
                    Err(RecvError::Lagged(n)) => {
                        Bytes::from(format!("[steward: {n} writes skipped: this reader fell behind]\n"))
                    }
                    Err(RecvError::Closed) => return None,
                };
                let bytes = match &feed.prefix {
                    Some(p) => Bytes::from(crate::supervise::control::prefix_lines(p, &bytes)),
                    None => bytes,
                };
                Some((Ok(bytes), feed))
            })
            .boxed()
        }));
        Body::from_stream(head.chain(live))
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static headers are valid"))
}
