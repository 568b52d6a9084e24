//! The `pauses` table: one row per paused scope (`*` = every environment).

use app::pause::{Pause, PauseStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, get_ts};

impl Store {
    /// Pauses a scope (`None` = every environment). Returns false when it was already paused
    /// (the first pause, its reason and time, stand).
    pub async fn pause(
        &self,
        environment: Option<&str>,
        reason: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.sql(
            "INSERT INTO pauses (scope, reason, actor, since) VALUES (?, ?, ?, {now})
             ON CONFLICT (scope) DO NOTHING",
        ))
        .bind(environment.unwrap_or("*"))
        .bind(reason)
        .bind(actor)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lifts the pause of one environment, or every pause (`None`). Returns what was lifted.
    pub async fn unpause(&self, environment: Option<&str>) -> Result<Vec<Pause>, StoreError> {
        let rows =
            sqlx::query(&self.sql("DELETE FROM pauses WHERE ?1 IS NULL OR scope = ?1 RETURNING *"))
                .bind(environment)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(pause_from_row).collect()
    }

    pub async fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        let rows = sqlx::query("SELECT * FROM pauses ORDER BY scope = '*' DESC, since")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(pause_from_row).collect()
    }
}

pub(super) fn pause_from_row(r: &AnyRow) -> Result<Pause, StoreError> {
    let scope: String = r.try_get("scope")?;
    Ok(Pause {
        environment: (scope != "*").then_some(scope),
        reason: r.try_get("reason")?,
        actor: r.try_get("actor")?,
        since: get_ts(r, "since")?,
    })
}

/// The pause as the API shows it, given the pauses and every configured environment.
pub fn pause_status(pauses: Vec<Pause>, all_environments: &[String]) -> PauseStatus {
    let all = pauses.iter().any(|p| p.environment.is_none());
    let environments = if all {
        all_environments.to_vec()
    } else {
        pauses
            .iter()
            .filter_map(|p| p.environment.clone())
            .collect()
    };
    let first = pauses.first().cloned();
    PauseStatus {
        paused: !pauses.is_empty(),
        reason: first.as_ref().map(|p| p.reason.clone()),
        actor: first.as_ref().map(|p| p.actor.clone()),
        since: first.as_ref().map(|p| p.since),
        all,
        environments,
        pauses,
    }
}
