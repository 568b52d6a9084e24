//! The engine's CloudFormation seam: the calls a deployment makes, as a trait. [`AwsCfn`] is the
//! real one (the AWS SDK); tests script a fake for what the emulator cannot produce (resource
//! events over time, failures, rollbacks, cancels).

use app::deployment::{ResourceChange, StackEvent};
use app::model::StackStatus;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};
use chrono::{DateTime, Utc};

use super::parameters::Declared;
use crate::aws::AwsFailure;
use crate::stacks::is_missing_stack;

/// Where CloudFormation reads the template from.
#[derive(Clone, Debug)]
pub enum TemplateSource {
    Body(String),
    /// An S3 https URL, for templates over 51,200 bytes.
    Url(String),
}

#[derive(Clone, Debug)]
pub struct StackRequest {
    pub stack_name: String,
    pub template: TemplateSource,
    pub parameters: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct StackInfo {
    pub stack_id: String,
    pub status: StackStatus,
    pub reason: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The export names of its outputs.
    pub exports: Vec<String>,
}

impl StackInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a template declares, from GetTemplateSummary.
#[derive(Clone, Debug)]
pub struct TemplateSummary {
    pub parameters: Vec<Declared>,
    pub resource_count: u32,
}

#[derive(Clone, Debug)]
pub enum ChangeSetState {
    Pending,
    Ready(Vec<ResourceChange>),
    NoChanges,
    Failed(String),
}

#[async_trait::async_trait]
pub trait CloudFormation: Send + Sync {
    async fn template_summary(
        &self,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, AwsFailure>;
    /// Every export name in the account and region (all pages).
    async fn export_names(&self) -> Result<Vec<String>, AwsFailure>;
    /// The stacks that import an export (ListImports, all pages); empty when none does.
    async fn importers(&self, export: &str) -> Result<Vec<String>, AwsFailure>;
    /// `None` when the stack does not exist (or was deleted).
    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure>;
    /// Returns the stack id. `token` is the ClientRequestToken: a retry with the same token is
    /// the same request to CloudFormation, never a second operation.
    async fn create_stack(&self, request: &StackRequest, token: &str)
    -> Result<String, AwsFailure>;
    /// `token` is the ClientToken of the request (retries with it create one change set).
    async fn create_change_set(
        &self,
        request: &StackRequest,
        name: &str,
        token: &str,
    ) -> Result<(), AwsFailure>;
    async fn describe_change_set(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetState, AwsFailure>;
    async fn execute_change_set(
        &self,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), AwsFailure>;
    async fn delete_change_set(&self, stack: &str, name: &str) -> Result<(), AwsFailure>;
    async fn cancel_update(&self, stack: &str, token: &str) -> Result<(), AwsFailure>;
    async fn delete_stack(&self, stack: &str, token: &str) -> Result<(), AwsFailure>;
    /// Events newer than `after` (an event id already seen), oldest first. Pages stop at `after`
    /// or at the first event older than `since` — the history before the operation is never read.
    async fn events(
        &self,
        stack: &str,
        after: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StackEvent>, AwsFailure>;
}

/// The real CloudFormation of one environment.
pub struct AwsCfn {
    client: Client,
}

impl AwsCfn {
    pub fn new(client: Client) -> Self {
        AwsCfn { client }
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

    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure> {
        let out = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(out) => out,
            Err(e) if is_missing_stack(&e) => return Ok(None),
            Err(e) => return Err(AwsFailure::from_sdk(format!("reading stack {stack}"), e)),
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
        }))
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
