//! Where OnCall may send HTTP on a tenant's behalf (issue #15 item 6, webhook SSRF).
//!
//! A webhook URL is typed by an organization's manager, but the POST leaves from the server's own
//! network, which reaches what the manager cannot: the cloud metadata service (169.254.169.254), the
//! database, an admin port on 127.0.0.1, the office LAN. With the delivery log showing a status code
//! or a connect error, any manager would have a port scanner. So a destination address is allowed
//! only when it is globally routable, or when the operator names it in `[webhooks] allow_private`
//! (CIDRs). [`DestinationPolicy::allows`] is that one decision, pure; the save-time URL check
//! ([`DestinationPolicy::check_url`]) and the sender's resolver (`paging/src/webhooks.rs`, which connects
//! only to the addresses it checked, so DNS rebinding gains nothing) both ask it.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) are judged by that IPv4 address. Not here: DNS and sockets (the binary resolves).

use crate::validation::ValidationError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address block such as `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `Cidr` did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address block (e.g. 10.0.0.0/8, 127.0.0.1 or fd00::/8)")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr {
            addr: unmapped(addr),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The block of one address.
impl From<IpAddr> for Cidr {
    fn from(addr: IpAddr) -> Cidr {
        let addr = unmapped(addr);
        Cidr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }
}

impl Cidr {
    /// Whether `ip` lies in the block. An IPv4-mapped IPv6 address (how a dual-stack socket shows
    /// an IPv4 peer) is its IPv4 address; other IPv6 forms that embed one (NAT64, 6to4) are not,
    /// since trust decisions (allowed sources, trusted proxies) must not widen through them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmapped(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), 128, self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix.min(bits));
    // A shift of the full width would overflow: a /0 contains everything of its family.
    shift >= u32::from(bits) || (a >> shift) == (b >> shift)
}

/// An IPv6 address that carries an IPv4 one, as that IPv4 address; anything else unchanged.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff {
        return Some(low32); // ::ffff:a.b.c.d, IPv4-mapped
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low32); // 64:ff9b::a.b.c.d, NAT64 well-known prefix (RFC 6052)
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)); // 2002:aabb:ccdd::, 6to4
    }
    None
}

/// What kind of non-public address `ip` is, or `None` when it is globally routable.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // ::a.b.c.d (deprecated IPv4-compatible) and the rest of ::/96.
        _ if bits >> 32 == 0 => "reserved",
        _ if first & 0xfe00 == 0xfc00 => "private (unique local)",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xffc0 == 0xfec0 => "site-local",
        _ if first & 0xff00 == 0xff00 => "multicast",
        _ if bits >> 96 == 0x2001_0db8 => "documentation",
        _ if bits >> 64 == 0x0100_0000_0000_0000 => "discard",
        _ => return None,
    })
}

/// A destination refused by the policy: the address and what kind it is. Shown to the operator
/// (server log), never to the tenant, who only learns "destination not allowed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {ip} is {kind}, not in [webhooks] allow_private")]
pub struct Refused {
    pub ip: IpAddr,
    pub kind: &'static str,
}

/// Which addresses outbound requests for tenants may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Non-public blocks the operator allows anyway (a receiver on the LAN, a test on 127.0.0.1).
    pub allow_private: Vec<Cidr>,
}

impl DestinationPolicy {
    /// Allows public addresses and the operator's blocks.
    pub fn allows(&self, ip: IpAddr) -> Result<(), Refused> {
        match special_use(ip) {
            None => Ok(()),
            // The operator's block matches the address as written or the IPv4 address it embeds.
            Some(_) if self.allow_private.iter().any(|c| c.contains(ip) || c.contains(canonical(ip))) => Ok(()),
            Some(kind) => Err(Refused {
                ip: canonical(ip),
                kind,
            }),
        }
    }

    /// The save-time check of a URL's host: a literal address (in any form a resolver would take)
    /// or `localhost` must be allowed. Names are checked again at delivery, where they are resolved.
    pub fn check_url(&self, url: &str) -> Result<(), ValidationError> {
        let Some(host) = url_host(url) else {
            return Ok(()); // validate_url reports malformed URLs
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = if host == "localhost" || host.ends_with(".localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST) // RFC 6761: always this machine
        } else if let Some(ip) = literal_ip(&host) {
            ip
        } else {
            return Ok(());
        };
        self.allows(ip).map_err(|r| {
            ValidationError::new(
                "url",
                format!(
                    "points at a {} address ({}), which this server does not send webhooks to; use a public address (the operator can allow private ones with [webhooks] allow_private)",
                    r.kind, r.ip
                ),
            )
        })
    }
}

/// The host of an `http(s)://` URL, without userinfo, port or IPv6 brackets.
pub fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split(':').next().unwrap_or(""))
}

