//! Checking a config file: the raw shape serde reads, and one check per section whose errors
//! name the field and say what is wrong with it.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::StoreLocation;
use super::{Artifacts, Config, Credentials, Environment, Project, Protection, StackEvents};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    listen: Option<String>,
    /// Serve `GET /metrics` on this address instead of `listen` (e.g. only inside the VPC).
    metrics_listen: Option<String>,
    store: Option<String>,
    #[serde(default)]
    auth: super::auth::RawAuth,
    jenkins: Option<super::jenkins::RawJenkins>,
    poll_interval_ms: Option<u64>,
    artifacts: RawArtifacts,
    environments: Vec<RawEnvironment>,
    /// Overrides only: every folder under the artifacts prefix is a project without an entry.
    #[serde(default)]
    projects: Vec<RawProject>,
    #[serde(default)]
    webhooks: Vec<super::webhooks::RawWebhook>,
    /// The environments a project found in the bucket (not named under `[[projects]]`) reaches;
    /// by default every environment that is not protected.
    discovered_environments: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArtifacts {
    bucket: String,
    #[serde(default)]
    prefix: String,
    environment: String,
    /// How often each project's build folders are re-listed to find new builds.
    watch_interval_ms: Option<u64>,
    /// The SQS queue the bucket sends its object notifications to: only changed projects are
    /// re-listed, as their builds land.
    notifications_queue_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    name: String,
    account_id: String,
    region: String,
    profile: Option<String>,
    role_arn: Option<String>,
    /// The role CloudFormation acts with in this account (passed on every stack change).
    cloudformation_role_arn: Option<String>,
    endpoint_url: Option<String>,
    /// Updates wait for a person to approve their change set.
    #[serde(default)]
    protected: bool,
    /// In a protected environment: the person who asked may not approve their own deployment.
    #[serde(default)]
    require_another_approver: bool,
    /// The SNS topic CloudFormation announces this environment's stack events to (named in
    /// NotificationARNs of every stack the deployer creates or changes).
    stack_events_topic_arn: Option<String>,
    /// The SQS queue subscribed to that topic, long-polled by the deployer: a stack's progress
    /// is heard as it happens instead of at the next poll.
    stack_events_queue_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    name: String,
    title: Option<String>,
    /// Defaults to every environment.
    environments: Option<Vec<String>>,
    /// Per-environment stack names; by default `<ENV>-<PROJECT>` upper-cased.
    #[serde(default)]
    stacks: BTreeMap<String, String>,
    /// A folder under the prefix that is not a project: not listed, not watched.
    #[serde(default)]
    hidden: bool,
}

/// Checks a parsed file, section by section; the first problem is the answer.
pub fn check(raw: RawConfig) -> Result<Config, String> {
    let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:3000");
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("listen: {listen:?} is not an address like 127.0.0.1:3000"))?;
    let metrics_listen = raw
        .metrics_listen
        .as_deref()
        .map(|m| {
            m.parse::<SocketAddr>()
                .map_err(|_| format!("metrics_listen: {m:?} is not an address like 0.0.0.0:9100"))
        })
        .transpose()?;
    if metrics_listen == Some(listen) {
        return Err(
            "metrics_listen: is the same address as listen; leave it out to serve /metrics there"
                .into(),
        );
    }
    let environments = environments(raw.environments)?;
    let env_names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();
    let artifacts = artifacts(raw.artifacts, &env_names)?;
    let mut projects = Vec::new();
    let mut hidden: Vec<String> = Vec::new();
    for (i, p) in raw.projects.into_iter().enumerate() {
        if projects.iter().any(|q: &Project| q.name == p.name) || hidden.contains(&p.name) {
            return Err(format!("projects[{i}].name: {:?} is listed twice", p.name));
        }
        if p.hidden {
            if p.title.is_some() || p.environments.is_some() || !p.stacks.is_empty() {
                return Err(format!(
                    "projects[{i}]: a hidden folder is not a project: give it only a name"
                ));
            }
            if p.name.is_empty() || p.name.contains('/') {
                return Err(format!(
                    "projects[{i}].name: {:?} is not a folder name",
                    p.name
                ));
            }
            hidden.push(p.name);
        } else {
            projects.push(project(i, p, &env_names)?);
        }
    }
    let auth = super::auth::check(raw.auth, &env_names, listen)?;
    let project_names: Vec<String> = projects.iter().map(|p| p.name.clone()).collect();
    let jenkins = raw
        .jenkins
        .map(|j| super::jenkins::check(j, &project_names))
        .transpose()?;
    let webhooks = super::webhooks::check(raw.webhooks, &env_names)?;
    if let Some(names) = &raw.discovered_environments {
        for (i, name) in names.iter().enumerate() {
            if !env_names.contains(name) {
                return Err(format!(
                    "discovered_environments[{i}]: {name:?} is not one of the environments ({})",
                    env_names.join(", ")
                ));
            }
        }
    }
    let poll_ms = raw.poll_interval_ms.unwrap_or(2_000);
    if !(10..=60_000).contains(&poll_ms) {
        return Err(format!("poll_interval_ms: {poll_ms} is outside 10..=60000"));
    }
    Ok(Config {
        listen,
        metrics_listen,
        store: match raw.store {
            None => StoreLocation::Sqlite(PathBuf::from("data/deployer.sqlite")),
            Some(text) => StoreLocation::parse(&text).map_err(|e| format!("store: {e}"))?,
        },
        auth,
        jenkins,
        poll_interval: std::time::Duration::from_millis(poll_ms),
        artifacts,
        environments,
        projects,
        hidden,
        webhooks,
        discovered_environments: raw.discovered_environments.map(|names| {
            env_names
                .iter()
                .filter(|e| names.contains(e))
                .cloned()
                .collect()
        }),
    })
}

