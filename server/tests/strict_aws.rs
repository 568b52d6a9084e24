//! The deployer against CloudFormation as it behaves: the local AWS (moto behind
//! `demo/local_aws/`) takes its time resource by resource, fails and rolls back, cancels, refuses
//! a second operation and throttles — each test names the AWS behaviour — and the deployer's REST
//! API must tell a person what happened. (`server/tests/engine/` keeps the scripted
//! CloudFormation for what no local AWS produces.)

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Harness, TEMPLATE};
use serde_json::{Value, json};

/// The local AWS's control API (`docs/local-aws.md`).
async fn control(h: &Harness, path: &str, body: Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/_local/{path}", h.moto.endpoint))
        .json(&body)
        .send()
        .await
        .expect("the local AWS answers its control API");
    assert!(
        answer.status().is_success(),
        "POST /_local/{path} {body}: {}",
        answer.text().await.unwrap_or_default()
    );
}

/// Every resource step of DEV-WEB takes `seconds`.
async fn pace(h: &Harness, seconds: f64) {
    control(h, "pace", json!({"seconds": seconds, "stack": "DEV-WEB"})).await;
}

/// Polls the deployment until `seen` holds (or fails after 30 s, showing the last answer).
async fn until(h: &Harness, id: &str, what: &str, seen: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, detail) = h.deployment(id).await;
        if seen(&detail) {
            return detail;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {detail:#}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

fn resource_events<'a>(detail: &'a Value, status: &str) -> Vec<&'a str> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == status && e["resource_type"] != "AWS::CloudFormation::Stack")
        .map(|e| e["logical_id"].as_str().unwrap())
        .collect()
}

async fn stack_status(h: &Harness) -> String {
    let out = h
        .cfn("DEV")
        .describe_stacks()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap();
    out.stacks()[0].stack_status().unwrap().as_str().to_owned()
}

async fn template_now(h: &Harness) -> String {
    h.cfn("DEV")
        .get_template()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_owned()
}

/// [`TEMPLATE`] plus `extra` (YAML lines of resources, indented two spaces).
fn with_resources(extra: &str) -> String {
    TEMPLATE.replace("Outputs:", &format!("{extra}Outputs:"))
}

const FAILING_QUEUE: &str = "  DeadLetters:\n    Type: AWS::SQS::Queue\n    Metadata:\n      LocalAws:\n        Fail: 'Resource handler returned message: \"Value 1209601 for parameter MessageRetentionPeriod is invalid.\"'\n";

#[tokio::test]
async fn a_deploy_reports_each_resource_while_cloudformation_works_through_it() {
    // AWS: CREATE_IN_PROGRESS for as long as the resources take, one event per resource step.
    let h = Harness::start().await;
    pace(&h, 0.25).await;
    h.put_build("web", "web-master-1").await;
    let id = h.start_deployment("web-master-1").await;
    let running = until(
        &h,
        &id,
        "a resource in progress while the deployment runs",
        |d| d["status"] == "running" && !resource_events(d, "CREATE_IN_PROGRESS").is_empty(),
    )
    .await;
    assert!(
        running["resources_done"].as_u64().unwrap() < 2,
        "{running:#}"
    );
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let mut made = resource_events(&done, "CREATE_COMPLETE");
    made.sort();
    assert_eq!(made, ["Message", "Queue"], "{done:#}");
    assert_eq!(done["resources_total"], 2, "{done:#}");
    assert_eq!(done["resources_done"], 2, "{done:#}");
    // The events are the operation's, in order: the stack began before its resources ended.
    let first = &done["events"][0];
    assert_eq!(first["status"], "CREATE_IN_PROGRESS", "{done:#}");
    assert_eq!(
        first["resource_type"], "AWS::CloudFormation::Stack",
        "{done:#}"
    );
}

#[tokio::test]
async fn a_failed_update_rolls_back_and_the_deployment_says_cloudformations_reason() {
    // AWS: a resource fails → UPDATE_ROLLBACK_COMPLETE, the previous template back.
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    h.put_build_of("web", "web-master-2", &with_resources(FAILING_QUEUE))
        .await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    let failed = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("MessageRetentionPeriod is invalid"),
        "the reason CloudFormation gave: {failed:#}"
    );
    assert!(
        resource_events(&failed, "CREATE_FAILED").contains(&"DeadLetters"),
        "{failed:#}"
    );
    assert_eq!(stack_status(&h).await, "UPDATE_ROLLBACK_COMPLETE");
    assert!(!template_now(&h).await.contains("DeadLetters"));
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-1");
}

#[tokio::test]
async fn a_failed_first_create_leaves_rollback_complete_and_the_card_says_so() {
    // AWS: a failed first create ends ROLLBACK_COMPLETE; the stack can only be deleted.
    let h = Harness::start().await;
    h.put_build_of("web", "web-master-1", &with_resources(FAILING_QUEUE))
        .await;
    h.put_build("web", "web-master-2").await;
    let failed = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(stack_status(&h).await, "ROLLBACK_COMPLETE");
    let card = h.card("web", "DEV").await;
    assert_eq!(card["status"], "ROLLBACK_COMPLETE", "{card:#}");
}

