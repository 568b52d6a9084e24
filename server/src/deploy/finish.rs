//! How a deployment's end is recorded: the steps' result (or a panic, or a restart that cannot
//! pick it up) becomes the deployment's status and message, an audit entry, a live event, and a
//! fresh stack card.

use std::sync::Arc;

use app::deployment::{Deployment, DeploymentStatus, DeploymentUpdate, LiveEvent, StepStatus};
use app::pause::AuditAction;
use chrono::Utc;

use super::Engine;
use super::run::{Run, Stop};
use super::steps;
use crate::artifacts::BuildFolder;
use crate::store::Record;

impl Engine {
    /// Runs the steps, then records the ending: the deployment, the audit trail, every viewer,
    /// and the stack's card.
    pub(super) async fn drive(self: &Arc<Self>, mut run: Run, folder: Option<BuildFolder>) {
        if let Ok(events) = self.store.events(run.id()).await {
            run.last_event = events.last().map(|e| e.id.clone());
            run.finished_resources = events
                .iter()
                .filter(|e| steps::is_resource_done(e))
                .map(|e| e.logical_id.clone())
                .collect();
        }
        run.record.deployment.status = DeploymentStatus::Running;
        let result = match folder {
            Some(folder) => steps::deploy(&mut run, &folder).await,
            None => steps::reattach(&mut run).await,
        };
        let d = &mut run.record.deployment;
        d.finished_at = Some(Utc::now());
        d.waiting_for_aws = false;
        d.waiting_reason = None;
        d.waiting_since = None;
        let (status, message) = match result {
            Ok(done) => (DeploymentStatus::Succeeded, done.message),
            Err(Stop::Refused(m)) => (DeploymentStatus::Refused, Some(m)),
            Err(Stop::Failed(m)) => (DeploymentStatus::Failed, Some(m)),
            Err(Stop::Cancelled(m)) => (DeploymentStatus::Cancelled, Some(m)),
        };
        d.status = status;
        d.message = message;
        if let Some(step) = run
            .record
            .steps
            .last_mut()
            .filter(|s| s.status == StepStatus::Running)
        {
            step.status = if status == DeploymentStatus::Succeeded {
                StepStatus::Done
            } else {
                StepStatus::Failed
            };
            step.finished_at = d.finished_at;
        }
        tracing::info!(
            id = d.id,
            status = d.status.as_str(),
            message = d.message,
            "deployment finished"
        );
        let snapshot = d.clone();
        // Recorded first, and only by the owner: a process that lost the deployment to another
        // replica writes no ending, no audit entry (nor its webhook) and no live event.
        if !self.save_ending(&run.record).await {
            return;
        }
        count_ended(&snapshot);
        self.audit(
            &snapshot.actor,
            AuditAction::DeployFinished,
            &snapshot,
            Some(&outcome_words(&snapshot)),
        )
        .await;
        // Recorded, then the cached card forgotten, then announced: a viewer refetching the card
        // on this event must read the stack as this deployment left it.
        self.catalog
            .forget_card(&snapshot.environment, &snapshot.stack_name);
        run.announce(Vec::new());
        match self
            .catalog
            .stack(&snapshot.project, &snapshot.environment)
            .await
        {
            Ok(card) => self.hub.publish(LiveEvent::Stack(card)),
            Err(e) => tracing::warn!(error = %e, "could not read the stack after a deployment"),
        }
    }

    /// Keeps a deployment's ending, retrying while the store is briefly away (an ending that is
    /// not kept leaves the stack locked by a deployment nobody drives). False when another
    /// replica owns the deployment now. Should the store stay away past the lease, the lease
    /// keeper stops this task and the deployment is picked up again, its ending re-read from
    /// the stack.
    async fn save_ending(&self, record: &Record) -> bool {
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            match self.store.save(record).await {
                Ok(()) => return true,
                Err(crate::store::StoreError::LeaseLost(_)) => {
                    tracing::warn!(
                        id = record.deployment.id,
                        "ending not recorded: another replica drives this deployment now"
                    );
                    return false;
                }
                Err(e) => {
                    tracing::error!(
                        id = record.deployment.id,
                        error = %e,
                        "could not record a deployment's end; trying again"
                    );
                    tokio::time::sleep(crate::backoff::jitter(pause)).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    /// A bug (a panic) in a deployment's task: the deployment ends `failed`, saying so, and the
    /// stack's lock is freed — never a deployment left "running" that nobody drives.
    pub(super) async fn end_after_panic(&self, id: &str, panic: &str) {
        tracing::error!(id, panic, "a deployment's task panicked");
        let Ok(Some(mut record)) = self.store.record(id).await else {
            return;
        };
        if !record.deployment.status.is_active() {
            return;
        }
        let message = if record.executed || record.execution_committed {
            "the deployer hit an internal error while watching this deployment (see its log); \
             CloudFormation may still be changing the stack: check it before deploying again"
        } else {
            "the deployer hit an internal error before executing anything (see its log); \
             the stack was not touched"
        };
        self.finish(&mut record, DeploymentStatus::Failed, message)
            .await;
    }

    /// Ends a deployment that is not being driven (after a restart, or a panic): recorded,
    /// audited and pushed.
    pub(super) async fn finish(&self, record: &mut Record, status: DeploymentStatus, why: &str) {
        let d = &mut record.deployment;
        d.status = status;
        d.finished_at = Some(Utc::now());
        d.waiting_for_aws = false;
        d.waiting_reason = None;
        d.waiting_since = None;
        d.message = Some(why.to_owned());
        if let Some(step) = record
            .steps
            .last_mut()
            .filter(|s| s.status == StepStatus::Running)
        {
            step.status = StepStatus::Failed;
            step.finished_at = record.deployment.finished_at;
        }
        if !self.save_ending(record).await {
            return;
        }
        count_ended(&record.deployment);
        let d = record.deployment.clone();
        self.audit(
            &d.actor,
            AuditAction::DeployFinished,
            &d,
            Some(&outcome_words(&d)),
        )
        .await;
        self.hub.publish(LiveEvent::Deployment(DeploymentUpdate {
            deployment: d,
            step: record.steps.last().cloned(),
            new_events: Vec::new(),
        }));
    }
}

/// The deployment's end in the metrics: its outcome and how long it took.
fn count_ended(d: &Deployment) {
    let seconds = d.finished_at.map_or(0.0, |end| {
        (end - d.started_at).num_milliseconds() as f64 / 1000.0
    });
    crate::metrics::deployment_ended(&d.environment, d.status.as_str(), seconds);
}

/// A deployment's ending in words, for the audit trail: `failed: <why>`.
fn outcome_words(d: &Deployment) -> String {
    match &d.message {
        Some(m) => format!("{}: {m}", d.status.as_str()),
        None => d.status.as_str().to_owned(),
    }
}
