//! Login rate limiting: a sliding window of failed attempts per key, kept in the database.
//!
//! Keys are "email:<address>" and "ip:<address>", so guessing one account's password from many
//! addresses and spraying many accounts from one address are both slowed. Only failures count;
//! a success clears the e-mail's record.
//!
//! Two halves. [`LoginPolicy`] is the rule, pure: given each key's failures in the window (count
//! and oldest), must this attempt wait, and how long. [`LoginLimiter`] applies it over the store
//! (`login_failures` table), so every instance on the same database shares one limit and a
//! restart forgets nothing (issue 10 item 2). Time is passed in (`Timestamp`), so tests run
//! without sleeping.
//!
//! Deliberately not done: check-then-record is not atomic, so attempts racing each other (on one
//! instance or several) can each pass the check before any of them records its failure; a
//! guesser gains at most their concurrency once per window, not N instances' worth of tries.

use oncall_core::store::KeyFailures;
use oncall_core::{Millis, Store, StoreError, Timestamp};

/// How many failures each key may have within `window` before attempts are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub window: Millis,
    pub max_per_email: u32,
    pub max_per_ip: u32,
}

impl Default for LoginPolicy {
    /// 5 failures per e-mail and 30 per address in 15 minutes.
    fn default() -> Self {
        LoginPolicy { window: Millis::minutes(15), max_per_email: 5, max_per_ip: 30 }
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
        LoginKeys { email: format!("email:{}", email.trim().to_lowercase()), ip: ip.map(|i| format!("ip:{i}")) }
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
    /// failures since [`window_start`](Self::window_start): the wait lasts until the oldest
    /// failure of a key at its limit leaves the window (the longest such wait over the keys).
    pub fn wait(&self, keys: &LoginKeys, failures: &[KeyFailures], now: Timestamp) -> Option<Millis> {
        let limits = std::iter::once((keys.email.as_str(), self.max_per_email))
            .chain(keys.ip.as_deref().map(|ip| (ip, self.max_per_ip)));
        limits
            .filter_map(|(key, max)| {
                let f = failures.iter().find(|f| f.key == key)?;
                (f.count >= max).then(|| {
                    // Clamped: another instance's clock a little ahead must not make anyone wait
                    // longer than one window.
                    Millis((self.window.0 - (now - f.oldest).0).clamp(0, self.window.0))
                })
            })
            .max()
    }
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

    /// `Some(wait)` if this attempt must be refused without checking the password.
    pub async fn check(&self, email: &str, ip: Option<&str>, now: Timestamp) -> Result<Option<Millis>, StoreError> {
        let keys = LoginKeys::new(email, ip);
        let failures = self.store.login_failures_since(&keys.all(), self.policy.window_start(now)).await?;
        Ok(self.policy.wait(&keys, &failures, now))
    }

    /// Counts a wrong password against the e-mail and the address (and prunes failures that
    /// have left the window, for every key).
    pub async fn record_failure(&self, email: &str, ip: Option<&str>, now: Timestamp) -> Result<(), StoreError> {
        let keys = LoginKeys::new(email, ip);
        self.store.record_login_failure(&keys.all(), now, self.policy.window_start(now)).await
    }

    /// A successful login clears its e-mail's failures (not its address's: one good password
    /// must not reset a spray from that address).
    pub async fn record_success(&self, email: &str) -> Result<(), StoreError> {
        self.store.clear_login_failures(&LoginKeys::new(email, None).email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_717_200_000_000);

    fn policy(max_per_email: u32, max_per_ip: u32) -> LoginPolicy {
        LoginPolicy { window: Millis::seconds(60), max_per_email, max_per_ip }
    }

    fn failures(key: &str, count: u32, oldest: Timestamp) -> KeyFailures {
        KeyFailures { key: key.into(), count, oldest }
    }

    // ---- the policy alone ----

    #[test]
    fn keys_ignore_case_and_spaces_of_the_email() {
        let k = LoginKeys::new("  A@X.io ", Some("1.2.3.4"));
        assert_eq!(k, LoginKeys { email: "email:a@x.io".into(), ip: Some("ip:1.2.3.4".into()) });
    }

    #[test]
    fn policy_waits_until_the_oldest_failure_leaves_the_window() {
        let p = policy(3, 10);
        let k = LoginKeys::new("a@x.io", Some("9.9.9.9"));
        assert_eq!(p.wait(&k, &[failures("email:a@x.io", 2, T0)], T0), None, "under the limit");
        let at_limit = [failures("email:a@x.io", 3, T0)];
        assert_eq!(p.wait(&k, &at_limit, T0 + Millis::seconds(10)), Some(Millis::seconds(50)));
        // Another account's failures are not this one's.
        assert_eq!(p.wait(&LoginKeys::new("b@x.io", Some("9.9.9.9")), &at_limit, T0), None);
        // The longer wait of two keys at their limit wins.
        let both = [failures("email:a@x.io", 3, T0 + Millis::seconds(30)), failures("ip:9.9.9.9", 10, T0)];
        assert_eq!(p.wait(&k, &both, T0 + Millis::seconds(40)), Some(Millis::seconds(50)));
        // A failure stamped by an instance whose clock runs ahead waits at most one window.
        assert_eq!(p.wait(&k, &[failures("email:a@x.io", 3, T0 + Millis::seconds(5))], T0), Some(Millis::seconds(60)));
    }

    #[test]
    fn policy_per_ip_limit() {
        let p = policy(100, 2);
        let k = LoginKeys::new("c@x.io", Some("ip"));
        assert!(p.wait(&k, &[failures("ip:ip", 2, T0)], T0).is_some());
        assert!(p.wait(&LoginKeys::new("c@x.io", None), &[failures("ip:ip", 2, T0)], T0).is_none(), "no address, no address limit");
    }

    // ---- over a store ----

    async fn limiter(p: LoginPolicy) -> LoginLimiter {
        let store = Store::connect("sqlite::memory:").await.expect("in-memory store");
        LoginLimiter::new(store, p)
    }

    #[tokio::test]
    async fn blocks_after_max_failures_and_forgets_after_the_window() {
        let l = limiter(policy(3, 10)).await;
        for i in 0..3 {
            assert!(l.check("a@x.io", Some("1.2.3.4"), T0).await.unwrap().is_none(), "attempt {i}");
            l.record_failure("A@x.io", Some("1.2.3.4"), T0).await.unwrap();
        }
        let wait = l.check("a@x.io", Some("9.9.9.9"), T0 + Millis::seconds(10)).await.unwrap();
        assert_eq!(wait, Some(Millis::seconds(50)));
        assert!(l.check("b@x.io", Some("1.2.3.4"), T0).await.unwrap().is_none(), "other accounts are fine");
        assert!(l.check("a@x.io", None, T0 + Millis::seconds(61)).await.unwrap().is_none());
        l.record_failure("a@x.io", None, T0).await.unwrap();
        l.record_success("a@x.io").await.unwrap();
        assert!(l.check("a@x.io", None, T0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn per_ip_limit() {
        let l = limiter(policy(100, 2)).await;
        l.record_failure("a@x.io", Some("ip"), T0).await.unwrap();
        l.record_failure("b@x.io", Some("ip"), T0).await.unwrap();
        assert!(l.check("c@x.io", Some("ip"), T0).await.unwrap().is_some());
        l.record_success("a@x.io").await.unwrap();
        assert!(l.check("c@x.io", Some("ip"), T0).await.unwrap().is_some(), "a success does not clear its address");
    }
}
