//! The store: OnCall's domain in SQLite or PostgreSQL, through one set of queries.
//!
//! [`Store::connect`] takes a URL: `sqlite:` (the embedded default, a file under `./data/`,
//! created if missing, WAL mode) or `postgres://`. Both go through sqlx's `Any` driver with
//! portable SQL and `$1` placeholders, so every query is written once. Migrations are embedded
//! (`sqlx::migrate!`) and run on connect.
//!
//! Tenancy: every method that reads or writes tenant data takes the [`OrgId`](crate::OrgId)
//! and puts it in the `WHERE` clause; the schema's composite foreign keys refuse rows that
//! point across organizations. Validation happens before the first write and multi-row writes
//! are transactions, so bad input writes nothing.
//!
//! One file per concern: `orgs`, `people`, `schedules`, `policies`, `requests`, `calls`,
//! `escalation_work`, `users`, `metrics`.

mod backend;
mod business_hours;
mod calls;
mod escalation_work;
pub mod integrations;
mod login_failures;
mod metrics;
mod migrations;
mod operators;
mod org_numbers;
mod org_removal;
mod orgs;
mod people;
mod policies;
pub mod recording_uploads;
mod request_actions;
mod requests;
mod rows;
mod schedules;
mod sessions;
mod sip_accounts;
mod swaps;
mod text_lookup;
pub mod transcriptions;
mod users;
mod webhooks;
mod ivr_settings;

pub use backend::Backend;
pub use business_hours::StoredBusinessHours;
pub use calls::{Call, NewCall};
pub use escalation_work::{ClaimedWork, NotificationRecord};
pub use login_failures::{KeyFailures, LoginAttempt};
pub use metrics::PagingTotals;
pub use integrations::{AlertOutcome, Integration};
pub use operators::{Operator, OperatorSession};
pub use org_removal::OrgRemoval;
pub use orgs::{slugify, validate_slug, OrgLimits, Organization, DEFAULT_ORG_NAME};
pub use people::Team;
pub use request_actions::{QueuedAction, RequestAction};
pub use requests::event_kind;
pub use users::User;
pub use sessions::{ApiToken, NewSession, Session};
pub use requests::RequestFilter;
pub use ivr_settings::IvrSettings;
pub use sip_accounts::{validate_sip_username, NewSipAccount, SipAccount, SipBinding};
pub use webhooks::{AttemptLog, AttemptOutcome, ClaimedDelivery, DeliveryCounts};

