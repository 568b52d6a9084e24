//! Promotion: every project across its environments (DEV → STG → PRD, in the order the project
//! lists them), how far each environment is behind the one before, and "Promote" — deploying
//! the build the previous environment runs.

use app::deployment::DeploymentStatus;
use app::deployment::{Deployment, StartDeployment};
use app::model::{Build, PreviewChange, Promotion, PromotionCell, RollbackVerdict, StackCard};

use super::{Actor, BuildsFilter, Services};
use crate::error::AppError;
use crate::ids::{BuildName, EnvName, Limit, ProjectName};

impl Services {
    /// Every project's row of the matrix; the stacks are read concurrently (and cached briefly).
    pub async fn promotion(&self, actor: &Actor) -> Result<Vec<Promotion>, AppError> {
        // Every project that can be deployed (a folder of the bucket that cannot be a project
        // has no stacks to show).
        let rows = self
            .catalog
            .project_names()
            .into_iter()
            .map(|p| async move { self.promotion_of(actor, &ProjectName::parse(&p)?).await });
        futures::future::try_join_all(rows).await
    }

    /// One project's row of the matrix. An environment whose stack cannot be read (its account
    /// unreachable, access denied) is a cell of its own, unknown with the reason, rather than
    /// the row — and with it the matrix — failing.
    pub async fn promotion_of(
        &self,
        actor: &Actor,
        project: &ProjectName,
    ) -> Result<Promotion, AppError> {
        let config = self.catalog.project(project)?;
        let title = config.title.clone();
        let environments: Vec<String> = config.environments().map(str::to_owned).collect();
        let all = BuildsFilter::default();
        let reads = environments
            .iter()
            .map(|env| self.catalog.stack(project.as_str(), env));
        let (reads, builds) = futures::join!(
            futures::future::join_all(reads),
            self.builds(actor, project, &all)
        );
        // A project whose builds cannot be listed still shows its stacks.
        let builds = builds.unwrap_or_default();
        let mut unknown: Vec<(String, String)> = Vec::new();
        let cards: Vec<StackCard> = environments
            .into_iter()
            .zip(reads)
            .map(|(environment, read)| {
                read.unwrap_or_else(|e| {
                    // The summary the API would answer (AWS's details are in the log).
                    unknown.push((environment.clone(), e.body().message));
                    // In the order as a stack that runs nothing: the next environment is
                    // offered nothing from it, and it is not "behind".
                    StackCard {
                        environment,
                        name: String::new(),
                        exists: false,
                        status: None,
                        status_reason: None,
                        build: None,
                        updated_at: None,
                        outputs: Vec::new(),
                        parameters: Vec::new(),
                        failed_resources: Vec::new(),
                        outside: None,
                    }
                })
            })
            .collect();
        let mut environments = cells(&cards, &builds);
        for cell in &mut environments {
            if let Some((_, reason)) = unknown.iter().find(|(e, _)| *e == cell.environment) {
                // What runs there is unknown: promoting into it is not offered either.
                cell.promote = None;
                cell.unknown = Some(reason.clone());
            }
        }
        Ok(Promotion {
            project: project.to_string(),
            title,
            environments,
        })
    }

    /// What deploying `build` (by default the build deployed before the current one: the
    /// card's rollback) to the stack would run into, checked now.
    pub async fn rollback_verdict(
        &self,
        actor: &Actor,
        project: &ProjectName,
        environment: &EnvName,
        build: Option<&BuildName>,
    ) -> Result<RollbackVerdict, AppError> {
        let build = match build {
            Some(b) => b.to_string(),
            None => {
                let current = self.catalog.stack(project, environment).await?.build;
                let filter = super::DeploymentsFilter {
                    project: Some(project.clone()),
                    environment: Some(environment.clone()),
                    limit: Limit::parse("limit", Some("1000"))?,
                };
                self.deployments(actor, &filter)
                    .await?
                    .into_iter()
                    .filter(|d| d.status == DeploymentStatus::Succeeded)
                    .map(|d| d.build)
                    .find(|b| Some(b) != current.as_ref())
                    .ok_or_else(|| {
                        AppError::Conflict(format!(
                            "nothing to roll back to: the deployer has deployed no other build of {project} to {environment}"
                        ))
                    })?
            }
        };
        let warnings =
            crate::deploy::verdict::check(&self.catalog, project, environment, &build).await?;
        Ok(RollbackVerdict {
            build,
            verdict: if warnings.is_empty() {
                "safe"
            } else {
                "warnings"
            }
            .to_owned(),
            warnings,
        })
    }

    /// What deploying `build` to the stack would change, without deploying. It makes a change set in the environment's account (and deletes it): the right to deploy
    /// there is needed, and each person runs a few at a time, a few a minute.
    pub async fn preview(
        &self,
        actor: &Actor,
        project: &ProjectName,
        environment: &EnvName,
        build: &BuildName,
    ) -> Result<Vec<PreviewChange>, AppError> {
        actor.require_deploy(environment)?;
        let _slot = self.previews.take(actor.person())?;
        crate::deploy::preview::preview(&self.catalog, project, environment, build).await
    }

