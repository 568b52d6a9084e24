//! The webhooks as admins see them: where each one goes (its URL's host only) and what it hears
//! of, and the newest deliveries with their status, attempts and last error.

use app::model::{WebhookView, WebhooksView};

use super::{Actor, Services};
use crate::error::AppError;
use crate::ids::Limit;

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
                }
                .to_owned(),
            })
            .collect();
        Ok(WebhooksView {
            webhooks,
            deliveries: self.store.outbox_list(limit.get()).await?,
        })
    }
}
