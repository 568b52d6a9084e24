//! `/promotion` (the matrix), `/projects/{project}/promote`, the rollback verdict, the preview,
//! and getting a stuck stack moving (`…/stacks/{environment}/continue-rollback`).

use std::collections::HashMap;

use app::model::{
    ContinueRollback, PreviewChange, PreviewRequest, PromoteRequest, Promotion, RollbackVerdict,
};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::extract::{body, query, segment};
use crate::error::AppError;
use crate::ids::{BuildName, EnvName, ProjectName, optional};
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

/// `?environment=…&build=…`: the verdict on deploying that build (by default the rollback's).
pub async fn rollback(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<RollbackVerdict>, AppError> {
    let project = ProjectName::parse(&segment(project)?)?;
    let q = query(q)?;
    let environment = EnvName::parse(q.get("environment").map_or("", String::as_str))?;
    let build = optional(q.get("build").map(String::as_str), BuildName::parse)?;
    Ok(Json(
        state
            .services
            .rollback_verdict(&actor, &project, &environment, build.as_ref())
            .await?,
    ))
}

/// `GET …/preview?environment=…&build=…`, kept for scripts: an API token only — a person's
/// cookie rides along on any site's link to a GET, and a preview makes a change set.
pub async fn preview_by_query(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<PreviewChange>>, AppError> {
    if actor.via() == app::auth::Via::Session {
        return Err(AppError::Forbidden(
            "a preview makes a change set: from a browser it is a POST with \
             {\"environment\", \"build\"} (a GET could be sent by any site's link)"
                .into(),
        ));
    }
    let project = ProjectName::parse(&segment(project)?)?;
    let q = query(q)?;
    let environment = EnvName::parse(q.get("environment").map_or("", String::as_str))?;
    let build = BuildName::parse(q.get("build").map_or("", String::as_str))?;
    Ok(Json(
        state
            .services
            .preview(&actor, &project, &environment, &build)
            .await?,
    ))
}

/// `{"environment", "build"}`: the change set's changes, without deploying.
pub async fn preview(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
    request: Result<Json<PreviewRequest>, JsonRejection>,
) -> Result<Json<Vec<PreviewChange>>, AppError> {
    let project = ProjectName::parse(&segment(project)?)?;
    let request = body(request)?;
    let environment = EnvName::parse(&request.environment)?;
    let build = BuildName::parse(&request.build)?;
    Ok(Json(
        state
            .services
            .preview(&actor, &project, &environment, &build)
            .await?,
    ))
}

/// `{"skip": [...]}` (optional): 202 with the stack's card, its rollback going on.
pub async fn continue_rollback(
    State(state): State<AppState>,
    actor: Actor,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Result<Json<ContinueRollback>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Path((project, environment)) = path
        .map_err(|e| AppError::BadRequest(format!("the path is not right: {}", e.body_text())))?;
    let project = ProjectName::parse(&project)?;
    let environment = EnvName::parse(&environment)?;
    // The body is optional; none means "skip nothing".
    let request = match request {
        Err(JsonRejection::MissingJsonContentType(_)) => ContinueRollback::default(),
        other => body(other)?,
    };
    let card = state
        .services
        .continue_rollback(&actor, &project, &environment, &request.skip)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(card)))
}
