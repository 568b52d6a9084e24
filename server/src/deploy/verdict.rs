//! The rollback verdict: what deploying an older build would run into, told before the click —
//! the same checks the pre-flight makes (imports that no longer exist, exports the build drops
//! that other stacks import), the parameters its template requires that it does not give, and
//! the machine images it launches that the account cannot see any more (DescribeImages).

use std::collections::BTreeMap;

use app::model::VerdictWarning;

use crate::artifacts::FetchError;
use crate::catalog::Catalog;
use crate::deploy::exports::{self, Importers};
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
    let read = match read_build(catalog, project, environment, build).await? {
        Ok(read) => read,
        Err(problem) => return Ok(vec![warning("not_deployable", problem)]),
    };
    let (doc, vars, stack_name) = (&read.doc, &read.vars, &read.stack_name);
    let mut warnings: Vec<VerdictWarning> = read
        .missing
        .iter()
        .map(|key| {
            warning(
                "missing_parameter",
                format!("{build}'s template requires the parameter {key}, which its parameters do not give"),
            )
        })
        .collect();

    // Images it launches that the account cannot see (deregistered since, or never shared) —
    // given by its parameters or by its template's defaults; an image read from Parameter Store
    // at deploy time cannot be checked before, and is said to be unchecked.
    for key in ssm_image_parameters(doc) {
        warnings.push(warning(
            "unchecked",
            format!("{build}'s image parameter {key} is read from Parameter Store at deploy time: the image is not checked"),
        ));
    }
    let images = image_parameters(doc, &read.set.values);
    if !images.is_empty() {
        let ids: Vec<String> = images.iter().map(|(_, id)| id.clone()).collect();
        match catalog.missing_images(environment, &ids).await {
            Ok(missing) => {
                let account = catalog
                    .config()
                    .environment(environment)
                    .map(|e| e.account_id.clone())
                    .unwrap_or_default();
                for (key, id) in images.iter().filter(|(_, id)| missing.contains(id)) {
                    warnings.push(warning(
                        "missing_image",
                        format!(
                            "{build} launches {id} ({key}), which does not exist in {environment} (account {account}): deregistered, or never shared with it"
                        ),
                    ));
                }
            }
            Err(e) => warnings.push(warning(
                "unchecked",
                format!("{build}'s images could not be looked up ({e})"),
            )),
        }
    }

    // Imports that no longer exist in the environment (those with a computed name cannot be
    // looked up: said so, never counted as safe).
    let cfn = catalog.cfn(environment)?;
    match imports::computed_imports(doc, vars) {
        0 => {}
        n => warnings.push(warning(
            "unchecked",
            format!(
                "{build} imports {n} export{} whose name is computed at deploy time: {} not checked",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it is" } else { "they are" }
            ),
        )),
    }
    let wanted = imports::imported_exports(doc, vars);
    if !wanted.is_empty() {
        let exports = cfn.export_names().await?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !exports.contains(w))
            .cloned()
            .collect();
        let sources = catalog
            .exports
            .sources(catalog, environment, project, &missing)
            .await;
        for name in &missing {
            warnings.push(warning(
                "missing_import",
                format!(
                    "{build} imports {name:?}, which is not exported in {environment} any more; {}",
                    exports::whence(sources.get(name), environment)
                ),
            ));
        }
    }

    // Exports the stack has now that the build drops, while other stacks import them.
    if let Some(current) = cfn.stack(stack_name).await?
        && !current.exports.is_empty()
    {
        match imports::exported_names(doc, vars) {
            None => warnings.push(warning(
                "unchecked",
                format!("{build} computes some export names at deploy time: exports it drops are not checked"),
            )),
            Some(kept) => {
                let dropped: Vec<String> = current
                    .exports
                    .iter()
                    .filter(|e| !kept.contains(e))
                    .cloned()
                    .collect();
                let answers = catalog
                    .exports
                    .importers(catalog, environment, &cfn, stack_name, &dropped)
                    .await;
                for (export, importers) in answers {
                    match importers {
                        Importers::Known(stacks) if stacks.is_empty() => {}
                        Importers::Known(stacks) => warnings.push(warning(
                            "export_in_use",
                            format!(
                                "{build} no longer exports {export:?}, which {} import{}: the update would fail and roll back",
                                stacks.join(", "),
                                if stacks.len() == 1 { "s" } else { "" }
                            ),
                        )),
                        Importers::Unchecked(why) => warnings.push(warning(
                            "unchecked",
                            format!("{build} no longer exports {export:?}; who imports it could not be checked: {why}"),
                        )),
                    }
                }
            }
        }
    }
    Ok(warnings)
}

