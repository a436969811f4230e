//! Login rate limiting: per-source throttling and a short per-account backoff, kept in the
//! database.
//!
//! Keys are "email:<address>" and "ip:<address>". Each key may fail a few times within the
//! window for free; after that every further attempt must wait a backoff measured from the key's
//! latest failure, doubling with each failure up to a cap. The two keys differ in what they
//! protect against and so in their numbers (issue 15):
//! - per address (the source): many free failures (an office behind one NAT), then a long
//!   backoff, up to the window. A guesser spraying accounts from one address is slowed to a crawl.
//! - per account: few free failures, then a *short* backoff (seconds, capped at a minute or
//!   two). Guessing one account from many addresses stays slow, but an outsider failing on
//!   purpose cannot lock its owner out: a refused attempt is not a failure (it does not extend
//!   anything), and once the short backoff has passed the right password gets in again.
//!
//! Only wrong passwords count; a success clears its e-mail's record (not its address's: one
//! good password must not reset a spray from that address).
//!
//! Attempts racing each other are judged in turn, not all at once: [`LoginLimiter::begin`]
//! reserves the attempt's place in the store *before* the password is checked and judges it by
//! the attempts reserved before it (see `Store::begin_login_attempt`), so twelve parallel wrong
//! tries see 0, 1, 2, … earlier failures and the ones over the limit are refused.
//!
//! Two halves. [`LoginPolicy`] is the rule, pure: given each key's earlier failures in the window
//! (count and latest), must this attempt wait, and how long. [`LoginLimiter`] applies it over the
//! store (`login_failures` table), so every instance on one database shares one limit and a
//! restart forgets nothing. Time is passed in (`Timestamp`), so tests run without sleeping.

use oncall_core::store::{KeyFailures, LoginAttempt};
use oncall_core::{Millis, Store, StoreError, Timestamp};

/// Free failures, then a doubling wait from the latest one, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures within the window that cost nothing.
    pub free: u32,
    /// The wait after the first failure over `free`.
    pub first: Millis,
    /// The longest wait, however many failures.
    pub max: Millis,
}

impl Backoff {
    /// How long after its latest failure a key with `failures` in the window must wait.
    pub fn after(&self, failures: u32) -> Option<Millis> {
        let over = failures.checked_sub(self.free)?;
        // 2^20 times any sensible `first` is past any sensible `max`; capping the shift keeps it finite.
        let wait = self.first.0.saturating_mul(1_i64 << over.min(20));
        Some(Millis(wait.min(self.max.0)))
    }
}

/// The rule for each key of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures older than this are forgotten.
    pub window: Millis,
    pub per_email: Backoff,
    pub per_ip: Backoff,
}

impl Default for LoginPolicy {
    /// Per account: 5 free failures in 15 minutes, then 15 s doubling up to 2 minutes. Per
    /// address: 30 free, then 1 minute doubling up to 15.
    fn default() -> Self {
        LoginPolicy {
            window: Millis::minutes(15),
            per_email: Backoff {
                free: 5,
                first: Millis::seconds(15),
                max: Millis::minutes(2),
            },
            per_ip: Backoff {
                free: 30,
                first: Millis::minutes(1),
                max: Millis::minutes(15),
            },
        }
    }
}

/// The limiter keys of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    pub email: String,
    pub ip: Option<String>,
}

impl LoginKeys {
    pub fn new(email: &str, ip: Option<&str>) -> LoginKeys {
        LoginKeys {
            email: format!("email:{}", email.trim().to_lowercase()),
            ip: ip.map(|i| format!("ip:{i}")),
        }
    }

    fn all(&self) -> Vec<&str> {
        std::iter::once(self.email.as_str()).chain(self.ip.as_deref()).collect()
    }
}

impl LoginPolicy {
    /// Failures strictly after this instant are in the window at `now`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now - self.window
    }

    /// `Some(wait)` if the attempt with `keys` must be refused at `now`, given each key's
    /// earlier failures in the window: the longest remaining backoff over the keys.
    pub fn wait(&self, keys: &LoginKeys, failures: &[KeyFailures], now: Timestamp) -> Option<Millis> {
        let rules = std::iter::once((keys.email.as_str(), self.per_email))
            .chain(keys.ip.as_deref().map(|ip| (ip, self.per_ip)));
        rules
            .filter_map(|(key, rule)| {
                let f = failures.iter().find(|f| f.key == key)?;
                let backoff = rule.after(f.count)?;
                // Clamped: another instance's clock a little ahead must not make anyone wait
                // longer than the backoff itself.
                let since_latest = (now - f.newest).0.max(0);
                let left = backoff.0 - since_latest;
                (left > 0).then_some(Millis(left.min(backoff.0)))
            })
            .max()
    }
}

