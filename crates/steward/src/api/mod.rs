//! The versioned HTTP+JSON API (`/v1/...`). Every CLI verb is a thin client of it, and the
//! optional remote listener serves the same router, so there is one code path for control.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET  | /v1/version | version, pid, config path (also the CLI's liveness probe) |
//! | GET  | /v1/status | every program |
//! | POST | /v1/start, /v1/stop, /v1/restart | an [`crate::protocol::ActionRequest`]; waits for the state |
//! | POST | /v1/reload | re-read the config file, apply the difference |
//! | POST | /v1/scale | a [`crate::protocol::ScaleRequest`]: start or stop only the difference |
//! | POST | /v1/deploy | a [`crate::protocol::DeployRequest`]: fetch, verify, switch, gate, roll back on failure |
//! | POST | /v1/rollback | back to the previous release |
//! | GET  | /v1/releases/{program} | installed versions and the release history |
//! | POST | /v1/shutdown | stop everything and exit |
//! | GET  | /v1/events | recent state changes, then live ones with `?follow=true` (NDJSON) |
//! | GET  | /v1/logs/{name} | `?stderr=true&lines=N&follow=true`: the tail, then live lines |
//! | GET  | /v1/usage | memory and CPU now; `?follow=true`: the last hour, then a sample per tick ([`usage`]) |
//! | GET  | /metrics | Prometheus metrics ([`metrics`], encoded by [`crate::metrics`]) |
//!
//! The web dashboard ([`dashboard`]) serves this router under `/ui/api/`, signed in with a
//! session cookie instead of a token.
//!
//! Over the remote transport ([`remote`]) each route needs a token with a role
//! ([`auth`]); on both, control actions are written to the audit log ([`audit`]). Every
//! listener serves through [`connections`]: capped connections, a header timeout.

mod actions;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod dashboard;
mod deploy;
mod events;
pub mod local;
mod logs;
pub mod metrics;
pub mod remote;
pub(crate) mod status;
pub mod usage;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::deploy::Deployer;
use crate::protocol::{ErrorReply, VersionReply};
use crate::supervise::{Control, ControlError};

/// What the handlers reach: the supervisor's control, and the deploy flow on top of it.
#[derive(Clone)]
pub struct ApiState {
    pub control: Control,
    pub deployer: Deployer,
    pub usage: usage::UsageHub,
    /// With a dashboard: the tokens it signs in with, read again after a reload.
    pub tokens: Option<auth::LiveTokens>,
    /// The `[[ship]]` sinks, for `status` and `/metrics`.
    pub sinks: crate::ship::Sinks,
}

impl FromRef<ApiState> for crate::ship::Sinks {
    fn from_ref(state: &ApiState) -> crate::ship::Sinks {
        state.sinks.clone()
    }
}

impl FromRef<ApiState> for usage::UsageHub {
    fn from_ref(state: &ApiState) -> usage::UsageHub {
        state.usage.clone()
    }
}

impl FromRef<ApiState> for Control {
    fn from_ref(state: &ApiState) -> Control {
        state.control.clone()
    }
}

impl FromRef<ApiState> for Deployer {
    fn from_ref(state: &ApiState) -> Deployer {
        state.deployer.clone()
    }
}

/// The API's routes, served over whatever transport. The transport counts the requests
/// ([`metrics::counted`]) outside its own checks.
pub fn router(state: ApiState, info: VersionReply) -> Router {
    Router::new()
        .route("/v1/version", get(move || async move { Json(info.clone()) }))
        .route("/v1/status", get(status::status))
        .route("/v1/start", post(actions::start))
        .route("/v1/stop", post(actions::stop))
        .route("/v1/restart", post(actions::restart))
        .route("/v1/reload", post(actions::reload))
        .route("/v1/scale", post(actions::scale))
        .route("/v1/deploy", post(deploy::deploy))
        .route("/v1/rollback", post(deploy::rollback))
        .route("/v1/releases/{program}", get(deploy::releases))
        .route("/v1/shutdown", post(actions::shutdown))
        .route("/v1/events", get(events::events))
        .route("/v1/logs/{name}", get(logs::logs))
        .route("/v1/usage", get(usage::usage))
        .route("/metrics", get(metrics::serve))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see docs/api.md") })
        .with_state(state)
}

/// An error reply: a status code and `{"error": ..., "details": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorReply,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError { status, body: ErrorReply { error: error.into(), details: None } }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::UnknownProgram(_) => StatusCode::NOT_FOUND,
            ControlError::NothingNamed => StatusCode::BAD_REQUEST,
            ControlError::ReloadInProgress => StatusCode::CONFLICT,
            ControlError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ControlError::InvalidConfig(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let details = match &e {
            ControlError::InvalidConfig(d) => Some(d.clone()),
            _ => None,
        };
        ApiError { status, body: ErrorReply { error: e.to_string(), details } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
