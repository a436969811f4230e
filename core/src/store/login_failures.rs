//! Failed web logins, per limiter key, for the login rate limiter (issue 10 item 2).
//!
//! The limiter's policy (how many failures, over which window) lives in the web admin; this file
//! only keeps the failures where every instance sees them, so several instances behind a load
//! balancer share one limit and a restart forgets nothing. A key is an opaque string such as
//! `"email:ann@example.com"` or `"ip:192.0.2.7"`. Time is passed in. Recording a failure also
//! deletes the rows older than the caller's window, so the table never holds more than one
//! window's worth of failures.
//!
//! An attempt takes its place *before* its password is checked ([`Store::begin_login_attempt`]):
//! its row is inserted first and only the rows with a smaller id are counted, under a per-key
//! lock on PostgreSQL, so attempts racing each other (on one instance or several) are judged one
//! after the other, as if they had come in turn, instead of all passing the check before any
//! failure is written (issue 15). An
//! attempt that turns out refused or successful removes its rows again
//! ([`Store::forget_login_attempt`]); a wrong password leaves them as the failure record.

use super::rows::{i64_, string, ts};
use super::{Backend, Result, Store};
use crate::timestamp::Timestamp;

/// How many failures one key has in the window asked about, and when the oldest of them was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFailures {
    pub key: String,
    pub count: u32,
    pub oldest: Timestamp,
    /// The latest of them (backoff is measured from it).
    pub newest: Timestamp,
}

/// The rows one login attempt reserved in `login_failures` (one per key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    ids: Vec<i64>,
}

