//! Webhooks: deployments started and ended, pauses and resumes, announced where teams already
//! are (a chat's incoming webhook, or any endpoint taking JSON).
//!
//! Durable: what to send is written to the store's outbox in the transaction that writes the
//! audit entry ([`crate::store::Store::audit`]), then a sender (one per process; replicas claim
//! rows, so each is sent by one) posts each webhook's rows in order, retrying with backoff while
//! the receiver is down — a restart, or a receiver away for an hour, loses nothing and reorders
//! nothing (a webhook's next row waits until the one before it is delivered or given up). Every
//! attempt of a row carries the same `Idempotency-Key` (the row's id; also `id` in the JSON
//! format), so a receiver that answered too late and got it again can drop the repeat. A
//! receiver that answers "this will never work" (400, 401, 403, 404, 410) or that stays down
//! past the last attempt gets the row marked `failed`, and the next ones go on; so do the rows
//! of a webhook removed from the config.
//! Admins see every delivery (`GET /api/v1/webhooks`). Payloads carry names, builds, people and
//! reasons — never a URL's secret, a token or a parameter's value. A receiver's redirect is not
//! followed (announcements go only where the configured URL says), and what people and AWS wrote
//! reaches a chat as text, never as a mention or a link ([`slack_escape`]).

use std::sync::Arc;
use std::time::Duration;

use app::deployment::DeploymentStatus;
use app::pause::AuditAction;
use chrono::Utc;
use serde_json::json;

use crate::config::webhooks::{Format, Webhook};
use crate::store::{Announce, Announcement, NewAudit, Store};

/// What the store needs to turn an audit entry into announcements.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    pub hooks: Vec<Webhook>,
    /// The deployer's public address, for links to a deployment's page.
    pub public_url: Option<String>,
}

/// The webhooks of this process: what the store announces audit entries as, and what the sender
/// sends them to. Replaceable while running.
#[derive(Debug, Default)]
pub struct Notifier {
    routes: std::sync::RwLock<Arc<Routes>>,
}

