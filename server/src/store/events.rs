//! The `stack_events` table: the CloudFormation events of each deployment, kept once each.

use app::deployment::StackEvent;
use sqlx::Row;

use super::{Store, StoreError, get_ts, ts};

impl Store {
    /// Appends stack events; events already kept are ignored.
    pub async fn add_events(
        &self,
        deployment_id: &str,
        events: &[StackEvent],
    ) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO stack_events (deployment_id, event_id, timestamp, logical_id, resource_type, status, reason)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        );
        let pool = self.pool.clone();
        let deployment_id = deployment_id.to_owned();
        let events = events.to_vec();
        Store::uncancellable(async move {
            let mut tx = pool.begin().await?;
            for e in &events {
                sqlx::query(&sql)
                    .bind(&deployment_id)
                    .bind(&e.id)
                    .bind(ts(e.timestamp))
                    .bind(&e.logical_id)
                    .bind(&e.resource_type)
                    .bind(&e.status)
                    .bind(&e.reason)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// A deployment's stack events, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<StackEvent>, StoreError> {
        let rows =
            sqlx::query(&self.sql(
                "SELECT * FROM stack_events WHERE deployment_id = ? ORDER BY timestamp, {seq}",
            ))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StackEvent {
                    id: r.try_get("event_id")?,
                    timestamp: get_ts(r, "timestamp")?,
                    logical_id: r.try_get("logical_id")?,
                    resource_type: r.try_get("resource_type")?,
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }
}
