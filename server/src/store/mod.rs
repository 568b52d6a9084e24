//! The store: SQLite (one machine, the demo) or PostgreSQL (several replicas) through sqlx's
//! `Any` driver — one set of queries, written once; [`Store::sql`] turns the few spellings that
//! differ (`{now}`, `{seq}`, `{max}`, `?` placeholders) into the dialect's. Migrations are
//! embedded per dialect and applied at start; one file per table (`deployments`,
//! `stack_events`, `pauses`, `audit`, login). The one-active-deployment-per-stack rule is a
//! unique index, and the pause is checked in the same statement as a start and as an execution,
//! so racing requests — or racing replicas — cannot get around either. Times are kept as UTC
//! text in one format on both ([`ts`]); flags as 0/1.

mod audit;
mod auth;
mod deployments;
mod events;
mod live_events;
pub use live_events::CHANNEL as LIVE_EVENTS_CHANNEL;
pub use live_events::STACK_EVENTS_CHANNEL;
mod execution;
mod outbox;
mod pauses;

pub use audit::{AuditSearch, NewAudit};
pub use auth::{ActiveToken, NewTokenRow, PendingLogin, Session};
pub use outbox::{Announce, Announcement, Delivery};
pub use pauses::pause_status;

use std::path::Path;

use app::deployment::{ChangeSummary, Deployment, Step};
use app::pause::Pause;
use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};

use crate::config::StoreLocation;
use crate::secret::Secret;

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
    /// The replica driving it (its lease), if any.
    pub owner: Option<String>,
    /// The person who asked for it (none for deployments kept before people were recorded:
    /// the actor's name stands for them).
    pub requester: Option<crate::person::Person>,
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
            owner: None,
            requester: None,
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
    /// The store did not answer in time (locked, or unreachable).
    #[error("the store did not answer: {0}")]
    Unanswered(String),
    /// A write fenced on ownership found the deployment driven by another replica (or ended):
    /// this process's view is stale and must not act on it.
    #[error("deployment {0} is no longer driven by this replica")]
    LeaseLost(String),
}

/// Filters for history.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub project: Option<String>,
    pub environment: Option<String>,
    pub limit: Option<u32>,
}

/// Which SQL the store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the lock that makes this process the store's only driver, held while the
    /// store is open.
    lock: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
    /// This process among the replicas: the owner it writes on the deployments it drives.
    replica: std::sync::Arc<str>,
    /// What an audit entry is announced as (written to the outbox in its transaction).
    announcer: std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn Announce>>>>,
    /// Set by [`Store::release`]: this process no longer drives anything (its webhook sender
    /// stops).
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How long a replica's claim on a deployment holds without renewal: another replica takes a
/// deployment over at most this long after its driver died.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(10);

fn new_replica_id() -> std::sync::Arc<str> {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    format!(
        "{host}{}r-{}",
        if host.is_empty() { "" } else { "/" },
        crate::secret::random_id()
    )
    .into()
}

static DRIVERS: std::sync::Once = std::sync::Once::new();

/// Names a file holding the database password (one line), re-read every minute: set by the
/// image's boot script, whose timer refreshes the file from the RDS-managed secret.
pub const PASSWORD_FILE_VAR: &str = "DEPLOYER_DATABASE_PASSWORD_FILE";

fn read_password(file: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("the database password file {}: {e}", file.display()))?;
    let password = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !password.is_empty(),
        "the database password file {} is empty",
        file.display()
    );
    Ok(Secret::new(password))
}

/// The pool's options for `url`, with `password` in place of the URL's when given.
fn connect_options(
    url: &str,
    password: Option<&str>,
) -> anyhow::Result<sqlx::any::AnyConnectOptions> {
    let mut url = openidconnect::url::Url::parse(url)?;
    if let Some(password) = password {
        url.set_password(Some(password))
            .map_err(|()| anyhow::anyhow!("the database URL cannot hold a password"))?;
    }
    Ok(<sqlx::any::AnyConnectOptions as std::str::FromStr>::from_str(url.as_str())?)
}

