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
    pub async fn commit_execution(&self, id: &str) -> Result<Option<Pause>, StoreError> {
        let done = sqlx::query(&self.sql(
            "UPDATE deployments SET execution_committed_at = {now}
             WHERE id = ?1 AND finished_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM pauses WHERE scope = '*' OR scope = deployments.environment)",
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(None);
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

    /// AWS answered the execute call.
    pub async fn mark_executed(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE deployments SET executed_at = {now} WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
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
    use crate::store::Record;
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
}
