//! What every handler reads from a request, read one way: who is asking ([`Actor`]), path
//! segments, query strings and JSON bodies — rejections answered in the JSON error shape.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;

use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;

/// Who is asking: the actor the guard (`auth::guard`) found for this request, for the REST API
/// and the page's server functions alike. A request that did not pass the guard has none: 401.
pub fn actor(request: &Parts, _state: &AppState) -> Result<Actor, AppError> {
    request
        .extensions
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| AppError::Unauthorized("log in first".into()))
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        actor(parts, state)
    }
}

/// One path segment, as text (parsed into its id by the handler).
pub fn segment(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    path.map(|Path(p)| p)
        .map_err(|e| AppError::BadRequest(format!("the path is not right: {}", e.body_text())))
}

/// The query string as name → value.
pub fn query(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, AppError> {
    query.map(|Query(q)| q).map_err(|e| {
        AppError::BadRequest(format!("the query string is not right: {}", e.body_text()))
    })
}

/// A JSON body, or a 400 that says what is wrong with it.
pub fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(b)| b).map_err(|e| {
        AppError::BadRequest(format!("the request body is not right: {}", e.body_text()))
    })
}
