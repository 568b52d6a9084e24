//! A scripted CloudFormation behind the deployer's seam: each script replays the event sequence
//! AWS emits for the behaviour a test names; faults stand for throttling and lost answers.

use std::sync::{Arc, Mutex};

use app::deployment::{ResourceChange, StackEvent};
use app::model::StackStatus;
use chrono::{DateTime, Utc};
use deployer::aws::AwsFailure;
use deployer::aws::cfn::{
    ChangeSetState, CloudFormation, StackInfo, StackRequest, TemplateSource, TemplateSummary,
};
use deployer::deploy::parameters::Declared;

/// One poll's worth of change: an event (if any) and the stack status after it.
pub type Frame = (
    Option<(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )>,
    StackStatus,
);

#[derive(Default)]
pub struct State {
    pub exists: bool,
    pub status: Option<StackStatus>,
    pub tags: Vec<(String, String)>,
    pub script: Vec<Frame>,
    /// Replayed when the script has run out (e.g. an operation that runs until cancelled).
    pub idle: Option<StackStatus>,
    pub on_cancel: Vec<Frame>,
    pub on_delete: Vec<Frame>,
    pub events: Vec<StackEvent>,
    pub calls: Vec<String>,
    /// The request tokens of the writes, in order.
    pub tokens: Vec<String>,
    /// The stack's export names, and who imports each (ListImports).
    pub exports: Vec<String>,
    pub importers: Vec<(String, Result<Vec<String>, ()>)>,
    /// Faults to inject, taken in order by the call they name.
    pub faults: Vec<(&'static str, Fault)>,
    /// The token of the CreateStack / ExecuteChangeSet that went through (AWS's idempotency).
    pub applied_token: Option<String>,
    /// The stack status DescribeStacks shows right after ExecuteChangeSet (AWS may still show
    /// the previous operation's terminal status for a moment).
    pub status_after_execute: Option<StackStatus>,
    /// CancelUpdateStack's refusal (e.g. during UPDATE_COMPLETE_CLEANUP_IN_PROGRESS).
    pub refuse_cancel: Option<&'static str>,
    /// Panic in GetTemplateSummary (a bug in the deployer's own code stands behind this seam).
    pub panic_in_summary: bool,
    /// DescribeStackResources' resources in a failed state.
    pub failed: Vec<app::model::FailedResource>,
    /// What ContinueUpdateRollback sets going.
    pub on_continue: Vec<Frame>,
    /// The stack's LastUpdatedTime.
    pub updated_at: Option<DateTime<Utc>>,
    /// What DescribeChangeSet lists, when not the default (a queue replaced, a parameter added).
    pub changes: Option<Vec<ResourceChange>>,
}

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// The request reached AWS and was applied, but the answer never came back (a timeout).
    TimeoutAfterApplying,
    /// AWS throttled the request (HTTP 400 `Throttling`); nothing happened.
    Throttling,
    /// The request was applied, and the deployer died before the answer came (never answers).
    HangAfterApplying,
}

pub fn fault(code: &str, retryable: bool) -> AwsFailure {
    AwsFailure {
        doing: "calling CloudFormation".into(),
        code: code.into(),
        message: Some(format!("scripted {code}")),
        retryable,
    }
}

pub struct ScriptedCfn {
    pub state: Mutex<State>,
    /// Held by a test to keep a deployment in its validate step (GetTemplateSummary waits).
    pub gate: tokio::sync::Mutex<()>,
}

impl ScriptedCfn {
    pub fn new(existing: bool, script: Vec<Frame>) -> Arc<Self> {
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

    pub fn take_fault(state: &mut State, call: &str) -> Option<Fault> {
        let i = state.faults.iter().position(|(c, _)| *c == call)?;
        Some(state.faults.remove(i).1)
    }

    pub fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.clone()
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn advance(state: &mut State) {
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
            parameters: vec![("Greeting".into(), Some("scripted".into()))],
            updated_at: s.updated_at,
            ..StackInfo::default()
        }))
    }
    async fn no_echo_keys(&self, _stack: &str) -> Result<Vec<String>, AwsFailure> {
        Ok(Vec::new())
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
        if let Some(changes) = self.state.lock().unwrap().changes.clone() {
            return Ok(ChangeSetState::Ready(changes));
        }
        Ok(ChangeSetState::Ready(vec![
            ResourceChange {
                action: "Modify".into(),
                logical_id: "Queue".into(),
                resource_type: "AWS::SQS::Queue".into(),
                replacement: Some("True".into()),
                interrupts: false,
            },
            ResourceChange {
                action: "Add".into(),
                logical_id: "Message".into(),
                resource_type: "AWS::SSM::Parameter".into(),
                replacement: None,
                interrupts: false,
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
        if s.on_delete.is_empty() {
            // AWS: a stack that holds no resources (its create rolled back) is gone at once.
            s.exists = false;
            s.status = Some(StackStatus::DeleteComplete);
            return Ok(());
        }
        s.script = std::mem::take(&mut s.on_delete);
        s.idle = None;
        Ok(())
    }
    async fn change_sets(
        &self,
        _: &str,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, AwsFailure> {
        Ok(Vec::new())
    }
    async fn failed_resources(
        &self,
        _: &str,
    ) -> Result<Vec<app::model::FailedResource>, AwsFailure> {
        Ok(self.state.lock().unwrap().failed.clone())
    }
    async fn continue_update_rollback(
        &self,
        _: &str,
        skip: &[String],
        token: &str,
    ) -> Result<(), AwsFailure> {
        let mut s = self.state.lock().unwrap();
        if s.status != Some(StackStatus::UpdateRollbackFailed) {
            return Err(fault("ValidationError", false));
        }
        s.calls
            .push(format!("ContinueUpdateRollback skip={}", skip.join(",")));
        s.tokens.push(token.to_owned());
        if s.on_continue.is_empty() {
            // AWS: with the failed resources skipped, nothing is left to roll back.
            s.status = Some(StackStatus::UpdateRollbackComplete);
            return Ok(());
        }
        s.status = Some(StackStatus::UpdateRollbackInProgress);
        s.script = std::mem::take(&mut s.on_continue);
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