/// The environments, in promotion order: names, accounts, regions, credentials, endpoints.
fn environments(raw: Vec<RawEnvironment>) -> Result<Vec<Environment>, String> {
    if raw.is_empty() {
        return Err("environments: at least one environment is needed".into());
    }
    let mut environments = Vec::new();
    let mut seen = HashSet::new();
    for (i, env) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("environments[{i}].{name}");
        if !is_env_name(&env.name) {
            return Err(format!(
                "{}: {:?} must be upper-case letters and digits, like DEV or PRD",
                field("name"),
                env.name
            ));
        }
        if !seen.insert(env.name.clone()) {
            return Err(format!("{}: {:?} is listed twice", field("name"), env.name));
        }
        if env.account_id.len() != 12 || !env.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{}: {:?} is not an AWS account id (12 digits)",
                field("account_id"),
                env.account_id
            ));
        }
        if env.region.trim().is_empty() {
            return Err(format!("{}: must not be empty", field("region")));
        }
        for (name, arn) in [
            ("role_arn", &env.role_arn),
            ("cloudformation_role_arn", &env.cloudformation_role_arn),
        ] {
            if let Some(arn) = arn
                && (!arn.starts_with("arn:aws") || !arn.contains(":role/"))
            {
                return Err(format!(
                    "{}: {arn:?} is not a role ARN like arn:aws:iam::123456789012:role/deployer",
                    field(name)
                ));
            }
        }
        if let Some(url) = &env.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "{}: {url:?} must start with http:// or https://",
                field("endpoint_url")
            ));
        }
        let stack_events = match (
            env.stack_events_topic_arn.map(|t| t.trim().to_owned()),
            env.stack_events_queue_url.map(|q| q.trim().to_owned()),
        ) {
            (None, None) => None,
            (Some(topic_arn), Some(queue_url)) => {
                if !topic_arn.starts_with("arn:aws") || topic_arn.split(':').nth(2) != Some("sns") {
                    return Err(format!(
                        "{}: {topic_arn:?} is not an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:deployer-stack-events",
                        field("stack_events_topic_arn")
                    ));
                }
                if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
                    return Err(format!(
                        "{}: {queue_url:?} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
                        field("stack_events_queue_url")
                    ));
                }
                Some(StackEvents {
                    topic_arn,
                    queue_url,
                })
            }
            (Some(_), None) => {
                return Err(format!(
                    "{}: the topic needs the queue subscribed to it (stack_events_queue_url), which the deployer reads",
                    field("stack_events_topic_arn")
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{}: the queue needs the topic it is subscribed to (stack_events_topic_arn), which stacks are told to announce to",
                    field("stack_events_queue_url")
                ));
            }
        };
        if env.require_another_approver && !env.protected {
            return Err(format!(
                "{}: only a protected environment has approvals; add protected = true",
                field("require_another_approver")
            ));
        }
        environments.push(Environment {
            protection: env.protected.then_some(Protection {
                by_another: env.require_another_approver,
            }),
            name: env.name,
            account_id: env.account_id,
            region: env.region,
            credentials: Credentials {
                profile: env.profile,
                role_arn: env.role_arn,
            },
            cloudformation_role_arn: env.cloudformation_role_arn,
            endpoint_url: env.endpoint_url,
            stack_events,
        });
    }
    Ok(environments)
}

