//! Failed web logins, per limiter key, for the login rate limiter (issue 10 item 2).
//!
//! The limiter's policy (how many failures, over which window) lives in the web admin; this file
//! only keeps the failures where every instance sees them, so several instances behind a load
//! balancer share one limit and a restart forgets nothing. A key is an opaque string such as
//! `"email:ann@example.com"` or `"ip:192.0.2.7"`. Time is passed in. Recording a failure also
//! deletes the rows older than the caller's window, so the table never holds more than one
//! window's worth of failures.

use super::rows::{i64_, string, ts};
use super::{Result, Store};
use crate::timestamp::Timestamp;

/// How many failures one key has in the window asked about, and when the oldest of them was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFailures {
    pub key: String,
    pub count: u32,
    pub oldest: Timestamp,
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

    /// For each of `keys` that failed strictly after `since`, the count and the oldest such
    /// failure. Keys without failures in the window are absent from the answer.
    pub async fn login_failures_since(&self, keys: &[&str], since: Timestamp) -> Result<Vec<KeyFailures>> {
        let mut out = Vec::with_capacity(keys.len());
        // One small indexed query per key (at most two per login): simpler than building an
        // `IN (...)` list portable across both backends.
        for key in keys {
            let row = sqlx::query(
                "SELECT key, COUNT(*) AS n, MIN(at) AS oldest FROM login_failures WHERE key = $1 AND at > $2 GROUP BY key",
            )
            .bind(*key)
            .bind(since.0)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { continue };
            let count = u32::try_from(i64_(&row, "n")?).unwrap_or(u32::MAX);
            out.push(KeyFailures { key: string(&row, "key")?, count, oldest: ts(&row, "oldest")? });
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
                    KeyFailures { key: email.into(), count: 2, oldest: T0 },
                    KeyFailures { key: ip.into(), count: 2, oldest: T0 },
                ],
                "{}",
                db.label
            );
            // `since` is exclusive: a failure exactly one window old has left it.
            let got = s.login_failures_since(&[email], T0).await.unwrap();
            assert_eq!(got, vec![KeyFailures { key: email.into(), count: 1, oldest: T0 + Millis::seconds(10) }], "{}", db.label);

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
}
