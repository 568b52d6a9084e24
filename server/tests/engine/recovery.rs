//! Getting stuck stacks moving, and what must not be taken for a way out: a deploy onto a stack
//! whose update or rollback failed, a stack whose create and its rollback failed
//! (`ROLLBACK_FAILED`), a continued rollback that CloudFormation starts a moment late, a pause,
//! and a change set made obsolete by someone else's change. Moto produces none of these: the
//! scripted CloudFormation does, with [`Recovering`] on top for what it does not model.

use std::collections::VecDeque;
use std::sync::Mutex;

use app::deployment::StackEvent;
use chrono::{DateTime, Utc};
use deployer::aws::AwsFailure;
use deployer::aws::cfn::{
    ChangeSetExecution, ChangeSetState, StackInfo, StackRequest, TemplateSource, TemplateSummary,
};

use super::*;

/// What ExecuteChangeSet meets on its first call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstExecute {
    /// Answered as the scripted CloudFormation answers.
    Normal,
    /// The request never reached CloudFormation (a connection timeout, retryable) and meanwhile
    /// somebody updated the stack by hand: the change set is OBSOLETE, and every later
    /// ExecuteChangeSet is refused with `InvalidChangeSetStatus`.
    LostWhileTheStackChanged,
    /// The request went through but its answer was lost; the retry is refused with
    /// `InvalidChangeSetStatus` (the change set is executing).
    AppliedAnswerLost,
}

/// The scripted CloudFormation, and on top of it: DescribeStacks answers that lag behind a
/// ContinueUpdateRollback or DeleteStack (one per read), CreateChangeSet refusing a stack that
/// cannot be updated, and DescribeChangeSet's ExecutionStatus.
struct Recovering {
    inner: Arc<ScriptedCfn>,
    /// The statuses DescribeStacks shows next, one per read (`None`: the stack is gone); once
    /// used up the scripted stack answers again.
    next: Mutex<VecDeque<Option<StackStatus>>>,
    after_continue: Vec<Option<StackStatus>>,
    after_delete: Vec<Option<StackStatus>>,
    first_execute: FirstExecute,
    executes: Mutex<u32>,
    execution: Mutex<ChangeSetExecution>,
}

