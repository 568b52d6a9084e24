//! The deploy engine against moto with the real SDK: create, update, rollback, parameter shapes,
//! overrides, large templates, refusals, "no changes", and the one-active-per-stack race.

mod common;

use axum::http::StatusCode;
use common::{Harness, TEMPLATE};
use serde_json::json;

fn step_names(detail: &serde_json::Value) -> Vec<&str> {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn create_update_and_roll_back_to_an_older_build() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    h.put_build_with("web", "web-master-2", TEMPLATE, r#"{"Greeting": "two"}"#)
        .await;

    let first = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["operation"], "create");
    assert_eq!(first["actor"], "tester");
    assert_eq!(
        step_names(&first),
        [
            "fetch",
            "parameters",
            "validate",
            "preflight",
            "change_set",
            "execute",
            "watch"
        ]
    );
    assert!(first["finished_at"].is_string());
    let card = h.card("web", "DEV").await;
    assert_eq!(card["status"], "CREATE_COMPLETE");
    assert_eq!(card["build"], "web-master-1");

    let second = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["operation"], "update");
    assert!(
        second["change_set"].is_object(),
        "the change-set summary is kept: {second}"
    );
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-2");

    // Rolling back is deploying the older build.
    let back = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(back["status"], "succeeded", "{back}");
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-1");

    let (_, history) = h
        .get("/api/v1/deployments?project=web&environment=DEV")
        .await;
    let builds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["build"].as_str().unwrap())
        .collect();
    assert_eq!(
        builds,
        ["web-master-1", "web-master-2", "web-master-1"],
        "newest first"
    );
    for key in [
        "id",
        "project",
        "environment",
        "build",
        "status",
        "started_at",
        "finished_at",
        "actor",
    ] {
        assert!(history[0].get(key).is_some(), "history has {key}");
    }
    // Other stacks are untouched.
    assert_eq!(h.card("web", "STG").await["exists"], false);
}

