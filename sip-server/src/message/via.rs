//! The Via header (RFC 3261 §20.42, §18.2.1) with the rport extension (RFC 3581).
//!
//! A request's top Via says where responses go; OnCall stamps `received`/`rport` on it when it
//! arrives, so responses reach a caller behind NAT. Only syntax is checked here, not reachability.

use super::scanner::{is_token_char, Scanner};
use super::uri::split_hostport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub protocol_version: String,
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

/// The RFC 3261 magic cookie that marks a branch as globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Parses one via-parm (one element of a possibly comma-separated Via value).
    pub fn parse(s: &str) -> Result<Via, &'static str> {
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let name = sc.token().ok_or("missing protocol name")?;
        if !sc.eat_sep(b'/') {
            return Err("missing / after protocol name");
        }
        let version = sc.token().ok_or("missing protocol version")?;
        if !sc.eat_sep(b'/') {
            return Err("missing / after protocol version");
        }
        let transport = sc.token().ok_or("missing transport")?;
        let before = sc.pos();
        sc.skip_ws();
        if sc.pos() == before {
            return Err("missing space before sent-by");
        }
        let host = sc
            .take_while(|b| is_token_char(b) || b == b'[' || b == b']' || b == b':')
            .ok_or("missing sent-by")?;
        // "host : port" with spaces around the colon is legal (COLON = SWS ":" SWS)
        let mut hostport = host.to_string();
        if sc.eat_sep(b':') {
            let port = sc.take_while(|b| b.is_ascii_digit()).ok_or("bad port")?;
            hostport.push(':');
            hostport.push_str(port);
        }
        let (host, port) = split_hostport(&hostport).map_err(|e| e.0)?;
        let params = sc.params()?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err("junk after Via parameters");
        }
        Ok(Via {
            protocol_version: format!("{}/{}", name, version),
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    pub fn has_magic_cookie(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// `host[:port]` as written (the transaction key's sent-by).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_and_spaced_via() {
        let v = Via::parse("SIP  /   2.0 /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v = Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8").unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert!(v.has_magic_cookie());
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;rport").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.param("rport"), Some(None));
    }

    #[test]
    fn rejects_empty_params() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }
}
