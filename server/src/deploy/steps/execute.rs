//! Step 6: execute — only if no pause covers the environment at this very moment (one statement
//! in the store records the execution and checks the pause). CreateStack for a new stack,
//! ExecuteChangeSet for an update, each with a request token derived from the deployment, so a
//! retry (after a timeout, or after a restart) is the same request to CloudFormation and never a
//! second operation.

use app::deployment::{Operation, StepName};
use chrono::{DateTime, Utc};

use super::change_set::Plan;
use super::watch::CLOCK_SKEW;
use crate::aws::AwsFailure;
use crate::aws::cfn::{ChangeSetExecution, CloudFormation, StackRequest};
use crate::deploy::run::{Patience, Run, Stop, change_set_name, paused_words, request_token};
use crate::stacks::DEPLOYMENT_TAG;

/// Executes the plan; returns from when the stack's events belong to this operation.
pub async fn run(run: &mut Run, plan: &Plan) -> Result<DateTime<Utc>, Stop> {
    run_with(run, plan.operation, Some(&plan.request)).await
}

/// The moment of execution, recorded only while no pause covers the environment (one statement
/// in the store); a pause found there deletes the change set and ends the deployment, stack
/// untouched. Once recorded, it is not checked again.
/// An approved deployment is held by a pause instead (as at its approval): it executes once
/// the pause is lifted, or ends if cancelled meanwhile.
pub async fn commit(run: &mut Run) -> Result<(), Stop> {
    let mut held = false;
    while !run.record.execution_committed {
        match run.store.commit_execution(run.id()).await {
            Ok(None) => run.record.execution_committed = true,
            Ok(Some(pause)) if super::approved(run) => {
                if !held {
                    held = true;
                    let by = run
                        .record
                        .deployment
                        .approval
                        .as_ref()
                        .and_then(|a| a.decided_by.clone())
                        .unwrap_or_default();
                    run.record.deployment.message = Some(format!(
                        "approved by {by}; held: {} — it executes once the pause is lifted",
                        paused_words(&pause)
                    ));
                    run.publish(Vec::new()).await;
                }
                if run.cancel_asked().is_some() {
                    return Err(run.cancel_before_execution().await);
                }
                tokio::time::sleep(run.settings.poll_interval).await;
            }
            Ok(Some(pause)) => {
                if let Some(name) = run.record.change_set_name.take() {
                    let _ = run.cfn.delete_change_set(run.stack_name(), &name).await;
                }
                return Err(Stop::Cancelled(format!(
                    "{}; the change was not executed and the stack was not touched",
                    paused_words(&pause)
                )));
            }
            Err(e) => {
                return Err(Stop::Failed(format!(
                    "could not record the execution in the store ({e}); nothing was executed"
                )));
            }
        }
    }
    if held {
        run.record.deployment.message = None;
        run.publish(Vec::new()).await;
    }
    Ok(())
}

/// Executes an update whose change set was made before a restart (and approved since).
pub async fn run_update(run: &mut Run) -> Result<DateTime<Utc>, Stop> {
    run_with(run, Operation::Update, None).await
}

async fn run_with(
    run: &mut Run,
    operation: Operation,
    request: Option<&StackRequest>,
) -> Result<DateTime<Utc>, Stop> {
    run.begin(StepName::Execute).await?;
    commit(run).await?;
    let since = Utc::now() - CLOCK_SKEW;
    execute(run, operation, request, false).await?;
    run.end(None).await;
    Ok(since)
}

