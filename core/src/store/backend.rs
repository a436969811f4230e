//! Which database is behind the `Any` pool. Only the few statements that must differ look: the
//! migrations' id column and the work queues' `FOR UPDATE SKIP LOCKED`.
//!
//! Its own module so that `migrations` can take it without importing `store/mod.rs`, which runs
//! the migrations on connect.

/// The database a `Store` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}
