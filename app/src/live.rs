//! Live updates in the browser: one `EventSource` on `/api/v1/events` per page, turned into
//! version counters that components watch to refetch what changed (a deployment, a stack).
//! On the server nothing is subscribed; pages render from their resources.

use std::collections::HashMap;

use leptos::prelude::*;

/// Change counters, keyed by `deployment:<id>` and `stack:<env>/<name>`, plus the newest
/// deployment seen per stack (so a deploy started in another tab shows up here).
#[derive(Clone, Copy)]
pub struct Live {
    versions: RwSignal<HashMap<String, u64>>,
    latest: RwSignal<HashMap<String, String>>,
    /// Bumped when the stream says the client missed too much: everything reloads.
    pub everything: RwSignal<u64>,
    pub connected: RwSignal<bool>,
    /// The pause as last pushed by the server; `None` until something was pushed.
    pub pause: RwSignal<Option<crate::pause::PauseStatus>>,
    /// The Jenkins builds panel as last pushed; `None` until something was pushed.
    pub jenkins: RwSignal<Option<crate::jenkins::JenkinsBuilds>>,
    /// What the page's polite live region says last (screen readers read each new sentence
    /// once, without moving the focus).
    pub announcement: RwSignal<String>,
    /// The last sentence said per deployment id.
    said: StoredValue<HashMap<String, String>>,
}

impl Live {
    pub fn new() -> Self {
        Live {
            versions: RwSignal::new(HashMap::new()),
            latest: RwSignal::new(HashMap::new()),
            everything: RwSignal::new(0),
            connected: RwSignal::new(false),
            pause: RwSignal::new(None),
            jenkins: RwSignal::new(None),
            announcement: RwSignal::new(String::new()),
            said: StoredValue::new(HashMap::new()),
        }
    }

    /// A number that changes whenever `key` changes (tracked).
    pub fn version(&self, key: &str) -> u64 {
        self.versions.with(|v| v.get(key).copied().unwrap_or(0)) + self.everything.get()
    }

    /// The newest deployment id seen live for a stack (tracked).
    pub fn latest_for(&self, environment: &str, stack: &str) -> Option<String> {
        self.latest
            .with(|l| l.get(&stack_key(environment, stack)).cloned())
    }

    pub fn bump(&self, key: String) {
        self.versions.update(|v| *v.entry(key).or_default() += 1);
    }

    /// Says `words` through the live region, unless it is what was said last (a panel
    /// re-rendered by an update that changed nothing a person needs to hear).
    pub fn announce(&self, words: String) {
        if self.announcement.with_untracked(|w| *w != words) {
            self.announcement.set(words);
        }
    }

    /// Says how a deployment is doing when that changed; a deployment first seen finished (the
    /// page just loaded) is noted, not said.
    pub fn announce_deployment(&self, id: &str, words: String, active: bool) {
        let before = self.said.with_value(|s| s.get(id).cloned());
        if before.as_ref() == Some(&words) {
            return;
        }
        self.said.update_value(|s| {
            s.insert(id.to_owned(), words.clone());
        });
        if before.is_some() || active {
            self.announce(words);
        }
    }

