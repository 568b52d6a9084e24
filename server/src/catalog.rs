//! The catalog: what the deployer knows of the world — the configured environments and projects,
//! the builds in the artifacts bucket, each environment's CloudFormation, and stack cards. The
//! services and the engine look things up here; "no such project / environment" is said here
//! and nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::model::{Build, Environment, Project, StackCard, StackStatus};

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
    /// The running config: swapped whole by a reload (`reload`), read as a snapshot.
    config: RwLock<Arc<Config>>,
    pub artifacts: ArtifactStore,
    pub store: Store,
    /// Each environment's CloudFormation (behind its seam: tests script a fake) and EC2 (whether
    /// the images a build launches exist there); swapped with the config.
    clients: RwLock<Arc<Clients>>,
    /// Stack cards by `<environment>/<stack>`, kept briefly and read once however many pages
    /// ask, so a flood of page loads cannot throttle an account.
    cards: TtlCache<StackCard>,
    /// Stacks whose rollback this process continued, until it settles.
    recovering: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Wakes a deployment when its stack's events are pushed (environments with a queue).
    pub stack_signals: Arc<crate::stack_events::StackSignals>,
    /// The folders under the artifacts prefix, as last listed, and when (`None`: not yet).
    folders: RwLock<Option<(std::time::Instant, Arc<Vec<String>>)>>,
    /// One listing of the prefix at a time.
    discovering: tokio::sync::Mutex<()>,
    /// Whether the first sweep has listed every project (`/api/v1/ready`).
    pub readiness: crate::readiness::Readiness,
    /// The stacks' and builds' exports and imports read so far (pre-flight, verdict).
    pub exports: crate::known_exports::Known,
}

/// The per-environment clients the catalog hands out.
#[derive(Default)]
pub struct Clients {
    pub cfn: HashMap<String, Arc<dyn CloudFormation>>,
    pub ec2: HashMap<String, aws_sdk_ec2::Client>,
}

impl Clients {
    /// Real CloudFormation and EC2 for every environment of `config` that `aws` has clients for.
    pub fn from_aws(config: &Config, aws: &AwsClients) -> Clients {
        let cfn = config
            .environments
            .iter()
            .filter_map(|e| {
                let client = aws.env(&e.name)?.cloudformation.clone();
                let cfn: Arc<dyn CloudFormation> = Arc::new(
                    crate::aws::AwsCfn::new(client)
                        .with_service_role(e.cloudformation_role_arn.clone())
                        .with_notification_topic(
                            e.stack_events.as_ref().map(|s| s.topic_arn.clone()),
                        ),
                );
                Some((e.name.clone(), cfn))
            })
            .collect();
        Clients {
            cfn,
            ec2: Self::ec2_of(config, aws),
        }
    }

    fn ec2_of(config: &Config, aws: &AwsClients) -> HashMap<String, aws_sdk_ec2::Client> {
        config
            .environments
            .iter()
            .filter_map(|e| Some((e.name.clone(), aws.env(&e.name)?.ec2.clone())))
            .collect()
    }
}

/// How long a stack card is reused.
pub const CARD_TTL: Duration = Duration::from_secs(2);

