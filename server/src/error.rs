//! Errors at the request boundary.
//!
//! Policy: handlers return [`AppError`]; each variant maps to one HTTP status and a JSON body
//! `{"error":{"code","message"}}` written for people. AWS errors are logged in full where they
//! happen ([`AwsFailure::from_sdk`]) and reach the browser only as a summary: what the deployer
//! was doing and AWS's error code. Internal errors are logged and shown as a generic message.

use app::model::{ErrorBody, ErrorCode, ErrorResponse};
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
            other => AppError::Internal(other.into()),
        }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) | AppError::Busy { .. } | AppError::ConfirmationRequired(_) => {
                StatusCode::CONFLICT
            }
            AppError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Paused(_) => StatusCode::LOCKED,
            AppError::Aws(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            AppError::NotFound(m) => ErrorBody::new(ErrorCode::NotFound, m.clone()),
            AppError::BadRequest(m) => ErrorBody::new(ErrorCode::BadRequest, m.clone()),
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
