//! The REST API under `/api/v1`: JSON for scripts, the acceptance checks and the UI where it fits.

use std::collections::HashMap;

use app::deployment::{CancelRequest, Deployment, DeploymentDetail, StartDeployment};
use app::model::{Build, Environment, Project, StackCard};
use app::pause::{AuditAction, AuditEntry, AuditQuery, PauseRequest, PauseStatus};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::Filter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/environments", get(environments))
        .route("/projects", get(projects))
        .route("/projects/{project}/builds", get(builds))
        .route("/projects/{project}/stacks", get(stacks))
        .route("/deployments", get(list_deployments).post(start_deployment))
        .route("/deployments/{id}", get(deployment))
        .route("/deployments/{id}/cancel", post(cancel_deployment))
        .route("/events", get(events))
        .route("/pause", get(pause_status).put(pause).delete(unpause))
        .route("/audit", get(audit))
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

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(b)| b).map_err(|e| {
        AppError::BadRequest(format!("the request body is not right: {}", e.body_text()))
    })
}

async fn start_deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<StartDeployment>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    let request = body(request)?;
    let actor = state.actor(&headers);
    let deployment = state.engine.start(request, &actor).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

async fn cancel_deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Result<Json<CancelRequest>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    // The body is optional; an empty one means "no confirmation given".
    let request = match request {
        Err(JsonRejection::MissingJsonContentType(_)) => CancelRequest::default(),
        other => body(other)?,
    };
    let actor = state.actor(&headers);
    let deployment = state
        .engine
        .cancel(&id, request.confirm_delete, &actor)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

async fn list_deployments(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Deployment>>, AppError> {
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => 50,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(AppError::BadRequest(format!(
                    "limit must be a whole number from 1 to 1000, got {raw:?}"
                )));
            }
        },
    };
    let text = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    if let Some(p) = text("project") {
        state.deployer.project(&p)?;
    }
    if let Some(e) = text("environment")
        && state.deployer.config.environment(&e).is_none()
    {
        return Err(AppError::NotFound(format!(
            "no environment is called {e:?}"
        )));
    }
    let filter = Filter {
        project: text("project"),
        environment: text("environment"),
        limit: Some(limit),
    };
    Ok(Json(state.engine.list(&filter).await?))
}

async fn deployment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeploymentDetail>, AppError> {
    Ok(Json(state.deployment(&id).await?))
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Every active deployment, as the store has them (not the newest N of the history).
    let active = state
        .engine
        .store()
        .active()
        .await?
        .into_iter()
        .map(|r| r.deployment)
        .collect();
    crate::live::stream(state.engine.hub(), last_id, active).ok_or_else(|| {
        AppError::Unavailable(format!(
            "{} event streams are open, the most this deployer serves; try again shortly",
            crate::live::MAX_SUBSCRIBERS
        ))
    })
}

async fn pause_status(State(state): State<AppState>) -> Result<Json<PauseStatus>, AppError> {
    Ok(Json(state.engine.pause_status().await?))
}

async fn pause(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<PauseRequest>, JsonRejection>,
) -> Result<Json<PauseStatus>, AppError> {
    let request = body(request)?;
    let actor = state.actor(&headers);
    Ok(Json(state.engine.pause(request, &actor).await?))
}

async fn unpause(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<PauseStatus>, AppError> {
    let actor = state.actor(&headers);
    let environment = query.get("environment").map(String::as_str);
    Ok(Json(state.engine.unpause(environment, &actor).await?))
}

async fn audit(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    Ok(Json(state.audit(audit_query(&query)?).await?))
}

/// Reads `limit`, `before` and the filters of the audit trail from a query string.
pub fn audit_query(query: &HashMap<String, String>) -> Result<AuditQuery, AppError> {
    let text = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let number = |k: &str, min: i64, max: i64| -> Result<Option<i64>, AppError> {
        match text(k) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(AppError::BadRequest(format!(
                    "{k} must be a whole number from {min} to {max}, got {raw:?}"
                ))),
            },
        }
    };
    let action = text("action");
    if let Some(a) = &action
        && AuditAction::parse(a).is_none()
    {
        let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        return Err(AppError::BadRequest(format!(
            "action {a:?} is not one of {}",
            known.join(", ")
        )));
    }
    Ok(AuditQuery {
        environment: text("environment"),
        project: text("project"),
        action,
        actor: text("actor"),
        before: number("before", 1, i64::MAX)?,
        limit: number("limit", 1, 1000)?.map(|n| n as u32),
    })
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".to_owned())
}
