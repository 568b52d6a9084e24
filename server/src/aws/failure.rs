//! AWS failures in words: what the deployer was doing, AWS's code and message, and whether a
//! retry can help.

use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::error::SdkError;

/// An AWS call that failed, summarised for people: what we were doing, AWS's error code and
/// AWS's own message — the one the CloudFormation console shows (which subnet, which parameter).
/// AWS messages about stack operations carry no secrets (NoEcho values never reach them).
/// The SDK's full error goes to the log when this is made.
#[derive(Clone, Debug, thiserror::Error)]
#[error("AWS failed while {doing} ({code}){}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct AwsFailure {
    pub doing: String,
    pub code: String,
    pub message: Option<String>,
    pub retryable: bool,
}

/// How much of an unexpected answer's body is quoted in a failure.
const QUOTED_BODY: usize = 300;

impl AwsFailure {
    pub fn from_sdk<E>(doing: impl Into<String>, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let doing = doing.into();
        let (code, message, retryable) = match &error {
            SdkError::ServiceError(e) => {
                let status = e.raw().status().as_u16();
                match e.err().code() {
                    Some(code) => {
                        let retryable = status >= 500 || sdk_retries(code);
                        (
                            code.to_owned(),
                            e.err().message().map(str::to_owned),
                            retryable,
                        )
                    }
                    // No AWS error in the answer (an HTML page, a proxy's error, an emulator's
                    // traceback): say what came back instead of "unknown error".
                    None => (
                        format!("HTTP {status}"),
                        Some(describe_body(status, e.raw().body().bytes())),
                        status >= 500 || status == 429,
                    ),
                }
            }
            SdkError::TimeoutError(_) => (
                "timeout".to_owned(),
                Some("no answer in time; the request may or may not have reached AWS".into()),
                true,
            ),
            SdkError::DispatchFailure(f) => (
                "AWS could not be reached".to_owned(),
                Some(if f.is_timeout() {
                    "connecting timed out".to_owned()
                } else if f.is_io() {
                    "the connection failed or was refused".to_owned()
                } else {
                    "the request could not be sent".to_owned()
                }),
                true,
            ),
            SdkError::ResponseError(r) => {
                let status = r.raw().status().as_u16();
                (
                    "unreadable response".to_owned(),
                    Some(describe_body(status, r.raw().body().bytes())),
                    true,
                )
            }
            _ => ("request could not be built".to_owned(), None, false),
        };
        // An answer the caller acts on (a validation error, "no updates") is not a warning; a
        // failure to get one is. The whole SDK error, headers and body, only at debug.
        if retryable {
            tracing::warn!(doing, code, message, "AWS call failed");
        } else {
            tracing::info!(doing, code, message, "AWS answered no");
        }
        tracing::debug!(doing, error = ?aws_sdk_cloudformation::error::DisplayErrorContext(&error), "AWS call failed");
        AwsFailure {
            doing,
            code,
            message,
            retryable,
        }
    }
}

/// Whether the AWS SDK retries an error of this code: throttling (`Throttling`,
/// `RequestLimitExceeded`, `SlowDown`, `TooManyRequestsException`, …) or transient
/// (`RequestTimeout`), by the SDK's own lists — the server errors it also retries (500, 502, 503,
/// 504) are those of status 5xx.
pub fn sdk_retries(code: &str) -> bool {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code)
}

/// What an answer without an AWS error said: its status and the start of its body.
fn describe_body(status: u16, body: Option<&[u8]>) -> String {
    let text = body
        .map(String::from_utf8_lossy)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let quoted: String = text.chars().take(QUOTED_BODY).collect();
    let more = if text.chars().count() > QUOTED_BODY {
        "…"
    } else {
        ""
    };
    if quoted.is_empty() {
        format!("HTTP {status} with an empty body and no AWS error")
    } else {
        format!("HTTP {status} with no AWS error, saying: {quoted}{more}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_carries_aws_s_message() {
        let failure = AwsFailure {
            doing: "executing the change set of DEV-X".into(),
            code: "InvalidSubnetID.NotFound".into(),
            message: Some("The subnet ID 'subnet-123' does not exist".into()),
            retryable: false,
        };
        assert_eq!(
            failure.to_string(),
            "AWS failed while executing the change set of DEV-X (InvalidSubnetID.NotFound): \
             The subnet ID 'subnet-123' does not exist"
        );
    }

    /// Whether an AWS answer of this status and error code is retryable.
    fn retryable(status: u16, code: &str) -> bool {
        use aws_sdk_cloudformation::error::ErrorMetadata;
        use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
        use aws_smithy_types::body::SdkBody;
        let error =
            DescribeStacksError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        AwsFailure::from_sdk("reading", SdkError::service_error(error, raw)).retryable
    }

    #[test]
    fn throttling_and_transient_codes_are_those_the_sdk_retries() {
        // Every code the SDK's classifier retries (aws-runtime's lists), whatever the status.
        use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
        for code in THROTTLING_ERRORS.iter().chain(TRANSIENT_ERRORS) {
            assert!(retryable(400, code), "{code}");
        }
        for code in [
            "TooManyRequestsException",
            "EC2ThrottledException",
            "RequestTimeout",
        ] {
            assert!(retryable(400, code), "{code}");
        }
        for code in ["ValidationError", "AccessDenied", "AlreadyExistsException"] {
            assert!(!retryable(400, code), "{code}");
        }
        assert!(retryable(503, "ServiceUnavailable"));
        assert!(retryable(500, "InternalFailure"));
    }

    #[test]
    fn an_answer_without_an_aws_error_is_quoted() {
        let long = format!("<html>{}</html>", "x".repeat(1000));
        let said = describe_body(500, Some(long.as_bytes()));
        assert!(
            said.starts_with("HTTP 500 with no AWS error, saying: <html>xxx"),
            "{said}"
        );
        assert!(said.ends_with('…'));
        assert_eq!(
            describe_body(502, None),
            "HTTP 502 with an empty body and no AWS error"
        );
    }
}
