//! Stack cards: one project's CloudFormation stack in one environment, as a card shows it, read
//! through the CloudFormation seam like everything else.

use app::model::{StackCard, StackParameter, StackStatus};

use crate::aws::AwsFailure;
use crate::aws::cfn::{CloudFormation, StackInfo};

/// The stack tag the deployer writes with the deployed build id.
pub const BUILD_TAG: &str = "deployer:build";
/// The stack tag the deployer writes with the deployment id.
pub const DEPLOYMENT_TAG: &str = "deployer:deployment";
/// What CloudFormation shows in place of a NoEcho parameter's value.
const MASKED: &str = "****";

/// Reads the stack; a stack that does not exist is a card with `exists: false`, not an error.
/// NoEcho is declared in the template; AWS masks such values but emulators may not, so the
/// declarations are read alongside and decide what is shown.
pub async fn describe(
    cfn: &dyn CloudFormation,
    environment: &str,
    stack_name: &str,
) -> Result<StackCard, AwsFailure> {
    let (info, no_echo) = tokio::join!(cfn.stack(stack_name), cfn.no_echo_keys(stack_name));
    // Without the declarations, no value is shown rather than a secret leaked.
    let no_echo = no_echo
        .inspect_err(|e| tracing::warn!(error = %e, "cannot read a stack's NoEcho parameters"))
        .ok();
    let mut card = card(environment, stack_name, info?, no_echo.as_deref());
    // Stuck in a failed rollback: which resources, so that a person can decide what to skip.
    if card.status == Some(StackStatus::UpdateRollbackFailed) {
        match cfn.failed_resources(stack_name).await {
            Ok(failed) => card.failed_resources = failed,
            Err(e) => tracing::warn!(error = %e, "cannot list a stack's failed resources"),
        }
    }
    Ok(card)
}

/// The card of a stack as read; `no_echo` is `None` when the declarations could not be read
/// (every value is then hidden).
pub fn card(
    environment: &str,
    stack_name: &str,
    info: Option<StackInfo>,
    no_echo: Option<&[String]>,
) -> StackCard {
    let mut card = StackCard {
        environment: environment.to_owned(),
        name: stack_name.to_owned(),
        exists: false,
        status: None,
        status_reason: None,
        build: None,
        updated_at: None,
        outputs: Vec::new(),
        parameters: Vec::new(),
        failed_resources: Vec::new(),
        outside: None,
    };
    let Some(info) = info.filter(|i| i.status != StackStatus::DeleteComplete) else {
        return card;
    };
    card.exists = true;
    card.status = Some(info.status);
    card.build = info.tag(BUILD_TAG).map(str::to_owned);
    card.status_reason = info.reason;
    card.updated_at = info.updated_at;
    card.outputs = info.outputs;
    card.parameters = info
        .parameters
        .into_iter()
        .map(|(key, value)| {
            let no_echo =
                value.as_deref() == Some(MASKED) || no_echo.is_none_or(|keys| keys.contains(&key));
            StackParameter {
                key,
                value: if no_echo { None } else { value },
                no_echo,
            }
        })
        .collect();
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StackInfo {
        StackInfo {
            status: StackStatus::UpdateComplete,
            tags: vec![(BUILD_TAG.into(), "web-master-7".into())],
            parameters: vec![
                ("Greeting".into(), Some("hello".into())),
                ("Secret".into(), Some("hunter2".into())),
                ("Token".into(), Some(MASKED.into())),
            ],
            ..StackInfo::default()
        }
    }

    #[test]
    fn a_missing_or_deleted_stack_is_a_card_that_says_not_deployed() {
        assert!(!card("DEV", "DEV-WEB", None, Some(&[])).exists);
        let deleted = StackInfo {
            status: StackStatus::DeleteComplete,
            ..StackInfo::default()
        };
        assert!(!card("DEV", "DEV-WEB", Some(deleted), Some(&[])).exists);
    }

    #[test]
    fn no_echo_values_are_hidden_and_unknown_declarations_hide_everything() {
        let shown = card("DEV", "DEV-WEB", Some(info()), Some(&["Secret".into()]));
        assert_eq!(shown.build.as_deref(), Some("web-master-7"));
        let values: Vec<Option<&str>> = shown
            .parameters
            .iter()
            .map(|p| p.value.as_deref())
            .collect();
        assert_eq!(values, [Some("hello"), None, None]);
        let hidden = card("DEV", "DEV-WEB", Some(info()), None);
        assert!(
            hidden
                .parameters
                .iter()
                .all(|p| p.value.is_none() && p.no_echo)
        );
    }
}
