//! The `live_events` table (PostgreSQL only): the event stream shared by every replica. Ids are
//! the database's and commit in order (one writer at a time, under an advisory lock), so a
//! reader that has seen id N has seen everything before it.

use sqlx::Row;

use super::{Dialect, Store, StoreError, ts};

/// The channel replicas LISTEN on; the payload is the new event's id.
pub const CHANNEL: &str = "deployer_events";
/// The channel a replica forwards a stack event on when the deployment of that stack is not its
/// own (SQS hands each message to one replica); the payload is `<environment>/<stack name>`.
pub const STACK_EVENTS_CHANNEL: &str = "deployer_stack_events";
/// The advisory lock that orders appends (an arbitrary number, the deployer's own).
const APPEND_LOCK: i64 = 0x6465_706c_6f79;

impl Store {
    /// Whether live events go through the store (several replicas share it).
    pub fn shares_live_events(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Appends an event and notifies every replica; its id, once committed.
    pub async fn append_live_event(&self, body: &str) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        let body = body.to_owned();
        Store::uncancellable(async move {
            let mut tx = pool.begin().await?;
            // Ids are taken and committed one writer at a time: a reader never sees N+1 before N.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK)
                .execute(&mut *tx)
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO live_events (at, body) VALUES ($1, $2) RETURNING id",
            )
            .bind(ts(chrono::Utc::now()))
            .bind(&body)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(u64::try_from(id).unwrap_or_default())
        })
        .await
    }

    /// Tells every replica that a stack has news (a pushed stack event this replica heard but
    /// does not watch): the one driving its deployment reads the stack at once.
    pub async fn forward_stack_event(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(STACK_EVENTS_CHANNEL)
            .bind(format!("{environment}/{stack_name}"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events after `after`, oldest first, at most `limit`.
    pub async fn live_events_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, body FROM live_events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                Ok((u64::try_from(id).unwrap_or_default(), r.try_get("body")?))
            })
            .collect()
    }

    /// The newest event's id (`None`: none yet): no browser can have seen a later one.
    pub async fn newest_live_event(&self) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM live_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.and_then(|i| u64::try_from(i).ok()))
    }

    /// The newest `count` events' first id minus one: where a replica starting now begins
    /// reading (so its backlog holds what a reconnecting browser may ask for).
    pub async fn live_events_start(&self, count: u32) -> Result<u64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(id) - 1 FROM (SELECT id FROM live_events ORDER BY id DESC LIMIT $1) newest",
        )
        .bind(i64::from(count))
        .fetch_one(&self.pool)
        .await?;
        Ok(id.and_then(|i| u64::try_from(i).ok()).unwrap_or(0))
    }

    /// Forgets all but the newest `keep` events.
    pub async fn prune_live_events(&self, keep: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM live_events WHERE id <= (SELECT MAX(id) FROM live_events) - $1",
        )
        .bind(i64::from(keep))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
