//! Several replicas on one PostgreSQL database (`scripts/test` runs this file with
//! `DEPLOYER_TEST_POSTGRES`; on SQLite — one process by design — there is nothing to test, and
//! each test says so and returns). moto holds a create open with its `Custom::` gate
//! ([`common::GATED_TEMPLATE`]), the way a long CloudFormation operation stays in progress.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Harness, Sse, TEMPLATE, read_until};
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
    common::answer(state, request).await
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
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
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
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
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
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

/// Serves a replica on a free port; its base URL.
async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, deployer::router(state)).into_future());
    base
}

#[tokio::test]
async fn a_viewer_of_any_replica_sees_every_deployment_and_the_pause_and_resumes_on_another() {
    let h = Harness::start().await;
    if !postgres(&h) {
        return;
    }
    let b = second_replica(&h).await;
    let (base_a, base_b) = (serve(h.state.clone()).await, serve(b).await);
    let client = h.http_client();
    h.put("web/web-master-1/template.yaml", TEMPLATE).await;
    h.put(
        "web/web-master-1/parameters.json",
        r#"{"Greeting": "replicas"}"#,
    )
    .await;

    // A browser on B; the deployment starts on (and is driven by) A.
    let on_b = client
        .get(format!("{base_b}/api/v1/events"))
        .send()
        .await
        .unwrap();
    let (status, started) = deploy_on(&h.state, "web-master-1").await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let mut got_stack = false;
    let events = read_until(on_b, |e| {
        got_stack |= e.event == "stack";
        got_stack
    })
    .await;
    let deployment: Vec<&Sse> = events.iter().filter(|e| e.event == "deployment").collect();
    assert!(deployment.len() >= 8, "every step reaches B: {events:?}");
    assert!(deployment.iter().all(|e| e.data["deployment"]["id"] == id));
    assert_eq!(
        deployment.last().unwrap().data["deployment"]["status"],
        "succeeded"
    );
    let shared: Vec<&Sse> = events
        .iter()
        .filter(|e| e.event == "deployment" || e.event == "stack")
        .collect();
    assert!(
        shared.iter().all(|e| e.id.is_some()),
        "shared events have ids: {events:?}"
    );
    let ids: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    // The browser loses B and reconnects to A with the id B gave it: nothing missed, nothing twice.
    let on_a = client
        .get(format!("{base_a}/api/v1/events"))
        .header("Last-Event-ID", ids[2].to_string())
        .send()
        .await
        .unwrap();
    let last = *ids.last().unwrap();
    let replay = read_until(on_a, |e| e.id == Some(last)).await;
    let replay_ids: Vec<u64> = replay.iter().filter_map(|e| e.id).collect();
    assert_eq!(replay_ids, ids[3..].to_vec(), "A resumes where B left off");

    // A pause asked on A reaches B's viewers at once.
    let on_b = client
        .get(format!("{base_b}/api/v1/events"))
        .header("Last-Event-ID", last.to_string())
        .send()
        .await
        .unwrap();
    let paused = client
        .put(format!("{base_a}/api/v1/pause"))
        .json(&json!({"reason": "replica drill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let events = read_until(on_b, |e| e.event == "pause").await;
    let pause = events.iter().find(|e| e.event == "pause").unwrap();
    assert_eq!(pause.data["reason"], "replica drill");
    assert!(pause.id.unwrap() > last);
}

#[tokio::test]
async fn a_build_one_replica_finds_is_listed_by_the_others_at_once() {
    // A sweeps often; B never by itself (as when the bucket's notification went to another
    // replica), and its listing is reused for LISTING_TTL (20 s): B must hear it from A.
    let h = Harness::start_configured(|config, _| {
        config.artifacts.watch_interval = Duration::from_millis(300);
    })
    .await;
    if !postgres(&h) {
        return;
    }
    let mut config = h.config_again();
    config.artifacts.watch_interval = Duration::from_secs(3600);
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let b = deployer::state(config, aws).await.unwrap();
    h.put_build("web", "web-master-1").await;
    let builds_on_b = || async {
        let request = Request::get("/api/v1/projects/web/builds")
            .header(
                "authorization",
                format!("Bearer {}", common::BOOTSTRAP_TOKEN),
            )
            .header("host", "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        let response = deployer::router(b.clone()).oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    assert_eq!(
        builds_on_b().await.as_array().unwrap().len(),
        1,
        "B has listed the project"
    );

    // A finds the new build; B lists it well before its own listing would be stale.
    h.put_build("web", "web-master-2").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = builds_on_b().await;
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == "web-master-2")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never listed web-master-2: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
