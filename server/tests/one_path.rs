//! One path in: the REST API and the page's server functions are adapters over the same
//! service methods, so the same bad input gets the same answer from both — same status, same
//! error code, same words — and the page can tell paused from busy from not found.

mod common;

use axum::http::StatusCode;
use common::{GATED_TEMPLATE, Harness};
use serde_json::{Value, json};

/// The REST answer's error (`{"error": {...}}`) and the server function's (the same object).
fn same_error(rest: &(StatusCode, Value), page: &(StatusCode, Value)) {
    assert_eq!(rest.0, page.0, "status: REST {} vs page {}", rest.1, page.1);
    assert_eq!(
        rest.1["error"]["code"], page.1["code"],
        "{} vs {}",
        rest.1, page.1
    );
    assert_eq!(
        rest.1["error"]["message"], page.1["message"],
        "the same words by either way in"
    );
}

#[tokio::test]
async fn an_over_limit_audit_query_is_refused_by_both_ways_in() {
    let h = Harness::start().await;
    let rest = h.audit("limit=4294967295").await;
    let page = h
        .server_fn("get_audit", json!({"query": {"limit": 4_294_967_295u32}}))
        .await;
    assert_eq!(rest.0, StatusCode::BAD_REQUEST, "{}", rest.1);
    same_error(&rest, &page);
    assert!(
        page.1["message"]
            .as_str()
            .unwrap()
            .contains("from 1 to 1000")
    );

    // In range, both answer the trail.
    let (status, entries) = h
        .server_fn("get_audit", json!({"query": {"limit": 1000}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    assert!(entries.is_array());
}

#[tokio::test]
async fn a_malformed_id_is_a_400_and_an_unknown_one_a_404_by_both_ways_in() {
    let h = Harness::start().await;
    let rest = h.deployment("d-bad%20id%2F..").await;
    let page = h
        .server_fn("get_deployment", json!({"id": "d-bad id/.."}))
        .await;
    assert_eq!(rest.0, StatusCode::BAD_REQUEST, "{}", rest.1);
    same_error(&rest, &page);
    assert!(
        page.1["message"]
            .as_str()
            .unwrap()
            .contains("not a valid deployment id")
    );

    let rest = h.deployment("d-0000").await;
    let page = h.server_fn("get_deployment", json!({"id": "d-0000"})).await;
    assert_eq!(rest.0, StatusCode::NOT_FOUND, "{}", rest.1);
    same_error(&rest, &page);

    let long = "w".repeat(300);
    let rest = h.stacks(&long).await;
    let page = h
        .server_fn("get_stack", json!({"project": long, "environment": "DEV"}))
        .await;
    assert_eq!(rest.0, StatusCode::BAD_REQUEST, "{}", rest.1);
    assert_eq!(page.0, StatusCode::BAD_REQUEST, "{}", page.1);
    assert!(
        page.1["message"]
            .as_str()
            .unwrap()
            .contains("at most 64 characters")
    );
}

#[tokio::test]
async fn an_unknown_environment_is_a_404_by_both_ways_in() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let rest = h
        .get("/api/v1/deployments?project=web&environment=QA")
        .await;
    let page = h
        .server_fn(
            "get_activity",
            json!({"project": "web", "environment": "QA"}),
        )
        .await;
    assert_eq!(rest.0, StatusCode::NOT_FOUND, "{}", rest.1);
    same_error(&rest, &page);

    let rest = h.request_deploy("web", "QA", "web-master-1").await;
    let page = h
        .server_fn(
            "request_deployment",
            json!({"project": "web", "environment": "QA", "build": "web-master-1"}),
        )
        .await;
    assert_eq!(rest.0, StatusCode::NOT_FOUND, "{}", rest.1);
    same_error(&rest, &page);

    let rest = h.pause(json!({"reason": "x", "environment": "QA"})).await;
    let page = h
        .server_fn(
            "pause_deployments",
            json!({"reason": "x", "environment": "QA", "cancel_in_flight": false}),
        )
        .await;
    assert_eq!(rest.0, StatusCode::NOT_FOUND, "{}", rest.1);
    same_error(&rest, &page);
}

#[tokio::test]
async fn the_page_can_tell_paused_from_busy() {
    let h = Harness::start().await;
    h.put_build_of("web", "web-master-1", GATED_TEMPLATE).await;
    let held = h.start_deployment("web-master-1").await;

    // Busy: the stack has an active deployment, named in the answer.
    let (status, busy) = h
        .server_fn(
            "request_deployment",
            json!({"project": "web", "environment": "DEV", "build": "web-master-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert_eq!(busy["code"], "conflict");
    assert_eq!(busy["deployment_id"], held.as_str());

    // Paused: the reason and who paused come with the refusal.
    let (status, _) = h
        .server_fn(
            "pause_deployments",
            json!({"reason": "release freeze", "environment": "STG", "cancel_in_flight": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, paused) = h
        .server_fn(
            "request_deployment",
            json!({"project": "web", "environment": "STG", "build": "web-master-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{paused}");
    assert_eq!(paused["code"], "paused");
    assert_eq!(paused["reason"], "release freeze");
    assert_eq!(paused["actor"], "tester");

    // The pause made through the page is audited with the actor read from the request.
    let (_, trail) = h.audit("action=pause").await;
    assert_eq!(trail[0]["actor"], "tester");
    assert_eq!(trail[0]["reason"], "release freeze");
}

#[tokio::test]
async fn arguments_the_page_cannot_have_sent_are_a_400_not_a_500() {
    let h = Harness::start().await;
    // Leptos decodes the arguments before any of our code runs; the answer still says what kind
    // of failure it is, with its status.
    let (status, body) = h
        .server_fn("get_audit", json!({"query": {"limit": "lots"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request");
    let (status, body) = h.server_fn("request_cancel", json!({"id": "d-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
