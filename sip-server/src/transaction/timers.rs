//! RFC 3261 timer values (§17.1.1.1, Table 4). Tests shrink nothing: they use a virtual clock.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J (unreliable) and L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
    /// Timer D: at least 32 s over unreliable transports.
    pub fn timer_d(&self) -> Duration {
        Duration::from_secs(32).max(self.t1x64() / 2)
    }
}
