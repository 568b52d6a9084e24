//! Live configuration: the config file is watched (and re-read on SIGHUP); a valid change is put
//! in place once the file has settled (stopped changing for [`SETTLE`]) — environments and their
//! clients, projects, roles, webhooks, the poll interval — without dropping event streams or
//! deployments in flight. A file that does not parse or check, or a change the running process
//! cannot make (what needs a restart; an environment removed, a project removed or hidden, or a
//! stack renamed under a running deployment), is refused as a whole: the running config stays,
//! and the reason is logged, audited and shown to admins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::LiveEvent;
use app::pause::AuditAction;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::AwsClients;
use crate::catalog::{Catalog, Clients};
use crate::config::Config;
use crate::deploy::{Engine, Settings};
use crate::live::Hub;
use crate::notify::Notifier;
use crate::store::NewAudit;

/// How often the file is looked at (its size, modification time and contents).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a changed file must stay unchanged before it is read.
pub const SETTLE: Duration = Duration::from_millis(500);
/// How often a changed file is looked at while it settles.
const SETTLE_EVERY: Duration = Duration::from_millis(100);

/// The audit trail's actor for a reload.
pub const ACTOR: &str = "config";

/// How the last look at the file ended.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Reload {
    /// The new config runs; what changed.
    Applied {
        at: DateTime<Utc>,
        trigger: String,
        changes: Vec<String>,
    },
    /// Refused as a whole; the running config stays.
    Refused {
        at: DateTime<Utc>,
        trigger: String,
        reason: String,
    },
}

/// Reads the config file as the deployer starts with it: the file, then `DEPLOYER_ADDR`, then
/// the secrets from the environment.
pub fn load(path: &Path) -> Result<Config, String> {
    let mut config = Config::load(path).map_err(|e| e.to_string())?;
    if let Ok(addr) = std::env::var("DEPLOYER_ADDR") {
        config.listen = addr
            .parse()
            .map_err(|_| format!("DEPLOYER_ADDR {addr:?} is not an address like 127.0.0.1:3000"))?;
    }
    config.secrets_from_env()?;
    Ok(config)
}

