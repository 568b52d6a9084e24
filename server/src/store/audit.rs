//! The `audit` table: appended to, never updated or deleted (triggers refuse both). A finished
//! deployment's outcome is its own column, not read back out of the words.

use app::deployment::DeploymentStatus;
use app::pause::{AuditAction, AuditEntry};
use sqlx::Row;

use super::{Store, StoreError, get_ts};

/// An audit entry to append.
#[derive(Clone, Copy, Debug)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: AuditAction,
    pub project: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub build: Option<&'a str>,
    pub deployment_id: Option<&'a str>,
    /// The reason, or the outcome in words.
    pub detail: Option<&'a str>,
    /// How a deployment ended (`deploy_finished` only).
    pub outcome: Option<DeploymentStatus>,
}

impl Default for NewAudit<'_> {
    fn default() -> Self {
        NewAudit {
            actor: "",
            action: AuditAction::DeployRequested,
            project: None,
            environment: None,
            build: None,
            deployment_id: None,
            detail: None,
            outcome: None,
        }
    }
}

/// Which entries to read, newest first.
#[derive(Clone, Copy, Debug)]
pub struct AuditSearch<'a> {
    pub environment: Option<&'a str>,
    pub project: Option<&'a str>,
    pub action: Option<AuditAction>,
    pub actor: Option<&'a str>,
    /// Entries older than this id.
    pub before: Option<i64>,
    pub limit: u32,
}

impl Store {
    /// Appends to the audit trail (the table refuses updates and deletes), and — in the same
    /// transaction — the announcements of the entry to the webhooks that want them.
    pub async fn audit(&self, entry: NewAudit<'_>) -> Result<(), StoreError> {
        let announcements = self.announcements(&entry);
        let insert = self.sql(
            "INSERT INTO audit (at, actor, action, project, environment, build, deployment_id, detail, outcome)
             VALUES ({now}, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        );
        let query = sqlx::query(&insert)
            .bind(entry.actor)
            .bind(entry.action.as_str())
            .bind(entry.project)
            .bind(entry.environment)
            .bind(entry.build)
            .bind(entry.deployment_id)
            .bind(entry.detail)
            .bind(entry.outcome.map(DeploymentStatus::as_str));
        if announcements.is_empty() {
            query.execute(&self.pool).await?;
            return Ok(());
        }
        drop(query);
        let owned = |v: Option<&str>| v.map(str::to_owned);
        let (actor, action) = (entry.actor.to_owned(), entry.action.as_str());
        let (project, environment) = (owned(entry.project), owned(entry.environment));
        let (build, deployment_id) = (owned(entry.build), owned(entry.deployment_id));
        let (detail, outcome) = (
            owned(entry.detail),
            entry.outcome.map(DeploymentStatus::as_str),
        );
        let outbox = self.sql(super::outbox::INSERT);
        let (pool, dialect) = (self.pool.clone(), self.dialect);
        Store::uncancellable(async move {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query(&insert)
                .bind(actor)
                .bind(action)
                .bind(project)
                .bind(environment)
                .bind(build)
                .bind(deployment_id)
                .bind(detail)
                .bind(outcome)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
            Store::enqueue(&mut tx, dialect, &outbox, id, &announcements).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Appends to the audit trail where the action itself must go on: a failure is logged.
    pub async fn audit_or_log(&self, entry: NewAudit<'_>) {
        if let Err(e) = self.audit(entry).await {
            tracing::error!(error = %e, action = entry.action.as_str(), "could not write the audit trail");
        }
    }

    /// The audit trail, newest first.
    pub async fn audit_list(&self, q: &AuditSearch<'_>) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT * FROM audit
             WHERE (?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR project = ?2)
               AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR actor = ?4) AND (?5 IS NULL OR id < ?5)
             ORDER BY id DESC LIMIT ?6",
        ))
        .bind(q.environment)
        .bind(q.project)
        .bind(q.action.map(AuditAction::as_str))
        .bind(q.actor)
        .bind(q.before)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let action: String = r.try_get("action")?;
                let action = AuditAction::parse(&action)
                    .ok_or_else(|| StoreError::Corrupt("audit action".into()))?;
                let detail: Option<String> = r.try_get("detail")?;
                let outcome: Option<String> = r.try_get("outcome")?;
                let reason = match action {
                    AuditAction::DeployFinished
                    | AuditAction::DeployRequested
                    | AuditAction::RollbackRequested => None,
                    _ => detail.clone(),
                };
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: get_ts(r, "at")?,
                    actor: r.try_get("actor")?,
                    action,
                    project: r.try_get("project")?,
                    environment: r.try_get("environment")?,
                    build: r.try_get("build")?,
                    deployment_id: r.try_get("deployment_id")?,
                    detail,
                    reason,
                    outcome,
                })
            })
            .collect()
    }
}
