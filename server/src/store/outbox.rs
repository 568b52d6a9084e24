//! The webhooks' outbox (`webhook_outbox`): rows are added with the audit entry they announce
//! ([`Store::audit`]), then sent by the webhooks' sender (`notify`) — per webhook in id order, one at a time,
//! claimed for a while by the replica sending it, retried with backoff, kept once delivered.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{NewAudit, Store, StoreError, get_opt_ts, get_ts, ts};

/// One announcement of an audit entry, for one webhook.
#[derive(Clone, Debug)]
pub struct Announcement {
    pub webhook: String,
    pub event: &'static str,
    pub payload: String,
}

/// Turns an audit entry into the announcements the webhooks want (the notifier knows the
/// webhooks and the words; the store only writes them with the entry).
pub trait Announce: Send + Sync + std::fmt::Debug {
    fn announce(&self, entry: &NewAudit<'_>) -> Vec<Announcement>;
}

/// One announcement to one webhook, as kept (the wire type).
pub type Delivery = app::model::WebhookDelivery;

fn delivery(r: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get("id")?,
        webhook: r.try_get("webhook")?,
        event: r.try_get("event")?,
        audit_id: r.try_get("audit_id")?,
        payload: r.try_get("payload")?,
        created_at: get_ts(r, "created_at")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_at: get_ts(r, "next_at")?,
        last_error: r.try_get("last_error")?,
        delivered_at: get_opt_ts(r, "delivered_at")?,
    })
}

/// One announcement into the outbox (written once, spelled per dialect by `Store::sql`).
pub(super) const INSERT: &str =
    "INSERT INTO webhook_outbox (webhook, event, audit_id, payload, created_at, next_at)
                 VALUES (?, ?, ?, ?, {now}, {now})";

impl Store {
    /// Adds the announcements of one audit entry, inside its transaction (`insert` is
    /// [`INSERT`] in the store's dialect).
    pub(super) async fn enqueue(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        insert: &str,
        audit_id: i64,
        announcements: &[Announcement],
    ) -> Result<(), StoreError> {
        for a in announcements {
            sqlx::query(insert)
                .bind(&a.webhook)
                .bind(a.event)
                .bind(audit_id)
                .bind(&a.payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The webhook's next announcement to send: its oldest one neither delivered nor given up.
    pub async fn outbox_head(&self, webhook: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT * FROM webhook_outbox WHERE webhook = ? AND status = 'pending' ORDER BY id LIMIT 1",
        ))
        .bind(webhook)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// Takes the row for sending until `until`, unless another replica holds it: whether taken.
    pub async fn outbox_claim(&self, id: i64, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE webhook_outbox SET claimed_until = ?
             WHERE id = ? AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < {now})",
        ))
        .bind(ts(until))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn outbox_delivered(&self, id: i64, attempts: i64) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "UPDATE webhook_outbox SET status = 'delivered', attempts = ?, delivered_at = {now},
                 claimed_until = NULL, last_error = NULL
             WHERE id = ?",
        ))
        .bind(attempts)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An attempt failed: tried again at `next_at`, or (`None`) given up.
    pub async fn outbox_failed(
        &self,
        id: i64,
        attempts: i64,
        error: &str,
        next_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let status = if next_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        sqlx::query(&self.sql(
            "UPDATE webhook_outbox SET status = ?, attempts = ?, last_error = ?,
                 next_at = COALESCE(?, next_at), claimed_until = NULL
             WHERE id = ?",
        ))
        .bind(status)
        .bind(attempts)
        .bind(error)
        .bind(next_at.map(ts))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest deliveries (every webhook), newest first.
    pub async fn outbox_list(&self, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT * FROM webhook_outbox ORDER BY id DESC LIMIT ?"))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery).collect()
    }
}
