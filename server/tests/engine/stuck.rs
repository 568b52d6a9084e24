//! Stacks CloudFormation left stuck, and stacks changed by someone else — which moto cannot
//! produce: a first create that failed and rolled back (`ROLLBACK_COMPLETE`: it cannot be updated,
//! only deleted and created again), a rollback that failed (`UPDATE_ROLLBACK_FAILED`), an
//! operation nobody in the deployer started, a LastUpdatedTime after the deployer's last change
//! (moto keeps LastUpdatedTime at the creation time).

use super::*;

fn create_to_complete() -> Vec<Frame> {
    vec![
        (
            Some(("DEV-WEB", STACK, "CREATE_IN_PROGRESS", None)),
            StackStatus::CreateInProgress,
        ),
        (
            Some(("Queue", "AWS::SQS::Queue", "CREATE_COMPLETE", None)),
            StackStatus::CreateInProgress,
        ),
        (
            Some(("DEV-WEB", STACK, "CREATE_COMPLETE", None)),
            StackStatus::CreateComplete,
        ),
    ]
}

#[tokio::test]
async fn a_stack_whose_first_create_failed_is_deleted_and_created_again_once_confirmed() {
    // AWS: CreateStack failed and rolled back → ROLLBACK_COMPLETE, no resources left; UpdateStack
    // and CreateChangeSet refuse such a stack; DeleteStack removes it at once.
    let cfn = ScriptedCfn::new(true, create_to_complete());
    cfn.state.lock().unwrap().status = Some(StackStatus::RollbackComplete);
    let h = harness(cfn.clone()).await;

    // Without the confirmation: asked for it, nothing touched.
    let (status, body) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "confirmation_required");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ROLLBACK_COMPLETE") && message.contains("recreate"),
        "{message}"
    );
    assert!(cfn.calls().is_empty(), "{:?}", cfn.calls());

    // Confirmed: deleted, then created from the build.
    let (status, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2", "recreate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["recreate"], true);
    let done = h.wait(started["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["operation"], "create");
    assert_eq!(cfn.calls(), ["DeleteStack", "CreateStack"]);
    let prepared = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "change_set")
        .unwrap();
    assert!(
        prepared["message"]
            .as_str()
            .unwrap()
            .starts_with("the failed stack deleted"),
        "{prepared}"
    );
    let (_, cards) = h.get("/api/v1/projects/web/stacks").await;
    assert_eq!(cards[0]["status"], "CREATE_COMPLETE", "{cards}");
}