/// Puts reloaded configs in place.
pub struct Reloader {
    catalog: Arc<Catalog>,
    engine: Arc<Engine>,
    notifier: Arc<Notifier>,
    hub: Arc<Hub>,
    /// Every environment's AWS clients (their base credentials: tests use the emulator's keys).
    aws: Mutex<AwsClients>,
    /// The file the running config came from (`None`: built in code, e.g. by a test).
    path: Mutex<Option<PathBuf>>,
    /// The running config's file text (what `GET /api/v1/config` tells "file" from "default" by).
    text: Mutex<Option<String>>,
    loaded_at: Mutex<DateTime<Utc>>,
    last: Mutex<Option<Reload>>,
    /// Each environment's stack-events reader, with the environment it was started for.
    listeners: Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>,
    /// One reload at a time.
    applying: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Reloader {
    pub fn new(
        catalog: Arc<Catalog>,
        engine: Arc<Engine>,
        notifier: Arc<Notifier>,
        hub: Arc<Hub>,
        aws: AwsClients,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            catalog,
            engine,
            notifier,
            hub,
            aws: Mutex::new(aws),
            path: Mutex::new(None),
            text: Mutex::new(None),
            loaded_at: Mutex::new(Utc::now()),
            last: Mutex::new(None),
            listeners: Mutex::new(HashMap::new()),
            applying: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts (or restarts) the stack-events reader of every environment that has a queue, and
    /// stops those of environments that no longer have one.
    pub fn start_listeners(&self) {
        let config = self.catalog.config();
        let aws = lock(&self.aws).clone();
        let mut listeners = lock(&self.listeners);
        // Keyed by the whole environment: a change of its account or role restarts its reader.
        let wanted: HashMap<String, (String, String)> = config
            .environments
            .iter()
            .filter_map(|e| {
                let queue = e.stack_events.as_ref()?.queue_url.clone();
                Some((e.name.clone(), (format!("{e:?}"), queue)))
            })
            .collect();
        listeners.retain(|env, (key, handle)| {
            let keep = wanted.get(env).is_some_and(|(k, _)| k == key);
            if !keep {
                handle.abort();
            }
            keep
        });
        for (env, (key, queue)) in wanted {
            if listeners.contains_key(&env) {
                continue;
            }
            let Some(clients) = aws.env(&env) else {
                continue;
            };
            let handle = crate::stack_events::spawn_listener(
                self.catalog.stack_signals.clone(),
                env.clone(),
                clients.sqs.clone(),
                queue.clone(),
                self.engine.store().clone(),
            );
            listeners.insert(env, (key, handle.abort_handle()));
        }
    }

    /// The file the running config came from, and its text; watched from now on. A change is
    /// read once the file has stopped changing for [`SETTLE`]: a file written in place (an
    /// editor, a copy) is never applied half-written.
    pub fn watch_file(self: &Arc<Self>, path: PathBuf) {
        *lock(&self.text) = std::fs::read_to_string(&path).ok();
        *lock(&self.path) = Some(path.clone());
        let reloader = Arc::downgrade(self);
        let mut seen = stamp(&path);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                if reloader.strong_count() == 0 {
                    return;
                }
                if stamp(&path) == seen {
                    continue;
                }
                seen = settled(&path).await;
                let Some(reloader) = reloader.upgrade() else {
                    return;
                };
                let _ = reloader.reload("the config file changed").await;
            }
        });
    }

    /// Re-reads the file and applies it (or refuses it, saying why).
    pub async fn reload(&self, trigger: &str) -> Result<Vec<String>, String> {
        let Some(path) = lock(&self.path).clone() else {
            return Err("the deployer was started without a config file".into());
        };
        let text = std::fs::read_to_string(&path).ok();
        let result = match load(&path) {
            Ok(config) => self.apply(config, trigger).await,
            Err(reason) => Err(reason),
        };
        match &result {
            Ok(changes) if !changes.is_empty() => {
                *lock(&self.text) = text;
            }
            // The file says what runs already (e.g. a refused change undone): nothing to
            // apply, and nothing refused any more.
            Ok(_) => {
                let mut last = lock(&self.last);
                if matches!(*last, Some(Reload::Refused { .. })) {
                    *last = Some(Reload::Applied {
                        at: Utc::now(),
                        trigger: trigger.to_owned(),
                        changes: Vec::new(),
                    });
                }
            }
            Err(reason) => self.refused(trigger, reason).await,
        }
        result
    }

    /// Puts `new` in place of the running config; what changed (nothing: empty). Refused as a
    /// whole when the running process cannot make the change.
    pub async fn apply(&self, new: Config, trigger: &str) -> Result<Vec<String>, String> {
        let _one = self.applying.lock().await;
        let old = self.catalog.config();
        needs_no_restart(&old, &new)?;
        for env in old
            .environments
            .iter()
            .filter(|e| new.environment(&e.name).is_none())
        {
            let active = self
                .engine
                .store()
                .active()
                .await
                .map_err(|e| format!("cannot check {}'s deployments: {e}", env.name))?;
            if let Some(id) = active
                .iter()
                .find(|r| r.deployment.environment == env.name)
                .map(|r| r.deployment.id.clone())
            {
                return Err(format!(
                    "environments: {} is removed, but deployment {id} is running there; change the file again when it has ended",
                    env.name
                ));
            }
        }
        self.no_stack_moves_under_a_deployment(&new).await?;
        let changes = changes(&old, &new);
        if changes.is_empty() {
            return Ok(changes);
        }
        let projects_before = self.catalog.projects();
        // Clients: an environment that did not change keeps its own (and its connections); only
        // the changed and new ones are connected.
        let unchanged = |env: &crate::config::Environment| {
            old.environment(&env.name)
                .is_some_and(|o| format!("{o:?}") == format!("{env:?}"))
        };
        let mut aws = lock(&self.aws).clone();
        let changed: Vec<_> = new
            .environments
            .iter()
            .filter(|e| !unchanged(e))
            .cloned()
            .collect();
        if !changed.is_empty() {
            let fresh = AwsClients::connect_environments(&changed, aws.base_credentials()).await;
            for env in &changed {
                aws.set_env(&env.name, fresh.env(&env.name).cloned());
            }
        }
        for env in old
            .environments
            .iter()
            .filter(|e| new.environment(&e.name).is_none())
        {
            aws.set_env(&env.name, None);
        }
        let running = self.catalog.clients();
        let fresh = Clients::from_aws(&new, &aws);
        let mut clients = Clients::default();
        for env in &new.environments {
            let source = match unchanged(env) && running.cfn.contains_key(&env.name) {
                true => &running,
                false => &fresh,
            };
            if let Some(cfn) = source.cfn.get(&env.name) {
                clients.cfn.insert(env.name.clone(), cfn.clone());
            }
            if let Some(ec2) = source.ec2.get(&env.name) {
                clients.ec2.insert(env.name.clone(), ec2.clone());
            }
        }
        self.engine.set_settings(Settings::from_config(&new));
        self.notifier.set_routes(crate::notify::Routes {
            hooks: new.webhooks.clone(),
            public_url: new.auth.public_url.clone(),
        });
        *lock(&self.aws) = aws;
        self.catalog.replace(new, clients);
        self.start_listeners();
        *lock(&self.loaded_at) = Utc::now();
        let projects = self.catalog.projects();
        if projects != projects_before {
            self.hub.publish(LiveEvent::Projects(projects));
        }
        tracing::info!(?changes, trigger, "config reloaded");
        self.audit(AuditAction::ConfigReloaded, &changes.join("; "))
            .await;
        *lock(&self.last) = Some(Reload::Applied {
            at: Utc::now(),
            trigger: trigger.to_owned(),
            changes: changes.clone(),
        });
        Ok(changes)
    }

    /// Refuses a config under which an active deployment's project would no longer deploy to
    /// its stack: the project removed or hidden, its environment dropped, the stack renamed.
    /// (The running deployment would go on, but what it deploys would no longer be shown, and
    /// its stack could be deployed to under the other name at the same time.)
    async fn no_stack_moves_under_a_deployment(&self, new: &Config) -> Result<(), String> {
        let active = self
            .engine
            .store()
            .active()
            .await
            .map_err(|e| format!("cannot check the running deployments: {e}"))?;
        let folders = self.catalog.folders().unwrap_or_default();
        for row in &active {
            let d = &row.deployment;
            match stack_under(new, &folders, &d.project, &d.environment) {
                Some(stack) if stack == d.stack_name => {}
                Some(stack) => {
                    return Err(format!(
                        "projects: {}'s stack in {} would become {stack}, but deployment {} is running on {}; change the file again when it has ended",
                        d.project, d.environment, d.id, d.stack_name
                    ));
                }
                None => {
                    return Err(format!(
                        "projects: {} would no longer deploy to {} (removed, hidden, or without {}), but deployment {} is running on its stack {}; change the file again when it has ended",
                        d.project, d.environment, d.environment, d.id, d.stack_name
                    ));
                }
            }
        }
        Ok(())
    }

    async fn refused(&self, trigger: &str, reason: &str) {
        tracing::warn!(
            reason,
            trigger,
            "config change refused; the running config stays"
        );
        let detail = format!("refused, the running config stays: {reason}");
        self.audit(AuditAction::ConfigRefused, &detail).await;
        *lock(&self.last) = Some(Reload::Refused {
            at: Utc::now(),
            trigger: trigger.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// One line of the audit trail, by the actor `config`.
    async fn audit(&self, action: AuditAction, detail: &str) {
        let entry = NewAudit {
            actor: ACTOR,
            action,
            detail: Some(detail),
            ..Default::default()
        };
        if let Err(e) = self.engine.store().audit(entry).await {
            tracing::warn!(error = %e, action = action.as_str(), "cannot audit the config");
        }
    }

    /// How the last reload ended (`None`: none since start).
    pub fn last(&self) -> Option<Reload> {
        lock(&self.last).clone()
    }

    /// The running config's file, as `GET /api/v1/config` shows it.
    pub fn file(&self) -> Option<PathBuf> {
        lock(&self.path).clone()
    }

    pub fn file_text(&self) -> Option<String> {
        lock(&self.text).clone()
    }

    pub fn loaded_at(&self) -> DateTime<Utc> {
        *lock(&self.loaded_at)
    }
}

/// Waits until the file's stamp has not changed for [`SETTLE`]; that stamp.
async fn settled(path: &Path) -> Option<(u64, Option<std::time::SystemTime>, u64)> {
    let mut last = stamp(path);
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(SETTLE_EVERY).await;
        let now = stamp(path);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= SETTLE {
            return last;
        }
    }
}

/// What identifies the file's contents now (size, modification time, a hash of the text).
fn stamp(path: &Path) -> Option<(u64, Option<std::time::SystemTime>, u64)> {
    use std::hash::{Hash, Hasher};
    let meta = std::fs::metadata(path).ok()?;
    let text = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    Some((meta.len(), meta.modified().ok(), hasher.finish()))
}

/// The stack `project` deploys to in `environment` under `config`, the bucket's folders being
/// `folders` (`None`: it is no project, or does not deploy there) — as the catalog resolves it.
fn stack_under(
    config: &Config,
    folders: &[String],
    project: &str,
    environment: &str,
) -> Option<String> {
    config.environment(environment)?;
    if let Some(configured) = config.project(project) {
        return configured.stack_name(environment).map(str::to_owned);
    }
    let listed = folders.iter().any(|f| f == project);
    if !listed
        || config.hidden.iter().any(|h| h == project)
        || crate::config::project_problem(project, &config.environment_names()).is_some()
    {
        return None;
    }
    crate::config::discovered_project(project, &config.discovered_environments())
        .stack_name(environment)
        .map(str::to_owned)
}

/// What only a restart can change: the addresses, the store, where the builds are, the Jenkins
/// panel and single sign-on.
fn needs_no_restart(old: &Config, new: &Config) -> Result<(), String> {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let fixed: [(&str, bool); 7] = [
        ("listen", old.listen == new.listen),
        ("metrics_listen", old.metrics_listen == new.metrics_listen),
        ("store", old.store == new.store),
        (
            "artifacts.bucket / prefix / environment / notifications_queue_url",
            old.artifacts.bucket == new.artifacts.bucket
                && old.artifacts.prefix == new.artifacts.prefix
                && old.artifacts.environment == new.artifacts.environment
                && old.artifacts.notifications_queue_url == new.artifacts.notifications_queue_url,
        ),
        (
            "artifacts.watch_interval_ms",
            old.artifacts.watch_interval == new.artifacts.watch_interval,
        ),
        ("jenkins", same(&old.jenkins, &new.jenkins)),
        (
            "auth.oidc / auth.public_url",
            same(&old.auth.oidc, &new.auth.oidc) && old.auth.public_url == new.auth.public_url,
        ),
    ];
    let changed: Vec<&str> = fixed
        .iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| *name)
        .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} changed, which takes a restart of the deployer; nothing of this file was applied",
            changed.join(", ")
        ))
    }
}

