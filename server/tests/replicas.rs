//! Several replicas on one PostgreSQL database (`scripts/test` runs this file with
//! `DEPLOYER_TEST_POSTGRES`; on SQLite — one process by design — there is nothing to test, and
//! each test says so and returns). moto holds a create open with its `Custom::` gate
//! ([`common::GATED_TEMPLATE`]), the way a long CloudFormation operation stays in progress.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ACCOUNTS, Harness};
use deployer::AppState;
use deployer::aws::AwsClients;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A second replica on the harness's database and emulator.
async fn second_replica(h: &Harness) -> AppState {
    let config = h.config_again();
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    deployer::state(config, aws).await.unwrap()
}

async fn deploy_on(state: &AppState, build: &str) -> (StatusCode, Value) {
    let request = Request::post("/api/v1/deployments")
        .header(
            "authorization",
            format!("Bearer {}", common::BOOTSTRAP_TOKEN),
        )
        .header("content-type", "application/json")
        .header("host", "127.0.0.1")
        .body(Body::from(
            json!({"project": "web", "environment": "DEV", "build": build}).to_string(),
        ))
        .unwrap();
    let response = deployer::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn gated_build(h: &Harness, build: &str) {
    h.put(
        &format!("web/{build}/template.yaml"),
        common::GATED_TEMPLATE,
    )
    .await;
    h.put(
        &format!("web/{build}/parameters.json"),
        r#"{"Greeting": "replicas"}"#,
    )
    .await;
}

/// Waits until the deployment watches CloudFormation; returns the stack id.
async fn watching(h: &Harness, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        if d["step"] == "watch" {
            let out = h
                .cfn("DEV")
                .describe_stacks()
                .stack_name("DEV-WEB")
                .send()
                .await
                .unwrap();
            return out.stacks()[0].stack_id().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "never reached the watch step: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn postgres(h: &Harness) -> bool {
    let on = matches!(h.store, deployer::config::StoreLocation::Postgres(_));
    if !on {
        eprintln!("SQLite store: one process by design; replicas are tested on PostgreSQL");
    }
    on
}

#[tokio::test]
async fn two_replicas_racing_for_one_stack_start_exactly_one_deployment() {
    let h = Harness::start().await;
    if !postgres(&h) {
        return;
    }
    let b = second_replica(&h).await;
    gated_build(&h, "web-master-1").await;
    let (first, second) = tokio::join!(
        deploy_on(&h.state, "web-master-1"),
        deploy_on(&b, "web-master-1")
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    // And the pause, pressed on one replica, holds on the other.
    let won = if first.0 == StatusCode::ACCEPTED {
        &first.1
    } else {
        &second.1
    };
    let id = won["id"].as_str().unwrap().to_owned();
    let stack_id = watching(&h, &id).await;
    common::release_gate(&h.moto.endpoint, ACCOUNTS[0].1, &stack_id).await;
    h.wait(&id).await;
    h.pause(json!({"environment": "DEV", "reason": "replica drill"}))
        .await;
    gated_build(&h, "web-master-2").await;
    let (status, body) = deploy_on(&b, "web-master-2").await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
}

/// A replica that dies (its tasks stop, nothing is released): another takes its deployment over
/// once the lease runs out, re-attaches, and records the right outcome.
#[tokio::test]
async fn a_dead_replicas_deployment_is_taken_over_within_the_lease() {
    let h = Harness::start().await;
    if !postgres(&h) {
        return;
    }
    let b = second_replica(&h).await;
    gated_build(&h, "web-master-1").await;
    let (status, started) = deploy_on(&h.state, "web-master-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let stack_id = watching(&h, &id).await;

    let died = Instant::now();
    h.state.engine().abort_all();
    let b_name = b.engine().store().replica().to_owned();
    let deadline = died + deployer::store::LEASE + Duration::from_secs(10);
    loop {
        let record = b.engine().store().record(&id).await.unwrap().unwrap();
        if record.owner.as_deref() == Some(b_name.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not taken over: owner {:?}",
            record.owner
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("taken over {:?} after the replica died", died.elapsed());
    common::release_gate(&h.moto.endpoint, ACCOUNTS[0].1, &stack_id).await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

/// A replica stopped gracefully (SIGTERM in a rolling update) hands its deployments over at once.
#[tokio::test]
async fn a_replica_stopping_gracefully_hands_over_without_waiting_for_the_lease() {
    let h = Harness::start().await;
    if !postgres(&h) {
        return;
    }
    let b = second_replica(&h).await;
    gated_build(&h, "web-master-1").await;
    let (status, started) = deploy_on(&h.state, "web-master-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let stack_id = watching(&h, &id).await;

    let stopped = Instant::now();
    h.state.engine().hand_over().await;
    let b_name = b.engine().store().replica().to_owned();
    loop {
        let record = b.engine().store().record(&id).await.unwrap().unwrap();
        if record.owner.as_deref() == Some(b_name.as_str()) {
            break;
        }
        assert!(
            stopped.elapsed() < deployer::store::LEASE,
            "a handed-over deployment waited for the lease: owner {:?}",
            record.owner
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::release_gate(&h.moto.endpoint, ACCOUNTS[0].1, &stack_id).await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}