#[tokio::test]
async fn a_failed_rollback_lists_what_failed_and_continues_skipping_it() {
    // AWS: an update failed, and so did its rollback (a resource changed outside CloudFormation):
    // UPDATE_ROLLBACK_FAILED; DescribeStackResources shows the resource UPDATE_FAILED;
    // ContinueUpdateRollback with it in ResourcesToSkip ends UPDATE_ROLLBACK_COMPLETE.
    let cfn = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = cfn.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateRollbackFailed);
        s.failed = vec![app::model::FailedResource {
            logical_id: "Queue".into(),
            resource_type: "AWS::SQS::Queue".into(),
            status: "UPDATE_FAILED".into(),
            reason: Some("Queue was deleted outside CloudFormation".into()),
        }];
    }
    let h = harness(cfn.clone()).await;
    let (_, cards) = h.get("/api/v1/projects/web/stacks").await;
    assert_eq!(cards[0]["status"], "UPDATE_ROLLBACK_FAILED");
    assert_eq!(
        cards[0]["failed_resources"][0]["logical_id"], "Queue",
        "{cards}"
    );
    assert_eq!(
        cards[0]["failed_resources"][0]["reason"],
        "Queue was deleted outside CloudFormation"
    );

    let url = "/api/v1/projects/web/stacks/DEV/continue-rollback";
    // Only what failed may be skipped.
    let (status, body) = h.post(url, json!({"skip": ["Message"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Queue"));
    assert!(cfn.calls().is_empty());

    let (status, card) = h.post(url, json!({"skip": ["Queue"]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{card}");
    assert_eq!(cfn.calls(), ["ContinueUpdateRollback skip=Queue"]);
    assert_eq!(card["status"], "UPDATE_ROLLBACK_COMPLETE", "{card}");
    let (_, audit) = h.audit("action=continue_rollback").await;
    assert!(
        audit[0]["detail"]
            .as_str()
            .unwrap()
            .contains("skipping Queue"),
        "{audit}"
    );
    // Not stuck any more: nothing to continue.
    let (status, body) = h.post(url, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // An environment nobody configured is not found.
    let (status, _) = h
        .post(
            "/api/v1/projects/web/stacks/QA/continue-rollback",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stack_changed_outside_the_deployer_is_shown_as_such_and_not_collided_with() {
    // AWS: someone runs an update by hand (UPDATE_IN_PROGRESS, no deployment of ours); later the
    // stack's LastUpdatedTime is after the deployer's last deployment ended.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let h = harness(cfn.clone()).await;
    assert_eq!(
        h.deploy("web", "DEV", "web-master-2").await["status"],
        "succeeded"
    );
    tokio::time::sleep(deployer::catalog::CARD_TTL).await;
    assert_eq!(
        h.card("web", "DEV").await["outside"],
        serde_json::Value::Null
    );

    cfn.state.lock().unwrap().status = Some(StackStatus::UpdateInProgress);
    card_saying(&h, "did not start").await;
    // A deploy now is refused with that reason, before any change set is made.
    let refused = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(refused["status"], "refused", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("did not start"),
        "{refused}"
    );

    {
        let mut s = cfn.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateComplete);
        s.updated_at = Some(chrono::Utc::now() + chrono::Duration::minutes(1));
    }
    card_saying(&h, "changed outside the deployer").await;
}

/// Reads DEV-WEB's card until its `outside` says `expected`; fails after ten cache lifetimes.
/// A fixed wait of one lifetime is not enough: a deployment's end forgets the cached card and
/// reads the stack again (`deploy/finish.rs`) after its outcome is recorded, so on a busy machine
/// that read can land after the test has seen the outcome and changed the scripted stack, and
/// the card cached then is a moment younger than the change.
async fn card_saying(h: &Harness, expected: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + deployer::catalog::CARD_TTL * 10;
    loop {
        let card = h.card("web", "DEV").await;
        if card["outside"]
            .as_str()
            .is_some_and(|words| words.contains(expected))
        {
            return card;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the card never said {expected:?}: {card}"
        );
        tokio::time::sleep(deployer::catalog::CARD_TTL / 4).await;
    }
}

#[tokio::test]
async fn a_replacement_that_loses_data_is_flagged_while_the_update_waits_for_approval() {
    // AWS: DescribeChangeSet lists the database replaced (a property that needs a new instance)
    // and the queue modified in place.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().changes = Some(vec![
        app::deployment::ResourceChange {
            action: "Modify".into(),
            logical_id: "Database".into(),
            resource_type: "AWS::RDS::DBInstance".into(),
            replacement: Some("True".into()),
            interrupts: false,
        },
        app::deployment::ResourceChange {
            action: "Modify".into(),
            logical_id: "Queue".into(),
            resource_type: "AWS::SQS::Queue".into(),
            replacement: Some("Conditional".into()),
            interrupts: false,
        },
    ]);
    let h = Harness::start_changed(Some(cfn.clone()), false, |config, _| {
        config.environments[0].protection =
            Some(deployer::config::Protection { by_another: false });
    })
    .await;
    h.put("web/web-master-2/template.yaml", TEMPLATE).await;
    h.put("web/web-master-2/parameters.json", r#"{"Greeting": "two"}"#)
        .await;
    let waiting = h.wait(&start(&h).await).await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    let changes = waiting["change_set"]["changes"].as_array().unwrap();
    assert_eq!(changes[0]["logical_id"], "Database");
    assert_eq!(
        changes[0]["interrupts"], true,
        "a database replaced: {waiting}"
    );
    assert_eq!(changes[1]["interrupts"], false, "a queue: {waiting}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("1 change interrupts users or may lose data"),
        "{waiting}"
    );
    assert!(!cfn.calls().contains(&"ExecuteChangeSet".to_owned()));
    let (status, _) = h
        .post(
            &format!(
                "/api/v1/deployments/{}/approve",
                waiting["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = waiting["id"].as_str().unwrap();
    for _ in 0..400 {
        let (_, d) = h.deployment(id).await;
        if d["status"] == "succeeded" {
            assert!(cfn.calls().contains(&"ExecuteChangeSet".to_owned()));
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the approved update did not finish");
}

#[tokio::test]
async fn the_verdict_names_the_stacks_that_import_an_export_the_build_drops() {
    // AWS: the stack exports DEV-WEB-Legacy, which DEV-API imports (ListImports); the build no
    // longer exports it.
    let cfn = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = cfn.state.lock().unwrap();
        s.exports = vec!["DEV-WEB-Legacy".into()];
        s.importers = vec![("DEV-WEB-Legacy".into(), Ok(vec!["DEV-API".into()]))];
    }
    let h = harness(cfn.clone()).await;
    let (status, verdict) = h
        .get("/api/v1/projects/web/rollback?environment=DEV&build=web-master-2")
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["verdict"], "warnings");
    let warning = verdict["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "export_in_use")
        .unwrap_or_else(|| panic!("{verdict}"));
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains("DEV-WEB-Legacy") && message.contains("DEV-API"),
        "{message}"
    );
}
