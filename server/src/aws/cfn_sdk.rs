//! [`AwsCfn`]: the CloudFormation seam over the AWS SDK.

use app::deployment::{ResourceChange, StackEvent};
use app::model::{StackOutput, StackStatus};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, ExecutionStatus, Parameter, Tag,
};
use chrono::{DateTime, Utc};

use super::AwsFailure;
use super::cfn::{
    ChangeSetExecution, ChangeSetState, CloudFormation, Declared, StackInfo, StackRequest,
    StackSummary, TemplateSource, TemplateSummary,
};

/// The real CloudFormation of one environment.
pub struct AwsCfn {
    client: Client,
    /// The role CloudFormation acts with (`RoleARN` on every stack change), if configured.
    service_role: Option<String>,
    /// The environment's stack-events topic, added to the NotificationARNs of every stack this
    /// creates or changes (the topics a stack already has are kept).
    topic: Option<String>,
}

impl AwsCfn {
    pub fn new(client: Client) -> Self {
        AwsCfn {
            client,
            service_role: None,
            topic: None,
        }
    }

    /// Every stack created or changed announces its events to this SNS topic too.
    pub fn with_notification_topic(mut self, topic_arn: Option<String>) -> Self {
        self.topic = topic_arn;
        self
    }

    /// The NotificationARNs of a stack change: `None` (the stack's own are kept) without a topic
    /// of the deployer's; else the stack's own and the deployer's.
    fn notification_arns(&self, request: &StackRequest) -> Option<Vec<String>> {
        let topic = self.topic.as_ref()?;
        let mut arns = request.notification_arns.clone();
        if !arns.contains(topic) {
            arns.push(topic.clone());
        }
        Some(arns)
    }

    /// CloudFormation changes stacks with this role rather than the caller's credentials.
    pub fn with_service_role(mut self, role_arn: Option<String>) -> Self {
        self.service_role = role_arn;
        self
    }
}

