//! Test databases: a fresh SQLite file always, and a fresh PostgreSQL schema when
//! `ONCALL_TEST_POSTGRES_URL` is set (see `scripts/with-postgres.sh`).

use super::Store;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) const POSTGRES_ENV: &str = "ONCALL_TEST_POSTGRES_URL";

/// A database for one test; `url` lets a test open a second, independent `Store` (a second
/// "instance") on the same data.
pub(crate) struct TestDb {
    pub store: Store,
    pub url: String,
    pub label: &'static str,
    /// Shared so the runner can keep the directory alive even when the test's async block
    /// captures only some fields of `TestDb`.
    dir: Option<Arc<tempfile::TempDir>>,
}

pub(crate) async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("nested/oncall.db").display());
    let store = Store::connect(&url).await.expect("sqlite store");
    TestDb { store, url, label: "sqlite", dir: Some(Arc::new(dir)) }
}

/// A new schema in the configured PostgreSQL database, or `None` (with a note) if unset.
pub(crate) async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var(POSTGRES_ENV) else {
        eprintln!("note: {POSTGRES_ENV} not set, skipping the PostgreSQL run of this test");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let schema = format!("t_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to ONCALL_TEST_POSTGRES_URL");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&admin).await.expect("drop schema");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("create schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let store = Store::connect(&url).await.expect("postgres store");
    Some(TestDb { store, url, label: "postgres", dir: None })
}

/// Runs `test` against SQLite, then against PostgreSQL if configured.
pub(crate) async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = sqlite().await;
    let keep = db.dir.clone();
    test(db).await;
    drop(keep);
    if let Some(db) = postgres().await {
        test(db).await;
    }
}
