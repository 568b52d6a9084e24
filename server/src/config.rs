//! The deployer's one TOML config file: parsed strictly (unknown fields refused), then checked, so
//! that a bad file stops the start with one message naming the file, the field and the problem.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The SQLite file deployments are kept in (created on first run).
    pub store: PathBuf,
    /// Who actions are recorded as until login exists.
    pub actor: String,
    /// How often a running deployment polls CloudFormation.
    pub poll_interval: std::time::Duration,
    pub artifacts: Artifacts,
    /// In promotion order.
    pub environments: Vec<Environment>,
    pub projects: Vec<Project>,
}

#[derive(Clone, Debug)]
pub struct Artifacts {
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
    /// The environment whose credentials read the bucket.
    pub environment: String,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub account_id: String,
    pub region: String,
    pub credentials: Credentials,
    /// An emulator's address (e.g. moto); `None` for real AWS.
    pub endpoint_url: Option<String>,
}

/// How an environment gets its AWS credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// A named profile from the shared AWS config; the default chain when `None`.
    pub profile: Option<String>,
    /// A role to assume (through STS) with the credentials above.
    pub role_arn: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Project {
    pub name: String,
    pub title: String,
    /// Environment name → stack name, for the environments this project deploys to, in
    /// promotion order.
    pub stacks: Vec<(String, String)>,
}

impl Project {
    pub fn stack_name(&self, environment: &str) -> Option<&str> {
        self.stacks
            .iter()
            .find(|(env, _)| env == environment)
            .map(|(_, stack)| stack.as_str())
    }

    pub fn environments(&self) -> impl Iterator<Item = &str> {
        self.stacks.iter().map(|(env, _)| env.as_str())
    }
}

impl Config {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// `s3://bucket/prefix/project/`
    pub fn artifacts_url(&self, project: &str) -> String {
        format!(
            "s3://{}/{}{}/",
            self.artifacts.bucket, self.artifacts.prefix, project
        )
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    store: Option<PathBuf>,
    actor: Option<String>,
    poll_interval_ms: Option<u64>,
    artifacts: RawArtifacts,
    environments: Vec<RawEnvironment>,
    projects: Vec<RawProject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    bucket: String,
    #[serde(default)]
    prefix: String,
    environment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: String,
    account_id: String,
    region: String,
    profile: Option<String>,
    role_arn: Option<String>,
    endpoint_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: String,
    title: Option<String>,
    /// Defaults to every environment.
    environments: Option<Vec<String>>,
    /// Per-environment stack names; by default `<ENV>-<PROJECT>` upper-cased.
    #[serde(default)]
    stacks: BTreeMap<String, String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and checks a config; the error names the field and what is wrong with it.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        check(raw)
    }
}

