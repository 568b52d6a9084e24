//! Wire types of deployments: one attempt to put one build onto one stack, its steps, its change
//! set and its stack events, and the live events the server pushes over SSE.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::StackCard;

/// Where a deployment stands. `pending` and `running` (and `cancelling`) are active; the rest
/// are outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Pending,
    Running,
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
    /// A pre-flight check failed; the stack was never touched.
    Refused,
    /// In a protected environment: the change set is made and waits for a person to approve or
    /// discard it.
    AwaitingApproval,
}

impl DeploymentStatus {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Running | Self::Cancelling | Self::AwaitingApproval
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Cancelling => "cancelling",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
            Self::AwaitingApproval => "awaiting_approval",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Cancelling,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
            Self::Refused,
            Self::AwaitingApproval,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// The steps of a deployment, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Fetch the template and parameters from S3.
    Fetch,
    /// Parse the parameters and apply the environment's overrides.
    Parameters,
    /// Check them against the template's declared parameters.
    Validate,
    /// Every `Fn::ImportValue` exists in the environment's exports.
    Preflight,
    /// Create the stack, or create and describe an update change set.
    ChangeSet,
    /// In a protected environment: wait for a person to approve the change set (or discard it).
    Approval,
    /// Execute the change set.
    Execute,
    /// Watch the stack until a terminal status.
    Watch,
}

impl StepName {
    pub const ALL: [StepName; 8] = [
        StepName::Fetch,
        StepName::Parameters,
        StepName::Validate,
        StepName::Preflight,
        StepName::ChangeSet,
        StepName::Approval,
        StepName::Execute,
        StepName::Watch,
    ];

    /// The step's name on the wire and in the store (its serde spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Fetch => "fetch",
            StepName::Parameters => "parameters",
            StepName::Validate => "validate",
            StepName::Preflight => "preflight",
            StepName::ChangeSet => "change_set",
            StepName::Approval => "approval",
            StepName::Execute => "execute",
            StepName::Watch => "watch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            StepName::Fetch => "Fetch template and parameters",
            StepName::Parameters => "Read parameters",
            StepName::Validate => "Check parameters against the template",
            StepName::Preflight => "Check exports and imports",
            StepName::ChangeSet => "Prepare changes",
            StepName::Approval => "Wait for approval",
            StepName::Execute => "Execute",
            StepName::Watch => "Watch the stack",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Done,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Step {
    pub name: StepName,
    pub status: StepStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
}

/// Whether the deployment creates the stack or updates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
}

impl Operation {
    pub const ALL: [Operation; 2] = [Operation::Create, Operation::Update];

    /// The operation's name on the wire and in the store (its serde spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One deployment, as listed in history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deployment {
    pub id: String,
    pub project: String,
    pub environment: String,
    pub stack_name: String,
    pub build: String,
    pub status: DeploymentStatus,
    pub operation: Option<Operation>,
    /// The step running now, or the step the deployment ended in.
    pub step: Option<StepName>,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The outcome in words: the refusal, CloudFormation's failure reason, "no changes", …
    pub message: Option<String>,
    /// Whether CloudFormation rolled the stack back.
    pub rolled_back: bool,
    /// AWS is throttling or failing; the deployer is retrying with backoff.
    pub waiting_for_aws: bool,
    /// Why the deployer is waiting for AWS (the failing call and what AWS answered), and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// Since when the deployer has been waiting for AWS (while `waiting_for_aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// Resources in the change (from the change set, or the template for a new stack).
    pub resources_total: Option<u32>,
    /// Resources that reached a final state during the operation.
    pub resources_done: u32,
    /// Set when the deployment went through a protected environment's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Confirmed: a stack whose first create failed is deleted and created again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recreate: bool,
    /// The person who asked (for a token: who made it), when other than `actor` says: four eyes
    /// compare people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// A protected environment's approval of one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Approval {
    /// The person who asked for the deployment may not approve it (the environment's config).
    pub by_another: bool,
    /// What was decided, once someone did.
    pub decision: Option<ApprovalDecision>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Discarded,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Approved => "approved",
            ApprovalDecision::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ApprovalDecision::Approved, ApprovalDecision::Discarded]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

impl Deployment {
    /// A deployment just asked for: pending, nothing done yet. The store sets `started_at`.
    pub fn pending(
        id: String,
        project: &str,
        environment: &str,
        stack_name: &str,
        build: &str,
        actor: &str,
    ) -> Deployment {
        Deployment {
            id,
            project: project.to_owned(),
            environment: environment.to_owned(),
            stack_name: stack_name.to_owned(),
            build: build.to_owned(),
            status: DeploymentStatus::Pending,
            operation: None,
            step: None,
            actor: actor.to_owned(),
            started_at: Utc::now(),
            finished_at: None,
            message: None,
            rolled_back: false,
            waiting_for_aws: false,
            waiting_reason: None,
            waiting_since: None,
            resources_total: None,
            resources_done: 0,
            approval: None,
            recreate: false,
            requested_by: None,
        }
    }

    /// The person who asked for it (the actor's name when nothing else was kept).
    pub fn requester(&self) -> &str {
        self.requested_by.as_deref().unwrap_or(&self.actor)
    }
}

