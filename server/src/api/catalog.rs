//! `/health`, `/ready`, `/environments`, `/projects` and a project's builds and stacks.

use std::collections::HashMap;

use app::model::{Build, Environment, Project, StackCard};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::extract::{query, segment};
use crate::error::AppError;
use crate::ids::ProjectName;
use crate::service::{Actor, BuildsFilter};
use crate::state::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// For the load balancer: 200 once the first sweep has listed every project, 503 before (the
/// same report either way). `health` says the process is alive; this, that people may come.
pub async fn ready(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let report = state.catalog().readiness.report();
    let status = if report.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

pub async fn environments(State(state): State<AppState>, actor: Actor) -> Json<Vec<Environment>> {
    Json(state.services.environments(&actor))
}

pub async fn projects(State(state): State<AppState>, actor: Actor) -> Json<Vec<Project>> {
    Json(state.services.projects(&actor))
}

pub async fn builds(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<Build>>, AppError> {
    let project = ProjectName::parse(&segment(project)?)?;
    let q = query(q)?;
    let filter = BuildsFilter::parse(
        q.get("branch").map(String::as_str),
        q.get("limit").map(String::as_str),
    )?;
    Ok(Json(
        state.services.builds(&actor, &project, &filter).await?,
    ))
}

pub async fn stacks(
    State(state): State<AppState>,
    actor: Actor,
    project: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<StackCard>>, AppError> {
    let project = ProjectName::parse(&segment(project)?)?;
    Ok(Json(state.services.stacks(&actor, &project).await?))
}

/// `GET /jenkins/builds`: the builds panel.
pub async fn jenkins_builds(
    State(state): State<AppState>,
    actor: Actor,
) -> Json<app::jenkins::JenkinsBuilds> {
    Json(state.services.jenkins_builds(&actor))
}
