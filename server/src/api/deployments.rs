//! `/deployments`: start, list, read, cancel; approve or discard one waiting in a protected
//! environment.

use std::collections::HashMap;

use app::deployment::{
    ApprovalDecision, CancelRequest, Deployment, DeploymentDetail, StartDeployment,
};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::extract::{body, query, segment};
use crate::error::AppError;
use crate::ids::{DeploymentId, Limit};
use crate::service::{Actor, DeploymentsFilter, StartRequest};
use crate::state::AppState;

pub async fn start(
    State(state): State<AppState>,
    actor: Actor,
    request: Result<Json<StartDeployment>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    let request = StartRequest::parse(&body(request)?)?;
    let deployment = state.services.start(&actor, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

pub async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
    request: Result<Json<CancelRequest>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    let id = DeploymentId::parse(&segment(id)?)?;
    // The body is optional; an empty one means "no confirmation given".
    let request = match request {
        Err(JsonRejection::MissingJsonContentType(_)) => CancelRequest::default(),
        other => body(other)?,
    };
    let deployment = state
        .services
        .cancel(&actor, &id, request.confirm_delete)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

pub async fn approve(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, AppError> {
    decide(state, actor, id, ApprovalDecision::Approved).await
}

pub async fn discard(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, AppError> {
    decide(state, actor, id, ApprovalDecision::Discarded).await
}

/// 202: the decision is kept; the deployment goes on (or ends) as its driver reads it.
async fn decide(
    state: AppState,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
    decision: ApprovalDecision,
) -> Result<impl IntoResponse, AppError> {
    let id = DeploymentId::parse(&segment(id)?)?;
    let deployment = state.services.decide(&actor, &id, decision).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<Deployment>>, AppError> {
    let q = query(q)?;
    let text = |k: &str| q.get(k).map(String::as_str);
    let filter = DeploymentsFilter::parse(
        text("project"),
        text("environment"),
        Limit::parse("limit", text("limit"))?,
    )?;
    Ok(Json(state.services.deployments(&actor, &filter).await?))
}

pub async fn one(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<DeploymentDetail>, AppError> {
    let id = DeploymentId::parse(&segment(id)?)?;
    Ok(Json(state.services.deployment(&actor, &id).await?))
}
