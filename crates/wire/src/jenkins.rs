//! The Jenkins builds panel: builds in progress (and just finished) as the deployer's one poller
//! last saw them, and the state of Jenkins itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the poller last found Jenkins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JenkinsState {
    /// No `[jenkins]` in the config: the panel says so and nothing else changes.
    NotConfigured,
    /// Not polled yet.
    Starting,
    Ok,
    /// Could not be reached (refused, timed out, 5xx): retried with backoff.
    Unreachable,
    /// Answered 401 or 403: the user or token is wrong, or lacks read access.
    Unauthorized,
}

/// One Jenkins build of a configured project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JenkinsBuild {
    pub project: String,
    pub branch: String,
    pub number: u64,
    /// The build's page in Jenkins.
    pub url: String,
    pub started_at: DateTime<Utc>,
    /// Jenkins' estimate (from the job's last runs); 0 when it has none.
    pub estimated_duration_ms: u64,
    /// Elapsed / estimated, 0.0–1.0 (1.0 once over the estimate: see `over_estimate_ms`).
    pub progress: f64,
    /// How far past its estimate a running build is; 0 within it.
    pub over_estimate_ms: u64,
    pub building: bool,
    /// Waiting in Jenkins' queue for an executor (not started: no progress yet).
    pub queued: bool,
    /// Jenkins' result once finished: SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_BUILT.
    pub result: Option<String>,
    pub duration_ms: Option<u64>,
    /// When the deployer saw it finish.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A configured job that did not answer the last poll, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JenkinsJobFailure {
    /// The job's path in Jenkins (`infra/network`), as configured.
    pub job: String,
    /// The project it builds.
    pub project: String,
    /// `unreachable` or `unauthorized`.
    pub state: JenkinsState,
    /// Why (e.g. "Jenkins answered 500 for the job infra/network").
    pub message: String,
}

/// `GET /api/v1/jenkins/builds`, and the data of `event: jenkins`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JenkinsBuilds {
    pub state: JenkinsState,
    /// Why, when not ok (e.g. "Jenkins answered 401: check the user and token"). `ok` when at
    /// least one job answered; the jobs that did not are in `failing`.
    pub message: Option<String>,
    /// The Jenkins base URL (for links), when configured.
    pub url: Option<String>,
    /// When the poller last heard from Jenkins.
    pub checked_at: Option<DateTime<Utc>>,
    /// Running builds, oldest first.
    pub running: Vec<JenkinsBuild>,
    /// Builds seen finishing in the last minutes, newest first.
    pub finished: Vec<JenkinsBuild>,
    /// The configured jobs whose last poll failed, in the config's order: each job is polled on
    /// its own, so the others' builds are still listed (a failing job's last seen ones stay).
    #[serde(default)]
    pub failing: Vec<JenkinsJobFailure>,
    /// When this answer was made (the page's clock for elapsed times).
    pub now: DateTime<Utc>,
}

impl JenkinsBuilds {
    pub fn not_configured() -> JenkinsBuilds {
        JenkinsBuilds {
            state: JenkinsState::NotConfigured,
            message: Some("Jenkins not configured".to_owned()),
            url: None,
            checked_at: None,
            running: Vec::new(),
            finished: Vec::new(),
            failing: Vec::new(),
            now: Utc::now(),
        }
    }
}

/// `event: builds`: a project's build list changed (new deploy configs landed in S3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BuildsChanged {
    pub project: String,
    /// The new builds' ids.
    pub added: Vec<String>,
    /// How many builds the project has now.
    pub count: usize,
}
