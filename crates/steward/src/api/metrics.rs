//! `GET /metrics` over HTTP: on the API listeners (the local socket, and the remote API when
//! configured) and, with `[metrics] listen`, on a plain-HTTP listener of its own
//! ([`router`]). The exposition itself is `crate::metrics`.
//!
//! Formats: the OpenMetrics text format when the scraper asks for it (Prometheus does, in
//! its `Accept` header), else the Prometheus text format 0.0.4, which `promtool check
//! metrics` and older scrapers read.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ApiError;
use crate::supervise::Control;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `router` with each request counted by the status of its reply
/// (`steward_api_requests_total`). Put it around everything else, refusals included.
pub fn counted(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(count_requests))
}

async fn count_requests(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    crate::metrics::count_api_request(response.status().as_u16());
    response
}

/// What `/metrics` reads: the supervisor and the sinks.
#[derive(Clone)]
pub struct Sources {
    pub control: Control,
    pub sinks: crate::ship::Sinks,
}

impl axum::extract::FromRef<Sources> for Control {
    fn from_ref(s: &Sources) -> Control {
        s.control.clone()
    }
}

impl axum::extract::FromRef<Sources> for crate::ship::Sinks {
    fn from_ref(s: &Sources) -> crate::ship::Sinks {
        s.sinks.clone()
    }
}

/// `GET /metrics` alone, for the `[metrics] listen` listener.
pub fn router(sources: Sources) -> Router {
    Router::new()
        .route("/metrics", get(serve))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n") })
        .with_state(sources)
}

/// Serve [`router`] on `listener` until `stop` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    sources: Sources,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let listener =
        super::connections::Limited::new(listener, super::connections::Limits::METRICS, "[metrics]");
    if let Err(e) = super::connections::serve(listener, router(sources), stop).await {
        tracing::error!(event = "metrics", "the metrics listener failed: {e}");
    }
}

/// `GET /metrics`.
pub async fn serve(
    State(control): State<Control>,
    State(sinks): State<crate::ship::Sinks>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = control.snapshot().await?;
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = tokio::task::spawn_blocking(move || {
        crate::metrics::collect(&snapshot, &sinks.reports(true), openmetrics)
    })
    .await
    .map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("collecting metrics failed: {e}"))
    })?;
    let content_type = if openmetrics { OPENMETRICS } else { PROMETHEUS_TEXT };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}
