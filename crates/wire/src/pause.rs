//! Wire types of the pause (the global stop) and the audit trail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One pause: of every environment (`environment: None`) or of one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Pause {
    pub environment: Option<String>,
    pub reason: String,
    pub actor: String,
    pub since: DateTime<Utc>,
}

/// `GET /api/v1/pause`: whether anything is paused, and by whom, why and since when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PauseStatus {
    pub paused: bool,
    /// Of the widest pause (all environments first, else the oldest).
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Whether every environment is paused.
    pub all: bool,
    /// The environments where deployments are refused now.
    pub environments: Vec<String>,
    pub pauses: Vec<Pause>,
}

impl PauseStatus {
    /// The pause that stops deployments to `environment`, if any.
    pub fn blocking(&self, environment: &str) -> Option<&Pause> {
        self.pauses
            .iter()
            .find(|p| p.environment.is_none())
            .or_else(|| {
                self.pauses
                    .iter()
                    .find(|p| p.environment.as_deref() == Some(environment))
            })
    }
}

impl Pause {
    /// "Deployments to all environments are paused by alice since 2026-11-26 15:00 UTC: reason"
    pub fn explain(&self) -> String {
        let scope = match &self.environment {
            None => "all environments".to_owned(),
            Some(env) => env.clone(),
        };
        format!(
            "Deployments to {scope} are paused by {} since {}: {}",
            self.actor,
            self.since.format("%Y-%m-%d %H:%M UTC"),
            self.reason
        )
    }
}

/// The body of `PUT /api/v1/pause`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: String,
    #[serde(default)]
    pub environment: Option<String>,
    /// Also cancel the updates already executing in scope (CloudFormation cannot freeze them).
    #[serde(default)]
    pub cancel_in_flight: bool,
}

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    DeployRequested,
    /// A deploy of a build the stack ran before: `rollback` on the wire, in filters and in the
    /// store alike (`rollback_requested`, which the API once answered, is still understood).
    #[serde(rename = "rollback", alias = "rollback_requested")]
    RollbackRequested,
    DeployRefused,
    DeployFinished,
    Cancel,
    Pause,
    Unpause,
    /// An admin created an API token (its name and role; never its secret).
    TokenCreated,
    TokenRevoked,
    /// A person logged in with single sign-on.
    Login,
    /// A deployment waiting in a protected environment was approved, or discarded.
    Approve,
    Discard,
    /// ContinueUpdateRollback asked for a stack stuck in UPDATE_ROLLBACK_FAILED.
    ContinueRollback,
    /// The config file changed (or SIGHUP) and the new config is running (what changed).
    ConfigReloaded,
    /// The config file changed and was refused as a whole (why); the running config stays.
    ConfigRefused,
    /// An admin ended a person's sessions (whose, and how many): they log in again, with the
    /// groups the identity provider gives them now.
    SessionsEnded,
}

impl AuditAction {
    pub const ALL: [AuditAction; 16] = [
        AuditAction::DeployRequested,
        AuditAction::RollbackRequested,
        AuditAction::DeployRefused,
        AuditAction::DeployFinished,
        AuditAction::Cancel,
        AuditAction::Pause,
        AuditAction::Unpause,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::Login,
        AuditAction::Approve,
        AuditAction::Discard,
        AuditAction::ContinueRollback,
        AuditAction::ConfigReloaded,
        AuditAction::ConfigRefused,
        AuditAction::SessionsEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::DeployRequested => "deploy_requested",
            AuditAction::RollbackRequested => "rollback",
            AuditAction::DeployRefused => "deploy_refused",
            AuditAction::DeployFinished => "deploy_finished",
            AuditAction::Cancel => "cancel",
            AuditAction::Pause => "pause",
            AuditAction::Unpause => "unpause",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::Login => "login",
            AuditAction::Approve => "approve",
            AuditAction::Discard => "discard",
            AuditAction::ContinueRollback => "continue_rollback",
            AuditAction::ConfigReloaded => "config_reloaded",
            AuditAction::ConfigRefused => "config_refused",
            AuditAction::SessionsEnded => "sessions_ended",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        if s == "rollback_requested" {
            return Some(AuditAction::RollbackRequested);
        }
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: AuditAction,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub build: Option<String>,
    pub deployment_id: Option<String>,
    /// The reason or the outcome, in words.
    pub detail: Option<String>,
    /// Why (a pause, a refusal, a cancel): `detail` for those actions.
    pub reason: Option<String>,
    /// How a deployment ended (`succeeded`, `failed`, …) for `deploy_finished`.
    pub outcome: Option<String>,
}

/// Filters and paging of the audit trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditQuery {
    pub environment: Option<String>,
    pub project: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// Entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    pub limit: Option<u32>,
}
