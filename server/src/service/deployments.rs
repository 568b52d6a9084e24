//! Starting, cancelling and reading deployments.

use app::deployment::{Deployment, DeploymentDetail, StartDeployment};
use app::pause::AuditAction;

use super::{Actor, Services};
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
}

impl StartRequest {
    pub fn parse(request: &StartDeployment) -> Result<StartRequest, AppError> {
        Ok(StartRequest {
            project: ProjectName::parse(&request.project)?,
            environment: EnvName::parse(&request.environment)?,
            build: BuildName::parse(&request.build)?,
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
        let plan = Plan {
            project: request.project.clone(),
            environment: request.environment.clone(),
            stack_name,
            folder,
            cfn,
        };
        self.engine.start(plan, actor.name()).await
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
