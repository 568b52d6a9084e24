//! `/events`: the live event stream (server-sent events), resumable with `Last-Event-ID`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;

pub async fn stream(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let hub = state.services.hub();
    // Ahead of this replica: the shared store says whether that id was ever given out.
    let newest_shared = match last_id {
        Some(last) if hub.is_ahead(last) => state
            .auth
            .store()
            .newest_live_event()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the newest shared live event; a snapshot instead");
                None
            }),
        _ => None,
    };
    crate::live::stream(
        hub,
        &actor.person().id,
        last_id,
        newest_shared,
        state.services.active(&actor),
    )
    .await
}