/// An attempt that passed the limiter and is now checking its password. It counts as a failure
/// until [`LoginLimiter::succeeded`] says otherwise.
#[derive(Debug)]
#[must_use = "a successful login must call LoginLimiter::succeeded"]
pub struct Admitted {
    attempt: LoginAttempt,
    email: String,
}

/// The policy applied over the shared store.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    store: Store,
    policy: LoginPolicy,
}

impl LoginLimiter {
    pub fn new(store: Store, policy: LoginPolicy) -> LoginLimiter {
        LoginLimiter { store, policy }
    }

    pub fn policy(&self) -> LoginPolicy {
        self.policy
    }

    /// Reserves this attempt, then judges it by the attempts before it: `Err(wait)` if it must be
    /// refused without checking the password (the reservation is taken back, so hammering
    /// during a backoff does not lengthen it), else the admitted attempt, which counts as a
    /// failure unless [`succeeded`](Self::succeeded) is called.
    pub async fn begin(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
    ) -> Result<Result<Admitted, Millis>, StoreError> {
        let keys = LoginKeys::new(email, ip);
        let (attempt, before) = self
            .store
            .begin_login_attempt(&keys.all(), now, self.policy.window_start(now))
            .await?;
        if let Some(wait) = self.policy.wait(&keys, &before, now) {
            self.store.forget_login_attempt(&attempt).await?;
            return Ok(Err(wait));
        }
        Ok(Ok(Admitted {
            attempt,
            email: keys.email,
        }))
    }

