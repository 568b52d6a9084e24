//! The way in: the REST API under `/api/v1` (one file per domain) and the page's server
//! functions (`pages.rs`). Each handler reads the actor and typed inputs (`extract.rs`), calls one
//! service method and shapes the answer; nothing here decides anything.

mod catalog;
mod deployments;
mod events;
pub mod extract;
mod pages;
mod pause;
mod trail;

use axum::Router;
use axum::routing::{get, post};

use crate::error::AppError;
use crate::state::AppState;

pub use pages::Pages;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(catalog::health))
        .route("/environments", get(catalog::environments))
        .route("/projects", get(catalog::projects))
        .route("/projects/{project}/builds", get(catalog::builds))
        .route("/projects/{project}/stacks", get(catalog::stacks))
        .route(
            "/deployments",
            get(deployments::list).post(deployments::start),
        )
        .route("/deployments/{id}", get(deployments::one))
        .route("/deployments/{id}/cancel", post(deployments::cancel))
        .route("/events", get(events::stream))
        .route(
            "/pause",
            get(pause::status).put(pause::pause).delete(pause::unpause),
        )
        .route("/audit", get(trail::audit))
        .fallback(not_found)
}

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".to_owned())
}
