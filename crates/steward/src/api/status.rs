//! `GET /v1/status`

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::ApiError;
use crate::protocol::{GroupInfo, ProgramInfo, SocketInfo, StatusReply};
use crate::supervise::{Control, Snapshot};

/// JSON, or with `Accept: text/plain` the table `steward status` prints
/// ([`crate::protocol::status_table`]).
pub async fn status(
    State(control): State<Control>,
    State(sinks): State<crate::ship::Sinks>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let text = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with("text/plain")));
    let snapshot = control.snapshot().await?;
    // The table shows uptimes, not start times: 5,000 of those cost a third of the reply.
    let mut reply = reply_with(snapshot, SystemTime::now(), !text);
    reply.sinks = sinks.reports(false);
    Ok(match text {
        true => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], crate::protocol::status_table(&reply))
                .into_response()
        }
        false => Json(reply).into_response(),
    })
}

/// The supervisor's snapshot as `status` shows it, with uptimes as of `now`.
pub(crate) fn reply(snapshot: Snapshot, now: SystemTime) -> StatusReply {
    reply_with(snapshot, now, true)
}

/// [`reply`], with every `started_at` left out unless `start_times`.
fn reply_with(snapshot: Snapshot, now: SystemTime, start_times: bool) -> StatusReply {
    let groups = snapshot
        .groups
        .into_iter()
        .map(|g| {
            let members =
                snapshot.programs.iter().filter(|p| steward_core::config::group_of(&p.name) == g.name);
            let (mut running, mut total) = (0, 0);
            for p in members {
                total += 1;
                running += u32::from(p.status.state == steward_core::fsm::State::Running);
            }
            let sockets = g.sockets.into_iter().map(|(name, listen)| SocketInfo { name, listen }).collect();
            GroupInfo { name: g.name, instances: g.instances, running, total, sockets, rollout: g.rollout }
        })
        .collect();
    let programs = snapshot
        .programs
        .into_iter()
        .map(|p| {
            let s = p.status;
            let instance = p.name.split_once(':').and_then(|(_, i)| i.parse().ok());
            ProgramInfo {
                program: instance.map(|_| steward_core::config::group_of(&p.name).to_owned()),
                instance,
                name: p.name,
                state: s.state.name().into(),
                pid: s.pid,
                started_at: s
                    .since
                    .filter(|_| start_times)
                    .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                uptime_secs: s.since.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs_f64()),
                restarts: s.restarts,
                last_exit: s.last_exit.map(Into::into),
                last_error: s.last_error,
                health: p.health.map(|h| h.name().into()),
                waiting_for: p.waiting_for,
                version: p.version.as_ref().map(ToString::to_string),
            }
        })
        .collect();
    StatusReply { programs, groups, sinks: Vec::new() }
}
