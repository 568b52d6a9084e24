//! `/promotion` (the matrix) and `/projects/{project}/promote`.

use app::model::{PromoteRequest, Promotion};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::extract::{body, segment};
use crate::error::AppError;
use crate::ids::{EnvName, ProjectName};
use crate::service::Actor;
use crate::state::AppState;

pub async fn matrix(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Promotion>>, AppError> {
    Ok(Json(state.services.promotion(&actor).await?))
}

/// 202 with the deployment of the build the previous environment runs; 409 when there is
/// nothing to promote, saying why.
pub async fn promote(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
    request: Result<Json<PromoteRequest>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    let project = ProjectName::parse(&segment(project)?)?;
    let environment = EnvName::parse(&body(request)?.environment)?;
    let deployment = state
        .services
        .promote(&actor, &project, &environment)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}