fn to_utc(t: &aws_sdk_cloudformation::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

fn parameters(request: &StackRequest) -> Vec<Parameter> {
    request
        .parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn tags(request: &StackRequest) -> Vec<Tag> {
    request
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Stacks that create IAM resources or use macros need these; the deployer deploys trusted builds.
fn capabilities() -> Vec<Capability> {
    vec![
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ]
}

#[async_trait::async_trait]
impl CloudFormation for AwsCfn {
    async fn template_summary(
        &self,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, AwsFailure> {
        let call = self.client.get_template_summary();
        let call = match template {
            TemplateSource::Body(body) => call.template_body(body),
            TemplateSource::Url(url) => call.template_url(url),
        };
        let out = call
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("reading the template", e))?;
        Ok(TemplateSummary {
            parameters: out
                .parameters()
                .iter()
                .map(|p| Declared {
                    key: p.parameter_key().unwrap_or_default().to_owned(),
                    default: p.default_value().map(str::to_owned),
                })
                .collect(),
            resource_count: u32::try_from(out.resource_types().len()).unwrap_or(u32::MAX),
        })
    }

    async fn export_names(&self) -> Result<Vec<String>, AwsFailure> {
        let mut names = Vec::new();
        let mut pages = self.client.list_exports().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsFailure::from_sdk("listing exports", e))?;
            names.extend(
                page.exports()
                    .iter()
                    .filter_map(|e| e.name().map(str::to_owned)),
            );
        }
        Ok(names)
    }

    async fn importers(&self, export: &str) -> Result<Vec<String>, AwsFailure> {
        let mut stacks = Vec::new();
        let mut pages = self
            .client
            .list_imports()
            .export_name(export)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => stacks.extend(page.imports().iter().cloned()),
                // AWS answers an export nobody imports with this error, not an empty list.
                Err(e)
                    if e.as_service_error()
                        .and_then(ProvideErrorMetadata::message)
                        .is_some_and(|m| m.contains("is not imported by any stack")) =>
                {
                    break;
                }
                Err(e) => {
                    return Err(AwsFailure::from_sdk(
                        format!("listing the stacks that import {export}"),
                        e,
                    ));
                }
            }
        }
        Ok(stacks)
    }

    async fn list_stacks(&self) -> Result<Vec<StackSummary>, AwsFailure> {
        // Every status but DELETE_COMPLETE: ListStacks shows deleted stacks for 90 days.
        let live: Vec<aws_sdk_cloudformation::types::StackStatus> = StackStatus::ALL
            .into_iter()
            .filter(|s| *s != StackStatus::DeleteComplete)
            .map(|s| aws_sdk_cloudformation::types::StackStatus::from(s.as_aws_str()))
            .collect();
        let mut stacks = Vec::new();
        let mut pages = self
            .client
            .list_stacks()
            .set_stack_status_filter(Some(live))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsFailure::from_sdk("listing the stacks", e))?;
            stacks.extend(page.stack_summaries().iter().map(|s| {
                StackSummary {
                    name: s.stack_name().unwrap_or_default().to_owned(),
                    stack_id: s
                        .stack_id()
                        .or(s.stack_name())
                        .unwrap_or_default()
                        .to_owned(),
                    status: s.stack_status().map_or(StackStatus::Unknown, |st| {
                        StackStatus::from_aws_str(st.as_str())
                    }),
                    created_at: s.creation_time().map(to_utc),
                    last_updated_at: s.last_updated_time().map(to_utc),
                }
            }));
        }
        Ok(stacks)
    }

    async fn template(&self, stack: &str) -> Result<Option<String>, AwsFailure> {
        match self
            .client
            .get_template()
            .stack_name(stack)
            .template_stage(aws_sdk_cloudformation::types::TemplateStage::Processed)
            .send()
            .await
        {
            Ok(out) => Ok(out.template_body().map(str::to_owned)),
            Err(e) if is_missing_stack(&e) => Ok(None),
            Err(e) => Err(AwsFailure::from_sdk(
                format!("reading the template of {stack}"),
                e,
            )),
        }
    }

    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure> {
        let out = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) if is_missing_stack(&e) => return Ok(None),
            Err(e) => return Err(AwsFailure::from_sdk(format!("reading stack {stack}"), e)),
        };
        let to_utc_opt = |t: &aws_sdk_cloudformation::primitives::DateTime| {
            DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
        };
        Ok(out.stacks().first().map(|s| StackInfo {
            stack_id: s.stack_id().unwrap_or(stack).to_owned(),
            status: s.stack_status().map_or(StackStatus::Unknown, |st| {
                StackStatus::from_aws_str(st.as_str())
            }),
            reason: s.stack_status_reason().map(str::to_owned),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            exports: s
                .outputs()
                .iter()
                .filter_map(|o| o.export_name().map(str::to_owned))
                .collect(),
            outputs: s
                .outputs()
                .iter()
                .map(|o| StackOutput {
                    key: o.output_key().unwrap_or_default().to_owned(),
                    value: o.output_value().unwrap_or_default().to_owned(),
                    export_name: o.export_name().map(str::to_owned),
                    description: o.description().map(str::to_owned),
                })
                .collect(),
            notification_arns: s.notification_arns().to_vec(),
            parameters: s
                .parameters()
                .iter()
                .map(|p| {
                    let value = p.resolved_value().or(p.parameter_value());
                    (
                        p.parameter_key().unwrap_or_default().to_owned(),
                        value.map(str::to_owned),
                    )
                })
                .collect(),
            updated_at: s
                .last_updated_time()
                .or(s.creation_time())
                .and_then(to_utc_opt),
        }))
    }

    async fn no_echo_keys(&self, stack: &str) -> Result<Vec<String>, AwsFailure> {
        match self
            .client
            .get_template_summary()
            .stack_name(stack)
            .send()
            .await
        {
            Ok(summary) => Ok(summary
                .parameters()
                .iter()
                .filter(|p| p.no_echo() == Some(true))
                .filter_map(|p| p.parameter_key().map(str::to_owned))
                .collect()),
            Err(e) if is_missing_stack(&e) => Ok(Vec::new()),
            Err(e) => Err(AwsFailure::from_sdk(
                format!("reading the template of {stack}"),
                e,
            )),
        }
    }

    async fn create_stack(
        &self,
        request: &StackRequest,
        token: &str,
    ) -> Result<String, AwsFailure> {
        let call = self
            .client
            .create_stack()
            .stack_name(&request.stack_name)
            .client_request_token(token)
            .set_parameters(Some(parameters(request)))
            .set_tags(Some(tags(request)))
            .set_role_arn(self.service_role.clone())
            .set_notification_arns(self.notification_arns(request))
            .set_capabilities(Some(capabilities()));
        let call = match &request.template {
            TemplateSource::Body(body) => call.template_body(body),
            TemplateSource::Url(url) => call.template_url(url),
        };
        let out = call.send().await.map_err(|e| {
            AwsFailure::from_sdk(format!("creating stack {}", request.stack_name), e)
        })?;
        Ok(out.stack_id().unwrap_or(&request.stack_name).to_owned())
    }

    async fn create_change_set(
        &self,
        request: &StackRequest,
        name: &str,
        token: &str,
    ) -> Result<(), AwsFailure> {
        let call = self
            .client
            .create_change_set()
            .stack_name(&request.stack_name)
            .change_set_name(name)
            .client_token(token)
            .change_set_type(ChangeSetType::Update)
            .set_parameters(Some(parameters(request)))
            .set_tags(Some(tags(request)))
            .set_role_arn(self.service_role.clone())
            .set_notification_arns(self.notification_arns(request))
            .set_capabilities(Some(capabilities()));
        let call = match &request.template {
            TemplateSource::Body(body) => call.template_body(body),
            TemplateSource::Url(url) => call.template_url(url),
        };
        call.send().await.map_err(|e| {
            AwsFailure::from_sdk(
                format!("creating a change set for {}", request.stack_name),
                e,
            )
        })?;
        Ok(())
    }

    async fn describe_change_set(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetState, AwsFailure> {
        let mut changes = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_change_set()
                .stack_name(stack)
                .change_set_name(name)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    AwsFailure::from_sdk(format!("reading the change set of {stack}"), e)
                })?;
            match out.status() {
                Some(ChangeSetStatus::CreateComplete) => {}
                Some(ChangeSetStatus::Failed) => {
                    let reason = out
                        .status_reason()
                        .unwrap_or("the change set failed")
                        .to_owned();
                    // AWS's way of saying "nothing to do".
                    if reason.contains("didn't contain changes")
                        || reason.contains("No updates are to be performed")
                    {
                        return Ok(ChangeSetState::NoChanges);
                    }
                    return Ok(ChangeSetState::Failed(reason));
                }
                _ => return Ok(ChangeSetState::Pending),
            }
            for change in out.changes() {
                let Some(rc) = change.resource_change() else {
                    continue;
                };
                changes.push(ResourceChange {
                    action: rc.action().map_or("Dynamic", |a| a.as_str()).to_owned(),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: rc.resource_type().unwrap_or_default().to_owned(),
                    replacement: rc.replacement().map(|r| r.as_str().to_owned()),
                    interrupts: false,
                });
            }
            match out.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => break,
            }
        }
        // AWS fails a change set that changes nothing (above); a ready one with no resource
        // changes still updates parameters or tags (moto reports parameter changes this way).
        Ok(ChangeSetState::Ready(changes))
    }

    async fn execute_change_set(
        &self,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), AwsFailure> {
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("executing the change set of {stack}"), e))?;
        Ok(())
    }

    async fn change_set_execution(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetExecution, AwsFailure> {
        let out = self
            .client
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("reading the change set of {stack}"), e))?;
        Ok(match out.execution_status() {
            Some(
                ExecutionStatus::ExecuteInProgress
                | ExecutionStatus::ExecuteComplete
                | ExecutionStatus::ExecuteFailed,
            ) => ChangeSetExecution::Executed,
            Some(ExecutionStatus::Obsolete) => ChangeSetExecution::Obsolete,
            _ => ChangeSetExecution::NotExecuted,
        })
    }

    async fn delete_change_set(&self, stack: &str, name: &str) -> Result<(), AwsFailure> {
        self.client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("deleting the change set of {stack}"), e))?;
        Ok(())
    }

    async fn cancel_update(&self, stack: &str, token: &str) -> Result<(), AwsFailure> {
        self.client
            .cancel_update_stack()
            .stack_name(stack)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("cancelling the update of {stack}"), e))?;
        Ok(())
    }

    async fn delete_stack(&self, stack: &str, token: &str) -> Result<(), AwsFailure> {
        self.client
            .delete_stack()
            .stack_name(stack)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("deleting stack {stack}"), e))?;
        Ok(())
    }

    async fn change_sets(
        &self,
        stack: &str,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, AwsFailure> {
        let mut sets = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_change_sets()
                .stack_name(stack)
                .set_next_token(next.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if is_missing_stack(&e) => return Ok(Vec::new()),
                Err(e) => {
                    return Err(AwsFailure::from_sdk(
                        format!("listing the change sets of {stack}"),
                        e,
                    ));
                }
            };
            sets.extend(out.summaries().iter().filter_map(|s| {
                Some((
                    s.change_set_name()?.to_owned(),
                    s.creation_time().map(to_utc),
                ))
            }));
            match out.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(sets),
            }
        }
    }

    async fn failed_resources(
        &self,
        stack: &str,
    ) -> Result<Vec<app::model::FailedResource>, AwsFailure> {
        let out = self
            .client
            .describe_stack_resources()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("listing the resources of {stack}"), e))?;
        Ok(out
            .stack_resources()
            .iter()
            .filter_map(|r| {
                let status = r.resource_status()?.as_str().to_owned();
                status
                    .ends_with("_FAILED")
                    .then(|| app::model::FailedResource {
                        logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                        resource_type: r.resource_type().unwrap_or_default().to_owned(),
                        status,
                        reason: r.resource_status_reason().map(str::to_owned),
                    })
            })
            .collect())
    }

    async fn continue_update_rollback(
        &self,
        stack: &str,
        skip: &[String],
        token: &str,
    ) -> Result<(), AwsFailure> {
        self.client
            .continue_update_rollback()
            .stack_name(stack)
            .set_resources_to_skip((!skip.is_empty()).then(|| skip.to_vec()))
            .set_role_arn(self.service_role.clone())
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(format!("continuing the rollback of {stack}"), e))?;
        Ok(())
    }

    async fn events(
        &self,
        stack: &str,
        after: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StackEvent>, AwsFailure> {
        let mut newest_first = Vec::new();
        let mut next: Option<String> = None;
        'pages: loop {
            let out = self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk(format!("reading the events of {stack}"), e))?;
            for e in out.stack_events() {
                let id = e.event_id().unwrap_or_default();
                let timestamp = e.timestamp().map(to_utc).unwrap_or_default();
                if Some(id) == after || timestamp < since {
                    break 'pages;
                }
                newest_first.push(StackEvent {
                    id: id.to_owned(),
                    timestamp,
                    logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: e.resource_type().unwrap_or_default().to_owned(),
                    status: e
                        .resource_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_owned),
                });
            }
            match out.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => break,
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }
}

/// CloudFormation answers a missing stack with a `ValidationError` "Stack with id X does not exist".
fn is_missing_stack<E: ProvideErrorMetadata, R>(
    error: &aws_sdk_cloudformation::error::SdkError<E, R>,
) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.code() == Some("ValidationError")
            && e.message().is_some_and(|m| m.contains("does not exist"))
    })
}
