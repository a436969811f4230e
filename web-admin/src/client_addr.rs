//! Which address a web request really comes from, for the login limiter's per-source key.
//!
//! Behind the reverse proxy docs/deploy.md recommends (on the same host), every request's TCP
//! peer is the proxy, 127.0.0.1. Keyed by that, the per-source limit would be one limit for
//! everybody, and an outsider's wrong passwords would make every user wait (issue 15: no lockout
//! an outsider can hold). So when the peer is a trusted proxy (`[http] trusted_proxies`,
//! loopback by default) the client is the right-most `X-Forwarded-For` address that is not
//! itself a trusted proxy (the left part is whatever the client chose to send, so never that);
//! `X-Real-IP` when there is no `X-Forwarded-For`. A peer that is not trusted is the client,
//! whatever it sends.
//!
//! IPv6 clients are keyed by their /64: one subscriber usually holds a whole /64, and keying by
//! single addresses would give a guesser 2^64 fresh sources.
//!
//! Deliberately not parsed: RFC 7239 `Forwarded` (nginx, Caddy and HAProxy all send
//! `X-Forwarded-For`).

use axum::http::HeaderMap;
use std::net::{IpAddr, Ipv6Addr};

/// A proxy address or network: `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` (the one address
/// block type, core's).
pub type TrustedProxy = oncall_core::destination::Cidr;

/// 127.0.0.1 and ::1: a proxy on the same host.
pub fn loopback_proxies() -> Vec<TrustedProxy> {
    vec![IpAddr::from([127, 0, 0, 1]).into(), IpAddr::V6(Ipv6Addr::LOCALHOST).into()]
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address as the limiter keys it (see the module docs), or `None` without a peer.
pub fn client_key(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[TrustedProxy]) -> Option<String> {
    let peer = canonical(peer?);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    let client = if is_trusted(peer) {
        forwarded_client(headers, &is_trusted).unwrap_or(peer)
    } else {
        peer
    };
    Some(match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    })
}

/// Right to left through every `X-Forwarded-For` header: the first address that is not a trusted
/// proxy. A malformed entry stops the walk (what lies left of it cannot be trusted either).
fn forwarded_client(headers: &HeaderMap, is_trusted: &dyn Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hops.is_empty() {
        return headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(canonical);
    }
    for hop in hops.iter().rev() {
        let ip = canonical(hop.parse::<IpAddr>().ok()?);
        if !is_trusted(ip) {
            return Some(ip);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn parses_addresses_and_networks() {
        let t: TrustedProxy = "10.0.0.0/8".parse().unwrap();
        assert!(t.contains("10.200.3.4".parse().unwrap()) && !t.contains("11.0.0.1".parse().unwrap()));
        let t: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(t.contains("fd12::1".parse().unwrap()) && !t.contains("fe80::1".parse().unwrap()));
        let t: TrustedProxy = "192.0.2.0/25".parse().unwrap();
        assert!(t.contains("192.0.2.127".parse().unwrap()) && !t.contains("192.0.2.128".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
        assert!("proxy.example".parse::<TrustedProxy>().is_err());
        assert!(
            loopback_proxies()[0].contains("::ffff:127.0.0.1".parse().unwrap()),
            "IPv4-mapped"
        );
    }

    /// Issue 15: behind the proxy on the same host, two clients are two sources, not one.
    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop() {
        let lo = loopback_proxies();
        let a = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let b = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_key(ip("127.0.0.1"), &a, &lo).as_deref(), Some("198.51.100.7"));
        assert_eq!(client_key(ip("127.0.0.1"), &b, &lo).as_deref(), Some("203.0.113.9"));
        // A client cannot pick its key by sending its own X-Forwarded-For: the proxy appends the real peer.
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
        assert_eq!(
            client_key(ip("127.0.0.1"), &spoofed, &lo).as_deref(),
            Some("203.0.113.9")
        );
        // Two proxies in a row, both trusted.
        let chain = [lo.clone(), vec!["10.0.0.0/8".parse().unwrap()]].concat();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        assert_eq!(client_key(ip("127.0.0.1"), &h, &chain).as_deref(), Some("203.0.113.9"));
        assert_eq!(
            client_key(ip("127.0.0.1"), &headers(&[("x-real-ip", "198.51.100.8")]), &lo).as_deref(),
            Some("198.51.100.8")
        );
        assert_eq!(
            client_key(ip("127.0.0.1"), &HeaderMap::new(), &lo).as_deref(),
            Some("127.0.0.1"),
            "local, no proxy"
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let lo = loopback_proxies();
        let h = headers(&[("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "10.0.0.1")]);
        assert_eq!(client_key(ip("203.0.113.9"), &h, &lo).as_deref(), Some("203.0.113.9"));
        assert_eq!(
            client_key(ip("127.0.0.1"), &headers(&[("x-forwarded-for", "garbage")]), &lo).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(client_key(None, &h, &lo), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let k1 = client_key(ip("2001:db8:1:2::1"), &HeaderMap::new(), &[]);
        let k2 = client_key(ip("2001:db8:1:2:ffff::9"), &HeaderMap::new(), &[]);
        assert_eq!(k1.as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(k1, k2);
        assert_eq!(
            client_key(ip("::ffff:192.0.2.7"), &HeaderMap::new(), &[]).as_deref(),
            Some("192.0.2.7")
        );
    }
}