impl Notifier {
    pub fn new(routes: Routes) -> Notifier {
        Notifier {
            routes: std::sync::RwLock::new(Arc::new(routes)),
        }
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set_routes(&self, routes: Routes) {
        if let Ok(mut current) = self.routes.write() {
            *current = Arc::new(routes);
        }
    }
}

impl Announce for Notifier {
    fn announce(&self, entry: &NewAudit<'_>) -> Vec<Announcement> {
        announcements(&self.routes(), entry)
    }
}

/// The event an audit entry announces, if any.
fn event_of(entry: &NewAudit<'_>) -> Option<&'static str> {
    Some(match entry.action {
        AuditAction::DeployRequested | AuditAction::RollbackRequested => "started",
        AuditAction::DeployFinished => match entry.outcome? {
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Refused => "refused",
            DeploymentStatus::Cancelled => "cancelled",
            _ => return None,
        },
        AuditAction::Pause => "paused",
        AuditAction::Unpause => "resumed",
        _ => return None,
    })
}

/// The announcements of one audit entry: one per webhook that wants it.
pub fn announcements(routes: &Routes, entry: &NewAudit<'_>) -> Vec<Announcement> {
    let Some(event) = event_of(entry) else {
        return Vec::new();
    };
    let project = match event {
        "paused" | "resumed" => None,
        _ => entry.project,
    };
    let wanting: Vec<&Webhook> = routes
        .hooks
        .iter()
        .filter(|h| h.wants(event, project, entry.environment))
        .collect();
    if wanting.is_empty() {
        return Vec::new();
    }
    let text = words(event, entry, routes.public_url.as_deref());
    let link = match (routes.public_url.as_deref(), entry.deployment_id) {
        (Some(base), Some(id)) => Some(format!("{}/deployments/{id}", base.trim_end_matches('/'))),
        _ => None,
    };
    wanting
        .into_iter()
        .map(|hook| {
            let payload = match hook.format {
                Format::Slack => json!({ "text": text }),
                Format::Json => json!({
                    "event": event,
                    "text": text,
                    "project": project,
                    "environment": entry.environment,
                    "build": entry.build,
                    "deployment_id": entry.deployment_id,
                    "actor": entry.actor,
                    "reason": reason(entry).map(|r| redact(&r)),
                    "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "url": link,
                }),
            };
            Announcement {
                webhook: hook.name.clone(),
                event,
                payload: payload.to_string(),
            }
        })
        .collect()
}

/// Why it ended (or the pause's reason), without the status word the audit trail puts first.
fn reason(entry: &NewAudit<'_>) -> Option<String> {
    let detail = entry.detail?;
    let detail = match entry.outcome {
        Some(status) => detail
            .strip_prefix(status.as_str())
            .map(|rest| rest.trim_start_matches(':').trim())
            .unwrap_or(detail),
        None => detail,
    };
    (!detail.is_empty()).then(|| detail.to_owned())
}

/// The sentence a person reads in the chat (Slack's mrkdwn: `*bold*`, `` `code` ``, links).
fn words(event: &str, e: &NewAudit<'_>, public_url: Option<&str>) -> String {
    // Every word that comes from a person, a build or AWS is escaped; only the deployer's own
    // link below is markup.
    let project = slack_escape(e.project.unwrap_or("?"));
    let env = slack_escape(e.environment.unwrap_or("?"));
    let build = slack_escape(e.build.unwrap_or("?"));
    let actor = slack_escape(e.actor);
    let why = reason(e)
        .map(|r| format!(": {}", slack_escape(&redact(&r))))
        .unwrap_or_default();
    let environments = || {
        e.environment.map_or("every environment".to_owned(), |env| {
            format!("*{}*", slack_escape(env))
        })
    };
    let mut text = match event {
        "started" if e.action == AuditAction::RollbackRequested => {
            format!("↩️ {actor} started rolling *{project}* in *{env}* back to `{build}`")
        }
        "started" => format!("▶️ {actor} started deploying `{build}` of *{project}* to *{env}*"),
        "succeeded" => format!("✅ `{build}` of *{project}* is deployed in *{env}* (by {actor})"),
        "failed" => format!("❌ Deploying `{build}` of *{project}* to *{env}* failed{why}"),
        "refused" => format!("⛔ Deploying `{build}` of *{project}* to *{env}* was refused{why}"),
        "cancelled" => {
            format!("⏹️ Deploying `{build}` of *{project}* to *{env}* was cancelled{why}")
        }
        "paused" => format!("⏸️ {actor} paused deployments in {}{why}", environments()),
        "resumed" => format!("▶️ {actor} resumed deployments in {}", environments()),
        _ => event.to_owned(),
    };
    if let (Some(base), Some(id)) = (public_url, e.deployment_id) {
        text.push_str(&format!(
            " — <{}/deployments/{id}|{id}>",
            base.trim_end_matches('/')
        ));
    } else if let Some(id) = e.deployment_id {
        text.push_str(&format!(" ({id})"));
    }
    text
}

/// Text as Slack asks it escaped (`&`, `<`, `>`): a pause's reason or a template's failure cannot
/// mention `<!channel>` or show a link under other words (`<https://…|the runbook>`).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Words that look like credentials are not repeated into a chat: the deployer's tokens and AWS
/// access keys, whatever a message quotes.
pub fn redact(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ','))
        .map(|word| {
            let core = word.trim_end_matches(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ',')
            });
            let secret = (core.starts_with(crate::secret::TOKEN_PREFIX) && core.len() > 12)
                || ((core.starts_with("AKIA") || core.starts_with("ASIA"))
                    && core.len() == 20
                    && core
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
            match secret {
                true => format!("[redacted]{}", &word[core.len()..]),
                false => word.to_owned(),
            }
        })
        .collect()
}