#[tokio::test]
async fn every_parameter_shape_deploys_and_environment_overrides_win() {
    let h = Harness::start().await;
    let shapes = [
        ("web", "DEV", r#"{"Greeting": "map"}"#, "map"),
        (
            "web",
            "STG",
            r#"[{"ParameterKey": "Greeting", "ParameterValue": "cfn"}]"#,
            "cfn",
        ),
        (
            "web",
            "PRD",
            r#"{"Parameters": {"Greeting": "pipeline"}, "Tags": {"team": "web"}}"#,
            "override",
        ),
        ("web-api", "DEV", r#"["Greeting=key-value"]"#, "key-value"),
    ];
    for (i, (project, _, params, _)) in shapes.iter().enumerate() {
        h.put_build_with(project, &format!("{project}-master-{i}"), TEMPLATE, params)
            .await;
    }
    h.put(
        "web/web-master-2/parameters.PRD.json",
        r#"{"Greeting": "override"}"#,
    )
    .await;
    h.put(
        "web/web-master-2/parameters.DEV.json",
        r#"{"Greeting": "not for PRD"}"#,
    )
    .await;
    h.state.catalog().artifacts.invalidate("web");

    for (i, (project, env, _, expected)) in shapes.iter().enumerate() {
        let detail = h
            .deploy(project, env, &format!("{project}-master-{i}"))
            .await;
        assert_eq!(detail["status"], "succeeded", "{detail}");
        let card = h.card(project, env).await;
        let greeting = card["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == "Greeting")
            .unwrap();
        assert_eq!(greeting["value"], *expected, "{project} {env}");
    }
    let tags = h
        .cfn("PRD")
        .describe_stacks()
        .stack_name("PRD-WEB")
        .send()
        .await
        .unwrap();
    let tags = tags.stacks()[0].tags();
    assert!(
        tags.iter()
            .any(|t| t.key() == Some("team") && t.value() == Some("web")),
        "CodePipeline tags reach the stack"
    );
    assert!(
        tags.iter()
            .any(|t| t.key() == Some("deployer:build") && t.value() == Some("web-master-2"))
    );
}

#[tokio::test]
async fn a_template_over_51200_bytes_goes_by_url() {
    let h = Harness::start().await;
    let padding = format!("Metadata:\n  Notes: \"{}\"\n", "x".repeat(60_000));
    let big = format!("{TEMPLATE}{padding}");
    assert!(big.len() > 51_200);
    h.put_build_with("web", "web-master-5", &big, r#"{"Greeting": "big"}"#)
        .await;
    let detail = h.deploy("web", "DEV", "web-master-5").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(h.card("web", "DEV").await["status"], "CREATE_COMPLETE");
}

#[tokio::test]
async fn a_missing_import_is_refused_before_the_stack_is_touched() {
    let h = Harness::start().await;
    let importing = TEMPLATE.replace(
        "      Value: !Ref Greeting",
        "      Value:\n        Fn::ImportValue: !Sub \"${Greeting}-shared-topic\"",
    );
    h.put_build_with("web", "web-master-1", &importing, r#"{"Greeting": "DEV"}"#)
        .await;
    let detail = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(message.contains("\"DEV-shared-topic\""), "{message}");
    assert!(
        message.contains("no known build exports it"),
        "no build in the bucket declares it: {message}"
    );
    assert_eq!(
        h.card("web", "DEV").await["exists"],
        false,
        "the stack was never created"
    );
    assert!(!step_names(&detail).contains(&"execute"));

    // Builds of another project that deploys to DEV declare it (by a `Fn::Sub` of their
    // parameters): the refusal names the newest that does, and what to do.
    let exporting = TEMPLATE.replace(
        "Outputs:\n",
        "Outputs:\n  Shared:\n    Value: !Ref Queue\n    Export:\n      Name: !Sub \"${Greeting}-shared-topic\"\n",
    );
    for (build, template) in [
        ("web-api-master-6", exporting.as_str()),
        ("web-api-master-7", exporting.as_str()),
        ("web-api-master-8", TEMPLATE),
    ] {
        h.put_build_with("web-api", build, template, r#"{"Greeting": "DEV"}"#)
            .await;
    }
    let detail = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains(
            "\"DEV-shared-topic\", which is not exported in DEV; web-api-master-7 exports it: deploy web-api-master-7 to DEV first"
        ),
        "{message}"
    );
    assert_eq!(h.card("web", "DEV").await["exists"], false);

    // Doing so, the same build deploys.
    let detail = h.deploy("web-api", "DEV", "web-api-master-7").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    let detail = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
}

/// Who imports an export is told by ListImports on AWS; moto does not answer it, and here it
/// fails for every emulator (the proxy answers 503). The deployer reads the templates of the
/// account's stacks (those it deployed and those it did not), so a build that drops an export
/// another stack imports is refused all the same, naming the importers.
#[tokio::test]
async fn a_dropped_export_another_stack_imports_is_refused_without_list_imports() {
    let h = Harness::start_behind_proxy().await;
    let proxy = h.proxy.as_ref().unwrap();
    proxy.inject("ListImports", common::proxy::Fault::Unavailable, 10_000);
    // web exports DEV-WEB-QueueUrl; web-api imports it, and so does a stack made by hand.
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    let importing = TEMPLATE.replace(
        "      Value: !Ref Greeting",
        "      Value:\n        Fn::ImportValue: !Sub \"${Greeting}-WEB-QueueUrl\"",
    );
    h.put_build_with(
        "web-api",
        "web-api-master-1",
        &importing,
        r#"{"Greeting": "DEV"}"#,
    )
    .await;
    let dropping = TEMPLATE.replace(
        "    Export:\n      Name: !Sub \"${AWS::StackName}-QueueUrl\"\n",
        "",
    );
    assert!(!dropping.contains("Export"));
    h.put_build_with("web", "web-master-2", &dropping, r#"{"Greeting": "two"}"#)
        .await;
    h.put_build_with(
        "web-api",
        "web-api-master-2",
        &importing.replace(
            "    Export:\n      Name: !Sub \"${AWS::StackName}-QueueUrl\"\n",
            "",
        ),
        r#"{"Greeting": "DEV"}"#,
    )
    .await;

    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    assert_eq!(
        h.deploy("web-api", "DEV", "web-api-master-1").await["status"],
        "succeeded"
    );
    h.cfn("DEV")
        .create_stack()
        .stack_name("DEV-REPORTS")
        .template_body(
            "Parameters:\n  Env:\n    Type: String\nResources:\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /reports/queue-url\n      Type: String\n      Value:\n        Fn::ImportValue: !Sub \"${Env}-WEB-QueueUrl\"\n",
        )
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

    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains("\"DEV-WEB-QueueUrl\" (imported by DEV-REPORTS, DEV-WEB-API)"),
        "{message}"
    );
    assert!(!step_names(&detail).contains(&"change_set"), "{detail}");
    assert_eq!(h.card("web", "DEV").await["build"], "web-master-1");
    assert!(proxy.injected() >= 1, "ListImports was asked, and failed");
    // The rollback verdict tells the same before the click.
    let (_, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-2")
        .await;
    assert!(
        verdict["warnings"].as_array().unwrap().iter().any(|w| {
            let m = w["message"].as_str().unwrap();
            w["kind"] == "export_in_use" && m.contains("DEV-REPORTS, DEV-WEB-API import")
        }),
        "{verdict}"
    );

    // An export nobody imports may go: every stack's imports are known, so it is checked,
    // not left unchecked.
    let detail = h.deploy("web-api", "DEV", "web-api-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    let preflight = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "preflight")
        .unwrap();
    assert!(
        preflight["message"]
            .as_str()
            .unwrap()
            .contains("1 removed export, none imported elsewhere"),
        "{preflight}"
    );
}

#[tokio::test]
async fn unknown_missing_and_malformed_parameters_are_refused_by_name() {
    let h = Harness::start().await;
    h.put_build_with(
        "web",
        "web-master-1",
        TEMPLATE,
        r#"{"Greeting": "hi", "Colour": "blue"}"#,
    )
    .await;
    h.put_build_with("web", "web-master-2", TEMPLATE, r#"{"Secret": "s3cret"}"#)
        .await;
    h.put_build_with(
        "web",
        "web-master-3",
        TEMPLATE,
        "{\n  \"Greeting\": \"hi\"\n  \"Oops\": 1\n}",
    )
    .await;

    let unknown = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(unknown["status"], "refused");
    assert!(
        unknown["message"].as_str().unwrap().contains("\"Colour\""),
        "{unknown}"
    );
    let missing = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(missing["status"], "refused");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("\"Greeting\""),
        "{missing}"
    );
    let malformed = h.deploy("web", "DEV", "web-master-3").await;
    assert_eq!(malformed["status"], "refused");
    assert!(
        malformed["message"].as_str().unwrap().contains("line 3"),
        "{malformed}"
    );
    assert_eq!(h.card("web", "DEV").await["exists"], false);
}

#[tokio::test]
async fn deploying_the_running_build_again_is_no_changes() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "same"}"#)
        .await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    let again = h.deploy("web", "DEV", "web-master-1").await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert!(
        again["message"].as_str().unwrap().contains("no changes"),
        "{again}"
    );
}

#[tokio::test]
async fn two_racing_requests_get_one_202_and_one_409() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "race"}"#)
        .await;
    let body = json!({"project": "web", "environment": "DEV", "build": "web-master-1"});
    let (a, b) = tokio::join!(
        h.post("/api/v1/deployments", body.clone()),
        h.post("/api/v1/deployments", body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let (winner, loser) = if a.0 == StatusCode::ACCEPTED {
        (a.1, b.1)
    } else {
        (b.1, a.1)
    };
    assert_eq!(loser["error"]["code"], "conflict");
    assert!(
        loser["error"]["message"]
            .as_str()
            .unwrap()
            .contains(winner["id"].as_str().unwrap()),
        "the 409 names the active deployment"
    );
    assert_eq!(loser["error"]["deployment_id"], winner["id"]);
    h.wait(winner["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn bad_deploy_requests_are_answered_clearly() {
    let h = Harness::start().await;
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "x"}"#)
        .await;
    h.put("web/web-master-2/template.yaml", TEMPLATE).await;

    let cases = [
        (
            json!({"project": "nope", "environment": "DEV", "build": "web-master-1"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"project": "web", "environment": "QA", "build": "web-master-1"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"project": "web", "environment": "DEV", "build": "web-master-99"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"project": "web", "environment": "DEV"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"project": "web", "environment": "DEV", "build": "web-master-2"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = h.post("/api/v1/deployments", body.clone()).await;
        assert_eq!(status, expected, "{body} -> {answer}");
        assert!(answer["error"]["message"].is_string());
    }
    let (_, answer) = h.request_deploy("web", "DEV", "web-master-2").await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no parameters.json")
    );
    let (status, _) = h.get("/api/v1/deployments/d-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.get("/api/v1/deployments?limit=zero").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The templates of the environment's stacks are read once per state of each stack: a second
/// check reads none again, and after a stack changes only that one is read.
#[tokio::test]
async fn a_stacks_template_is_read_again_only_after_the_stack_changed() {
    let h = Harness::start_behind_proxy().await;
    let proxy = h.proxy.as_ref().unwrap();
    let importing = TEMPLATE.replace(
        "      Value: !Ref Greeting",
        "      Value:\n        Fn::ImportValue: !Sub \"${Greeting}-WEB-QueueUrl\"",
    );
    let without_export = |template: &str| {
        template.replace(
            "    Export:\n      Name: !Sub \"${AWS::StackName}-QueueUrl\"\n",
            "",
        )
    };
    h.put_build_with("web", "web-master-1", TEMPLATE, r#"{"Greeting": "one"}"#)
        .await;
    h.put_build_with(
        "web",
        "web-master-2",
        &without_export(TEMPLATE),
        r#"{"Greeting": "two"}"#,
    )
    .await;
    h.put_build_with(
        "web-api",
        "web-api-master-1",
        &importing,
        r#"{"Greeting": "DEV"}"#,
    )
    .await;
    h.put_build_with(
        "web-api",
        "web-api-master-2",
        &without_export(&importing),
        r#"{"Greeting": "DEV"}"#,
    )
    .await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-1").await["status"],
        "succeeded"
    );
    assert_eq!(
        h.deploy("web-api", "DEV", "web-api-master-1").await["status"],
        "succeeded"
    );
    assert_eq!(proxy.forwarded("GetTemplate"), 0, "no export dropped yet");

    let verdict = || async {
        let (_, verdict) = h
            .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-2")
            .await;
        let text = verdict.to_string();
        assert!(
            text.contains("export_in_use") && text.contains("DEV-WEB-API"),
            "{verdict}"
        );
    };
    verdict().await;
    assert_eq!(proxy.forwarded("GetTemplate"), 2, "DEV-WEB and DEV-WEB-API");
    verdict().await;
    assert_eq!(proxy.forwarded("GetTemplate"), 2, "neither changed");
    assert_eq!(proxy.forwarded("ListStacks"), 2, "listed for each check");

    // web-api drops its own export (nobody imports it): its pre-flight reads nothing again; the
    // next check reads web-api's changed stack, and web's only if it changed.
    let detail = h.deploy("web-api", "DEV", "web-api-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(proxy.forwarded("GetTemplate"), 2, "{detail}");
    verdict().await;
    assert_eq!(proxy.forwarded("GetTemplate"), 3);
}
