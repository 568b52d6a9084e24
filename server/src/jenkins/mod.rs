//! The Jenkins builds panel's one poller: reads each configured job's JSON every few seconds, all
//! at once and each on its own (a timeout per call, backoff per job while it fails, so one job
//! away costs only its own builds), keeps what the panel shows, pushes it to
//! every viewer as `event: jenkins` — one poller however many viewers — and, when a build of a
//! project finishes, has that project's deploy configs re-listed at once.

pub mod parse;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::deployment::LiveEvent;
use app::jenkins::{JenkinsBuilds, JenkinsJobFailure, JenkinsState};
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

/// Why a job's poll failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollError {
    Unreachable(String),
    Unauthorized(String),
}

impl PollError {
    fn state(&self) -> JenkinsState {
        match self {
            PollError::Unreachable(_) => JenkinsState::Unreachable,
            PollError::Unauthorized(_) => JenkinsState::Unauthorized,
        }
    }

    fn message(&self) -> &str {
        match self {
            PollError::Unreachable(m) | PollError::Unauthorized(m) => m,
        }
    }
}

/// One configured job as last polled: what it last answered — kept while it fails (marked by
/// the error), rather than an empty panel — and why its last poll failed.
#[derive(Clone, Debug, Default)]
struct JobPolled {
    seen: Vec<Seen>,
    error: Option<PollError>,
}

/// The polls so far: one entry per configured job (in the config's order) once polled, and when
/// some job last answered.
#[derive(Default)]
struct Polled {
    jobs: Option<Vec<JobPolled>>,
    checked_at: Option<chrono::DateTime<Utc>>,
}

/// What the panel shows, kept between polls.
pub struct Panel {
    config: Option<JenkinsConfig>,
    state: RwLock<Polled>,
}

impl Panel {
    pub fn new(config: Option<JenkinsConfig>) -> Arc<Panel> {
        Arc::new(Panel {
            config,
            state: RwLock::new(Polled::default()),
        })
    }

    /// The panel now: running builds oldest first (queued ones after), finished ones of the
    /// last minutes newest first, and the jobs that did not answer. Jenkins is `ok` while any
    /// job answers; when none does, the state and message are the first job's.
    pub fn builds(&self) -> JenkinsBuilds {
        let Some(config) = &self.config else {
            return JenkinsBuilds::not_configured();
        };
        let now = Utc::now();
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let jobs = state.jobs.as_deref().unwrap_or_default();
        let failing: Vec<JenkinsJobFailure> = config
            .jobs
            .iter()
            .zip(jobs)
            .filter_map(|(job, polled)| {
                polled.error.as_ref().map(|e| JenkinsJobFailure {
                    job: job.path.clone(),
                    project: job.project.clone(),
                    state: e.state(),
                    message: e.message().to_owned(),
                })
            })
            .collect();
        let (kind, message) = match &state.jobs {
            None => (JenkinsState::Starting, None),
            Some(jobs) if !jobs.is_empty() && failing.len() == jobs.len() => {
                (failing[0].state, Some(failing[0].message.clone()))
            }
            Some(_) => (JenkinsState::Ok, None),
        };
        let seen = || jobs.iter().flat_map(|j| &j.seen);
        let mut running: Vec<_> = seen()
            .filter(|s| s.building || s.queued)
            .map(|s| s.view(now))
            .collect();
        running.sort_by_key(|b| (b.queued, b.started_at));
        let mut finished: Vec<_> = seen()
            .filter(|s| s.finished_at().is_some_and(|f| now - f < FINISHED_FOR))
            .map(|s| s.view(now))
            .collect();
        finished.sort_by_key(|b| std::cmp::Reverse(b.finished_at));
        JenkinsBuilds {
            state: kind,
            message,
            url: Some(config.url.clone()),
            checked_at: state.checked_at,
            running,
            finished,
            failing,
            now,
        }
    }

    /// Every build last seen, of the jobs that answered and (as last seen) of those that did not.
    fn seen(&self) -> Vec<Seen> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let jobs = state.jobs.as_deref().unwrap_or_default();
        jobs.iter().flat_map(|j| j.seen.clone()).collect()
    }

    /// One poll's answers, one per configured job (`None`: not asked this time, still backing
    /// off).
    fn record(&self, results: &[Option<Result<Vec<Seen>, PollError>>]) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut jobs = state
            .jobs
            .take()
            .unwrap_or_else(|| vec![JobPolled::default(); results.len()]);
        for (polled, result) in jobs.iter_mut().zip(results) {
            match result {
                Some(Ok(seen)) => {
                    *polled = JobPolled {
                        seen: seen.clone(),
                        error: None,
                    };
                    state.checked_at = Some(Utc::now());
                }
                Some(Err(e)) => polled.error = Some(e.clone()),
                None => {}
            }
        }
        state.jobs = Some(jobs);
    }
}

