//! Reading projects, their builds and their stacks.

use app::model::{Build, Environment, Overview, Project, StackCard};

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::{EnvName, ProjectName};

/// Which builds of a project to list.
#[derive(Clone, Debug, Default)]
pub struct BuildsFilter {
    pub branch: Option<String>,
    pub limit: Option<usize>,
}

impl BuildsFilter {
    /// From the wire: an optional branch and an optional limit (a whole number above 0).
    pub fn parse(branch: Option<&str>, limit: Option<&str>) -> Result<BuildsFilter, AppError> {
        let limit = match limit.map(str::trim) {
            None | Some("") => None,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "limit must be a whole number above 0, got {raw:?}"
                    )));
                }
            },
        };
        Ok(BuildsFilter {
            branch: branch.filter(|b| !b.is_empty()).map(str::to_owned),
            limit,
        })
    }
}

impl Services {
    pub fn environments(&self, _actor: &Actor) -> Vec<Environment> {
        self.catalog.environments()
    }

    pub fn projects(&self, _actor: &Actor) -> Vec<Project> {
        self.catalog.projects()
    }

    pub fn overview(&self, actor: &Actor) -> Overview {
        Overview {
            environments: self.environments(actor),
            projects: self.projects(actor),
            me: actor.me(),
        }
    }

    /// Builds newest first, optionally of one branch, at most `limit`.
    pub async fn builds(
        &self,
        _actor: &Actor,
        project: &ProjectName,
        filter: &BuildsFilter,
    ) -> Result<Vec<Build>, AppError> {
        self.catalog
            .builds(project, filter.branch.as_deref(), filter.limit)
            .await
    }

    /// One card per environment the project deploys to, in promotion order.
    pub async fn stacks(
        &self,
        _actor: &Actor,
        project: &ProjectName,
    ) -> Result<Vec<StackCard>, AppError> {
        self.catalog.stacks(project).await
    }

    pub async fn stack(
        &self,
        _actor: &Actor,
        project: &ProjectName,
        environment: &EnvName,
    ) -> Result<StackCard, AppError> {
        self.catalog.stack(project, environment).await
    }
}