/// Re-reads the password file every minute; a changed password is used for new connections.
fn spawn_password_refresh(
    pool: AnyPool,
    url: String,
    file: std::path::PathBuf,
    mut current: Secret,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            match read_password(&file) {
                Ok(password) if password.expose() != current.expose() => {
                    match connect_options(&url, Some(password.expose())) {
                        Ok(options) => {
                            pool.set_connect_options(options);
                            current = password;
                            tracing::info!("the database password changed: new connections use it");
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the new database password is unusable")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not re-read the database password"),
            }
        }
    });
}

impl Store {
    /// Opens the configured store: a SQLite file, or a PostgreSQL database.
    pub async fn connect(location: &StoreLocation) -> anyhow::Result<Store> {
        match location {
            StoreLocation::Sqlite(path) => Store::open(path).await,
            StoreLocation::Postgres(url) => Store::open_postgres(url).await,
        }
    }

    /// Opens a SQLite store (creating the file and its folder on first run) and migrates.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock = lock_store(path)?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store {
            pool,
            dialect: Dialect::Sqlite,
            lock: std::sync::Arc::new(std::sync::Mutex::new(Some(lock))),
            replica: new_replica_id(),
            announcer: Default::default(),
            released: Default::default(),
        })
    }

    /// Opens a PostgreSQL store (`postgres://…`) and migrates — once, however many replicas start
    /// together (the migrator takes PostgreSQL's advisory lock).
    async fn open_postgres(url: &str) -> anyhow::Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        // A transaction left open (a task cancelled inside one) is ended by the server, so its
        // locks cannot hold every later writer of the same rows forever.
        let separator = if url.contains('?') { '&' } else { '?' };
        let url =
            format!("{url}{separator}options=-c%20idle_in_transaction_session_timeout%3D10000");
        // The password may live in a file the host refreshes (RDS rotates its managed password):
        // read at start, and again every minute — new connections use the new one.
        let password_file = std::env::var_os(PASSWORD_FILE_VAR).map(std::path::PathBuf::from);
        let password = match &password_file {
            Some(file) => Some(read_password(file)?),
            None => None,
        };
        let options = connect_options(&url, password.as_ref().map(Secret::expose))?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        if let (Some(file), Some(password)) = (password_file, password) {
            spawn_password_refresh(pool.clone(), url.clone(), file, password);
        }
        Ok(Store {
            pool,
            dialect: Dialect::Postgres,
            lock: std::sync::Arc::new(std::sync::Mutex::new(None)),
            replica: new_replica_id(),
            announcer: Default::default(),
            released: Default::default(),
        })
    }

    /// Uses `password` for the store's new connections (open ones go on: RDS keeps them across
    /// a rotation). PostgreSQL only; returns whether anything changed.
    pub fn use_password(&self, password: &Secret) -> anyhow::Result<bool> {
        let current = self.pool.connect_options();
        let url = current.database_url.clone();
        let options = connect_options(url.as_str(), Some(password.expose()))?;
        if options.database_url.password() == url.password() {
            return Ok(false);
        }
        self.pool.set_connect_options(options);
        Ok(true)
    }

    /// What every clone of this store announces its audit entries as.
    pub fn set_announcer(&self, announcer: std::sync::Arc<dyn Announce>) {
        if let Ok(mut current) = self.announcer.write() {
            *current = Some(announcer);
        }
    }

    pub(crate) fn announcements(&self, entry: &NewAudit<'_>) -> Vec<Announcement> {
        let announcer = self.announcer.read().ok().and_then(|a| a.clone());
        announcer.map_or_else(Vec::new, |a| a.announce(entry))
    }

    /// Whether [`Store::release`] was called.
    pub fn is_released(&self) -> bool {
        self.released.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// This process's name as the owner of the deployments it drives.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The dialect's spelling of a query written once: `{now}` (the database's clock, as [`ts`]
    /// writes times), `{lease}` (the database's clock plus [`LEASE`]: when a claim made now runs
    /// out — leases are written and judged by one clock, never a replica's own), `{seq}`
    /// (insertion order), `{max}` (the larger of two), and `?` / `?N` placeholders (`$N` for
    /// PostgreSQL).
    pub(crate) fn sql(&self, text: &str) -> String {
        let lease = LEASE.as_secs();
        match self.dialect {
            Dialect::Sqlite => text
                .replace("{now}", "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
                .replace(
                    "{lease}",
                    &format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{lease} seconds')"),
                )
                .replace("{seq}", "rowid")
                .replace("{max}", "MAX"),
            Dialect::Postgres => numbered(
                &text
                    .replace(
                        "{now}",
                        "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                    )
                    .replace(
                        "{lease}",
                        &format!(
                            "to_char((clock_timestamp() + interval '{lease} seconds') AT TIME ZONE 'UTC', \
                             'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                        ),
                    )
                    .replace("{seq}", "seq")
                    .replace("{max}", "GREATEST"),
            ),
        }
    }

    /// Runs a transaction to its end even when the caller is cancelled (a request dropped, a task
    /// aborted). A future cut between `BEGIN` and `COMMIT` hands its connection back to the pool
    /// with the transaction open when the cut falls before sqlx has read `BEGIN`'s answer; the
    /// next statements on that connection then join the transaction, take row locks that never
    /// commit, and every later writer waits on them (seen once: a simulated process death in the
    /// replicas test). Spawned, the transaction finishes or fails on its own.
    pub(crate) async fn uncancellable<T, F>(work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        match tokio::spawn(work).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Corrupt(format!(
                "a store transaction was stopped: {e}"
            ))),
        }
    }

    /// Lets another process drive the store: what this process's exit does (tests that
    /// "restart" the deployer in one process call it).
    pub fn release(&self) {
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut lock = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(file) = lock.take() {
            let _ = file.unlock();
        }
    }
}

/// A new, empty PostgreSQL database on the server `admin_url` points at (tests: one each, so
/// that they run side by side on one server); returns its URL.
pub async fn scratch_postgres_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("deployer_{}", crate::secret::random_id().to_lowercase());
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE \"{name}\"").as_str()).await?;
    admin.close().await?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("{admin_url} names no database"))?;
    Ok(format!("{base}/{name}"))
}

