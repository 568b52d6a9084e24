//! The webhooks' outbox (`webhook_outbox`): rows are added with the audit entry they announce
//! ([`Store::audit`]), then sent by the webhooks' sender (`notify`) — per webhook in commit
//! order, one at a time, claimed for a while by the replica sending it, retried with backoff,
//! kept once delivered. Every time here (created, due, claimed until) is the database's clock,
//! so replicas whose clocks differ still agree on what is due and whose claim ran out.

use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, NewAudit, Store, StoreError, get_opt_ts, get_ts};

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

/// PostgreSQL: a webhook's rows are written one transaction at a time. Ids come from a sequence
/// when a row is inserted, not when it commits: without this, an entry whose transaction
/// commits late would get a lower id than one already committed — and sent — after it. Held to
/// the commit, the lock makes id order the order of commits. (SQLite has one writer at a time.)
const SERIALIZE: &str = "SELECT count(*) AS locked
     FROM (SELECT pg_advisory_xact_lock(hashtext('webhook_outbox'), hashtext($1))) AS held";

impl Store {
    /// Adds the announcements of one audit entry, inside its transaction (`insert` is
    /// [`INSERT`] in the store's dialect).
    pub(super) async fn enqueue(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        dialect: Dialect,
        insert: &str,
        audit_id: i64,
        announcements: &[Announcement],
    ) -> Result<(), StoreError> {
        if dialect == Dialect::Postgres {
            // Always in the same order, so two transactions never wait on each other's locks.
            let mut webhooks: Vec<&str> =
                announcements.iter().map(|a| a.webhook.as_str()).collect();
            webhooks.sort_unstable();
            webhooks.dedup();
            for webhook in webhooks {
                sqlx::query(SERIALIZE)
                    .bind(webhook)
                    .execute(&mut **tx)
                    .await?;
            }
        }
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

    /// The database's clock plus the seconds bound to `?{param}`, as `{now}` writes times.
    fn later(&self, param: u8) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?{param} || ' seconds')")
            }
            Dialect::Postgres => format!(
                "to_char((clock_timestamp() + ?{param} * interval '1 second') AT TIME ZONE 'UTC', \
                 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
            ),
        }
    }

    /// Takes the webhook's next announcement for sending, for `hold`: its oldest row neither
    /// delivered nor given up — only if that row is due and no other replica holds it. A later
    /// row is never taken while an earlier one waits for its retry, so each webhook hears in
    /// order. One statement, judged by the database's clock: two replicas cannot both take it.
    pub async fn outbox_claim(
        &self,
        webhook: &str,
        hold: Duration,
    ) -> Result<Option<Delivery>, StoreError> {
        let claim = format!(
            "UPDATE webhook_outbox SET claimed_until = {}
             WHERE id = (SELECT MIN(id) FROM webhook_outbox WHERE webhook = ?1 AND status = 'pending')
               AND status = 'pending' AND next_at <= {{now}}
               AND (claimed_until IS NULL OR claimed_until < {{now}})
             RETURNING *",
            self.later(2)
        );
        let row = sqlx::query(&self.sql(&claim))
            .bind(webhook)
            .bind(seconds(hold))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery).transpose()
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

    /// An attempt failed: tried again `retry_in` from now (the database's now), or (`None`)
    /// given up. A row given up meanwhile (its webhook removed) stays given up.
    pub async fn outbox_failed(
        &self,
        id: i64,
        attempts: i64,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<(), StoreError> {
        match retry_in {
            Some(wait) => {
                let retry = format!(
                    "UPDATE webhook_outbox SET attempts = ?1, last_error = ?2, next_at = {},
                         claimed_until = NULL
                     WHERE id = ?4 AND status = 'pending'",
                    self.later(3)
                );
                sqlx::query(&self.sql(&retry))
                    .bind(attempts)
                    .bind(error)
                    .bind(seconds(wait))
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&self.sql(
                    "UPDATE webhook_outbox SET status = 'failed', attempts = ?1, last_error = ?2,
                     claimed_until = NULL
                 WHERE id = ?3 AND status = 'pending'",
                ))
                .bind(attempts)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }

    /// The webhooks that have rows waiting to be sent.
    pub async fn outbox_waiting_webhooks(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT webhook FROM webhook_outbox WHERE status = 'pending' ORDER BY webhook",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("webhook")?)).collect()
    }

    /// Gives up every row of `webhook` still waiting (`failed`, with `reason`): how many.
    pub async fn outbox_give_up(&self, webhook: &str, reason: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE webhook_outbox SET status = 'failed', last_error = ?, claimed_until = NULL
             WHERE webhook = ? AND status = 'pending'",
        ))
        .bind(reason)
        .bind(webhook)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
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

/// Whole seconds, as bound into [`Store::later`] (retries and claims are seconds long).
fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use app::pause::AuditAction;

    use chrono::{DateTime, Utc};

    use super::*;

    /// Announces every entry to one webhook, `chat`, its detail as the payload.
    #[derive(Debug)]
    struct Chat;

    impl Announce for Chat {
        fn announce(&self, entry: &NewAudit<'_>) -> Vec<Announcement> {
            vec![Announcement {
                webhook: "chat".into(),
                event: "paused",
                payload: entry.detail.unwrap_or_default().to_owned(),
            }]
        }
    }

    async fn store(dir: &std::path::Path) -> Store {
        let store = crate::store::test_store(dir).await;
        store.set_announcer(Arc::new(Chat));
        store
    }

    async fn announce(store: &Store, payload: &str) {
        store
            .audit(NewAudit {
                actor: "ops",
                action: AuditAction::Pause,
                detail: Some(payload),
                ..NewAudit::default()
            })
            .await
            .unwrap();
    }

    /// The database's clock, as the store writes times.
    async fn db_now(store: &Store) -> DateTime<Utc> {
        let row = sqlx::query(&store.sql("SELECT {now} AS now"))
            .fetch_one(&store.pool)
            .await
            .unwrap();
        get_ts(&row, "now").unwrap()
    }

    fn payloads(list: &[Delivery]) -> Vec<&str> {
        let mut list: Vec<&Delivery> = list.iter().collect();
        list.sort_by_key(|d| d.id);
        list.iter().map(|d| d.payload.as_str()).collect()
    }

    #[tokio::test]
    async fn a_row_whose_transaction_commits_late_is_not_overtaken() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        // One audit entry's transaction has written its announcement and not committed yet …
        let insert = store.sql(INSERT);
        let mut late = store.pool.begin().await.unwrap();
        let first = [Announcement {
            webhook: "chat".into(),
            event: "paused",
            payload: "first".into(),
        }];
        Store::enqueue(&mut late, store.dialect, &insert, 1, &first)
            .await
            .unwrap();
        // … while another request's entry is written (it commits at once if nothing holds it).
        let second = tokio::spawn({
            let store = store.clone();
            async move { announce(&store, "second").await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let meanwhile = store.outbox_list(10).await.unwrap();
        late.commit().await.unwrap();
        second.await.unwrap();
        assert!(
            meanwhile.is_empty(),
            "a sender could have sent the later announcement first: {meanwhile:?}"
        );
        let all = store.outbox_list(10).await.unwrap();
        assert_eq!(
            payloads(&all),
            ["first", "second"],
            "id order is commit order"
        );
    }

    #[tokio::test]
    async fn a_row_is_not_claimed_before_it_is_due_by_the_database_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        announce(&store, "one").await;
        let id = store.outbox_list(1).await.unwrap()[0].id;
        // Due in ten seconds by the database's clock (as a failed attempt's retry is written).
        sqlx::query(&store.sql("UPDATE webhook_outbox SET next_at = {lease} WHERE id = ?"))
            .bind(id)
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(
            store.outbox_claim("chat", HOLD).await.unwrap().is_none(),
            "claimed a row not yet due"
        );
    }

    const HOLD: Duration = Duration::from_secs(30);

    /// A row's `claimed_until` and `next_at`, as kept.
    async fn times(store: &Store, id: i64) -> (DateTime<Utc>, DateTime<Utc>) {
        let row = sqlx::query(&store.sql(
            "SELECT COALESCE(claimed_until, next_at) AS claimed_until, next_at
             FROM webhook_outbox WHERE id = ?",
        ))
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        (
            get_ts(&row, "claimed_until").unwrap(),
            get_ts(&row, "next_at").unwrap(),
        )
    }

    #[tokio::test]
    async fn a_claim_and_a_retry_are_timed_by_the_database_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        announce(&store, "one").await;
        let before = db_now(&store).await;
        let row = store.outbox_claim("chat", HOLD).await.unwrap().unwrap();
        let after = db_now(&store).await;
        let (claimed_until, _) = times(&store, row.id).await;
        let hold = chrono::Duration::from_std(HOLD).unwrap();
        assert!(
            before + hold <= claimed_until && claimed_until <= after + hold,
            "{before} + 30 s <= {claimed_until} <= {after} + 30 s"
        );
        // Held: not claimed again until the claim runs out.
        assert!(store.outbox_claim("chat", HOLD).await.unwrap().is_none());

        let before = db_now(&store).await;
        store
            .outbox_failed(
                row.id,
                1,
                "the receiver answered 503",
                Some(Duration::from_secs(4)),
            )
            .await
            .unwrap();
        let after = db_now(&store).await;
        let (_, next_at) = times(&store, row.id).await;
        let wait = chrono::Duration::seconds(4);
        assert!(
            before + wait <= next_at && next_at <= after + wait,
            "{before} + 4 s <= {next_at} <= {after} + 4 s"
        );
        assert!(store.outbox_claim("chat", HOLD).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_later_row_is_not_claimed_while_an_earlier_one_waits_for_its_retry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        announce(&store, "first").await;
        announce(&store, "second").await;
        let first = store.outbox_claim("chat", HOLD).await.unwrap().unwrap();
        assert_eq!(first.payload, "first");
        // Held by this replica: another finds nothing to send, not the second row.
        assert!(store.outbox_claim("chat", HOLD).await.unwrap().is_none());
        store
            .outbox_failed(first.id, 1, "no answer", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(store.outbox_claim("chat", HOLD).await.unwrap().is_none());
        // Given up: the second goes on.
        store
            .outbox_failed(first.id, 2, "the receiver answered 404", None)
            .await
            .unwrap();
        let second = store.outbox_claim("chat", HOLD).await.unwrap().unwrap();
        assert_eq!(second.payload, "second");
    }

    #[tokio::test]
    async fn a_webhooks_waiting_rows_are_given_up_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        announce(&store, "first").await;
        announce(&store, "second").await;
        assert_eq!(store.outbox_waiting_webhooks().await.unwrap(), ["chat"]);
        let given_up = store.outbox_give_up("chat", "removed").await.unwrap();
        assert_eq!(given_up, 2);
        assert!(store.outbox_waiting_webhooks().await.unwrap().is_empty());
        let all = store.outbox_list(10).await.unwrap();
        assert!(
            all.iter()
                .all(|d| d.status == "failed" && d.last_error.as_deref() == Some("removed")),
            "{all:?}"
        );
        assert!(store.outbox_claim("chat", HOLD).await.unwrap().is_none());
    }
}
