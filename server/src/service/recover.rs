//! Getting a stuck stack moving: ContinueUpdateRollback for a stack CloudFormation left in
//! `UPDATE_ROLLBACK_FAILED` (a resource it could not roll back), optionally skipping the
//! resources that failed. (A stack whose first create failed is deleted and created again by a
//! deployment: `recreate` in `deployments.rs`.)

use std::time::Duration;

use app::deployment::LiveEvent;
use app::model::{StackCard, StackStatus};
use app::pause::AuditAction;

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::{EnvName, ProjectName};
use crate::store::NewAudit;

/// How long the card follows a continued rollback before leaving it to the next reader.
const FOLLOW_FOR: Duration = Duration::from_secs(2 * 60 * 60);

/// How long DescribeStacks may go on showing `UPDATE_ROLLBACK_FAILED` after ContinueUpdateRollback
/// before the follower takes it for the rollback's end: CloudFormation answers the call at once
/// and moves the stack to `UPDATE_ROLLBACK_IN_PROGRESS` a moment later, so the old status read
/// first is not an end — unless it stays (the rollback failed again before any read saw it run).
const FIRST_MOVE: Duration = Duration::from_secs(60);

impl Services {
    /// Asks CloudFormation to continue the rollback, skipping `skip` (each must be one of the
    /// resources that failed). 409 when the stack is not in `UPDATE_ROLLBACK_FAILED` or a
    /// deployment is active on it; 400 for a resource that did not fail. The card follows the
    /// rollback live (`event: stack`) until it ends.
    pub async fn continue_rollback(
        &self,
        actor: &Actor,
        project: &ProjectName,
        environment: &EnvName,
        skip: &[String],
    ) -> Result<StackCard, AppError> {
        let stack_name = self.catalog.stack_name(project, environment)?.to_owned();
        actor.require_deploy(environment)?;
        if let Some(active) = self.store.active().await?.into_iter().find(|r| {
            r.deployment.environment == **environment && r.deployment.stack_name == stack_name
        }) {
            return Err(AppError::Busy {
                message: format!(
                    "{stack_name} in {environment} has an active deployment: {}",
                    active.deployment.id
                ),
                id: active.deployment.id,
            });
        }
        self.catalog.forget_card(environment, &stack_name);
        let card = self.catalog.stack(project, environment).await?;
        if card.status != Some(StackStatus::UpdateRollbackFailed) {
            return Err(AppError::Conflict(format!(
                "{stack_name} is {}: only a stack in UPDATE_ROLLBACK_FAILED can continue its rollback",
                card.status.map_or("not deployed", StackStatus::as_aws_str)
            )));
        }
        let failed: Vec<&str> = card
            .failed_resources
            .iter()
            .map(|r| r.logical_id.as_str())
            .collect();
        if let Some(unknown) = skip.iter().find(|s| !failed.contains(&s.as_str())) {
            return Err(AppError::BadRequest(format!(
                "{unknown:?} is not among the resources that failed to roll back ({})",
                if failed.is_empty() {
                    "none is listed".to_owned()
                } else {
                    failed.join(", ")
                }
            )));
        }
        // Continuing a rollback changes the stack: like a deploy, only while no pause covers it.
        let pauses = crate::store::pause_status(self.store.pauses().await?, &[]);
        if let Some(pause) = pauses.blocking(environment) {
            return Err(AppError::Paused(pause.clone()));
        }
        let cfn = self.catalog.cfn(environment)?;
        let token = format!("continue-{}", uuid::Uuid::new_v4().simple());
        self.catalog.set_recovering(environment, &stack_name, true);
        if let Err(e) = cfn
            .continue_update_rollback(&stack_name, skip, &token)
            .await
        {
            self.catalog.set_recovering(environment, &stack_name, false);
            return Err(e.into());
        }
        let detail = if skip.is_empty() {
            format!("{stack_name}: continue the rollback")
        } else {
            format!(
                "{stack_name}: continue the rollback, skipping {}",
                skip.join(", ")
            )
        };
        self.store
            .audit_or_log(NewAudit {
                actor: actor.name(),
                action: AuditAction::ContinueRollback,
                project: Some(project),
                environment: Some(environment),
                build: card.build.as_deref(),
                deployment_id: None,
                detail: Some(&detail),
                outcome: None,
            })
            .await;
        self.follow(project, environment, &stack_name);
        self.catalog.forget_card(environment, &stack_name);
        self.catalog.stack(project, environment).await
    }

    /// Pushes the stack's card to every page each time its status changes, until it settles.
    fn follow(&self, project: &ProjectName, environment: &EnvName, stack_name: &str) {
        let (catalog, hub) = (self.catalog.clone(), self.hub.clone());
        let every = self.engine.poll_interval();
        let (project, environment, stack_name) = (
            project.to_string(),
            environment.to_string(),
            stack_name.to_owned(),
        );
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let deadline = started + FOLLOW_FOR;
            let mut last = Some(StackStatus::UpdateRollbackFailed);
            let mut moved = false;
            while tokio::time::Instant::now() < deadline {
                catalog.forget_card(&environment, &stack_name);
                if let Ok(card) = catalog.stack(&project, &environment).await {
                    moved |= card.status != Some(StackStatus::UpdateRollbackFailed);
                    let settled = !card.status.is_some_and(StackStatus::is_in_progress)
                        && (moved || started.elapsed() >= FIRST_MOVE);
                    if settled {
                        catalog.set_recovering(&environment, &stack_name, false);
                        catalog.forget_card(&environment, &stack_name);
                        if let Ok(card) = catalog.stack(&project, &environment).await {
                            hub.publish(LiveEvent::Stack(card));
                        }
                        return;
                    }
                    if card.status != last {
                        last = card.status;
                        hub.publish(LiveEvent::Stack(card));
                    }
                }
                tokio::time::sleep(every).await;
            }
            catalog.set_recovering(&environment, &stack_name, false);
        });
    }
}
