//! The deployer's own knowledge of an environment's exports and imports, beside what
//! CloudFormation's ListImports says (AWS answers it; the local emulator does not, and other
//! stand-ins answer an empty list):
//!
//! - **who imports an export**: the templates of every stack of the account (ListStacks, then
//!   GetTemplate and DescribeStacks for the parameters its names are worked out with — stacks the
//!   deployer did not deploy included), read again only when a stack changed (kept by stack id,
//!   status and last-updated time);
//! - **which build would export a name**: the templates of the builds in the artifacts bucket of
//!   the projects that deploy to the environment, newest first (kept by artifact and build time).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use app::model::StackStatus;
use futures::StreamExt;

use super::imports;
use crate::artifacts::BuildFolder;
use crate::aws::AwsFailure;
use crate::aws::cfn::{CloudFormation, StackSummary};
use crate::catalog::Catalog;
use crate::known_exports::{BuildKey, Known, StackImports, StackState};

/// How many stacks' templates are read at once.
const READ_AT_ONCE: usize = 4;
/// How many builds of each project are looked into, newest first, for a name to export.
pub const BUILDS_LOOKED_INTO: usize = 30;
/// How many builds' export names are kept (each a few names); past this the memory starts over.
const BUILDS_KEPT: usize = 20_000;

/// The imports of every stack of an environment, from their templates.
pub struct Graph {
    pub stacks: Vec<Arc<StackImports>>,
}

impl Graph {
    /// The stacks other than `except` whose template imports `export`.
    pub fn importers(&self, export: &str, except: &str) -> Vec<String> {
        self.stacks
            .iter()
            .filter(|s| s.stack != except && s.imports.iter().any(|i| i == export))
            .map(|s| s.stack.clone())
            .collect()
    }

    /// The stacks other than `except` whose imports are not all known, with why.
    pub fn gaps(&self, except: &str) -> Vec<String> {
        self.stacks
            .iter()
            .filter(|s| s.stack != except)
            .filter_map(|s| Some(format!("{} ({})", s.stack, s.gap.as_deref()?)))
            .collect()
    }
}

/// Who imports an export the build drops.
#[derive(Debug)]
pub enum Importers {
    /// These stacks (none: nobody does).
    Known(Vec<String>),
    /// It could not be told; why.
    Unchecked(String),
}

impl Known {
    /// The imports of every stack in `environment`: listed now, templates read for the stacks
    /// that changed since they were last read.
    pub async fn graph(
        &self,
        catalog: &Catalog,
        environment: &str,
        cfn: &Arc<dyn CloudFormation>,
    ) -> Result<Graph, AwsFailure> {
        let listed: Vec<StackSummary> = cfn
            .list_stacks()
            .await?
            .into_iter()
            // A stack under review has no resources yet, and one whose create rolled back none
            // any more: neither holds an import.
            .filter(|s| {
                !matches!(
                    s.status,
                    StackStatus::ReviewInProgress
                        | StackStatus::RollbackComplete
                        | StackStatus::DeleteComplete
                )
            })
            .collect();
        let mut found = Vec::with_capacity(listed.len());
        let mut to_read = Vec::new();
        {
            let known = lock(&self.stacks);
            let known = known.get(environment);
            for summary in listed {
                match known.and_then(|k| k.get(&summary.stack_id)) {
                    Some((state, read)) if *state == StackState::of(&summary) => {
                        found.push((summary, Arc::clone(read)));
                    }
                    _ => to_read.push(summary),
                }
            }
        }
        let pseudo = pseudo_parameters(catalog, environment);
        let read: Vec<(StackSummary, Option<StackImports>)> = futures::stream::iter(to_read)
            .map(|summary| {
                let (cfn, pseudo) = (Arc::clone(cfn), &pseudo);
                async move {
                    let read = read_stack(cfn.as_ref(), &summary, pseudo).await;
                    (summary, read)
                }
            })
            .buffer_unordered(READ_AT_ONCE)
            .collect()
            .await;
        // Deleted since it was listed: gone.
        found.extend(
            read.into_iter()
                .filter_map(|(summary, read)| Some((summary, Arc::new(read?)))),
        );
        let mut kept = HashMap::new();
        for (summary, read) in &found {
            let state = StackState::of(summary);
            // A template that could not be read is read again next time.
            let unreadable = read
                .gap
                .as_deref()
                .is_some_and(|g| g.starts_with(UNREADABLE));
            if state.lasts() && !unreadable {
                kept.insert(summary.stack_id.clone(), (state, Arc::clone(read)));
            }
        }
        lock(&self.stacks).insert(environment.to_owned(), kept);
        let mut stacks: Vec<Arc<StackImports>> = found.into_iter().map(|(_, r)| r).collect();
        stacks.sort_by(|a, b| a.stack.cmp(&b.stack));
        Ok(Graph { stacks })
    }