use crate::ids::RequestId;
use crate::request::RequestStatus;
use crate::validation::ValidationError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// The default database: a SQLite file under `./data/`.
pub const DEFAULT_URL: &str = "sqlite://data/oncall.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{id} is {current} and cannot become {wanted}")]
    Transition { id: RequestId, current: RequestStatus, wanted: RequestStatus },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("password hashing failed: {0}")]
    Password(String),
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://...")]
    BadUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot create or restrict the database file {path}: {source}")]
    DatabaseFile { path: String, source: std::io::Error },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database was last used by a newer OnCall: it has schema version {found}, this binary knows up to {known}. \
         It was not changed. Run the newer oncall again, or restore a backup made with this version (`oncall restore`)"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        // Unique violations are the caller's business (a duplicate e-mail, slug, ...), not an
        // outage: give them their own variant.
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.message().to_string());
            }
            // A composite (org_id, id) foreign key failing means the row referenced does not
            // exist *in this organization*: to the caller that is "not found".
            if db.is_foreign_key_violation() {
                return StoreError::NotFound(format!("referenced row ({})", db.message()));
            }
        }
        StoreError::Db(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Numbers a saved contact may have (issue #15 item 4); the built-in plan unless the server sets one.
    dial_plan: std::sync::Arc<crate::dial_plan::DialPlan>,
    /// Rung when the web queues a request action: this process's paging task takes it at once (`request_actions`).
    actions_queued: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url).map_err(|_| StoreError::BadUrl(url.clone()))?;
        let pool_options = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                // SQLite has one writer at a time; a handful of connections serve concurrent
                // readers (WAL) without piling up writers behind busy_timeout.
                .max_connections(if url.contains(":memory:") || url.contains("mode=memory") { 1 } else { 4 })
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers proceed while one connection writes; busy_timeout makes a
                        // second writer wait instead of failing with SQLITE_BUSY; foreign keys are
                        // off by default in SQLite and our tenancy guarantees rely on them.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        migrations::migrator(backend).run(&pool).await.map_err(|e| match e {
            // sqlx checks the applied versions before it applies any: nothing was touched.
            sqlx::migrate::MigrateError::VersionMissing(found) => StoreError::NewerSchema { found, known: migrations::latest_version() },
            e => StoreError::Migrate(e),
        })?;
        Ok(Store { pool, backend, dial_plan: Default::default(), actions_queued: Default::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store with `plan` as the dial plan every saved phone number is checked against.
    pub fn with_dial_plan(mut self, plan: crate::dial_plan::DialPlan) -> Store {
        self.dial_plan = std::sync::Arc::new(plan);
        self
    }

    pub fn dial_plan(&self) -> &crate::dial_plan::DialPlan {
        &self.dial_plan
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A consistent copy of a SQLite database at `to`, taken while the server runs (`VACUUM INTO`: one read
    /// transaction, so writers carry on and the copy is of one instant). PostgreSQL has `pg_dump` for this.
    pub async fn snapshot_sqlite(&self, to: &std::path::Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::BadUrl("a snapshot is for SQLite; use pg_dump for PostgreSQL".into()));
        }
        let to = to.to_str().ok_or_else(|| StoreError::BadUrl(format!("{} is not UTF-8", to.display())))?;
        sqlx::query(&format!("VACUUM INTO '{}'", to.replace('\'', "''"))).execute(&self.pool).await?;
        Ok(())
    }

    /// The newest migration applied to this database (the schema version a backup records).
    pub async fn schema_version(&self) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE").fetch_one(&self.pool).await?)
    }

    /// The newest schema version this binary knows.
    pub fn known_schema_version() -> i64 {
        migrations::latest_version()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The file a `sqlite:` URL names (None for PostgreSQL and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.trim().strip_prefix("sqlite:")?;
    if rest.contains(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    let path = rest.trim_start_matches("//");
    let file = path.split_once('?').map_or(path, |(f, _)| f);
    (!file.is_empty()).then(|| std::path::PathBuf::from(file))
}

/// Recognizes the backend and, for SQLite, makes sure the file (and its directory) can be
/// created.
fn normalize_url(url: &str) -> Result<(Backend, String)> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::BadUrl(url.to_string()));
    };
    if rest.contains(":memory:") || rest.contains("mode=memory") {
        return Ok((Backend::Sqlite, url.to_string()));
    }
    let path = rest.trim_start_matches("//");
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if file.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    }
    if let Some(dir) = std::path::Path::new(file).parent() {
        if !dir.as_os_str().is_empty() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            // Issue #15: no access for other local users to the folder holding the database.
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
            builder
                .create(dir)
                .map_err(|source| StoreError::Directory { path: dir.display().to_string(), source })?;
        }
    }
    private_database_file(file).map_err(|source| StoreError::DatabaseFile { path: file.to_string(), source })?;
    // mode=rwc: create the file if it does not exist.
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok((Backend::Sqlite, format!("sqlite://{file}?{query}")))
}

/// Issue #15: SQLite creates its file 0644 (and its -wal and -shm files with the same mode as
/// the database), so every local account could read password hashes, sessions and webhook
/// secrets. The file is created 0600 before SQLite opens it, and a file left 0644 by an older
/// version is tightened along with its -wal/-shm.
fn private_database_file(file: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(file)?;
        for path in [file.to_string(), format!("{file}-wal"), format!("{file}-shm")] {
            match std::fs::metadata(&path) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.permissions().mode() & 0o700))?
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_orgs;
#[cfg(test)]
mod tests_upgrade;

/// An UPDATE or DELETE scoped to one organization that must have touched a row: none means the id does
/// not exist there (or belongs to another organization), which callers see as NotFound.
pub(crate) fn one_row(done: &sqlx::any::AnyQueryResult, id: impl std::fmt::Display) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(id.to_string()));
    }
    Ok(())
}
