//! `/pause`: read, pause (PUT) and lift (DELETE) the pause.

use std::collections::HashMap;

use app::pause::{PauseRequest, PauseStatus};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};

use super::extract::{body, query};
use crate::error::AppError;
use crate::ids::{EnvName, optional};
use crate::service::{Actor, PauseOrder};
use crate::state::AppState;

pub async fn status(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<PauseStatus>, AppError> {
    Ok(Json(state.services.pause_status(&actor).await?))
}

pub async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    request: Result<Json<PauseRequest>, JsonRejection>,
) -> Result<Json<PauseStatus>, AppError> {
    let order = PauseOrder::parse(&body(request)?)?;
    Ok(Json(state.services.pause(&actor, &order).await?))
}

pub async fn unpause(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<PauseStatus>, AppError> {
    let q = query(q)?;
    let environment = optional(q.get("environment").map(String::as_str), EnvName::parse)?;
    Ok(Json(
        state.services.unpause(&actor, environment.as_ref()).await?,
    ))
}