    pub fn saw_deployment(&self, project: &str, environment: &str, stack: &str, id: &str) {
        self.bump(project_key(project, environment));
        self.bump(ANY_STACK.to_owned());
        let key = stack_key(environment, stack);
        if self
            .latest
            .with_untracked(|l| l.get(&key).map(String::as_str) != Some(id))
        {
            self.latest.update(|l| {
                l.insert(key, id.to_owned());
            });
        }
        self.bump(format!("deployment:{id}"));
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// Bumped on every change of a project's deployments in one environment: its card, history
/// and progress refetch.
pub fn project_key(project: &str, environment: &str) -> String {
    format!("project:{project}/{environment}")
}

/// Bumped whenever a stack of the environment was read fresh after a change (the server pushes
/// the new card): the cards of that environment refetch.
pub fn environment_key(environment: &str) -> String {
    format!("environment:{environment}")
}

/// Bumped on every deployment event and every freshly read stack, of any project: the matrix.
pub const ANY_STACK: &str = "stacks";

/// Bumped when new deploy configs of a project land in S3: its build select refetches.
/// Bumped when the server says the projects changed (`event: projects`).
pub const PROJECTS: &str = "projects";

pub fn builds_key(project: &str) -> String {
    format!("builds:{project}")
}

pub fn stack_key(environment: &str, stack: &str) -> String {
    format!("stack:{environment}/{stack}")
}

/// Subscribes to the server's events for as long as the page lives (browser only).
pub fn connect(live: Live) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        use futures::StreamExt;
        use gloo_net::eventsource::State;
        use gloo_net::eventsource::futures::EventSource;

        use crate::deployment::DeploymentUpdate;
        use crate::model::StackCard;

        let mut reconnecting = false;
        loop {
            let Ok(mut source) = EventSource::new("/api/v1/events") else {
                return;
            };
            let (
                Ok(deployments),
                Ok(stacks),
                Ok(snapshots),
                Ok(pauses),
                Ok(resyncs),
                Ok(jenkins),
                Ok(builds),
                Ok(projects),
            ) = (
                source.subscribe("deployment"),
                source.subscribe("stack"),
                source.subscribe("snapshot"),
                source.subscribe("pause"),
                // The server says this tab fell behind: re-read everything.
                source.subscribe("resync"),
                source.subscribe("jenkins"),
                source.subscribe("builds"),
                source.subscribe("projects"),
            )
            else {
                return;
            };
            live.connected.set(true);
            if reconnecting {
                // A new stream starts from now: refetch what may have changed in between.
                live.everything.update(|n| *n += 1);
            }
            let mut all = futures::stream::select_all([
                deployments,
                stacks,
                snapshots,
                pauses,
                resyncs,
                jenkins,
                builds,
                projects,
            ]);
            // `source` stays alive in this task: dropping it would close the stream.
            while let Some(message) = all.next().await {
                let Ok((kind, event)) = message else {
                    live.connected.set(false);
                    // The browser retries a dropped connection by itself, but gives up after an
                    // HTTP error (e.g. a proxy's 502 while the deployer replaces itself).
                    if matches!(source.state(), State::Closed) {
                        break;
                    }
                    continue;
                };
                live.connected.set(true);
                let data = event.data().as_string().unwrap_or_default();
                match kind.as_str() {
                    "deployment" => {
                        if let Ok(update) =
                            serde_json::from_slice::<DeploymentUpdate>(data.as_bytes())
                        {
                            let d = &update.deployment;
                            live.saw_deployment(&d.project, &d.environment, &d.stack_name, &d.id);
                        }
                    }
                    "stack" => {
                        if let Ok(card) = serde_json::from_slice::<StackCard>(data.as_bytes()) {
                            live.bump(stack_key(&card.environment, &card.name));
                            live.bump(environment_key(&card.environment));
                            live.bump(ANY_STACK.to_owned());
                        }
                    }
                    "pause" => {
                        if let Ok(status) =
                            serde_json::from_slice::<crate::pause::PauseStatus>(data.as_bytes())
                        {
                            live.pause.set(Some(status));
                        }
                    }
                    "jenkins" => {
                        if let Ok(panel) =
                            serde_json::from_slice::<crate::jenkins::JenkinsBuilds>(data.as_bytes())
                        {
                            live.jenkins.set(Some(panel));
                        }
                    }
                    "builds" => {
                        if let Ok(changed) =
                            serde_json::from_slice::<crate::jenkins::BuildsChanged>(data.as_bytes())
                        {
                            live.bump(builds_key(&changed.project));
                        }
                    }
                    // The projects changed (a folder appeared in the bucket, a config reload): the
                    // page's overview is read again.
                    "projects" => live.bump(PROJECTS.to_owned()),
                    _ => live.everything.update(|n| *n += 1),
                }
            }
            source.close();
            live.connected.set(false);
            reconnecting = true;
            let (done, wait) = futures::channel::oneshot::channel::<()>();
            leptos::prelude::set_timeout(
                move || {
                    let _ = done.send(());
                },
                std::time::Duration::from_secs(3),
            );
            let _ = wait.await;
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = live;
}
