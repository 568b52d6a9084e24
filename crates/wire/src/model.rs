//! Wire types: every shape that crosses the network is defined here once, and used by the REST
//! API, the server functions and the components alike.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One AWS account the deployer deploys into, in promotion order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Environment {
    pub name: String,
    pub account_id: String,
    pub region: String,
    /// Updates here wait for a person to approve their change set.
    #[serde(default)]
    pub protected: bool,
    /// …and that person may not be the one who asked.
    #[serde(default)]
    pub require_another_approver: bool,
}

/// Something with its own builds and its own stacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Project {
    pub name: String,
    pub title: String,
    /// Where the build server writes this project's deploy configs, e.g. `s3://bucket/prefix/web/`.
    pub artifacts_url: String,
    /// The environments this project deploys to, in promotion order.
    pub environments: Vec<String>,
    /// The stack in each environment (environment → stack name): a page names the stack before
    /// AWS has answered for it.
    #[serde(default)]
    pub stacks: std::collections::BTreeMap<String, String>,
    /// Found as a folder of the artifacts bucket, not named in the config (its defaults: every
    /// environment, stacks `<ENV>-<PROJECT>`).
    #[serde(default)]
    pub discovered: bool,
    /// Why this folder of the bucket cannot be a project (e.g. characters a stack name cannot
    /// hold); `None` for a project. Such a folder is listed, never silently dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What every page needs before anything else: the configured environments and projects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Overview {
    pub environments: Vec<Environment>,
    pub projects: Vec<Project>,
    /// Who is looking, and what they may do (the page disables the rest, and says why).
    pub me: crate::auth::Me,
    /// To admins only: the config file was changed and refused (why); the running config stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_refused: Option<String>,
}

impl Project {
    /// The project's stack in `environment` (`<ENV>-<PROJECT>` unless the config says otherwise).
    pub fn stack_name(&self, environment: &str) -> String {
        self.stacks
            .get(environment)
            .cloned()
            .unwrap_or_else(|| format!("{environment}-{}", self.name).to_uppercase())
    }
}

impl Overview {
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }
}

/// One build's deploy config: a folder `<project>-<branch>-<number>` in the artifacts bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Build {
    /// The folder name, e.g. `web-feature-login-42`.
    pub id: String,
    pub project: String,
    /// `None` when the folder name does not parse.
    pub branch: Option<String>,
    /// `None` when the folder name does not parse.
    pub number: Option<u64>,
    /// When the build's newest file was written.
    pub created_at: DateTime<Utc>,
    pub deployable: bool,
    /// Why the build cannot be deployed, when it cannot.
    pub problem: Option<String>,
}

/// A list of builds, with the server's clock so that "2 hours ago" renders the same on both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BuildList {
    pub now: DateTime<Utc>,
    pub builds: Vec<Build>,
}

/// CloudFormation's stack status, kept as the enum AWS documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StackStatus {
    CreateInProgress,
    CreateFailed,
    CreateComplete,
    RollbackInProgress,
    RollbackFailed,
    RollbackComplete,
    DeleteInProgress,
    DeleteFailed,
    DeleteComplete,
    UpdateInProgress,
    UpdateCompleteCleanupInProgress,
    UpdateComplete,
    UpdateFailed,
    UpdateRollbackInProgress,
    UpdateRollbackFailed,
    UpdateRollbackCompleteCleanupInProgress,
    UpdateRollbackComplete,
    ReviewInProgress,
    ImportInProgress,
    ImportComplete,
    ImportRollbackInProgress,
    ImportRollbackFailed,
    ImportRollbackComplete,
    /// A status this version of the deployer does not know yet.
    #[serde(other)]
    Unknown,
}

/// How a status reads at a glance: the colour family of the badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StatusTone {
    Complete,
    InProgress,
    Failed,
    RolledBack,
    NotDeployed,
}

impl StatusTone {
    pub fn css_class(self) -> &'static str {
        match self {
            StatusTone::Complete => "tone-complete",
            StatusTone::InProgress => "tone-progress",
            StatusTone::Failed => "tone-failed",
            StatusTone::RolledBack => "tone-rolledback",
            StatusTone::NotDeployed => "tone-none",
        }
    }
}

impl StackStatus {
    /// Every status, in AWS's documented order; used to parse AWS's strings.
    pub const ALL: [StackStatus; 23] = [
        StackStatus::CreateInProgress,
        StackStatus::CreateFailed,
        StackStatus::CreateComplete,
        StackStatus::RollbackInProgress,
        StackStatus::RollbackFailed,
        StackStatus::RollbackComplete,
        StackStatus::DeleteInProgress,
        StackStatus::DeleteFailed,
        StackStatus::DeleteComplete,
        StackStatus::UpdateInProgress,
        StackStatus::UpdateCompleteCleanupInProgress,
        StackStatus::UpdateComplete,
        StackStatus::UpdateFailed,
        StackStatus::UpdateRollbackInProgress,
        StackStatus::UpdateRollbackFailed,
        StackStatus::UpdateRollbackCompleteCleanupInProgress,
        StackStatus::UpdateRollbackComplete,
        StackStatus::ReviewInProgress,
        StackStatus::ImportInProgress,
        StackStatus::ImportComplete,
        StackStatus::ImportRollbackInProgress,
        StackStatus::ImportRollbackFailed,
        StackStatus::ImportRollbackComplete,
    ];

