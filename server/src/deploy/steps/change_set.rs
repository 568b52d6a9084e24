//! Step 5: decide the operation. A new stack is created from the build; an existing one gets an
//! update change set (named after the deployment, so a restart can find it), described until
//! CloudFormation has worked out what changes.

use app::deployment::{ChangeSummary, Operation, StepName};
use app::model::StackStatus;

use super::validate::Checked;
use crate::aws::AwsFailure;
use crate::aws::cfn::{ChangeSetState, StackInfo, StackRequest};
use crate::deploy::parameters::ParameterSet;
use crate::deploy::run::{Patience, Run, Stop, change_set_name, request_token};
use crate::stacks::{BUILD_TAG, DEPLOYMENT_TAG};

/// What the execute step will do.
pub struct Plan {
    pub operation: Operation,
    pub request: StackRequest,
}

pub enum Planned {
    Execute(Plan),
    /// The stack already runs exactly this.
    NoChanges,
}

pub async fn run(
    run: &mut Run,
    checked: &Checked,
    set: &ParameterSet,
    existing: Option<StackInfo>,
) -> Result<Planned, Stop> {
    run.begin(StepName::ChangeSet).await?;
    let existing = match existing {
        Some(info) if info.status.needs_recreate() || deleting_ours(run, &info) => {
            if !run.record.deployment.recreate {
                return Err(Stop::Refused(format!(
                    "the stack is in {}: its first create failed, and it cannot be updated; deploy \
                     again confirming that it is deleted and created again",
                    info.status.as_aws_str()
                )));
            }
            if info.status != StackStatus::DeleteInProgress {
                // In a protected environment the deletion waits for a person like any change:
                // it is approved (or discarded) before anything is deleted.
                approve_recreate(run, checked, &info).await?;
            }
            delete_failed_stack(run, &info).await?;
            None
        }
        other => other,
    };
    let request = StackRequest {
        stack_name: run.stack_name().to_owned(),
        template: checked.source.clone(),
        parameters: set.values.clone().into_iter().collect(),
        tags: tags(run, set, existing.as_ref()),
        notification_arns: existing
            .as_ref()
            .map(|e| e.notification_arns.clone())
            .unwrap_or_default(),
    };
    let Some(existing) = existing else {
        let resources = checked.summary.resource_count;
        run.record.deployment.operation = Some(Operation::Create);
        run.record.change_set = Some(ChangeSummary {
            add: resources,
            ..ChangeSummary::default()
        });
        run.record.deployment.resources_total = Some(resources);
        let deleted = if run.record.deployment.recreate && run.record.execution_committed {
            "the failed stack deleted; "
        } else {
            ""
        };
        run.end(Some(format!(
            "{deleted}new stack: {resources} resources to add"
        )))
        .await;
        return Ok(Planned::Execute(Plan {
            operation: Operation::Create,
            request,
        }));
    };
    // A change set made anew (after a restart that executed nothing) needs an approval of its
    // own: the stack may have changed since the one approved was made. (A create planned again
    // from the same build is the same create: its approval stands.)
    forget_approval(run).await?;
    check_updatable(run, &existing)?;
    run.record.deployment.operation = Some(Operation::Update);
    let name = change_set_name(run.id());
    run.record.change_set_name = Some(name.clone());
    run.record.stack_id = Some(existing.stack_id.clone());
    // Kept before the call: a restart right after it finds and deletes the change set. Not
    // made at all by a process that no longer owns the deployment.
    if !run.save().await {
        return Err(Stop::Failed(
            "another replica drives this deployment now; nothing was made here".into(),
        ));
    }
    if !create(run, &request, &name).await? {
        return Ok(no_changes(run).await);
    }
    let changes = loop {
        let stack = run.stack_name().to_owned();
        let state = run
            .aws(|cfn| {
                let (s, n) = (stack.clone(), name.clone());
                async move { cfn.describe_change_set(&s, &n).await }
            })
            .await?;
        match state {
            ChangeSetState::Pending => {
                if run.cancel_asked().is_some() {
                    return Err(run.cancel_before_execution().await);
                }
                tokio::time::sleep(run.settings.poll_interval).await;
            }
            ChangeSetState::NoChanges => {
                let _ = run.cfn.delete_change_set(&stack, &name).await;
                return Ok(no_changes(run).await);
            }
            ChangeSetState::Failed(reason) => {
                let _ = run.cfn.delete_change_set(&stack, &name).await;
                return Err(Stop::Failed(format!(
                    "CloudFormation refused the change set: {reason}"
                )));
            }
            ChangeSetState::Ready(changes) => break changes,
        }
    };
    let mut changes = changes;
    crate::deploy::preview::flag_interrupts(&mut changes, &checked.doc);
    let summary = ChangeSummary::from_changes(changes);
    run.record.deployment.resources_total = Some(summary.changes.len() as u32);
    let words = format!(
        "{} to add, {} to modify ({} replaced), {} to remove",
        summary.add, summary.modify, summary.replace, summary.remove
    );
    run.record.change_set = Some(summary);
    run.end(Some(words)).await;
    Ok(Planned::Execute(Plan {
        operation: Operation::Update,
        request,
    }))
}