#[tokio::test]
async fn cancel_rolls_a_running_update_back_to_the_stack_as_it_was() {
    // AWS CancelUpdateStack: in UPDATE_IN_PROGRESS, the update rolls back.
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    h.put_build_of(
        "web",
        "web-master-2",
        &with_resources(
            "  Uploads:\n    Type: AWS::SQS::Queue\n  More:\n    Type: AWS::SQS::Queue\n",
        ),
    )
    .await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    pace(&h, 0.4).await;
    let id = h.start_deployment("web-master-2").await;
    until(&h, &id, "the update working on a resource", |d| {
        !resource_events(d, "CREATE_IN_PROGRESS").is_empty()
    })
    .await;
    let (status, answer) = h.cancel(&id, false).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert_eq!(stack_status(&h).await, "UPDATE_ROLLBACK_COMPLETE");
    assert!(!template_now(&h).await.contains("Uploads"));
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-1");
}

#[tokio::test]
async fn a_rollback_that_fails_is_continued_through_the_api_skipping_the_resource() {
    // AWS: UPDATE_ROLLBACK_FAILED; ContinueUpdateRollback with ResourcesToSkip finishes it.
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    // Changes Message (which then cannot be changed back) and adds a queue that fails.
    let changed = with_resources(FAILING_QUEUE).replace("Value: !Ref Greeting", "Value: changed");
    h.put_build_of("web", "web-master-2", &changed).await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    control(
        &h,
        "faults",
        json!({"stack": "DEV-WEB", "account": h.moto.account("DEV"), "resource": "Message", "on": "rollback",
               "reason": "Resource handler returned message: \"Parameter was modified outside CloudFormation\""}),
    )
    .await;
    let failed = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(stack_status(&h).await, "UPDATE_ROLLBACK_FAILED");
    let card = h.card("web", "DEV").await;
    // Message could not go back (UPDATE_FAILED, with the reason); DeadLetters, which failed to
    // create, is still CREATE_FAILED: AWS deletes it only in the rollback's cleanup.
    let stuck = card["failed_resources"].as_array().unwrap();
    let message = stuck
        .iter()
        .find(|r| r["logical_id"] == "Message")
        .unwrap_or_else(|| panic!("Message is listed: {card:#}"));
    assert_eq!(message["status"], "UPDATE_FAILED", "{card:#}");
    assert!(
        message["reason"]
            .as_str()
            .unwrap()
            .contains("modified outside CloudFormation"),
        "{card:#}"
    );

    let (status, answer) = h
        .post(
            "/api/v1/projects/web/stacks/DEV/continue-rollback",
            json!({"skip": ["Message"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack_status(&h).await != "UPDATE_ROLLBACK_COMPLETE" {
        assert!(Instant::now() < deadline, "the rollback never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!template_now(&h).await.contains("DeadLetters"));
}

#[tokio::test]
async fn a_stack_busy_with_someone_elses_update_is_refused_not_queued_behind() {
    // AWS: one operation per stack ("... is in UPDATE_IN_PROGRESS state and can not be updated").
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    h.put_build_of(
        "web",
        "web-master-2",
        &with_resources("  Extra:\n    Type: AWS::SQS::Queue\n"),
    )
    .await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    pace(&h, 0.5).await;
    // Someone updates the stack by hand.
    h.cfn("DEV")
        .update_stack()
        .stack_name("DEV-WEB")
        .use_previous_template(true)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Greeting")
                .parameter_value("by hand")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let refused = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(refused["status"], "refused", "{refused:#}");
    assert!(
        refused["message"].as_str().unwrap().contains("busy"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn a_throttled_account_is_waited_for_with_the_reason_shown_then_the_deploy_ends() {
    // AWS: beyond the account's rate, "Throttling: Rate exceeded" — the deployer waits, says so.
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    pace(&h, 0.5).await;
    let id = h.start_deployment("web-master-1").await;
    until(&h, &id, "the create under way", |d| {
        !resource_events(d, "CREATE_IN_PROGRESS").is_empty()
    })
    .await;
    let account = h.moto.account("DEV").to_owned();
    control(
        &h,
        "throttle",
        json!({"account": account, "calls": 0, "per_seconds": 1}),
    )
    .await;
    let waiting = until(&h, &id, "waiting for AWS with the throttling reason", |d| {
        d["waiting_for_aws"] == true
    })
    .await;
    let reason = waiting["waiting_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Throttling") || reason.contains("Rate exceeded"),
        "{waiting:#}"
    );
    assert_eq!(waiting["status"], "running", "{waiting:#}");
    control(&h, "throttle", json!({"account": account, "calls": null})).await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
}

#[tokio::test]
async fn mid_update_the_card_does_not_call_the_build_being_deployed_deployed() {
    // AWS: a stack takes its new tags when the update begins and gets the old ones back on
    // rollback. A stack the deployer never deployed has only its tag to say what runs there.
    let h = Harness::start().await;
    h.cfn("DEV")
        .create_stack()
        .stack_name("DEV-WEB")
        .template_body(TEMPLATE)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Greeting")
                .parameter_value("hello")
                .build(),
        )
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("deployer:build")
                .value("web-master-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(h.settled("DEV", "DEV-WEB").await, "CREATE_COMPLETE");
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-1");
    h.put_build_of("web", "web-master-2", &with_resources(FAILING_QUEUE))
        .await;
    pace(&h, 0.4).await;
    let id = h.start_deployment("web-master-2").await;
    until(&h, &id, "the update under way", |d| {
        !resource_events(d, "UPDATE_IN_PROGRESS").is_empty()
            || !resource_events(d, "CREATE_IN_PROGRESS").is_empty()
    })
    .await;
    let card = h.card("web", "DEV").await;
    assert_ne!(card["build"], "web-master-2", "mid-update: {card:#}");
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let card = h.card("web", "DEV").await;
        if card["build"] == "web-master-1" {
            break;
        }
        assert!(Instant::now() < deadline, "after the rollback: {card:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