    /// Who imports each of `exports` (the exports `stack_name` has now that the build drops):
    /// ListImports where CloudFormation answers it, and the templates of the environment's
    /// stacks. Nobody imports an export when ListImports says so, or when it cannot answer and
    /// every other stack's imports are known.
    pub async fn importers(
        &self,
        catalog: &Catalog,
        environment: &str,
        cfn: &Arc<dyn CloudFormation>,
        stack_name: &str,
        exports: &[String],
    ) -> Vec<(String, Importers)> {
        if exports.is_empty() {
            return Vec::new();
        }
        let graph = self.graph(catalog, environment, cfn).await;
        if let Err(e) = &graph {
            tracing::warn!(environment, error = %e, "cannot read the templates of the stacks");
        }
        let mut answers = Vec::with_capacity(exports.len());
        for export in exports {
            // One call, not the retry-until-it-works of the deployment's steps: a check that
            // cannot be made is said, and CloudFormation still refuses the update itself.
            let listed = cfn.importers(export).await;
            if let Err(e) = &listed {
                tracing::warn!(export = %export, error = ?e, "cannot list the importers of an export");
            }
            let mut stacks: Vec<String> = listed.as_ref().cloned().unwrap_or_default();
            if let Ok(graph) = &graph {
                for stack in graph.importers(export, stack_name) {
                    if !stacks.contains(&stack) {
                        stacks.push(stack);
                    }
                }
            }
            let answer = match (&listed, &graph) {
                _ if !stacks.is_empty() => Importers::Known(stacks),
                (Ok(_), _) => Importers::Known(Vec::new()),
                (Err(_), Ok(graph)) if graph.gaps(stack_name).is_empty() => {
                    Importers::Known(Vec::new())
                }
                (Err(listing), Ok(graph)) => Importers::Unchecked(format!(
                    "ListImports failed ({listing}), and not every stack's imports are known: {}",
                    graph.gaps(stack_name).join("; ")
                )),
                (Err(listing), Err(reading)) => Importers::Unchecked(format!(
                    "ListImports failed ({listing}), and the stacks' templates could not be read ({reading})"
                )),
            };
            answers.push((export.clone(), answer));
        }
        answers
    }

