//! Step 7: watch the stack until CloudFormation is done — events kept and pushed as they come,
//! a cancel sent when asked for (decided from the operation actually running), and the outcome
//! read off the stack's terminal status ([`crate::deploy::outcome`]).

use std::time::Duration;

use app::deployment::{DeploymentStatus, Operation, StackEvent, StepName};
use chrono::{DateTime, Utc};

use crate::aws::cfn::StackInfo;
use crate::deploy::outcome::{Seen, outcome};
use crate::deploy::run::{Done, Run, Stop, request_token};

/// How far AWS's clock may be behind ours when deciding which events belong to an operation.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(2);
/// How long an executed operation may show no sign of itself (no in-progress status, no event)
/// before the deployer concludes CloudFormation never started it.
const NOT_STARTED_GRACE: Duration = Duration::from_secs(120);
/// The stack itself in its event stream (nested stacks have this type too, under other names).
const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

/// Where a cancel stands.
#[derive(Default)]
struct CancelState {
    sent: bool,
    refused: Option<String>,
}

pub async fn run(run: &mut Run, operation: Operation, since: DateTime<Utc>) -> Result<Done, Stop> {
    if run.record.steps.last().map(|s| s.name) != Some(StepName::Watch) {
        run.push_step(StepName::Watch).await;
    }
    let stack = run
        .record
        .stack_id
        .clone()
        .unwrap_or_else(|| run.stack_name().to_owned());
    let stack_name = run.stack_name().to_owned();
    let mut cancel = CancelState::default();
    // Just after ExecuteChangeSet, DescribeStacks can still show the previous operation's terminal
    // status: an update's outcome is only read once the update shows itself (an in-progress
    // status, or a stack event of this operation). A new stack's every status is its own.
    let mut started = operation == Operation::Create;
    let watching_since = std::time::Instant::now();
    // Pushed events (where the environment has a queue) end a wait early: the stack is read as
    // soon as CloudFormation says something happened, the poll interval is the fallback.
    let pushed = run
        .catalog
        .stack_signals
        .watch(run.environment(), &stack_name);
    loop {
        send_cancel(run, operation, &stack, &mut cancel).await;
        let after = run.last_event.clone();
        let events = run
            .aws(|cfn| {
                let (s, a) = (stack.clone(), after.clone());
                async move { cfn.events(&s, a.as_deref(), since).await }
            })
            .await?;
        let info = run
            .aws(|cfn| {
                let s = stack.clone();
                async move { cfn.stack(&s).await }
            })
            .await?;
        if events
            .iter()
            .any(|e| e.resource_type == STACK_TYPE && e.logical_id == stack_name)
            || info.as_ref().is_some_and(|i| i.status.is_in_progress())
        {
            started = true;
        }
        keep_events(run, events).await;
        let terminal = info.as_ref().is_none_or(|i| !i.status.is_in_progress());
        if (started || info.is_none()) && terminal {
            let reason = match &info {
                Some(info) => failure_reason(run, info).await,
                None => String::new(),
            };
            let seen = Seen {
                operation,
                status: info.as_ref().map(|i| i.status),
                cancelled: cancel.sent && cancel.refused.is_none(),
                cancel_refused: cancel.refused.as_deref(),
                reason: &reason,
            };
            if let Some(ending) = outcome(seen) {
                if ending.rolled_back {
                    run.record.deployment.rolled_back = true;
                }
                return ending.result;
            }
        } else if !started && watching_since.elapsed() > NOT_STARTED_GRACE {
            let status = info.as_ref().map_or("gone", |i| i.status.as_aws_str());
            return Err(Stop::Failed(format!(
                "CloudFormation shows no sign of this deployment's operation after {} s (the stack is still {status}); the change was not applied",
                NOT_STARTED_GRACE.as_secs()
            )));
        }
        pushed.next(run.settings.poll_interval).await;
    }
}

/// Sends the cancel once it is asked for: CancelUpdateStack for an update, DeleteStack for a
/// create whose deletion was confirmed.
async fn send_cancel(run: &mut Run, operation: Operation, stack: &str, cancel: &mut CancelState) {
    let Some(ask) = run.cancel_asked() else {
        return;
    };
    if cancel.sent {
        return;
    }
    let id = run.id().to_owned();
    let call = match operation {
        Operation::Update => Some(
            run.cfn
                .cancel_update(stack, &request_token(&id, "cancel"))
                .await,
        ),
        Operation::Create if ask.confirm_delete => Some(
            run.cfn
                .delete_stack(stack, &request_token(&id, "delete"))
                .await,
        ),
        Operation::Create => None,
    };
    match call {
        Some(Ok(())) => {
            cancel.sent = true;
            run.record.deployment.status = DeploymentStatus::Cancelling;
            run.publish(Vec::new()).await;
        }
        // Tried again at the next poll.
        Some(Err(e)) if e.retryable => {}
        // E.g. CancelUpdateStack refused because the update is already cleaning up: the stack
        // decides; its real outcome is recorded.
        Some(Err(e)) => {
            cancel.sent = true;
            cancel.refused = Some(e.to_string());
        }
        None => {
            cancel.sent = true;
            cancel.refused = Some(
                "cancelling a create deletes the stack, and the request did not confirm that"
                    .into(),
            );
        }
    }
}

/// Keeps new events, counts finished resources, and pushes them.
async fn keep_events(run: &mut Run, events: Vec<StackEvent>) {
    if events.is_empty() {
        return;
    }
    run.last_event = events.last().map(|e| e.id.clone());
    for e in events.iter().filter(|e| is_resource_done(e)) {
        run.finished_resources.insert(e.logical_id.clone());
    }
    run.record.deployment.resources_done = run.finished_resources.len() as u32;
    if let Err(e) = run.store.add_events(run.id(), &events).await {
        tracing::error!(error = %e, "could not keep stack events");
    }
    run.publish(events).await;
}

/// A resource (not the stack itself) reached a final state in this operation.
pub fn is_resource_done(e: &StackEvent) -> bool {
    e.resource_type != STACK_TYPE
        && (e.status.ends_with("_COMPLETE") || e.status.ends_with("_FAILED"))
}

/// The first failed resource of the operation, as CloudFormation explains it.
async fn failure_reason(run: &Run, info: &StackInfo) -> String {
    let events = run.store.events(run.id()).await.unwrap_or_default();
    events
        .iter()
        .find(|e| {
            e.status.ends_with("_FAILED")
                && e.resource_type != STACK_TYPE
                && !e
                    .reason
                    .as_deref()
                    .unwrap_or_default()
                    .contains("cancelled")
        })
        .map(|e| {
            format!(
                "{} ({}) failed: {}",
                e.logical_id,
                e.resource_type,
                e.reason.clone().unwrap_or_default()
            )
        })
        .or_else(|| info.reason.clone())
        .unwrap_or_else(|| format!("the stack ended in {}", info.status.as_aws_str()))
}
