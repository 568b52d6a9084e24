//! `/webhooks`: the configured webhooks and their newest deliveries (admins).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};

use super::extract::query;
use crate::error::AppError;
use crate::ids::Limit;
use app::model::WebhooksView;

use crate::service::Actor;
use crate::state::AppState;

/// `?limit=…` (1-1000, default 50) deliveries, newest first.
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<WebhooksView>, AppError> {
    let q = query(q)?;
    let limit = Limit::parse("limit", q.get("limit").map(String::as_str))?;
    Ok(Json(state.services.webhooks(&actor, limit).await?))
}
