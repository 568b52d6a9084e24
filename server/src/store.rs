//! The store: SQLite through sqlx, migrations embedded and applied at start. Deployments, their
//! steps, change sets and stack events live here; the one-active-deployment-per-stack rule is a
//! unique index, so two racing requests cannot both start.

use std::path::Path;
use std::str::FromStr;

use app::deployment::{
    ChangeSummary, Deployment, DeploymentDetail, DeploymentStatus, Operation, StackEvent, Step,
    StepName,
};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

/// A deployment with what the engine needs to resume it.
#[derive(Clone, Debug)]
pub struct Record {
    pub deployment: Deployment,
    pub steps: Vec<Step>,
    pub change_set: Option<ChangeSummary>,
    pub stack_id: Option<String>,
    pub change_set_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("deployment {0} is already active on this stack")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Filters for history.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub project: Option<String>,
    pub environment: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating the file and its folder on first run) and migrates.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Inserts a new deployment; refuses when the stack already has an active one.
    pub async fn insert(&self, record: &Record) -> Result<(), StoreError> {
        let d = &record.deployment;
        let result = sqlx::query(
            "INSERT INTO deployments (id, project, environment, stack_name, build, status, operation, step,
                actor, started_at, finished_at, message, rolled_back, resources_total, resources_done,
                stack_id, change_set_name, change_set, steps)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&d.id)
        .bind(&d.project)
        .bind(&d.environment)
        .bind(&d.stack_name)
        .bind(&d.build)
        .bind(d.status.as_str())
        .bind(d.operation.map(operation_str))
        .bind(d.step.map(step_str))
        .bind(&d.actor)
        .bind(d.started_at)
        .bind(d.finished_at)
        .bind(&d.message)
        .bind(d.rolled_back)
        .bind(d.resources_total)
        .bind(d.resources_done)
        .bind(&record.stack_id)
        .bind(&record.change_set_name)
        .bind(record.change_set.as_ref().map(to_json))
        .bind(to_json(&record.steps))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let active = self.active_on(&d.environment, &d.stack_name).await?;
                Err(StoreError::Conflict(active.unwrap_or_default()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn active_on(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM deployments WHERE environment = ? AND stack_name = ? AND finished_at IS NULL",
        )
        .bind(environment)
        .bind(stack_name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes the deployment's current state (everything but its events).
    pub async fn save(&self, record: &Record) -> Result<(), StoreError> {
        let d = &record.deployment;
        sqlx::query(
            "UPDATE deployments SET status = ?, operation = ?, step = ?, finished_at = ?, message = ?,
                rolled_back = ?, resources_total = ?, resources_done = ?, stack_id = ?, change_set_name = ?,
                change_set = ?, steps = ?
             WHERE id = ?",
        )
        .bind(d.status.as_str())
        .bind(d.operation.map(operation_str))
        .bind(d.step.map(step_str))
        .bind(d.finished_at)
        .bind(&d.message)
        .bind(d.rolled_back)
        .bind(d.resources_total)
        .bind(d.resources_done)
        .bind(&record.stack_id)
        .bind(&record.change_set_name)
        .bind(record.change_set.as_ref().map(to_json))
        .bind(to_json(&record.steps))
        .bind(&d.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends stack events; events already kept are ignored.
    pub async fn add_events(
        &self,
        deployment_id: &str,
        events: &[StackEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in events {
            sqlx::query(
                "INSERT OR IGNORE INTO stack_events (deployment_id, event_id, timestamp, logical_id, resource_type, status, reason)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(deployment_id)
            .bind(&e.id)
            .bind(e.timestamp)
            .bind(&e.logical_id)
            .bind(&e.resource_type)
            .bind(&e.status)
            .bind(&e.reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query("SELECT * FROM deployments WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    pub async fn detail(&self, id: &str) -> Result<Option<DeploymentDetail>, StoreError> {
        let Some(record) = self.record(id).await? else {
            return Ok(None);
        };
        let events = self.events(id).await?;
        Ok(Some(DeploymentDetail {
            deployment: record.deployment,
            steps: record.steps,
            change_set: record.change_set,
            events,
        }))
    }

    /// A deployment's stack events, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<StackEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM stack_events WHERE deployment_id = ? ORDER BY timestamp, rowid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StackEvent {
                    id: r.try_get("event_id")?,
                    timestamp: r.try_get("timestamp")?,
                    logical_id: r.try_get("logical_id")?,
                    resource_type: r.try_get("resource_type")?,
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// History, newest first.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Deployment>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM deployments
             WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR environment = ?2)
             ORDER BY started_at DESC, rowid DESC LIMIT ?3",
        )
        .bind(&filter.project)
        .bind(&filter.environment)
        .bind(i64::from(filter.limit.unwrap_or(50)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| record_from_row(r).map(|rec| rec.deployment))
            .collect()
    }

    /// The build of the stack's latest successful deployment, if the deployer made one.
    pub async fn last_succeeded_build(
        &self,
        environment: &str,
        stack_name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT build FROM deployments WHERE environment = ? AND stack_name = ? AND status = 'succeeded'
             ORDER BY rowid DESC LIMIT 1",
        )
        .bind(environment)
        .bind(stack_name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Deployments that have not finished (for re-attaching after a restart).
    pub async fn active(&self) -> Result<Vec<Record>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM deployments WHERE finished_at IS NULL ORDER BY rowid")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record_from_row).collect()
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn operation_str(op: Operation) -> &'static str {
    match op {
        Operation::Create => "create",
        Operation::Update => "update",
    }
}

fn step_str(step: StepName) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn record_from_row(r: &SqliteRow) -> Result<Record, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let status: String = r.try_get("status")?;
    let operation: Option<String> = r.try_get("operation")?;
    let step: Option<String> = r.try_get("step")?;
    let steps: String = r.try_get("steps")?;
    let change_set: Option<String> = r.try_get("change_set")?;
    let started_at: DateTime<Utc> = r.try_get("started_at")?;
    let deployment = Deployment {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        environment: r.try_get("environment")?,
        stack_name: r.try_get("stack_name")?,
        build: r.try_get("build")?,
        status: DeploymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        operation: match operation.as_deref() {
            None => None,
            Some("create") => Some(Operation::Create),
            Some("update") => Some(Operation::Update),
            Some(_) => return Err(corrupt("operation")),
        },
        step: step
            .map(|s| serde_json::from_value(serde_json::Value::String(s)))
            .transpose()
            .map_err(|_| corrupt("step"))?,
        actor: r.try_get("actor")?,
        started_at,
        finished_at: r.try_get("finished_at")?,
        message: r.try_get("message")?,
        rolled_back: r.try_get("rolled_back")?,
        waiting_for_aws: false,
        resources_total: r.try_get("resources_total")?,
        resources_done: r.try_get("resources_done")?,
    };
    Ok(Record {
        deployment,
        steps: serde_json::from_str(&steps).map_err(|_| corrupt("steps"))?,
        change_set: change_set
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|_| corrupt("change_set"))?,
        stack_id: r.try_get("stack_id")?,
        change_set_name: r.try_get("change_set_name")?,
    })
}