/// What differs between two configs, in words (empty: nothing).
pub fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.poll_interval != new.poll_interval {
        out.push(format!(
            "poll_interval_ms {} → {}",
            old.poll_interval.as_millis(),
            new.poll_interval.as_millis()
        ));
    }
    let named = |what: &str,
                 before: Vec<(String, String)>,
                 after: Vec<(String, String)>,
                 out: &mut Vec<String>| {
        let mut parts = Vec::new();
        for (name, _) in after
            .iter()
            .filter(|(n, _)| !before.iter().any(|(b, _)| b == n))
        {
            parts.push(format!("+{name}"));
        }
        for (name, _) in before
            .iter()
            .filter(|(n, _)| !after.iter().any(|(a, _)| a == n))
        {
            parts.push(format!("-{name}"));
        }
        for (name, text) in &after {
            if before.iter().any(|(b, t)| b == name && t != text) {
                parts.push(format!("~{name}"));
            }
        }
        if !parts.is_empty() {
            out.push(format!("{what} {}", parts.join(" ")));
        }
    };
    let debug = |name: &str, value: &dyn std::fmt::Debug| (name.to_owned(), format!("{value:?}"));
    named(
        "environments",
        old.environments.iter().map(|e| debug(&e.name, e)).collect(),
        new.environments.iter().map(|e| debug(&e.name, e)).collect(),
        &mut out,
    );
    let order = |c: &Config| {
        c.environments
            .iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
    };
    if order(old) != order(new)
        && old.environments.len() == new.environments.len()
        && !out.iter().any(|c| c.starts_with("environments"))
    {
        out.push("environments reordered".into());
    }
    named(
        "projects",
        old.projects.iter().map(|p| debug(&p.name, p)).collect(),
        new.projects.iter().map(|p| debug(&p.name, p)).collect(),
        &mut out,
    );
    named(
        "hidden folders",
        old.hidden
            .iter()
            .map(|h| (h.clone(), String::new()))
            .collect(),
        new.hidden
            .iter()
            .map(|h| (h.clone(), String::new()))
            .collect(),
        &mut out,
    );
    named(
        "auth.roles",
        old.auth.roles.iter().map(|(n, r)| debug(n, r)).collect(),
        new.auth.roles.iter().map(|(n, r)| debug(n, r)).collect(),
        &mut out,
    );
    named(
        "auth.groups",
        old.auth.groups.iter().map(|(n, r)| debug(n, r)).collect(),
        new.auth.groups.iter().map(|(n, r)| debug(n, r)).collect(),
        &mut out,
    );
    for (what, before, after) in [
        (
            "auth.default_role",
            format!("{:?}", old.auth.default_role),
            format!("{:?}", new.auth.default_role),
        ),
        (
            "auth.allowed_hosts",
            format!("{:?}", old.auth.allowed_hosts),
            format!("{:?}", new.auth.allowed_hosts),
        ),
        (
            "auth.session_ttl",
            format!("{:?}", old.auth.session_ttl),
            format!("{:?}", new.auth.session_ttl),
        ),
        (
            "auth.dev_user",
            format!("{:?}", old.auth.dev_user),
            format!("{:?}", new.auth.dev_user),
        ),
    ] {
        if before != after {
            out.push(what.to_owned());
        }
    }
    named(
        "webhooks",
        old.webhooks.iter().map(|w| debug(&w.name, w)).collect(),
        new.webhooks.iter().map(|w| debug(&w.name, w)).collect(),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [artifacts]
        bucket = "builds"
        environment = "DEV"
        [[environments]]
        name = "DEV"
        account_id = "111111111111"
        region = "eu-west-1"
        [[environments]]
        name = "PRD"
        account_id = "333333333333"
        region = "eu-west-1"
        [[projects]]
        name = "web"
    "#;

    #[test]
    fn changes_are_said_by_section_and_name() {
        let old = Config::parse(BASE).unwrap();
        assert!(changes(&old, &old).is_empty());
        let new = Config::parse(&format!(
            "poll_interval_ms = 500\n{}\n[[projects]]\nname = \"api\"\n[[projects]]\nname = \"tmp\"\nhidden = true\n",
            BASE.replace("333333333333", "444444444444")
        ))
        .unwrap();
        assert_eq!(
            changes(&old, &new),
            [
                "poll_interval_ms 2000 → 500",
                "environments ~PRD",
                "projects +api",
                "hidden folders +tmp"
            ]
        );
    }

    #[test]
    fn what_needs_a_restart_is_refused_by_name() {
        let old = Config::parse(BASE).unwrap();
        let new = Config::parse(&format!("listen = \"127.0.0.1:4001\"\n{BASE}")).unwrap();
        let err = needs_no_restart(&old, &new).unwrap_err();
        assert!(err.starts_with("listen changed"), "{err}");
        let new =
            Config::parse(&BASE.replace("bucket = \"builds\"", "bucket = \"other\"")).unwrap();
        let err = needs_no_restart(&old, &new).unwrap_err();
        assert!(err.contains("artifacts.bucket"), "{err}");
        let new = Config::parse(&BASE.replace("name = \"web\"", "name = \"shop\"")).unwrap();
        assert!(needs_no_restart(&old, &new).is_ok());
    }
}
