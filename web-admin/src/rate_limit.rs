//! Login rate limiting: a sliding window of failed attempts per key.
//!
//! Keys are "email:<address>" and "ip:<address>", so guessing one account's password from many
//! addresses and spraying many accounts from one address are both slowed. Only failures count;
//! a success clears the e-mail's record. Time is passed in (sans-IO), so tests run without
//! sleeping. State lives in memory: a restart forgets it, which is acceptable for a limiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    max_per_email: usize,
    max_per_ip: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(Duration::from_secs(15 * 60), 5, 30)
    }
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_email: usize, max_per_ip: usize) -> LoginLimiter {
        LoginLimiter { window, max_per_email, max_per_ip, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(email: &str, ip: Option<&str>) -> (String, Option<String>) {
        (format!("email:{}", email.trim().to_lowercase()), ip.map(|i| format!("ip:{i}")))
    }

    /// `Some(wait)` if this attempt must be refused without checking the password.
    pub fn check(&self, email: &str, ip: Option<&str>, now: Instant) -> Option<Duration> {
        let (ek, ik) = Self::keys(email, ip);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut worst: Option<Duration> = None;
        for (key, max) in [(Some(ek), self.max_per_email), (ik, self.max_per_ip)] {
            let Some(key) = key else { continue };
            let Some(q) = map.get_mut(&key) else { continue };
            while q.front().is_some_and(|&t| now.duration_since(t) >= self.window) {
                q.pop_front();
            }
            if q.len() >= max {
                let oldest = q.front().copied().unwrap_or(now);
                let wait = self.window.saturating_sub(now.duration_since(oldest));
                worst = Some(worst.map_or(wait, |w| w.max(wait)));
            }
        }
        worst
    }

    pub fn record_failure(&self, email: &str, ip: Option<&str>, now: Instant) {
        let (ek, ik) = Self::keys(email, ip);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory under a flood of distinct keys: forget everything rather than grow.
        if map.len() > 100_000 {
            map.clear();
        }
        for key in [Some(ek), ik].into_iter().flatten() {
            map.entry(key).or_default().push_back(now);
        }
    }

    pub fn record_success(&self, email: &str) {
        let (ek, _) = Self::keys(email, None);
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&ek);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_and_forgets_after_the_window() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check("a@x.io", Some("1.2.3.4"), t0).is_none(), "attempt {i}");
            l.record_failure("A@x.io", Some("1.2.3.4"), t0);
        }
        let wait = l.check("a@x.io", Some("9.9.9.9"), t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.check("b@x.io", Some("1.2.3.4"), t0).is_none(), "other accounts are fine");
        assert!(l.check("a@x.io", None, t0 + Duration::from_secs(61)).is_none());
        l.record_failure("a@x.io", None, t0);
        l.record_success("a@x.io");
        assert!(l.check("a@x.io", None, t0).is_none());
    }

    #[test]
    fn per_ip_limit() {
        let l = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        let t0 = Instant::now();
        l.record_failure("a@x.io", Some("ip"), t0);
        l.record_failure("b@x.io", Some("ip"), t0);
        assert!(l.check("c@x.io", Some("ip"), t0).is_some());
    }
}
