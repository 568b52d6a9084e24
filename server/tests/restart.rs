//! A restart in the middle of a deployment: the new process re-attaches to the deployment the
//! store says was in flight and sees it through. moto holds a stack in CREATE_IN_PROGRESS when
//! CreateStack meets a `Custom::` resource backed by a Lambda of the same template, until the
//! test answers for the Lambda on moto's cfnresponse endpoint.

mod common;

use std::time::Duration;

use common::{ACCOUNTS, Harness};
use deployer::aws::AwsClients;
use serde_json::json;

const WAITING_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  HookRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${AWS::StackName}-hook"
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
  Hook:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: !GetAtt HookRole.Arn
      Code:
        ZipFile: "def handler(event, context): pass"
  Wait:
    Type: Custom::Wait
    Properties:
      ServiceToken: !GetAtt Hook.Arn
      Greeting: !Ref Greeting
"#;

#[tokio::test]
async fn a_restarted_deployer_re_attaches_and_finishes_the_deployment() {
    let h = Harness::start().await;
    h.put("web/web-master-7/template.yaml", WAITING_TEMPLATE)
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
    h.state.engine.abort_all();
    let config = common::config(&h.moto.endpoint, &h.dir.path().join("deployer.sqlite"));
    let aws = AwsClients::connect(&config, Some(common::static_credentials())).await;
    let restarted = deployer::state(config, aws).await.unwrap();
    let detail = restarted.deployment(&id).await.unwrap();
    assert_eq!(
        detail.deployment.status.as_str(),
        "running",
        "re-attached, not abandoned"
    );

    // The Lambda answers; CloudFormation completes the stack.
    let port = h.moto.endpoint.rsplit(':').next().unwrap();
    let response = reqwest::Client::new()
        .put(format!("http://localhost:{port}/cloudformation_eu-west-1/cfnresponse?stack={stack_id}"))
        .header("content-type", "application/json")
        // The Lambda's answer carries no credentials: moto takes the account from this header
        // and the region from the (unchecked) credential scope of an Authorization header.
        .header("x-moto-account-id", ACCOUNTS[0].1)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/eu-west-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(json!({"Status": "SUCCESS", "LogicalResourceId": "Wait", "StackId": stack_id, "Data": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let mut finished = None;
    for _ in 0..400 {
        let d = restarted.deployment(&id).await.unwrap();
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
