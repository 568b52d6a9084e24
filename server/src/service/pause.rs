//! The big red button: pausing every environment or one, and lifting pauses.

use app::deployment::{DeploymentStatus, LiveEvent, Operation, StepName};
use app::pause::{AuditAction, PauseRequest, PauseStatus};

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::{EnvName, optional};
use crate::store::NewAudit;

/// The longest pause reason, in characters.
pub const MAX_PAUSE_REASON: usize = 500;

/// A pause asked for: why (one line, at most [`MAX_PAUSE_REASON`] characters), where (every
/// environment when `None`), and whether to cancel updates already executing there.
#[derive(Clone, Debug)]
pub struct PauseOrder {
    pub reason: String,
    pub environment: Option<EnvName>,
    pub cancel_in_flight: bool,
}

impl PauseOrder {
    pub fn parse(request: &PauseRequest) -> Result<PauseOrder, AppError> {
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(AppError::BadRequest("a pause needs a reason".into()));
        }
        let length = reason.chars().count();
        if length > MAX_PAUSE_REASON {
            return Err(AppError::BadRequest(format!(
                "a pause reason is at most {MAX_PAUSE_REASON} characters; this one has {length}"
            )));
        }
        if reason.chars().any(char::is_control) {
            return Err(AppError::BadRequest(
                "a pause reason is one line of text, without control characters".into(),
            ));
        }
        Ok(PauseOrder {
            reason: reason.to_owned(),
            environment: optional(request.environment.as_deref(), EnvName::parse)?,
            cancel_in_flight: request.cancel_in_flight,
        })
    }
}

impl Services {
    pub async fn pause_status(&self, _actor: &Actor) -> Result<PauseStatus, AppError> {
        self.current_pause().await
    }

    async fn current_pause(&self) -> Result<PauseStatus, AppError> {
        let envs: Vec<String> = self
            .catalog
            .config()
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect();
        Ok(crate::store::pause_status(
            self.store.pauses().await?,
            &envs,
        ))
    }

    /// Pauses every environment or one; optionally cancels the updates already running there
    /// that the actor may cancel (their right to deploy in that environment) — never one
    /// waiting for approval, which the pause holds.
    pub async fn pause(&self, actor: &Actor, order: &PauseOrder) -> Result<PauseStatus, AppError> {
        actor.require_pause()?;
        let environment = order.environment.as_deref();
        if let Some(env) = environment {
            self.catalog.environment(env)?;
        }
        if self
            .store
            .pause(environment, &order.reason, actor.name())
            .await?
        {
            self.store
                .audit(NewAudit {
                    actor: actor.name(),
                    action: AuditAction::Pause,
                    environment,
                    detail: Some(&order.reason),
                    ..NewAudit::default()
                })
                .await?;
        }
        if order.cancel_in_flight {
            let active = self.store.active().await?;
            for record in active
                .iter()
                .filter(|r| environment.is_none_or(|e| r.deployment.environment == e))
            {
                // Cancelling is a right per environment: the brake is everyone's, rolling back
                // another environment's update is not.
                if !actor.may_deploy(&record.deployment.environment) {
                    tracing::info!(
                        id = record.deployment.id,
                        environment = record.deployment.environment,
                        actor = actor.name(),
                        "pause: not cancelled, the actor may not cancel there"
                    );
                    continue;
                }
                // Waiting for a person: the pause holds it (nothing was executed), it is not
                // thrown away.
                let approved = record.deployment.approval.as_ref().is_some_and(|a| {
                    a.decision == Some(app::deployment::ApprovalDecision::Approved)
                });
                if record.deployment.status == DeploymentStatus::AwaitingApproval
                    || record.deployment.step == Some(StepName::Approval)
                    || (approved && !record.execution_committed)
                {
                    continue;
                }
                // A stack being created is left alone: cancelling deletes it, which needs its own
                // confirmation.
                if record.deployment.operation == Some(Operation::Create)
                    && matches!(
                        record.deployment.step,
                        Some(StepName::Execute | StepName::Watch)
                    )
                {
                    continue;
                }
                let id = crate::ids::DeploymentId::parse(&record.deployment.id)?;
                if let Err(e) = self.engine.cancel(&id, false, actor.name()).await {
                    tracing::warn!(id = %id, error = %e, "could not cancel an in-flight deployment");
                }
            }
        }
        let status = self.current_pause().await?;
        self.hub.publish(LiveEvent::Pause(status.clone()));
        Ok(status)
    }

    /// Lifts the pause of one environment, or every pause.
    pub async fn unpause(
        &self,
        actor: &Actor,
        environment: Option<&EnvName>,
    ) -> Result<PauseStatus, AppError> {
        actor.require_admin("resuming deployments")?;
        if let Some(env) = environment {
            self.catalog.environment(env)?;
        }
        for lifted in self.store.unpause(environment.map(|e| e.as_str())).await? {
            let detail = format!(
                "lifts the pause of {} since {}: {}",
                lifted.actor,
                lifted.since.format("%Y-%m-%d %H:%M UTC"),
                lifted.reason
            );
            self.store
                .audit(NewAudit {
                    actor: actor.name(),
                    action: AuditAction::Unpause,
                    environment: lifted.environment.as_deref(),
                    detail: Some(&detail),
                    ..NewAudit::default()
                })
                .await?;
        }
        let status = self.current_pause().await?;
        self.hub.publish(LiveEvent::Pause(status.clone()));
        Ok(status)
    }
}