/// Before a failed stack is deleted and created again: in a protected environment, a person's
/// approval of exactly that (the change-set step then goes on with the deletion).
async fn approve_recreate(run: &mut Run, checked: &Checked, info: &StackInfo) -> Result<(), Stop> {
    if !super::is_protected(run) {
        return Ok(());
    }
    let resources = checked.summary.resource_count;
    run.record.deployment.operation = Some(Operation::Create);
    run.record.change_set = Some(ChangeSummary {
        add: resources,
        ..ChangeSummary::default()
    });
    run.record.deployment.resources_total = Some(resources);
    run.end(Some(format!(
        "{} is in {}: it is deleted and created again, {resources} resources to add",
        run.stack_name(),
        info.status.as_aws_str()
    )))
    .await;
    super::approval::run(run).await?;
    run.push_step(StepName::ChangeSet).await;
    Ok(())
}

/// Forgets an approval given to an earlier plan of this deployment.
async fn forget_approval(run: &mut Run) -> Result<(), Stop> {
    if run.record.deployment.approval.is_none() {
        return Ok(());
    }
    run.record.deployment.approval = None;
    run.store.reset_approval(run.id()).await.map_err(|e| {
        Stop::Failed(format!(
            "could not reset the approval of an earlier change set ({e}); nothing was executed"
        ))
    })
}

/// A recreate whose deletion was under way when the deployer restarted.
fn deleting_ours(run: &Run, info: &StackInfo) -> bool {
    run.record.deployment.recreate && info.status == StackStatus::DeleteInProgress
}

/// Deletes a stack whose first create failed (it holds nothing: CloudFormation rolled every
/// resource back), and waits until it is gone. A change like executing: only while no pause
/// covers the environment.
async fn delete_failed_stack(run: &mut Run, info: &StackInfo) -> Result<(), Stop> {
    super::execute::commit(run).await?;
    let stack = run.stack_name().to_owned();
    if info.status != StackStatus::DeleteInProgress {
        let token = request_token(run.id(), "delete-failed");
        run.aws_with(Patience::WhileRetryable, |cfn, _| {
            let (s, t) = (stack.clone(), token.clone());
            async move { cfn.delete_stack(&s, &t).await }
        })
        .await?;
    }
    run.catalog.forget_card(run.environment(), &stack);
    run.record.deployment.message = Some(format!(
        "deleting {stack} ({}) to create it again",
        info.status.as_aws_str()
    ));
    run.publish(Vec::new()).await;
    loop {
        let now = run
            .aws(|cfn| {
                let s = stack.clone();
                async move { cfn.stack(&s).await }
            })
            .await?;
        match now {
            None => break,
            Some(i) if i.status == StackStatus::DeleteComplete => break,
            Some(i) if i.status == StackStatus::DeleteFailed => {
                return Err(Stop::Failed(format!(
                    "could not delete the failed stack {stack}: {}",
                    i.reason.unwrap_or_else(|| "DELETE_FAILED".into())
                )));
            }
            Some(_) => tokio::time::sleep(run.settings.poll_interval).await,
        }
    }
    run.record.deployment.message = None;
    Ok(())
}

