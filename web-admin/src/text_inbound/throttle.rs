//! Throttle of the inbound text webhook per source address, in memory and sans-IO (time is passed
//! in): at most `posts_per_minute` posts a minute, and after `max_failures` posts with a bad
//! signature or token within `failure_window`, nothing more until that window ends. So neither a
//! signature guesser nor a flood of valid-looking posts gets far.
//!
//! Not done: sharing counts between instances (each instance throttles what reaches it), and
//! telling sources apart behind a reverse proxy (they all count as the proxy).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Posts a source may make per minute (0: no limit).
    pub posts_per_minute: u32,
    /// Refused posts a source may make within `failure_window` before it is shut out (0: no limit).
    pub max_failures: u32,
    pub failure_window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            posts_per_minute: 60,
            max_failures: 5,
            failure_window: Duration::from_secs(900),
        }
    }
}

/// Sources tracked at most; past it idle ones are dropped first.
const MAX_SOURCES: usize = 10_000;
const MINUTE: Duration = Duration::from_secs(60);

struct Entry {
    minute_start: Instant,
    posts: u32,
    failures_start: Instant,
    failures: u32,
}

pub struct Throttle {
    cfg: ThrottleConfig,
    sources: HashMap<IpAddr, Entry>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            sources: HashMap::new(),
        }
    }

    /// Counts a post from `ip`; `Err(wait)` when it must be refused (429, `Retry-After: wait`).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let cfg = self.cfg;
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.purge(now);
            if self.sources.len() >= MAX_SOURCES {
                // Still full: forget one that is not shut out, so a spray of addresses cannot lock
                // everyone out (nor make the table grow).
                let cfg = self.cfg;
                if let Some(k) = self
                    .sources
                    .iter()
                    .find(|(_, e)| !shut_out(&cfg, e, now))
                    .map(|(k, _)| *k)
                {
                    self.sources.remove(&k);
                }
            }
        }
        let e = self.sources.entry(ip).or_insert(Entry {
            minute_start: now,
            posts: 0,
            failures_start: now,
            failures: 0,
        });
        if shut_out(&cfg, e, now) {
            return Err((e.failures_start + cfg.failure_window)
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        if now.saturating_duration_since(e.minute_start) >= MINUTE {
            e.minute_start = now;
            e.posts = 0;
        }
        if cfg.posts_per_minute > 0 && e.posts >= cfg.posts_per_minute {
            return Err((e.minute_start + MINUTE)
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        e.posts += 1;
        Ok(())
    }

    /// Counts a post from `ip` that was refused (bad signature or token).
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        let window = self.cfg.failure_window;
        let e = self.sources.entry(ip).or_insert(Entry {
            minute_start: now,
            posts: 0,
            failures_start: now,
            failures: 0,
        });
        if now.saturating_duration_since(e.failures_start) >= window {
            e.failures_start = now;
            e.failures = 0;
        }
        e.failures += 1;
    }

    fn purge(&mut self, now: Instant) {
        let window = self.cfg.failure_window;
        self.sources.retain(|_, e| {
            now.saturating_duration_since(e.minute_start) < MINUTE
                || (e.failures > 0 && now.saturating_duration_since(e.failures_start) < window)
        });
    }
}

fn shut_out(cfg: &ThrottleConfig, e: &Entry, now: Instant) -> bool {
    cfg.max_failures > 0
        && e.failures >= cfg.max_failures
        && now.saturating_duration_since(e.failures_start) < cfg.failure_window
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_shut_a_source_out_until_the_window_ends() {
        let t0 = Instant::now();
        let mut t = Throttle::new(ThrottleConfig {
            posts_per_minute: 0,
            max_failures: 3,
            failure_window: Duration::from_secs(900),
        });
        let bad = ip("203.0.113.9");
        for i in 0..3 {
            assert_eq!(t.admit(bad, t0 + Duration::from_secs(i)), Ok(()));
            t.failed(bad, t0 + Duration::from_secs(i));
        }
        let wait = t.admit(bad, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(890));
        // Another source is not affected.
        assert_eq!(t.admit(ip("198.51.100.1"), t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(t.admit(bad, t0 + Duration::from_secs(900)), Ok(()));
    }

    #[test]
    fn posts_per_minute_per_source() {
        let t0 = Instant::now();
        let mut t = Throttle::new(ThrottleConfig {
            posts_per_minute: 2,
            max_failures: 0,
            failure_window: Duration::from_secs(900),
        });
        let gw = ip("192.0.2.1");
        assert_eq!(t.admit(gw, t0), Ok(()));
        assert_eq!(t.admit(gw, t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(t.admit(gw, t0 + Duration::from_secs(20)), Err(Duration::from_secs(40)));
        assert_eq!(t.admit(gw, t0 + Duration::from_secs(60)), Ok(()));
        // Failures do not count without a limit.
        for _ in 0..100 {
            t.failed(gw, t0 + Duration::from_secs(61));
        }
        assert_eq!(t.admit(gw, t0 + Duration::from_secs(61)), Ok(()));
    }
}
