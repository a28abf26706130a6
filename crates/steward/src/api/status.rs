//! `GET /v1/status`

use axum::extract::State;
use axum::Json;

use super::types::StatusReply;
use super::ApiError;
use crate::supervise::Control;

pub async fn status(State(control): State<Control>) -> Result<Json<StatusReply>, ApiError> {
    Ok(Json(control.status().await?))
}
