//! The CloudFormation seam: every CloudFormation call the deployer makes — a deployment's and a
//! stack card's — as a trait. [`super::AwsCfn`] is the real one (the AWS SDK); tests script a fake
//! for what the emulator cannot produce (resource events over time, failures, rollbacks, cancels).

use app::deployment::{ResourceChange, StackEvent};
use app::model::{StackOutput, StackStatus};
use chrono::{DateTime, Utc};

use super::AwsFailure;

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
    /// The topics the stack announces its events to already (kept when the deployer adds its
    /// own environment's topic).
    pub notification_arns: Vec<String>,
}

/// A stack as DescribeStacks shows it.
#[derive(Clone, Debug)]
pub struct StackInfo {
    pub stack_id: String,
    pub status: StackStatus,
    pub reason: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The export names of its outputs.
    pub exports: Vec<String>,
    pub outputs: Vec<StackOutput>,
    /// Key and value (the resolved value for SSM parameters); AWS shows NoEcho values as `****`.
    pub parameters: Vec<(String, Option<String>)>,
    /// When it was last updated, or created.
    pub updated_at: Option<DateTime<Utc>>,
    /// The SNS topics it announces its events to.
    pub notification_arns: Vec<String>,
}

impl Default for StackInfo {
    fn default() -> Self {
        StackInfo {
            stack_id: String::new(),
            status: StackStatus::Unknown,
            reason: None,
            tags: Vec::new(),
            exports: Vec::new(),
            outputs: Vec::new(),
            parameters: Vec::new(),
            updated_at: None,
            notification_arns: Vec::new(),
        }
    }
}

impl StackInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A stack of the account as ListStacks lists it.
#[derive(Clone, Debug)]
pub struct StackSummary {
    pub name: String,
    pub stack_id: String,
    pub status: StackStatus,
    pub created_at: Option<DateTime<Utc>>,
    /// LastUpdatedTime: `None` for a stack never updated (and on stand-ins that do not keep it).
    pub last_updated_at: Option<DateTime<Utc>>,
}

/// A parameter the template declares (from GetTemplateSummary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub key: String,
    pub default: Option<String>,
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

/// Where a change set stands with its execution (DescribeChangeSet's ExecutionStatus): what an
/// ExecuteChangeSet refused with `InvalidChangeSetStatus` is told apart by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeSetExecution {
    /// EXECUTE_IN_PROGRESS, EXECUTE_COMPLETE or EXECUTE_FAILED: it was executed.
    Executed,
    /// OBSOLETE: the stack changed since it was made; it can never be executed.
    Obsolete,
    /// AVAILABLE, UNAVAILABLE, or a status this version does not know: not executed.
    NotExecuted,
    /// A stand-in CloudFormation that does not say.
    Unknown,
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
    /// Every stack of the account and region that is not deleted (ListStacks, all pages). A
    /// stand-in that does not offer it answers a failure: what it would have told is unchecked.
    async fn list_stacks(&self) -> Result<Vec<StackSummary>, AwsFailure> {
        Err(not_offered("listing the stacks"))
    }
    /// The template the stack runs, as CloudFormation processed it (GetTemplate); `None` when
    /// the stack does not exist.
    async fn template(&self, _stack: &str) -> Result<Option<String>, AwsFailure> {
        Err(not_offered("reading a stack's template"))
    }
    /// `None` when the stack does not exist (or was deleted).
    async fn stack(&self, stack: &str) -> Result<Option<StackInfo>, AwsFailure>;
    /// The parameters the stack's current template declares NoEcho (empty when the stack does
    /// not exist).
    async fn no_echo_keys(&self, stack: &str) -> Result<Vec<String>, AwsFailure>;
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
    /// The change set's ExecutionStatus. Stand-ins that do not model it answer `Unknown`.
    async fn change_set_execution(
        &self,
        _stack: &str,
        _name: &str,
    ) -> Result<ChangeSetExecution, AwsFailure> {
        Ok(ChangeSetExecution::Unknown)
    }
    async fn delete_change_set(&self, stack: &str, name: &str) -> Result<(), AwsFailure>;
    async fn cancel_update(&self, stack: &str, token: &str) -> Result<(), AwsFailure>;
    async fn delete_stack(&self, stack: &str, token: &str) -> Result<(), AwsFailure>;
    /// The stack's change sets (ListChangeSets, all pages): name and creation time. Empty when
    /// the stack does not exist.
    async fn change_sets(
        &self,
        stack: &str,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, AwsFailure>;
    /// The stack's resources in a failed state (DescribeStackResources).
    async fn failed_resources(
        &self,
        stack: &str,
    ) -> Result<Vec<app::model::FailedResource>, AwsFailure>;
    /// ContinueUpdateRollback for a stack in `UPDATE_ROLLBACK_FAILED`, leaving `skip` as they are.
    async fn continue_update_rollback(
        &self,
        stack: &str,
        skip: &[String],
        token: &str,
    ) -> Result<(), AwsFailure>;
    /// Events newer than `after` (an event id already seen), oldest first. Pages stop at `after`
    /// or at the first event older than `since` — the history before the operation is never read.
    async fn events(
        &self,
        stack: &str,
        after: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StackEvent>, AwsFailure>;
}

/// What a stand-in CloudFormation that does not offer a call answers.
fn not_offered(doing: &str) -> AwsFailure {
    AwsFailure {
        doing: doing.to_owned(),
        code: "NotOffered".to_owned(),
        message: Some("this CloudFormation does not offer the call".to_owned()),
        retryable: false,
    }
}