/// The build's tags, and the deployer's own: which build, and which deployment put it there.
fn tags(run: &Run, set: &ParameterSet, existing: Option<&StackInfo>) -> Vec<(String, String)> {
    let build = run.record.deployment.build.as_str();
    let mut tags: Vec<(String, String)> = set.tags.clone().into_iter().collect();
    tags.retain(|(k, _)| k != BUILD_TAG && k != DEPLOYMENT_TAG);
    tags.push((BUILD_TAG.into(), build.to_owned()));
    // Redeploying the build a stack already runs keeps its deployment tag, so that an unchanged
    // build is "no changes" rather than a tag update on every resource.
    let same_build = existing.and_then(|s| s.tag(BUILD_TAG)) == Some(build);
    let deployment_tag = match existing.and_then(|s| s.tag(DEPLOYMENT_TAG)) {
        Some(previous) if same_build => previous.to_owned(),
        _ => run.id().to_owned(),
    };
    tags.push((DEPLOYMENT_TAG.into(), deployment_tag));
    tags
}

/// CreateChangeSet; `false` when CloudFormation says nothing would change.
async fn create(run: &mut Run, request: &StackRequest, name: &str) -> Result<bool, Stop> {
    let token = request_token(run.id(), "changeset");
    run.aws_with(Patience::Bounded, |cfn, attempt| {
        let (r, n, t) = (request.clone(), name.to_owned(), token.clone());
        async move {
            match cfn.create_change_set(&r, &n, &t).await {
                Ok(()) => Ok(true),
                Err(e) if says_no_changes(&e) => Ok(false),
                // Its name carries this deployment's id: a retry after a timeout that had
                // worked finds its own change set.
                Err(e) if attempt > 0 && e.code == "AlreadyExistsException" => Ok(true),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

async fn no_changes(run: &mut Run) -> Planned {
    run.record.change_set_name = None;
    run.record.change_set = Some(ChangeSummary::default());
    run.end(Some("no changes".into())).await;
    Planned::NoChanges
}

/// CloudFormation's (and moto's) answer when a change set would change nothing.
/// Whether CloudFormation's answer to CreateChangeSet means "nothing would change".
pub fn says_no_changes(e: &AwsFailure) -> bool {
    e.code == "ValidationError"
        && e.message.as_deref().is_some_and(|m| {
            m.contains("No updates are to be performed") || m.contains("didn't contain changes")
        })
}

fn check_updatable(run: &Run, info: &StackInfo) -> Result<(), Stop> {
    use StackStatus::*;
    match info.status {
        // The store lets one deployment at a time onto a stack: what runs is not the deployer's.
        s if s.is_in_progress() => Err(Stop::Refused(format!(
            "the stack is busy ({}): an operation the deployer did not start is running on it; \
             deploy again once it has ended",
            s.as_aws_str()
        ))),
        // CloudFormation would refuse the change set: the way out is the rollback's, not a deploy.
        UpdateRollbackFailed => Err(Stop::Refused(format!(
            "the stack is in UPDATE_ROLLBACK_FAILED: an update failed and so did its rollback, \
             and CloudFormation takes no update until the rollback is continued. Continue it \
             first (\"Continue rollback\" on the stack's card, or POST \
             /api/v1/projects/{}/stacks/{}/continue-rollback, skipping what cannot be restored), \
             then deploy again",
            run.record.deployment.project,
            run.environment()
        ))),
        UpdateFailed => Err(Stop::Refused(
            "the stack is in UPDATE_FAILED: an update run with rollback disabled failed and left \
             it half changed. Roll it back first (CloudFormation's RollbackStack, the console's \
             \"Roll back\"), then deploy again"
                .into(),
        )),
        RollbackComplete | RollbackFailed | CreateFailed | DeleteFailed => {
            Err(Stop::Refused(format!(
                "the stack is in {}, which cannot be updated; it must be deleted first",
                info.status.as_aws_str()
            )))
        }
        _ => Ok(()),
    }
}