    /// The builds that would export each of `names` to `environment`: per project that deploys
    /// there (other than `except_project`), the newest of its last [`BUILDS_LOOKED_INTO`]
    /// deployable builds whose template declares the name. Names no build exports are absent.
    pub async fn sources(
        &self,
        catalog: &Catalog,
        environment: &str,
        except_project: &str,
        names: &[String],
    ) -> BTreeMap<String, Vec<String>> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if names.is_empty() {
            return found;
        }
        let projects: Vec<(String, String)> = catalog
            .project_names()
            .into_iter()
            .filter(|p| p != except_project)
            .filter_map(|p| {
                let stack = catalog.stack_name(&p, environment).ok()?;
                Some((p, stack))
            })
            .collect();
        let per_project: Vec<Vec<(String, String)>> = futures::stream::iter(projects)
            .map(|(project, stack_name)| async move {
                self.project_sources(catalog, environment, &project, &stack_name, names)
                    .await
            })
            .buffered(READ_AT_ONCE)
            .collect()
            .await;
        for (name, build) in per_project.into_iter().flatten() {
            found.entry(name).or_default().push(build);
        }
        found
    }

    /// For one project: (name, the newest build exporting it) for each name one of its builds
    /// exports.
    async fn project_sources(
        &self,
        catalog: &Catalog,
        environment: &str,
        project: &str,
        stack_name: &str,
        names: &[String],
    ) -> Vec<(String, String)> {
        let folders = match catalog.build_folders(project).await {
            Ok(folders) => folders,
            Err(e) => {
                tracing::warn!(project, error = %e, "cannot list the builds of a project");
                return Vec::new();
            }
        };
        let mut found: Vec<(String, String)> = Vec::new();
        for folder in folders
            .iter()
            .filter(|f| f.build.problem.is_none())
            .take(BUILDS_LOOKED_INTO)
        {
            let Some(exported) = self
                .build_exports(catalog, environment, stack_name, folder)
                .await
            else {
                continue;
            };
            for name in names {
                if exported.contains(name) && !found.iter().any(|(n, _)| n == name) {
                    found.push((name.clone(), folder.build.id.clone()));
                }
            }
            if found.len() == names.len() {
                break;
            }
        }
        found
    }

    /// The export names a build declares when deployed to `environment` as `stack_name`
    /// (`None`: unreadable, or computed at deploy time).
    async fn build_exports(
        &self,
        catalog: &Catalog,
        environment: &str,
        stack_name: &str,
        folder: &BuildFolder,
    ) -> Option<Vec<String>> {
        let key = BuildKey {
            environment: environment.to_owned(),
            stack_name: stack_name.to_owned(),
            template_key: folder.template_key.clone()?,
            parameters_key: folder.parameters_key.clone()?,
            override_key: folder.overrides.get(environment).cloned(),
            written_at: folder.build.created_at,
        };
        if let Some(known) = lock(&self.builds).get(&key) {
            return known.clone();
        }
        let read = match super::verdict::read_folder(
            catalog,
            folder,
            environment,
            stack_name.to_owned(),
        )
        .await
        {
            Ok(read) => read,
            Err(problem) => {
                // Read again next time: S3 may have failed for a moment.
                tracing::debug!(build = %folder.build.id, problem, "cannot read a build's exports");
                return None;
            }
        };
        let exported = imports::exported_names(&read.doc, &read.vars);
        let mut builds = lock(&self.builds);
        if builds.len() >= BUILDS_KEPT {
            builds.clear();
        }
        builds.insert(key, exported.clone());
        exported
    }
}

/// Where a missing import would come from, in words: "network-master-50 exports it: deploy
/// network-master-50 to DEV first", or "no known build exports it".
pub fn whence(builds: Option<&Vec<String>>, environment: &str) -> String {
    match builds.map(Vec::as_slice).unwrap_or_default() {
        [] => "no known build exports it".to_owned(),
        [one] => format!("{one} exports it: deploy {one} to {environment} first"),
        [rest @ .., last] => format!(
            "{} and {last} export it: deploy one of them to {environment} first",
            rest.join(", ")
        ),
    }
}

/// What a stack whose template cannot be read says (its gap starts with this).
const UNREADABLE: &str = "its template could not be read";

