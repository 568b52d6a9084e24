//! The pause and the audit trail: 423 while paused, atomic with the start of a deployment,
//! persisted across restarts, pushed live, and every action written down in order.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Harness, TEMPLATE};
use deployer::aws::AwsClients;
use serde_json::json;

/// The parameters of a build that greets this way.
fn greeting(greeting: &str) -> String {
    format!(r#"{{"Greeting": "{greeting}"}}"#)
}

fn deploy_body(build: &str) -> serde_json::Value {
    json!({"project": "web", "environment": "DEV", "build": build})
}

#[tokio::test]
async fn paused_deploys_get_423_with_the_reason_and_resume_lets_them_through() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, &greeting("one"))
        .await;

    let (status, pause) = h
        .send_json("GET", "/api/v1/pause", serde_json::Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pause["paused"], false);

    let (status, pause) = h.pause(json!({"reason": "investigating 5xx on web"})).await;
    assert_eq!(status, StatusCode::OK, "{pause}");
    assert_eq!(pause["paused"], true);
    assert_eq!(pause["reason"], "investigating 5xx on web");
    assert_eq!(pause["actor"], "tester");
    assert!(pause["since"].is_string());
    assert_eq!(pause["environments"], json!(["DEV", "STG", "PRD", "GBL"]));

    let (status, refused) = h
        .post("/api/v1/deployments", deploy_body("web-master-1"))
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{refused}");
    assert_eq!(refused["error"]["code"], "paused");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("investigating 5xx on web") && message.contains("tester"),
        "{message}"
    );
    // The same, for scripts: the pause's own fields.
    assert_eq!(refused["error"]["reason"], "investigating 5xx on web");
    assert_eq!(refused["error"]["actor"], "tester");
    assert_eq!(refused["error"]["since"], pause["since"]);

    let (status, resumed) = h.unpause("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resumed["paused"], false);
    let detail = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(detail["status"], "succeeded");
}

#[tokio::test]
async fn a_pause_of_one_environment_leaves_the_others_open() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, &greeting("one"))
        .await;
    let (status, pause) = h
        .pause(json!({"reason": "PRD freeze", "environment": "PRD"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pause["environments"], json!(["PRD"]));
    let (status, _) = h.request_deploy("web", "PRD", "web-master-1").await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );

    let (status, _) = h.pause(json!({"reason": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required");
    let (status, _) = h.pause(json!({"reason": "x", "environment": "QA"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resumed) = h.unpause("environment=PRD").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resumed["paused"], false);
}

#[tokio::test]
async fn no_deployment_starts_after_a_racing_pause_was_recorded() {
    let h = Harness::start().await;
    // 50 deploy requests over three stacks race each other and one pause.
    let envs = ["DEV", "STG", "PRD"];
    for n in 0..50 {
        h.put_build_with(
            "web",
            &format!("web-master-{n}"),
            TEMPLATE,
            &greeting("race"),
        )
        .await;
    }
    let h = &h;
    let deploys = (0..50).map(|n| {
        let body = json!({"project": "web", "environment": envs[n % 3], "build": format!("web-master-{n}")});
        async move { h.post("/api/v1/deployments", body).await }
    });
    let pause = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        h.pause(json!({"reason": "race"})).await
    };
    let (results, (pause_status, pause)) = tokio::join!(futures::future::join_all(deploys), pause);
    assert_eq!(pause_status, StatusCode::OK);
    let since = chrono::DateTime::parse_from_rfc3339(pause["since"].as_str().unwrap()).unwrap();
    let locked = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::LOCKED)
        .count();
    let accepted = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    assert!(locked + accepted > 0);
    for (status, body) in &results {
        assert!(
            matches!(
                *status,
                StatusCode::ACCEPTED | StatusCode::LOCKED | StatusCode::CONFLICT
            ),
            "{status} {body}"
        );
    }
    // The store's own record: every deployment started before the pause.
    let (_, all) = h.get("/api/v1/deployments?limit=1000").await;
    for d in all.as_array().unwrap() {
        let started =
            chrono::DateTime::parse_from_rfc3339(d["started_at"].as_str().unwrap()).unwrap();
        assert!(
            started <= since,
            "{} started at {started}, after the pause at {since}",
            d["id"]
        );
    }
}

#[tokio::test]
async fn a_restarted_deployer_is_still_paused() {
    let h = Harness::start().await;
    h.pause(json!({"reason": "over the weekend"})).await;
    h.state.engine().abort_all(); // the first process exits
    let config = h.config_again();
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let restarted = deployer::state(config, aws).await.unwrap();
    let status = restarted
        .services
        .pause_status(&restarted.auth.actor(
            "test",
            "test",
            deployer::service::Person::named("test"),
            app::auth::Via::Token,
            vec!["viewer".into()],
        ))
        .await
        .unwrap();
    assert!(status.paused);
    assert_eq!(status.reason.as_deref(), Some("over the weekend"));
}

#[tokio::test]
async fn every_action_is_in_the_audit_trail_in_order() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, &greeting("one"))
        .await;
    let detail = h.deploy("web", "DEV", "web-master-1").await;
    let id = detail["id"].as_str().unwrap();
    let (status, _) = h
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "it already ended; the attempt is not an action"
    );
    h.pause(json!({"reason": "audit me"})).await;
    let (status, _) = h
        .post("/api/v1/deployments", deploy_body("web-master-1"))
        .await;
    assert_eq!(status, StatusCode::LOCKED);
    h.unpause("").await;

    let (status, audit) = h.audit("").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "unpause",
            "deploy_refused",
            "pause",
            "deploy_finished",
            "deploy_requested"
        ],
        "newest first"
    );
    let entries = audit.as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == "tester" && e["at"].is_string())
    );
    assert_eq!(entries[4]["deployment_id"], id);
    assert_eq!(entries[4]["build"], "web-master-1");
    assert_eq!(entries[3]["detail"], "succeeded");
    assert_eq!(entries[2]["detail"], "audit me");
    assert_eq!(entries[2]["reason"], "audit me");
    assert_eq!(entries[3]["outcome"], "succeeded");
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    // Paging and filters.
    let (_, page) = h
        .get(&format!("/api/v1/audit?limit=2&before={}", ids[1]))
        .await;
    let actions: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pause", "deploy_finished"]);
    let (_, only) = h.audit("action=pause").await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    let (status, _) = h.audit("action=explode").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