/// Where the builds are: a bucket, a prefix, and the environment whose account holds them.
fn artifacts(raw: RawArtifacts, env_names: &[String]) -> Result<Artifacts, String> {
    if raw.bucket.trim().is_empty() {
        return Err("artifacts.bucket: must not be empty".into());
    }
    if !env_names.contains(&raw.environment) {
        return Err(format!(
            "artifacts.environment: {:?} is not one of the environments ({})",
            raw.environment,
            env_names.join(", ")
        ));
    }
    let mut prefix = raw.prefix.trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let queue = raw
        .notifications_queue_url
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(url) = &queue
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(format!(
            "artifacts.notifications_queue_url: {url:?} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
        ));
    }
    // With notifications the sweep is only a safety net for one that was lost.
    let watch_ms = raw
        .watch_interval_ms
        .unwrap_or(if queue.is_some() { 300_000 } else { 10_000 });
    if !(100..=3_600_000).contains(&watch_ms) {
        return Err(format!(
            "artifacts.watch_interval_ms: {watch_ms} is outside 100..=3600000"
        ));
    }
    Ok(Artifacts {
        bucket: raw.bucket,
        prefix,
        environment: raw.environment,
        watch_interval: std::time::Duration::from_millis(watch_ms),
        notifications_queue_url: queue,
    })
}

/// One project: its name, the environments it deploys to and its stack in each.
fn project(i: usize, p: RawProject, env_names: &[String]) -> Result<Project, String> {
    let field = |name: &str| format!("projects[{i}].{name}");
    if !is_project_name(&p.name) {
        return Err(format!(
            "{}: {:?} must be lower-case letters, digits and dashes, starting with a letter",
            field("name"),
            p.name
        ));
    }
    let wanted = p.environments.unwrap_or_else(|| env_names.to_vec());
    if wanted.is_empty() {
        return Err(format!(
            "{}: a project needs at least one environment",
            field("environments")
        ));
    }
    for env in wanted.iter().chain(p.stacks.keys()) {
        if !env_names.contains(env) {
            return Err(format!(
                "{}: {env:?} is not one of the environments ({})",
                field("environments"),
                env_names.join(", ")
            ));
        }
    }
    for env in p.stacks.keys() {
        if !wanted.contains(env) {
            return Err(format!(
                "{}: names a stack for {env}, which this project does not deploy to",
                field("stacks")
            ));
        }
    }
    // Promotion order comes from the environments list, whatever order the project names them.
    let mut stacks = Vec::new();
    for env in env_names.iter().filter(|e| wanted.contains(e)) {
        let stack = match p.stacks.get(env) {
            Some(name) => name.clone(),
            None => format!("{env}-{}", p.name).to_uppercase(),
        };
        if !is_stack_name(&stack) {
            return Err(format!(
                "{}: {stack:?} is not a valid CloudFormation stack name",
                field(&format!("stacks.{env}"))
            ));
        }
        stacks.push((env.clone(), stack));
    }
    let title = p.title.unwrap_or_else(|| p.name.clone());
    Ok(Project {
        name: p.name,
        title,
        stacks,
        configured: true,
    })
}

/// The longest project name (the API's limit too).
pub const MAX_PROJECT_NAME: usize = 64;

/// Why a folder under the artifacts prefix cannot be a project (its stacks would be named
/// `<ENV>-<FOLDER>` upper-cased); `None` when it can.
pub fn project_problem(name: &str, env_names: &[String]) -> Option<String> {
    if !is_project_name(name) {
        let odd: Vec<String> = name
            .chars()
            .filter(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
            .collect::<std::collections::BTreeSet<char>>()
            .into_iter()
            .map(|c| format!("{c:?}"))
            .collect();
        return Some(if odd.is_empty() {
            format!(
                "{name:?} cannot be a project: a project's name starts with a letter and does not end with a dash"
            )
        } else {
            format!(
                "{name:?} cannot be a project: a project's name (and its stacks' names) holds only lower-case letters, digits and dashes, not {}",
                odd.join(", ")
            )
        });
    }
    if name.len() > MAX_PROJECT_NAME {
        return Some(format!(
            "{name:?} cannot be a project: a project's name is at most {MAX_PROJECT_NAME} characters"
        ));
    }
    let longest = env_names.iter().map(String::len).max().unwrap_or(0);
    if longest + 1 + name.len() > 128 {
        return Some(format!(
            "{name:?} cannot be a project: its stack names would be longer than CloudFormation's 128 characters"
        ));
    }
    None
}

/// A folder found under the artifacts prefix with no entry in the config: every environment,
/// stacks `<ENV>-<PROJECT>` upper-cased, titled by its name.
pub fn discovered_project(name: &str, env_names: &[String]) -> Project {
    Project {
        name: name.to_owned(),
        title: name.to_owned(),
        stacks: env_names
            .iter()
            .map(|env| (env.clone(), format!("{env}-{name}").to_uppercase()))
            .collect(),
        configured: false,
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

pub fn is_project_name(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

fn is_stack_name(s: &str) -> bool {
    s.len() <= 128
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
