//! The error every answer shares, REST and server functions alike: a code the page and scripts
//! act on (the HTTP status follows from it), a message written for people, and what a caller
//! needs to act on some of them (the pause that refused, the deployment already active).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What kind of failure an API error is; the HTTP status follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    BadRequest,
    /// No session or token, or one that is expired or revoked (HTTP 401).
    Unauthorized,
    /// Logged in, without the right this needs; the message names the right (HTTP 403).
    Forbidden,
    Conflict,
    Refused,
    ConfirmationRequired,
    /// Deployments are paused (HTTP 423).
    Paused,
    AwsUnavailable,
    /// The deployer is at a limit (e.g. open event streams), or could not be reached; try again
    /// shortly (HTTP 503).
    Unavailable,
    /// The caller asks for this too often or too much at once; try again shortly (HTTP 429).
    TooManyRequests,
    Internal,
}

impl ErrorCode {
    /// The code as the wire spells it (`not_found`, `paused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Refused => "refused",
            ErrorCode::ConfirmationRequired => "confirmation_required",
            ErrorCode::Paused => "paused",
            ErrorCode::AwsUnavailable => "aws_unavailable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status of an answer with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::Conflict | ErrorCode::ConfirmationRequired => 409,
            ErrorCode::Refused => 422,
            ErrorCode::Paused => 423,
            ErrorCode::Unavailable => 503,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::AwsUnavailable => 502,
            ErrorCode::Internal => 500,
        }
    }
}

/// The body of every error answer: `{"error":{"code","message"}}` on the REST API (the server
/// functions send the inner object), plus what a script needs to act on some of them: the pause
/// that refused a deploy (423: its reason, actor, since and environment) and the deployment
/// already active on the stack (409).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[error("{message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            reason: None,
            actor: None,
            since: None,
            environment: None,
            deployment_id: None,
        }
    }

    /// A 423: deployments in scope are paused.
    pub fn paused(pause: &crate::pause::Pause) -> Self {
        ErrorBody {
            reason: Some(pause.reason.clone()),
            actor: Some(pause.actor.clone()),
            since: Some(pause.since),
            environment: pause.environment.clone(),
            ..ErrorBody::new(ErrorCode::Paused, pause.explain())
        }
    }

    /// A 409: the stack already has an active deployment.
    pub fn busy(message: impl Into<String>, active: impl Into<String>) -> Self {
        ErrorBody {
            deployment_id: Some(active.into()),
            ..ErrorBody::new(ErrorCode::Conflict, message)
        }
    }

    /// What a person sees above the message: what kind of "no" this is.
    pub fn title(&self) -> &'static str {
        match self.code {
            ErrorCode::NotFound => "Not found",
            ErrorCode::BadRequest => "Not a valid request",
            ErrorCode::Unauthorized => "Not logged in",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::Conflict if self.deployment_id.is_some() => "Busy",
            ErrorCode::Conflict => "Not possible now",
            ErrorCode::Refused => "Refused",
            ErrorCode::ConfirmationRequired => "Needs confirmation",
            ErrorCode::Paused => "Paused",
            ErrorCode::AwsUnavailable => "AWS did not answer",
            ErrorCode::Unavailable => "Unavailable",
            ErrorCode::TooManyRequests => "Too many at once",
            ErrorCode::Internal => "Internal error",
        }
    }
}

/// Server functions answer failures with the same body, so the page can tell paused (and why)
/// from busy (and by which deployment), not found, refused and invalid.
impl FromServerFnError for ErrorBody {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(message) => ErrorBody::new(
                ErrorCode::Unavailable,
                format!("the deployer could not be reached ({message}); is it running?"),
            ),
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => ErrorBody::new(
                ErrorCode::BadRequest,
                format!("the request is not right: {m}"),
            ),
            // On the server, what could not be decoded is the request's JSON arguments; in the
            // browser, it is the server's answer.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(m) => ErrorBody::new(
                ErrorCode::BadRequest,
                format!("the request is not right: {m}"),
            ),
            #[cfg(not(feature = "ssr"))]
            ServerFnErrorErr::Deserialization(m) => ErrorBody::new(
                ErrorCode::Internal,
                format!("the deployer's answer could not be read: {m}"),
            ),
            ServerFnErrorErr::Response(m) => ErrorBody::new(
                ErrorCode::Internal,
                format!("the deployer's answer could not be read: {m}"),
            ),
            other => ErrorBody::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_round_trips_through_the_server_function_encoding() {
        let body = ErrorBody::busy("web in DEV already has an active deployment: d-1", "d-1");
        let back = ErrorBody::de(body.ser());
        assert_eq!(back, body);
        assert_eq!(back.title(), "Busy");
        assert_eq!(back.code.http_status(), 409);
        let wire = serde_json::to_value(back.code).unwrap();
        assert_eq!(wire.as_str(), Some(back.code.as_str()));
    }

    #[test]
    fn an_unreachable_server_reads_as_unavailable() {
        let e = ErrorBody::from_server_fn_error(ServerFnErrorErr::Request("refused".into()));
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("could not be reached"));
    }
}
