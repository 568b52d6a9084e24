//! The webhooks as admins see them: where each one goes (its URL's host only) and what it hears
//! of, and the newest deliveries with their status, attempts and last error.

use serde::Serialize;

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::Limit;
use crate::store::Delivery;

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct WebhooksView {
    pub webhooks: Vec<WebhookView>,
    /// Newest first.
    pub deliveries: Vec<Delivery>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct WebhookView {
    pub name: String,
    /// Scheme and host: the rest of a webhook's URL is often its secret.
    pub url: String,
    /// Empty: every project.
    pub projects: Vec<String>,
    /// Empty: every environment.
    pub environments: Vec<String>,
    pub events: Vec<String>,
    pub format: &'static str,
}

impl Services {
    pub async fn webhooks(&self, actor: &Actor, limit: Limit) -> Result<WebhooksView, AppError> {
        actor.require_admin("seeing the webhooks and their deliveries")?;
        let routes = self.notifier.routes();
        let webhooks = routes
            .hooks
            .iter()
            .map(|h| WebhookView {
                name: h.name.clone(),
                url: h.shown_url(),
                projects: h.projects.clone(),
                environments: h.environments.clone(),
                events: h.events.clone(),
                format: match h.format {
                    crate::config::webhooks::Format::Slack => "slack",
                    crate::config::webhooks::Format::Json => "json",
                },
            })
            .collect();
        Ok(WebhooksView {
            webhooks,
            deliveries: self.store.outbox_list(limit.get()).await?,
        })
    }
}
