//! The deployer's read side: the configured environments and projects, their builds and stacks.
//! The REST API and the pages (through [`Backend`]) both go through here.

use std::sync::Arc;

use app::api::ssr::Backend;
use app::model::{Build, Environment, ErrorBody, Overview, Project, StackCard};

use crate::artifacts::{ArtifactStore, BuildFolder, LISTING_TTL};
use crate::aws::AwsClients;
use crate::config::{self, Config};
use crate::error::AppError;
use crate::stacks;

pub struct Deployer {
    pub config: Config,
    pub aws: AwsClients,
    pub artifacts: ArtifactStore,
}

impl Deployer {
    pub fn new(config: Config, aws: AwsClients) -> anyhow::Result<Self> {
        let s3 = aws
            .env(&config.artifacts.environment)
            .ok_or_else(|| anyhow::anyhow!("no clients for the artifacts environment"))?
            .s3
            .clone();
        let artifacts = ArtifactStore::new(
            s3,
            config.artifacts.bucket.clone(),
            config.artifacts.prefix.clone(),
            LISTING_TTL,
        );
        Ok(Deployer {
            config,
            aws,
            artifacts,
        })
    }

    pub fn environments(&self) -> Vec<Environment> {
        self.config
            .environments
            .iter()
            .map(|e| Environment {
                name: e.name.clone(),
                account_id: e.account_id.clone(),
                region: e.region.clone(),
            })
            .collect()
    }

    pub fn projects(&self) -> Vec<Project> {
        self.config
            .projects
            .iter()
            .map(|p| Project {
                name: p.name.clone(),
                title: p.title.clone(),
                artifacts_url: self.config.artifacts_url(&p.name),
                environments: p.environments().map(str::to_owned).collect(),
            })
            .collect()
    }

    pub fn project(&self, name: &str) -> Result<&config::Project, AppError> {
        self.config
            .project(name)
            .ok_or_else(|| AppError::NotFound(format!("no project is called {name:?}")))
    }

    pub async fn build_folders(&self, project: &str) -> Result<Arc<Vec<BuildFolder>>, AppError> {
        let project = self.project(project)?;
        Ok(self.artifacts.folders(&project.name).await?)
    }

    /// Builds newest first, optionally of one branch, at most `limit`.
    pub async fn builds(
        &self,
        project: &str,
        branch: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Build>, AppError> {
        let folders = self.build_folders(project).await?;
        Ok(folders
            .iter()
            .filter(|f| branch.is_none_or(|b| f.build.branch.as_deref() == Some(b)))
            .take(limit.unwrap_or(usize::MAX))
            .map(|f| f.build.clone())
            .collect())
    }

    /// The project's stack in one environment.
    pub async fn stack(&self, project: &str, environment: &str) -> Result<StackCard, AppError> {
        let project = self.project(project)?;
        let stack_name = project.stack_name(environment).ok_or_else(|| {
            AppError::NotFound(format!(
                "{} does not deploy to {environment:?}",
                project.name
            ))
        })?;
        let clients = self.aws.env(environment).ok_or_else(|| {
            AppError::NotFound(format!("no environment is called {environment:?}"))
        })?;
        Ok(stacks::describe(&clients.cloudformation, environment, stack_name).await?)
    }

    /// One card per environment the project deploys to, read concurrently, in promotion order.
    pub async fn stacks(&self, project: &str) -> Result<Vec<StackCard>, AppError> {
        let project = self.project(project)?;
        let reads = project
            .environments()
            .map(|env| self.stack(&project.name, env));
        futures::future::try_join_all(reads).await
    }
}

#[async_trait::async_trait]
impl Backend for Deployer {
    fn overview(&self) -> Overview {
        Overview {
            environments: self.environments(),
            projects: self.projects(),
        }
    }

    async fn builds(
        &self,
        project: &str,
        branch: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Build>, ErrorBody> {
        Deployer::builds(self, project, branch, limit)
            .await
            .map_err(ErrorBody::from)
    }

    async fn stack(&self, project: &str, environment: &str) -> Result<StackCard, ErrorBody> {
        Deployer::stack(self, project, environment)
            .await
            .map_err(ErrorBody::from)
    }
}
