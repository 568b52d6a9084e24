//! Step 1: read the build's template and parameters (and the environment's overrides) from S3.

use app::deployment::StepName;

use crate::artifacts::{BuildFolder, FetchError};
use crate::deploy::run::{Run, Stop};

/// The build's artifacts, as text.
pub struct Fetched {
    pub template: String,
    pub template_key: String,
    pub base_parameters: String,
    /// `parameters.<ENV>.json`, when the build has one for this environment.
    pub overrides: Option<String>,
}

pub async fn run(run: &mut Run, folder: &BuildFolder) -> Result<Fetched, Stop> {
    run.begin(StepName::Fetch).await?;
    let env = run.environment().to_owned();
    let template_key = folder
        .template_key
        .clone()
        .ok_or_else(|| Stop::Refused("the build has no template".into()))?;
    let params_key = folder
        .parameters_key
        .clone()
        .ok_or_else(|| Stop::Refused("the build has no parameters.json".into()))?;
    let template = fetch(run, &template_key).await?;
    let base_parameters = fetch(run, &params_key).await?;
    let overrides = match folder.overrides.get(&env) {
        Some(key) => Some(fetch(run, key).await?),
        None => None,
    };
    let words = format!(
        "template {} bytes{}",
        template.len(),
        if overrides.is_some() {
            format!(", parameters.{env}.json")
        } else {
            String::new()
        }
    );
    run.end(Some(words)).await;
    Ok(Fetched {
        template,
        template_key,
        base_parameters,
        overrides,
    })
}

async fn fetch(run: &Run, key: &str) -> Result<String, Stop> {
    run.catalog.artifacts.fetch(key).await.map_err(|e| match e {
        FetchError::Unreadable(m) => Stop::Refused(m),
        FetchError::Failed(m) => Stop::Failed(m),
    })
}