    /// Deploys to `environment` the build the environment before it runs.
    pub async fn promote(
        &self,
        actor: &Actor,
        project: &ProjectName,
        environment: &EnvName,
    ) -> Result<Deployment, AppError> {
        let p = self.catalog.project(project)?;
        if !p.environments().any(|e| e == environment.as_str()) {
            return Err(AppError::NotFound(format!(
                "{project} does not deploy to {environment}"
            )));
        }
        let cards = self.catalog.stacks(project).await?;
        let cell = cells(&cards, &[])
            .into_iter()
            .find(|c| c.environment == environment.as_str())
            .ok_or_else(|| {
                AppError::NotFound(format!("{project} has no stack in {environment}"))
            })?;
        let Some(previous) = &cell.previous else {
            return Err(AppError::Conflict(format!(
                "nothing to promote: {environment} is the first environment {project} deploys to"
            )));
        };
        let from = cards.iter().find(|c| &c.environment == previous);
        let Some(build) = from.and_then(|c| c.build.clone()) else {
            return Err(AppError::Conflict(format!(
                "nothing to promote: {project} runs no build in {previous}"
            )));
        };
        if cell.build.as_deref() == Some(build.as_str()) {
            return Err(AppError::Conflict(format!(
                "nothing to promote: {environment} already runs {build}, as {previous} does"
            )));
        }
        let request = super::StartRequest::parse(&StartDeployment {
            project: project.to_string(),
            environment: environment.to_string(),
            build,
            recreate: false,
        })?;
        self.start(actor, &request).await
    }
}

/// The matrix cells of one project's cards (in its promotion order). `builds` (newest first)
/// lets "behind" count the builds that exist; without it, build numbers are compared.
pub fn cells(cards: &[StackCard], builds: &[Build]) -> Vec<PromotionCell> {
    let mut out: Vec<PromotionCell> = Vec::with_capacity(cards.len());
    for (i, card) in cards.iter().enumerate() {
        let build = card.build.clone().filter(|_| card.exists);
        let before = i.checked_sub(1).map(|j| &cards[j]);
        let before_build = before.and_then(|b| b.build.clone().filter(|_| b.exists));
        let behind = match (&build, &before_build) {
            (Some(here), Some(there)) => behind(here, there, builds),
            _ => None,
        };
        let promote = before_build.filter(|b| Some(b) != build.as_ref());
        out.push(PromotionCell {
            environment: card.environment.clone(),
            build,
            status: card.status,
            tone: card.tone(),
            updated_at: card.updated_at,
            behind,
            previous: before.map(|b| b.environment.clone()),
            promote,
            unknown: None,
        });
    }
    out
}

/// How many builds of `here`'s branch newer than it, up to and including `there`, exist (build
/// numbers compared when the listing does not have them); `None` when the two are of different
/// branches (or do not parse).
fn behind(here: &str, there: &str, builds: &[Build]) -> Option<u64> {
    let (branch, n) = split(here)?;
    let (there_branch, m) = split(there)?;
    if branch != there_branch {
        return None;
    }
    if m <= n {
        return Some(0);
    }
    let listed = builds
        .iter()
        .filter_map(|b| split(&b.id))
        .filter(|(b, k)| *b == branch && *k > n && *k <= m)
        .count() as u64;
    Some(if listed == 0 { m - n } else { listed })
}

/// `project-branch-42` → (`project-branch`, 42): the build id without its number, and the number.
fn split(id: &str) -> Option<(&str, u64)> {
    let (head, number) = id.rsplit_once('-')?;
    Some((head, number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::StackStatus;

    fn card(env: &str, build: Option<&str>) -> StackCard {
        StackCard {
            environment: env.into(),
            name: format!("{env}-WEB"),
            exists: build.is_some(),
            status: build.map(|_| StackStatus::UpdateComplete),
            status_reason: None,
            build: build.map(str::to_owned),
            updated_at: None,
            outputs: Vec::new(),
            parameters: Vec::new(),
            failed_resources: Vec::new(),
            outside: None,
        }
    }

    fn build(id: &str) -> Build {
        let (_, n) = split(id).unwrap();
        Build {
            id: id.into(),
            project: "web".into(),
            branch: Some("master".into()),
            number: Some(n),
            created_at: chrono::Utc::now(),
            deployable: true,
            problem: None,
        }
    }

    #[test]
    fn behind_counts_the_builds_of_the_branch_between_and_promote_names_the_previous_build() {
        let cards = [
            card("DEV", Some("web-master-103")),
            card("STG", Some("web-master-101")),
            card("PRD", Some("web-master-101")),
        ];
        // 102 was never written (a failed build): STG is 1 build behind, not 2.
        let builds = [
            build("web-master-103"),
            build("web-master-101"),
            build("web-master-100"),
        ];
        let c = cells(&cards, &builds);
        assert_eq!(c[0].behind, None);
        assert_eq!(c[0].promote, None);
        assert_eq!(
            (c[1].behind, c[1].promote.as_deref()),
            (Some(1), Some("web-master-103"))
        );
        assert_eq!((c[2].behind, c[2].promote.as_deref()), (Some(0), None));
        // Without a listing, numbers are compared.
        assert_eq!(cells(&cards, &[])[1].behind, Some(2));
    }

    #[test]
    fn other_branches_and_missing_stacks_are_not_behind() {
        let cards = [
            card("DEV", Some("web-feature-login-2")),
            card("STG", Some("web-master-101")),
            card("PRD", None),
        ];
        let c = cells(&cards, &[]);
        assert_eq!(c[1].behind, None);
        assert_eq!(c[1].promote.as_deref(), Some("web-feature-login-2"));
        assert_eq!(c[2].behind, None);
        assert_eq!(c[2].promote.as_deref(), Some("web-master-101"));
        assert_eq!(c[2].build, None);
    }
}
