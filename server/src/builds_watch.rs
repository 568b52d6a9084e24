//! New deploy configs appear live: one watcher (however many viewers) re-lists a project's build
//! folders and announces the builds it has not seen before as `event: builds`. A project is
//! re-listed when the bucket says one of its objects changed (S3 event notifications through an
//! SQS queue, when configured: only changed projects are listed, as their builds land), when a
//! Jenkins build of it finishes, and by a sweep of every project each watch interval (the only
//! way without a queue; a safety net for a lost notification with one). Pages read the same
//! cached listing, so they never list on their own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::LiveEvent;
use app::jenkins::BuildsChanged;

use crate::artifacts::notifications;
use crate::catalog::Catalog;
use crate::live::Hub;

/// A new project folder is found within this however long the sweep's interval (one delimiter
/// listing of the prefix: a thousand folders per S3 call).
pub const DISCOVER_EVERY: Duration = Duration::from_secs(10);

/// S3's clock and ours may differ a little.
const START_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

pub struct BuildsWatch {
    catalog: Arc<Catalog>,
    hub: Arc<Hub>,
    /// Build ids seen per project.
    known: Mutex<HashMap<String, HashSet<String>>>,
    /// A project's first listing announces only builds written after this (a little before the
    /// watcher started): what was there before is not news, what landed while it started is.
    since: chrono::DateTime<chrono::Utc>,
    /// One check at a time: a slower listing must not replace what a newer one found.
    checking: tokio::sync::Mutex<()>,
}

impl BuildsWatch {
    pub fn new(catalog: Arc<Catalog>, hub: Arc<Hub>) -> Arc<BuildsWatch> {
        Arc::new(BuildsWatch {
            catalog,
            hub,
            known: Mutex::new(HashMap::new()),
            since: chrono::Utc::now() - START_MARGIN,
            checking: tokio::sync::Mutex::new(()),
        })
    }

    /// Re-lists a project now (only what is new; pages keep the previous listing meanwhile);
    /// announces new builds.
    pub async fn refresh_now(&self, project: &str) -> Option<BuildsChanged> {
        self.check(project, Duration::ZERO).await
    }

    /// Compares the project's listing, re-listed when older than `max_age`, with what was
    /// known; announces the builds that are new.
    pub async fn check(&self, project: &str, max_age: Duration) -> Option<BuildsChanged> {
        let _one = self.checking.lock().await;
        self.remember_shown(project);
        self.compare(project, max_age).await
    }

    /// Before a project's first re-list: what the pages were shown is known, not news.
    fn remember_shown(&self, project: &str) {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.contains_key(project) {
            return;
        }
        if let Some(shown) = self.catalog.artifacts.cached(project) {
            known.insert(
                project.to_owned(),
                shown.iter().map(|f| f.build.id.clone()).collect(),
            );
        }
    }

    async fn compare(&self, project: &str, max_age: Duration) -> Option<BuildsChanged> {
        let folders = match self.catalog.artifacts.relist(project, max_age).await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(project, error = %e, "builds watch: listing failed");
                return None;
            }
        };
        let ids: HashSet<String> = folders.iter().map(|f| f.build.id.clone()).collect();
        let added: Vec<String> = {
            let mut known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let previous = known.insert(project.to_owned(), ids);
            // Newest first, as the select lists them.
            folders
                .iter()
                .filter(|f| match &previous {
                    Some(previous) => !previous.contains(&f.build.id),
                    None => f.build.created_at >= self.since,
                })
                .map(|f| f.build.id.clone())
                .collect()
        };
        if added.is_empty() {
            return None;
        }
        let changed = BuildsChanged {
            project: project.to_owned(),
            added,
            count: folders.len(),
        };
        tracing::info!(project, added = ?changed.added, "new deploy configs");
        self.hub.publish(LiveEvent::Builds(changed.clone()));
        Some(changed)
    }

    /// Reads the bucket's notifications from `queue_url` (long polls), re-lists the projects
    /// whose folders changed, then deletes the messages (a crash before that re-delivers them).
    /// SQS unreachable or refusing is logged once per kind of failure and retried with backoff.
    pub fn spawn_notifications(self: &Arc<Self>, sqs: aws_sdk_sqs::Client, queue_url: String) {
        let watch = self.clone();
        crate::aws::queue::spawn_reader(
            sqs,
            queue_url,
            "the bucket's notifications".to_owned(),
            || false,
            move |messages| {
                let watch = watch.clone();
                async move {
                    let changed = watch.projects_changed(&messages);
                    let known = watch.catalog.project_names();
                    if changed.iter().any(|p| !known.contains(p)) {
                        watch.discover().await;
                    }
                    let known = watch.catalog.project_names();
                    for project in changed.iter().filter(|p| known.contains(p)) {
                        watch.refresh_now(project).await;
                    }
                }
            },
        );
    }

    /// The project folders the messages say changed (a folder not yet known as a project
    /// included: the bucket is listed again for it).
    fn projects_changed(&self, messages: &[aws_sdk_sqs::types::Message]) -> BTreeSet<String> {
        let artifacts = &self.catalog.artifacts;
        messages
            .iter()
            .flat_map(|m| {
                notifications::changed_keys(m.body().unwrap_or_default(), artifacts.bucket())
            })
            .filter_map(|key| {
                notifications::project_of(&key, artifacts.prefix()).map(str::to_owned)
            })
            .collect()
    }

    /// Lists the project folders of the bucket again; when the projects changed (a new folder,
    /// one gone), every open page hears it (`event: projects`).
    pub async fn discover(&self) -> bool {
        self.catalog.rediscover(&self.hub).await
    }

    /// Follows the builds other replicas found (their `builds` events, shared through the
    /// database): a project with a build this replica does not know is re-listed at once. Each
    /// bucket notification reaches one replica only (SQS hands a message to one reader), and the
    /// others' pages must not wait for their next sweep.
    pub fn spawn_follower(self: &Arc<Self>) {
        let watch = self.clone();
        let (_, mut events) = self.hub.subscribe(None);
        tokio::spawn(async move {
            loop {
                let envelope = match events.recv().await {
                    Ok(envelope) => envelope,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let LiveEvent::Builds(changed) = &envelope.event else {
                    continue;
                };
                let unknown = {
                    let known = watch
                        .known
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let known = known.get(&changed.project);
                    changed
                        .added
                        .iter()
                        .any(|b| known.is_none_or(|k| !k.contains(b)))
                };
                if unknown {
                    watch.refresh_now(&changed.project).await;
                }
            }
        });
    }

    /// Watches every project, re-listing one whose listing is older than `every`; and the
    /// bucket's project folders, listed again every `every` (at most [`DISCOVER_EVERY`]).
    pub fn spawn(self: &Arc<Self>, every: Duration) {
        let watch = self.clone();
        tokio::spawn(async move {
            // The first sweep lists every project: once it has, the deployer is ready for people
            // (`/api/v1/ready`), none of whom then waits for a first listing.
            let mut first = true;
            loop {
                watch.discover().await;
                let projects = watch.catalog.project_names();
                let readiness = &watch.catalog.readiness;
                if first {
                    readiness.begin(projects.len());
                }
                for project in projects {
                    watch.check(&project, every).await;
                    if first {
                        let listed = watch.catalog.artifacts.cached(&project).is_some();
                        readiness.listed(&project, listed);
                    }
                }
                if first {
                    readiness.finish();
                    first = false;
                }
                tokio::time::sleep(every).await;
            }
        });
        if every > DISCOVER_EVERY {
            let watch = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DISCOVER_EVERY).await;
                    watch.discover().await;
                }
            });
        }
    }
}
