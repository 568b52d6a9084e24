//! Errors at the request boundary.
//!
//! Policy: handlers return [`AppError`]; each variant maps to one HTTP status and a JSON body
//! `{"error":{"code","message"}}` written for people. AWS errors are logged in full where they
//! happen ([`AwsFailure::from_sdk`]) and reach the browser only as a summary: what the deployer
//! was doing and AWS's error code. Internal errors are logged and shown as a generic message.

use app::error::{ErrorBody, ErrorCode, ErrorResponse};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::aws::AwsFailure;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Nobody is logged in (no session or token, or an expired or revoked one).
    #[error("{0}")]
    Unauthorized(String),
    /// Logged in, without the right this needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The request is understood but cannot be carried out (e.g. an undeployable build).
    #[error("{0}")]
    Refused(String),
    /// The action has a consequence the caller must confirm first.
    #[error("{0}")]
    ConfirmationRequired(String),
    /// Deployments in scope are paused.
    #[error("{}", .0.explain())]
    Paused(app::pause::Pause),
    /// The stack already has an active deployment (its id).
    #[error("{message}")]
    Busy { message: String, id: String },
    /// The deployer is at a limit (e.g. open event streams); retrying later works.
    #[error("{0}")]
    Unavailable(String),
    /// The caller asks too often or too much at once (per person); retrying later works.
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Conflict(id) => AppError::Busy {
                message: format!("deployment {id} is already active on this stack"),
                id,
            },
            crate::store::StoreError::Paused(pause) => AppError::Paused(pause),
            crate::store::StoreError::Duplicate(message) => AppError::Conflict(message),
            other => AppError::Internal(other.into()),
        }
    }
}

impl AppError {
    /// The kind of failure; its HTTP status is the code's ([`ErrorCode::http_status`]), the one
    /// mapping both ways in use.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::Conflict(_) | AppError::Busy { .. } => ErrorCode::Conflict,
            AppError::ConfirmationRequired(_) => ErrorCode::ConfirmationRequired,
            AppError::Refused(_) => ErrorCode::Refused,
            AppError::Paused(_) => ErrorCode::Paused,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::TooMany(_) => ErrorCode::TooManyRequests,
            AppError::Aws(_) => ErrorCode::AwsUnavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            AppError::NotFound(m) => ErrorBody::new(ErrorCode::NotFound, m.clone()),
            AppError::BadRequest(m) => ErrorBody::new(ErrorCode::BadRequest, m.clone()),
            AppError::Unauthorized(m) => ErrorBody::new(ErrorCode::Unauthorized, m.clone()),
            AppError::Forbidden(m) => ErrorBody::new(ErrorCode::Forbidden, m.clone()),
            AppError::Conflict(m) => ErrorBody::new(ErrorCode::Conflict, m.clone()),
            AppError::Refused(m) => ErrorBody::new(ErrorCode::Refused, m.clone()),
            AppError::Paused(pause) => ErrorBody::paused(pause),
            AppError::Busy { message, id } => ErrorBody {
                deployment_id: Some(id.clone()),
                ..ErrorBody::new(ErrorCode::Conflict, message.clone())
            },
            AppError::ConfirmationRequired(m) => {
                ErrorBody::new(ErrorCode::ConfirmationRequired, m.clone())
            }
            AppError::Unavailable(m) => ErrorBody::new(ErrorCode::Unavailable, m.clone()),
            AppError::TooMany(m) => ErrorBody::new(ErrorCode::TooManyRequests, m.clone()),
            AppError::Aws(f) => ErrorBody::new(ErrorCode::AwsUnavailable, f.to_string()),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                ErrorBody::new(
                    ErrorCode::Internal,
                    "internal error; see the deployer's log",
                )
            }
        }
    }
}

impl From<AppError> for ErrorBody {
    fn from(error: AppError) -> Self {
        error.body()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status(), Json(ErrorResponse { error: self.body() })).into_response()
    }
}

/// The body limit's own 413 is plain text; every error the deployer answers is JSON.
pub async fn too_large_as_json(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    let body = ErrorBody::new(
        ErrorCode::BadRequest,
        format!(
            "the request body is larger than the {} bytes the deployer accepts",
            crate::MAX_BODY_BYTES
        ),
    );
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(ErrorResponse { error: body }),
    )
        .into_response()
}

/// A server function's failure answers with the status of its error's code, as the REST API
/// does. Leptos answers every server-function error 500 (its own argument errors included); the
/// body is our [`ErrorBody`], so the status is read back from its code. Only error answers of
/// server functions (marked by Leptos' `serverfnerror` header) are read, and they are small.
pub async fn server_fn_status(response: Response) -> Response {
    if !response.headers().contains_key("serverfnerror") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
        return (parts, axum::body::Body::empty()).into_response();
    };
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(&bytes)
        && let Ok(status) = StatusCode::from_u16(error.code.http_status())
    {
        parts.status = status;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// What a panic in a request answers: a 500 in the JSON error shape. The panic's text goes to the
/// log only (it may name internals).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(panic = panic_text(&*panic), "a request panicked");
    let body = ErrorBody::new(
        ErrorCode::Internal,
        "internal error; see the deployer's log",
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(ErrorResponse { error: body }),
    )
        .into_response()
}

/// The message of a caught panic, when it carried one.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs a request's work so that a panic in it becomes an internal error rather than a task that
/// never answers (a server function whose panic hung the page's stream forever).
pub async fn guarded<T>(
    work: impl std::future::Future<Output = Result<T, ErrorBody>>,
) -> Result<T, ErrorBody> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            tracing::error!(panic = panic_text(&*panic), "a page's request panicked");
            Err(ErrorBody::new(
                ErrorCode::Internal,
                "internal error; see the deployer's log",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_request_answers_a_json_500() {
        let app = crate::harden(axum::Router::new().route(
            "/boom",
            get(|| async {
                if "a".len() == 1 {
                    panic!("comparison function does not implement a total order");
                }
                "never"
            }),
        ));
        let request = axum::http::Request::get("/boom")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: ErrorResponse = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::Internal);
        assert!(
            !body.error.message.contains("total order"),
            "internals stay in the log"
        );
    }

    #[tokio::test]
    async fn a_panic_in_a_page_request_becomes_an_error_not_a_hang() {
        let answer: Result<u8, ErrorBody> = guarded(async {
            if "a".len() == 1 {
                panic!("boom");
            }
            Ok(1)
        })
        .await;
        assert_eq!(answer.unwrap_err().code, ErrorCode::Internal);
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_before_it_is_read() {
        let app = crate::harden(axum::Router::new().route(
            "/echo",
            axum::routing::post(|body: String| async move { body.len().to_string() }),
        ));
        let big = "x".repeat(crate::MAX_BODY_BYTES + 1);
        let request = axum::http::Request::post("/echo")
            .body(Body::from(big))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