/// When a job is asked next: at every poll while it answers, backing off while it fails.
#[derive(Clone, Copy)]
struct Turn {
    wait: Duration,
    next: tokio::time::Instant,
}

/// Starts the poller when Jenkins is configured.
pub fn spawn(panel: Arc<Panel>, watch: Arc<BuildsWatch>, hub: Arc<Hub>) {
    let Some(config) = panel.config.clone() else {
        return;
    };
    tokio::spawn(async move {
        let poller = Poller::new(config);
        let interval = poller.config.poll_interval;
        let jobs = &poller.config.jobs;
        let mut building: HashSet<(String, String, u64)> = HashSet::new();
        let mut first = true;
        let mut turns = vec![
            Turn {
                wait: interval,
                next: tokio::time::Instant::now(),
            };
            jobs.len()
        ];
        let mut last_errors: Vec<Option<PollError>> = vec![None; jobs.len()];
        let mut published: Option<String> = None;
        loop {
            let now = tokio::time::Instant::now();
            let due: Vec<bool> = turns.iter().map(|t| t.next <= now).collect();
            let results = poller.poll(&due).await;
            panel.record(&results);
            let answered = results.iter().any(|r| matches!(r, Some(Ok(_))));
            for (i, result) in results.iter().enumerate() {
                let Some(result) = result else { continue };
                let job = &jobs[i].path;
                let wait = match result {
                    Ok(_) => {
                        if last_errors[i].take().is_some() {
                            tracing::info!(job, "Jenkins answers again");
                        }
                        turns[i].wait = interval;
                        interval
                    }
                    Err(e) => {
                        if last_errors[i].as_ref() != Some(e) {
                            tracing::warn!(job, error = ?e, "Jenkins: {}", e.message());
                        }
                        last_errors[i] = Some(e.clone());
                        turns[i].wait = (turns[i].wait * 2).min(MAX_BACKOFF);
                        crate::backoff::jitter(turns[i].wait)
                    }
                };
                turns[i].next = tokio::time::Instant::now() + wait;
            }
            if answered {
                // A build that was running and is now finished: its artifacts are its last
                // step, so its project's deploy configs are re-listed at once. (A job that did
                // not answer keeps its last seen builds, so its running ones are not forgotten.)
                let seen = panel.seen();
                let now_building: HashSet<_> =
                    seen.iter().filter(|s| s.building).map(Seen::key).collect();
                let finished: HashSet<String> = seen
                    .iter()
                    .filter(|s| !first && s.finished_at().is_some() && building.contains(&s.key()))
                    .map(|s| s.project.clone())
                    .collect();
                building = now_building;
                first = false;
                for project in finished {
                    watch.refresh_now(&project).await;
                }
            }
            // Pushed when something a viewer sees changed (a build started, finished, was
            // queued; Jenkins' state; a job failing) — progress moves on each page's own clock,
            // so an unchanged panel costs no event.
            let builds = panel.builds();
            let signature = signature(&builds);
            if published.as_ref() != Some(&signature) {
                hub.publish(LiveEvent::Jenkins(builds));
                published = Some(signature);
            }
            // Until the next job is due: a poll interval while any answers, longer while all
            // are backing off.
            let next = turns
                .iter()
                .map(|t| t.next)
                .min()
                .unwrap_or_else(|| tokio::time::Instant::now() + interval);
            tokio::time::sleep_until(next).await;
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

    /// Asks every due job at once, each on its own: one job failing or slow costs only its own
    /// answer. One answer per configured job, in order (`None` for a job not due).
    async fn poll(&self, due: &[bool]) -> Vec<Option<Result<Vec<Seen>, PollError>>> {
        let asks = self
            .config
            .jobs
            .iter()
            .zip(due)
            .map(|(job, due)| async move {
                match due {
                    true => Some(self.job(job).await),
                    false => None,
                }
            });
        futures::future::join_all(asks).await
    }

    async fn job(&self, job: &Job) -> Result<Vec<Seen>, PollError> {
        let url = job_api_url(&self.config.url, &job.path);
        let mut request = self.http.get(&url).query(&[("tree", parse::TREE)]);
        if let (Some(user), Some(token)) = (&self.config.user, &self.config.token) {
            request = request.basic_auth(user, Some(token.expose()));
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
    let mut text = format!(
        "{:?}|{:?}|{:?}",
        builds.state, builds.message, builds.failing
    );
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
