//! The engine against a scripted CloudFormation, for what moto cannot produce: resource events
//! arriving over time, failed updates, rollbacks, failed rollbacks and cancels. S3 is still
//! moto. Each script replays the event sequence AWS emits for the behaviour named in the test.

mod common;

use std::sync::{Arc, Mutex};

use app::deployment::{ResourceChange, StackEvent};
use app::model::StackStatus;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::{Harness, TEMPLATE};
use deployer::aws::AwsFailure;
use deployer::deploy::cfn::{
    ChangeSetState, CloudFormation, StackInfo, StackRequest, TemplateSource, TemplateSummary,
};
use deployer::deploy::parameters::Declared;
use serde_json::json;

/// One poll's worth of change: an event (if any) and the stack status after it.
type Frame = (
    Option<(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )>,
    StackStatus,
);

#[derive(Default)]
struct State {
    exists: bool,
    status: Option<StackStatus>,
    tags: Vec<(String, String)>,
    script: Vec<Frame>,
    /// Replayed when the script has run out (e.g. an operation that runs until cancelled).
    idle: Option<StackStatus>,
    on_cancel: Vec<Frame>,
    on_delete: Vec<Frame>,
    events: Vec<StackEvent>,
    calls: Vec<String>,
    /// The request tokens of the writes, in order.
    tokens: Vec<String>,
    /// The stack's export names, and who imports each (ListImports).
    exports: Vec<String>,
    importers: Vec<(String, Result<Vec<String>, ()>)>,
    /// Faults to inject, taken in order by the call they name.
    faults: Vec<(&'static str, Fault)>,
    /// The token of the CreateStack / ExecuteChangeSet that went through (AWS's idempotency).
    applied_token: Option<String>,
    /// The stack status DescribeStacks shows right after ExecuteChangeSet (AWS may still show
    /// the previous operation's terminal status for a moment).
    status_after_execute: Option<StackStatus>,
    /// CancelUpdateStack's refusal (e.g. during UPDATE_COMPLETE_CLEANUP_IN_PROGRESS).
    refuse_cancel: Option<&'static str>,
    /// Panic in GetTemplateSummary (a bug in the deployer's own code stands behind this seam).
    panic_in_summary: bool,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The request reached AWS and was applied, but the answer never came back (a timeout).
    TimeoutAfterApplying,
    /// AWS throttled the request (HTTP 400 `Throttling`); nothing happened.
    Throttling,
    /// The request was applied, and the deployer died before the answer came (never answers).
    HangAfterApplying,
}

fn fault(code: &str, retryable: bool) -> AwsFailure {
    AwsFailure {
        doing: "calling CloudFormation".into(),
        code: code.into(),
        message: Some(format!("scripted {code}")),
        retryable,
    }
}

struct ScriptedCfn {
    state: Mutex<State>,
    /// Held by a test to keep a deployment in its validate step (GetTemplateSummary waits).
    gate: tokio::sync::Mutex<()>,
}

impl ScriptedCfn {
    fn new(existing: bool, script: Vec<Frame>) -> Arc<Self> {
        let state = State {
            exists: existing,
            status: existing.then_some(StackStatus::UpdateComplete),
            tags: vec![("deployer:build".into(), "web-master-1".into())],
            script,
            ..State::default()
        };
        Arc::new(ScriptedCfn {
            state: Mutex::new(state),
            gate: tokio::sync::Mutex::new(()),
        })
    }

    fn take_fault(state: &mut State, call: &str) -> Option<Fault> {
        let i = state.faults.iter().position(|(c, _)| *c == call)?;
        Some(state.faults.remove(i).1)
    }

    fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.clone()
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn advance(state: &mut State) {
        if state.script.is_empty() {
            if let Some(idle) = state.idle {
                state.status = Some(idle);
            }
            return;
        }
        let (event, status) = state.script.remove(0);
        if let Some((logical_id, resource_type, event_status, reason)) = event {
            let n = state.events.len();
            state.events.push(StackEvent {
                id: format!("ev-{n}"),
                timestamp: Utc::now(),
                logical_id: logical_id.into(),
                resource_type: resource_type.into(),
                status: event_status.into(),
                reason: reason.map(str::to_owned),
            });
        }
        if status == StackStatus::DeleteComplete {
            state.exists = false;
        }
        state.status = Some(status);
    }
}

#[async_trait::async_trait]
impl CloudFormation for ScriptedCfn {
    async fn template_summary(&self, _: &TemplateSource) -> Result<TemplateSummary, AwsFailure> {
        drop(self.gate.lock().await);
        if self.state.lock().unwrap().panic_in_summary {
            panic!("scripted bug in the deployer");
        }
        Ok(TemplateSummary {
            parameters: vec![
                Declared {
                    key: "Greeting".into(),
                    default: None,
                },
                Declared {
                    key: "Secret".into(),
                    default: Some("x".into()),
                },
            ],
            resource_count: 2,
        })
    }
    async fn export_names(&self) -> Result<Vec<String>, AwsFailure> {
        Ok(Vec::new())
    }
    async fn importers(&self, export: &str) -> Result<Vec<String>, AwsFailure> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("ListImports {export}"));
        match s.importers.iter().find(|(e, _)| e == export) {
            Some((_, Ok(stacks))) => Ok(stacks.clone()),
            Some((_, Err(()))) => Err(AwsFailure {
                doing: format!("listing the stacks that import {export}"),
                code: "InternalFailure".into(),
                message: None,
                retryable: true,
            }),
            None => Ok(Vec::new()),
        }
    }
    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure> {
        let mut s = self.state.lock().unwrap();
        if let Some(Fault::Throttling) = Self::take_fault(&mut s, "DescribeStacks") {
            return Err(fault("Throttling", true));
        }
        Ok(s.exists.then(|| StackInfo {
            stack_id: format!("arn:aws:cloudformation:eu-west-1:111111111111:stack/{stack}/1"),
            status: s.status.unwrap_or(StackStatus::CreateInProgress),
            reason: None,
            tags: s.tags.clone(),
            exports: s.exports.clone(),
        }))
    }
    async fn create_stack(
        &self,
        request: &StackRequest,
        token: &str,
    ) -> Result<String, AwsFailure> {
        let stack_id = format!(
            "arn:aws:cloudformation:eu-west-1:111111111111:stack/{}/1",
            request.stack_name
        );
        let fault_now = {
            let mut s = self.state.lock().unwrap();
            s.tokens.push(token.to_owned());
            if s.exists {
                // AWS: the same token is the same request; another one finds the name taken.
                if s.applied_token.as_deref() == Some(token) {
                    return Ok(stack_id);
                }
                return Err(fault("AlreadyExistsException", false));
            }
            s.calls.push("CreateStack".into());
            s.applied_token = Some(token.to_owned());
            s.exists = true;
            s.status = Some(StackStatus::CreateInProgress);
            s.tags = request.tags.clone();
            Self::take_fault(&mut s, "CreateStack")
        };
        match fault_now {
            Some(Fault::TimeoutAfterApplying) => Err(fault("timeout", true)),
            Some(Fault::HangAfterApplying) => std::future::pending().await,
            _ => Ok(stack_id),
        }
    }
    async fn create_change_set(
        &self,
        request: &StackRequest,
        _: &str,
        token: &str,
    ) -> Result<(), AwsFailure> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("CreateChangeSet".into());
        s.tokens.push(token.to_owned());
        s.tags = request.tags.clone();
        Ok(())
    }
    async fn describe_change_set(&self, _: &str, _: &str) -> Result<ChangeSetState, AwsFailure> {
        Ok(ChangeSetState::Ready(vec![
            ResourceChange {
                action: "Modify".into(),
                logical_id: "Queue".into(),
                resource_type: "AWS::SQS::Queue".into(),
                replacement: Some("True".into()),
            },
            ResourceChange {
                action: "Add".into(),
                logical_id: "Message".into(),
                resource_type: "AWS::SSM::Parameter".into(),
                replacement: None,
            },
        ]))
    }
    async fn execute_change_set(&self, _: &str, _: &str, token: &str) -> Result<(), AwsFailure> {
        let mut s = self.state.lock().unwrap();
        s.tokens.push(token.to_owned());
        if let Some(applied) = &s.applied_token {
            // AWS: the same token is the same request; otherwise the change set was used up.
            if applied == token {
                return Ok(());
            }
            return Err(fault("InvalidChangeSetStatus", false));
        }
        if let Some(Fault::Throttling) = Self::take_fault(&mut s, "ExecuteChangeSet") {
            return Err(fault("Throttling", true));
        }
        s.calls.push("ExecuteChangeSet".into());
        s.applied_token = Some(token.to_owned());
        s.status = Some(
            s.status_after_execute
                .unwrap_or(StackStatus::UpdateInProgress),
        );
        if let Some(Fault::TimeoutAfterApplying) = Self::take_fault(&mut s, "ExecuteChangeSet") {
            return Err(fault("timeout", true));
        }
        Ok(())
    }
    async fn delete_change_set(&self, _: &str, _: &str) -> Result<(), AwsFailure> {
        self.state
            .lock()
            .unwrap()
            .calls
            .push("DeleteChangeSet".into());
        Ok(())
    }
    async fn cancel_update(&self, _: &str, _: &str) -> Result<(), AwsFailure> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("CancelUpdateStack".into());
        if let Some(code) = s.refuse_cancel {
            return Err(fault(code, false));
        }
        s.script = std::mem::take(&mut s.on_cancel);
        s.idle = None;
        Ok(())
    }
    async fn delete_stack(&self, _: &str, _: &str) -> Result<(), AwsFailure> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("DeleteStack".into());
        s.script = std::mem::take(&mut s.on_delete);
        s.idle = None;
        Ok(())
    }
    async fn events(
        &self,
        _: &str,
        after: Option<&str>,
        _: DateTime<Utc>,
    ) -> Result<Vec<StackEvent>, AwsFailure> {
        let mut s = self.state.lock().unwrap();
        if let Some(Fault::Throttling) = Self::take_fault(&mut s, "DescribeStackEvents") {
            return Err(fault("Throttling", true));
        }
        Self::advance(&mut s);
        let start = match after {
            Some(id) => s
                .events
                .iter()
                .position(|e| e.id == id)
                .map_or(0, |i| i + 1),
            None => 0,
        };
        Ok(s.events[start..].to_vec())
    }
}