    /// AWS's spelling, e.g. `UPDATE_ROLLBACK_COMPLETE`.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            StackStatus::CreateInProgress => "CREATE_IN_PROGRESS",
            StackStatus::CreateFailed => "CREATE_FAILED",
            StackStatus::CreateComplete => "CREATE_COMPLETE",
            StackStatus::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            StackStatus::RollbackFailed => "ROLLBACK_FAILED",
            StackStatus::RollbackComplete => "ROLLBACK_COMPLETE",
            StackStatus::DeleteInProgress => "DELETE_IN_PROGRESS",
            StackStatus::DeleteFailed => "DELETE_FAILED",
            StackStatus::DeleteComplete => "DELETE_COMPLETE",
            StackStatus::UpdateInProgress => "UPDATE_IN_PROGRESS",
            StackStatus::UpdateCompleteCleanupInProgress => "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            StackStatus::UpdateComplete => "UPDATE_COMPLETE",
            StackStatus::UpdateFailed => "UPDATE_FAILED",
            StackStatus::UpdateRollbackInProgress => "UPDATE_ROLLBACK_IN_PROGRESS",
            StackStatus::UpdateRollbackFailed => "UPDATE_ROLLBACK_FAILED",
            StackStatus::UpdateRollbackCompleteCleanupInProgress => {
                "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            }
            StackStatus::UpdateRollbackComplete => "UPDATE_ROLLBACK_COMPLETE",
            StackStatus::ReviewInProgress => "REVIEW_IN_PROGRESS",
            StackStatus::ImportInProgress => "IMPORT_IN_PROGRESS",
            StackStatus::ImportComplete => "IMPORT_COMPLETE",
            StackStatus::ImportRollbackInProgress => "IMPORT_ROLLBACK_IN_PROGRESS",
            StackStatus::ImportRollbackFailed => "IMPORT_ROLLBACK_FAILED",
            StackStatus::ImportRollbackComplete => "IMPORT_ROLLBACK_COMPLETE",
            StackStatus::Unknown => "UNKNOWN",
        }
    }

    /// Parses AWS's spelling; anything new becomes `Unknown` rather than an error.
    pub fn from_aws_str(s: &str) -> StackStatus {
        Self::ALL
            .into_iter()
            .find(|status| status.as_aws_str() == s)
            .unwrap_or(StackStatus::Unknown)
    }

    pub fn is_in_progress(self) -> bool {
        self.as_aws_str().ends_with("_IN_PROGRESS")
    }

    /// A stack whose first create failed (`ROLLBACK_FAILED`: and so did the rollback that
    /// deletes what it made): it cannot be updated, only deleted and created again.
    pub fn needs_recreate(self) -> bool {
        matches!(
            self,
            StackStatus::RollbackComplete | StackStatus::CreateFailed | StackStatus::RollbackFailed
        )
    }

    pub fn tone(self) -> StatusTone {
        use StackStatus::*;
        match self {
            CreateComplete | UpdateComplete | ImportComplete => StatusTone::Complete,
            RollbackComplete | UpdateRollbackComplete | ImportRollbackComplete => {
                StatusTone::RolledBack
            }
            CreateFailed | RollbackFailed | DeleteFailed | UpdateFailed | UpdateRollbackFailed
            | ImportRollbackFailed | Unknown => StatusTone::Failed,
            DeleteComplete => StatusTone::NotDeployed,
            s if s.is_in_progress() => StatusTone::InProgress,
            _ => StatusTone::Failed,
        }
    }

    /// Human words for the badge, e.g. "update complete".
    pub fn label(self) -> String {
        self.as_aws_str().replace('_', " ").to_lowercase()
    }
}

/// One output of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StackOutput {
    pub key: String,
    pub value: String,
    pub export_name: Option<String>,
    pub description: Option<String>,
}

/// One parameter of a stack. NoEcho values are never sent: `value` is `None` and `no_echo` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StackParameter {
    pub key: String,
    pub value: Option<String>,
    pub no_echo: bool,
}

/// The state of one project's stack in one environment, as a card shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StackCard {
    pub environment: String,
    pub name: String,
    pub exists: bool,
    /// `None` when the stack does not exist.
    pub status: Option<StackStatus>,
    pub status_reason: Option<String>,
    /// The build id the deployer tagged the stack with (`deployer:build`).
    pub build: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub outputs: Vec<StackOutput>,
    pub parameters: Vec<StackParameter>,
    /// In `UPDATE_ROLLBACK_FAILED`: the resources CloudFormation could not roll back, which
    /// ContinueUpdateRollback may be told to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_resources: Vec<FailedResource>,
    /// The stack was changed, or is being changed, by something other than the deployer: how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
}

/// A resource of a stack in a failed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FailedResource {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/projects/{project}/stacks/{environment}/continue-rollback`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ContinueRollback {
    /// Failed resources CloudFormation should leave as they are (and mark rolled back).
    #[serde(default)]
    pub skip: Vec<String>,
}