fn check(raw: RawConfig) -> Result<Config, String> {
    let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:3000");
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("listen: {listen:?} is not an address like 127.0.0.1:3000"))?;

    if raw.environments.is_empty() {
        return Err("environments: at least one environment is needed".into());
    }
    let mut environments = Vec::new();
    let mut seen = HashSet::new();
    for (i, env) in raw.environments.into_iter().enumerate() {
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
        if let Some(arn) = &env.role_arn
            && (!arn.starts_with("arn:aws") || !arn.contains(":role/"))
        {
            return Err(format!(
                "{}: {arn:?} is not a role ARN like arn:aws:iam::123456789012:role/deployer",
                field("role_arn")
            ));
        }
        if let Some(url) = &env.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "{}: {url:?} must start with http:// or https://",
                field("endpoint_url")
            ));
        }
        environments.push(Environment {
            name: env.name,
            account_id: env.account_id,
            region: env.region,
            credentials: Credentials {
                profile: env.profile,
                role_arn: env.role_arn,
            },
            endpoint_url: env.endpoint_url,
        });
    }
    let env_names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();

    if raw.artifacts.bucket.trim().is_empty() {
        return Err("artifacts.bucket: must not be empty".into());
    }
    if !env_names.contains(&raw.artifacts.environment) {
        return Err(format!(
            "artifacts.environment: {:?} is not one of the environments ({})",
            raw.artifacts.environment,
            env_names.join(", ")
        ));
    }
    let mut prefix = raw.artifacts.prefix.trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }

    let mut projects = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in raw.projects.into_iter().enumerate() {
        let field = |name: &str| format!("projects[{i}].{name}");
        if !is_project_name(&p.name) {
            return Err(format!(
                "{}: {:?} must be lower-case letters, digits and dashes, starting with a letter",
                field("name"),
                p.name
            ));
        }
        if !seen.insert(p.name.clone()) {
            return Err(format!("{}: {:?} is listed twice", field("name"), p.name));
        }
        let wanted = p.environments.unwrap_or_else(|| env_names.clone());
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
        projects.push(Project {
            name: p.name,
            title,
            stacks,
        });
    }

    let actor = raw.actor.unwrap_or_else(|| "local-user".to_owned());
    if actor.trim().is_empty() {
        return Err("actor: must not be empty".into());
    }
    let poll_ms = raw.poll_interval_ms.unwrap_or(2_000);
    if !(10..=60_000).contains(&poll_ms) {
        return Err(format!("poll_interval_ms: {poll_ms} is outside 10..=60000"));
    }
    Ok(Config {
        listen,
        store: raw
            .store
            .unwrap_or_else(|| PathBuf::from("data/deployer.sqlite")),
        actor,
        poll_interval: std::time::Duration::from_millis(poll_ms),
        artifacts: Artifacts {
            bucket: raw.artifacts.bucket,
            prefix,
            environment: raw.artifacts.environment,
        },
        environments,
        projects,
    })
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_project_name(s: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        listen = "127.0.0.1:4000"
        [artifacts]
        bucket = "builds"
        prefix = "cfn"
        environment = "GBL"
        [[environments]]
        name = "DEV"
        account_id = "111111111111"
        region = "eu-west-1"
        [[environments]]
        name = "GBL"
        account_id = "444444444444"
        region = "eu-west-1"
        role_arn = "arn:aws:iam::444444444444:role/deployer"
        [[projects]]
        name = "deployer"
        title = "Deployer"
        environments = ["GBL"]
        [[projects]]
        name = "web"
    "#;

    #[test]
    fn a_good_config_gets_default_stack_names_and_all_environments() {
        let config = Config::parse(GOOD).unwrap();
        assert_eq!(config.listen.port(), 4000);
        assert_eq!(config.artifacts.prefix, "cfn/");
        assert_eq!(
            config.project("deployer").unwrap().stack_name("GBL"),
            Some("GBL-DEPLOYER")
        );
        let web = config.project("web").unwrap();
        assert_eq!(web.title, "web");
        assert_eq!(web.environments().collect::<Vec<_>>(), ["DEV", "GBL"]);
        assert_eq!(web.stack_name("DEV"), Some("DEV-WEB"));
        assert_eq!(config.artifacts_url("web"), "s3://builds/cfn/web/");
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = Config::parse(&GOOD.replace("title = \"Deployer\"", "titel = \"Deployer\""))
            .unwrap_err();
        assert!(err.contains("unknown field `titel`"), "{err}");
    }

    #[test]
    fn a_bad_account_id_names_the_field() {
        let err = Config::parse(&GOOD.replace("111111111111", "1111")).unwrap_err();
        assert!(err.starts_with("environments[0].account_id:"), "{err}");
    }

    #[test]
    fn a_project_in_an_unknown_environment_is_refused() {
        let err =
            Config::parse(&GOOD.replace("environments = [\"GBL\"]", "environments = [\"QA\"]"))
                .unwrap_err();
        assert!(
            err.contains("projects[0].environments") && err.contains("\"QA\""),
            "{err}"
        );
    }

    #[test]
    fn artifacts_must_be_read_from_a_known_environment() {
        let err = Config::parse(&GOOD.replace("environment = \"GBL\"", "environment = \"XXX\""))
            .unwrap_err();
        assert!(err.starts_with("artifacts.environment:"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = Config::parse(&GOOD.replace(
            "region = \"eu-west-1\"\n        [[environments]]",
            "[[environments]]",
        ))
        .unwrap_err();
        assert!(err.contains("missing field `region`"), "{err}");
    }

    #[test]
    fn duplicate_environments_and_bad_addresses_are_refused() {
        let err = Config::parse(&GOOD.replace("name = \"GBL\"", "name = \"DEV\"")).unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
        let err = Config::parse(&GOOD.replace("127.0.0.1:4000", "localhost")).unwrap_err();
        assert!(err.starts_with("listen:"), "{err}");
    }

    #[test]
    fn a_load_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = 3").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("config file {}:", path.display())),
            "{err}"
        );
    }
}
