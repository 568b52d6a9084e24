//! The store: SQLite through sqlx, migrations embedded and applied at start; one file per table
//! (`deployments`, `stack_events`, `pauses`, `audit`). The one-active-deployment-per-stack rule
//! is a unique index, and the pause is checked in the same statement as a start and as an
//! execution, so racing requests cannot get around either.

mod audit;
mod auth;
mod deployments;
mod events;
mod execution;
mod pauses;

pub use audit::{AuditSearch, NewAudit};
pub use auth::{PendingLogin, Session};
pub use pauses::pause_status;

use std::path::Path;
use std::str::FromStr;

use app::deployment::{ChangeSummary, Deployment, Step};
use app::pause::Pause;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// A deployment with what the engine needs to resume it.
#[derive(Clone, Debug)]
pub struct Record {
    pub deployment: Deployment,
    pub steps: Vec<Step>,
    pub change_set: Option<ChangeSummary>,
    pub stack_id: Option<String>,
    pub change_set_name: Option<String>,
    /// The deployment passed the pause check at execution and was committed to execute.
    pub execution_committed: bool,
    /// AWS answered the execute call (CreateStack or ExecuteChangeSet).
    pub executed: bool,
    /// A cancel was asked for (kept across restarts), and whether deleting a stack being
    /// created was confirmed.
    pub cancel: Option<CancelAsk>,
}

impl Record {
    /// A new deployment's record: no steps, nothing created or executed yet.
    pub fn new(deployment: Deployment) -> Record {
        Record {
            deployment,
            steps: Vec::new(),
            change_set: None,
            stack_id: None,
            change_set_name: None,
            execution_committed: false,
            executed: false,
            cancel: None,
        }
    }
}

/// A cancel request as kept in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelAsk {
    pub confirm_delete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", .0.explain())]
    Paused(Pause),
    #[error("deployment {0} is already active on this stack")]
    Conflict(String),
    /// A name that must be unique is taken (the message says which).
    #[error("{0}")]
    Duplicate(String),
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
    /// The lock that makes this process the store's only driver, held while the store is open.
    lock: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

impl Store {
    /// Opens (creating the file and its folder on first run) and migrates.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock = lock_store(path)?;
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
        Ok(Store {
            pool,
            lock: std::sync::Arc::new(std::sync::Mutex::new(Some(lock))),
        })
    }

    /// Lets another process drive the store: what this process's exit does (tests that
    /// "restart" the deployer in one process call it).
    pub fn release(&self) {
        let mut lock = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(file) = lock.take() {
            let _ = file.unlock();
        }
    }
}

/// One deployer process drives a store at a time: two would each re-attach to the same
/// deployments and drive them twice. The lock is the OS's (flock), so it goes with the process,
/// however it ends. Several replicas need PostgreSQL and leases, not a shared SQLite file.
fn lock_store(path: &Path) -> anyhow::Result<std::fs::File> {
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another deployer process is using this store (it holds {}); one store is driven by one \
             process at a time — stop the other one, or give this one its own `store`",
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_process_on_the_same_store_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployer.sqlite");
        let first = Store::open(&path).await.unwrap();
        let second = Store::open(&path).await.unwrap_err().to_string();
        assert!(second.contains("another deployer process"), "{second}");
        first.release();
        Store::open(&path).await.unwrap();
    }
}
