//! The deployer's one TOML config file: parsed strictly (unknown fields refused), then checked, so
//! that a bad file stops the start with one message naming the file, the field and the problem.

pub mod auth;
mod check;
pub mod jenkins;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the store is.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// A `postgres://` URL (it may carry a password: never printed whole).
    Postgres(String),
}

impl StoreLocation {
    /// `postgres://…` / `postgresql://…` is PostgreSQL; anything else a SQLite file's path.
    pub fn parse(text: &str) -> Result<StoreLocation, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(text.to_owned()));
        }
        if text.contains("://") {
            // Shown without its password: a mistyped scheme is still a URL with credentials.
            return Err(format!(
                "{:?} is neither a postgres:// URL nor a SQLite file's path",
                shown_database_url(text)
            ));
        }
        Ok(StoreLocation::Sqlite(PathBuf::from(text)))
    }
}

/// The store as it may be shown: a path, or the database URL without its password.
impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&shown_database_url(url)),
        }
    }
}

/// A database URL as it may be shown: the password — in the user info, or a `password` query
/// parameter (any case, percent-encoded or not: the driver reads both) — as `***`. A URL whose
/// query holds an `@` cannot be told apart from a password written unencoded with a `?` or an
/// `@` in it: it is shown as its scheme only.
fn shown_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.contains('@')) {
        return format!("{scheme}://***");
    }
    let mut shown = match before_query.rfind('@') {
        Some(at) => {
            let user = before_query[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &before_query[at..])
        }
        None => format!("{scheme}://{before_query}"),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if percent_decoded(key).eq_ignore_ascii_case("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// A query's key as the driver reads it (`%XX` and `+` decoded).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `GET /metrics` is served when not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Where deployments are kept: a SQLite file (created on first run), or a PostgreSQL
    /// database shared by several replicas (`postgres://…`, or `DEPLOYER_DATABASE_URL`).
    pub store: StoreLocation,
    /// Login and permissions.
    pub auth: auth::Auth,
    /// The Jenkins builds panel; `None`: not configured.
    pub jenkins: Option<jenkins::Jenkins>,
    /// How often a running deployment polls CloudFormation.
    pub poll_interval: std::time::Duration,
    pub artifacts: Artifacts,
    /// In promotion order.
    pub environments: Vec<Environment>,
    /// The projects the file names (overrides: every folder under the artifacts prefix is a
    /// project without an entry here; see `catalog::Projects`).
    pub projects: Vec<Project>,
    /// Folders under the artifacts prefix that are not projects.
    pub hidden: Vec<String>,
    /// Where deployments and pauses are announced.
    pub webhooks: Vec<webhooks::Webhook>,
    /// The environments a discovered project (a folder in the bucket the file does not name)
    /// reaches, in promotion order; `None`: every environment that is not protected
    /// ([`Config::discovered_environments`]).
    pub discovered_environments: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct Artifacts {
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
    /// The environment whose credentials read the bucket.
    pub environment: String,
    /// How often every project's build folders are re-listed to find new builds (10 s; 5 min
    /// as a safety net when notifications come through a queue).
    pub watch_interval: std::time::Duration,
    /// The SQS queue receiving the bucket's object-created/removed notifications (directly or
    /// through SNS): when set, a project is re-listed as soon as its folder changes, and only
    /// then.
    pub notifications_queue_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub account_id: String,
    pub region: String,
    pub credentials: Credentials,
    /// The role CloudFormation acts with when the deployer changes a stack here
    /// (`infra/deployer-access.yaml` makes it); `None`: with the deployer's own credentials.
    pub cloudformation_role_arn: Option<String>,
    /// An emulator's address (e.g. moto); `None` for real AWS.
    pub endpoint_url: Option<String>,
    /// Protected: an update waits at its change set for a person to approve it.
    pub protection: Option<Protection>,
    /// Stack events pushed by CloudFormation (SNS, then SQS): `None` — polled only.
    pub stack_events: Option<StackEvents>,
}

/// Where an environment's stack events are pushed: the deployer names the topic in every stack's
/// NotificationARNs and long-polls the queue subscribed to it. Polling stays, as the fallback
/// and for what a notification does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackEvents {
    pub topic_arn: String,
    pub queue_url: String,
}

/// How a protected environment's deployments are approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    /// The person who asked for a deployment may not approve it.
    pub by_another: bool,
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
    /// Named in the config file (`false`: found in the bucket, with the defaults).
    pub configured: bool,
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

pub use check::{MAX_PROJECT_NAME, discovered_project, is_project_name, project_problem};

impl Config {
    pub fn environment_names(&self) -> Vec<String> {
        self.environments.iter().map(|e| e.name.clone()).collect()
    }

    /// The environments a project found in the bucket reaches: those the file names
    /// (`discovered_environments`), else every environment that is not protected — a new
    /// folder never gets a stack in PRD or GBL by itself.
    pub fn discovered_environments(&self) -> Vec<String> {
        match &self.discovered_environments {
            Some(names) => names.clone(),
            None => self
                .environments
                .iter()
                .filter(|e| e.protection.is_none())
                .map(|e| e.name.clone())
                .collect(),
        }
    }

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

    /// Reads the secrets that never live in the file: `DEPLOYER_BOOTSTRAP_TOKEN`, and the
    /// OIDC client secret from the variable the file names. A named variable that is unset is an
    /// error (single sign-on cannot work without it).
    pub fn secrets_from_env(&mut self) -> Result<(), String> {
        // The database URL carries the password: from the environment (the image's boot script
        // writes it from the RDS-managed secret), never the file.
        if let Some(url) = std::env::var("DEPLOYER_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            self.store = match StoreLocation::parse(&url)? {
                postgres @ StoreLocation::Postgres(_) => postgres,
                StoreLocation::Sqlite(_) => {
                    return Err("DEPLOYER_DATABASE_URL: must be a postgres:// URL".into());
                }
            };
        }
        self.auth.bootstrap_token = std::env::var("DEPLOYER_BOOTSTRAP_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(crate::secret::Secret::from);
        if let Some(token) = &self.auth.bootstrap_token
            && token.expose().len() < 16
        {
            return Err("DEPLOYER_BOOTSTRAP_TOKEN: must be at least 16 characters".into());
        }
        if let Some(jenkins) = &mut self.jenkins
            && let Some(var) = &jenkins.token_env
        {
            match std::env::var(var) {
                Ok(token) if !token.is_empty() => jenkins.token = Some(token.into()),
                _ => {
                    return Err(format!(
                        "jenkins.token_env: the environment variable {var} (the Jenkins API token) is not set"
                    ));
                }
            }
        }
        for (i, hook) in self.webhooks.iter_mut().enumerate() {
            if let Some(var) = &hook.url_env {
                match std::env::var(var) {
                    Ok(url) if !url.trim().is_empty() => {
                        hook.url = Some(
                            webhooks::check_url(&format!("webhooks[{i}] (${var})"), url.trim())?
                                .into(),
                        );
                    }
                    _ => {
                        return Err(format!(
                            "webhooks[{i}].url_env: the environment variable {var} (the webhook's URL) is not set"
                        ));
                    }
                }
            }
        }
        if let Some(oidc) = &mut self.auth.oidc {
            match std::env::var(&oidc.client_secret_env) {
                Ok(secret) if !secret.is_empty() => oidc.client_secret = Some(secret.into()),
                _ => {
                    return Err(format!(
                        "auth.oidc.client_secret_env: the environment variable {} (the client secret) is not set",
                        oidc.client_secret_env
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses and checks a config; the error names the field and what is wrong with it.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: check::RawConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        check::check(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_database_urls_query_is_never_shown() {
        for (url, secret) in [
            (
                "postgres://db.internal:5432/deployer?user=deployer&password=s3cret",
                &["s3cret"][..],
            ),
            (
                "postgres://db.internal/deployer?sslmode=require&PassWord=s3cret",
                &["s3cret"],
            ),
            (
                "postgres://db.internal/deployer?pass%77ord=s3cret",
                &["s3cret"],
            ),
            (
                "postgresql://deployer@db.internal/deployer?password=s3cret&sslmode=require",
                &["s3cret"],
            ),
            (
                "postgres://deployer:s3cret@db.internal/deployer?password=s3cret",
                &["s3cret"],
            ),
            // Written unencoded: a `?` in the password, an `@` in the query's.
            (
                "postgres://deployer:p@ss?w0rd@db.internal/deployer",
                &["w0rd"],
            ),
            (
                "postgres://db.internal/deployer?password=p@ssw0rd",
                &["ssw0rd"],
            ),
        ] {
            let shown = StoreLocation::parse(url).unwrap().to_string();
            for s in secret {
                assert!(!shown.contains(s), "{url} shown as {shown}");
            }
            assert!(shown.starts_with("postgres"), "{shown}");
        }
        assert_eq!(
            StoreLocation::parse("postgres://db.internal/deployer?sslmode=require&password=s3cret")
                .unwrap()
                .to_string(),
            "postgres://db.internal/deployer?sslmode=require&password=***"
        );
    }

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
    fn projects_are_only_overrides_and_a_folder_may_be_hidden() {
        let start = GOOD.find("[[projects]]").unwrap();
        let bare = Config::parse(&GOOD[..start]).unwrap();
        assert!(
            bare.projects.is_empty(),
            "no [[projects]] at all is a config"
        );
        let hidden = Config::parse(&format!(
            "{GOOD}\n[[projects]]\nname = \"Old_Stuff\"\nhidden = true\n"
        ))
        .unwrap();
        assert_eq!(hidden.hidden, ["Old_Stuff"]);
        assert!(hidden.project("Old_Stuff").is_none());
        let err = Config::parse(&format!(
            "{GOOD}\n[[projects]]\nname = \"tmp\"\nhidden = true\ntitle = \"T\"\n"
        ))
        .unwrap_err();
        assert!(err.contains("a hidden folder is not a project"), "{err}");
        let err = Config::parse(&format!(
            "{GOOD}\n[[projects]]\nname = \"web\"\nhidden = true\n"
        ))
        .unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn a_folder_is_a_project_unless_its_name_cannot_be_one() {
        let envs = ["DEV".to_owned(), "PRD".to_owned()];
        assert_eq!(project_problem("shop-api2", &envs), None);
        let p = discovered_project("shop-api2", &envs);
        assert_eq!(p.stack_name("PRD"), Some("PRD-SHOP-API2"));
        assert_eq!(p.title, "shop-api2");
        assert!(!p.configured);
        for (name, words) in [
            ("Legacy_Reports", "not 'L', 'R', '_'"),
            ("my.site", "not '.'"),
            ("9lives", "starts with a letter"),
            ("web-", "does not end with a dash"),
        ] {
            let problem = project_problem(name, &envs).unwrap();
            assert!(
                problem.contains("cannot be a project") && problem.contains(words),
                "{name}: {problem}"
            );
        }
        let long = "a".repeat(65);
        assert!(
            project_problem(&long, &envs)
                .unwrap()
                .contains("at most 64")
        );
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
    fn stack_events_need_a_topic_and_its_queue() {
        let plain = Config::parse(GOOD).unwrap();
        assert!(plain.environments.iter().all(|e| e.stack_events.is_none()));
        let with = |lines: &str| {
            Config::parse(&GOOD.replacen("name = \"DEV\"", &format!("name = \"DEV\"\n{lines}"), 1))
        };
        let topic =
            "stack_events_topic_arn = \"arn:aws:sns:eu-west-1:111111111111:deployer-stack-events\"";
        let queue = "stack_events_queue_url = \"https://sqs.eu-west-1.amazonaws.com/111111111111/deployer-stack-events\"";
        let both = with(&format!("{topic}\n{queue}")).unwrap();
        let dev = both.environments.iter().find(|e| e.name == "DEV").unwrap();
        assert_eq!(
            dev.stack_events,
            Some(StackEvents {
                topic_arn: "arn:aws:sns:eu-west-1:111111111111:deployer-stack-events".into(),
                queue_url: "https://sqs.eu-west-1.amazonaws.com/111111111111/deployer-stack-events"
                    .into(),
            })
        );
        let only_topic = with(topic).unwrap_err().to_string();
        assert!(
            only_topic.contains("stack_events_queue_url"),
            "{only_topic}"
        );
        let only_queue = with(queue).unwrap_err().to_string();
        assert!(
            only_queue.contains("stack_events_topic_arn"),
            "{only_queue}"
        );
        let not_sns = with(&format!(
            "stack_events_topic_arn = \"arn:aws:sqs:eu-west-1:111111111111:x\"\n{queue}"
        ))
        .unwrap_err()
        .to_string();
        assert!(not_sns.contains("is not an SNS topic ARN"), "{not_sns}");
    }

    #[test]
    fn a_notifications_queue_makes_the_sweep_a_slow_safety_net() {
        let plain = Config::parse(GOOD).unwrap();
        assert_eq!(plain.artifacts.notifications_queue_url, None);
        assert_eq!(
            plain.artifacts.watch_interval,
            std::time::Duration::from_secs(10)
        );
        let queue = "https://sqs.eu-west-1.amazonaws.com/444444444444/artifacts-events";
        let with = Config::parse(&GOOD.replace(
            "environment = \"GBL\"",
            &format!("environment = \"GBL\"\nnotifications_queue_url = \"{queue}\""),
        ))
        .unwrap();
        assert_eq!(
            with.artifacts.notifications_queue_url.as_deref(),
            Some(queue)
        );
        assert_eq!(
            with.artifacts.watch_interval,
            std::time::Duration::from_secs(300)
        );
        let err = Config::parse(&GOOD.replace(
            "environment = \"GBL\"",
            "environment = \"GBL\"\nnotifications_queue_url = \"artifacts-events\"",
        ))
        .unwrap_err();
        assert!(
            err.starts_with("artifacts.notifications_queue_url:"),
            "{err}"
        );
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
        let twice = format!("{GOOD}\n[[projects]]\nname = \"web\"\n");
        let err = Config::parse(&twice).unwrap_err();
        assert_eq!(err, "projects[2].name: \"web\" is listed twice");
    }

    #[test]
    fn the_shipped_configs_parse_with_their_roles() {
        for text in [
            include_str!("../../../config/demo.toml"),
            include_str!("../../../config/example.aws.toml"),
        ] {
            let config = Config::parse(text).unwrap();
            let auth = &config.auth;
            assert!(auth.oidc.is_some());
            assert_eq!(auth.roles["deployer"].deploy, ["DEV", "STG"]);
            assert!(auth.roles["admin"].admin);
            assert_eq!(
                auth.roles["prod-deployer"].deploy.len(),
                config.environments.len(),
                "\"*\" is every environment"
            );
        }
    }

    #[test]
    fn roles_groups_and_the_dev_user_are_checked() {
        let with = |auth: &str| Config::parse(&format!("{GOOD}\n{auth}"));
        let err = with("[auth.roles]\ndeployer = { deploy = [\"QA\"] }").unwrap_err();
        assert!(err.starts_with("auth.roles.deployer.deploy:"), "{err}");
        let err = with("[auth.groups]\ndevs = \"superuser\"").unwrap_err();
        assert!(
            err.contains("auth.groups.devs") && err.contains("viewer"),
            "{err}"
        );
        let err =
            with("[auth.oidc]\nissuer = \"login.example.com\"\nclient_id = \"d\"").unwrap_err();
        assert!(err.starts_with("auth.oidc.issuer:"), "{err}");
        // A fixed development user only on a loopback address.
        assert!(with("[auth]\ndev_user = \"me\"").is_ok());
        let err = Config::parse(&format!(
            "{}\n[auth]\ndev_user = \"me\"",
            GOOD.replace("127.0.0.1:4000", "0.0.0.0:4000")
        ))
        .unwrap_err();
        assert!(
            err.starts_with("auth.dev_user:") && err.contains("loopback"),
            "{err}"
        );
        let err = with("[auth]\npublic_url = \"deployer.example.com/x\"").unwrap_err();
        assert!(err.starts_with("auth.public_url:"), "{err}");
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
