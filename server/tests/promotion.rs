//! The promotion matrix and "Promote" against moto: DEV → STG → PRD in the project's order.

mod common;

use common::Harness;
use serde_json::{Value, json};

fn cell<'a>(matrix: &'a Value, project: &str, env: &str) -> &'a Value {
    matrix
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project"] == project)
        .unwrap()["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["environment"] == env)
        .unwrap()
}

#[tokio::test]
async fn the_matrix_says_who_is_behind_and_promote_deploys_the_previous_environments_build() {
    let h = Harness::start().await;
    for build in ["web-master-1", "web-master-2", "web-master-3"] {
        h.put_build("web", build).await;
    }
    assert_eq!(
        h.deploy("web", "DEV", "web-master-3").await["status"],
        "succeeded"
    );
    assert_eq!(
        h.deploy("web", "STG", "web-master-1").await["status"],
        "succeeded"
    );

    let (status, matrix) = h.get("/api/v1/promotion").await;
    assert_eq!(status, 200, "{matrix}");
    let envs: Vec<&str> = matrix[0]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["DEV", "STG", "PRD"], "promotion order");
    let (dev, stg, prd) = (
        cell(&matrix, "web", "DEV"),
        cell(&matrix, "web", "STG"),
        cell(&matrix, "web", "PRD"),
    );
    assert_eq!(dev["build"], "web-master-3");
    assert_eq!(dev["behind"], Value::Null);
    assert_eq!(dev["status"], "CREATE_COMPLETE");
    assert!(dev["updated_at"].is_string());
    assert_eq!(stg["build"], "web-master-1");
    assert_eq!(stg["behind"], 2, "{stg}");
    assert_eq!(stg["promote"], "web-master-3");
    assert_eq!(prd["build"], Value::Null);
    assert_eq!(prd["behind"], Value::Null);
    assert_eq!(prd["status"], Value::Null);
    assert_eq!(prd["promote"], "web-master-1");

    // One click: STG gets what DEV runs.
    let (status, started) = h
        .post(
            "/api/v1/projects/web/promote",
            json!({"environment": "STG"}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["build"], "web-master-3");
    assert_eq!(started["environment"], "STG");
    assert_eq!(
        h.wait(started["id"].as_str().unwrap()).await["status"],
        "succeeded"
    );
    let (_, matrix) = h.get("/api/v1/promotion").await;
    assert_eq!(cell(&matrix, "web", "STG")["behind"], 0);
    assert_eq!(cell(&matrix, "web", "STG")["promote"], Value::Null);
    assert_eq!(cell(&matrix, "web", "PRD")["promote"], "web-master-3");

    // Nothing to promote is a 409 that says why; a wrong place is a 404 or a 400.
    for (env, why) in [
        ("STG", "already runs web-master-3"),
        ("DEV", "first environment"),
    ] {
        let (status, body) = h
            .post("/api/v1/projects/web/promote", json!({"environment": env}))
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    let (status, body) = h
        .post(
            "/api/v1/projects/web/promote",
            json!({"environment": "GBL"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = h
        .post(
            "/api/v1/projects/nope/promote",
            json!({"environment": "STG"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = h
        .post("/api/v1/projects/web/promote", json!({"env": "STG"}))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn nothing_to_promote_from_an_empty_environment() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/api/v1/projects/web/promote",
            json!({"environment": "STG"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runs no build in DEV"),
        "{body}"
    );
}

const NO_EXPORT: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  QueueUrl:
    Value: !Ref Queue
"#;

/// A stack made by hand (not by the deployer) that imports web's queue URL in DEV.
const IMPORTS_THE_QUEUE_URL: &str = r#"
Parameters:
  Env:
    Type: String
Resources:
  Copy:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /reports/queue-url
      Type: String
      Value:
        Fn::ImportValue: !Sub "${Env}-WEB-QueueUrl"
"#;

const IMPORTS_NOTHING_THERE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
  Colour:
    Type: String
Resources:
  Message:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !ImportValue nobody-exports-this
"#;

#[tokio::test]
async fn the_rollback_verdict_is_safe_or_names_each_problem_before_the_click() {
    let h = Harness::start().await;
    let (status, body) = h.get("/api/v1/projects/web/rollback?environment=DEV").await;
    assert_eq!(status, 409, "nothing deployed yet: {body}");

    h.put_build("web", "web-master-1").await;
    h.put_build("web", "web-master-2").await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    assert_eq!(
        h.deploy("web", "DEV", "web-master-2").await["status"],
        "succeeded"
    );
    let (status, verdict) = h.get("/api/v1/projects/web/rollback?environment=DEV").await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(
        verdict["build"], "web-master-1",
        "the build before the current one"
    );
    assert_eq!(verdict["verdict"], "safe", "{verdict}");
    assert_eq!(verdict["warnings"], json!([]));

    // An older build that imports what nobody exports any more and lacks a parameter its
    // template requires.
    h.put_build_of("web", "web-master-0", IMPORTS_NOTHING_THERE)
        .await;
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-0")
        .await;
    assert_eq!(verdict["verdict"], "warnings", "{verdict}");
    let kinds: Vec<&str> = verdict["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"missing_import"), "{verdict}");
    assert!(kinds.contains(&"missing_parameter"), "{verdict}");
    let text = verdict.to_string();
    assert!(
        text.contains("nobody-exports-this") && text.contains("Colour"),
        "{verdict}"
    );
    assert!(text.contains("no known build exports it"), "{verdict}");

    // One that drops the stack's export. moto answers no ListImports; the templates of the
    // account's stacks say who imports it: nobody yet, so dropping it is safe…
    h.put_build_of("web", "web-master-00", NO_EXPORT).await;
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-00")
        .await;
    assert_eq!(verdict["verdict"], "safe", "{verdict}");
    // …until a stack the deployer never deployed imports it (by a `Fn::Sub` of its parameter).
    h.cfn("DEV")
        .create_stack()
        .stack_name("DEV-REPORTS")
        .template_body(IMPORTS_THE_QUEUE_URL)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Env")
                .parameter_value("DEV")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(h.settled("DEV", "DEV-REPORTS").await, "CREATE_COMPLETE");
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-00")
        .await;
    assert_eq!(verdict["verdict"], "warnings", "{verdict}");
    let in_use = verdict["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "export_in_use")
        .unwrap_or_else(|| panic!("{verdict}"));
    let message = in_use["message"].as_str().unwrap();
    assert!(
        message.contains("\"DEV-WEB-QueueUrl\"") && message.contains("DEV-REPORTS"),
        "{message}"
    );

    // One whose image the account cannot launch (deregistered since): DescribeImages in moto's
    // EC2, which knows its own public images and nothing else.
    let with_image = common::TEMPLATE.replacen(
        "Parameters:\n",
        "Parameters:\n  ImageId:\n    Type: AWS::EC2::Image::Id\n",
        1,
    );
    let known = h
        .aws
        .env("DEV")
        .unwrap()
        .ec2
        .describe_images()
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_owned();
    for (build, image) in [
        ("web-master-01", known.as_str()),
        ("web-master-02", "ami-0123456789abcdef0"),
    ] {
        h.put_build_with(
            "web",
            build,
            &with_image,
            &json!({"Greeting": "hello", "ImageId": image}).to_string(),
        )
        .await;
    }
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-01")
        .await;
    assert_eq!(verdict["verdict"], "safe", "{known} exists: {verdict}");
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-02")
        .await;
    assert_eq!(verdict["warnings"][0]["kind"], "missing_image", "{verdict}");
    let message = verdict["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("ami-0123456789abcdef0") && message.contains("ImageId"),
        "{message}"
    );

    // Bad input is a clear 4xx.
    let (status, _) = h.get("/api/v1/projects/web/rollback").await;
    assert_eq!(status, 400);
    let (status, _) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-77")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_preview_says_what_a_build_would_change_and_leaves_nothing_behind() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    h.put_build_of("web", "web-master-2", &common::template_with_a_bucket())
        .await;

    // No stack yet: everything is added.
    let (status, changes) = h
        .get("/api/v1/projects/web/preview?environment=DEV&build=web-master-1")
        .await;
    assert_eq!(status, 200, "{changes}");
    let mut added: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["action"], "Add");
            assert_eq!(c["interrupts"], false);
            c["logical_id"].as_str().unwrap()
        })
        .collect();
    added.sort_unstable();
    assert_eq!(added, ["Message", "Queue"]);
    let (_, stacks) = h.get("/api/v1/projects/web/stacks").await;
    assert_eq!(stacks[0]["exists"], false, "a preview deploys nothing");

    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    // The next build adds a bucket: the change set says so, and is deleted after.
    let (status, changes) = h
        .get("/api/v1/projects/web/preview?environment=DEV&build=web-master-2")
        .await;
    assert_eq!(status, 200, "{changes}");
    let bucket = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["logical_id"] == "Uploads")
        .unwrap_or_else(|| panic!("{changes}"));
    assert_eq!(bucket["action"], "Add");
    assert_eq!(bucket["type"], "AWS::S3::Bucket");
    let left = h
        .cfn("DEV")
        .list_change_sets()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap();
    assert!(
        left.summaries().iter().all(|s| !s
            .change_set_name()
            .unwrap_or_default()
            .starts_with("deployer-preview-")),
        "no preview change set left: {left:?}"
    );
    assert_eq!(
        h.card("web", "DEV").await["build"],
        "web-master-1",
        "nothing deployed"
    );

    // A build that cannot be deployed says why; a missing build is a 404, no build a 400.
    h.put(
        "web/web-master-3/template.yaml",
        &common::template_with_a_bucket(),
    )
    .await;
    let (status, body) = h
        .get("/api/v1/projects/web/preview?environment=DEV&build=web-master-3")
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = h
        .get("/api/v1/projects/web/preview?environment=DEV&build=web-master-9")
        .await;
    assert_eq!(status, 404);
    let (status, _) = h.get("/api/v1/projects/web/preview?environment=DEV").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn change_sets_the_deployer_left_behind_are_deleted_and_nobody_elses() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    let cfn = h.cfn("DEV");
    for name in [
        // A deployment's, unknown to the store (its process died before deleting it).
        "deployer-d-0123456789abcdef0123456789abcdef",
        // Somebody's own: never touched.
        "hotfix-by-hand",
        // A preview's, made a moment ago (it may be in use): kept until it is old.
        "deployer-preview-0123456789abcdef",
    ] {
        cfn.create_change_set()
            .stack_name("DEV-WEB")
            .change_set_name(name)
            .template_body(common::TEMPLATE)
            .parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key("Greeting")
                    .parameter_value("left behind")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let deleted =
        deployer::deploy::janitor::sweep(h.state.catalog(), h.state.engine().store()).await;
    assert_eq!(deleted, 1);
    let left = cfn
        .list_change_sets()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = left
        .summaries()
        .iter()
        .filter_map(|s| s.change_set_name())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["deployer-preview-0123456789abcdef", "hotfix-by-hand"]
    );
}

/// What the verdict cannot look up before deploying it says is unchecked, never safe: an import
/// whose name is computed at deploy time; and an image the template gives by default is looked
/// up like one its parameters give.
#[tokio::test]
async fn the_verdict_says_unchecked_for_what_it_cannot_look_up_and_checks_default_images() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );

    let computed = common::TEMPLATE.replacen(
        "Outputs:\n",
        "Outputs:\n  Upstream:\n    Value:\n      Fn::ImportValue:\n        Fn::GetAtt: [Queue, Arn]\n",
        1,
    );
    h.put_build_of("web", "web-master-05", &computed).await;
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-05")
        .await;
    assert_eq!(verdict["verdict"], "warnings", "{verdict}");
    let unchecked = verdict["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "unchecked")
        .unwrap_or_else(|| panic!("{verdict}"));
    assert!(
        unchecked["message"]
            .as_str()
            .unwrap()
            .contains("computed at deploy time"),
        "{verdict}"
    );

    let by_default = common::TEMPLATE.replacen(
        "Parameters:\n",
        "Parameters:\n  ImageId:\n    Type: AWS::EC2::Image::Id\n    Default: ami-0123456789abcdef0\n",
        1,
    );
    h.put_build_of("web", "web-master-06", &by_default).await;
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-06")
        .await;
    assert_eq!(verdict["verdict"], "warnings", "{verdict}");
    assert!(
        verdict["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "missing_image"
                && w["message"]
                    .as_str()
                    .unwrap()
                    .contains("ami-0123456789abcdef0")),
        "{verdict}"
    );
}

/// One environment's account cannot be read (its endpoint refuses connections): the matrix
/// still answers, that cell unknown with the reason, the others as they are — and nothing is
/// offered for promotion into or out of what is unknown.
#[tokio::test]
async fn an_unreadable_environment_is_an_unknown_cell_and_the_matrix_still_answers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start_configured(|config, _| {
        let stg = config
            .environments
            .iter_mut()
            .find(|e| e.name == "STG")
            .unwrap();
        stg.endpoint_url = Some(format!("http://127.0.0.1:{closed}"));
    })
    .await;
    h.put_build("web", "web-master-1").await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );

    let (status, matrix) = h.get("/api/v1/promotion").await;
    assert_eq!(status, 200, "{matrix}");
    let (dev, stg, prd) = (
        cell(&matrix, "web", "DEV"),
        cell(&matrix, "web", "STG"),
        cell(&matrix, "web", "PRD"),
    );
    assert_eq!(dev["build"], "web-master-1", "{matrix}");
    assert_eq!(dev["unknown"], Value::Null, "{matrix}");
    let reason = stg["unknown"].as_str().expect("STG is unknown");
    assert!(
        reason.contains("STG"),
        "names what could not be read: {reason}"
    );
    assert_eq!(stg["build"], Value::Null);
    assert_eq!(
        stg["promote"],
        Value::Null,
        "nothing to promote into: {stg}"
    );
    assert_eq!(prd["unknown"], Value::Null, "{matrix}");
    assert_eq!(
        prd["promote"],
        Value::Null,
        "nothing known to promote: {prd}"
    );
    assert_eq!(cell(&matrix, "web-api", "DEV")["unknown"], Value::Null);
}
