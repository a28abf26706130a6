//! `POST /v1/start|stop|restart`, `/v1/reload`, `/v1/shutdown`

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::ApiError;
use crate::protocol::{ActionReply, ActionRequest, ActionResult, ReloadReply};
use crate::supervise::control::wait_for;
use crate::supervise::{Control, Verb};

/// Beyond a program's own stop_timeout, how long an action waits for its state by default.
const EXTRA_WAIT: Duration = Duration::from_secs(30);

pub async fn start(control: State<Control>, req: Json<ActionRequest>) -> Result<Json<ActionReply>, ApiError> {
    act(Verb::Start, control, req).await
}

pub async fn stop(control: State<Control>, req: Json<ActionRequest>) -> Result<Json<ActionReply>, ApiError> {
    act(Verb::Stop, control, req).await
}

pub async fn restart(
    control: State<Control>,
    req: Json<ActionRequest>,
) -> Result<Json<ActionReply>, ApiError> {
    act(Verb::Restart, control, req).await
}

async fn act(
    verb: Verb,
    State(control): State<Control>,
    Json(req): Json<ActionRequest>,
) -> Result<Json<ActionReply>, ApiError> {
    if req.all && !req.names.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "give names or `all`, not both"));
    }
    let timeout = match &req.timeout {
        Some(t) => Some(
            steward_core::units::parse_duration(t)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("timeout: {e}")))?,
        ),
        None => None,
    };
    let targets = control.action(verb, req.names, req.all).await?;
    // Wait for all of them at once: a slow stop does not delay the others' verdicts.
    let waits = targets.into_iter().map(|mut t| async move {
        let status = t.status.borrow().clone();
        if req.no_wait {
            return ActionResult {
                name: t.name,
                ok: true,
                state: status.state.name().into(),
                pid: status.pid,
                error: None,
            };
        }
        let deadline = timeout.unwrap_or(t.stop_timeout + EXTRA_WAIT);
        match wait_for(verb, &mut t, deadline).await {
            Ok(s) => {
                ActionResult { name: t.name, ok: true, state: s.state.name().into(), pid: s.pid, error: None }
            }
            Err((s, why)) => ActionResult {
                error: Some(format!("{} did not {}: {why}", t.name, verb.name())),
                name: t.name,
                ok: false,
                state: s.state.name().into(),
                pid: s.pid,
            },
        }
    });
    let results = futures_util::future::join_all(waits).await;
    Ok(Json(ActionReply { results }))
}

pub async fn reload(State(control): State<Control>) -> Result<Json<ReloadReply>, ApiError> {
    let diff = control.reload().await?;
    Ok(Json(ReloadReply {
        added: diff.added,
        removed: diff.removed,
        changed: diff.changed,
        unchanged: diff.unchanged,
        needs_restart: diff.needs_restart,
    }))
}

pub async fn shutdown(State(control): State<Control>) -> Result<StatusCode, ApiError> {
    control.shutdown().await?;
    Ok(StatusCode::ACCEPTED)
}
