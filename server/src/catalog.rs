//! The catalog: what the deployer knows of the world — the configured environments and projects,
//! the builds in the artifacts bucket, each environment's CloudFormation, and stack cards. The
//! services and the engine look things up here; "no such project / environment" is said here
//! and nowhere else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use app::model::{Build, Environment, Project, StackCard};

use crate::artifacts::{ArtifactStore, BuildFolder, LISTING_TTL};
use crate::aws::AwsClients;
use crate::aws::cfn::CloudFormation;
use crate::cache::TtlCache;
use crate::config::{self, Config};
use crate::error::AppError;
use crate::stacks;
use crate::store::Store;

/// AWS's clock against the deployer's: a stack updated this long after the deployer's last
/// deployment ended was changed by something else.
const OUTSIDE_TOLERANCE: chrono::Duration = chrono::Duration::seconds(5);

pub struct Catalog {
    pub config: Config,
    pub artifacts: ArtifactStore,
    pub store: Store,
    /// Each environment's CloudFormation, behind its seam (tests script a fake).
    cfn: HashMap<String, Arc<dyn CloudFormation>>,
    /// Stack cards by `<environment>/<stack>`, kept briefly and read once however many pages
    /// ask, so a flood of page loads cannot throttle an account.
    cards: TtlCache<StackCard>,
    /// Each environment's EC2 (whether the images a build launches exist there).
    ec2: HashMap<String, aws_sdk_ec2::Client>,
    /// Stacks whose rollback this process continued, until it settles.
    recovering: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Wakes a deployment when its stack's events are pushed (environments with a queue).
    pub stack_signals: Arc<crate::stack_events::StackSignals>,
}

/// How long a stack card is reused.
pub const CARD_TTL: Duration = Duration::from_secs(2);

