//! The optional `[jenkins]` section: where Jenkins is, who the deployer reads it as, and which
//! job (or multibranch folder) builds which project.
//!
//! ```toml
//! [jenkins]
//! url = "https://jenkins.example.com"
//! user = "deployer"
//! token_env = "DEPLOYER_JENKINS_TOKEN"   # the variable holding the API token, never the token
//! poll_interval_ms = 5000
//! [jenkins.jobs]
//! web = "web"                              # a multibranch folder: one job per branch
//! network = { job = "infra/network", branch = "master" }   # a plain job builds one branch
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug)]
pub struct Jenkins {
    /// Without a trailing slash.
    pub url: String,
    pub user: Option<String>,
    pub token_env: Option<String>,
    /// Read from `token_env` at start.
    pub token: Option<crate::secret::Secret>,
    pub poll_interval: std::time::Duration,
    /// In the config's project order.
    pub jobs: Vec<Job>,
}

/// The Jenkins job that builds a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub project: String,
    /// Folder path, `/`-separated (`infra/network`).
    pub path: String,
    /// For a plain job: the branch its builds are of. `None`: a multibranch folder, whose jobs
    /// are the branches.
    pub branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJenkins {
    url: String,
    user: Option<String>,
    token_env: Option<String>,
    poll_interval_ms: Option<u64>,
    #[serde(default)]
    jobs: BTreeMap<String, RawJob>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawJob {
    Folder(String),
    Plain {
        job: String,
        #[serde(default)]
        branch: Option<String>,
    },
}

/// Checks `[jenkins]`: jobs of the configured projects first (in config order), then of
/// projects found in the bucket (any valid project name), by name.
pub fn check(raw: RawJenkins, projects: &[String]) -> Result<Jenkins, String> {
    let url = raw.url.trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "jenkins.url: {:?} must be an http(s) URL like https://jenkins.example.com",
            raw.url
        ));
    }
    if raw.user.is_some() != raw.token_env.is_some() {
        return Err(
            "jenkins: `user` and `token_env` go together (the API token of that user)".into(),
        );
    }
    let poll_ms = raw.poll_interval_ms.unwrap_or(5_000);
    if !(200..=600_000).contains(&poll_ms) {
        return Err(format!(
            "jenkins.poll_interval_ms: {poll_ms} is outside 200..=600000"
        ));
    }
    let mut jobs = Vec::new();
    let mut order: Vec<&String> = projects.iter().collect();
    order.extend(raw.jobs.keys().filter(|p| !projects.contains(p)));
    for project in order {
        let Some(raw_job) = raw.jobs.get(project) else {
            continue;
        };
        let (path, branch) = match raw_job {
            RawJob::Folder(path) => (path.clone(), None),
            RawJob::Plain { job, branch } => (
                job.clone(),
                Some(branch.clone().unwrap_or_else(|| "master".to_owned())),
            ),
        };
        let path = path.trim_matches('/').to_owned();
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(format!(
                "jenkins.jobs.{project}: {path:?} is not a job path like \"web\" or \"infra/network\""
            ));
        }
        jobs.push(Job {
            project: project.clone(),
            path,
            branch,
        });
    }
    if let Some(bad) = raw.jobs.keys().find(|p| !super::check::is_project_name(p)) {
        return Err(format!(
            "jenkins.jobs.{bad}: {bad:?} is not a project's name (lower-case letters, digits and dashes)"
        ));
    }
    Ok(Jenkins {
        url,
        user: raw.user,
        token_env: raw.token_env,
        token: None,
        poll_interval: std::time::Duration::from_millis(poll_ms),
        jobs,
    })
}