/// The store the tests of this crate use: PostgreSQL when `DEPLOYER_TEST_POSTGRES` names a
/// server (`scripts/test` runs the suite once on each store), else a SQLite file in `dir`.
#[cfg(test)]
pub(crate) async fn test_store(dir: &Path) -> Store {
    match std::env::var("DEPLOYER_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            let url = scratch_postgres_database(&admin).await.unwrap();
            Store::connect(&StoreLocation::Postgres(url)).await.unwrap()
        }
        _ => Store::open(&dir.join("s.sqlite")).await.unwrap(),
    }
}

/// `?` → `$1`, `$2`, … in order; `?N` → `$N`. (No query here has a `?` inside a literal.)
fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut next = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        out.push('$');
        if digits.is_empty() {
            out.push_str(&next.to_string());
            next += 1;
        } else {
            out.push_str(&digits);
        }
    }
    out
}

/// A time as the store keeps it: UTC, milliseconds, `Z` — the format `{now}` writes, so that
/// times compare as text on both databases.
pub(crate) fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A kept time, read back (older SQLite rows may carry `+00:00` and more digits: any RFC 3339).
pub(crate) fn get_ts(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    let text: String = row.try_get(column)?;
    parse_ts(&text, column)
}

pub(crate) fn get_opt_ts(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse_ts(&t, column)).transpose()
}

pub(crate) fn parse_ts(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("{what}: {text:?} is not a time")))
}

