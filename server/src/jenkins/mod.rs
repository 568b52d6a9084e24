//! The Jenkins builds panel's one poller: reads each configured job's JSON every few seconds (a
//! timeout per call, backoff while Jenkins is away), keeps what the panel shows, pushes it to
//! every viewer as `event: jenkins` — one poller however many viewers — and, when a build of a
//! project finishes, has that project's deploy configs re-listed at once.

pub mod parse;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::deployment::LiveEvent;
use app::jenkins::{JenkinsBuilds, JenkinsState};
use chrono::Utc;

use crate::builds_watch::BuildsWatch;
use crate::config::jenkins::{Jenkins as JenkinsConfig, Job};
use crate::live::Hub;
use parse::Seen;

/// How long a finished build stays in the panel.
pub const FINISHED_FOR: chrono::Duration = chrono::Duration::minutes(10);
/// The longest wait between tries while Jenkins is away.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one call to Jenkins may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a poll failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollError {
    Unreachable(String),
    Unauthorized(String),
}

/// The last poll: Jenkins' state, why (when not ok), when it last answered, what it said.
type Polled = (
    JenkinsState,
    Option<String>,
    Option<chrono::DateTime<Utc>>,
    Vec<Seen>,
);

/// What the panel shows, kept between polls.
pub struct Panel {
    config: Option<JenkinsConfig>,
    state: RwLock<Polled>,
}

impl Panel {
    pub fn new(config: Option<JenkinsConfig>) -> Arc<Panel> {
        Arc::new(Panel {
            config,
            state: RwLock::new((JenkinsState::Starting, None, None, Vec::new())),
        })
    }

    /// The panel now: running builds oldest first (queued ones after), finished ones of the
    /// last minutes newest first.
    pub fn builds(&self) -> JenkinsBuilds {
        let Some(config) = &self.config else {
            return JenkinsBuilds::not_configured();
        };
        let now = Utc::now();
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (kind, message, checked_at, seen) = &*state;
        let mut running: Vec<_> = seen
            .iter()
            .filter(|s| s.building || s.queued)
            .map(|s| s.view(now))
            .collect();
        running.sort_by_key(|b| (b.queued, b.started_at));
        let mut finished: Vec<_> = seen
            .iter()
            .filter(|s| s.finished_at().is_some_and(|f| now - f < FINISHED_FOR))
            .map(|s| s.view(now))
            .collect();
        finished.sort_by_key(|b| std::cmp::Reverse(b.finished_at));
        JenkinsBuilds {
            state: *kind,
            message: message.clone(),
            url: Some(config.url.clone()),
            checked_at: *checked_at,
            running,
            finished,
            now,
        }
    }

    fn record(&self, result: &Result<Vec<Seen>, PollError>) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(seen) => {
                *state = (JenkinsState::Ok, None, Some(Utc::now()), seen.clone());
            }
            // What was last seen stays (marked by the state), rather than an empty panel.
            Err(PollError::Unreachable(m)) => {
                state.0 = JenkinsState::Unreachable;
                state.1 = Some(m.clone());
            }
            Err(PollError::Unauthorized(m)) => {
                state.0 = JenkinsState::Unauthorized;
                state.1 = Some(m.clone());
            }
        }
    }
}

