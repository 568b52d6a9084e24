//! The way in: the REST API under `/api/v1` (one file per domain) and the page's server
//! functions (`pages.rs`). Each handler reads the actor and typed inputs (`extract.rs`), calls one
//! service method and shapes the answer; nothing here decides anything.

mod access;
mod audit;
mod catalog;
mod deployments;
pub mod doc;
mod events;
pub mod extract;
mod guard;
pub mod login;
mod pages;
mod pause;
mod promotion;
mod running_config;
mod webhooks;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post};

use crate::error::AppError;
use crate::state::AppState;

pub use guard::{guard, security_headers};
pub use pages::Pages;

/// Every REST endpoint: its path under `/api/v1` and the methods it answers. The router is built
/// from this table, and the access tests walk it (every path, every method, without credentials:
/// 401), so a new endpoint cannot be added unguarded without a test noticing.
pub fn table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/health", get(catalog::health)),
        ("/ready", get(catalog::ready)),
        ("/openapi.json", get(openapi)),
        ("/environments", get(catalog::environments)),
        ("/projects", get(catalog::projects)),
        ("/projects/{project}/builds", get(catalog::builds)),
        ("/projects/{project}/stacks", get(catalog::stacks)),
        ("/projects/{project}/promote", post(promotion::promote)),
        ("/projects/{project}/rollback", get(promotion::rollback)),
        // A POST: it makes a change set in the environment's account; the GET is for API tokens
        // only (a cross-site link sends a person's cookie with a GET).
        (
            "/projects/{project}/preview",
            post(promotion::preview).get(promotion::preview_by_query),
        ),
        (
            "/projects/{project}/stacks/{environment}/continue-rollback",
            post(promotion::continue_rollback),
        ),
        ("/promotion", get(promotion::matrix)),
        (
            "/deployments",
            get(deployments::list).post(deployments::start),
        ),
        ("/deployments/{id}", get(deployments::one)),
        ("/deployments/{id}/cancel", post(deployments::cancel)),
        ("/deployments/{id}/approve", post(deployments::approve)),
        ("/deployments/{id}/discard", post(deployments::discard)),
        ("/events", get(events::stream)),
        (
            "/pause",
            get(pause::status).put(pause::pause).delete(pause::unpause),
        ),
        ("/audit", get(audit::audit)),
        ("/jenkins/builds", get(catalog::jenkins_builds)),
        ("/me", get(access::me)),
        ("/tokens", get(access::list).post(access::create)),
        ("/tokens/{id}", delete(access::revoke)),
        ("/sessions", delete(access::end_sessions)),
        ("/webhooks", get(webhooks::list)),
        ("/config", get(running_config::show)),
        ("/config/reload", post(running_config::reload)),
    ]
}

pub fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .fallback(not_found)
}

/// The REST paths (under `/api/v1`) of [`table`].
pub fn paths() -> Vec<&'static str> {
    table().into_iter().map(|(path, _)| path).collect()
}

/// `GET /api/v1/openapi.json`: the API described ([`doc`]), made once.
async fn openapi() -> axum::Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(doc::document);
    axum::Json(DOCUMENT.clone())
}

/// `GET /metrics`: the Prometheus text (not behind login; see `metrics_listen`). OpenMetrics'
/// content type to a scraper that asks for it (Prometheus does), the classic text format's
/// otherwise — the same text parses as both.
pub async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> impl axum::response::IntoResponse {
    let openmetrics = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = match openmetrics {
        true => crate::metrics::CONTENT_TYPE,
        false => crate::metrics::TEXT_CONTENT_TYPE,
    };
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        crate::metrics::render(state.services.hub().subscribers()),
    )
}

/// The request's id — the caller's `X-Request-Id` when it is a sane one, else a new one — on the
/// span every log line of the request is in, and on the answer.
pub async fn request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".to_owned())
}