/// Reads a lock whose writer cannot leave it half-written (a whole value is swapped in).
fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

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
        let clients = Clients {
            cfn,
            ec2: Clients::ec2_of(&config, &aws),
        };
        let artifacts = ArtifactStore::new(
            s3,
            config.artifacts.bucket.clone(),
            config.artifacts.prefix.clone(),
            config.environment_names(),
            LISTING_TTL,
        );
        Ok(Catalog {
            config: RwLock::new(Arc::new(config)),
            artifacts,
            store,
            clients: RwLock::new(Arc::new(clients)),
            cards: TtlCache::new("stack_cards", CARD_TTL),
            recovering: std::sync::Mutex::new(std::collections::HashSet::new()),
            stack_signals: Default::default(),
            folders: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
            readiness: Default::default(),
            exports: Default::default(),
        })
    }

    /// The running config (a snapshot: a reload swaps in a new one, never changes this one).
    pub fn config(&self) -> Arc<Config> {
        read(&self.config)
    }

    /// Puts a reloaded config in place, with the clients of its environments. Stack cards are
    /// read again (a stack's environment may have changed account or role).
    pub fn replace(&self, config: Config, clients: Clients) {
        self.artifacts.set_environments(config.environment_names());
        write(&self.clients, Arc::new(clients));
        write(&self.config, Arc::new(config));
        self.cards.clear();
    }

    /// The clients in use (a reload keeps those of environments it does not change).
    pub fn clients(&self) -> Arc<Clients> {
        read(&self.clients)
    }

    pub fn environments(&self) -> Vec<Environment> {
        self.config()
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

    /// Lists the folders under the artifacts prefix (one delimiter listing); whether the set of
    /// projects changed since the last listing (the first listing is not a change).
    pub async fn discover(&self) -> Result<bool, crate::aws::AwsFailure> {
        let _one = self.discovering.lock().await;
        let found = Arc::new(self.artifacts.project_folders().await?);
        let before = self.folders();
        let changed = before.as_ref().is_some_and(|b| **b != *found);
        write(&self.folders, Some((std::time::Instant::now(), found)));
        Ok(changed)
    }

    /// [`Catalog::discover`], and when the projects changed, every open page hears it
    /// (`event: projects`, the whole list).
    pub async fn rediscover(&self, hub: &crate::live::Hub) -> bool {
        let before = self.projects();
        match self.discover().await {
            Ok(_) => {
                let after = self.projects();
                if after == before {
                    return false;
                }
                tracing::info!(
                    projects = ?after.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                    "the projects changed"
                );
                hub.publish(app::deployment::LiveEvent::Projects(after));
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "listing the projects of the bucket failed");
                false
            }
        }
    }

    /// Whether a listing of the prefix is running now.
    pub fn discovering(&self) -> bool {
        self.discovering.try_lock().is_err()
    }

    /// How old the listing of the prefix is (`None`: not listed yet).
    pub fn folders_age(&self) -> Option<Duration> {
        read(&self.folders).map(|(at, _)| at.elapsed())
    }

    /// The folders found under the prefix, as last listed (`None`: not listed yet).
    pub fn folders(&self) -> Option<Arc<Vec<String>>> {
        read(&self.folders).map(|(_, folders)| folders)
    }

    /// Every project: those the config names (in its order), then the folders of the bucket
    /// that are projects by default (by name), then the folders that cannot be projects, with
    /// the reason. Hidden folders are left out.
    pub fn projects(&self) -> Vec<Project> {
        let config = self.config();
        let env_names = config.environment_names();
        let as_model = |p: &config::Project| Project {
            name: p.name.clone(),
            title: p.title.clone(),
            artifacts_url: config.artifacts_url(&p.name),
            environments: p.environments().map(str::to_owned).collect(),
            stacks: p.stacks.iter().cloned().collect(),
            discovered: !p.configured,
            problem: None,
        };
        let mut out: Vec<Project> = config.projects.iter().map(as_model).collect();
        let folders = self.folders().unwrap_or_default();
        let unlisted = folders
            .iter()
            .filter(|f| config.project(f).is_none() && !config.hidden.iter().any(|h| h == *f));
        let mut unusable = Vec::new();
        for folder in unlisted {
            match config::project_problem(folder, &env_names) {
                None => out.push(as_model(&config::discovered_project(
                    folder,
                    &config.discovered_environments(),
                ))),
                Some(problem) => unusable.push(Project {
                    name: folder.clone(),
                    title: folder.clone(),
                    artifacts_url: config.artifacts_url(folder),
                    environments: Vec::new(),
                    stacks: Default::default(),
                    discovered: true,
                    problem: Some(problem),
                }),
            }
        }
        out.extend(unusable);
        out
    }

    /// The names of the projects that can be deployed (configured or found in the bucket).
    pub fn project_names(&self) -> Vec<String> {
        self.projects()
            .into_iter()
            .filter(|p| p.problem.is_none())
            .map(|p| p.name)
            .collect()
    }

    pub fn project(&self, name: &str) -> Result<config::Project, AppError> {
        let config = self.config();
        if let Some(project) = config.project(name) {
            return Ok(project.clone());
        }
        let not_found = || AppError::NotFound(format!("no project is called {name:?}"));
        if config.hidden.iter().any(|h| h == name) {
            return Err(not_found());
        }
        let folders = self.folders().unwrap_or_default();
        if !folders.iter().any(|f| f == name) {
            return Err(not_found());
        }
        let env_names = config.environment_names();
        if let Some(problem) = config::project_problem(name, &env_names) {
            return Err(AppError::NotFound(problem));
        }
        Ok(config::discovered_project(
            name,
            &config.discovered_environments(),
        ))
    }

    pub fn environment(&self, name: &str) -> Result<config::Environment, AppError> {
        self.config()
            .environment(name)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no environment is called {name:?}")))
    }

    /// The project's stack in an environment; both must exist, and the project deploy there.
    pub fn stack_name(&self, project: &str, environment: &str) -> Result<String, AppError> {
        let project = self.project(project)?;
        self.environment(environment)?;
        project
            .stack_name(environment)
            .map(str::to_owned)
            .ok_or_else(|| {
                AppError::NotFound(format!("{} does not deploy to {environment}", project.name))
            })
    }

    /// The CloudFormation of an environment.
    pub fn cfn(&self, environment: &str) -> Result<Arc<dyn CloudFormation>, AppError> {
        self.environment(environment)?;
        self.clients().cfn.get(environment).cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "no CloudFormation client for {environment}"
            ))
        })
    }

    /// Whether the environment is an emulator (an `endpoint_url` in the config), not AWS.
    pub fn is_emulated(&self, environment: &str) -> bool {
        self.config()
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
        let config = self.config();
        let env = config.environment(&config.artifacts.environment);
        let bucket = &config.artifacts.bucket;
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
        let stack_name = stack_name.as_str();
        let cfn = self.cfn(environment)?;
        let key = format!("{environment}/{stack_name}");
        self.cards
            .get_or_load(&key, || async {
                let mut card = stacks::describe(cfn.as_ref(), environment, stack_name).await?;
                // The deployer's own record of what it deployed last wins over the stack tag.
                // Without one, the tag says — unless it names the build being deployed right
                // now: CloudFormation gives a stack its new tags when the update begins (and
                // puts the old ones back on rollback), so mid-update it names no deployed build.
                if card.exists {
                    match self
                        .store
                        .last_succeeded_build(environment, stack_name)
                        .await?
                    {
                        Some(build) => card.build = Some(build),
                        None if card.status.is_some_and(|s| s.is_in_progress()) => {
                            let in_flight = self.store.active().await?.into_iter().any(|r| {
                                r.deployment.environment == environment
                                    && r.deployment.stack_name == stack_name
                                    && card.build.as_deref() == Some(r.deployment.build.as_str())
                            });
                            if in_flight {
                                card.build = None;
                            }
                        }
                        None => {}
                    }
                }
                card.outside = self
                    .outside(project, environment, stack_name, &card)
                    .await?;
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
        project: &str,
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
            || self
                .continued_rollback(project, environment, stack_name, status)
                .await?
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

    /// Whether the stack is in (or at the end of) a rollback the deployer continued — on any
    /// replica: the audit trail (the database's) says a person continued it after the
    /// deployer's last deployment there ended, so it is the deployer's, not someone else's.
    async fn continued_rollback(
        &self,
        project: &str,
        environment: &str,
        stack_name: &str,
        status: StackStatus,
    ) -> Result<bool, AppError> {
        if !matches!(
            status,
            StackStatus::UpdateRollbackInProgress
                | StackStatus::UpdateRollbackCompleteCleanupInProgress
                | StackStatus::UpdateRollbackComplete
        ) {
            return Ok(false);
        }
        let continued = self
            .store
            .audit_list(&crate::store::AuditSearch {
                environment: Some(environment),
                project: Some(project),
                action: Some(app::pause::AuditAction::ContinueRollback),
                actor: None,
                before: None,
                limit: 1,
            })
            .await?;
        let Some(at) = continued.first().map(|e| e.at) else {
            return Ok(false);
        };
        let last = self.store.last_change(environment, stack_name).await?;
        Ok(last.is_none_or(|(_, ended)| at > ended))
    }

    /// The image ids among `ids` that `environment`'s account cannot launch.
    pub async fn missing_images(
        &self,
        environment: &str,
        ids: &[String],
    ) -> Result<Vec<String>, AppError> {
        let ec2 = self
            .clients()
            .ec2
            .get(environment)
            .cloned()
            .ok_or_else(|| {
                AppError::NotFound(format!("there is no environment called {environment:?}"))
            })?;
        Ok(crate::aws::images::missing(&ec2, ids).await?)
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