const STACK: &str = "AWS::CloudFormation::Stack";

async fn harness(cfn: Arc<ScriptedCfn>) -> Harness {
    let h = Harness::start_with(Some(cfn)).await;
    h.put("web/web-master-2/template.yaml", TEMPLATE).await;
    h.put("web/web-master-2/parameters.json", r#"{"Greeting": "two"}"#)
        .await;
    h
}

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
    let config = common::config(&h.moto.endpoint, &h.dir.path().join("deployer.sqlite"));
    let aws = deployer::aws::AwsClients::connect(&config, Some(common::static_credentials())).await;
    let map = common::ACCOUNTS
        .iter()
        .map(|(env, _)| {
            let cfn: Arc<dyn CloudFormation> = cfn.clone();
            (env.to_string(), cfn)
        })
        .collect();
    h.state = deployer::state_with_cloudformation(config, aws, map)
        .await
        .unwrap();
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

#[tokio::test]
async fn a_restarted_deployer_does_not_start_paused_work_and_keeps_a_cancel() {
    let cfn = ScriptedCfn::new(true, update_to_complete());
    let mut h = harness(cfn.clone()).await;
    let gate = cfn.gate.lock().await;
    let paused = start(&h).await;
    wait_for_step(&h, &paused, "validate").await;
    h.send_json(
        "PUT",
        "/api/v1/pause",
        json!({"reason": "freeze for the release"}),
    )
    .await;
    restart(&mut h, cfn.clone()).await;
    drop(gate);
    let detail = h.wait(&paused).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("freeze for the release"),
        "{detail}"
    );
    assert!(!cfn.calls().contains(&"ExecuteChangeSet".to_owned()));

    // A cancel asked just before a restart still cancels.
    h.send_json("DELETE", "/api/v1/pause", json!(null)).await;
    let gate = cfn.gate.lock().await;
    let cancelled = start(&h).await;
    wait_for_step(&h, &cancelled, "validate").await;
    let (status, answer) = h
        .post(
            &format!("/api/v1/deployments/{cancelled}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    restart(&mut h, cfn.clone()).await;
    drop(gate);
    let detail = h.wait(&cancelled).await;
    assert_eq!(detail["status"], "cancelled", "{detail}");
    assert!(!cfn.calls().contains(&"ExecuteChangeSet".to_owned()));
}

#[tokio::test]
async fn a_create_that_timed_out_after_reaching_aws_is_retried_with_the_same_token() {
    // AWS: the CreateStack answer is lost after the stack was created; a retry with the same
    // ClientRequestToken is the same request (success), never AlreadyExistsException.
    let cfn = ScriptedCfn::new(
        false,
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
    cfn.state.lock().unwrap().faults = vec![("CreateStack", Fault::TimeoutAfterApplying)];
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls(), ["CreateStack"], "one stack operation");
    let tokens = cfn.tokens();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert_eq!(tokens[0], tokens[1], "the retry carries the same token");
    assert!(tokens[0].starts_with(detail["id"].as_str().unwrap()));
}

#[tokio::test]
async fn an_execute_that_timed_out_after_reaching_aws_is_not_a_failure() {
    // AWS: ExecuteChangeSet went through but its answer was lost; the retry with the same token
    // succeeds (without a token AWS answers InvalidChangeSetStatus, as this fake does).
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().faults = vec![("ExecuteChangeSet", Fault::TimeoutAfterApplying)];
    let h = harness(cfn.clone()).await;
    let detail = h.deploy("web", "DEV", "web-master-2").await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
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

#[tokio::test]
async fn an_update_committed_before_a_restart_is_executed_once_and_watched() {
    // A redeploy of the build the stack runs keeps the stack's old deployment tag, so the
    // tag cannot say whether the deployment executed; the store does. AWS: ExecuteChangeSet
    // repeated with the same token after a restart is the same request.
    let cfn = ScriptedCfn::new(true, update_to_complete());
    cfn.state.lock().unwrap().tags = vec![
        ("deployer:build".into(), "web-master-2".into()),
        ("deployer:deployment".into(), "d-earlier".into()),
    ];
    {
        let mut s = cfn.state.lock().unwrap();
        s.idle = Some(StackStatus::UpdateInProgress);
        s.script.truncate(1);
    }
    let mut h = harness(cfn.clone()).await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "watch").await;
    restart(&mut h, cfn.clone()).await;
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
    assert_eq!(cfn.calls(), ["CreateChangeSet", "ExecuteChangeSet"]);
}

#[tokio::test]
async fn a_create_applied_just_before_a_restart_is_watched_not_repeated() {
    // AWS: CreateStack went through; the deployer died before it heard back. After the restart
    // the stack exists, tagged with this deployment: it is watched, never created again or
    // updated.
    let cfn = ScriptedCfn::new(
        false,
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
    cfn.state.lock().unwrap().faults = vec![("CreateStack", Fault::HangAfterApplying)];
    let mut h = harness(cfn.clone()).await;
    let id = start(&h).await;
    wait_for_step(&h, &id, "execute").await;
    for _ in 0..200 {
        if cfn.calls().contains(&"CreateStack".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    restart(&mut h, cfn.clone()).await;
    let detail = h.wait(&id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["operation"], "create", "{detail}");
    assert_eq!(cfn.calls(), ["CreateStack"], "one create, no change set");
}