/// Starts the poller when Jenkins is configured.
pub fn spawn(panel: Arc<Panel>, watch: Arc<BuildsWatch>, hub: Arc<Hub>) {
    let Some(config) = panel.config.clone() else {
        return;
    };
    tokio::spawn(async move {
        let poller = Poller::new(config);
        let mut building: HashSet<(String, String, u64)> = HashSet::new();
        let mut first = true;
        let mut wait = poller.config.poll_interval;
        let mut last_error: Option<PollError> = None;
        let mut published: Option<String> = None;
        loop {
            let result = poller.poll().await;
            panel.record(&result);
            match &result {
                Ok(seen) => {
                    if last_error.take().is_some() {
                        tracing::info!("Jenkins answers again");
                    }
                    wait = poller.config.poll_interval;
                    // A build that was running and is now finished: its artifacts are its last
                    // step, so its project's deploy configs are re-listed at once.
                    let now_building: HashSet<_> =
                        seen.iter().filter(|s| s.building).map(Seen::key).collect();
                    let finished: HashSet<String> = seen
                        .iter()
                        .filter(|s| {
                            !first && s.finished_at().is_some() && building.contains(&s.key())
                        })
                        .map(|s| s.project.clone())
                        .collect();
                    building = now_building;
                    first = false;
                    for project in finished {
                        watch.refresh_now(&project).await;
                    }
                }
                Err(e) => {
                    if last_error.as_ref() != Some(e) {
                        tracing::warn!(error = ?e, "Jenkins: {}", match e {
                            PollError::Unreachable(m) | PollError::Unauthorized(m) => m,
                        });
                    }
                    last_error = Some(e.clone());
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
            // Pushed when something a viewer sees changed (a build started, finished, was
            // queued; Jenkins' state) — progress moves on each page's own clock, so an
            // unchanged panel costs no event.
            let builds = panel.builds();
            let signature = signature(&builds);
            if published.as_ref() != Some(&signature) {
                hub.publish(LiveEvent::Jenkins(builds));
                published = Some(signature);
            }
            tokio::time::sleep(wait).await;
        }
    });
}

struct Poller {
    config: JenkinsConfig,
    http: reqwest::Client,
}

impl Poller {
    fn new(config: JenkinsConfig) -> Poller {
        Poller {
            config,
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client with a timeout builds"),
        }
    }

    async fn poll(&self) -> Result<Vec<Seen>, PollError> {
        let mut seen = Vec::new();
        for job in &self.config.jobs {
            seen.extend(self.job(job).await?);
        }
        Ok(seen)
    }

    async fn job(&self, job: &Job) -> Result<Vec<Seen>, PollError> {
        let url = job_api_url(&self.config.url, &job.path);
        let mut request = self.http.get(&url).query(&[("tree", parse::TREE)]);
        if let (Some(user), Some(token)) = (&self.config.user, &self.config.token) {
            request = request.basic_auth(user, Some(token));
        }
        let response = request.send().await.map_err(|e| {
            PollError::Unreachable(format!(
                "Jenkins at {} could not be reached: {}",
                self.config.url,
                reason(&e)
            ))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(PollError::Unauthorized(format!(
                "Jenkins answered {} for {}: check jenkins.user and the token in {}",
                status.as_u16(),
                job.path,
                self.config
                    .token_env
                    .as_deref()
                    .unwrap_or("jenkins.token_env (none set)")
            )));
        }
        if !status.is_success() {
            return Err(PollError::Unreachable(format!(
                "Jenkins answered {} for the job {}",
                status.as_u16(),
                job.path
            )));
        }
        let json: serde_json::Value = response.json().await.map_err(|e| {
            PollError::Unreachable(format!(
                "Jenkins' answer for {} was not JSON: {}",
                job.path,
                reason(&e)
            ))
        })?;
        parse::job(job, &json).map_err(PollError::Unreachable)
    }
}

/// What a viewer would see change: the state, and each build's identity and phase.
fn signature(builds: &JenkinsBuilds) -> String {
    let mut text = format!("{:?}|{:?}", builds.state, builds.message);
    for b in builds.running.iter().chain(&builds.finished) {
        text.push_str(&format!(
            "|{}/{}/{}:{}{}{:?}{}",
            b.project, b.branch, b.number, b.building, b.queued, b.result, b.estimated_duration_ms
        ));
    }
    text
}

/// `infra/network` → `<base>/job/infra/job/network/api/json`.
pub fn job_api_url(base: &str, path: &str) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    for segment in path.split('/') {
        url.push_str("/job/");
        url.push_str(&segment.replace('%', "%25").replace(' ', "%20"));
    }
    url.push_str("/api/json");
    url
}

fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", CALL_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_paths_become_job_segments() {
        assert_eq!(
            job_api_url("https://ci.example.com/", "infra/network"),
            "https://ci.example.com/job/infra/job/network/api/json"
        );
    }
}
