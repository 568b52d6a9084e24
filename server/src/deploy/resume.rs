//! After a restart: deployments the store says were in flight are picked up again.

use std::sync::Arc;

use app::deployment::{DeploymentStatus, Operation};
use app::pause::PauseStatus;

use crate::store::{Dialect, Record};

use super::Engine;
use super::run::{change_set_name, paused_words};

impl Engine {
    /// Those that executed are watched to their end (an update committed to execute is executed
    /// again with the same request token, which CloudFormation treats as the same request).
    /// Those that executed nothing start over from their build — unless a cancel was asked for or
    /// a pause now covers them: a restarted deployer does not start paused work.
    ///
    /// One SQLite process owns every active deployment; replicas on PostgreSQL take only those
    /// nobody holds (never claimed, released by a replica that stopped, or whose lease ran out).
    pub async fn resume(self: &Arc<Self>) -> anyhow::Result<usize> {
        let sole = self.store.dialect() == Dialect::Sqlite;
        let candidates = if sole {
            self.store.active().await?
        } else {
            self.store.orphaned().await?
        };
        self.take_over(candidates, sole).await
    }

    /// Claims each candidate (skipping what this process drives already, or another replica
    /// claimed first) and picks it up.
    pub(super) async fn take_over(
        self: &Arc<Self>,
        candidates: Vec<Record>,
        force: bool,
    ) -> anyhow::Result<usize> {
        if candidates.is_empty() {
            return Ok(0);
        }
        let pauses = crate::store::pause_status(self.store.pauses().await?, &[]);
        let mut count = 0;
        for record in candidates {
            let id = record.deployment.id.clone();
            // Driven already — by a task, or being started (its row written a moment ago).
            if self.driving().contains(&id) || !self.store.claim(&id, force).await? {
                continue;
            }
            // Read again now that it is ours: what the old owner wrote before it lost the lease
            // (read before the claim, it could be stale) is what this replica goes on from.
            let record = match self.store.record(&id).await? {
                Some(fresh) if fresh.deployment.status.is_active() => fresh,
                Some(_) => continue,
                None => record,
            };
            count += 1;
            self.resume_one(record, &pauses).await;
        }
        Ok(count)
    }

    async fn resume_one(self: &Arc<Self>, mut record: Record, pauses: &PauseStatus) {
        {
            let d = &record.deployment;
            let Ok(cfn) = self.catalog.cfn(&d.environment) else {
                self.finish(
                    &mut record,
                    DeploymentStatus::Failed,
                    "could not be resumed after a restart: its environment is no longer configured",
                )
                .await;
                return;
            };
            let operation = d.operation;
            let reattach = record.executed
                || (record.execution_committed && operation == Some(Operation::Update))
                // Waiting for a person's approval: it goes on waiting, its change set kept.
                || super::steps::awaits_approval(&record);
            tracing::info!(
                id = d.id,
                executed = record.executed,
                committed = record.execution_committed,
                "re-attaching a deployment after restart"
            );
            if reattach {
                self.spawn(record, cfn, None);
                return;
            }
            // Nothing was executed (a create committed to execute starts over too: CreateStack
            // carries the same request token, and a stack tagged with this deployment is ours).
            let stack = d.stack_name.clone();
            if operation == Some(Operation::Update) || record.change_set_name.is_some() {
                let _ = cfn.delete_change_set(&stack, &change_set_name(&d.id)).await;
            }
            record.change_set_name = None;
            // Waiting for a person, or approved and held: a pause holds it (it is planned again
            // and waits where it was), it is not cancelled.
            let held_for_a_person = record.deployment.status == DeploymentStatus::AwaitingApproval
                || record.deployment.approval.as_ref().is_some_and(|a| {
                    a.decision == Some(app::deployment::ApprovalDecision::Approved)
                });
            if !record.execution_committed {
                let d = &record.deployment;
                let why = if record.cancel.is_some() {
                    Some(
                        "cancelled before anything was executed; the stack was not touched"
                            .to_owned(),
                    )
                } else if held_for_a_person {
                    None
                } else {
                    pauses
                        .blocking(&d.environment)
                        .map(|p| format!("{}; the stack was not touched", paused_words(p)))
                };
                if let Some(why) = why {
                    self.finish(&mut record, DeploymentStatus::Cancelled, &why)
                        .await;
                    return;
                }
            }
            let d = &record.deployment;
            match self.catalog.find_build(&d.project, &d.build).await {
                Ok(folder) => {
                    record.steps.clear();
                    record.deployment.step = None;
                    record.deployment.status = DeploymentStatus::Pending;
                    self.spawn(record, cfn, Some(folder));
                }
                Err(_) => {
                    self.finish(
                        &mut record,
                        DeploymentStatus::Failed,
                        "could not be resumed after a restart: its build is gone",
                    )
                    .await
                }
            }
        }
    }
}
