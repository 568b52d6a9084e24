//! Stack state against moto: cards per environment, account isolation, tags, outputs, NoEcho.

mod common;

use aws_sdk_cloudformation::types::{Parameter, Tag};
use axum::http::StatusCode;
use common::Harness;

async fn create(h: &Harness, env: &str, stack: &str, build: &str) {
    h.cfn(env)
        .create_stack()
        .stack_name(stack)
        .template_body(common::TEMPLATE)
        .parameters(
            Parameter::builder()
                .parameter_key("Greeting")
                .parameter_value("hi")
                .build(),
        )
        .tags(Tag::builder().key("deployer:build").value(build).build())
        .send()
        .await
        .unwrap();
    assert_eq!(h.settled(env, stack).await, "CREATE_COMPLETE");
}

#[tokio::test]
async fn a_stack_in_dev_is_not_seen_in_prd() {
    let h = Harness::start().await;
    create(&h, "DEV", "DEV-WEB", "web-master-3").await;
    // Same name as PRD's stack, but in DEV's account: PRD must not see it.
    create(&h, "DEV", "PRD-WEB", "web-master-2").await;

    let (status, cards) = h.stacks("web").await;
    assert_eq!(status, StatusCode::OK);
    let cards = cards.as_array().unwrap();
    let envs: Vec<&str> = cards
        .iter()
        .map(|c| c["environment"].as_str().unwrap())
        .collect();
    assert_eq!(
        envs,
        ["DEV", "STG", "PRD"],
        "one card per environment, in promotion order"
    );

    assert_eq!(cards[0]["name"], "DEV-WEB");
    assert_eq!(cards[0]["exists"], true);
    assert_eq!(cards[0]["status"], "CREATE_COMPLETE");
    assert_eq!(cards[0]["build"], "web-master-3");

    for card in &cards[1..] {
        assert_eq!(card["exists"], false, "{card}");
        assert!(
            card["status"].is_null() && card["build"].is_null(),
            "{card}"
        );
    }
    assert_eq!(cards[2]["name"], "PRD-WEB");
}

#[tokio::test]
async fn a_card_shows_status_build_time_and_outputs_but_never_no_echo_values() {
    let h = Harness::start().await;
    create(&h, "STG", "STG-WEB", "web-feature-login-12").await;

    let (_, cards) = h.stacks("web").await;
    let card = &cards[1];
    assert_eq!(card["environment"], "STG");
    assert_eq!(card["build"], "web-feature-login-12");
    assert!(card["updated_at"].as_str().unwrap().starts_with("20"));
    let output = &card["outputs"][0];
    assert_eq!(output["key"], "QueueUrl");
    assert_eq!(output["export_name"], "STG-WEB-QueueUrl");
    assert!(
        output["value"]
            .as_str()
            .unwrap()
            .contains(h.moto.account("STG")),
        "queue in STG's account"
    );

    let params = card["parameters"].as_array().unwrap();
    let greeting = params.iter().find(|p| p["key"] == "Greeting").unwrap();
    assert_eq!(greeting["value"], "hi");
    let secret = params.iter().find(|p| p["key"] == "Secret").unwrap();
    assert_eq!(secret["no_echo"], true);
    assert!(secret["value"].is_null());
    assert!(
        !card.to_string().contains("hunter2"),
        "the NoEcho default never leaves the server"
    );
}

#[tokio::test]
async fn the_card_follows_an_update() {
    let h = Harness::start().await;
    create(&h, "DEV", "DEV-WEB", "web-master-1").await;
    h.cfn("DEV")
        .update_stack()
        .stack_name("DEV-WEB")
        .template_body(common::TEMPLATE)
        .parameters(
            Parameter::builder()
                .parameter_key("Greeting")
                .parameter_value("hello again")
                .build(),
        )
        .tags(
            Tag::builder()
                .key("deployer:build")
                .value("web-master-2")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(h.settled("DEV", "DEV-WEB").await, "UPDATE_COMPLETE");
    let (_, cards) = h.stacks("web").await;
    assert_eq!(cards[0]["status"], "UPDATE_COMPLETE");
    assert_eq!(cards[0]["build"], "web-master-2");
}

#[tokio::test]
async fn a_parameter_the_build_declares_no_echo_is_hidden_whatever_the_stack_says() {
    let h = Harness::start().await;
    // Running now, from a template where Greeting is a plain parameter.
    create(&h, "DEV", "DEV-WEB", "web-master-1").await;
    let card = h.card("web", "DEV").await;
    assert_eq!(card["parameters"][0]["value"], "hi", "{card}");

    // A build that declares Greeting NoEcho, refused at pre-flight (it imports an export that
    // does not exist): the stack keeps its template, but the value is now a secret.
    let template = common::TEMPLATE
        .replace(
            "  Greeting:\n    Type: String\n",
            "  Greeting:\n    Type: String\n    NoEcho: \"true\"\n",
        )
        .replace(
            "      Value: !Ref Greeting\n",
            "      Value: !ImportValue no-such-export\n",
        );
    assert!(template.contains("NoEcho: \"true\"") && template.contains("no-such-export"));
    h.put("web/web-master-2/template.yaml", &template).await;
    h.put("web/web-master-2/parameters.json", r#"{"Greeting": "hi"}"#)
        .await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    h.state.catalog().forget_card("DEV", "DEV-WEB");
    let card = h.card("web", "DEV").await;
    let greeting = card["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "Greeting")
        .unwrap();
    assert_eq!(greeting["no_echo"], true, "{card}");
    assert!(greeting["value"].is_null(), "{card}");
    assert!(!card.to_string().contains("\"hi\""), "{card}");
}

#[tokio::test]
async fn a_card_is_read_from_aws_once_per_couple_of_seconds() {
    let h = Harness::start().await;
    create(&h, "DEV", "DEV-WEB", "web-master-1").await;
    assert_eq!(h.card("web", "DEV").await["exists"], true);
    // Gone in AWS, but a flood of page loads within the card's lifetime is answered from the
    // one read: CloudFormation is not asked again.
    h.cfn("DEV")
        .delete_stack()
        .stack_name("DEV-WEB")
        .send()
        .await
        .unwrap();
    let cards = futures::future::join_all((0..50).map(|_| h.card("web", "DEV"))).await;
    assert!(cards.iter().all(|c| c["exists"] == true));
    tokio::time::sleep(deployer::catalog::CARD_TTL).await;
    assert_eq!(
        h.card("web", "DEV").await["exists"],
        false,
        "read again after it expired"
    );
}
