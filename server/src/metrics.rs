//! `GET /metrics`: the deployer's health in the Prometheus text format — deployments by outcome
//! and environment and how long they took, AWS calls by service, operation and error code (every
//! attempt, so retries and throttling show), open event streams, cache hits, webhook deliveries.
//!
//! One registry per process (metrics are about the process, as Prometheus scrapes it); the
//! counting functions are free functions so that any layer counts without carrying a handle.
//! AWS calls are counted by an interceptor on every SDK client ([`AwsCalls`]), not by each caller.

use std::sync::LazyLock;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    environment: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCall {
    service: String,
    operation: String,
    /// `none`, an AWS error code (`Throttling`, `ValidationError`, …), `timeout` or `connection`.
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsOperation {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookup {
    cache: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivery {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StackNotification {
    environment: String,
    watched: String,
}

struct Metrics {
    registry: Registry,
    deployments: Family<Outcome, Counter>,
    durations: Family<Outcome, Histogram>,
    aws_calls: Family<AwsCall, Counter>,
    throttles: Family<AwsOperation, Counter>,
    subscribers: Gauge,
    caches: Family<CacheLookup, Counter>,
    webhooks: Family<Delivery, Counter>,
    stack_notifications: Family<StackNotification, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("deployer");
    let deployments = Family::<Outcome, Counter>::default();
    registry.register(
        "deployments",
        "Deployments that ended, by environment and outcome (succeeded, failed, refused, cancelled)",
        deployments.clone(),
    );
    let durations = Family::<Outcome, Histogram>::new_with_constructor(|| {
        Histogram::new([
            5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
        ])
    });
    registry.register(
        "deployment_duration_seconds",
        "How long deployments took, from the request to the end",
        durations.clone(),
    );
    let aws_calls = Family::<AwsCall, Counter>::default();
    registry.register(
        "aws_calls",
        "AWS API attempts (retries included), by service, operation and error code (none: it worked)",
        aws_calls.clone(),
    );
    let throttles = Family::<AwsOperation, Counter>::default();
    registry.register(
        "aws_throttles",
        "AWS API attempts refused for going too fast (Throttling, TooManyRequests, SlowDown, …)",
        throttles.clone(),
    );
    let subscribers = Gauge::default();
    registry.register(
        "event_stream_subscribers",
        "Live event streams (pages, CLIs) open on this process",
        subscribers.clone(),
    );
    let caches = Family::<CacheLookup, Counter>::default();
    registry.register(
        "cache_requests",
        "Cache lookups by cache (stack_cards, build_listings) and result (hit, miss)",
        caches.clone(),
    );
    let webhooks = Family::<Delivery, Counter>::default();
    registry.register(
        "webhook_deliveries",
        "Webhook delivery attempts by outcome (delivered, retried, given_up; abandoned: the webhook was removed from the config)",
        webhooks.clone(),
    );
    let stack_notifications = Family::<StackNotification, Counter>::default();
    registry.register(
        "stack_notifications",
        "Stack events heard from an environment's queue (CloudFormation → SNS → SQS), by environment and whether a deployment here was watching the stack",
        stack_notifications.clone(),
    );
    Metrics {
        stack_notifications,
        registry,
        deployments,
        durations,
        aws_calls,
        throttles,
        subscribers,
        caches,
        webhooks,
    }
});

/// A deployment ended.
pub fn deployment_ended(environment: &str, outcome: &str, seconds: f64) {
    let labels = Outcome {
        environment: environment.to_owned(),
        outcome: outcome.to_owned(),
    };
    METRICS.deployments.get_or_create(&labels).inc();
    METRICS
        .durations
        .get_or_create(&labels)
        .observe(seconds.max(0.0));
}

pub fn cache(cache: &str, hit: bool) {
    METRICS
        .caches
        .get_or_create(&CacheLookup {
            cache: cache.to_owned(),
            result: if hit { "hit" } else { "miss" }.to_owned(),
        })
        .inc();
}

/// A stack event arrived on an environment's queue; `watched`: a deployment here was waiting on
/// that stack (and was woken).
pub fn stack_notification(environment: &str, watched: bool) {
    METRICS
        .stack_notifications
        .get_or_create(&StackNotification {
            environment: environment.to_owned(),
            watched: if watched { "yes" } else { "no" }.to_owned(),
        })
        .inc();
}

pub fn webhook_delivery(outcome: &str) {
    METRICS
        .webhooks
        .get_or_create(&Delivery {
            outcome: outcome.to_owned(),
        })
        .inc();
}

fn aws_call(service: &str, operation: &str, error: &str) {
    METRICS
        .aws_calls
        .get_or_create(&AwsCall {
            service: service.to_owned(),
            operation: operation.to_owned(),
            error: error.to_owned(),
        })
        .inc();
    if is_throttling(error) {
        METRICS
            .throttles
            .get_or_create(&AwsOperation {
                service: service.to_owned(),
                operation: operation.to_owned(),
            })
            .inc();
    }
}

/// The error codes AWS uses for "slow down".
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// The text `GET /metrics` answers; `subscribers` is read at scrape time.
pub fn render(subscribers: usize) -> String {
    METRICS
        .subscribers
        .set(i64::try_from(subscribers).unwrap_or(i64::MAX));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    out
}

/// The content type of [`render`]'s text, to a scraper that accepts OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format's content type, for everyone else (curl, older scrapers).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counts every attempt of every call of the SDK client it is added to.
#[derive(Debug)]
pub struct AwsCalls;

impl Intercept for AwsCalls {
    fn name(&self) -> &'static str {
        "deployer metrics: AWS calls"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let error = match context.response() {
            Some(response) if response.status().is_success() => "none".to_owned(),
            Some(response) => error_code(
                response.headers().get("x-amzn-errortype"),
                response.body().bytes(),
            )
            .unwrap_or_else(|| format!("http_{}", response.status().as_u16())),
            None => match context.output_or_error() {
                Some(Err(e)) if e.is_timeout_error() => "timeout".to_owned(),
                _ => "connection".to_owned(),
            },
        };
        aws_call(service, operation, &error);
        Ok(())
    }
}

/// The error code of an AWS error answer: the `x-amzn-ErrorType` header (JSON protocols), or the
/// body's `<Code>` (query/XML protocols) or `__type` / `code` (JSON).
fn error_code(header: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    let clean = |code: &str| {
        let code = code.split(':').next().unwrap_or(code);
        let code = code.rsplit('#').next().unwrap_or(code).trim();
        (!code.is_empty() && code.len() <= 100).then(|| code.to_owned())
    };
    if let Some(code) = header.and_then(clean) {
        return Some(code);
    }
    let body = std::str::from_utf8(body?).ok()?;
    if let Some(start) = body.find("<Code>") {
        let rest = &body[start + 6..];
        return clean(&rest[..rest.find("</Code>")?]);
    }
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    ["__type", "code", "Code"]
        .iter()
        .find_map(|k| json[*k].as_str())
        .and_then(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_each_protocol() {
        let xml = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(error_code(None, Some(xml)).as_deref(), Some("Throttling"));
        let json = br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"x"}"#;
        assert_eq!(
            error_code(None, Some(json)).as_deref(),
            Some("QueueDoesNotExist")
        );
        assert_eq!(
            error_code(
                Some("ThrottlingException:http://internal.amazon.com/"),
                None
            )
            .as_deref(),
            Some("ThrottlingException")
        );
        assert_eq!(error_code(None, Some(b"<html>")), None);
    }
}
