//! Admission control for new calls, sans-IO: a concurrent-call ceiling, a token bucket of call
//! attempts per source address, and draining during shutdown. Rejected callers get 503 with
//! Retry-After (RFC 3261 §21.5.4), so well-behaved trunks back off and retry elsewhere.
//!
//! The per-source bucket is on by default (issue #15 item 4: every anonymous call can page someone
//! through a paid trunk). A *trusted* source — a trunk, PBX or proxy the operator listed, which
//! carries many callers from one address — has its own rate, unlimited unless configured; the
//! caller decides which sources are trusted (this module knows nothing of trunks).

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
    /// The rate for trusted sources; 0 means no limit. Their burst is the larger of
    /// `per_source_burst` and one second at this rate.
    pub trusted_rate: f64,
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

    /// Decides for a new call from `source` (`trusted`: a source the operator listed, see the module docs).
    pub fn admit(&mut self, source: IpAddr, trusted: bool, active_calls: usize, now: Instant) -> Verdict {
        let v = self.decide(source, trusted, active_calls, now);
        if v != Verdict::Accept {
            self.rejected += 1;
        }
        v
    }

    fn decide(&mut self, source: IpAddr, trusted: bool, active_calls: usize, now: Instant) -> Verdict {
        if self.draining {
            return Verdict::Draining;
        }
        if self.cfg.max_calls > 0 && active_calls >= self.cfg.max_calls {
            return Verdict::Busy;
        }
        let (rate, burst) = if trusted {
            (self.cfg.trusted_rate, self.cfg.per_source_burst.max(self.cfg.trusted_rate))
        } else {
            (self.cfg.per_source_rate, self.cfg.per_source_burst)
        };
        if rate <= 0.0 {
            return Verdict::Accept;
        }
        if self.buckets.len() >= MAX_BUCKETS {
            // Full buckets are the same as no bucket; a trusted source's may go too (it is recreated full).
            let (rate, burst) = (self.cfg.per_source_rate, self.cfg.per_source_burst);
            self.buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
        }
        let burst = burst.max(1.0);
        let b = self.buckets.entry(source).or_insert(Bucket { tokens: burst, at: now });
        let refill = rate * now.duration_since(b.at).as_secs_f64();
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
        let mut a = Admission::new(AdmissionConfig { max_calls: 2, per_source_rate: 1.0, per_source_burst: 2.0, trusted_rate: 0.0 });
        let t = Instant::now();
        assert_eq!(a.admit(ip("192.0.2.1"), false, 0, t), Verdict::Accept);
        assert_eq!(a.admit(ip("192.0.2.1"), false, 1, t), Verdict::Accept);
        assert_eq!(a.admit(ip("192.0.2.1"), false, 1, t), Verdict::RateLimited, "burst of 2 used up");
        assert_eq!(a.admit(ip("192.0.2.2"), false, 1, t), Verdict::Accept, "another source has its own bucket");
        assert_eq!(a.admit(ip("192.0.2.3"), false, 2, t), Verdict::Busy);
        assert_eq!(a.admit(ip("192.0.2.1"), false, 0, t + Duration::from_millis(1000)), Verdict::Accept, "refilled");
        a.start_draining();
        assert_eq!(a.admit(ip("192.0.2.9"), false, 0, t), Verdict::Draining);
        assert_eq!(a.rejected, 3);
    }

    /// Issue #15 item 4: with no trunk sources configured the default used to be "no limit", and 150 of 150
    /// anonymous calls at 50/s got through. The defaults (5/s, burst 20) let 20 + 5/s through; a trusted source
    /// (a PBX or Kamailio in front, carrying many callers) is not limited unless it gets a rate of its own.
    #[test]
    fn the_default_limit_throttles_an_anonymous_flood_but_not_a_trusted_trunk() {
        let defaults = AdmissionConfig { max_calls: 4000, per_source_rate: 5.0, per_source_burst: 20.0, trusted_rate: 0.0 };
        let mut a = Admission::new(defaults);
        let t0 = Instant::now();
        // 150 calls at 50/s: 3 s.
        let at = |i: u64| t0 + Duration::from_millis(i * 20);
        let anonymous = (0..150).filter(|&i| a.admit(ip("198.51.100.7"), false, 0, at(i)) == Verdict::Accept).count();
        assert!((34..=36).contains(&anonymous), "20 burst + 5/s × 3 s, got {anonymous}");
        assert_eq!(a.rejected, 150 - anonymous as u64);
        let trunk = (0..150).filter(|&i| a.admit(ip("192.0.2.20"), true, 0, at(i)) == Verdict::Accept).count();
        assert_eq!(trunk, 150, "a trusted source is not rate-limited by default");
        // A trusted source with its own rate (100/s, so a burst of 100): 300 calls in 0.3 s.
        let mut b = Admission::new(AdmissionConfig { trusted_rate: 100.0, ..defaults });
        let fast = (0..300).filter(|&i| b.admit(ip("192.0.2.20"), true, 0, t0 + Duration::from_millis(i)) == Verdict::Accept).count();
        assert!((129..=131).contains(&fast), "100 burst + 100/s × 0.3 s, got {fast}");
    }

    #[test]
    fn flood_from_one_source_is_throttled_to_its_rate() {
        let mut a = Admission::new(AdmissionConfig { max_calls: 0, per_source_rate: 20.0, per_source_burst: 40.0, trusted_rate: 0.0 });
        let t0 = Instant::now();
        let mut accepted = 0;
        // 5,000 INVITEs per second for 10 seconds from one address.
        for i in 0..50_000u64 {
            if a.admit(ip("198.51.100.7"), false, 0, t0 + Duration::from_micros(i * 200)) == Verdict::Accept {
                accepted += 1;
            }
        }
        assert!((230..=245).contains(&accepted), "40 burst + 20/s × 10 s, got {accepted}");
        assert_eq!(a.admit(ip("203.0.113.5"), false, 0, t0 + Duration::from_secs(10)), Verdict::Accept, "a real trunk still gets in");
    }
}