impl StackCard {
    pub fn tone(&self) -> StatusTone {
        self.status
            .map_or(StatusTone::NotDeployed, StackStatus::tone)
    }

    pub fn status_label(&self) -> String {
        self.status
            .map_or_else(|| "not deployed".to_owned(), StackStatus::label)
    }
}

/// A stack card with the server's clock, for relative times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StackView {
    pub now: DateTime<Utc>,
    pub card: StackCard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_aws_spelling() {
        for status in StackStatus::ALL {
            assert_eq!(StackStatus::from_aws_str(status.as_aws_str()), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_aws_str()));
        }
    }

    #[test]
    fn statuses_read_at_a_glance() {
        assert_eq!(StackStatus::UpdateComplete.tone(), StatusTone::Complete);
        assert_eq!(
            StackStatus::UpdateRollbackComplete.tone(),
            StatusTone::RolledBack
        );
        assert_eq!(StackStatus::CreateInProgress.tone(), StatusTone::InProgress);
        assert_eq!(StackStatus::UpdateRollbackFailed.tone(), StatusTone::Failed);
        assert_eq!(
            StackStatus::from_aws_str("SOMETHING_NEW"),
            StackStatus::Unknown
        );
        assert_eq!(StackStatus::UpdateComplete.label(), "update complete");
    }
}

/// One project across its environments, in promotion order: `GET /api/v1/promotion`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Promotion {
    pub project: String,
    pub title: String,
    pub environments: Vec<PromotionCell>,
}

/// A project's stack in one environment, as the matrix shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromotionCell {
    pub environment: String,
    /// The build deployed there; `None` when the stack does not exist (or its build is unknown).
    pub build: Option<String>,
    /// The stack's status; `None` when it does not exist.
    pub status: Option<StackStatus>,
    pub tone: StatusTone,
    pub updated_at: Option<DateTime<Utc>>,
    /// How many newer builds of the same branch the environment before this one runs; `None`
    /// for the first environment, when either runs nothing, or when their branches differ.
    pub behind: Option<u64>,
    /// The environment before this one in the project's promotion order.
    pub previous: Option<String>,
    /// What "Promote" here would deploy (the build the previous environment runs), when that
    /// differs from what runs here.
    pub promote: Option<String>,
    /// Why the stack could not be read (its account unreachable, access denied): what runs
    /// there is unknown, and `build`, `status`, `behind` and `promote` say nothing. `None` when
    /// it was read.
    #[serde(default)]
    pub unknown: Option<String>,
}

/// The answer of `GET /api/v1/promotion`, with the server's clock for relative times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromotionMatrix {
    pub now: DateTime<Utc>,
    pub projects: Vec<Promotion>,
}

/// The body of `POST /api/v1/projects/{project}/promote`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    pub environment: String,
}

/// `POST /api/v1/projects/{project}/preview`: what deploying this build to this environment
/// would change (a change set made in that account and deleted; the deploy right is needed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreviewRequest {
    pub environment: String,
    pub build: String,
}

/// `GET /api/v1/projects/{project}/rollback?environment=…`: what rolling back (or deploying an
/// older build) would run into, before the click.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RollbackVerdict {
    /// The build checked: the one deployed before the current one, unless one was named.
    pub build: String,
    /// `safe` or `warnings`.
    pub verdict: String,
    pub warnings: Vec<VerdictWarning>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VerdictWarning {
    /// `missing_import`, `export_in_use`, `missing_parameter`, `not_deployable`, `unchecked`.
    pub kind: String,
    pub message: String,
}

/// One resource change of a preview (`GET /api/v1/projects/{project}/preview`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreviewChange {
    /// `Add`, `Modify`, `Remove`, … as CloudFormation says.
    pub action: String,
    pub logical_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    /// `True`, `False` or `Conditional`, where CloudFormation says.
    pub replacement: Option<String>,
    /// Whether users would notice or data could be lost: a database, bucket, table, volume, file
    /// system or cache replaced (or conditionally replaced) or removed, or an instance with no
    /// Auto Scaling group around it.
    pub interrupts: bool,
}

/// `GET /api/v1/webhooks` (admins): where announcements go, and how their deliveries went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhooksView {
    pub webhooks: Vec<WebhookView>,
    /// Newest first.
    pub deliveries: Vec<WebhookDelivery>,
}

/// A configured webhook, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookView {
    pub name: String,
    /// Scheme and host only: the rest of a webhook's URL is often its secret.
    pub url: String,
    /// Empty: every project.
    pub projects: Vec<String>,
    /// Empty: every environment.
    pub environments: Vec<String>,
    pub events: Vec<String>,
    /// `slack` or `json`.
    pub format: String,
}

/// One announcement to one webhook, as kept in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook: String,
    /// `started`, `succeeded`, `failed`, `refused`, `cancelled`, `paused`, `resumed`.
    pub event: String,
    /// The audit entry it announces.
    pub audit_id: Option<i64>,
    /// The JSON sent (it carries no secret).
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    /// When it is (or was) next tried.
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}