/// Reads what one stack imports (`None`: it is gone).
async fn read_stack(
    cfn: &dyn CloudFormation,
    summary: &StackSummary,
    pseudo: &BTreeMap<String, String>,
) -> Option<StackImports> {
    let unreadable = |why: String| {
        Some(StackImports {
            stack: summary.name.clone(),
            imports: Vec::new(),
            gap: Some(format!("{UNREADABLE}: {why}")),
        })
    };
    let (info, template) = tokio::join!(
        cfn.stack(&summary.stack_id),
        cfn.template(&summary.stack_id)
    );
    let (info, template) = match (info, template) {
        (Ok(Some(info)), Ok(Some(template))) => (info, template),
        (Ok(None), _) | (_, Ok(None)) => return None,
        (Err(e), _) | (_, Err(e)) => return unreadable(e.to_string()),
    };
    let doc = match imports::parse(&template) {
        Ok(doc) => doc,
        Err(e) => return unreadable(e),
    };
    let mut vars = pseudo.clone();
    if let Some(declared) = doc.get("Parameters").and_then(|p| p.as_mapping()) {
        for (key, spec) in declared {
            let (Some(key), Some(default)) = (key.as_str(), spec.get("Default")) else {
                continue;
            };
            let text = match default {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            vars.insert(key.to_owned(), text);
        }
    }
    // AWS shows a NoEcho value as `****`: a name made with it is not known.
    for (key, value) in &info.parameters {
        match value {
            Some(v) if v != "****" => {
                vars.insert(key.clone(), v.clone());
            }
            _ => {
                vars.remove(key);
            }
        }
    }
    vars.insert("AWS::StackName".into(), summary.name.clone());
    vars.insert("AWS::StackId".into(), summary.stack_id.clone());
    // The stack's ARN says its account and region (arn:aws:cloudformation:<region>:<account>:…).
    let arn: Vec<&str> = summary.stack_id.split(':').collect();
    if let [_, partition, _, region, account, ..] = arn.as_slice()
        && !region.is_empty()
        && !account.is_empty()
    {
        vars.insert("AWS::Partition".into(), (*partition).to_owned());
        vars.insert("AWS::Region".into(), (*region).to_owned());
        vars.insert("AWS::AccountId".into(), (*account).to_owned());
    }
    let computed = imports::computed_imports(&doc, &vars);
    Some(StackImports {
        stack: summary.name.clone(),
        imports: imports::imported_exports(&doc, &vars),
        gap: (computed > 0).then(|| {
            format!(
                "{computed} import name{} computed at deploy time",
                if computed == 1 { "" } else { "s" }
            )
        }),
    })
}

/// The pseudo parameters of the environment's account.
fn pseudo_parameters(catalog: &Catalog, environment: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("AWS::Partition".into(), "aws".into());
    vars.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
    if let Some(env) = catalog.config().environment(environment) {
        vars.insert("AWS::AccountId".into(), env.account_id.clone());
        vars.insert("AWS::Region".into(), env.region.clone());
    }
    vars
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn whence_names_the_builds_or_none() {
        assert_eq!(whence(None, "DEV"), "no known build exports it");
        let one = vec!["network-master-50".to_owned()];
        assert_eq!(
            whence(Some(&one), "DEV"),
            "network-master-50 exports it: deploy network-master-50 to DEV first"
        );
        let two = vec!["network-master-50".to_owned(), "shared-main-3".to_owned()];
        assert_eq!(
            whence(Some(&two), "STG"),
            "network-master-50 and shared-main-3 export it: deploy one of them to STG first"
        );
    }

    #[test]
    fn a_state_read_lasts_only_when_no_operation_can_hide_behind_it() {
        let at = |status, updated: Option<i64>| StackState {
            status,
            created_at: DateTime::from_timestamp(1, 0),
            last_updated_at: updated.and_then(|t| DateTime::from_timestamp(t, 0)),
        };
        assert!(at(StackStatus::CreateComplete, None).lasts());
        assert!(at(StackStatus::UpdateComplete, Some(5)).lasts());
        assert!(!at(StackStatus::UpdateComplete, None).lasts());
        assert!(!at(StackStatus::UpdateInProgress, Some(5)).lasts());
    }
}
