//! Starting, cancelling and reading deployments.

use app::deployment::{
    ApprovalDecision, Deployment, DeploymentDetail, DeploymentStatus, StartDeployment,
};
use app::pause::AuditAction;

use super::{Actor, Person, Services};
use crate::deploy::Plan;
use crate::error::AppError;
use crate::ids::{BuildName, DeploymentId, EnvName, Limit, ProjectName, optional};
use crate::store::{Filter, NewAudit};

/// A deploy asked for: this build of this project onto its stack in this environment.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub project: ProjectName,
    pub environment: EnvName,
    pub build: BuildName,
    /// Confirmed: a stack whose first create failed is deleted and created again.
    pub recreate: bool,
}

impl StartRequest {
    pub fn parse(request: &StartDeployment) -> Result<StartRequest, AppError> {
        Ok(StartRequest {
            project: ProjectName::parse(&request.project)?,
            environment: EnvName::parse(&request.environment)?,
            build: BuildName::parse(&request.build)?,
            recreate: request.recreate,
        })
    }
}

/// Which deployments to list, newest first.
#[derive(Clone, Debug)]
pub struct DeploymentsFilter {
    pub project: Option<ProjectName>,
    pub environment: Option<EnvName>,
    pub limit: Limit,
}

impl DeploymentsFilter {
    pub fn parse(
        project: Option<&str>,
        environment: Option<&str>,
        limit: Limit,
    ) -> Result<DeploymentsFilter, AppError> {
        Ok(DeploymentsFilter {
            project: optional(project, ProjectName::parse)?,
            environment: optional(environment, EnvName::parse)?,
            limit,
        })
    }
}

impl Services {
    /// Checks the request, records the deployment (409 when the stack already has an active
    /// one, 423 when paused) and starts it in the background.
    pub async fn start(
        &self,
        actor: &Actor,
        request: &StartRequest,
    ) -> Result<Deployment, AppError> {
        let stack_name = self
            .catalog
            .stack_name(&request.project, &request.environment)?
            .to_owned();
        actor.require_deploy(&request.environment)?;
        let cfn = self.catalog.cfn(&request.environment)?;
        let folder = self
            .catalog
            .find_build(&request.project, &request.build)
            .await?;
        if let Some(problem) = &folder.build.problem {
            let reason = format!("{} cannot be deployed: {problem}", request.build);
            self.store
                .audit_or_log(NewAudit {
                    actor: actor.name(),
                    action: AuditAction::DeployRefused,
                    project: Some(&request.project),
                    environment: Some(&request.environment),
                    build: Some(&request.build),
                    deployment_id: None,
                    detail: Some(&reason),
                    outcome: None,
                })
                .await;
            return Err(AppError::Refused(reason));
        }
        // Asked before anything starts (a card read, cached for 2 s); when the stack cannot be
        // read here, the engine's own check refuses the deployment instead.
        if !request.recreate
            && let Ok(card) = self
                .catalog
                .stack(&request.project, &request.environment)
                .await
            && let Some(status) = card.status.filter(|s| s.needs_recreate())
        {
            return Err(AppError::ConfirmationRequired(format!(
                "{stack_name} is in {}: its first create failed, and such a stack cannot be \
                     updated. Deploying deletes it and creates it again from {}; confirm with \
                     {{\"recreate\": true}}.",
                status.as_aws_str(),
                request.build
            )));
        }
        let plan = Plan {
            project: request.project.clone(),
            environment: request.environment.clone(),
            stack_name,
            folder,
            cfn,
            recreate: request.recreate,
        };
        self.engine.start(plan, actor.name(), actor.person()).await
    }

    /// Asks a deployment to stop; a create needs `confirm_delete` (cancelling deletes the stack).
    pub async fn cancel(
        &self,
        actor: &Actor,
        id: &DeploymentId,
        confirm_delete: bool,
    ) -> Result<Deployment, AppError> {
        let deployment = self.deployment(actor, id).await?;
        actor.require_deploy(&deployment.deployment.environment)?;
        self.engine.cancel(id, confirm_delete, actor.name()).await
    }

