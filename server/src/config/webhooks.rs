//! `[[webhooks]]`: where deployments and pauses are announced (a chat's incoming webhook, or any
//! HTTP endpoint taking JSON).
//!
//! ```toml
//! [[webhooks]]
//! name = "web-team"                          # shown to admins with each delivery
//! url_env = "DEPLOYER_WEBHOOK_WEB_TEAM"      # the variable holding the URL (it is the secret;
//!                                            #   the final one: redirects are not followed)
//! # url = "https://hooks.slack.com/…"       # or the URL itself
//! projects = ["web"]                         # default: every project
//! environments = ["STG", "PRD"]              # default: every environment
//! events = ["failed", "succeeded"]           # default: all (started succeeded failed refused
//!                                            #   cancelled paused resumed)
//! format = "slack"                           # `slack` ({"text": …}, the default) or `json`
//! ```

use serde::Deserialize;

/// What a webhook is told about.
pub const EVENTS: [&str; 7] = [
    "started",
    "succeeded",
    "failed",
    "refused",
    "cancelled",
    "paused",
    "resumed",
];

#[derive(Clone, Debug)]
pub struct Webhook {
    pub name: String,
    /// From the file, or read from `url_env` at start; `None` until then. The URL is the
    /// secret (whoever has it can post): never printed whole ([`Webhook::shown_url`]).
    pub url: Option<crate::secret::Secret>,
    pub url_env: Option<String>,
    /// Empty: every project.
    pub projects: Vec<String>,
    /// Empty: every environment.
    pub environments: Vec<String>,
    /// Of [`EVENTS`]; every one when the file names none.
    pub events: Vec<String>,
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"text": "…"}`: Slack's (and Mattermost's, Rocket.Chat's, Teams workflows') incoming
    /// webhooks.
    Slack,
    /// The event's fields, and the same `text`.
    Json,
}

impl Webhook {
    /// Whether this webhook hears of `event` in `project` (none: a pause) and `environment`
    /// (none: every environment, e.g. a pause of all of them).
    pub fn wants(&self, event: &str, project: Option<&str>, environment: Option<&str>) -> bool {
        self.events.iter().any(|e| e == event)
            && project
                .is_none_or(|p| self.projects.is_empty() || self.projects.iter().any(|x| x == p))
            && environment.is_none_or(|e| {
                self.environments.is_empty() || self.environments.iter().any(|x| x == e)
            })
    }

    /// The URL as it may be shown: scheme and host only (the path is often the secret).
    pub fn shown_url(&self) -> String {
        let Some(url) = &self.url else {
            return format!("(from ${})", self.url_env.as_deref().unwrap_or("?"));
        };
        match url.expose().split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or_default();
                format!("{scheme}://{host}/…")
            }
            None => "…".to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    name: String,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    environments: Vec<String>,
    events: Option<Vec<String>>,
    format: Option<String>,
}

pub fn check(raw: Vec<RawWebhook>, environments: &[String]) -> Result<Vec<Webhook>, String> {
    let mut out: Vec<Webhook> = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let at = format!("webhooks[{i}]");
        let name = w.name.trim().to_owned();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "{at}.name: {name:?} must be 1-64 letters, digits, '-', '_' or '.'"
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(format!("{at}.name: {name:?} is listed twice"));
        }
        let url = match (w.url, &w.url_env) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: give url or url_env, not both"));
            }
            (None, None) => {
                return Err(format!(
                    "{at}: needs url_env (the variable holding the URL) or url"
                ));
            }
            (Some(url), None) => Some(check_url(&at, url.trim())?.into()),
            (None, Some(_)) => None,
        };
        for p in &w.projects {
            // A project may be a folder of the bucket not named in the config.
            if !super::check::is_project_name(p) {
                return Err(format!(
                    "{at}.projects: {p:?} is not a project's name (lower-case letters, digits and dashes)"
                ));
            }
        }
        for e in &w.environments {
            if !environments.contains(e) {
                return Err(format!("{at}.environments: no environment is called {e:?}"));
            }
        }
        let events = match w.events {
            None => EVENTS.iter().map(|e| e.to_string()).collect(),
            Some(events) => {
                if events.is_empty() {
                    return Err(format!("{at}.events: names no event; leave it out for all"));
                }
                for e in &events {
                    if !EVENTS.contains(&e.as_str()) {
                        return Err(format!(
                            "{at}.events: {e:?} is not one of {}",
                            EVENTS.join(", ")
                        ));
                    }
                }
                events
            }
        };
        let format = match w.format.as_deref() {
            None | Some("slack") => Format::Slack,
            Some("json") => Format::Json,
            Some(other) => {
                return Err(format!("{at}.format: {other:?} is not slack or json"));
            }
        };
        out.push(Webhook {
            name,
            url,
            url_env: w.url_env,
            projects: w.projects,
            environments: w.environments,
            events,
            format,
        });
    }
    Ok(out)
}

/// An http(s) URL (checked when the file or the variable gives it).
pub fn check_url(at: &str, url: &str) -> Result<String, String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
        return Err(format!("{at}.url: must be an http:// or https:// URL"));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Webhook>, String> {
        #[derive(Deserialize)]
        struct F {
            webhooks: Vec<RawWebhook>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        check(f.webhooks, &["DEV".into(), "PRD".into()])
    }

    #[test]
    fn a_webhook_hears_what_it_names_and_hides_its_url() {
        let hooks = parse(
            "[[webhooks]]\nname = \"chat\"\nurl = \"https://hooks.example.com/services/T0/B0/secret\"\nenvironments = [\"PRD\"]\nevents = [\"failed\", \"paused\"]\n",
        )
        .unwrap();
        let hook = &hooks[0];
        assert!(hook.wants("failed", Some("web"), Some("PRD")));
        assert!(!hook.wants("failed", Some("web"), Some("DEV")));
        assert!(!hook.wants("succeeded", Some("web"), Some("PRD")));
        assert!(hook.wants("paused", None, None), "a pause of everything");
        assert_eq!(hook.shown_url(), "https://hooks.example.com/…");
        assert_eq!(hook.format, Format::Slack);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, words) in [
            ("name = \"a\"", "needs url_env"),
            ("name = \"a\"\nurl = \"ftp://x\"", "http"),
            (
                "name = \"a\"\nurl_env = \"X\"\nprojects = [\"Api_2\"]",
                "\"Api_2\" is not a project's name",
            ),
            (
                "name = \"a\"\nurl_env = \"X\"\nevents = [\"deployed\"]",
                "is not one of",
            ),
            ("name = \"a b\"\nurl_env = \"X\"", "letters"),
            (
                "name = \"a\"\nurl_env = \"X\"\nformat = \"xml\"",
                "slack or json",
            ),
        ] {
            let error = parse(&format!("[[webhooks]]\n{text}\n")).unwrap_err();
            assert!(error.contains(words), "{text}: {error}");
        }
    }
}