/// How often the sender looks for rows that are due.
const TICK: Duration = Duration::from_millis(500);
/// How long a replica holds a row it is sending.
const CLAIM: Duration = Duration::from_secs(30);
/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before a row is given up: with the backoff (1 s doubling, at most 5 min apart, each
/// wait jittered down to half), one to two hours of a receiver being down.
pub const MAX_ATTEMPTS: i64 = 30;

/// The wait before attempt `attempts + 1`, jittered ([`crate::backoff::jitter`]).
pub fn backoff(attempts: i64) -> Duration {
    let retry = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    crate::backoff::exponential(Duration::from_secs(1), retry, Duration::from_secs(300))
}

/// Starts this process's sender (it stops when the store is released).
pub fn spawn(store: Store, notifier: Arc<Notifier>) {
    let http = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        // A receiver's redirect would send announcements (and the path's secret, to whoever the
        // receiver names) somewhere not configured: answered 3xx is a failure, as for the
        // Jenkins and identity-provider clients.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("deployer-webhooks")
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot make an HTTP client; nothing will be sent");
            return;
        }
    };
    tokio::spawn(async move {
        // The webhooks whose leftovers were last given up (none yet: at start, rows of webhooks
        // removed while no deployer ran are given up too).
        let mut swept: Option<Vec<String>> = None;
        while !store.is_released() {
            let current = notifier.routes();
            let names: Vec<String> = current.hooks.iter().map(|h| h.name.clone()).collect();
            if swept.as_ref() != Some(&names) && give_up_removed(&store, &names).await {
                swept = Some(names);
            }
            let sends = current
                .hooks
                .iter()
                .map(|hook| send_due(&store, &http, hook));
            futures::future::join_all(sends).await;
            tokio::time::sleep(TICK).await;
        }
    });
}

/// Gives up the waiting rows of webhooks no longer configured: nothing sends them (there is no
/// URL for them any more), and they would stay `pending` forever. Done when this process's
/// webhooks change (a reload) and at start — never on a timer, so a replica running an older
/// config does not give up the rows of a webhook a newer one added. Whether it was done.
async fn give_up_removed(store: &Store, configured: &[String]) -> bool {
    let waiting = match store.outbox_waiting_webhooks().await {
        Ok(waiting) => waiting,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: cannot read the outbox");
            return false;
        }
    };
    for webhook in waiting.iter().filter(|w| !configured.contains(w)) {
        let reason = format!("given up: the webhook {webhook:?} is no longer configured");
        match store.outbox_give_up(webhook, &reason).await {
            Ok(count) => {
                for _ in 0..count {
                    crate::metrics::webhook_delivery("abandoned");
                }
                tracing::warn!(
                    webhook,
                    count,
                    "webhooks: gave up the deliveries of a webhook no longer configured"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, webhook, "webhooks: cannot give up deliveries");
                return false;
            }
        }
    }
    true
}

/// The body sent for a row: the deployer's JSON carries the row's id as `id` (the same as the
/// `Idempotency-Key` header), so a receiver can drop a repeat. Slack's `{"text"}` is sent as it
/// is: Slack neither reads the header nor takes other fields, so it cannot drop a repeat — a
/// chat may show a message twice when its first answer came after the attempt's time limit.
fn body(payload: &str, id: i64) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut fields)) if fields.contains_key("event") => {
            fields.insert("id".to_owned(), id.into());
            serde_json::Value::Object(fields).to_string()
        }
        _ => payload.to_owned(),
    }
}

