//! Who may read `/metrics` (issue 15, lower item): its counters and the version are of use to
//! an attacker sizing a flood or matching an exploit, so by default only a scraper on this host
//! reads them.
//!
//! `Loopback` trusts the peer address of the TCP connection (ConnectInfo) and nothing the client
//! says, except that a request carrying `Forwarded`, `X-Forwarded-For` or `X-Real-IP` is refused:
//! it came through a reverse proxy on this host, so its peer is loopback whoever sent it. Behind
//! such a proxy use `Token`. Deliberately not here: per-scraper tokens or IP allow-lists.

use axum::http::{header, HeaderMap, StatusCode};
use oncall_core::secret;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MetricsAccess {
    /// Only peers on 127.0.0.0/8 or ::1 (IPv4-mapped too), not proxied.
    #[default]
    Loopback,
    /// `Authorization: Bearer <token>`, from anywhere.
    Token(String),
    /// Anyone who reaches the port.
    Open,
}

impl MetricsAccess {
    /// `Ok` when the request may read the metrics, else the status to answer: 403 for a peer
    /// that is not allowed, 401 for a missing or wrong token.
    pub fn check(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), StatusCode> {
        match self {
            MetricsAccess::Open => Ok(()),
            MetricsAccess::Loopback => {
                let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
                    .iter()
                    .any(|h| headers.contains_key(*h));
                // No peer address at all (a test calling the router directly) is not loopback: fail closed.
                let local = peer.is_some_and(|p| match p.ip() {
                    std::net::IpAddr::V4(v4) => v4.is_loopback(),
                    std::net::IpAddr::V6(v6) => {
                        v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                    }
                });
                if local && !proxied {
                    Ok(())
                } else {
                    Err(StatusCode::FORBIDDEN)
                }
            }
            MetricsAccess::Token(expected) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                match given {
                    Some(t) if !expected.is_empty() && secret::constant_time_eq(t, expected) => Ok(()),
                    _ => Err(StatusCode::UNAUTHORIZED),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn loopback_admits_only_local_unproxied_peers() {
        let a = MetricsAccess::Loopback;
        let none = HeaderMap::new();
        for ok in ["127.0.0.1:9", "127.8.0.2:9", "[::1]:9", "[::ffff:127.0.0.1]:9"] {
            assert_eq!(a.check(peer(ok), &none), Ok(()), "{ok}");
        }
        for bad in [
            "192.0.2.7:9",
            "10.0.0.1:9",
            "[2001:db8::1]:9",
            "[::ffff:192.0.2.7]:9",
            "0.0.0.0:9",
        ] {
            assert_eq!(a.check(peer(bad), &none), Err(StatusCode::FORBIDDEN), "{bad}");
        }
        assert_eq!(a.check(None, &none), Err(StatusCode::FORBIDDEN));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.7"));
        assert_eq!(a.check(peer("127.0.0.1:9"), &proxied), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn token_needs_the_exact_bearer() {
        let a = MetricsAccess::Token("s3cret-metrics-token".into());
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        assert_eq!(
            a.check(peer("192.0.2.7:9"), &with("Bearer s3cret-metrics-token")),
            Ok(())
        );
        assert_eq!(
            a.check(peer("192.0.2.7:9"), &with("Bearer s3cret-metrics-tokeX")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            a.check(peer("192.0.2.7:9"), &with("Basic s3cret-metrics-token")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            a.check(peer("127.0.0.1:9"), &HeaderMap::new()),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            MetricsAccess::Token(String::new()).check(peer("127.0.0.1:9"), &with("Bearer ")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            MetricsAccess::Open.check(peer("192.0.2.7:9"), &HeaderMap::new()),
            Ok(())
        );
    }
}
