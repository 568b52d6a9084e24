//! Step 6, in a protected environment only: every operation — an update's change set, made and
//! described, or a create (a first deploy, a failed stack deleted and made again) — waits here, `awaiting_approval`, for a person to approve it (then it executes) or discard it
//! (then its change set is deleted). The decision is kept in the store by whoever makes it, on
//! any replica, and read back here — so the wait survives a restart and a hand-over. A pause
//! holds an approved deployment until it is lifted.

use app::deployment::{Approval, ApprovalDecision, DeploymentStatus, StepName};

use crate::deploy::run::{Run, Stop, paused_words};
use crate::store::pause_status;

pub async fn run(run: &mut Run) -> Result<(), Stop> {
    let protection = run
        .catalog
        .environment(run.environment())
        .ok()
        .and_then(|e| e.protection);
    let Some(protection) = protection else {
        if run.record.deployment.step == Some(StepName::Approval) {
            // Protection was lifted from the environment while it waited: it goes on as any
            // deployment there would.
            run.record.deployment.status = DeploymentStatus::Running;
            run.end(Some("the environment is no longer protected".into()))
                .await;
        }
        return Ok(());
    };
    if run.record.deployment.step != Some(StepName::Approval) {
        run.begin(StepName::Approval).await?;
    }
    run.record.deployment.status = DeploymentStatus::AwaitingApproval;
    run.record.deployment.approval.get_or_insert(Approval {
        by_another: protection.by_another,
        decision: None,
        decided_by: None,
        decided_at: None,
    });
    run.record.deployment.message = Some(waiting_words(run, protection.by_another));
    // Kept before anyone is asked: a decision is recorded only on a deployment the store says
    // is waiting.
    if !run.save_kept().await {
        return Err(Stop::Failed(
            "another replica drives this deployment now".into(),
        ));
    }
    run.announce(Vec::new());
    let mut held = false;
    loop {
        if run.cancel_asked().is_some() {
            return Err(run.cancel_before_execution().await);
        }
        match run.store.approval_decision(run.id()).await {
            Ok(Some((decision, by, at))) => {
                if let Some(approval) = run.record.deployment.approval.as_mut() {
                    approval.decision = Some(decision);
                    approval.decided_by = Some(by.clone());
                    approval.decided_at = Some(at);
                }
                match decision {
                    ApprovalDecision::Discarded => {
                        if let Some(name) = run.record.change_set_name.take()
                            && let Err(e) = run.cfn.delete_change_set(run.stack_name(), &name).await
                        {
                            tracing::warn!(error = %e, "could not delete a discarded change set");
                        }
                        return Err(Stop::Cancelled(format!(
                            "discarded by {by}: the change set was deleted and the stack was not touched"
                        )));
                    }
                    ApprovalDecision::Approved => {
                        let pauses = run.store.pauses().await.unwrap_or_default();
                        let status = pause_status(pauses, &[]);
                        match status.blocking(run.environment()) {
                            Some(pause) => {
                                if !held {
                                    held = true;
                                    run.record.deployment.message = Some(format!(
                                        "approved by {by}; held: {} — it executes once the pause is lifted",
                                        paused_words(pause)
                                    ));
                                    run.publish(Vec::new()).await;
                                }
                            }
                            None => {
                                run.record.deployment.status = DeploymentStatus::Running;
                                run.record.deployment.message = None;
                                run.end(Some(format!("approved by {by}"))).await;
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(id = run.id(), error = %e, "could not read the approval"),
        }
        let interval = run.settings.poll_interval;
        // A cancel ends the wait at once; a decision is read at the next look.
        let signal_gone = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            changed = run.cancel.changed() => changed.is_err(),
        };
        if signal_gone {
            tokio::time::sleep(interval).await;
        }
    }
}

/// What the deployment waits for, in words.
fn waiting_words(run: &Run, by_another: bool) -> String {
    let who = if by_another {
        let asked = &run.record.deployment.actor;
        match &run.record.requester {
            Some(person) if &person.name != asked => {
                format!(
                    "a person other than {} (who asked through {asked:?})",
                    person.name
                )
            }
            _ => format!("a person other than {asked}"),
        }
    } else {
        "a person who may deploy here".to_owned()
    };
    let interrupting = run
        .record
        .change_set
        .as_ref()
        .map(|c| c.changes.iter().filter(|c| c.interrupts).count())
        .unwrap_or(0);
    let warning = match interrupting {
        0 => String::new(),
        1 => "; 1 change interrupts users or may lose data".to_owned(),
        n => format!("; {n} changes interrupt users or may lose data"),
    };
    let what = match run.record.deployment.operation {
        Some(app::deployment::Operation::Create) if run.record.deployment.recreate => {
            format!("the deletion and new create of {}", run.stack_name())
        }
        Some(app::deployment::Operation::Create) => format!("the create of {}", run.stack_name()),
        _ => "the change set".to_owned(),
    };
    format!(
        "{} is protected: waiting for {who} to approve or discard {what}{warning}",
        run.environment()
    )
}