    /// The password was right: the attempt is not a failure, and its e-mail's failures are
    /// cleared (its address's are not: one good password must not reset a spray from there).
    pub async fn succeeded(&self, admitted: Admitted) -> Result<(), StoreError> {
        self.store.forget_login_attempt(&admitted.attempt).await?;
        self.store.clear_login_failures(&admitted.email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_717_200_000_000);

    fn policy(email_free: u32, ip_free: u32) -> LoginPolicy {
        LoginPolicy {
            window: Millis::seconds(600),
            per_email: Backoff {
                free: email_free,
                first: Millis::seconds(10),
                max: Millis::seconds(40),
            },
            per_ip: Backoff {
                free: ip_free,
                first: Millis::seconds(60),
                max: Millis::seconds(600),
            },
        }
    }

    fn failures(key: &str, count: u32, newest: Timestamp) -> KeyFailures {
        KeyFailures {
            key: key.into(),
            count,
            oldest: newest,
            newest,
        }
    }

    // ---- the policy alone ----

    #[test]
    fn keys_ignore_case_and_spaces_of_the_email() {
        let k = LoginKeys::new("  A@X.io ", Some("1.2.3.4"));
        assert_eq!(
            k,
            LoginKeys {
                email: "email:a@x.io".into(),
                ip: Some("ip:1.2.3.4".into())
            }
        );
    }

    #[test]
    fn backoff_doubles_from_the_first_failure_over_the_free_ones_up_to_its_cap() {
        let b = Backoff {
            free: 3,
            first: Millis::seconds(10),
            max: Millis::seconds(45),
        };
        let waits: Vec<_> = (0..8).map(|n| b.after(n).map(|m| m.0 / 1000)).collect();
        assert_eq!(
            waits,
            [None, None, None, Some(10), Some(20), Some(40), Some(45), Some(45)]
        );
        assert_eq!(b.after(u32::MAX), Some(Millis::seconds(45)), "no overflow");
    }

    #[test]
    fn policy_waits_the_backoff_from_the_latest_failure() {
        let p = policy(3, 10);
        let k = LoginKeys::new("a@x.io", Some("9.9.9.9"));
        assert_eq!(
            p.wait(&k, &[failures("email:a@x.io", 2, T0)], T0),
            None,
            "free failures"
        );
        let at_limit = [failures("email:a@x.io", 3, T0)];
        assert_eq!(p.wait(&k, &at_limit, T0 + Millis::seconds(4)), Some(Millis::seconds(6)));
        assert_eq!(
            p.wait(&k, &at_limit, T0 + Millis::seconds(10)),
            None,
            "the backoff is over"
        );
        // Another account's failures are not this one's.
        assert_eq!(p.wait(&LoginKeys::new("b@x.io", Some("9.9.9.9")), &at_limit, T0), None);
        // The longer wait of two keys wins.
        let both = [failures("email:a@x.io", 4, T0), failures("ip:9.9.9.9", 10, T0)];
        assert_eq!(p.wait(&k, &both, T0 + Millis::seconds(5)), Some(Millis::seconds(55)));
        // A failure stamped by an instance whose clock runs ahead waits at most the backoff.
        assert_eq!(
            p.wait(&k, &[failures("email:a@x.io", 3, T0 + Millis::seconds(5))], T0),
            Some(Millis::seconds(10))
        );
    }

    #[test]
    fn an_account_is_never_locked_for_longer_than_its_cap() {
        let p = policy(5, 30);
        let k = LoginKeys::new("a@x.io", Some("203.0.113.9"));
        // However many failures an outsider piles up against the account from other addresses…
        let piled = [failures("email:a@x.io", 100_000, T0)];
        assert_eq!(p.wait(&k, &piled, T0), Some(Millis::seconds(40)));
        // …its owner's address (clean) gets in once the capped backoff has passed.
        assert_eq!(p.wait(&k, &piled, T0 + Millis::seconds(40)), None);
    }

    #[test]
    fn policy_per_ip_limit() {
        let p = policy(100, 2);
        let k = LoginKeys::new("c@x.io", Some("ip"));
        assert!(p.wait(&k, &[failures("ip:ip", 2, T0)], T0).is_some());
        assert!(
            p.wait(&LoginKeys::new("c@x.io", None), &[failures("ip:ip", 2, T0)], T0)
                .is_none(),
            "no address, no address limit"
        );
    }

    // ---- over a store ----

    async fn limiter(p: LoginPolicy) -> LoginLimiter {
        let store = Store::connect("sqlite::memory:").await.expect("in-memory store");
        LoginLimiter::new(store, p)
    }

    #[tokio::test]
    async fn refuses_after_the_free_failures_and_admits_after_the_backoff() {
        let l = limiter(policy(3, 10)).await;
        for i in 0..3 {
            // Dropped without `succeeded`: a wrong password.
            assert!(
                l.begin("A@x.io", Some("1.2.3.4"), T0).await.unwrap().is_ok(),
                "attempt {i}"
            );
        }
        let wait = l
            .begin("a@x.io", Some("9.9.9.9"), T0 + Millis::seconds(4))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(wait, Millis::seconds(6));
        // Refused attempts do not count: hammering during the backoff does not lengthen it.
        for _ in 0..20 {
            assert!(l
                .begin("a@x.io", Some("9.9.9.9"), T0 + Millis::seconds(5))
                .await
                .unwrap()
                .is_err());
        }
        assert!(
            l.begin("b@x.io", Some("1.2.3.4"), T0).await.unwrap().is_ok(),
            "other accounts are fine"
        );
        let ok = l
            .begin("a@x.io", Some("5.5.5.5"), T0 + Millis::seconds(10))
            .await
            .unwrap()
            .expect("backoff over");
        l.succeeded(ok).await.unwrap();
        assert!(
            l.begin("a@x.io", None, T0 + Millis::seconds(10)).await.unwrap().is_ok(),
            "a success clears the account"
        );
    }

    #[tokio::test]
    async fn each_wrong_try_over_the_limit_doubles_the_wait() {
        let l = limiter(policy(1, 100)).await;
        let mut now = T0;
        let mut waits = Vec::new();
        drop(l.begin("a@x.io", None, now).await.unwrap().unwrap());
        for _ in 0..4 {
            let wait = l.begin("a@x.io", None, now).await.unwrap().unwrap_err();
            waits.push(wait.0 / 1000);
            now = now + wait;
            drop(
                l.begin("a@x.io", None, now)
                    .await
                    .unwrap()
                    .expect("admitted after the wait"),
            );
        }
        assert_eq!(waits, [10, 20, 40, 40]);
    }

    /// Issue 15: 12 wrong tries in parallel used to all pass the check before any failure was
    /// written. Now exactly the free ones are admitted.
    #[tokio::test]
    async fn twelve_racing_wrong_tries_admit_only_the_free_ones() {
        let l = limiter(policy(5, 100)).await;
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.begin("a@x.io", Some("198.51.100.1"), T0).await.unwrap().is_ok() })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 5);
    }

    #[tokio::test]
    async fn per_ip_limit() {
        let l = limiter(policy(100, 2)).await;
        drop(l.begin("a@x.io", Some("ip"), T0).await.unwrap());
        drop(l.begin("b@x.io", Some("ip"), T0).await.unwrap());
        assert!(l.begin("c@x.io", Some("ip"), T0).await.unwrap().is_err());
        let ok = l.begin("a@x.io", None, T0).await.unwrap().unwrap();
        l.succeeded(ok).await.unwrap();
        assert!(
            l.begin("c@x.io", Some("ip"), T0).await.unwrap().is_err(),
            "a success does not clear its address"
        );
    }
}
