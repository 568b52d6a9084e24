//! `/config` (admins): the running config with where each value came from, and a reload now.

use axum::Json;
use axum::extract::State;

use crate::error::AppError;
use crate::service::Actor;
use crate::service::running_config::RunningConfig;
use crate::state::AppState;

pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<RunningConfig>, AppError> {
    Ok(Json(state.services.running_config(&actor)?))
}

/// What SIGHUP does: the file read again and applied, or refused (409, with the reason).
pub async fn reload(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<serde_json::Value>, AppError> {
    let changes = state.services.reload_config(&actor).await?;
    Ok(Json(serde_json::json!({ "changes": changes })))
}