    /// A person's decision on a deployment waiting in a protected environment: approved, it
    /// executes (423 while a pause covers the environment — the wait goes on); discarded, its
    /// change set is deleted. Needs the right to deploy there; 403 for the person who asked when
    /// the environment wants another; 409 when it is not waiting (any more) or someone decided
    /// first. The driving replica reads the decision within its poll interval.
    pub async fn decide(
        &self,
        actor: &Actor,
        id: &DeploymentId,
        decision: ApprovalDecision,
    ) -> Result<Deployment, AppError> {
        let detail = self.deployment(actor, id).await?;
        let d = &detail.deployment;
        actor.require_deploy(&d.environment)?;
        let verb = match decision {
            ApprovalDecision::Approved => "approve",
            ApprovalDecision::Discarded => "discard",
        };
        if d.status != DeploymentStatus::AwaitingApproval {
            return Err(AppError::Conflict(format!(
                "deployment {id} is not awaiting approval: it is {}",
                d.status.as_str().replace('_', " ")
            )));
        }
        if let Some(approval) = &d.approval
            && let (Some(done), Some(by)) = (approval.decision, &approval.decided_by)
        {
            return Err(AppError::Conflict(format!(
                "deployment {id} was already {} by {by}",
                done.as_str()
            )));
        }
        let by_another = d.approval.as_ref().is_some_and(|a| a.by_another);
        if by_another
            && decision == ApprovalDecision::Approved
            && actor.via() == app::auth::Via::Token
            && actor.person().id.starts_with("name:")
        {
            return Err(AppError::Forbidden(format!(
                "{} needs another person to approve, and the token {:?} was made before tokens \
                 recorded whom they act for: approve as a person, or with a token made since",
                d.environment,
                actor.name()
            )));
        }
        if by_another && decision == ApprovalDecision::Approved {
            // People, not names: a token acts for the person who made it, a session for the
            // identity provider's subject — whatever either is called.
            let requester = self
                .store
                .record(id)
                .await?
                .and_then(|r| r.requester)
                .unwrap_or_else(|| Person::named(&d.actor));
            if requester.same_as(actor.person()) {
                let through = if actor.name() == requester.name {
                    String::new()
                } else {
                    format!(" (through {:?})", actor.name())
                };
                return Err(AppError::Forbidden(format!(
                    "{} needs another person to approve: {} asked for this deployment, and \
                     {}{through} is the same person",
                    d.environment, requester.name, requester.name
                )));
            }
        }
        if decision == ApprovalDecision::Approved {
            let pauses = crate::store::pause_status(self.store.pauses().await?, &[]);
            if let Some(pause) = pauses.blocking(&d.environment) {
                return Err(AppError::Paused(pause.clone()));
            }
        }
        if !self
            .store
            .decide_approval(id, decision, actor.name())
            .await?
        {
            // Between the read and the write: someone decided, it was cancelled, or a pause came.
            let now = self.deployment(actor, id).await?.deployment;
            let pauses = crate::store::pause_status(self.store.pauses().await?, &[]);
            if decision == ApprovalDecision::Approved
                && let Some(pause) = pauses.blocking(&now.environment)
            {
                return Err(AppError::Paused(pause.clone()));
            }
            return Err(AppError::Conflict(format!(
                "deployment {id} could not be {}d: it is {}{}",
                verb,
                now.status.as_str().replace('_', " "),
                now.approval
                    .and_then(|a| a.decided_by.zip(a.decision))
                    .map(|(by, d)| format!(", {} by {by}", d.as_str()))
                    .unwrap_or_default()
            )));
        }
        let action = match decision {
            ApprovalDecision::Approved => AuditAction::Approve,
            ApprovalDecision::Discarded => AuditAction::Discard,
        };
        self.store
            .audit_or_log(NewAudit {
                actor: actor.name(),
                action,
                project: Some(&d.project),
                environment: Some(&d.environment),
                build: Some(&d.build),
                deployment_id: Some(&d.id),
                detail: Some(&format!("asked for by {}", d.actor)),
                outcome: None,
            })
            .await;
        Ok(self.deployment(actor, id).await?.deployment)
    }

    pub async fn deployments(
        &self,
        _actor: &Actor,
        filter: &DeploymentsFilter,
    ) -> Result<Vec<Deployment>, AppError> {
        if let Some(project) = &filter.project {
            self.catalog.project(project)?;
        }
        if let Some(environment) = &filter.environment {
            self.catalog.environment(environment)?;
        }
        let filter = Filter {
            project: filter.project.as_ref().map(ToString::to_string),
            environment: filter.environment.as_ref().map(ToString::to_string),
            limit: Some(filter.limit.get()),
        };
        Ok(self.store.list(&filter).await?)
    }

    pub async fn deployment(
        &self,
        _actor: &Actor,
        id: &DeploymentId,
    ) -> Result<DeploymentDetail, AppError> {
        self.store
            .detail(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no deployment {:?}", id.as_str())))
    }

    /// Every active deployment, as the store has them (not the newest N of the history): what
    /// the event stream starts with and what the page shows as running.
    pub async fn active(&self, _actor: &Actor) -> Result<Vec<Deployment>, AppError> {
        Ok(self
            .store
            .active()
            .await?
            .into_iter()
            .map(|r| r.deployment)
            .collect())
    }
}