impl Catalog {
    pub fn new(
        config: Config,
        aws: AwsClients,
        cfn: HashMap<String, Arc<dyn CloudFormation>>,
        store: Store,
    ) -> anyhow::Result<Self> {
        let s3 = aws
            .env(&config.artifacts.environment)
            .ok_or_else(|| anyhow::anyhow!("no clients for the artifacts environment"))?
            .s3
            .clone();
        let ec2 = config
            .environments
            .iter()
            .filter_map(|e| Some((e.name.clone(), aws.env(&e.name)?.ec2.clone())))
            .collect();
        let artifacts = ArtifactStore::new(
            s3,
            config.artifacts.bucket.clone(),
            config.artifacts.prefix.clone(),
            config.environments.iter().map(|e| e.name.clone()).collect(),
            LISTING_TTL,
        );
        Ok(Catalog {
            config,
            artifacts,
            store,
            cfn,
            cards: TtlCache::new("stack_cards", CARD_TTL),
            ec2,
            recovering: std::sync::Mutex::new(std::collections::HashSet::new()),
            stack_signals: Default::default(),
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
                protected: e.protection.is_some(),
                require_another_approver: e.protection.is_some_and(|p| p.by_another),
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

    pub fn environment(&self, name: &str) -> Result<&config::Environment, AppError> {
        self.config
            .environment(name)
            .ok_or_else(|| AppError::NotFound(format!("no environment is called {name:?}")))
    }

    /// The project's stack in an environment; both must exist, and the project deploy there.
    pub fn stack_name(&self, project: &str, environment: &str) -> Result<&str, AppError> {
        let project = self.project(project)?;
        self.environment(environment)?;
        project.stack_name(environment).ok_or_else(|| {
            AppError::NotFound(format!("{} does not deploy to {environment}", project.name))
        })
    }

    /// The CloudFormation of an environment.
    pub fn cfn(&self, environment: &str) -> Result<Arc<dyn CloudFormation>, AppError> {
        self.environment(environment)?;
        self.cfn.get(environment).cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "no CloudFormation client for {environment}"
            ))
        })
    }

    /// Whether the environment is an emulator (an `endpoint_url` in the config), not AWS.
    pub fn is_emulated(&self, environment: &str) -> bool {
        self.config
            .environment(environment)
            .is_some_and(|e| e.endpoint_url.is_some())
    }

    /// A build of the project by its folder name, read from S3 now (one small listing of its
    /// folder): whether it can be deployed is never decided by a cached listing.
    pub async fn find_build(&self, project: &str, build: &str) -> Result<BuildFolder, AppError> {
        let project = self.project(project)?;
        self.artifacts
            .folder(&project.name, build)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("{} has no build {build:?}", project.name)))
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

    /// An https URL CloudFormation can read an artifact from (templates over 51,200 bytes). An
    /// emulator is addressed path-style, by `localhost` (moto refuses 127.0.0.1 there).
    pub fn template_url(&self, key: &str) -> String {
        let env = self.config.environment(&self.config.artifacts.environment);
        let bucket = &self.config.artifacts.bucket;
        match env.and_then(|e| e.endpoint_url.as_deref()) {
            Some(endpoint) => {
                let endpoint = endpoint
                    .trim_end_matches('/')
                    .replace("://127.0.0.1", "://localhost");
                format!("{endpoint}/{bucket}/{key}")
            }
            None => {
                let region = env.map_or("us-east-1", |e| e.region.as_str());
                format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
            }
        }
    }

    /// The project's stack in one environment.
    pub async fn stack(&self, project: &str, environment: &str) -> Result<StackCard, AppError> {
        let stack_name = self.stack_name(project, environment)?;
        let cfn = self.cfn(environment)?;
        let key = format!("{environment}/{stack_name}");
        self.cards
            .get_or_load(&key, || async {
                let mut card = stacks::describe(cfn.as_ref(), environment, stack_name).await?;
                // The deployer's own record of what it deployed last wins over the stack tag:
                // the tag is written on every deploy, but emulators (moto) do not apply tags
                // from change sets.
                if card.exists
                    && let Some(build) = self
                        .store
                        .last_succeeded_build(environment, stack_name)
                        .await?
                {
                    card.build = Some(build);
                }
                card.outside = self.outside(environment, stack_name, &card).await?;
                let hidden = self.store.no_echo_keys(environment, stack_name).await?;
                for p in card
                    .parameters
                    .iter_mut()
                    .filter(|p| hidden.contains(&p.key))
                {
                    p.value = None;
                    p.no_echo = true;
                }
                Ok::<_, AppError>(card)
            })
            .await
    }

    /// Forgets a stack's cached card (it changed: a deployment moved it).
    /// Whether something other than the deployer changed the stack, or is changing it: an
    /// operation running that no deployment of the deployer started, or a change after the
    /// deployer's last one (the stack's last-updated time, later than that deployment's end).
    async fn outside(
        &self,
        environment: &str,
        stack_name: &str,
        card: &StackCard,
    ) -> Result<Option<String>, AppError> {
        let Some(status) = card.status else {
            return Ok(None);
        };
        if self
            .store
            .active_on(environment, stack_name)
            .await?
            .is_some()
            || self.is_recovering(environment, stack_name)
        {
            return Ok(None);
        }
        if status.is_in_progress() {
            return Ok(Some(format!(
                "an operation the deployer did not start is running on it ({}); a deploy now is refused until it ends",
                status.as_aws_str()
            )));
        }
        let Some((id, ended)) = self.store.last_change(environment, stack_name).await? else {
            return Ok(None);
        };
        Ok(card
            .updated_at
            .filter(|updated| *updated > ended + OUTSIDE_TOLERANCE)
            .map(|updated| {
                format!(
                    "changed outside the deployer: last updated {}, after its last deployment here ({id}, which ended {})",
                    updated.format("%Y-%m-%d %H:%M:%S UTC"),
                    ended.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }))
    }

    /// The image ids among `ids` that `environment`'s account cannot launch.
    pub async fn missing_images(
        &self,
        environment: &str,
        ids: &[String],
    ) -> Result<Vec<String>, AppError> {
        let ec2 = self.ec2.get(environment).ok_or_else(|| {
            AppError::NotFound(format!("there is no environment called {environment:?}"))
        })?;
        Ok(crate::aws::images::missing(ec2, ids).await?)
    }

    /// A rollback this process continued (ContinueUpdateRollback) is running on the stack: its
    /// operation is the deployer's, though no deployment's.
    pub fn set_recovering(&self, environment: &str, stack_name: &str, on: bool) {
        let key = format!("{environment}/{stack_name}");
        let mut set = self
            .recovering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if on {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    fn is_recovering(&self, environment: &str, stack_name: &str) -> bool {
        self.recovering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&format!("{environment}/{stack_name}"))
    }

    pub fn forget_card(&self, environment: &str, stack_name: &str) {
        self.cards
            .invalidate(&format!("{environment}/{stack_name}"));
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
