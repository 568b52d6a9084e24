//! Change sets the deployer made and left behind — a deployment's whose process died before it
//! could delete it, a preview's interrupted half-way — are deleted: a minute after start (once
//! the deployments in flight are picked up again and the start's own work is done), then hourly.
//! Only the deployer's own names are touched (`deployer-<deployment id>`, `deployer-preview-…`),
//! never a change set of an active deployment (one awaiting approval keeps its own), never one
//! somebody else made.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::store::Store;

/// Between sweeps, and before the first.
const EVERY: Duration = Duration::from_secs(60 * 60);
const FIRST_AFTER: Duration = Duration::from_secs(60);
/// A preview's change set lives for a minute at most; older ones were left behind.
const PREVIEW_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

pub fn spawn(catalog: Arc<Catalog>, store: Store) {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        loop {
            let deleted = sweep(&catalog, &store).await;
            if deleted > 0 {
                tracing::info!(deleted, "deleted change sets the deployer had left behind");
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

/// One pass over every stack the deployer deploys; returns how many change sets it deleted.
pub async fn sweep(catalog: &Catalog, store: &Store) -> usize {
    let mut deleted = 0;
    if catalog.folders().is_none()
        && let Err(e) = catalog.discover().await
    {
        tracing::debug!(error = %e, "cannot list the projects of the bucket; cleaning the configured ones");
    }
    let projects = catalog
        .project_names()
        .into_iter()
        .filter_map(|name| catalog.project(&name).ok());
    for project in projects {
        for (environment, stack) in &project.stacks {
            let Ok(cfn) = catalog.cfn(environment) else {
                continue;
            };
            let sets = match cfn.change_sets(stack).await {
                Ok(sets) => sets,
                Err(e) => {
                    tracing::warn!(stack, environment, error = %e, "cannot list change sets");
                    continue;
                }
            };
            for (name, created) in sets {
                if !left_behind(store, &name, created, Utc::now()).await {
                    continue;
                }
                match cfn.delete_change_set(stack, &name).await {
                    Ok(()) => {
                        tracing::info!(
                            stack,
                            environment,
                            change_set = name,
                            "deleted a leftover change set"
                        );
                        deleted += 1;
                    }
                    Err(e) => {
                        tracing::warn!(stack, change_set = name, error = %e, "cannot delete a leftover change set")
                    }
                }
            }
        }
    }
    deleted
}

async fn left_behind(
    store: &Store,
    name: &str,
    created: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match owner(name) {
        Owner::Preview => created.is_some_and(|at| now - at > PREVIEW_LIFETIME),
        Owner::Deployment(id) => match store.record(id).await {
            Ok(Some(record)) => !record.deployment.status.is_active(),
            // Named like ours, unknown to the store: from a store since replaced, or a test.
            Ok(None) => true,
            Err(_) => false,
        },
        Owner::Someone => false,
    }
}

enum Owner<'a> {
    Preview,
    Deployment(&'a str),
    Someone,
}

/// Whose change set this name is.
fn owner(name: &str) -> Owner<'_> {
    if name.starts_with("deployer-preview-") {
        return Owner::Preview;
    }
    match name.strip_prefix("deployer-") {
        Some(id) if crate::ids::DeploymentId::parse(id).is_ok() => Owner::Deployment(id),
        _ => Owner::Someone,
    }
}

#[cfg(test)]
mod tests {
    use super::{Owner, owner};

    #[test]
    fn only_the_deployers_own_names_are_its_own() {
        assert!(matches!(owner("deployer-preview-0a1b"), Owner::Preview));
        assert!(matches!(
            owner("deployer-d-0123456789abcdef0123456789abcdef"),
            Owner::Deployment("d-0123456789abcdef0123456789abcdef")
        ));
        assert!(matches!(owner("deployer-manual"), Owner::Someone));
        assert!(matches!(owner("hotfix-by-hand"), Owner::Someone));
    }
}