impl Store {
    /// Records one failed attempt at `at` under each of `keys`, and forgets every failure (of any
    /// key) at or before `forget_until`: the caller passes `at - window`.
    pub async fn record_login_failure(&self, keys: &[&str], at: Timestamp, forget_until: Timestamp) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)").bind(*key).bind(at.0).execute(&mut *tx).await?;
        }
        // Cheap with the index on `at`; keeps the table one window long without a background task.
        sqlx::query("DELETE FROM login_failures WHERE at <= $1").bind(forget_until.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reserves an attempt at `at` under each of `keys`, counted as a failure until
    /// [`forget_login_attempt`](Self::forget_login_attempt) takes it back, and returns, per key,
    /// the failures (and reserved attempts) recorded *before* it strictly after `since`. Also
    /// forgets every row at or before `since`: the caller passes `at - window`.
    pub async fn begin_login_attempt(&self, keys: &[&str], at: Timestamp, since: Timestamp) -> Result<(LoginAttempt, Vec<KeyFailures>)> {
        sqlx::query("DELETE FROM login_failures WHERE at <= $1").bind(since.0).execute(self.pool()).await?;
        let mut ids = Vec::with_capacity(keys.len());
        let mut before = Vec::with_capacity(keys.len());
        for key in keys {
            // Insert and count in one transaction, one attempt per key at a time: the id orders
            // this attempt among its rivals, and a rival counting after us must see our row.
            // PostgreSQL hands out ids at insert, not at commit, so without the per-key lock a
            // rival with a larger id could count before our row is committed and miss it (seen
            // as two attempts both counting 4). SQLite has one writer, so the insert serializes.
            let mut tx = self.pool().begin().await?;
            if self.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(*key).execute(&mut *tx).await?;
            }
            let row = sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2) RETURNING id").bind(*key).bind(at.0).fetch_one(&mut *tx).await?;
            let id = i64_(&row, "id")?;
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(at) AS oldest, MAX(at) AS newest FROM login_failures WHERE key = $1 AND at > $2 AND id < $3",
            )
            .bind(*key)
            .bind(since.0)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            ids.push(id);
            let n = i64_(&row, "n")?;
            if n > 0 {
                let count = u32::try_from(n).unwrap_or(u32::MAX);
                before.push(KeyFailures { key: (*key).to_string(), count, oldest: ts(&row, "oldest")?, newest: ts(&row, "newest")? });
            }
        }
        Ok((LoginAttempt { ids }, before))
    }

    /// Takes back an attempt reserved by [`begin_login_attempt`](Self::begin_login_attempt)
    /// (it was refused, or its password was right): it no longer counts as a failure.
    pub async fn forget_login_attempt(&self, attempt: &LoginAttempt) -> Result<()> {
        for id in &attempt.ids {
            sqlx::query("DELETE FROM login_failures WHERE id = $1").bind(*id).execute(self.pool()).await?;
        }
        Ok(())
    }

    /// For each of `keys` that failed strictly after `since`, the count and the oldest such
    /// failure. Keys without failures in the window are absent from the answer.
    pub async fn login_failures_since(&self, keys: &[&str], since: Timestamp) -> Result<Vec<KeyFailures>> {
        let mut out = Vec::with_capacity(keys.len());
        // One small indexed query per key (at most two per login): simpler than building an
        // `IN (...)` list portable across both backends.
        for key in keys {
            let row = sqlx::query(
                "SELECT key, COUNT(*) AS n, MIN(at) AS oldest, MAX(at) AS newest FROM login_failures WHERE key = $1 AND at > $2 GROUP BY key",
            )
            .bind(*key)
            .bind(since.0)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { continue };
            let count = u32::try_from(i64_(&row, "n")?).unwrap_or(u32::MAX);
            out.push(KeyFailures { key: string(&row, "key")?, count, oldest: ts(&row, "oldest")?, newest: ts(&row, "newest")? });
        }
        Ok(out)
    }

    /// Forgets every failure recorded under `key` (a successful login clears its e-mail's record).
    pub async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(self.pool()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{on_each_backend, TestDb};
    use super::*;
    use crate::timestamp::Millis;

    const T0: Timestamp = Timestamp(1_717_200_000_000);

    async fn count(store: &Store) -> i64 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM login_failures").fetch_one(store.pool()).await.unwrap();
        i64_(&row, "n").unwrap()
    }

    #[tokio::test]
    async fn login_failures_are_counted_per_key_and_cleared() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let window = Millis::minutes(15);
            let (email, ip) = ("email:a@x.io", "ip:192.0.2.7");
            assert!(s.login_failures_since(&[email, ip], T0 - window).await.unwrap().is_empty(), "{}", db.label);
            s.record_login_failure(&[email, ip], T0, T0 - window).await.unwrap();
            s.record_login_failure(&[email], T0 + Millis::seconds(10), T0 + Millis::seconds(10) - window).await.unwrap();
            s.record_login_failure(&["email:b@x.io", ip], T0 + Millis::seconds(20), T0 + Millis::seconds(20) - window).await.unwrap();

            let now = T0 + Millis::seconds(30);
            let got = s.login_failures_since(&[email, ip, "email:nobody"], now - window).await.unwrap();
            assert_eq!(
                got,
                vec![
                    KeyFailures { key: email.into(), count: 2, oldest: T0, newest: T0 + Millis::seconds(10) },
                    KeyFailures { key: ip.into(), count: 2, oldest: T0, newest: T0 + Millis::seconds(20) },
                ],
                "{}",
                db.label
            );
            // `since` is exclusive: a failure exactly one window old has left it.
            let got = s.login_failures_since(&[email], T0).await.unwrap();
            assert_eq!(got, vec![KeyFailures { key: email.into(), count: 1, oldest: T0 + Millis::seconds(10), newest: T0 + Millis::seconds(10) }], "{}", db.label);

            // A second instance on the same database sees the same failures.
            let other = Store::connect(&db.url).await.unwrap();
            assert_eq!(other.login_failures_since(&[email], now - window).await.unwrap()[0].count, 2, "{}", db.label);

            s.clear_login_failures(email).await.unwrap();
            let got = s.login_failures_since(&[email, ip], now - window).await.unwrap();
            assert_eq!(got.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(), vec![ip], "only the e-mail is cleared ({})", db.label);
            other.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn recording_a_login_failure_prunes_rows_older_than_the_window() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let window = Millis::minutes(15);
            for i in 0..3 {
                s.record_login_failure(&["email:a@x.io", "ip:1"], T0 + Millis::seconds(i), T0 - window).await.unwrap();
            }
            assert_eq!(count(s).await, 6, "{}", db.label);
            let later = T0 + window + Millis::seconds(1);
            s.record_login_failure(&["email:c@x.io"], later, later - window).await.unwrap();
            // The failures at T0 and T0+1 s are one window old or more; the one at T0+2 s is not.
            assert_eq!(count(s).await, 3, "{}", db.label);
        })
        .await;
    }

    /// Issue 15: twelve attempts racing each other are judged as if they came in turn: each one
    /// sees exactly the attempts reserved before it, on either backend.
    #[tokio::test]
    async fn racing_login_attempts_each_see_the_ones_before_them() {
        on_each_backend(|db: TestDb| async move {
            let window = Millis::minutes(15);
            let keys = ["email:a@x.io", "ip:192.0.2.7"];
            let tasks: Vec<_> = (0..12)
                .map(|_| {
                    let s = db.store.clone();
                    tokio::spawn(async move { s.begin_login_attempt(&keys, T0, T0 - window).await.unwrap() })
                })
                .collect();
            let mut seen = Vec::new();
            for t in tasks {
                let (_, before) = t.await.unwrap();
                let of = |k: &str| before.iter().find(|f| f.key == k).map_or(0, |f| f.count);
                seen.push((of(keys[0]), of(keys[1])));
            }
            let mut email: Vec<u32> = seen.iter().map(|s| s.0).collect();
            email.sort_unstable();
            assert_eq!(email, (0..12).collect::<Vec<u32>>(), "{}", db.label);
            let mut ip: Vec<u32> = seen.iter().map(|s| s.1).collect();
            ip.sort_unstable();
            assert_eq!(ip, (0..12).collect::<Vec<u32>>(), "{}", db.label);

            // A forgotten attempt no longer counts for the ones after it.
            let (a, before) = db.store.begin_login_attempt(&keys[..1], T0, T0 - window).await.unwrap();
            assert_eq!(before[0].count, 12, "{}", db.label);
            db.store.forget_login_attempt(&a).await.unwrap();
            let (_, before) = db.store.begin_login_attempt(&keys[..1], T0 + Millis::seconds(1), T0 - window).await.unwrap();
            assert_eq!((before[0].count, before[0].newest), (12, T0), "{}", db.label);
        })
        .await;
    }
}