/// A 0/1 flag.
pub(crate) fn get_flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
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

    /// RDS rotates its managed password: the store takes the new one for new connections
    /// without a restart (open connections go on), and a password that needs escaping survives.
    #[tokio::test]
    async fn a_rotated_database_password_is_used_for_new_connections() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path()).await;
        if store.dialect() != Dialect::Postgres {
            eprintln!("SQLite store: no password; run with DEPLOYER_TEST_POSTGRES");
            return;
        }
        let rotated = "n3w/p@ss:w?rd";
        assert!(store.use_password(&Secret::new(rotated)).unwrap());
        assert!(
            !store.use_password(&Secret::new(rotated)).unwrap(),
            "the same one changes nothing"
        );
        let url = store.pool.connect_options().database_url.clone();
        let kept = connect_options(url.as_str(), Some(rotated)).unwrap();
        assert_eq!(kept.database_url.password(), url.password());
        // A new connection is made with the new options, and works.
        store.pool.close_event();
        let mut conn = store.pool.acquire().await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }

    /// The database over TLS as RDS serves it, its certificate verified (`verify-full` with the
    /// CA bundle), and a server whose certificate that bundle did not sign refused. Needs the
    /// run's PostgreSQL with TLS (`scripts/test`: DEPLOYER_TEST_POSTGRES_CA).
    #[tokio::test]
    async fn the_store_reaches_postgres_over_verified_tls_and_refuses_an_unknown_certificate() {
        let admin = std::env::var("DEPLOYER_TEST_POSTGRES").unwrap_or_default();
        let ca = std::env::var("DEPLOYER_TEST_POSTGRES_CA").unwrap_or_default();
        if admin.is_empty() || ca.is_empty() {
            eprintln!("no PostgreSQL with TLS: run with DEPLOYER_TEST_POSTGRES and _CA");
            return;
        }
        let url = scratch_postgres_database(&admin).await.unwrap();
        let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
        let store = Store::connect(&StoreLocation::Postgres(verified))
            .await
            .unwrap();
        let tls: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert!(tls, "the connection is encrypted");
        // A bundle without the CA that signed the server's certificate: no connection.
        let other = "/etc/ssl/certs/ca-certificates.crt";
        if std::path::Path::new(other).exists() {
            let wrong = format!("{url}?sslmode=verify-full&sslrootcert={other}");
            let refused = Store::connect(&StoreLocation::Postgres(wrong)).await;
            assert!(refused.is_err(), "an unverified server is refused");
        }
    }

    #[test]
    fn a_password_file_is_read_as_one_line_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(read_password(&file).unwrap().expose(), "s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(read_password(&file).is_err());
        let options =
            connect_options("postgres://u@db:5432/d?sslmode=verify-full", Some("a b@c")).unwrap();
        assert_eq!(options.database_url.password(), Some("a%20b%40c"));
        assert_eq!(options.database_url.query(), Some("sslmode=verify-full"));
    }

    #[test]
    fn placeholders_become_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT ?, ? WHERE a = ?"),
            "SELECT $1, $2 WHERE a = $3"
        );
        assert_eq!(
            numbered("WHERE (?1 IS NULL OR p = ?1) LIMIT ?12"),
            "WHERE ($1 IS NULL OR p = $1) LIMIT $12"
        );
    }

    #[test]
    fn times_are_kept_in_one_sortable_format_and_older_ones_still_read() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T10:00:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(t), "2026-11-27T10:00:05.123Z");
        assert_eq!(
            parse_ts("2026-11-27T10:00:05.123456789+00:00", "t").unwrap(),
            t + chrono::Duration::nanoseconds(789)
        );
        assert!(parse_ts("yesterday", "t").is_err());
    }

    #[test]
    fn a_store_location_is_a_url_or_a_path_and_its_password_is_never_shown() {
        let pg =
            StoreLocation::parse("postgres://deployer:s3cret@db.internal:5432/deployer").unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://deployer:***@db.internal:5432/deployer"
        );
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert_eq!(
            StoreLocation::parse("data/deployer.sqlite").unwrap(),
            StoreLocation::Sqlite("data/deployer.sqlite".into())
        );
        assert!(StoreLocation::parse("mysql://x").is_err());
    }

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
