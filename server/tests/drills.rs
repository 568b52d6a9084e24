//! Fault drills that take under a minute, against moto: a flood of deploy requests racing for one
//! stack, and a corpus of bad input. Each ends with the server still serving.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn a_hundred_concurrent_deploys_of_one_stack_accept_exactly_one() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let requests = (0..100).map(|_| h.request_deploy("web", "DEV", "web-master-1"));
    let answers = futures::future::join_all(requests).await;
    let accepted: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(accepted.len(), 1, "exactly one accepted");
    let id = accepted[0]["id"].as_str().unwrap();
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::ACCEPTED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body["error"]["deployment_id"], id,
            "each 409 names it: {body}"
        );
    }
    let detail = h.wait(id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_the_server_keeps_serving() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;

    let deploy = |body: serde_json::Value| h.post("/api/v1/deployments", body);
    let cases: Vec<(&str, (StatusCode, serde_json::Value))> = vec![
        (
            "unknown project",
            deploy(json!({"project": "nope", "environment": "DEV", "build": "web-master-1"})).await,
        ),
        (
            "unknown environment",
            deploy(json!({"project": "web", "environment": "XXX", "build": "web-master-1"})).await,
        ),
        (
            "a path as a build",
            deploy(json!({"project": "web", "environment": "DEV", "build": "../x"})).await,
        ),
        (
            "control characters",
            deploy(json!({"project": "web", "environment": "DEV", "build": "web-\u{0}\u{7}-1"}))
                .await,
        ),
        (
            "a 100 KB build id",
            deploy(json!({"project": "web", "environment": "DEV", "build": "x".repeat(100_000)}))
                .await,
        ),
        (
            "a 30 KB build id",
            deploy(json!({"project": "web", "environment": "DEV", "build": "x".repeat(30_000)}))
                .await,
        ),
        ("a missing field", deploy(json!({"project": "web"})).await),
        (
            "the wrong type",
            deploy(json!({"project": 1, "environment": [], "build": null})).await,
        ),
        (
            "not JSON",
            h.send_raw("POST", "/api/v1/deployments", "{\"project\": ")
                .await,
        ),
        (
            "an oversized body",
            h.send_raw("POST", "/api/v1/deployments", &"x".repeat(200_000))
                .await,
        ),
        (
            "an empty pause reason",
            h.pause(json!({"reason": "  "})).await,
        ),
        (
            "a long pause reason",
            h.pause(json!({"reason": "x".repeat(501)})).await,
        ),
        (
            "a pause reason with control characters",
            h.pause(json!({"reason": "a\u{1b}[31mred"})).await,
        ),
        ("limit 0", h.get("/api/v1/deployments?limit=0").await),
        ("limit -1", h.get("/api/v1/deployments?limit=-1").await),
        (
            "a huge limit",
            h.get("/api/v1/deployments?limit=4294967295").await,
        ),
        (
            "a word for a limit",
            h.get("/api/v1/deployments?limit=ten").await,
        ),
        ("audit limit -1", h.audit("limit=-1").await),
        ("builds limit 0", h.builds("web", "limit=0").await),
        (
            "an unknown deployment",
            h.get("/api/v1/deployments/d-nope").await,
        ),
        (
            "a 60 KB deployment id (the most a URI carries)",
            h.get(&format!("/api/v1/deployments/{}", "x".repeat(60_000)))
                .await,
        ),
        (
            "an encoded path as a deployment id",
            h.get("/api/v1/deployments/..%2F..%2Fetc").await,
        ),
        (
            "cancel of an unknown deployment",
            h.post("/api/v1/deployments/d-nope/cancel", json!({})).await,
        ),
    ];
    for (what, (status, body)) in &cases {
        assert!(status.is_client_error(), "{what}: {status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: a message says why: {body}");
    }

    // Odd Last-Event-IDs: the stream opens (with a snapshot) rather than failing.
    for id in ["abc", "-1", "99999999999999999999999", ""] {
        let status = h.events_status(id).await;
        assert_eq!(status, StatusCode::OK, "Last-Event-ID {id:?}");
    }

    // Bad artifacts: refused deployments that say why; the stack is never touched.
    h.put("web/web-master-2/template.yaml", "{{{ not: [yaml")
        .await;
    h.put("web/web-master-2/parameters.json", "{}").await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "refused", "{detail}");

    h.put("web/web-master-3/template.yaml", common::TEMPLATE)
        .await;
    let huge = format!("{{\"Greeting\": \"{}\"}}", "x".repeat(50 * 1024 * 1024));
    h.put("web/web-master-3/parameters.json", &huge).await;
    let detail = h.deploy("web", "DEV", "web-master-3").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains("parameters.json is 52428") && message.contains("bytes"),
        "{message}"
    );

    // A byte-order mark before the JSON is not an error.
    h.put("web/web-master-4/template.yaml", common::TEMPLATE)
        .await;
    h.put(
        "web/web-master-4/parameters.json",
        "\u{feff}{\"Greeting\": \"bom\"}",
    )
    .await;
    let detail = h.deploy("web", "DEV", "web-master-4").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");

    let (status, health) = h.get("/api/v1/health").await;
    assert_eq!((status, &health["status"]), (StatusCode::OK, &json!("ok")));
}

#[tokio::test]
async fn a_flood_of_page_loads_costs_one_aws_read_and_a_deploy_request_one_small_one() {
    let h = Harness::start_behind_proxy().await;
    let proxy = h.proxy.as_ref().unwrap();
    h.put_build("web", "web-master-1").await;
    h.cfn("DEV")
        .create_stack()
        .stack_name("DEV-WEB")
        .template_body(common::TEMPLATE)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Greeting")
                .parameter_value("hi")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = proxy.forwarded("DescribeStacks");
    let cards = futures::future::join_all((0..100).map(|_| h.card("web", "DEV"))).await;
    assert!(cards.iter().all(|c| c["exists"] == true));
    assert_eq!(
        proxy.forwarded("DescribeStacks") - before,
        3,
        "one read of each of web's three stacks (DEV, STG, PRD) for a hundred pages"
    );

    // A listing exists, and pages share it. A deploy request reads its one build folder fresh
    // (a cached listing — another replica's, or a moment old — never decides what is deployed):
    // one small ListObjectsV2 of that folder per request, never the project's whole listing.
    let (status, _) = h.builds("web", "").await;
    assert_eq!(status, StatusCode::OK);
    let listings = proxy.forwarded("ListObjectsV2");
    let project_listings = h.state.catalog().artifacts.listings("web");
    for n in 0..30 {
        let (status, body) = h
            .post(
                "/api/v1/deployments",
                json!({"project": "web", "environment": "DEV", "build": format!("web-master-{}", 100 + n)}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    assert_eq!(
        proxy.forwarded("ListObjectsV2") - listings,
        30,
        "one read of the asked-for folder per deploy request"
    );
    assert_eq!(
        h.state.catalog().artifacts.listings("web"),
        project_listings,
        "unknown builds did not re-list the project"
    );
}
