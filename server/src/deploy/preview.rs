//! "What would this build change?" without deploying: a change set made, described and deleted
//! (named `deployer-preview-…`, never executed); for a stack that does not exist yet, every
//! resource of the template is an `Add`.

use std::time::Duration;

use app::model::PreviewChange;

use super::steps::{MAX_TEMPLATE_BODY, says_no_changes};
use super::verdict::read_build;
use crate::aws::cfn::{ChangeSetState, StackRequest, TemplateSource};
use crate::catalog::Catalog;
use crate::error::AppError;
use crate::stacks::{BUILD_TAG, DEPLOYMENT_TAG};

/// How long CloudFormation may take to work a preview's change set out.
const PATIENCE: Duration = Duration::from_secs(60);

/// Resource types whose replacement or removal users notice or that hold data.
const STATEFUL: [&str; 10] = [
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::EC2::Volume",
    "AWS::EFS::FileSystem",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::Elasticsearch::Domain",
    "AWS::OpenSearchService::Domain",
];

/// Whether a change interrupts users or may lose data. An instance counts when no Auto Scaling
/// group of the template could stand in for it.
pub fn interrupts(
    action: &str,
    resource_type: &str,
    replacement: Option<&str>,
    has_asg: bool,
) -> bool {
    let replaced = matches!(replacement, Some("True" | "Conditional"));
    let removed = action == "Remove";
    let stateful = STATEFUL.contains(&resource_type);
    let lone_instance = resource_type == "AWS::EC2::Instance" && !has_asg;
    (replaced || removed) && (stateful || lone_instance)
}

/// Whether the template has an Auto Scaling group (instances it replaces do not interrupt users).
pub fn has_asg(doc: &serde_yaml::Value) -> bool {
    doc.get("Resources")
        .and_then(|r| r.as_mapping())
        .is_some_and(|resources| {
            resources.values().any(|spec| {
                spec.get("Type").and_then(|t| t.as_str())
                    == Some("AWS::AutoScaling::AutoScalingGroup")
            })
        })
}

/// Flags each change that interrupts users or may lose data, for the template deployed.
pub fn flag_interrupts(changes: &mut [app::deployment::ResourceChange], doc: &serde_yaml::Value) {
    let has_asg = has_asg(doc);
    for c in changes {
        c.interrupts = interrupts(
            &c.action,
            &c.resource_type,
            c.replacement.as_deref(),
            has_asg,
        );
    }
}

pub async fn preview(
    catalog: &Catalog,
    project: &str,
    environment: &str,
    build: &str,
) -> Result<Vec<PreviewChange>, AppError> {
    let read = read_build(catalog, project, environment, build)
        .await?
        .map_err(AppError::Refused)?;
    if !read.missing.is_empty() {
        return Err(AppError::Refused(format!(
            "{build}'s template requires {}, which its parameters do not give",
            read.missing.join(", ")
        )));
    }
    let resources = read
        .doc
        .get("Resources")
        .and_then(|r| r.as_mapping())
        .cloned()
        .unwrap_or_default();
    let type_of = |spec: &serde_yaml::Value| {
        spec.get("Type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let has_asg = has_asg(&read.doc);
    let cfn = catalog.cfn(environment)?;
    let Some(existing) = cfn.stack(&read.stack_name).await? else {
        return Ok(resources
            .iter()
            .map(|(id, spec)| PreviewChange {
                action: "Add".into(),
                logical_id: id.as_str().unwrap_or_default().to_owned(),
                resource_type: type_of(spec),
                replacement: None,
                interrupts: false,
            })
            .collect());
    };
    if existing.status.is_in_progress() {
        return Err(AppError::Conflict(format!(
            "{} is busy ({}): preview it once the operation has ended",
            read.stack_name,
            existing.status.as_aws_str()
        )));
    }
    let mut tags: Vec<(String, String)> = read
        .set
        .tags
        .clone()
        .into_iter()
        .filter(|(k, _)| k != BUILD_TAG && k != DEPLOYMENT_TAG)
        .collect();
    tags.push((BUILD_TAG.into(), build.to_owned()));
    if let Some(deployment) = existing.tag(DEPLOYMENT_TAG) {
        tags.push((DEPLOYMENT_TAG.into(), deployment.to_owned()));
    }
    let request = StackRequest {
        stack_name: read.stack_name.clone(),
        template: if read.template.len() > MAX_TEMPLATE_BODY {
            TemplateSource::Url(catalog.template_url(&read.template_key))
        } else {
            TemplateSource::Body(read.template.clone())
        },
        parameters: read.set.values.clone().into_iter().collect(),
        tags,
        notification_arns: existing.notification_arns.clone(),
    };
    let name = format!("deployer-preview-{}", uuid::Uuid::new_v4().simple());
    match cfn.create_change_set(&request, &name, &name).await {
        Ok(()) => {}
        Err(e) if says_no_changes(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let outcome = loop {
        match cfn.describe_change_set(&read.stack_name, &name).await {
            Ok(ChangeSetState::Pending) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(ChangeSetState::Pending) => {
                break Err(AppError::Unavailable(
                    "CloudFormation did not work the preview out within a minute; try again".into(),
                ));
            }
            Ok(ChangeSetState::NoChanges) => break Ok(Vec::new()),
            Ok(ChangeSetState::Failed(reason)) => {
                break Err(AppError::Refused(format!(
                    "CloudFormation refused the change set: {reason}"
                )));
            }
            Ok(ChangeSetState::Ready(changes)) => {
                break Ok(changes
                    .into_iter()
                    .map(|c| PreviewChange {
                        interrupts: interrupts(
                            &c.action,
                            &c.resource_type,
                            c.replacement.as_deref(),
                            has_asg,
                        ),
                        action: c.action,
                        logical_id: c.logical_id,
                        resource_type: c.resource_type,
                        replacement: c.replacement,
                    })
                    .collect());
            }
            Err(e) => break Err(e.into()),
        }
    };
    // Never left behind: a preview's change set is not for executing.
    if let Err(e) = cfn.delete_change_set(&read.stack_name, &name).await {
        tracing::warn!(change_set = name, error = ?e, "could not delete a preview's change set");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::interrupts;

    #[test]
    fn replacing_or_removing_what_holds_data_interrupts_and_the_rest_does_not() {
        assert!(interrupts(
            "Modify",
            "AWS::RDS::DBInstance",
            Some("True"),
            false
        ));
        assert!(interrupts(
            "Modify",
            "AWS::S3::Bucket",
            Some("Conditional"),
            false
        ));
        assert!(interrupts("Remove", "AWS::DynamoDB::Table", None, false));
        assert!(!interrupts(
            "Modify",
            "AWS::RDS::DBInstance",
            Some("False"),
            false
        ));
        assert!(!interrupts(
            "Modify",
            "AWS::SQS::Queue",
            Some("True"),
            false
        ));
        assert!(!interrupts("Add", "AWS::S3::Bucket", None, false));
        // An instance replaced is an outage unless an Auto Scaling group serves instead.
        assert!(interrupts(
            "Modify",
            "AWS::EC2::Instance",
            Some("True"),
            false
        ));
        assert!(!interrupts(
            "Modify",
            "AWS::EC2::Instance",
            Some("True"),
            true
        ));
    }
}
