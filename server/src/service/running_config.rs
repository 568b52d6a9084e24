//! `GET /api/v1/config` (admins): the running config, secrets redacted, each value with where it
//! came from — `file`, `default`, `environment` (a secret read from a variable) or `discovered`
//! (a project found in the bucket) — and how the last reload went.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Actor, Services};
use crate::config::{self, Config};
use crate::error::AppError;
use crate::reload::Reload;

/// The running config as an admin sees it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RunningConfig {
    /// The file it was read from (`null`: built in code).
    pub file: Option<String>,
    /// When the running config was put in place (start or the last applied reload).
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    /// How the last reload ended (`null`: none since start): `outcome` `applied` with its
    /// `changes`, or `refused` with its `reason` (the running config stayed).
    #[schemars(with = "Option<serde_json::Value>")]
    pub last_reload: Option<Reload>,
    /// The config's sections as the file spells them; every value is
    /// `{"value": …, "source": "file" | "default" | "environment" | "discovered"}`. Secrets
    /// show as `"<redacted>"`.
    pub config: Value,
}

const REDACTED: &str = "<redacted>";

impl Services {
    pub fn running_config(&self, actor: &Actor) -> Result<RunningConfig, AppError> {
        actor.require_admin("seeing the running config")?;
        let reloader = self.reloader();
        let running = self.catalog.config();
        let file: Option<toml::Value> = reloader
            .file_text()
            .and_then(|text| toml::from_str(&text).ok());
        let discovered: Vec<config::Project> = self
            .catalog
            .project_names()
            .iter()
            .filter(|name| running.project(name).is_none())
            .filter_map(|name| self.catalog.project(name).ok())
            .collect();
        Ok(RunningConfig {
            file: reloader.file().map(|p| p.display().to_string()),
            loaded_at: reloader.loaded_at(),
            last_reload: reloader.last(),
            config: describe(&running, file.as_ref(), &discovered),
        })
    }

    /// Re-reads the config file now (what SIGHUP does): the changes applied, or why not.
    pub async fn reload_config(&self, actor: &Actor) -> Result<Vec<String>, AppError> {
        actor.require_admin("reloading the config")?;
        self.reloader()
            .reload(&format!("asked by {}", actor.name()))
            .await
            .map_err(|reason| {
                AppError::Conflict(format!(
                    "the config file was refused, the running config stays: {reason}"
                ))
            })
    }
}

/// Where a value at `path` came from: the file names it, or the default applied.
fn source(file: Option<&toml::Value>, path: &[&str]) -> &'static str {
    let mut at = match file {
        Some(v) => v,
        None => return "file",
    };
    for key in path {
        match at.get(key) {
            Some(next) => at = next,
            None => return "default",
        }
    }
    "file"
}

fn leaf(value: impl Into<Value>, source: &str) -> Value {
    json!({ "value": value.into(), "source": source })
}

/// One entry of an array of tables (`[[environments]]`, `[[projects]]`) by its `name`.
fn named<'a>(file: Option<&'a toml::Value>, array: &str, name: &str) -> Option<&'a toml::Value> {
    file?
        .get(array)?
        .as_array()?
        .iter()
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(name))
}

