//! `POST /v1/deploy`, `POST /v1/rollback`, `GET /v1/releases/{program}`: the deploy flow
//! ([`crate::deploy`]) over the API. A deploy answers once the new version proved itself or
//! was rolled back; it runs to its end even if the client goes away.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use steward_core::release::Version;

use super::ApiError;
use crate::deploy::{DeployError, Deployer, Outcome, Request, Wanted};
use crate::protocol::{DeployReply, DeployRequest, ReleasesReply, RollbackRequest};

pub async fn deploy(
    State(deployer): State<Deployer>,
    Json(req): Json<DeployRequest>,
) -> Result<Json<DeployReply>, ApiError> {
    let wanted = match (req.version, req.latest, req.file) {
        (Some(v), false, None) => {
            Wanted::Version(Version::parse(v.trim_start_matches('v')).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{v:?} is not a version (semver, like 1.4.0): {e}"),
                )
            })?)
        }
        (None, true, None) => Wanted::Latest,
        (None, false, Some(f)) => {
            let path = std::path::PathBuf::from(&f);
            if !path.is_absolute() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("file {f:?} must be an absolute path"),
                ));
            }
            Wanted::File(path)
        }
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "give one of `version`, `latest` or `file`")),
    };
    let request = Request { program: req.program, wanted, allow_downgrade: req.allow_downgrade };
    Ok(Json(reply(deployer.deploy(request).await?)))
}

pub async fn rollback(
    State(deployer): State<Deployer>,
    Json(req): Json<RollbackRequest>,
) -> Result<Json<DeployReply>, ApiError> {
    Ok(Json(reply(deployer.rollback(req.program).await?)))
}

pub async fn releases(
    State(deployer): State<Deployer>,
    Path(program): Path<String>,
) -> Result<Json<ReleasesReply>, ApiError> {
    let (info, history, installed) = deployer.versions(&program).await?;
    let text = |v: &Option<Version>| v.as_ref().map(ToString::to_string);
    Ok(Json(ReleasesReply {
        running: text(&info.active),
        current: text(&history.current),
        previous: text(&history.previous),
        floor: text(&history.floor),
        quarantined: history.quarantined.iter().map(ToString::to_string).collect(),
        installed: installed.iter().map(ToString::to_string).collect(),
        keep: info.spec.keep,
        source: info.spec.source.as_ref().map(crate::deploy::describe_source),
        program,
    }))
}

fn reply(o: Outcome) -> DeployReply {
    DeployReply {
        program: o.program,
        ok: o.ok,
        running: o.running.map(|v| v.to_string()),
        wanted: o.wanted.map(|v| v.to_string()),
        message: o.message,
        processes: o.processes,
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Control(c) => c.into(),
            DeployError::Refused(m) | DeployError::NoNews(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)
            }
            DeployError::Busy(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            DeployError::Failed(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
        }
    }
}
