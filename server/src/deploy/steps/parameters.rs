//! Step 2: parse `parameters.json` and apply the environment's `parameters.<ENV>.json` over it.

use app::deployment::StepName;

use super::fetch::Fetched;
use crate::deploy::parameters::{self, ParameterSet};
use crate::deploy::run::{Run, Stop};

pub async fn run(run: &mut Run, fetched: &Fetched) -> Result<ParameterSet, Stop> {
    run.begin(StepName::Parameters).await?;
    let mut set =
        parameters::parse("parameters.json", &fetched.base_parameters).map_err(Stop::Refused)?;
    if let Some(text) = &fetched.overrides {
        let name = format!("parameters.{}.json", run.environment());
        let over = parameters::parse(&name, text).map_err(Stop::Refused)?;
        set = parameters::merge(set, over);
    }
    run.end(Some(format!(
        "{} parameters, {} tags",
        set.values.len(),
        set.tags.len()
    )))
    .await;
    Ok(set)
}
