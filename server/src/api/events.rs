//! `/events`: the live event stream (server-sent events), resumable with `Last-Event-ID`. A
//! stream lasts only as long as the credentials it was opened with: the token or session is
//! checked again every [`RECHECK`], and the stream ends once it is revoked, expired or ended.

use std::time::Duration;

use app::auth::Via;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use futures::FutureExt;

use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;
use crate::store::Store;

/// How often an open stream's credentials are checked again: a revoked token or an ended
/// session stops receiving events within this long.
pub const RECHECK: Duration = Duration::from_secs(5);

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
    let ends = match credential(&state, &actor, &headers).await {
        Some(credential) => until_invalid(state.auth.store().clone(), credential).boxed(),
        // The bootstrap token (given at start, revoked by a restart) and the development user.
        None => futures::future::pending().boxed(),
    };
    crate::live::stream(
        hub,
        &actor.person().id,
        last_id,
        newest_shared,
        state.services.active(&actor),
        ends,
    )
    .await
}

/// What the stream's actor was authenticated with (the guard's choice, read again here).
enum Credential {
    /// An API token's hash.
    Token(String),
    /// A session's hash.
    Session(String),
}

async fn credential(state: &AppState, actor: &Actor, headers: &HeaderMap) -> Option<Credential> {
    match actor.via() {
        Via::Token => {
            let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            let secret = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))?;
            Some(Credential::Token(crate::auth::hash(secret.trim())))
        }
        Via::Session => {
            let name = crate::auth::session_cookie(&state.auth.config());
            let hashed = crate::auth::hash(&crate::auth::cookie(headers, name)?);
            // Without a live session behind the cookie the actor is the development user.
            match state.auth.store().session(&hashed).await {
                Ok(Some(_)) | Err(_) => Some(Credential::Session(hashed)),
                Ok(None) => None,
            }
        }
        Via::Bootstrap => None,
    }
}

/// Resolves once the credential is no longer valid (looked at every [`RECHECK`]). A store that
/// cannot answer ends nothing: it is asked again next time.
async fn until_invalid(store: Store, credential: Credential) {
    loop {
        tokio::time::sleep(RECHECK).await;
        let valid = match &credential {
            Credential::Token(hash) => store.token_active(hash).await,
            Credential::Session(hash) => store.session(hash).await.map(|s| s.is_some()),
        };
        match valid {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!("an event stream's token or session ended; so does the stream");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot check an event stream's credentials"),
        }
    }
}
