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

/// Deploys web-master-1 to PRD (a create waits for approval too: approved by a person of its
/// own) and asks for web-master-2, which adds a bucket; returns the waiting deployment.
async fn waiting_update(h: &Harness, requester: &str) -> Value {
    h.put_build("web", "web-master-1").await;
    h.put_build_of("web", "web-master-2", &common::template_with_a_bucket())
        .await;
    let created = h.deploy("web", "PRD", "web-master-1").await;
    assert_eq!(
        created["status"], "awaiting_approval",
        "a create is held: {created}"
    );
    let approver = h
        .token_of("first-approver", "first-approver", "admin")
        .await;
    let id = created["id"].as_str().unwrap();
    let (status, body) = as_token(
        h,
        &approver,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let created = wait_past_approval(h, id).await;
    assert_eq!(created["status"], "succeeded", "{created}");
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
    let requester = h.token_of("alice", "alice", "admin").await;
    let approver = h.token_of("bob", "bob", "admin").await;
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
    let dev_only = h.token_of("carol", "carol", "deployer").await;
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

/// A request carrying a person's session cookie, from the deployer's own page.
async fn as_person(h: &Harness, session: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .header("cookie", format!("deployer_session={session}"))
        .header("host", "127.0.0.1:3000")
        .header("origin", "http://127.0.0.1:3000")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, text) = h.anonymous(request).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn four_eyes_compare_people_so_a_token_named_like_someone_else_cannot_approve_its_makers_deploy()
 {
    let h = protected_prd(true).await;
    // Alice logs in as an admin and asks for the update.
    let alice = h.login("alice", "alice", &["admins"]).await;
    h.put_build("web", "web-master-1").await;
    h.put_build_of("web", "web-master-2", &common::template_with_a_bucket())
        .await;
    let bob = h.token_of("bob", "bob", "admin").await;
    let created = h.deploy("web", "PRD", "web-master-1").await;
    let id = created["id"].as_str().unwrap().to_owned();
    as_token(
        &h,
        &bob,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(wait_past_approval(&h, &id).await["status"], "succeeded");
    let (status, started) = as_person(
        &h,
        &alice,
        "/api/v1/deployments",
        json!({"project": "web", "environment": "PRD", "build": "web-master-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(h.wait(&id).await["status"], "awaiting_approval");

    // She makes a token named like somebody else: it acts for her, and is refused.
    let (status, made) = as_person(
        &h,
        &alice,
        "/api/v1/tokens",
        json!({"name": "someone-else-entirely", "role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["created_by"], "alice", "{made}");
    assert_eq!(made["person"], "alice", "{made}");
    let disguised = made["token"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/deployments/{id}/approve");
    let (status, refused) = as_token(&h, &disguised, &uri, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("another person") && message.contains("alice"),
        "{refused}"
    );
    // /me says whom the token acts for.
    let (_, me) = h
        .with_token(
            &disguised,
            Request::get("/api/v1/me").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(me["name"], "someone-else-entirely");
    assert_eq!(me["person"], "alice");

    // Her identity is the provider's subject, not her username: renamed, still her.
    let renamed = h.login("alice", "alice.renamed", &["admins"]).await;
    let (status, refused) = as_person(&h, &renamed, &uri, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    // And a token nobody else's name is taken by: another person's token, whatever its name,
    // approves.
    let disguised_bob = h.token_of("bob", "alice", "admin").await;
    let (status, approved) = as_token(&h, &disguised_bob, &uri, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{approved}");
    assert_eq!(
        wait_past_approval(&h, &id).await["status"],
        "succeeded",
        "approved by bob (through a token he named alice)"
    );
}

#[tokio::test]
async fn a_first_create_in_a_protected_environment_waits_for_a_person() {
    let h = protected_prd(true).await;
    h.put_build("web", "web-master-1").await;
    let waiting = h.deploy("web", "PRD", "web-master-1").await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    assert_eq!(waiting["operation"], "create", "{waiting}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("the create of PRD-WEB"),
        "{waiting}"
    );
    assert_eq!(
        h.card("web", "PRD").await["exists"],
        false,
        "nothing is created before a person approves"
    );
    let id = waiting["id"].as_str().unwrap().to_owned();
    // The one who asked (the harness's admin) may not approve it; another person may.
    let (status, _) = h
        .post(&format!("/api/v1/deployments/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let approver = h.token_of("bob", "bob", "admin").await;
    let (status, body) = as_token(
        &h,
        &approver,
        &format!("/api/v1/deployments/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = wait_past_approval(&h, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-1");
}

/// The project as listed once the deployer's sweep of the bucket has found its folder.
async fn discovered(h: &Harness, name: &str) -> Value {
    for _ in 0..600 {
        let (status, projects) = h.get("/api/v1/projects").await;
        assert_eq!(status, StatusCode::OK);
        if let Some(p) = projects
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
        {
            return p.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} was never discovered");
}

#[tokio::test]
async fn a_discovered_project_reaches_only_the_environments_the_config_allows_it() {
    let h = protected_prd(false).await;
    // A folder nobody configured: a project, but not in the protected PRD.
    h.put_build("shop", "shop-master-1").await;
    let shop = discovered(&h, "shop").await;
    assert_eq!(shop["discovered"], true);
    assert_eq!(shop["environments"], json!(["DEV", "STG", "GBL"]), "{shop}");
    let (status, refused) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "shop", "environment": "PRD", "build": "shop-master-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert!(
        h.cfn("PRD")
            .describe_stacks()
            .stack_name("PRD-SHOP")
            .send()
            .await
            .is_err()
    );
    // Where it may go, it deploys.
    assert_eq!(
        h.deploy("shop", "DEV", "shop-master-1").await["status"],
        "succeeded"
    );

    // The file decides otherwise when it says so.
    let h = Harness::start_configured(|config, _| {
        protect(config, false);
        config.discovered_environments = Some(vec!["DEV".into()]);
    })
    .await;
    h.put_build("shop", "shop-master-1").await;
    let shop = discovered(&h, "shop").await;
    assert_eq!(shop["environments"], json!(["DEV"]), "{shop}");
}

#[tokio::test]
async fn an_approval_belongs_to_its_change_set_and_one_made_again_after_a_restart_waits_anew_even_paused()
 {
    let mut h = protected_prd(false).await;
    let admin = h.token.clone();
    let waiting = waiting_update(&h, &admin).await;
    let id = waiting["id"].as_str().unwrap().to_owned();
    // The process dies; meanwhile the approval is recorded, and the row says it moved on to
    // executing but had not committed (a death between saving the step and the commit).
    h.state.engine().abort_all();
    let store = h.state.engine().store().clone();
    assert!(
        store
            .decide_approval(&id, app::deployment::ApprovalDecision::Approved, "bob")
            .await
            .unwrap()
    );
    let mut record = store.record(&id).await.unwrap().unwrap();
    record.deployment.step = Some(app::deployment::StepName::Execute);
    record.deployment.status = app::deployment::DeploymentStatus::Running;
    store.save(&record).await.unwrap();
    // And a pause lands meanwhile: it holds an approved deployment, it does not cancel it.
    store
        .pause(Some("PRD"), "release freeze", "ops")
        .await
        .unwrap();

    let mut config = h.config_again();
    protect(&mut config, false);
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    h.state = deployer::state(config, aws).await.unwrap();
    // The change set is made again: it waits for a new approval, nothing executed.
    let again = loop {
        let (_, d) = h.deployment(&id).await;
        if d["status"] == "awaiting_approval" || !d["finished_at"].is_null() {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(again["status"], "awaiting_approval", "{again}");
    assert_eq!(again["approval"]["decision"], Value::Null, "{again}");
    assert_eq!(h.card("web", "PRD").await["build"], "web-master-1");
    // Lifted and approved anew, it executes.
    let (status, _) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h
        .post(&format!("/api/v1/deployments/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(wait_past_approval(&h, &id).await["status"], "succeeded");
}

#[tokio::test]
async fn a_pause_that_cancels_in_flight_holds_a_deployment_waiting_for_approval() {
    let h = protected_prd(false).await;
    let admin = h.token.clone();
    let waiting = waiting_update(&h, &admin).await;
    let id = waiting["id"].as_str().unwrap().to_owned();
    let (status, _) = h
        .pause(json!({"reason": "incident", "cancel_in_flight": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, d) = h.deployment(&id).await;
    assert_eq!(d["status"], "awaiting_approval", "held, not discarded: {d}");
    assert_eq!(change_sets(&h).await, [format!("deployer-{id}")]);
}
