//! How deployments end: failures, rollbacks, failed rollbacks, resource counts, AWS failures
//! waited out, a stale status, and a panic.

use super::*;

#[tokio::test]
async fn an_update_whose_resource_fails_is_rolled_back_and_reported() {
    // AWS: UPDATE_IN_PROGRESS → resource events → a resource UPDATE_FAILED →
    // UPDATE_ROLLBACK_IN_PROGRESS → UPDATE_ROLLBACK_COMPLETE.
    let cfn = ScriptedCfn::new(
        true,
        vec![
            (
                Some((
                    "DEV-WEB",
                    STACK,
                    "UPDATE_IN_PROGRESS",
                    Some("User Initiated"),
                )),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("Queue", "AWS::SQS::Queue", "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("Queue", "AWS::SQS::Queue", "UPDATE_COMPLETE", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some((
                    "Message",
                    "AWS::SSM::Parameter",
                    "CREATE_FAILED",
                    Some("Parameter /web/greeting already exists"),
                )),
                StackStatus::UpdateInProgress,
            ),
            (
                Some((
                    "DEV-WEB",
                    STACK,
                    "UPDATE_ROLLBACK_IN_PROGRESS",
                    Some("The following resource(s) failed to create: [Message]."),
                )),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some(("Queue", "AWS::SQS::Queue", "UPDATE_COMPLETE", None)),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_ROLLBACK_COMPLETE", None)),
                StackStatus::UpdateRollbackComplete,
            ),
        ],
    );
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["rolled_back"], true);
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains(
            "Message (AWS::SSM::Parameter) failed: Parameter /web/greeting already exists"
        ),
        "{message}"
    );
    assert!(message.contains("rolled back"), "{message}");
    assert_eq!(
        detail["events"].as_array().unwrap().len(),
        7,
        "every event is kept, once, in order"
    );
    assert_eq!(detail["events"][3]["status"], "CREATE_FAILED");
    assert_eq!(detail["change_set"]["modify"], 1);
    assert_eq!(detail["change_set"]["replace"], 1);
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
}

#[tokio::test]
async fn a_failed_rollback_says_the_stack_needs_attention() {
    // AWS: the rollback itself fails → UPDATE_ROLLBACK_FAILED.
    let cfn = ScriptedCfn::new(
        true,
        vec![
            (
                Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some((
                    "Queue",
                    "AWS::SQS::Queue",
                    "UPDATE_FAILED",
                    Some("Rate exceeded"),
                )),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some((
                    "Queue",
                    "AWS::SQS::Queue",
                    "UPDATE_FAILED",
                    Some("Resource is not in the state stackUpdateComplete"),
                )),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_ROLLBACK_FAILED", None)),
                StackStatus::UpdateRollbackFailed,
            ),
        ],
    );
    let h = harness(cfn).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["rolled_back"], false);
    let message = detail["message"].as_str().unwrap();
    assert!(
        message.contains("Queue (AWS::SQS::Queue) failed: Rate exceeded"),
        "{message}"
    );
    assert!(message.contains("rollback failed"), "{message}");
}

#[tokio::test]
async fn resources_are_counted_as_they_finish() {
    // AWS: a successful update emits per-resource events over several polls.
    let cfn = ScriptedCfn::new(
        true,
        vec![
            (
                Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("Queue", "AWS::SQS::Queue", "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("Queue", "AWS::SQS::Queue", "UPDATE_COMPLETE", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some(("Message", "AWS::SSM::Parameter", "CREATE_COMPLETE", None)),
                StackStatus::UpdateCompleteCleanupInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_COMPLETE", None)),
                StackStatus::UpdateComplete,
            ),
        ],
    );
    let h = harness(cfn).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["resources_total"], 2);
    assert_eq!(detail["resources_done"], 2);
}

#[tokio::test]
async fn the_watcher_waits_out_aws_failures_and_reports_the_real_outcome() {
    // AWS: DescribeStackEvents and DescribeStacks throttled many times in a row (more than the
    // retries allowed before execution) while the update goes on and fails.
    let mut script = update_to_complete();
    script.truncate(1);
    script.push((
        Some((
            "Queue",
            "AWS::SQS::Queue",
            "UPDATE_FAILED",
            Some("Queue name taken"),
        )),
        StackStatus::UpdateRollbackInProgress,
    ));
    script.push((
        Some(("DEV-WEB", STACK, "UPDATE_ROLLBACK_COMPLETE", None)),
        StackStatus::UpdateRollbackComplete,
    ));
    let cfn = ScriptedCfn::new(true, script);
    // More failures in a row than the retries allowed before execution (8); the backoff is
    // capped at 15 polls (the tests poll every 50 ms).
    let mut faults = vec![("DescribeStacks", Fault::Throttling)];
    faults.extend((0..10).map(|_| ("DescribeStackEvents", Fault::Throttling)));
    cfn.state.lock().unwrap().faults = faults;
    let h = harness(cfn.clone()).await;
    let id = start(&h).await;
    let mut saw_waiting = false;
    for _ in 0..2000 {
        let (_, d) = h.get(&format!("/api/v1/deployments/{id}")).await;
        if d["waiting_for_aws"] == true {
            saw_waiting = true;
            assert!(
                d["waiting_reason"].as_str().unwrap().contains("Throttling"),
                "{d}"
            );
        }
        if !matches!(
            d["status"].as_str(),
            Some("pending" | "running" | "cancelling")
        ) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let detail = h.wait(&id).await;
    assert!(saw_waiting, "the deployment said it was waiting for AWS");
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["rolled_back"], true);
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("Queue name taken")
    );
}

#[tokio::test]
async fn a_stale_terminal_status_right_after_execute_does_not_end_the_deployment() {
    // AWS: DescribeStacks right after ExecuteChangeSet still shows the previous UPDATE_COMPLETE;
    // then the update shows itself, fails and rolls back.
    let cfn = ScriptedCfn::new(
        true,
        vec![
            (None, StackStatus::UpdateComplete),
            (None, StackStatus::UpdateComplete),
            (
                Some(("DEV-WEB", STACK, "UPDATE_IN_PROGRESS", None)),
                StackStatus::UpdateInProgress,
            ),
            (
                Some((
                    "Queue",
                    "AWS::SQS::Queue",
                    "UPDATE_FAILED",
                    Some("Subnet subnet-1 does not exist"),
                )),
                StackStatus::UpdateRollbackInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "UPDATE_ROLLBACK_COMPLETE", None)),
                StackStatus::UpdateRollbackComplete,
            ),
        ],
    );
    cfn.state.lock().unwrap().status_after_execute = Some(StackStatus::UpdateComplete);
    let h = harness(cfn).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("Subnet subnet-1 does not exist"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_panic_in_a_deployment_ends_it_failed_and_frees_the_stack() {
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().panic_in_summary = true;
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("internal error"),
        "{detail}"
    );
    cfn.state.lock().unwrap().panic_in_summary = false;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(
        detail["status"], "succeeded",
        "the stack's lock was freed: {detail}"
    );
}
