//! The marks a restarted deployer reads on a deployment's row: committed to execute (checked
//! against the pause in the same statement), executed, a cancel asked for, and the NoEcho
//! parameters its template declared.

use app::pause::Pause;

use super::pauses::pause_status;
use super::{CancelAsk, Store, StoreError, to_json};

impl Store {
    /// The moment of execution: records "executing" only if no pause covers the deployment's
    /// environment — one statement, so a pause pressed at any moment before it wins. Returns
    /// the pause that holds the deployment back, if one does.
    /// Fenced on ownership: [`StoreError::LeaseLost`] when another replica drives it now.
    pub async fn commit_execution(&self, id: &str) -> Result<Option<Pause>, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET execution_committed_at = {now}
             WHERE id = ?1 AND finished_at IS NULL AND (owner IS NULL OR owner = ?2)
               AND NOT EXISTS (SELECT 1 FROM pauses WHERE scope = '*' OR scope = deployments.environment)",
        ))
        .bind(id)
        .bind(self.replica())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(None);
        }
        if !self.owns(id).await? {
            return Err(StoreError::LeaseLost(id.to_owned()));
        }
        let environment: Option<String> =
            sqlx::query_scalar(&self.sql("SELECT environment FROM deployments WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let status = pause_status(self.pauses().await?, &[]);
        match environment.as_deref().and_then(|e| status.blocking(e)) {
            Some(pause) => Ok(Some(pause.clone())),
            None => Err(StoreError::Corrupt(format!(
                "deployment {id} could not be marked executing (it ended, or the pause changed)"
            ))),
        }
    }

    /// Keeps the parameters the deployment's template declares NoEcho.
    pub async fn set_no_echo(&self, id: &str, keys: &[String]) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE deployments SET no_echo = ? WHERE id = ?"))
            .bind(to_json(&keys))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every parameter any build deployed (or tried) to the stack declared NoEcho.
    pub async fn no_echo_keys(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(&self.sql(
            "SELECT no_echo FROM deployments
             WHERE environment = ? AND stack_name = ? AND no_echo IS NOT NULL",
        ))
        .bind(environment)
        .bind(stack_name)
        .fetch_all(&self.pool)
        .await?;
        let mut keys = std::collections::BTreeSet::new();
        for row in rows {
            let list: Vec<String> =
                serde_json::from_str(&row).map_err(|_| StoreError::Corrupt("no_echo".into()))?;
            keys.extend(list);
        }
        Ok(keys)
    }

    /// AWS answered the execute call. Fenced on ownership like [`Store::save`].
    pub async fn mark_executed(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET executed_at = {now} WHERE id = ? AND (owner IS NULL OR owner = ?)",
        ))
        .bind(id)
        .bind(self.replica())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(id.to_owned()));
        }
        Ok(())
    }

    /// Whether this replica owns the deployment (or nobody does) and it is still active.
    pub async fn owns(&self, id: &str) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(&self.sql(
            "SELECT COUNT(*) FROM deployments
             WHERE id = ? AND finished_at IS NULL AND (owner IS NULL OR owner = ?)",
        ))
        .bind(id)
        .bind(self.replica())
        .fetch_one(&self.pool)
        .await?;
        Ok(count > 0)
    }

    /// Keeps a cancel request (a restart between the request and its effect still cancels).
    /// A later request may add the confirmation to delete; it never takes it back. Returns false
    /// when the deployment already ended.
    pub async fn request_cancel(&self, id: &str, confirm_delete: bool) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments
             SET cancel_requested_at = COALESCE(cancel_requested_at, {now}),
                 cancel_confirm_delete = {max}(cancel_confirm_delete, ?2)
             WHERE id = ?1 AND finished_at IS NULL",
        ))
        .bind(id)
        .bind(i64::from(confirm_delete))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The cancel request of a deployment, as kept.
    pub async fn cancel_request(&self, id: &str) -> Result<Option<CancelAsk>, StoreError> {
        let row: Option<(Option<String>, i64)> = sqlx::query_as(&self.sql(
            "SELECT cancel_requested_at, cancel_confirm_delete FROM deployments WHERE id = ?",
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(at, confirm_delete)| {
            at.map(|_| CancelAsk {
                confirm_delete: confirm_delete != 0,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Record, StoreError};
    use app::deployment::Deployment;

    fn record(id: &str, environment: &str) -> Record {
        let deployment = Deployment::pending(
            id.into(),
            "web",
            environment,
            &format!("{environment}-WEB"),
            "web-master-1",
            "tester",
        );
        Record::new(deployment)
    }

    #[tokio::test]
    async fn execution_is_committed_only_while_no_pause_covers_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        let mut dev = record("d-1", "DEV");
        let mut prd = record("d-2", "PRD");
        store.insert(&mut dev).await.unwrap();
        store.insert(&mut prd).await.unwrap();
        store
            .pause(Some("PRD"), "release freeze", "ops")
            .await
            .unwrap();
        assert_eq!(store.commit_execution("d-1").await.unwrap(), None);
        let held = store.commit_execution("d-2").await.unwrap().unwrap();
        assert_eq!(held.reason, "release freeze");
        let kept = store.record("d-1").await.unwrap().unwrap();
        assert!(kept.execution_committed && !kept.executed);
        assert!(
            !store
                .record("d-2")
                .await
                .unwrap()
                .unwrap()
                .execution_committed
        );
    }

    #[tokio::test]
    async fn a_cancel_request_is_kept_and_its_confirmation_never_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        let mut d = record("d-1", "DEV");
        store.insert(&mut d).await.unwrap();
        assert!(store.request_cancel("d-1", true).await.unwrap());
        assert!(store.request_cancel("d-1", false).await.unwrap());
        assert_eq!(
            store.cancel_request("d-1").await.unwrap(),
            Some(CancelAsk {
                confirm_delete: true
            })
        );
        // Saving the deployment's progress does not wipe the request.
        store.save(&d).await.unwrap();
        assert!(store.record("d-1").await.unwrap().unwrap().cancel.is_some());
    }

    /// Fencing: once another replica owns a deployment, this one's writes change nothing and
    /// say so (a save, the commit to execute, the mark that AWS answered) — never a silent Ok.
    #[tokio::test]
    async fn writes_of_a_deployment_another_replica_took_over_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        let mut taken = record("d-1", "DEV");
        store.insert(&mut taken).await.unwrap();
        sqlx::query(&store.sql("UPDATE deployments SET owner = 'another-replica' WHERE id = ?"))
            .bind("d-1")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(matches!(
            store.save(&taken).await,
            Err(StoreError::LeaseLost(_))
        ));
        assert!(matches!(
            store.commit_execution("d-1").await,
            Err(StoreError::LeaseLost(_))
        ));
        assert!(matches!(
            store.mark_executed("d-1").await,
            Err(StoreError::LeaseLost(_))
        ));
        let kept = store.record("d-1").await.unwrap().unwrap();
        assert!(!kept.execution_committed && !kept.executed);
        assert!(!store.owns("d-1").await.unwrap());
    }

    /// Owning and driving are one thing: only the deployments a task drives are renewed; one
    /// this replica owns that nothing drives is found, to be picked up again.
    #[tokio::test]
    async fn only_driven_deployments_are_renewed_and_undriven_ones_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        let mut driven = record("d-1", "DEV");
        let mut idle = record("d-2", "STG");
        store.insert(&mut driven).await.unwrap();
        store.insert(&mut idle).await.unwrap();
        let held = store.renew_leases(&["d-1".to_owned()]).await.unwrap();
        assert_eq!(held, ["d-1"]);
        let undriven = store.owned_undriven(&["d-1".to_owned()]).await.unwrap();
        let ids: Vec<&str> = undriven.iter().map(|r| r.deployment.id.as_str()).collect();
        assert_eq!(ids, ["d-2"]);
        assert!(store.renew_leases(&[]).await.unwrap().is_empty());
    }

    /// Leases are written and judged by the database's clock: a claim runs out LEASE after the
    /// database's now, and a row is free once the database's now passes it — whatever the
    /// clock of the replica asking.
    #[tokio::test]
    async fn leases_are_written_and_judged_by_the_databases_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        let mut d = record("d-1", "DEV");
        store.insert(&mut d).await.unwrap();
        let (until, now): (String, String) = {
            let row = sqlx::query(
                &store.sql("SELECT lease_until, {now} AS db_now FROM deployments WHERE id = 'd-1'"),
            )
            .fetch_one(&store.pool)
            .await
            .unwrap();
            use sqlx::Row;
            (row.get("lease_until"), row.get("db_now"))
        };
        let until = crate::store::parse_ts(&until, "lease_until").unwrap();
        let now = crate::store::parse_ts(&now, "now").unwrap();
        let ahead = (until - now).num_milliseconds();
        let lease = crate::store::LEASE.as_millis() as i64;
        assert!(
            (lease - 2_000..=lease).contains(&ahead),
            "the lease runs {ahead} ms past the database's now"
        );
        assert!(store.orphaned().await.unwrap().is_empty());
        // The database's clock says the lease ran out: free, whatever this process thinks.
        sqlx::query(&store.sql("UPDATE deployments SET lease_until = ? WHERE id = 'd-1'"))
            .bind(crate::store::ts(now - chrono::Duration::seconds(1)))
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(store.orphaned().await.unwrap().len(), 1);
    }
}
