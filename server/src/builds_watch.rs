//! New deploy configs appear live: one watcher re-lists each project's build folders when its
//! listing is older than the watch interval (the same cached listing the pages read, so pages
//! never list on their own and the cost does not grow with viewers), and announces builds it has
//! not seen before as `event: builds`. A finished Jenkins build re-lists its project at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::LiveEvent;
use app::jenkins::BuildsChanged;

use crate::catalog::Catalog;
use crate::live::Hub;

pub struct BuildsWatch {
    catalog: Arc<Catalog>,
    hub: Arc<Hub>,
    /// Build ids seen per project (the first listing is the baseline).
    known: Mutex<HashMap<String, HashSet<String>>>,
}

impl BuildsWatch {
    pub fn new(catalog: Arc<Catalog>, hub: Arc<Hub>) -> Arc<BuildsWatch> {
        Arc::new(BuildsWatch {
            catalog,
            hub,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// Re-lists a project now (its listing forgotten first); announces new builds.
    pub async fn refresh_now(&self, project: &str) -> Option<BuildsChanged> {
        let has_baseline = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(project);
        if !has_baseline {
            // What the pages list now is what is known; only what the re-list adds is new.
            self.check(project).await;
        }
        self.catalog.artifacts.invalidate(project);
        self.check(project).await
    }

    /// Compares the project's current listing (cached, or listed again when stale) with what
    /// was known; announces the builds that are new.
    pub async fn check(&self, project: &str) -> Option<BuildsChanged> {
        let folders = match self.catalog.artifacts.folders(project).await {
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
            // The first listing is the baseline: nothing in it is news.
            let previous = previous?;
            // Newest first, as the select lists them.
            folders
                .iter()
                .map(|f| f.build.id.clone())
                .filter(|id| !previous.contains(id))
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

    /// Watches every project, re-listing one whose listing is older than `every`.
    pub fn spawn(self: &Arc<Self>, every: Duration) {
        let watch = self.clone();
        tokio::spawn(async move {
            loop {
                let projects: Vec<String> = watch
                    .catalog
                    .config
                    .projects
                    .iter()
                    .map(|p| p.name.clone())
                    .collect();
                for project in projects {
                    watch.catalog.artifacts.invalidate_if_older(&project, every);
                    watch.check(&project).await;
                }
                tokio::time::sleep(every).await;
            }
        });
    }
}
