//! Step 4: pre-flight. Every `Fn::ImportValue` of the template must exist in the environment's
//! exports, and an update must not remove an export another stack imports — CloudFormation would
//! fail half-way and roll back (the classic way a rollback to an older build fails).

use std::collections::BTreeMap;

use app::deployment::{Operation, StepName};

use super::validate::Checked;
use crate::aws::cfn::StackInfo;
use crate::deploy::exports::{Importers, whence};
use crate::deploy::imports;
use crate::deploy::parameters::ParameterSet;
use crate::deploy::run::{Run, Stop};
use crate::stacks::DEPLOYMENT_TAG;

/// What pre-flight found of the stack.
pub enum Found {
    /// The stack as it is (`None`: it does not exist yet).
    Stack(Option<StackInfo>),
    /// This very deployment's create went through before a restart (its answer was lost with
    /// the process): the stack is ours and being created — watch it, never update it.
    OurOwnCreate,
}

pub async fn run(run: &mut Run, checked: &Checked, set: &ParameterSet) -> Result<Found, Stop> {
    run.begin(StepName::Preflight).await?;
    let env = run.environment().to_owned();
    let vars = pseudo_parameters(run, checked, set);
    let wanted = imports::imported_exports(&checked.doc, &vars);
    if !wanted.is_empty() {
        let exports = run
            .aws(|cfn| async move { cfn.export_names().await })
            .await?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !exports.contains(w))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let project = run.record.deployment.project.clone();
            let sources = run
                .catalog
                .exports
                .sources(&run.catalog, &env, &project, &missing)
                .await;
            return Err(Stop::Refused(missing_imports(&missing, &sources, &env)));
        }
    }
    let stack_name = run.stack_name().to_owned();
    let existing = run
        .aws(|cfn| {
            let s = stack_name.clone();
            async move { cfn.stack(&s).await }
        })
        .await?;
    if run.record.execution_committed
        && let Some(info) = &existing
        && info.tag(DEPLOYMENT_TAG) == Some(run.id())
    {
        run.record.deployment.operation = Some(Operation::Create);
        run.record.stack_id = Some(info.stack_id.clone());
        run.record.executed = true;
        if let Err(e) = run.store.mark_executed(run.id()).await {
            tracing::error!(error = %e, "could not record the execution");
        }
        run.end(Some("the stack this deployment created is there".into()))
            .await;
        return Ok(Found::OurOwnCreate);
    }
    let exports_note = match &existing {
        Some(info) => removed_exports(run, info, &checked.doc, &vars).await?,
        None => None,
    };
    let imports_note = match wanted.len() {
        0 => "no imports".to_owned(),
        n => format!("{n} imports found in {env}'s exports"),
    };
    run.end(Some(match exports_note {
        Some(note) => format!("{imports_note}; {note}"),
        None => imports_note,
    }))
    .await;
    Ok(Found::Stack(existing))
}

/// The values `Fn::Sub` and `Ref` may use in export names: defaults, the build's parameters and
/// the pseudo parameters of the target account.
fn pseudo_parameters(run: &Run, checked: &Checked, set: &ParameterSet) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = checked
        .summary
        .parameters
        .iter()
        .filter_map(|d| d.default.clone().map(|v| (d.key.clone(), v)))
        .collect();
    vars.extend(set.values.clone());
    vars.insert("AWS::StackName".into(), run.stack_name().to_owned());
    vars.insert("AWS::Partition".into(), "aws".into());
    vars.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
    if let Some(env) = run.catalog.config().environment(run.environment()) {
        vars.insert("AWS::AccountId".into(), env.account_id.clone());
        vars.insert("AWS::Region".into(), env.region.clone());
    }
    vars
}

/// An export the stack has now and the build no longer declares must not be imported by another
/// stack. Returns a note for the step.
async fn removed_exports(
    run: &Run,
    current: &StackInfo,
    template: &serde_yaml::Value,
    vars: &BTreeMap<String, String>,
) -> Result<Option<String>, Stop> {
    if current.exports.is_empty() {
        return Ok(None);
    }
    let Some(kept) = imports::exported_names(template, vars) else {
        return Ok(Some(
            "some export names are computed at deploy time; removed exports not checked".into(),
        ));
    };
    let removed: Vec<&String> = current
        .exports
        .iter()
        .filter(|e| !kept.contains(e))
        .collect();
    if removed.is_empty() {
        return Ok(Some(format!("all {} exports kept", current.exports.len())));
    }
    let removed: Vec<String> = removed.into_iter().cloned().collect();
    let mut in_use = Vec::new();
    let mut unchecked = Vec::new();
    let answers = run
        .catalog
        .exports
        .importers(
            &run.catalog,
            run.environment(),
            &run.cfn,
            run.stack_name(),
            &removed,
        )
        .await;
    for (export, importers) in answers {
        match importers {
            Importers::Known(stacks) if stacks.is_empty() => {}
            Importers::Known(stacks) => {
                in_use.push(format!("{export:?} (imported by {})", stacks.join(", ")));
            }
            Importers::Unchecked(why) => {
                tracing::warn!(export = %export, why, "cannot tell who imports an export");
                unchecked.push(format!("{export:?}"));
            }
        }
    }
    if !in_use.is_empty() {
        let them = if in_use.len() == 1 { "it" } else { "them" };
        return Err(Stop::Refused(format!(
            "this build no longer exports {}; CloudFormation would fail the update and roll back. Deploy a build that keeps {them}, or move the importing stacks off {them} first",
            in_use.join(", "),
        )));
    }
    Ok(Some(if unchecked.is_empty() {
        format!(
            "{} removed export{}, none imported elsewhere",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "could not check who imports {} (removed by this build)",
            unchecked.join(", ")
        )
    }))
}

/// The refusal for imports the environment does not export, each with where it would come from.
fn missing_imports(
    missing: &[String],
    sources: &std::collections::BTreeMap<String, Vec<String>>,
    env: &str,
) -> String {
    if let [name] = missing {
        return format!(
            "the template imports {name:?}, which is not exported in {env}; {}. Deploying would fail and roll back",
            whence(sources.get(name), env)
        );
    }
    let each = missing
        .iter()
        .map(|name| format!("{name:?}: {}", whence(sources.get(name), env)))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "the template imports {} exports that are not exported in {env} ({each}). Deploying would fail and roll back",
        missing.len()
    )
}