impl Recovering {
    fn new(inner: Arc<ScriptedCfn>) -> Recovering {
        Recovering {
            inner,
            next: Mutex::new(VecDeque::new()),
            after_continue: Vec::new(),
            after_delete: Vec::new(),
            first_execute: FirstExecute::Normal,
            executes: Mutex::new(0),
            execution: Mutex::new(ChangeSetExecution::NotExecuted),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.inner.calls()
    }
}

async fn harness_of(cfn: Arc<Recovering>) -> Harness {
    let h = Harness::start_with(Some(cfn)).await;
    h.put("web/web-master-2/template.yaml", TEMPLATE).await;
    h.put("web/web-master-2/parameters.json", r#"{"Greeting": "two"}"#)
        .await;
    h
}

#[async_trait::async_trait]
impl CloudFormation for Recovering {
    async fn template_summary(&self, t: &TemplateSource) -> Result<TemplateSummary, AwsFailure> {
        self.inner.template_summary(t).await
    }
    async fn export_names(&self) -> Result<Vec<String>, AwsFailure> {
        self.inner.export_names().await
    }
    async fn importers(&self, export: &str) -> Result<Vec<String>, AwsFailure> {
        self.inner.importers(export).await
    }
    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure> {
        if let Some(next) = self.next.lock().unwrap().pop_front() {
            let mut s = self.inner.state.lock().unwrap();
            s.exists = next.is_some();
            s.status = next;
        }
        self.inner.stack(stack).await
    }
    async fn no_echo_keys(&self, stack: &str) -> Result<Vec<String>, AwsFailure> {
        self.inner.no_echo_keys(stack).await
    }
    async fn create_stack(&self, r: &StackRequest, token: &str) -> Result<String, AwsFailure> {
        self.inner.create_stack(r, token).await
    }
    async fn create_change_set(
        &self,
        r: &StackRequest,
        name: &str,
        token: &str,
    ) -> Result<(), AwsFailure> {
        // AWS: "Stack:… is in UPDATE_ROLLBACK_FAILED state and can not be updated."
        let status = self.inner.state.lock().unwrap().status;
        if let Some(s @ (StackStatus::UpdateRollbackFailed | StackStatus::RollbackFailed)) = status
        {
            return Err(AwsFailure {
                message: Some(format!(
                    "Stack:DEV-WEB is in {} state and can not be updated.",
                    s.as_aws_str()
                )),
                ..scripted::fault("ValidationError", false)
            });
        }
        self.inner.create_change_set(r, name, token).await
    }
    async fn describe_change_set(&self, s: &str, n: &str) -> Result<ChangeSetState, AwsFailure> {
        self.inner.describe_change_set(s, n).await
    }
    async fn change_set_execution(
        &self,
        _: &str,
        _: &str,
    ) -> Result<ChangeSetExecution, AwsFailure> {
        Ok(*self.execution.lock().unwrap())
    }
    async fn execute_change_set(&self, s: &str, n: &str, token: &str) -> Result<(), AwsFailure> {
        let call = {
            let mut executes = self.executes.lock().unwrap();
            *executes += 1;
            *executes
        };
        match (self.first_execute, call) {
            (FirstExecute::Normal, _) => self.inner.execute_change_set(s, n, token).await,
            (FirstExecute::LostWhileTheStackChanged, 1) => {
                *self.execution.lock().unwrap() = ChangeSetExecution::Obsolete;
                let mut state = self.inner.state.lock().unwrap();
                state.updated_at = Some(Utc::now());
                Err(scripted::fault("RequestTimeout", true))
            }
            (FirstExecute::AppliedAnswerLost, 1) => {
                self.inner.execute_change_set(s, n, token).await?;
                *self.execution.lock().unwrap() = ChangeSetExecution::Executed;
                Err(scripted::fault("RequestTimeout", true))
            }
            _ => Err(scripted::fault("InvalidChangeSetStatus", false)),
        }
    }
    async fn delete_change_set(&self, s: &str, n: &str) -> Result<(), AwsFailure> {
        self.inner.delete_change_set(s, n).await
    }
    async fn cancel_update(&self, s: &str, token: &str) -> Result<(), AwsFailure> {
        self.inner.cancel_update(s, token).await
    }
    async fn delete_stack(&self, s: &str, token: &str) -> Result<(), AwsFailure> {
        let was = self.inner.state.lock().unwrap().status;
        self.inner.delete_stack(s, token).await?;
        if was != Some(StackStatus::DeleteInProgress) {
            self.next.lock().unwrap().extend(self.after_delete.clone());
        }
        Ok(())
    }
    async fn change_sets(
        &self,
        s: &str,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, AwsFailure> {
        self.inner.change_sets(s).await
    }
    async fn failed_resources(
        &self,
        s: &str,
    ) -> Result<Vec<app::model::FailedResource>, AwsFailure> {
        self.inner.failed_resources(s).await
    }
    async fn continue_update_rollback(
        &self,
        s: &str,
        skip: &[String],
        token: &str,
    ) -> Result<(), AwsFailure> {
        self.inner.continue_update_rollback(s, skip, token).await?;
        if !self.after_continue.is_empty() {
            // AWS answers at once, but DescribeStacks shows the old status for a moment.
            self.inner.state.lock().unwrap().status = Some(StackStatus::UpdateRollbackFailed);
            self.next
                .lock()
                .unwrap()
                .extend(self.after_continue.clone());
        }
        Ok(())
    }
    async fn events(
        &self,
        s: &str,
        after: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StackEvent>, AwsFailure> {
        self.inner.events(s, after, since).await
    }
}

fn failed_queue() -> Vec<app::model::FailedResource> {
    vec![app::model::FailedResource {
        logical_id: "Queue".into(),
        resource_type: "AWS::SQS::Queue".into(),
        status: "UPDATE_FAILED".into(),
        reason: Some("Queue was deleted outside CloudFormation".into()),
    }]
}

#[tokio::test]
async fn a_deploy_onto_a_stack_whose_update_or_rollback_failed_is_refused_with_the_way_out() {
    // AWS: an update failed and so did its rollback (UPDATE_ROLLBACK_FAILED), or an update run
    // with rollback disabled failed (UPDATE_FAILED); CreateChangeSet refuses the first ("is in
    // UPDATE_ROLLBACK_FAILED state and can not be updated").
    let inner = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = inner.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateRollbackFailed);
        s.failed = failed_queue();
    }
    let cfn = Arc::new(Recovering::new(inner.clone()));
    let h = harness_of(cfn.clone()).await;

    let refused = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(refused["status"], "refused", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("UPDATE_ROLLBACK_FAILED")
            && message.contains("Continue rollback")
            && message.contains("/continue-rollback"),
        "{message}"
    );
    assert!(cfn.calls().is_empty(), "nothing made: {:?}", cfn.calls());

    inner.state.lock().unwrap().status = Some(StackStatus::UpdateFailed);
    tokio::time::sleep(deployer::catalog::CARD_TTL).await;
    let refused = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(refused["status"], "refused", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("UPDATE_FAILED") && message.contains("roll"),
        "{message}"
    );
    assert!(cfn.calls().is_empty(), "nothing made: {:?}", cfn.calls());
}

#[tokio::test]
async fn a_stack_whose_create_and_its_rollback_failed_is_deleted_and_created_again_once_confirmed()
{
    // AWS: CreateStack failed and its rollback could not delete a resource → ROLLBACK_FAILED.
    // Such a stack can only be deleted: DeleteStack deletes what is left (DELETE_IN_PROGRESS for
    // a while), then the stack is gone.
    let inner = ScriptedCfn::new(
        true,
        vec![
            (
                Some(("DEV-WEB", STACK, "CREATE_IN_PROGRESS", None)),
                StackStatus::CreateInProgress,
            ),
            (
                Some(("DEV-WEB", STACK, "CREATE_COMPLETE", None)),
                StackStatus::CreateComplete,
            ),
        ],
    );
    inner.state.lock().unwrap().status = Some(StackStatus::RollbackFailed);
    let mut recovering = Recovering::new(inner.clone());
    recovering.after_delete = vec![
        Some(StackStatus::DeleteInProgress),
        Some(StackStatus::DeleteInProgress),
        None,
    ];
    let cfn = Arc::new(recovering);
    let h = harness_of(cfn.clone()).await;

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
        message.contains("ROLLBACK_FAILED") && message.contains("recreate"),
        "{message}"
    );
    assert!(cfn.calls().is_empty(), "{:?}", cfn.calls());

    let (status, started) = h
        .post(
            "/api/v1/deployments",
            json!({"project": "web", "environment": "DEV", "build": "web-master-2", "recreate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let done = h.wait(started["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["operation"], "create");
    assert_eq!(cfn.calls(), ["DeleteStack", "CreateStack"]);
}

#[tokio::test]
async fn a_continued_rollback_is_followed_until_it_ends_though_aws_shows_the_old_status_at_first() {
    // AWS: ContinueUpdateRollback answers at once; DescribeStacks still shows
    // UPDATE_ROLLBACK_FAILED for a moment, then UPDATE_ROLLBACK_IN_PROGRESS, then
    // UPDATE_ROLLBACK_COMPLETE.
    let inner = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = inner.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateRollbackFailed);
        s.failed = failed_queue();
    }
    let mut recovering = Recovering::new(inner.clone());
    recovering.after_continue = [
        vec![Some(StackStatus::UpdateRollbackFailed); 3],
        vec![Some(StackStatus::UpdateRollbackInProgress); 6],
        vec![Some(StackStatus::UpdateRollbackComplete)],
    ]
    .concat();
    let cfn = Arc::new(recovering);
    let h = harness_of(cfn.clone()).await;

    let (status, card) = h
        .post(
            "/api/v1/projects/web/stacks/DEV/continue-rollback",
            json!({"skip": ["Queue"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{card}");
    // The rollback is the deployer's all along: never "not the deployer's" while it runs.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let card = h.card("web", "DEV").await;
        assert_eq!(card["outside"], serde_json::Value::Null, "{card}");
        if card["status"] == "UPDATE_ROLLBACK_COMPLETE" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{card}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_pause_refuses_a_continued_rollback_as_it_refuses_a_deploy() {
    // AWS: a stack in UPDATE_ROLLBACK_FAILED, which ContinueUpdateRollback would change.
    let inner = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = inner.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateRollbackFailed);
        s.failed = failed_queue();
    }
    let cfn = Arc::new(Recovering::new(inner.clone()));
    let h = harness_of(cfn.clone()).await;
    let (status, _) = h
        .pause(json!({"environment": "DEV", "reason": "release freeze"}))
        .await;
    assert!(status.is_success(), "{status}");

    let (status, body) = h
        .post(
            "/api/v1/projects/web/stacks/DEV/continue-rollback",
            json!({"skip": ["Queue"]}),
        )
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
    assert_eq!(body["error"]["code"], "paused", "{body}");
    assert_eq!(body["error"]["reason"], "release freeze", "{body}");
    assert!(cfn.calls().is_empty(), "{:?}", cfn.calls());
}

#[tokio::test]
async fn an_obsolete_change_set_fails_the_deployment_saying_the_stack_changed() {
    // AWS: the first ExecuteChangeSet never reached CloudFormation (a timeout); meanwhile
    // somebody updated the stack by hand, so the change set is OBSOLETE and the retry is
    // refused with InvalidChangeSetStatus — which is not "already executed".
    let inner = ScriptedCfn::new(true, update_to_complete());
    let mut recovering = Recovering::new(inner.clone());
    recovering.first_execute = FirstExecute::LostWhileTheStackChanged;
    let cfn = Arc::new(recovering);
    let h = harness_of(cfn.clone()).await;

    let done = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["message"].as_str().unwrap();
    assert!(
        message.contains("the stack changed since the change set was made")
            && message.contains("deploy again"),
        "{message}"
    );
    assert!(
        !cfn.calls().contains(&"ExecuteChangeSet".to_owned()),
        "{:?}",
        cfn.calls()
    );
}

#[tokio::test]
async fn a_change_set_found_executing_on_a_retry_is_watched_not_failed() {
    // AWS: ExecuteChangeSet went through but its answer was lost; the retry is refused with
    // InvalidChangeSetStatus, and DescribeChangeSet says EXECUTE_IN_PROGRESS.
    let inner = ScriptedCfn::new(true, update_to_complete());
    let mut recovering = Recovering::new(inner.clone());
    recovering.first_execute = FirstExecute::AppliedAnswerLost;
    let cfn = Arc::new(recovering);
    let h = harness_of(cfn.clone()).await;

    let done = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
}

/// Another replica (here: the deployer after a restart, which never saw the request) reads the
/// rollback a person continued as the deployer's, from the audit trail the replicas share —
/// not as "an operation the deployer did not start".
#[tokio::test]
async fn a_continued_rollback_is_the_deployers_on_every_replica() {
    // AWS: after ContinueUpdateRollback the stack stays UPDATE_ROLLBACK_IN_PROGRESS a while.
    let inner = ScriptedCfn::new(true, Vec::new());
    {
        let mut s = inner.state.lock().unwrap();
        s.status = Some(StackStatus::UpdateRollbackFailed);
        s.failed = failed_queue();
    }
    let mut recovering = Recovering::new(inner.clone());
    recovering.after_continue = vec![Some(StackStatus::UpdateRollbackInProgress); 400];
    let cfn = Arc::new(recovering);
    let mut h = harness_of(cfn.clone()).await;
    let (status, card) = h
        .post(
            "/api/v1/projects/web/stacks/DEV/continue-rollback",
            json!({"skip": ["Queue"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{card}");

    // A process that did not take the request.
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
    let card = h.card("web", "DEV").await;
    assert_eq!(card["status"], "UPDATE_ROLLBACK_IN_PROGRESS", "{card}");
    assert_eq!(card["outside"], serde_json::Value::Null, "{card}");
}