/// The execute call itself; `repeat` when it may have gone through before a restart (a create
/// needs its `request`; an update only its change set's name).
pub async fn execute(
    run: &mut Run,
    operation: Operation,
    request: Option<&StackRequest>,
    repeat: bool,
) -> Result<(), Stop> {
    let id = run.id().to_owned();
    let stack_name = run.stack_name().to_owned();
    match (operation, request) {
        (Operation::Create, Some(request)) => {
            let token = request_token(&id, "create");
            let stack_id = run
                .aws_with(Patience::WhileRetryable, |cfn, attempt| {
                    let (r, t, id) = (request.clone(), token.clone(), id.clone());
                    async move {
                        match cfn.create_stack(&r, &t).await {
                            Ok(stack_id) => Ok(stack_id),
                            // A retry whose first attempt had worked: the stack exists and is
                            // tagged with this deployment — it is ours.
                            Err(e) if e.code == "AlreadyExistsException" => {
                                match cfn.stack(&r.stack_name).await? {
                                    Some(info) if info.tag(DEPLOYMENT_TAG) == Some(id.as_str()) => {
                                        tracing::info!(
                                            attempt,
                                            "CreateStack retried: the stack is ours"
                                        );
                                        Ok(info.stack_id)
                                    }
                                    _ => Err(e),
                                }
                            }
                            Err(e) => Err(e),
                        }
                    }
                })
                .await?;
            run.record.stack_id = Some(stack_id);
        }
        (Operation::Create, None) => {
            return Err(Stop::Failed(
                "internal error: a create cannot be executed again without its build".into(),
            ));
        }
        (Operation::Update, _) => {
            let name = run
                .record
                .change_set_name
                .clone()
                .unwrap_or_else(|| change_set_name(&id));
            let token = request_token(&id, "execute");
            // A repeat (a retry, or the first call after a restart) may find the change set
            // already executing or gone: the same request already went through. A change set
            // refused because the stack changed since it was made is not that (its status says).
            let executed = run
                .aws_with(Patience::WhileRetryable, |cfn, attempt| {
                    let (s, n, t) = (stack_name.clone(), name.clone(), token.clone());
                    async move {
                        match cfn.execute_change_set(&s, &n, &t).await {
                            Ok(()) => Ok(Executed::Now),
                            Err(e) => {
                                let found = already_executed(cfn.as_ref(), &s, &n, &e).await?;
                                if found == Executed::Obsolete
                                    || (found == Executed::Already && (attempt > 0 || repeat))
                                {
                                    tracing::info!(
                                        attempt,
                                        code = e.code,
                                        ?found,
                                        "ExecuteChangeSet refused"
                                    );
                                    Ok(found)
                                } else {
                                    Err(e)
                                }
                            }
                        }
                    }
                })
                .await?;
            if executed == Executed::Obsolete {
                let _ = run.cfn.delete_change_set(&stack_name, &name).await;
                run.record.change_set_name = None;
                return Err(Stop::Failed(format!(
                    "the stack changed since the change set was made (CloudFormation marked \
                     {name} OBSOLETE), so nothing was executed; deploy again"
                )));
            }
        }
    }
    run.record.executed = true;
    run.catalog.forget_card(run.environment(), &stack_name);
    if let Err(e) = run.store.mark_executed(&id).await {
        tracing::error!(id, error = %e, "could not record the execution");
    }
    Ok(())
}

/// What an ExecuteChangeSet call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Executed {
    /// This call executed it.
    Now,
    /// An earlier call did (its answer lost, or the process restarted since).
    Already,
    /// The stack changed since the change set was made: it can never be executed.
    Obsolete,
    /// Neither: the refusal stands.
    No,
}

/// What an ExecuteChangeSet refusal means. `InvalidChangeSetStatus` is AWS's answer both for a
/// change set already executed and for one the stack's own changes made OBSOLETE, so the change
/// set's ExecutionStatus tells them apart; `ChangeSetNotFound` is one already used up.
async fn already_executed(
    cfn: &dyn CloudFormation,
    stack: &str,
    name: &str,
    e: &AwsFailure,
) -> Result<Executed, AwsFailure> {
    Ok(match e.code.as_str() {
        "ChangeSetNotFound" => Executed::Already,
        "InvalidChangeSetStatus" => match cfn.change_set_execution(stack, name).await {
            Ok(ChangeSetExecution::Executed) => Executed::Already,
            Ok(ChangeSetExecution::Obsolete) => Executed::Obsolete,
            Ok(ChangeSetExecution::NotExecuted) => Executed::No,
            // A stand-in that does not say: the refusal alone, as it reads.
            Ok(ChangeSetExecution::Unknown) => Executed::Already,
            // Asked again (with the execute) when AWS may answer later; else the refusal stands.
            Err(d) if d.retryable => return Err(d),
            Err(_) => Executed::No,
        },
        _ => Executed::No,
    })
}