fn describe(config: &Config, file: Option<&toml::Value>, discovered: &[config::Project]) -> Value {
    let at = |path: &[&str]| source(file, path);
    let mut environments = Vec::new();
    for e in &config.environments {
        let entry = named(file, "environments", &e.name);
        let from = |key: &str| match entry {
            Some(t) if t.get(key).is_some() => "file",
            Some(_) => "default",
            None => "file",
        };
        environments.push(json!({
            "name": leaf(e.name.clone(), "file"),
            "account_id": leaf(e.account_id.clone(), "file"),
            "region": leaf(e.region.clone(), "file"),
            "profile": leaf(e.credentials.profile.clone(), from("profile")),
            "role_arn": leaf(e.credentials.role_arn.clone(), from("role_arn")),
            "cloudformation_role_arn": leaf(e.cloudformation_role_arn.clone(), from("cloudformation_role_arn")),
            "endpoint_url": leaf(e.endpoint_url.clone(), from("endpoint_url")),
            "protected": leaf(e.protection.is_some(), from("protected")),
            "require_another_approver": leaf(e.protection.is_some_and(|p| p.by_another), from("require_another_approver")),
            "stack_events_topic_arn": leaf(e.stack_events.as_ref().map(|s| s.topic_arn.clone()), from("stack_events_topic_arn")),
            "stack_events_queue_url": leaf(e.stack_events.as_ref().map(|s| s.queue_url.clone()), from("stack_events_queue_url")),
        }));
    }
    let project = |p: &config::Project, origin: &str| {
        let entry = named(file, "projects", &p.name);
        let from = |key: &str| match (origin, entry) {
            ("discovered", _) => "discovered",
            (_, Some(t)) if t.get(key).is_some() => "file",
            _ => "default",
        };
        let stacks: serde_json::Map<String, Value> = p
            .stacks
            .iter()
            .map(|(env, stack)| {
                let named_here = entry
                    .and_then(|t| t.get("stacks"))
                    .and_then(|s| s.get(env))
                    .is_some();
                let src = match (origin, named_here) {
                    ("discovered", _) => "discovered",
                    (_, true) => "file",
                    _ => "default",
                };
                (env.clone(), leaf(stack.clone(), src))
            })
            .collect();
        json!({
            "name": leaf(p.name.clone(), origin),
            "title": leaf(p.title.clone(), from("title")),
            "environments": leaf(p.environments().collect::<Vec<_>>(), from("environments")),
            "stacks": stacks,
        })
    };
    let mut projects: Vec<Value> = config.projects.iter().map(|p| project(p, "file")).collect();
    projects.extend(discovered.iter().map(|p| project(p, "discovered")));
    let auth = &config.auth;
    let roles: serde_json::Map<String, Value> = auth
        .roles
        .iter()
        .map(|(name, role)| {
            let src = at(&["auth", "roles", name]);
            (name.clone(), leaf(format!("{role:?}"), src))
        })
        .collect();
    let groups: serde_json::Map<String, Value> = auth
        .groups
        .iter()
        .map(|(group, role)| {
            (
                group.clone(),
                leaf(role.clone(), at(&["auth", "groups", group])),
            )
        })
        .collect();
    let oidc = auth.oidc.as_ref().map(|o| {
        json!({
            "issuer": leaf(o.issuer.clone(), "file"),
            "client_id": leaf(o.client_id.clone(), "file"),
            "client_secret_env": leaf(o.client_secret_env.clone(), at(&["auth", "oidc", "client_secret_env"])),
            "client_secret": leaf(o.client_secret.as_ref().map(|_| REDACTED), "environment"),
            "groups_claim": leaf(o.groups_claim.clone(), at(&["auth", "oidc", "groups_claim"])),
        })
    });
    let jenkins = config.jenkins.as_ref().map(|j| {
        json!({
            "url": leaf(j.url.clone(), "file"),
            "user": leaf(j.user.clone(), at(&["jenkins", "user"])),
            "token": leaf(j.token.as_ref().map(|_| REDACTED), "environment"),
            "poll_interval_ms": leaf(j.poll_interval.as_millis() as u64, at(&["jenkins", "poll_interval_ms"])),
            "jobs": leaf(j.jobs.iter().map(|job| json!({"project": job.project, "path": job.path, "branch": job.branch})).collect::<Vec<_>>(), at(&["jenkins", "jobs"])),
        })
    });
    let webhooks: Vec<Value> = config
        .webhooks
        .iter()
        .map(|w| {
            json!({
                "name": leaf(w.name.clone(), "file"),
                "url": leaf(w.shown_url(), if w.url_env.is_some() { "environment" } else { "file" }),
                "projects": leaf(w.projects.clone(), "file"),
                "environments": leaf(w.environments.clone(), "file"),
                "events": leaf(w.events.clone(), "file"),
            })
        })
        .collect();
    let store = config.store.to_string();
    let store_source = if std::env::var("DEPLOYER_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty())
    {
        "environment"
    } else {
        at(&["store"])
    };
    json!({
        "listen": leaf(config.listen.to_string(), if std::env::var("DEPLOYER_ADDR").is_ok() { "environment" } else { at(&["listen"]) }),
        "metrics_listen": leaf(config.metrics_listen.map(|a| a.to_string()), at(&["metrics_listen"])),
        "store": leaf(store, store_source),
        "poll_interval_ms": leaf(config.poll_interval.as_millis() as u64, at(&["poll_interval_ms"])),
        "artifacts": {
            "bucket": leaf(config.artifacts.bucket.clone(), "file"),
            "prefix": leaf(config.artifacts.prefix.clone(), at(&["artifacts", "prefix"])),
            "environment": leaf(config.artifacts.environment.clone(), "file"),
            "watch_interval_ms": leaf(config.artifacts.watch_interval.as_millis() as u64, at(&["artifacts", "watch_interval_ms"])),
            "notifications_queue_url": leaf(config.artifacts.notifications_queue_url.clone(), at(&["artifacts", "notifications_queue_url"])),
        },
        "environments": environments,
        "projects": projects,
        "hidden": leaf(config.hidden.clone(), "file"),
        "discovered_environments": leaf(config.discovered_environments(), at(&["discovered_environments"])),
        "auth": {
            "public_url": leaf(auth.public_url.clone(), at(&["auth", "public_url"])),
            "allowed_hosts": leaf(auth.allowed_hosts.clone(), at(&["auth", "allowed_hosts"])),
            "session_hours": leaf(auth.session_ttl.as_secs() / 3600, at(&["auth", "session_hours"])),
            "default_role": leaf(auth.default_role.clone(), at(&["auth", "default_role"])),
            "dev_user": leaf(auth.dev_user.clone(), at(&["auth", "dev_user"])),
            "bootstrap_token": leaf(auth.bootstrap_token.as_ref().map(|_| REDACTED), "environment"),
            "roles": roles,
            "groups": groups,
            "oidc": oidc,
        },
        "jenkins": jenkins,
        "webhooks": webhooks,
    })
}
