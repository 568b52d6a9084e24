//! The engine against a scripted CloudFormation, for what moto cannot produce: resource events
//! arriving over time, failed updates, rollbacks, failed rollbacks and cancels. S3 is still
//! moto. Each script replays the event sequence AWS emits for the behaviour named in the test.

mod cancel;
#[path = "../common/mod.rs"]
mod common;
mod outcomes;
mod preflight;
mod recovery;
mod restart;
mod scripted;
mod stuck;

use std::sync::Arc;

use app::model::StackStatus;
use axum::http::StatusCode;
use common::{Harness, TEMPLATE};
use deployer::aws::cfn::CloudFormation;
use serde_json::json;

use scripted::{Fault, Frame, ScriptedCfn};

const STACK: &str = "AWS::CloudFormation::Stack";

async fn harness(cfn: Arc<ScriptedCfn>) -> Harness {
    let h = Harness::start_with(Some(cfn)).await;
    h.put("web/web-master-2/template.yaml", TEMPLATE).await;
    h.put("web/web-master-2/parameters.json", r#"{"Greeting": "two"}"#)
        .await;
    h
}

async fn wait_for_step(h: &Harness, id: &str, step: &str) {
    for _ in 0..400 {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        if d["step"] == step {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("deployment {id} never reached {step}");
}

fn update_to_complete() -> Vec<Frame> {
    vec![
        (
            Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
            StackStatus::UpdateInProgress,
        ),
        (
            Some(("Queue", "AWS::SQS::Queue", "UPDATE_COMPLETE", None)),
            StackStatus::UpdateInProgress,
        ),
        (
            Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
            StackStatus::UpdateComplete,
        ),
    ]
}

async fn start(h: &Harness) -> String {
    h.start_deployment("web-master-2").await
}

/// The same process "restarts": its tasks stop, and a new deployer opens the same store.
async fn restart(h: &mut Harness, cfn: Arc<ScriptedCfn>) {
    h.state.engine().abort_all();
    let config = h.config_again();
    let aws = deployer::aws::AwsClients::connect(&config, Some(common::static_credentials())).await;
    let map = common::ENVIRONMENTS
        .iter()
        .map(|env| {
            let cfn: Arc<dyn CloudFormation> = cfn.clone();
            (env.to_string(), cfn)
        })
        .collect();
    h.state = deployer::state_with_cloudformation(config, aws, map)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stack_card_is_read_through_the_same_seam_as_a_deployment() {
    // AWS: DescribeStacks shows a stack left in UPDATE_ROLLBACK_FAILED by an earlier update.
    let cfn = ScriptedCfn::new(true, Vec::new());
    cfn.state.lock().unwrap().status = Some(StackStatus::UpdateRollbackFailed);
    let h = harness(cfn.clone()).await;
    let card = h.card("web", "DEV").await;
    assert_eq!(card["exists"], true, "{card}");
    assert_eq!(card["status"], "UPDATE_ROLLBACK_FAILED");
    assert_eq!(card["build"], "web-master-1");
    assert_eq!(card["parameters"][0]["value"], "scripted");
    let (status, _) = h.get("/api/v1/projects/web/stacks").await;
    assert_eq!(status, StatusCode::OK);
}
