//! The rollback verdict: what deploying an older build would run into, told before the click —
//! the same checks the pre-flight makes (imports that no longer exist, exports the build drops
//! that other stacks import) and the parameters its template requires that it does not give.

use std::collections::BTreeMap;

use app::model::VerdictWarning;

use crate::artifacts::FetchError;
use crate::catalog::Catalog;
use crate::deploy::{imports, parameters};
use crate::error::AppError;

fn warning(kind: &str, message: String) -> VerdictWarning {
    VerdictWarning {
        kind: kind.to_owned(),
        message,
    }
}

/// Every warning for deploying `build` of `project` to `environment` now (none: safe).
pub async fn check(
    catalog: &Catalog,
    project: &str,
    environment: &str,
    build: &str,
) -> Result<Vec<VerdictWarning>, AppError> {
    let folder = catalog.find_build(project, build).await?;
    if let Some(problem) = &folder.build.problem {
        return Ok(vec![warning(
            "not_deployable",
            format!("{build} cannot be deployed: {problem}"),
        )]);
    }
    let (Some(template_key), Some(params_key)) = (&folder.template_key, &folder.parameters_key)
    else {
        return Ok(vec![warning(
            "not_deployable",
            format!("{build} is incomplete"),
        )]);
    };
    let read = |key: String| async move {
        catalog.artifacts.fetch(&key).await.map_err(|e| match e {
            FetchError::Unreadable(m) | FetchError::Failed(m) => m,
        })
    };
    let unreadable = |m: String| Ok(vec![warning("not_deployable", m)]);
    let template = match read(template_key.clone()).await {
        Ok(t) => t,
        Err(m) => return unreadable(m),
    };
    let mut set = match read(params_key.clone())
        .await
        .and_then(|text| parameters::parse("parameters.json", &text))
    {
        Ok(set) => set,
        Err(m) => return unreadable(m),
    };
    if let Some(key) = folder.overrides.get(environment) {
        let name = format!("parameters.{environment}.json");
        match read(key.clone())
            .await
            .and_then(|text| parameters::parse(&name, &text))
        {
            Ok(over) => set = parameters::merge(set, over),
            Err(m) => return unreadable(m),
        }
    }
    let doc = match imports::parse(&template) {
        Ok(doc) => doc,
        Err(m) => return unreadable(m),
    };
    let mut warnings = Vec::new();

    // Parameters the build's template requires (no default) that the build does not give.
    let mut vars = BTreeMap::new();
    if let Some(declared) = doc.get("Parameters").and_then(|p| p.as_mapping()) {
        for (key, spec) in declared {
            let Some(key) = key.as_str() else { continue };
            match spec.get("Default") {
                Some(default) => {
                    let value = match default {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    vars.insert(key.to_owned(), value);
                }
                None if !set.values.contains_key(key) => warnings.push(warning(
                    "missing_parameter",
                    format!("{build}'s template requires the parameter {key}, which its parameters do not give"),
                )),
                None => {}
            }
        }
    }
    vars.extend(set.values.clone());
    let stack_name = catalog.stack_name(project, environment)?.to_owned();
    vars.insert("AWS::StackName".into(), stack_name.clone());
    vars.insert("AWS::Partition".into(), "aws".into());
    vars.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
    if let Some(env) = catalog.config.environment(environment) {
        vars.insert("AWS::AccountId".into(), env.account_id.clone());
        vars.insert("AWS::Region".into(), env.region.clone());
    }

    // Imports that no longer exist in the environment.
    let cfn = catalog.cfn(environment)?;
    let wanted = imports::imported_exports(&doc, &vars);
    if !wanted.is_empty() {
        let exports = cfn.export_names().await?;
        for name in wanted.iter().filter(|w| !exports.contains(w)) {
            warnings.push(warning(
                "missing_import",
                format!(
                    "{build} imports {name:?}, which is not exported in {environment} any more"
                ),
            ));
        }
    }

    // Exports the stack has now that the build drops, while other stacks import them.
    if let Some(current) = cfn.stack(&stack_name).await?
        && !current.exports.is_empty()
    {
        match imports::exported_names(&doc, &vars) {
            None => warnings.push(warning(
                "unchecked",
                format!("{build} computes some export names at deploy time: exports it drops are not checked"),
            )),
            Some(kept) => {
                for export in current.exports.iter().filter(|e| !kept.contains(e)) {
                    match cfn.importers(export).await {
                        Ok(stacks) if stacks.is_empty() => {}
                        Ok(stacks) => warnings.push(warning(
                            "export_in_use",
                            format!(
                                "{build} no longer exports {export:?}, which {} import{}: the update would fail and roll back",
                                stacks.join(", "),
                                if stacks.len() == 1 { "s" } else { "" }
                            ),
                        )),
                        Err(e) => warnings.push(warning(
                            "unchecked",
                            format!("{build} no longer exports {export:?}; who imports it could not be checked ({e})"),
                        )),
                    }
                }
            }
        }
    }
    Ok(warnings)
}
