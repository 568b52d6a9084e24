//! A restart in the middle of a deployment: the new process re-attaches to the deployment the
//! store says was in flight and sees it through. moto holds a stack in CREATE_IN_PROGRESS when
//! CreateStack meets a `Custom::` resource backed by a Lambda of the same template, until the
//! test answers for the Lambda on moto's cfnresponse endpoint ([`common::GATED_TEMPLATE`]).

mod common;

use std::time::Duration;

use common::Harness;
use deployer::aws::AwsClients;
use serde_json::json;

#[tokio::test]
async fn a_restarted_deployer_re_attaches_and_finishes_the_deployment() {
    let h = Harness::start().await;
    h.put("web/web-master-7/template.yaml", common::GATED_TEMPLATE)
        .await;
    h.put(
        "web/web-master-7/parameters.json",
        r#"{"Greeting": "restart"}"#,
    )
    .await;
    let (status, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-7"}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();

    // Wait until CloudFormation is creating the stack and the deployer is watching it.
    let mut stack_id = None;
    for _ in 0..400 {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        assert!(
            matches!(d["status"].as_str(), Some("pending" | "running")),
            "{d}"
        );
        if d["step"] == "watch" {
            let card = h.card("web", "DEV").await;
            assert_eq!(card["status"], "CREATE_IN_PROGRESS", "{card}");
            let out = h
                .cfn("DEV")
                .describe_stacks()
                .stack_name("DEV-WEB")
                .send()
                .await
                .unwrap();
            stack_id = out.stacks()[0].stack_id().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stack_id = stack_id.expect("the deployment reached the watch step");

    // The process "dies": its tasks stop, the store keeps the deployment as running.
    h.state.engine().abort_all();
    let config = h.config_again();
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let restarted = deployer::state(config, aws).await.unwrap();
    let detail = restarted
        .engine()
        .store()
        .detail(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        detail.deployment.status.as_str(),
        "running",
        "re-attached, not abandoned"
    );

    // The Lambda answers; CloudFormation completes the stack.
    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;

    let mut finished = None;
    for _ in 0..400 {
        let d = restarted
            .engine()
            .store()
            .detail(&id)
            .await
            .unwrap()
            .unwrap();
        if !d.deployment.status.is_active() {
            finished = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let finished = finished.expect("the re-attached watcher saw the stack finish");
    assert_eq!(
        finished.deployment.status.as_str(),
        "succeeded",
        "{finished:?}"
    );
}
