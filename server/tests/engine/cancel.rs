//! Cancels: an update cancelled in CloudFormation, a create deleted once confirmed, a cancel
//! that came too late.

use super::*;

#[tokio::test]
async fn cancelling_an_update_cancels_it_in_cloudformation() {
    // AWS: CancelUpdateStack during UPDATE_IN_PROGRESS → UPDATE_ROLLBACK_IN_PROGRESS →
    // UPDATE_ROLLBACK_COMPLETE.
    let cfn = ScriptedCfn::new(
        true,
        vec![(
            Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
            StackStatus::UpdateInProgress,
        )],
    );
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = Some(StackStatus::UpdateInProgress);
        s.on_cancel = vec![
            (
                Some((
                    "DEV-WEB",
                    STACK,
                    "UPDATE_ROLLBACK_IN_PROGRESS",
                    Some("User Initiated"),
                )),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_ROLLBACK_COMPLETE", None)),
                StackStatus::UpdateRollbackComplete,
            ),
        ];
    }
    let h = harness(cfn.clone()).await;
    let (_, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2"}),
        )
        .await;
    let id = started["id"].as_str().unwrap().to_owned();
    wait_for_step(&h, &id, "watch").await;
    let (status, answer) = h
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert_eq!(detail["rolled_back"], true);
    assert!(cfn.calls().contains(&"CancelUpdateStack".to_owned()));
    let (status, _) = h
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an ended deployment cannot be cancelled"
    );

    // The audit trail has the request, the cancel and the outcome, newest first.
    let (_, audit) = h.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["deploy_finished", "cancel", "deploy_requested"]);
    assert_eq!(audit[0]["outcome"], "cancelled");
    assert_eq!(audit[1]["deployment_id"], id.as_str());
}

#[tokio::test]
async fn cancelling_a_create_asks_first_then_deletes_the_half_created_stack() {
    // AWS: CREATE_IN_PROGRESS; cancelling a create is DeleteStack → DELETE_IN_PROGRESS →
    // DELETE_COMPLETE (the stack is gone).
    let cfn = ScriptedCfn::new(
        false,
        vec![(
            Some(("DEV-WEB", STACK, "CREATE_IN_PROGRESS", None)),
            StackStatus::CreateInProgress,
        )],
    );
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = Some(StackStatus::CreateInProgress);
        s.on_delete = vec![
            (
                Some((
                    "DEV-WEB",
                    STACK,
                    "DELETE_IN_PROGRESS",
                    Some("User Initiated"),
                )),
                StackStatus::DeleteInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "DELETE_COMPLETE", None)),
                StackStatus::DeleteComplete,
            ),
        ];
    }
    let h = harness(cfn.clone()).await;
    let (_, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2"}),
        )
        .await;
    let id = started["id"].as_str().unwrap().to_owned();
    wait_for_step(&h, &id, "watch").await;
    let (status, answer) = h
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "confirmation_required");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deletes the half-created stack")
    );
    assert!(
        !cfn.calls().contains(&"DeleteStack".to_owned()),
        "nothing is deleted without confirmation"
    );

    let (status, _) = h
        .post(
            &format!("/api/v1/deployments/{id}/cancel"),
            json!({"confirm_delete": true}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert!(cfn.calls().contains(&"DeleteStack".to_owned()));
}

#[tokio::test]
async fn a_cancel_refused_because_the_update_is_finishing_records_what_really_happened() {
    // AWS: CancelUpdateStack during UPDATE_COMPLETE_CLEANUP_IN_PROGRESS answers ValidationError;
    // the update completes.
    let cfn = ScriptedCfn::new(
        true,
        vec![(
            Some((
                "DEV-WEB",
                STACK,
                "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                None,
            )),
            StackStatus::UpdateCompleteCleanupInProgress,
        )],
    );
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = Some(StackStatus::UpdateCompleteCleanupInProgress);
        s.refuse_cancel = Some("ValidationError");
    }
    let h = harness(cfn.clone()).await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "watch").await;
    let (status, _) = h
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for _ in 0..200 {
        if cfn.calls().contains(&"CancelUpdateStack".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = None;
        s.script = vec![(
            Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
            StackStatus::UpdateComplete,
        )];
    }
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("cancel came too late"),
        "{detail}"
    );
}

/// `pause --cancel-in-flight` pulls the brake everywhere, but cancels (rolls back) only where the
/// one who pauses may cancel: a deployer limited to DEV and STG leaves a running PRD update alone.
#[tokio::test]
async fn a_pause_cancels_in_flight_only_the_deployments_its_actor_may_cancel() {
    // AWS: every call waits while the test holds the gate (an operation still being prepared).
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let h = harness(cfn.clone()).await;
    let gate = cfn.gate.lock().await;
    let dev = start(&h).await;
    let (status, prd) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "PRD", "build": "web-master-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{prd}");
    let prd = prd["id"].as_str().unwrap().to_owned();
    wait_for_step(&h, &dev, "validate").await;
    wait_for_step(&h, &prd, "validate").await;

    let dev_only = h.token_of("dave", "dave", "deployer").await;
    let request = axum::http::Request::put("/api/v1/pause")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"reason": "incident", "cancel_in_flight": true}).to_string(),
        ))
        .unwrap();
    let (status, body) = h.with_token(&dev_only, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = h.state.engine().store();
    let dev_record = store.record(&dev).await.unwrap().unwrap();
    let prd_record = store.record(&prd).await.unwrap().unwrap();
    assert!(dev_record.cancel.is_some(), "DEV is cancelled by the pause");
    assert!(
        prd_record.cancel.is_none(),
        "PRD is not the deployer's to cancel"
    );
    drop(gate);
    assert_eq!(h.wait(&dev).await["status"], "cancelled");
    h.wait(&prd).await;
}
