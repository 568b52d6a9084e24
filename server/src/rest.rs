//! The REST API under `/api/v1`: JSON for scripts, the acceptance checks and the UI where it fits.

use std::collections::HashMap;

use app::model::{Build, Environment, Project, StackCard};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/environments", get(environments))
        .route("/projects", get(projects))
        .route("/projects/{project}/builds", get(builds))
        .route("/projects/{project}/stacks", get(stacks))
        .fallback(not_found)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn environments(State(state): State<AppState>) -> Json<Vec<Environment>> {
    Json(state.deployer.environments())
}

async fn projects(State(state): State<AppState>) -> Json<Vec<Project>> {
    Json(state.deployer.projects())
}

async fn builds(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Build>>, AppError> {
    let branch = query
        .get("branch")
        .map(String::as_str)
        .filter(|b| !b.is_empty());
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(AppError::BadRequest(format!(
                    "limit must be a whole number above 0, got {raw:?}"
                )));
            }
        },
    };
    Ok(Json(state.deployer.builds(&project, branch, limit).await?))
}

async fn stacks(
    State(state): State<AppState>,
    Path(project): Path<String>,
) -> Result<Json<Vec<StackCard>>, AppError> {
    Ok(Json(state.deployer.stacks(&project).await?))
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".to_owned())
}