/// Sends one webhook's due rows, oldest first, until one fails or none is due.
async fn send_due(store: &Store, http: &reqwest::Client, hook: &Webhook) {
    let Some(url) = &hook.url else { return };
    loop {
        // Only the webhook's oldest waiting row, and only once it is due (both judged by the
        // database): a later row never overtakes one waiting for its retry.
        let row = match store.outbox_claim(&hook.name, CLAIM).await {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, webhook = hook.name, "webhooks: cannot claim a delivery");
                return;
            }
        };
        let attempts = row.attempts + 1;
        // A receiver that took a delivery but answered too late gets it again: the key (the
        // same on every attempt of a row) lets it see the repeat.
        let sent = http
            .post(url.expose())
            .header("content-type", "application/json")
            .header("idempotency-key", row.id.to_string())
            .body(body(&row.payload, row.id))
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            // Permanent: the URL will redirect again; the admin gives the webhook the new one.
            Ok(response) if response.status().is_redirection() => Some((
                format!(
                    "the receiver answered {}, a redirect, which is not followed: give the webhook the URL it redirects to",
                    response.status()
                ),
                true,
            )),
            Ok(response) => {
                let status = response.status();
                let permanent = matches!(status.as_u16(), 400 | 401 | 403 | 404 | 410);
                Some((format!("the receiver answered {status}"), permanent))
            }
            Err(e) if e.is_timeout() => Some((
                format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                false,
            )),
            Err(e) if e.is_connect() => Some(("cannot connect to the receiver".to_owned(), false)),
            Err(_) => Some(("the request failed".to_owned(), false)),
        };
        let result = match &failure {
            None => {
                crate::metrics::webhook_delivery("delivered");
                store.outbox_delivered(row.id, attempts).await
            }
            Some((error, permanent)) => {
                let give_up = *permanent || attempts >= MAX_ATTEMPTS;
                crate::metrics::webhook_delivery(if give_up { "given_up" } else { "retried" });
                let retry_in = (!give_up).then(|| backoff(attempts));
                tracing::warn!(
                    webhook = hook.name,
                    delivery = row.id,
                    attempts,
                    error = error.as_str(),
                    gave_up = give_up,
                    "webhooks: a delivery failed"
                );
                store.outbox_failed(row.id, attempts, error, retry_in).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "webhooks: cannot record a delivery");
            return;
        }
        if let Some((_, permanent)) = failure
            && !permanent
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_five_minutes_jittered() {
        for (attempts, cap) in [(1, 1), (2, 2), (5, 16), (12, 300), (MAX_ATTEMPTS, 300)] {
            let cap = Duration::from_secs(cap);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(attempts)).collect();
            for wait in &waits {
                assert!(*wait >= cap / 2 && *wait <= cap, "{attempts}: {wait:?}");
            }
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "{attempts}: no jitter"
            );
        }
    }

    #[test]
    fn slack_text_cannot_mention_everyone_or_disguise_a_link() {
        let routes = Routes {
            hooks: vec![Webhook {
                name: "chat".into(),
                url: Some("https://hooks.example.com/x".into()),
                url_env: None,
                projects: Vec::new(),
                environments: Vec::new(),
                events: crate::config::webhooks::EVENTS
                    .iter()
                    .map(|e| e.to_string())
                    .collect(),
                format: Format::Slack,
            }],
            public_url: Some("https://deployer.example.com".into()),
        };
        // A template's failure reason is AWS's text, which quotes what the template says.
        let entry = NewAudit {
            actor: "<!here>",
            action: AuditAction::DeployFinished,
            project: Some("web"),
            environment: Some("DEV"),
            build: Some("web-master-1"),
            deployment_id: Some("d-1"),
            detail: Some("failed: <!channel> see <http://evil.example|the runbook> & retry"),
            outcome: Some(DeploymentStatus::Failed),
        };
        let sent = announcements(&routes, &entry);
        let payload: serde_json::Value = serde_json::from_str(&sent[0].payload).unwrap();
        let text = payload["text"].as_str().unwrap();
        assert!(
            text.contains(
                "failed: &lt;!channel&gt; see &lt;http://evil.example|the runbook&gt; &amp; retry"
            ),
            "{text}"
        );
        assert!(
            !text.contains("<!") && !text.contains("<http://evil"),
            "{text}"
        );
        assert!(
            text.ends_with(" — <https://deployer.example.com/deployments/d-1|d-1>"),
            "the deployer's own link still works: {text}"
        );
    }

    #[test]
    fn credentials_in_a_message_are_not_repeated() {
        let text = redact("token dpl_abcdefghijklmnop failed, key=AKIAABCDEFGHIJKLMNOP ok");
        assert_eq!(text, "token [redacted] failed, key=[redacted] ok");
    }
}
