//! `/me` (who is asking, and what they may do) and `/tokens` (API tokens, admins only).

use app::auth::{CreatedToken, Me, NewToken, Token};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::{body, segment};
use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;

pub async fn me(actor: Actor) -> Json<Me> {
    Json(actor.me())
}

pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Token>>, AppError> {
    Ok(Json(state.services.tokens(&actor).await?))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    request: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let request = body(request)?;
    Ok((
        StatusCode::CREATED,
        Json(state.services.create_token(&actor, &request).await?),
    ))
}

/// `DELETE /api/v1/sessions?user=…` (admins): `{"ended": n}`.
pub async fn end_sessions(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<
        axum::extract::Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<app::auth::SessionsEnded>, AppError> {
    let q = super::extract::query(q)?;
    let user = q.get("user").map_or("", String::as_str);
    let ended = state.services.end_sessions(&actor, user).await?;
    Ok(Json(app::auth::SessionsEnded { ended }))
}

pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Token>, AppError> {
    let id = segment(id)?;
    Ok(Json(state.services.revoke_token(&actor, &id).await?))
}
