//! Jenkins' JSON API, read: a plain job's builds, or a multibranch folder's branch jobs and
//! theirs, and a job waiting in the queue. Pure: the poller fetches, this reads.

use app::jenkins::JenkinsBuild;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::config::jenkins::Job;

/// The `tree` asked for: only what the panel shows, the last ten builds of each job.
pub const TREE: &str = "name,url,inQueue,nextBuildNumber,queueItem[inQueueSince,why],\
builds[number,url,building,timestamp,estimatedDuration,duration,result]{0,10},\
jobs[name,url,inQueue,nextBuildNumber,queueItem[inQueueSince,why],\
builds[number,url,building,timestamp,estimatedDuration,duration,result]{0,10}]";

/// A build as Jenkins reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub project: String,
    pub branch: String,
    pub number: u64,
    pub url: String,
    pub building: bool,
    pub queued: bool,
    pub started_at: DateTime<Utc>,
    pub estimated_ms: u64,
    pub duration_ms: u64,
    pub result: Option<String>,
}

impl Seen {
    pub fn key(&self) -> (String, String, u64) {
        (self.project.clone(), self.branch.clone(), self.number)
    }

    /// When it finished, for a finished build.
    pub fn finished_at(&self) -> Option<DateTime<Utc>> {
        (!self.building && !self.queued && self.result.is_some())
            .then(|| self.started_at + chrono::Duration::milliseconds(self.duration_ms as i64))
    }

    /// As the panel shows it at `now`: progress is elapsed over estimated, never past 1.0, and
    /// a build past its estimate says by how much instead of sitting at 99 %.
    pub fn view(&self, now: DateTime<Utc>) -> JenkinsBuild {
        let elapsed = (now - self.started_at).num_milliseconds().max(0) as u64;
        let (progress, over) = if self.queued {
            (0.0, 0)
        } else if !self.building {
            (1.0, 0)
        } else if self.estimated_ms == 0 {
            (0.0, 0)
        } else {
            (
                (elapsed as f64 / self.estimated_ms as f64).min(1.0),
                elapsed.saturating_sub(self.estimated_ms),
            )
        };
        JenkinsBuild {
            project: self.project.clone(),
            branch: self.branch.clone(),
            number: self.number,
            url: self.url.clone(),
            started_at: self.started_at,
            estimated_duration_ms: self.estimated_ms,
            progress,
            over_estimate_ms: over,
            building: self.building,
            queued: self.queued,
            result: self.result.clone(),
            duration_ms: (!self.building && !self.queued).then_some(self.duration_ms),
            finished_at: self.finished_at(),
        }
    }
}

/// Reads one configured job's answer: a plain job's builds (all of its branch), or, for a
/// multibranch folder, each branch job's (the branch is the job's name, URL-decoded).
pub fn job(job: &Job, json: &Value) -> Result<Vec<Seen>, String> {
    let mut seen = Vec::new();
    match &job.branch {
        Some(branch) => read_job(&job.project, branch, json, &mut seen)?,
        None => {
            let jobs = json.get("jobs").and_then(Value::as_array).ok_or_else(|| {
                format!(
                    "{} is not a multibranch folder (no `jobs`); for a plain job name its branch",
                    job.path
                )
            })?;
            for branch_job in jobs {
                let name = branch_job
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("a branch job without a name")?;
                read_job(&job.project, &percent_decode(name), branch_job, &mut seen)?;
            }
        }
    }
    Ok(seen)
}

