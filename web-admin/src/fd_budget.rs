//! How the process's open-file limit is shared out, so the web can never starve the phone line
//! (issue 15 item 2: 19,982 idle HTTP connections used every descriptor and the next call got
//! 503 "no free RTP port").
//!
//! SIP and media are served first: two sockets per RTP port pair of the configured range, one
//! recording file per call that can have media, every SIP TCP connection allowed, and a fixed
//! allowance for the rest of the process (database, logs, runtime, outgoing HTTP). HTTP gets
//! what is left, two descriptors per connection (its socket and a recording it may stream), and
//! by default no more than a quarter of the limit or 1024 connections. Pure
//! arithmetic; the binary reads the limit and logs the plan.

/// Descriptors the process holds besides calls and connections: the database pool (SQLite keeps
/// three files per connection), log and prompt files, the runtime's epoll and wake-up fds, the
/// uploader's and webhook sender's outgoing connections.
pub const BASE_RESERVE: u64 = 128;
/// HTTP always gets at least this many connections, so an operator can reach the admin site even
/// when the limit is too small for the SIP reserve.
pub const MIN_HTTP: u64 = 8;
/// Descriptors one HTTP connection may hold: its socket and a recording file it streams.
pub const FDS_PER_HTTP_CONNECTION: u64 = 2;
/// Default HTTP cap when `[http] max_connections` is 0.
pub const DEFAULT_HTTP: u64 = 1024;

/// What SIP and media may use at most, from `[sip]`.
#[derive(Debug, Clone, Copy)]
pub struct SipNeeds {
    /// RTP/RTCP port pairs in `rtp_port_min..rtp_port_max`.
    pub rtp_pairs: u64,
    /// `max_calls` (0 = no limit).
    pub max_calls: u64,
    pub max_tcp_connections: u64,
}

impl SipNeeds {
    pub fn from_ports(rtp_port_min: u16, rtp_port_max: u16, max_calls: usize, max_tcp_connections: usize) -> SipNeeds {
        // Same arithmetic as RtpPorts::new: even ports from the first even one, each with its RTCP neighbour.
        let start = rtp_port_min + (rtp_port_min % 2);
        let rtp_pairs = (start..rtp_port_max).step_by(2).count() as u64;
        SipNeeds {
            rtp_pairs,
            max_calls: max_calls as u64,
            max_tcp_connections: max_tcp_connections as u64,
        }
    }

    /// Descriptors kept for SIP and media.
    pub fn reserve(&self) -> u64 {
        // A call with media holds a pair; at most one recording file per such call.
        let calls = if self.max_calls == 0 {
            self.rtp_pairs
        } else {
            self.max_calls.min(self.rtp_pairs)
        };
        2 * self.rtp_pairs + calls + self.max_tcp_connections + BASE_RESERVE
    }
}

/// The plan logged at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    pub limit: u64,
    pub sip_reserve: u64,
    pub http_connections: u64,
    /// The limit is below the SIP reserve: calls may fail for want of sockets at full load.
    pub short: bool,
    /// `[http] max_connections` was set higher than the room left, and was cut to it.
    pub clamped: bool,
}

/// Shares `limit` (RLIMIT_NOFILE) out; `configured` is `[http] max_connections` (0 = automatic).
pub fn plan(limit: u64, sip: SipNeeds, configured: u64) -> FdBudget {
    let sip_reserve = sip.reserve();
    let room = (limit.saturating_sub(sip_reserve) / FDS_PER_HTTP_CONNECTION).max(MIN_HTTP);
    let wanted = if configured == 0 {
        DEFAULT_HTTP.min(limit / 4).max(MIN_HTTP)
    } else {
        configured
    };
    let http_connections = wanted.min(room);
    FdBudget {
        limit,
        sip_reserve,
        http_connections,
        short: limit < sip_reserve + MIN_HTTP,
        clamped: configured != 0 && configured > room,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(pairs: u64, calls: u64, tcp: u64) -> SipNeeds {
        SipNeeds {
            rtp_pairs: pairs,
            max_calls: calls,
            max_tcp_connections: tcp,
        }
    }

    #[test]
    fn port_pairs_match_the_rtp_pool() {
        assert_eq!(SipNeeds::from_ports(20000, 30000, 0, 0).rtp_pairs, 5000);
        assert_eq!(SipNeeds::from_ports(20001, 20010, 0, 0).rtp_pairs, 4);
    }

    #[test]
    fn http_gets_what_sip_leaves_and_at_most_a_quarter_by_default() {
        // Defaults on a systemd host (LimitNOFILE=65536): SIP keeps 15,280, HTTP its default 1024.
        let sip = SipNeeds::from_ports(20000, 30000, 4000, 1024);
        assert_eq!(sip.reserve(), 10000 + 4000 + 1024 + BASE_RESERVE);
        let b = plan(65536, sip, 0);
        assert_eq!((b.http_connections, b.short, b.clamped), (1024, false, false));
        // A small limit: a quarter of it.
        let b = plan(1024, needs(20, 0, 16), 0);
        assert_eq!(b.http_connections, 256);
        // The SIP reserve comes first: a configured cap above the room is cut to it.
        let b = plan(2048, needs(500, 0, 100), 5000);
        assert_eq!(b.sip_reserve, 1000 + 500 + 100 + BASE_RESERVE);
        assert_eq!(
            (b.http_connections, b.clamped),
            ((2048 - b.sip_reserve) / FDS_PER_HTTP_CONNECTION, true)
        );
        // A limit below the reserve: HTTP keeps its minimum and the shortfall is reported.
        let b = plan(1024, SipNeeds::from_ports(20000, 30000, 4000, 1024), 0);
        assert_eq!((b.http_connections, b.short), (MIN_HTTP, true));
    }
}