/// An address literal as resolvers read it: IPv6, dotted IPv4, and the `inet_aton` forms
/// (`2130706433`, `0x7f.1`, `0177.0.0.1`) that getaddrinfo also turns into 127.0.0.1.
fn literal_ip(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<u32> = host.split('.').map(aton_part).collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|p| *p > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if room < 32 && *last >= 1 << room {
        return None;
    }
    let high = head
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, p)| acc | p << (24 - 8 * i as u32));
    Some(IpAddr::V4(Ipv4Addr::from(high | last)))
}

fn aton_part(p: &str) -> Option<u32> {
    if let Some(hex) = p.strip_prefix("0x") {
        u32::from_str_radix(hex, 16).ok()
    } else if p.len() > 1 && p.starts_with('0') {
        u32::from_str_radix(&p[1..], 8).ok()
    } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        p.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_unspecified_addresses_are_refused() {
        let none = DestinationPolicy::default();
        for (addr, kind) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("10.1.2.3", "private"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("100.127.255.254", "shared (carrier-grade NAT)"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("192.0.2.10", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.251", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("::127.0.0.1", "reserved"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fc00::1", "private (unique local)"),
            ("fd12:3456::1", "private (unique local)"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
        ] {
            assert_eq!(special_use(ip(addr)), Some(kind), "{addr}");
            assert!(none.allows(ip(addr)).is_err(), "{addr}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(special_use(ip(public)), None, "{public}");
            assert!(none.allows(ip(public)).is_ok(), "{public}");
        }
        assert_eq!(
            none.allows(ip("::ffff:127.0.0.1")).unwrap_err().to_string(),
            "destination 127.0.0.1 is loopback, not in [webhooks] allow_private"
        );
    }

    #[test]
    fn the_operator_allow_list_opens_exactly_its_blocks() {
        let p = DestinationPolicy {
            allow_private: vec![
                "127.0.0.1/32".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ],
        };
        for ok in ["127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "fd00:1::5", "8.8.8.8"] {
            assert!(p.allows(ip(ok)).is_ok(), "{ok}");
        }
        for refused in ["127.0.0.2", "10.21.0.1", "169.254.169.254", "fc00::1", "::1"] {
            assert!(p.allows(ip(refused)).is_err(), "{refused}");
        }
        let everything = DestinationPolicy {
            allow_private: vec!["0.0.0.0/0".parse().unwrap()],
        };
        assert!(everything.allows(ip("192.168.0.1")).is_ok());
        assert!(
            everything.allows(ip("::1")).is_err(),
            "an IPv4 block does not open IPv6"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "::/129", "localhost", "10.0.0/8", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_naming_refused_hosts_are_rejected_when_saved() {
        let none = DestinationPolicy::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/hook",
            "http://LOCALHOST./x",
            "http://admin.localhost/x",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:5432/",
            "http://10.0.0.5/",
            "https://user:pw@192.168.1.1:8443/x",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1:22/",
        ] {
            let e = none.check_url(url).unwrap_err();
            assert_eq!(e.field, "url", "{url}");
            assert!(e.message.contains("does not send webhooks to"), "{url}: {e}");
        }
        for url in [
            "https://hooks.example.com/x",
            "http://8.8.8.8/",
            "http://[2606:4700::1111]/",
            "http://10.example.com/",
            "http://1.2.3.4.5/",
        ] {
            assert!(none.check_url(url).is_ok(), "{url}");
        }
        let lab = DestinationPolicy {
            allow_private: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(lab.check_url("http://127.0.0.1:8081/hook").is_ok());
        assert!(lab.check_url("http://localhost:8081/hook").is_ok());
        assert!(lab.check_url("http://10.0.0.1/").is_err());
        assert_eq!(url_host("https://a@[fe80::1]:80/x"), Some("fe80::1"));
    }
}