fn read_job(project: &str, branch: &str, json: &Value, seen: &mut Vec<Seen>) -> Result<(), String> {
    let builds = json.get("builds").and_then(Value::as_array);
    for build in builds.into_iter().flatten() {
        let number = build
            .get("number")
            .and_then(Value::as_u64)
            .ok_or("a build without a number")?;
        let timestamp = build.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
        seen.push(Seen {
            project: project.to_owned(),
            branch: branch.to_owned(),
            number,
            url: build
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            building: build
                .get("building")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            queued: false,
            started_at: millis(timestamp),
            estimated_ms: build
                .get("estimatedDuration")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .max(0) as u64,
            duration_ms: build
                .get("duration")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .max(0) as u64,
            result: build
                .get("result")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    // Waiting for an executor: the next number is what it will get.
    if json.get("inQueue").and_then(Value::as_bool) == Some(true) {
        let since = json
            .pointer("/queueItem/inQueueSince")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let url = json.get("url").and_then(Value::as_str).unwrap_or_default();
        seen.push(Seen {
            project: project.to_owned(),
            branch: branch.to_owned(),
            number: json
                .get("nextBuildNumber")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            url: url.to_owned(),
            building: false,
            queued: true,
            started_at: millis(since),
            estimated_ms: 0,
            duration_ms: 0,
            result: None,
        });
    }
    Ok(())
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `feature%2Flogin` → `feature/login` (multibranch job names are URL-encoded branch names).
fn percent_decode(name: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain() -> Job {
        Job {
            project: "network".into(),
            path: "network".into(),
            branch: Some("master".into()),
        }
    }

    fn folder() -> Job {
        Job {
            project: "web".into(),
            path: "web".into(),
            branch: None,
        }
    }

    // Shaped after Jenkins 2.440 answers to `/job/<name>/api/json?tree=…`.
    fn freestyle() -> Value {
        json!({
            "_class": "hudson.model.FreeStyleProject",
            "name": "network",
            "url": "https://jenkins.example.com/job/network/",
            "inQueue": false,
            "nextBuildNumber": 48,
            "queueItem": null,
            "builds": [
                {"_class": "hudson.model.FreeStyleBuild", "building": true, "duration": 0,
                 "estimatedDuration": 60000, "number": 47, "result": null,
                 "timestamp": 1_800_000_000_000i64, "url": "https://jenkins.example.com/job/network/47/"},
                {"_class": "hudson.model.FreeStyleBuild", "building": false, "duration": 58000,
                 "estimatedDuration": 61000, "number": 46, "result": "SUCCESS",
                 "timestamp": 1_799_999_000_000i64, "url": "https://jenkins.example.com/job/network/46/"}
            ]
        })
    }

    #[test]
    fn a_freestyle_job_gives_its_builds_of_the_configured_branch() {
        let seen = job(&plain(), &freestyle()).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].branch, "master");
        assert!(seen[0].building && seen[0].result.is_none());
        assert_eq!(seen[1].result.as_deref(), Some("SUCCESS"));
        let now = millis(1_800_000_030_000);
        let running = seen[0].view(now);
        assert!(
            (running.progress - 0.5).abs() < 1e-9,
            "{}",
            running.progress
        );
        assert_eq!(running.over_estimate_ms, 0);
        let done = seen[1].view(now);
        assert_eq!(done.finished_at, Some(millis(1_799_999_058_000)));
        assert_eq!(done.duration_ms, Some(58000));
    }

    #[test]
    fn a_build_over_its_estimate_says_by_how_much() {
        let seen = job(&plain(), &freestyle()).unwrap();
        let late = seen[0].view(millis(1_800_000_075_000));
        assert_eq!(late.progress, 1.0);
        assert_eq!(late.over_estimate_ms, 15_000);
    }

    #[test]
    fn a_multibranch_folder_gives_each_branch_decoded() {
        let answer = json!({
            "_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
            "name": "web",
            "url": "https://jenkins.example.com/job/web/",
            "jobs": [
                {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": "master",
                 "url": "https://jenkins.example.com/job/web/job/master/", "inQueue": false,
                 "nextBuildNumber": 105,
                 "builds": [{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                             "building": true, "duration": 0, "estimatedDuration": 45000,
                             "number": 104, "result": null, "timestamp": 1_800_000_000_000i64,
                             "url": "https://jenkins.example.com/job/web/job/master/104/"}]},
                {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": "feature%2Flogin",
                 "url": "https://jenkins.example.com/job/web/job/feature%252Flogin/", "inQueue": true,
                 "nextBuildNumber": 4,
                 "queueItem": {"_class": "hudson.model.Queue$WaitingItem", "inQueueSince": 1_800_000_010_000i64,
                               "why": "Waiting for next available executor"},
                 "builds": []}
            ]
        });
        let seen = job(&folder(), &answer).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].branch, "master");
        assert_eq!(seen[0].number, 104);
        // A queued build: its number-to-be, no progress yet.
        assert_eq!(seen[1].branch, "feature/login");
        assert!(seen[1].queued && !seen[1].building);
        assert_eq!(seen[1].number, 4);
        let view = seen[1].view(millis(1_800_000_020_000));
        assert_eq!(view.progress, 0.0);
        assert!(view.finished_at.is_none());
    }

    #[test]
    fn a_plain_job_configured_as_a_folder_is_explained() {
        let err = job(&folder(), &freestyle()).unwrap_err();
        assert!(err.contains("not a multibranch folder"), "{err}");
    }
}
