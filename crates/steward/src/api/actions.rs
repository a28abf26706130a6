//! `POST /v1/start|stop|restart`, `/v1/scale`, `/v1/reload`, `/v1/shutdown`

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::ApiError;
use crate::protocol::{ActionReply, ActionRequest, ActionResult, ReloadReply, ScaleReply, ScaleRequest};
use crate::supervise::control::{wait_for, Target};
use crate::supervise::{Control, RollReport, ScaleTo, Verb};

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
    let timeout = parse_timeout(&req.timeout)?;
    let acted = control.action(verb, req.names, req.all).await?;
    let targets = acted.targets.into_iter().map(|t| (verb, t)).collect();
    let (mut results, rolled) = futures_util::future::join(
        wait_all(targets, req.no_wait, timeout),
        wait_rolls(acted.rolls, req.no_wait),
    )
    .await;
    results.extend(rolled);
    Ok(Json(ActionReply { results }))
}

/// The result of each process of each rolling restart, once the roll has ended (or, with
/// `no_wait`, nothing: the roll goes on and `steward events` shows it).
async fn wait_rolls(
    rolls: Vec<tokio::sync::oneshot::Receiver<RollReport>>,
    no_wait: bool,
) -> Vec<ActionResult> {
    if no_wait {
        return Vec::new();
    }
    let mut results = Vec::new();
    for report in futures_util::future::join_all(rolls).await {
        let Ok(report) = report else {
            results.push(ActionResult {
                name: String::new(),
                ok: false,
                state: "unknown".into(),
                pid: None,
                error: Some("the rolling restart ended without a report (steward is shutting down)".into()),
            });
            continue;
        };
        if !report.ok || report.processes.is_empty() {
            results.push(ActionResult {
                name: report.program.clone(),
                ok: report.ok,
                state: if report.ok { "running" } else { "failed" }.into(),
                pid: None,
                error: (!report.ok)
                    .then(|| format!("rolling restart of {}: {}", report.program, report.message)),
            });
        }
        for (name, pid) in report.processes {
            let state = if pid.is_some() { "running" } else { "stopped" };
            results.push(ActionResult { name, ok: true, state: state.into(), pid, error: None });
        }
    }
    results
}

/// Wait for all of them at once: a slow stop does not delay the others' verdicts.
async fn wait_all(
    targets: Vec<(Verb, Target)>,
    no_wait: bool,
    timeout: Option<Duration>,
) -> Vec<ActionResult> {
    let waits = targets.into_iter().map(|(verb, mut t)| async move {
        let status = t.status.get();
        if no_wait {
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
    futures_util::future::join_all(waits).await
}

fn parse_timeout(timeout: &Option<String>) -> Result<Option<Duration>, ApiError> {
    match timeout {
        Some(t) => steward_core::units::parse_duration(t)
            .map(Some)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("timeout: {e}"))),
        None => Ok(None),
    }
}

pub async fn scale(
    State(control): State<Control>,
    Json(req): Json<ScaleRequest>,
) -> Result<Json<ScaleReply>, ApiError> {
    let to = match (req.instances, req.by) {
        (Some(n), None) => ScaleTo::Exactly(n),
        (None, Some(d)) => ScaleTo::By(d),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "give `instances` or `by`, one of them")),
    };
    let timeout = parse_timeout(&req.timeout)?;
    let scaled = control.scale(req.name.clone(), to).await?;
    let results = wait_all(scaled.targets, req.no_wait, timeout).await;
    Ok(Json(ScaleReply { name: req.name, from: scaled.from, to: scaled.to, results }))
}

pub async fn reload(State(state): State<super::ApiState>) -> Result<Json<ReloadReply>, ApiError> {
    let diff = state.control.reload().await?;
    // The dashboard's sessions follow the tokens of the config as reloaded.
    if let Some(tokens) = state.tokens.as_ref().filter(|_| diff.needs_restart.iter().any(|s| s == "[api]")) {
        tokens.reread();
    }
    Ok(Json(ReloadReply {
        added: diff.added,
        removed: diff.removed,
        changed: diff.changed,
        unchanged: diff.unchanged,
        needs_restart: diff.needs_restart,
    }))
}

#[derive(serde::Deserialize)]
pub struct ShutdownParams {
    #[serde(default)]
    wait: bool,
}

/// 202 at once; with `?wait=true`, 200 and a body that ends once every program has stopped.
/// A client that only waits for the end need not follow every program's events for it: at
/// 5,000 programs that was 10,000 lines to write and parse while the machine stops them.
pub async fn shutdown(
    State(control): State<Control>,
    Query(p): Query<ShutdownParams>,
) -> Result<Response, ApiError> {
    control.shutdown().await?;
    if !p.wait {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let gone = futures_util::stream::unfold(Some(control), |control| async move {
        control?.closed().await;
        None::<(Result<bytes::Bytes, std::convert::Infallible>, _)>
    });
    Ok(Body::from_stream(gone).into_response())
}
