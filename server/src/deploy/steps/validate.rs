//! Step 3: check the parameters against the template — first that it is one (a YAML or JSON
//! mapping with `Resources`), so a broken artifact is refused with the parser's words rather than
//! whatever CloudFormation, or an emulator, makes of it; then CloudFormation's own reading of it.

use app::deployment::StepName;

use super::fetch::Fetched;
use crate::aws::cfn::{TemplateSource, TemplateSummary};
use crate::deploy::imports;
use crate::deploy::parameters::{self, ParameterSet};
use crate::deploy::run::{Run, Stop};

/// CloudFormation takes templates up to this size inline; larger ones by TemplateURL.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// The template, read and checked.
pub struct Checked {
    pub doc: serde_yaml::Value,
    pub source: TemplateSource,
    pub summary: TemplateSummary,
}

pub async fn run(run: &mut Run, fetched: &Fetched, set: &ParameterSet) -> Result<Checked, Stop> {
    run.begin(StepName::Validate).await?;
    let doc = imports::parse(&fetched.template).map_err(Stop::Refused)?;
    if doc.get("Resources").is_none() {
        return Err(Stop::Refused(
            "the template is not a CloudFormation template: it has no Resources section".into(),
        ));
    }
    // Kept before anything else happens: the build's NoEcho declarations hide those values on
    // the stack's card, whatever the stack's current template says.
    let no_echo = imports::no_echo_parameters(&doc);
    if !no_echo.is_empty()
        && let Err(e) = run.store.set_no_echo(run.id(), &no_echo).await
    {
        return Err(Stop::Failed(format!(
            "could not record the template's NoEcho parameters ({e}); nothing was changed"
        )));
    }
    let source = if fetched.template.len() > MAX_TEMPLATE_BODY {
        TemplateSource::Url(run.catalog.template_url(&fetched.template_key))
    } else {
        TemplateSource::Body(fetched.template.clone())
    };
    let summary = summary(run, &source).await?;
    parameters::check(set, &summary.parameters).map_err(Stop::Refused)?;
    run.end(Some(format!(
        "{} declared, {} resources",
        summary.parameters.len(),
        summary.resource_count
    )))
    .await;
    Ok(Checked {
        doc,
        source,
        summary,
    })
}

/// GetTemplateSummary: a template CloudFormation cannot read is refused with its words.
async fn summary(run: &mut Run, source: &TemplateSource) -> Result<TemplateSummary, Stop> {
    match run.cfn.template_summary(source).await {
        Ok(s) => Ok(s),
        Err(e) if e.code == "ValidationError" => Err(Stop::Refused(format!(
            "CloudFormation cannot read the template: {}",
            e.message.unwrap_or_default()
        ))),
        // An emulator that breaks on a template (moto answers HTTP 500 with a Python traceback
        // for Transform, Fn::ForEach, …) will not do better on a retry.
        Err(e) if e.code.starts_with("HTTP 5") && run.catalog.is_emulated(run.environment()) => {
            Err(Stop::Failed(format!(
                "{e} — the local AWS emulator could not process this template (real \
                 CloudFormation may well accept it: transforms, Fn::ForEach and other features \
                 are beyond the emulator)"
            )))
        }
        Err(_) => {
            let source = source.clone();
            run.aws(|cfn| {
                let source = source.clone();
                async move { cfn.template_summary(&source).await }
            })
            .await
        }
    }
}
