//! Stack state: one project's CloudFormation stack in one environment, as a card shows it.

use app::model::{StackCard, StackOutput, StackParameter, StackStatus};
use aws_sdk_cloudformation::Client as CfnClient;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::aws::AwsFailure;

/// The stack tag the deployer writes with the deployed build id.
pub const BUILD_TAG: &str = "deployer:build";
/// The stack tag the deployer writes with the deployment id.
pub const DEPLOYMENT_TAG: &str = "deployer:deployment";
/// What CloudFormation shows in place of a NoEcho parameter's value.
const MASKED: &str = "****";

/// Reads the stack; a stack that does not exist is a card with `exists: false`, not an error.
pub async fn describe(
    cfn: &CfnClient,
    environment: &str,
    stack_name: &str,
) -> Result<StackCard, AwsFailure> {
    let not_deployed = || StackCard {
        environment: environment.to_owned(),
        name: stack_name.to_owned(),
        exists: false,
        status: None,
        status_reason: None,
        build: None,
        updated_at: None,
        outputs: Vec::new(),
        parameters: Vec::new(),
    };
    // NoEcho is declared in the template; AWS masks such values but emulators may not, so the
    // declarations are read alongside and decide what is shown.
    let (answer, summary) = tokio::join!(
        cfn.describe_stacks().stack_name(stack_name).send(),
        cfn.get_template_summary().stack_name(stack_name).send(),
    );
    let no_echo: Option<Vec<String>> = match summary {
        Ok(summary) => Some(
            summary
                .parameters()
                .iter()
                .filter(|p| p.no_echo() == Some(true))
                .filter_map(|p| p.parameter_key().map(str::to_owned))
                .collect(),
        ),
        Err(e) if is_missing_stack(&e) => Some(Vec::new()),
        Err(e) => {
            // Without the declarations, no value is shown rather than a secret leaked.
            AwsFailure::from_sdk(format!("reading the template of {stack_name}"), e);
            None
        }
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) if is_missing_stack(&e) => return Ok(not_deployed()),
        Err(e) => {
            return Err(AwsFailure::from_sdk(
                format!("reading stack {stack_name} in {environment}"),
                e,
            ));
        }
    };
    let Some(stack) = answer.stacks().first() else {
        return Ok(not_deployed());
    };
    let status = stack
        .stack_status()
        .map(|s| StackStatus::from_aws_str(s.as_str()));
    if status == Some(StackStatus::DeleteComplete) {
        return Ok(not_deployed());
    }
    let to_utc = |t: &aws_sdk_cloudformation::primitives::DateTime| {
        DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
    };
    let updated_at = stack
        .last_updated_time()
        .or(stack.creation_time())
        .and_then(to_utc);
    let build = stack
        .tags()
        .iter()
        .find(|t| t.key() == Some(BUILD_TAG))
        .and_then(|t| t.value())
        .map(str::to_owned);
    let outputs = stack
        .outputs()
        .iter()
        .map(|o| StackOutput {
            key: o.output_key().unwrap_or_default().to_owned(),
            value: o.output_value().unwrap_or_default().to_owned(),
            export_name: o.export_name().map(str::to_owned),
            description: o.description().map(str::to_owned),
        })
        .collect();
    let parameters = stack
        .parameters()
        .iter()
        .map(|p| {
            let key = p.parameter_key().unwrap_or_default();
            let value = p.resolved_value().or(p.parameter_value());
            let no_echo = value == Some(MASKED)
                || no_echo
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k == key));
            StackParameter {
                key: key.to_owned(),
                value: if no_echo {
                    None
                } else {
                    value.map(str::to_owned)
                },
                no_echo,
            }
        })
        .collect();
    Ok(StackCard {
        environment: environment.to_owned(),
        name: stack_name.to_owned(),
        exists: true,
        status,
        status_reason: stack.stack_status_reason().map(str::to_owned),
        build,
        updated_at,
        outputs,
        parameters,
    })
}

/// CloudFormation answers a missing stack with a `ValidationError` "Stack with id X does not exist".
pub fn is_missing_stack<E: ProvideErrorMetadata, R>(
    error: &aws_sdk_cloudformation::error::SdkError<E, R>,
) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.code() == Some("ValidationError")
            && e.message().is_some_and(|m| m.contains("does not exist"))
    })
}