/// The parameters that name a machine image: declared `AWS::EC2::Image::Id`, or valued like one
/// — the value given, or else the template's default.
fn image_parameters(
    doc: &serde_yaml::Value,
    given: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let declared = doc.get("Parameters").and_then(|p| p.as_mapping());
    let mut values = given.clone();
    for (key, spec) in declared.into_iter().flatten() {
        if let (Some(key), Some(default)) = (
            key.as_str(),
            spec.get("Default").and_then(serde_yaml::Value::as_str),
        ) {
            values
                .entry(key.to_owned())
                .or_insert_with(|| default.to_owned());
        }
    }
    values
        .iter()
        .filter(|(key, value)| {
            let typed = declared
                .and_then(|d| d.get(key.as_str()))
                .and_then(|spec| spec.get("Type"))
                .and_then(|t| t.as_str())
                == Some("AWS::EC2::Image::Id");
            (typed && !value.is_empty()) || crate::aws::images::looks_like_image(value)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The parameters whose image comes from Parameter Store
/// (`AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>`): resolved by CloudFormation at deploy time.
fn ssm_image_parameters(doc: &serde_yaml::Value) -> Vec<String> {
    doc.get("Parameters")
        .and_then(|p| p.as_mapping())
        .into_iter()
        .flatten()
        .filter(|(_, spec)| {
            spec.get("Type").and_then(|t| t.as_str()).is_some_and(|t| {
                t.starts_with("AWS::SSM::Parameter::Value<") && t.contains("Image::Id")
            })
        })
        .filter_map(|(key, _)| key.as_str().map(str::to_owned))
        .collect()
}

/// A build read for checking: its template (text and parsed), its parameters for the
/// environment, the values `Fn::Sub` may use, and the required parameters it does not give.
pub struct ReadBuild {
    pub template: String,
    pub template_key: String,
    pub doc: serde_yaml::Value,
    pub set: parameters::ParameterSet,
    pub vars: BTreeMap<String, String>,
    pub missing: Vec<String>,
    pub stack_name: String,
}

/// Reads `build` as a deployment of it to `environment` would; `Err(problem)` when it cannot be
/// deployed at all (the problem in words).
pub async fn read_build(
    catalog: &Catalog,
    project: &str,
    environment: &str,
    build: &str,
) -> Result<Result<ReadBuild, String>, AppError> {
    let stack_name = catalog.stack_name(project, environment)?.to_owned();
    let folder = catalog.find_build(project, build).await?;
    Ok(read_folder(catalog, &folder, environment, stack_name).await)
}

/// Reads a build folder found already as a deployment of it to `environment` (as `stack_name`)
/// would; `Err(problem)` when it cannot be deployed at all.
pub async fn read_folder(
    catalog: &Catalog,
    folder: &crate::artifacts::BuildFolder,
    environment: &str,
    stack_name: String,
) -> Result<ReadBuild, String> {
    let build = &folder.build.id;
    if let Some(problem) = &folder.build.problem {
        return Err(format!("{build} cannot be deployed: {problem}"));
    }
    let (Some(template_key), Some(params_key)) = (&folder.template_key, &folder.parameters_key)
    else {
        return Err(format!("{build} is incomplete"));
    };
    let read = |key: String| async move {
        catalog.artifacts.fetch(&key).await.map_err(|e| match e {
            FetchError::Unreadable(m) | FetchError::Failed(m) => m,
        })
    };
    let template = match read(template_key.clone()).await {
        Ok(t) => t,
        Err(m) => return Err(m),
    };
    let mut set = match read(params_key.clone())
        .await
        .and_then(|text| parameters::parse("parameters.json", &text))
    {
        Ok(set) => set,
        Err(m) => return Err(m),
    };
    if let Some(key) = folder.overrides.get(environment) {
        let name = format!("parameters.{environment}.json");
        match read(key.clone())
            .await
            .and_then(|text| parameters::parse(&name, &text))
        {
            Ok(over) => set = parameters::merge(set, over),
            Err(m) => return Err(m),
        }
    }
    let doc = match imports::parse(&template) {
        Ok(doc) if doc.get("Resources").is_some() => doc,
        Ok(_) => return Err("the template has no Resources section".into()),
        Err(m) => return Err(m),
    };
    let mut vars = BTreeMap::new();
    let mut missing = Vec::new();
    if let Some(declared) = doc.get("Parameters").and_then(|p| p.as_mapping()) {
        for (key, spec) in declared {
            let Some(key) = key.as_str() else { continue };
            match spec.get("Default") {
                Some(serde_yaml::Value::String(s)) => {
                    vars.insert(key.to_owned(), s.clone());
                }
                Some(other) => {
                    let text = serde_yaml::to_string(other).unwrap_or_default();
                    vars.insert(key.to_owned(), text.trim().to_owned());
                }
                None if !set.values.contains_key(key) => missing.push(key.to_owned()),
                None => {}
            }
        }
    }
    vars.extend(set.values.clone());
    vars.insert("AWS::StackName".into(), stack_name.clone());
    vars.insert("AWS::Partition".into(), "aws".into());
    vars.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
    if let Some(env) = catalog.config().environment(environment) {
        vars.insert("AWS::AccountId".into(), env.account_id.clone());
        vars.insert("AWS::Region".into(), env.region.clone());
    }
    Ok(ReadBuild {
        template,
        template_key: template_key.clone(),
        doc,
        set,
        vars,
        missing,
        stack_name,
    })
}