/// What a change set would do to one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import` or `Dynamic`, as AWS reports it.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False` or `Conditional`, where AWS reports it.
    pub replacement: Option<String>,
    /// Users would notice or data could be lost: what holds data (a database, bucket, table,
    /// volume, …) replaced or removed, or an instance with no Auto Scaling group around it.
    #[serde(default)]
    pub interrupts: bool,
}

/// The summary of a change set, kept with the deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChangeSummary {
    pub add: u32,
    pub modify: u32,
    pub remove: u32,
    pub replace: u32,
    pub changes: Vec<ResourceChange>,
}

impl ChangeSummary {
    pub fn from_changes(changes: Vec<ResourceChange>) -> Self {
        let count = |a: &str| changes.iter().filter(|c| c.action == a).count() as u32;
        ChangeSummary {
            add: count("Add"),
            modify: count("Modify"),
            remove: count("Remove"),
            replace: changes
                .iter()
                .filter(|c| matches!(c.replacement.as_deref(), Some("True") | Some("Conditional")))
                .count() as u32,
            changes,
        }
    }
}

/// One CloudFormation stack event of a deployment's operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StackEvent {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// A deployment with everything recorded about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub steps: Vec<Step>,
    pub change_set: Option<ChangeSummary>,
    pub events: Vec<StackEvent>,
}

/// The body of `POST /api/v1/deployments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StartDeployment {
    pub project: String,
    pub environment: String,
    pub build: String,
    /// The stack's first create failed (`ROLLBACK_COMPLETE`): the caller confirms that it is
    /// deleted and created again from this build.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recreate: bool,
}

/// The body of `POST /api/v1/deployments/{id}/cancel` (optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Cancelling a stack being created deletes it; this says the caller knows.
    #[serde(default)]
    pub confirm_delete: bool,
}

/// A deployment changed: its new state and the stack events it gained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentUpdate {
    pub deployment: Deployment,
    pub step: Option<Step>,
    pub new_events: Vec<StackEvent>,
}

/// What `GET /api/v1/events` carries. The SSE `event:` name is the variant's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LiveEvent {
    Deployment(DeploymentUpdate),
    Stack(StackCard),
    /// The pause changed (paused, resumed, or its scope).
    Pause(crate::pause::PauseStatus),
    /// The client missed too much: reload what it shows.
    Snapshot {
        active: Vec<Deployment>,
    },
    /// The Jenkins builds panel changed (a build started, moved on, finished; Jenkins' state).
    Jenkins(crate::jenkins::JenkinsBuilds),
    /// New deploy configs of a project landed in S3.
    Builds(crate::jenkins::BuildsChanged),
    /// The projects changed (a folder appeared in the bucket or left it, or a config reload):
    /// the whole list, as `GET /api/v1/projects` gives it.
    Projects(Vec<crate::model::Project>),
}

impl LiveEvent {
    /// Every event name [`LiveEvent::name`] gives (the API's description lists them).
    pub const NAMES: [&'static str; 7] = [
        "deployment",
        "stack",
        "pause",
        "snapshot",
        "jenkins",
        "builds",
        "projects",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Deployment(_) => "deployment",
            LiveEvent::Stack(_) => "stack",
            LiveEvent::Pause(_) => "pause",
            LiveEvent::Snapshot { .. } => "snapshot",
            LiveEvent::Jenkins(_) => "jenkins",
            LiveEvent::Builds(_) => "builds",
            LiveEvent::Projects(_) => "projects",
        }
    }

    /// The event's data line: the variant's payload as JSON.
    pub fn data(&self) -> String {
        let json = match self {
            LiveEvent::Deployment(update) => serde_json::to_string(update),
            LiveEvent::Stack(card) => serde_json::to_string(card),
            LiveEvent::Pause(status) => serde_json::to_string(status),
            LiveEvent::Snapshot { active } => {
                serde_json::to_string(&serde_json::json!({ "active": active }))
            }
            LiveEvent::Jenkins(builds) => serde_json::to_string(builds),
            LiveEvent::Builds(changed) => serde_json::to_string(changed),
            LiveEvent::Projects(projects) => serde_json::to_string(projects),
        };
        json.unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A stack's recent deployments (newest first) and the newest one in full.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Activity {
    pub history: Vec<Deployment>,
    pub latest: Option<DeploymentDetail>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_spelling<T: Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_enum_is_spelled_one_way_on_the_wire_and_in_the_store() {
        for step in StepName::ALL {
            assert_eq!(step.as_str(), serde_spelling(step));
            assert_eq!(StepName::parse(step.as_str()), Some(step));
        }
        for op in Operation::ALL {
            assert_eq!(op.as_str(), serde_spelling(op));
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        for status in [
            "pending",
            "running",
            "cancelling",
            "succeeded",
            "failed",
            "cancelled",
            "refused",
        ] {
            let parsed = DeploymentStatus::parse(status).unwrap();
            assert_eq!(serde_spelling(parsed), status);
        }
        for action in crate::pause::AuditAction::ALL {
            assert_eq!(action.as_str(), serde_spelling(action));
        }
    }
}
