//! Pre-flight: removed exports another stack imports, and a pause pressed before execution.

use super::*;

#[tokio::test]
async fn a_build_that_drops_an_export_another_stack_imports_is_refused() {
    // AWS: an update whose template no longer exports a name that another stack imports fails
    // ("Cannot delete export … as it is in use by …") and rolls back; ListImports tells who
    // imports it. The build's template keeps DEV-WEB-QueueUrl and drops DEV-WEB-Topic.
    let cfn = ScriptedCfn::new(
        true,
        vec![
            (
                Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
                StackStatus::UpdateComplete,
            ),
        ],
    );
    {
        let mut s = cfn.state.lock().unwrap();
        s.exports = vec!["DEV-WEB-QueueUrl".into(), "DEV-WEB-Topic".into()];
        s.importers = vec![(
            "DEV-WEB-Topic".into(),
            Ok(vec!["DEV-SEARCH".into(), "DEV-MAIL".into()]),
        )];
    }
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "refused", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains("\"DEV-WEB-Topic\" (imported by DEV-SEARCH, DEV-MAIL)"),
        "{message}"
    );
    assert!(
        !message.contains("QueueUrl"),
        "a kept export is not named: {message}"
    );
    assert_eq!(
        cfn.calls(),
        ["ListImports DEV-WEB-Topic"],
        "the stack is never touched"
    );

    // When ListImports cannot answer, the deployment goes ahead and says what it could not check.
    cfn.state.lock().unwrap().importers = vec![("DEV-WEB-Topic".into(), Err(()))];
    let detail = h.deploy("web", "DEV", "web-master-2").await;
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
            .contains("could not check who imports \"DEV-WEB-Topic\""),
        "{preflight}"
    );
}

#[tokio::test]
async fn an_export_nobody_imports_may_go() {
    // AWS: ListImports answers "Export … is not imported by any stack"; the update may remove it.
    let cfn = ScriptedCfn::new(
        true,
        vec![(
            Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
            StackStatus::UpdateComplete,
        )],
    );
    cfn.state.lock().unwrap().exports = vec!["DEV-WEB-QueueUrl".into(), "DEV-WEB-Old".into()];
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls()[0], "ListImports DEV-WEB-Old");
    let steps = detail["steps"].as_array().unwrap();
    let preflight = steps.iter().find(|s| s["name"] == "preflight").unwrap();
    assert!(
        preflight["message"]
            .as_str()
            .unwrap()
            .contains("1 removed export, none imported elsewhere"),
        "{preflight}"
    );
}

#[tokio::test]
async fn a_pause_pressed_during_pre_flight_holds_the_deployment_before_execution() {
    // Drill 5. AWS: nothing — the point is that ExecuteChangeSet is never called.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let h = harness(cfn.clone()).await;
    let gate = cfn.gate.lock().await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "validate").await;
    let (status, _) = h
        .send_json(
            "PUT",
            "/api/v1/pause",
            json!({"reason": "incident 42: database failover"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    drop(gate);
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains("incident 42: database failover"),
        "{message}"
    );
    assert!(message.contains("not touched"), "{message}");
    let calls = cfn.calls();
    assert!(!calls.contains(&"ExecuteChangeSet".to_owned()), "{calls:?}");
    assert!(calls.contains(&"DeleteChangeSet".to_owned()), "{calls:?}");
}
