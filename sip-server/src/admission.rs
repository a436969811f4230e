//! Admission control for new calls, sans-IO: a concurrent-call ceiling, a token bucket of call
//! attempts per source address, and draining during shutdown. Rejected callers get 503 with
//! Retry-After (RFC 3261 §21.5.4), so well-behaved trunks back off and retry elsewhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// Calls held at once; 0 means no limit.
    pub max_calls: usize,
    /// Sustained new calls per second from one source address; 0 means no limit.
    pub per_source_rate: f64,
    /// Calls a source may place in a burst above the rate.
    pub per_source_burst: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// At the call ceiling.
    Busy,
    /// This source is calling faster than allowed.
    RateLimited,
    /// Shutting down: no new calls.
    Draining,
}

impl Verdict {
    /// Seconds to put in Retry-After.
    pub fn retry_after(self) -> u32 {
        match self {
            Verdict::Accept => 0,
            Verdict::Busy => 5,
            Verdict::RateLimited => 10,
            Verdict::Draining => 30,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Admission {
    cfg: AdmissionConfig,
    buckets: HashMap<IpAddr, Bucket>,
    draining: bool,
    pub rejected: u64,
}

/// Buckets kept before idle ones are swept (a scanner spraying from many addresses cannot grow the map forever).
const MAX_BUCKETS: usize = 16_384;

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Self {
        Admission { cfg, buckets: HashMap::new(), draining: false, rejected: 0 }
    }

    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    pub fn admit(&mut self, source: IpAddr, active_calls: usize, now: Instant) -> Verdict {
        let v = self.decide(source, active_calls, now);
        if v != Verdict::Accept {
            self.rejected += 1;
        }
        v
    }

    fn decide(&mut self, source: IpAddr, active_calls: usize, now: Instant) -> Verdict {
        if self.draining {
            return Verdict::Draining;
        }
        if self.cfg.max_calls > 0 && active_calls >= self.cfg.max_calls {
            return Verdict::Busy;
        }
        if self.cfg.per_source_rate <= 0.0 {
            return Verdict::Accept;
        }
        if self.buckets.len() >= MAX_BUCKETS {
            let (rate, burst) = (self.cfg.per_source_rate, self.cfg.per_source_burst);
            self.buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
        }
        let burst = self.cfg.per_source_burst.max(1.0);
        let b = self.buckets.entry(source).or_insert(Bucket { tokens: burst, at: now });
        let refill = self.cfg.per_source_rate * now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Verdict::Accept
        } else {
            Verdict::RateLimited
        }
    }
}

/// How long a drain may wait before hanging up the remaining calls.
pub fn drain_deadline(now: Instant, secs: u64) -> Instant {
    now + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ceiling_rate_and_drain() {
        let mut a = Admission::new(AdmissionConfig { max_calls: 2, per_source_rate: 1.0, per_source_burst: 2.0 });
        let t = Instant::now();
        assert_eq!(a.admit(ip("192.0.2.1"), 0, t), Verdict::Accept);
        assert_eq!(a.admit(ip("192.0.2.1"), 1, t), Verdict::Accept);
        assert_eq!(a.admit(ip("192.0.2.1"), 1, t), Verdict::RateLimited, "burst of 2 used up");
        assert_eq!(a.admit(ip("192.0.2.2"), 1, t), Verdict::Accept, "another source has its own bucket");
        assert_eq!(a.admit(ip("192.0.2.3"), 2, t), Verdict::Busy);
        assert_eq!(a.admit(ip("192.0.2.1"), 0, t + Duration::from_millis(1000)), Verdict::Accept, "refilled");
        a.start_draining();
        assert_eq!(a.admit(ip("192.0.2.9"), 0, t), Verdict::Draining);
        assert_eq!(a.rejected, 3);
    }

    #[test]
    fn flood_from_one_source_is_throttled_to_its_rate() {
        let mut a = Admission::new(AdmissionConfig { max_calls: 0, per_source_rate: 20.0, per_source_burst: 40.0 });
        let t0 = Instant::now();
        let mut accepted = 0;
        // 5,000 INVITEs per second for 10 seconds from one address.
        for i in 0..50_000u64 {
            if a.admit(ip("198.51.100.7"), 0, t0 + Duration::from_micros(i * 200)) == Verdict::Accept {
                accepted += 1;
            }
        }
        assert!((230..=245).contains(&accepted), "40 burst + 20/s × 10 s, got {accepted}");
        assert_eq!(a.admit(ip("203.0.113.5"), 0, t0 + Duration::from_secs(10)), Verdict::Accept, "a real trunk still gets in");
    }
}
