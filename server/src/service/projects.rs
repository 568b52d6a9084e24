//! Reading projects, their builds and their stacks.

use app::model::{Build, Environment, Overview, Project, StackCard};

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::{EnvName, ProjectName};

/// How old a listing of the bucket's project folders a request may be answered from without
/// renewing it (in the background).
pub const PROJECTS_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

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

    /// Every project, configured or found in the bucket. A listing of the bucket's folders
    /// older than [`PROJECTS_FRESH`] is renewed in the background (the answer never waits for
    /// it; a change reaches open pages as `event: projects`).
    pub fn projects(&self, _actor: &Actor) -> Vec<Project> {
        let stale = self
            .catalog
            .folders_age()
            .is_none_or(|age| age > PROJECTS_FRESH);
        if stale && !self.catalog.discovering() {
            let (catalog, hub) = (self.catalog.clone(), self.hub.clone());
            tokio::spawn(async move { catalog.rediscover(&hub).await });
        }
        self.catalog.projects()
    }

    pub fn overview(&self, actor: &Actor) -> Overview {
        let config_refused = match self.reloader().last() {
            Some(crate::reload::Reload::Refused { reason, .. }) if actor.me().admin => Some(reason),
            _ => None,
        };
        Overview {
            environments: self.environments(actor),
            projects: self.projects(actor),
            me: actor.me(),
            config_refused,
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
