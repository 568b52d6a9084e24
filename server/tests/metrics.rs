//! `GET /metrics`: open to Prometheus without login, in its text format, with the deployments,
//! the AWS calls (throttling included, counted by the SDK interceptor), open event streams and
//! caches; or only on `metrics_listen` when that is set.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::proxy::Fault;
use common::{Harness, TEMPLATE};

/// As Prometheus asks: OpenMetrics preferred.
async fn scrape(h: &Harness) -> String {
    let (status, headers, text) = h
        .anonymous(
            Request::get("/metrics")
                .header(
                    "accept",
                    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{headers:?}"
    );
    // Anyone else (curl) gets the classic text format's type, the same text.
    let (status, headers, plain) = h
        .anonymous(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    assert!(
        plain.contains("# TYPE deployer_aws_calls counter"),
        "{plain}"
    );
    text
}

/// The value of the sample whose line starts with `series` (0 when there is none).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn deployments_aws_calls_throttles_and_caches_are_counted_without_login() {
    let h = Harness::start_behind_proxy().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    // The registry is the process's; other tests in this binary count too: compare before/after.
    let before = scrape(&h).await;
    let succeeded = r#"deployer_deployments_total{environment="STG",outcome="succeeded"}"#;
    let throttled = r#"deployer_aws_calls_total{service="CloudFormation",operation="DescribeStacks",error="Throttling"}"#;

    h.proxy
        .as_ref()
        .unwrap()
        .inject("DescribeStacks", Fault::Throttle, 1);
    let done = h.deploy("web", "STG", "web-master-1").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let _ = h.card("web", "STG").await;
    let _ = h.card("web", "STG").await;

    let after = scrape(&h).await;
    assert_eq!(
        value(&after, succeeded) - value(&before, succeeded),
        1.0,
        "{after}"
    );
    assert!(
        after.contains(r#"deployer_deployment_duration_seconds_bucket{le="5.0",environment="STG",outcome="succeeded"}"#)
            || after.contains(r#"deployer_deployment_duration_seconds_bucket{environment="STG",outcome="succeeded",le="5.0"}"#),
        "{after}"
    );
    assert!(
        value(&after, throttled) >= 1.0,
        "the throttled attempt is counted with its error code: {after}"
    );
    assert!(
        value(
            &after,
            r#"deployer_aws_throttles_total{service="CloudFormation",operation="DescribeStacks"}"#
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            r#"deployer_aws_calls_total{service="CloudFormation",operation="CreateStack",error="none"}"#
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            r#"deployer_cache_requests_total{cache="stack_cards",result="hit"}"#
        ) >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("deployer_event_stream_subscribers 0"),
        "{after}"
    );
    assert!(after.trim_end().ends_with("# EOF"), "{after}");
}

#[tokio::test]
async fn with_metrics_listen_they_are_served_there_and_not_on_the_deployers_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start_configured(move |config, _| {
        config.metrics_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    let url = h.serve().await;
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..50 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the metrics address answers");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("deployer_aws_calls"));

    let main = http.get(format!("{url}/metrics")).send().await.unwrap();
    let status = main.status();
    let text = main.text().await.unwrap();
    assert!(
        !text.contains("deployer_aws_calls"),
        "not on the main address ({status})"
    );
}

#[tokio::test]
async fn every_answer_carries_its_request_id_the_callers_when_sane() {
    let h = Harness::start().await;
    let (_, headers, _) = h
        .anonymous(
            Request::get("/api/v1/health")
                .header("x-request-id", "ci-run-42.step-3")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers["x-request-id"], "ci-run-42.step-3");
    let (_, headers, _) = h
        .anonymous(
            Request::get("/api/v1/projects")
                .header("x-request-id", "<script>")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let made = headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        made.len(),
        36,
        "a new one (a UUID), not the caller's: {made}"
    );
}
