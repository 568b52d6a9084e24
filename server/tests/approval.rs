//! Protected environments against moto: an update stops at its change set, `awaiting_approval`,
//! until a person approves it (it executes) or discards it (the change set is deleted). The
//! wait survives a restart; a pause holds it; the person who asked may be refused.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::Harness;
use deployer::aws::AwsClients;
use deployer::config::Protection;
use serde_json::{Value, json};

/// PRD protected, and its deployments approved by someone other than the one who asked.
async fn protected_prd(by_another: bool) -> Harness {
    Harness::start_configured(move |config, _| protect(config, by_another)).await
}

fn protect(config: &mut deployer::config::Config, by_another: bool) {
    let prd = config
        .environments
        .iter_mut()
        .find(|e| e.name == "PRD")
        .unwrap();
    prd.protection = Some(Protection { by_another });
}

async fn as_token(h: &Harness, token: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    h.with_token(token, request).await
}

/// Deploys web-master-1 to PRD (a create runs straight on) and asks for web-master-2, which adds
/// a bucket; returns the waiting deployment.
async fn waiting_update(h: &Harness, requester: &str) -> Value {
    h.put_build("web", "web-master-1").await;
    h.put_build_of("web", "web-master-2", &common::template_with_a_bucket())
        .await;
    let created = h.deploy("web", "PRD", "web-master-1").await;
    assert_eq!(
        created["status"], "succeeded",
        "a create is not held: {created}"
    );
    let (status, started) = as_token(
        h,
        requester,
        "/api/v1/deployments",
        json!({"project": "web", "environment": "PRD", "build": "web-master-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let waiting = h.wait(started["id"].as_str().unwrap()).await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    waiting
}

async fn change_sets(h: &Harness) -> Vec<String> {
    h.cfn("PRD")
        .list_change_sets()
        .stack_name("PRD-WEB")
        .send()
        .await
        .unwrap()
        .summaries()
        .iter()
        .filter_map(|s| s.change_set_name().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_update_waits_with_its_change_set_and_another_person_approves_it() {
    let h = protected_prd(true).await;
    let requester = h.new_token("alice", "admin").await;
    let approver = h.new_token("bob", "admin").await;
    let waiting = waiting_update(&h, &requester).await;
    let id = waiting["id"].as_str().unwrap().to_owned();

    // What it would change, shown before anything is executed: the bucket is added.
    assert_eq!(waiting["step"], "approval");
    assert_eq!(waiting["approval"]["by_another"], true);
    assert_eq!(waiting["approval"]["decision"], Value::Null);
    let changes = waiting["change_set"]["changes"].as_array().unwrap();
    let bucket = changes
        .iter()
        .find(|c| c["logical_id"] == "Uploads")
        .unwrap_or_else(|| panic!("{waiting}"));
    assert_eq!(bucket["action"], "Add");
    assert_eq!(bucket["interrupts"], false);
    assert!(
        waiting["message"].as_str().unwrap().contains("alice"),
        "{waiting}"
    );
    assert_eq!(change_sets(&h).await, [format!("deployer-{id}")]);
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-1");
    // It is active: the stack takes no other deployment meanwhile.
    let (status, _) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "PRD", "build": "web-master-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The one who asked may not approve; a deployer without PRD may not either.
    let (status, refused) = as_token(
        &h,
        &requester,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another person"),
        "{refused}"
    );
    let dev_only = h.new_token("carol", "deployer").await;
    let (status, _) = as_token(
        &h,
        &dev_only,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another person approves: it executes and succeeds.
    let (status, approved) = as_token(
        &h,
        &approver,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{approved}");
    assert_eq!(approved["approval"]["decided_by"], "bob");
    let done = h.wait(&id).await;
    let done = if done["status"] == "awaiting_approval" {
        wait_past_approval(&h, &id).await
    } else {
        done
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["approval"]["decision"], "approved");
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-2");
    // Decided once: a second decision is a conflict.
    let (status, _) = as_token(
        &h,
        &approver,
        &format!("/api/v1/deployments/{id}/discard"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, audit) = h.audit("action=approve").await;
    assert_eq!(audit[0]["actor"], "bob", "{audit}");
    assert_eq!(audit[0]["deployment_id"], id.as_str());
}

/// The driver reads a decision at its next look: wait until it has.
async fn wait_past_approval(h: &Harness, id: &str) -> Value {
    for _ in 0..400 {
        let (_, d) = h.deployment(id).await;
        if d["status"] != "awaiting_approval" {
            return h.wait(id).await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deployment {id} stayed awaiting approval after it was decided");
}

#[tokio::test]
async fn discarding_deletes_the_change_set_and_leaves_the_stack_alone() {
    let h = protected_prd(false).await;
    let admin = h.token.clone();
    let waiting = waiting_update(&h, &admin).await;
    let id = waiting["id"].as_str().unwrap().to_owned();
    // Not unknown ids, and not deployments that are not waiting.
    let (status, _) = h
        .post(
            "/api/v1/deployments/d-00000000000000000000000000000000/discard",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, discarded) = h
        .post(&format!("/api/v1/deployments/{id}/discard"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{discarded}");
    let done = wait_past_approval(&h, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains("discarded by tester"),
        "{done}"
    );
    assert!(
        change_sets(&h).await.is_empty(),
        "the change set is deleted"
    );
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-1");
    let (status, _) = h
        .post(&format!("/api/v1/deployments/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Not protected: DEV deploys straight on.
    h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-2").await["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn a_pause_holds_the_approval_and_the_wait_survives_a_restart() {
    let mut h = protected_prd(false).await;
    let admin = h.token.clone();
    let waiting = waiting_update(&h, &admin).await;
    let id = waiting["id"].as_str().unwrap().to_owned();

    // Paused: it keeps waiting (not cancelled), and cannot be approved until the pause is lifted.
    let (status, _) = h.pause(json!({"reason": "release freeze"})).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.deployment(&id).await.1["status"], "awaiting_approval");
    let (status, refused) = h
        .post(&format!("/api/v1/deployments/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{refused}");

    // The process "dies" while it waits; the new one waits on, the change set kept.
    h.state.engine().abort_all();
    let mut config = h.config_again();
    protect(&mut config, false);
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let restarted = deployer::state(config, aws).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = restarted
        .engine()
        .store()
        .detail(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.deployment.status.as_str(),
        "awaiting_approval",
        "{kept:?}"
    );
    assert_eq!(change_sets(&h).await, [format!("deployer-{id}")]);

    // Lifted, approved on the restarted deployer: it executes.
    h.state = restarted;
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h
        .post(&format!("/api/v1/deployments/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_past_approval(&h, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-2");
}
