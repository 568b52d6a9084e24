//! Build folders from a listing: grouped by folder, checked for a template and parameters, and
//! ordered newest first (a total order, whatever the names).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{BuildFolder, PARAMETERS_FILE, TEMPLATE_FILES};
use crate::build_id::BuildId;
use app::model::Build;

/// Groups `<prefix><project>/<build>/<file>` keys into build folders, checks each for a
/// template and parameters, and orders them newest first.
pub fn group_into_builds(
    project: &str,
    folder_prefix: &str,
    files: Vec<(String, DateTime<Utc>)>,
) -> Vec<BuildFolder> {
    struct Found {
        newest: DateTime<Utc>,
        files: BTreeMap<String, String>,
    }
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    for (key, modified) in files {
        let Some(rest) = key.strip_prefix(folder_prefix) else {
            continue;
        };
        let Some((folder, file)) = rest.split_once('/') else {
            continue;
        };
        if folder.is_empty() {
            continue;
        }
        let entry = found.entry(folder.to_owned()).or_insert_with(|| Found {
            newest: modified,
            files: BTreeMap::new(),
        });
        entry.newest = entry.newest.max(modified);
        if !file.is_empty() {
            entry.files.insert(file.to_owned(), key.clone());
        }
    }

    let mut folders: Vec<(Option<BuildId>, BuildFolder)> = found
        .into_iter()
        .map(|(id, Found { newest, files })| {
            let templates: Vec<&str> = TEMPLATE_FILES
                .iter()
                .copied()
                .filter(|name| files.contains_key(*name))
                .collect();
            let template_key = templates.first().and_then(|name| files.get(*name)).cloned();
            let parameters_key = files.get(PARAMETERS_FILE).cloned();
            let overrides = files
                .iter()
                .filter_map(|(name, key)| {
                    let env = name.strip_prefix("parameters.")?.strip_suffix(".json")?;
                    (!env.is_empty()).then(|| (env.to_owned(), key.clone()))
                })
                .collect();
            let parsed = BuildId::parse(&id, [project]);
            let problem = match (&parsed, &template_key, &parameters_key) {
                (Err(e), _, _) => Some(format!("the folder name {id:?} {e}")),
                // The build id is written to the stack as a tag value.
                (Ok(_), _, _) if !is_tag_value(&id) => Some(format!(
                    "the folder name {id:?} cannot be a CloudFormation tag value (letters, digits, \
                     spaces and _ . : / = + - @, at most 256 characters)"
                )),
                (Ok(_), _, _) if templates.len() > 1 => Some(format!(
                    "{} templates ({}): which one to deploy is ambiguous; keep one",
                    templates.len(),
                    templates.join(", ")
                )),
                (Ok(_), None, None) => Some(
                    "no template (template.yaml, .yml or .json) and no parameters.json".to_owned(),
                ),
                (Ok(_), None, Some(_)) => {
                    Some("no template (template.yaml, .yml or .json)".to_owned())
                }
                (Ok(_), Some(_), None) => Some("no parameters.json".to_owned()),
                (Ok(_), Some(_), Some(_)) => None,
            };
            let parsed = parsed.ok();
            let build = Build {
                id,
                project: project.to_owned(),
                branch: parsed.as_ref().map(|b| b.branch.clone()),
                number: parsed.as_ref().map(|b| b.number),
                created_at: newest,
                deployable: problem.is_none(),
                problem,
            };
            (
                parsed,
                BuildFolder {
                    build,
                    template_key,
                    parameters_key,
                    overrides,
                },
            )
        })
        .collect();
    // Only the order within a branch matters here (`newest_first` interleaves the lanes by
    // time), but `sort_by` needs a total order over every folder: parsed ones by branch then
    // number, newest first; unparsed ones after them, by name. Comparing a mix of the two by
    // different keys is not transitive, and the standard sort panics on that.
    folders.sort_by(|(a, fa), (b, fb)| lane_order(a.as_ref(), fa, b.as_ref(), fb));
    newest_first(folders)
}

/// Whether CloudFormation accepts the text as a tag value.
fn is_tag_value(text: &str) -> bool {
    text.chars().count() <= 256
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// A `parameters.<X>.json` whose `<X>` is no configured environment (`parameters.prd.json`,
/// `parameters.PROD.json`) would silently not apply: such a build is not deployable, saying why.
pub fn check_overrides(folders: &mut [BuildFolder], environments: &[String]) {
    for folder in folders.iter_mut().filter(|f| f.build.problem.is_none()) {
        let stray: Vec<String> = folder
            .overrides
            .keys()
            .filter(|env| !environments.contains(env))
            .map(|env| format!("parameters.{env}.json"))
            .collect();
        if !stray.is_empty() {
            folder.build.deployable = false;
            folder.build.problem = Some(format!(
                "{} {} no environment ({}; names are case-sensitive): rename or remove {}",
                stray.join(", "),
                if stray.len() == 1 { "matches" } else { "match" },
                environments.join(", "),
                if stray.len() == 1 { "it" } else { "them" },
            ));
        }
    }
}

/// A total order used to group folders into lanes: parsed builds first, by branch and then
/// number (newest first), then by folder name; unparsed folders after, by folder name.
fn lane_order(
    a: Option<&BuildId>,
    fa: &BuildFolder,
    b: Option<&BuildId>,
    fb: &BuildFolder,
) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a
            .branch
            .cmp(&b.branch)
            .then_with(|| BuildId::newer_first(a, b))
            .then_with(|| fa.build.id.cmp(&fb.build.id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => fa.build.id.cmp(&fb.build.id),
    }
}

/// Merges per-branch lists (each already newest number first) by the time of each list's next
/// build, so the whole list reads newest first while every branch stays in numeric order even
/// when builds were written out of order.
fn newest_first(folders: Vec<(Option<BuildId>, BuildFolder)>) -> Vec<BuildFolder> {
    let mut lanes: BTreeMap<String, std::collections::VecDeque<BuildFolder>> = BTreeMap::new();
    for (parsed, folder) in folders {
        // Folders whose name does not parse have no branch: each is its own lane.
        let lane = match parsed {
            Some(id) => format!("b:{}", id.branch),
            None => format!("x:{}", folder.build.id),
        };
        lanes.entry(lane).or_default().push_back(folder);
    }
    let mut out = Vec::new();
    loop {
        let next = lanes
            .iter()
            .filter_map(|(lane, queue)| queue.front().map(|f| (lane, f)))
            .max_by(|(la, a), (lb, b)| {
                a.build
                    .created_at
                    .cmp(&b.build.created_at)
                    .then_with(|| a.build.number.cmp(&b.build.number))
                    .then_with(|| lb.cmp(la))
            })
            .map(|(lane, _)| lane.clone());
        let Some(lane) = next else { break };
        if let Some(folder) = lanes.get_mut(&lane).and_then(|q| q.pop_front()) {
            out.push(folder);
        }
    }
    out
}

#[cfg(test)]
mod tests;
