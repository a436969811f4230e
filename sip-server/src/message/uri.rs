//! SIP and SIPS URIs (RFC 3261 §19.1, grammar §25.1), enough to route and to check syntax.
//!
//! Other absolute URIs (tel:, soap.beep:, nobodyKnowsThisScheme:) are kept opaque: the parser
//! accepts them (RFC 4475 NOVELSC, UNKSCM) and the application decides (416 for a Request-URI).
//! Escapes stay as received; OnCall compares users after `unescape` where it matters.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Any other `scheme:opaque` URI, verbatim.
    Other { scheme: String, raw: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// The `?hname=hvalue&...` part, without the `?`.
    pub headers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI: {0}")]
pub struct UriError(pub &'static str);

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Checks that every byte is allowed by `extra` or unreserved, and that `%` starts `%HH`.
fn check_escaped(s: &str, extra: &[u8]) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return Err(UriError("bad %-escape"));
            }
            i += 3;
            continue;
        }
        if !(is_unreserved(b[i]) || extra.contains(&b[i])) {
            return Err(UriError("character not allowed in URI"));
        }
        i += 1;
    }
    Ok(())
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let colon = s.find(':').ok_or(UriError("no scheme"))?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(UriError("bad scheme"));
        }
        if s.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"' || b >= 0x7f) {
            return Err(UriError("whitespace or delimiter inside URI"));
        }
        let lower = scheme.to_ascii_lowercase();
        if lower != "sip" && lower != "sips" {
            if colon + 1 >= s.len() {
                return Err(UriError("empty URI after scheme"));
            }
            return Ok(Uri::Other { scheme: scheme.to_string(), raw: s.to_string() });
        }
        let rest = &s[colon + 1..];
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError("empty user"));
                }
                check_escaped(u, b"&=+$,;?/")?;
                if let Some(p) = p {
                    check_escaped(p, b"&=+$,")?;
                }
                (Some(u.to_string()), p.map(str::to_string))
            }
        };
        let (hostpart, headers) = match hostpart.find('?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        if let Some(h) = headers {
            check_escaped(h, b"[]/?:+$&=")?;
        }
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next().unwrap_or("");
        let (host, port) = split_hostport(hostport)?;
        let mut params = Vec::new();
        for p in pieces {
            let (name, value) = match p.find('=') {
                Some(e) => (&p[..e], Some(&p[e + 1..])),
                None => (p, None),
            };
            if name.is_empty() {
                return Err(UriError("empty URI parameter"));
            }
            check_escaped(name, b"[]/:&+$")?;
            if let Some(v) = value {
                check_escaped(v, b"[]/:&+$")?;
            }
            params.push((name.to_ascii_lowercase(), value.map(str::to_string)));
        }
        Ok(Uri::Sip(SipUri {
            secure: lower == "sips",
            user,
            password,
            host: host.to_string(),
            port,
            params,
            headers: headers.map(str::to_string),
        }))
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// Tel URIs are accepted as Request-URIs alongside sip/sips (RFC 3966).
    pub fn is_dialable_scheme(&self) -> bool {
        matches!(self, Uri::Sip(_)) || self.scheme().eq_ignore_ascii_case("tel")
    }
}

/// `host [":" port]` where host is a hostname, IPv4 address or `[IPv6]`.
pub fn split_hostport(hp: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if let Some(stripped) = hp.strip_prefix('[') {
        let end = stripped.find(']').ok_or(UriError("unterminated IPv6 reference"))?;
        let host = &hp[..end + 2];
        let after = &hp[end + 2..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UriError("junk after IPv6 reference")),
        };
        (host, port)
    } else {
        match hp.rfind(':') {
            Some(c) => (&hp[..c], Some(&hp[c + 1..])),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err(UriError("empty host"));
    }
    if !host.starts_with('[') && !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return Err(UriError("bad host"));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| UriError("bad port"))?),
        None => None,
    };
    Ok((host, port))
}

impl SipUri {
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Other { raw, .. } => f.write_str(raw),
            Uri::Sip(u) => {
                f.write_str(if u.secure { "sips:" } else { "sip:" })?;
                if let Some(user) = &u.user {
                    f.write_str(user)?;
                    if let Some(p) = &u.password {
                        write!(f, ":{p}")?;
                    }
                    f.write_str("@")?;
                }
                f.write_str(&u.host)?;
                if let Some(p) = u.port {
                    write!(f, ":{p}")?;
                }
                for (n, v) in &u.params {
                    match v {
                        Some(v) => write!(f, ";{n}={v}")?,
                        None => write!(f, ";{n}")?,
                    }
                }
                if let Some(h) = &u.headers {
                    write!(f, "?{h}")?;
                }
                Ok(())
            }
        }
    }
}

/// Decodes `%HH` escapes (for comparing users such as `%75se%72` = `user`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_torture_uris() {
        for ok in [
            "sip:sips%3Auser%40example.com@example.net",
            "sip:user;par=u%40example.net@example.com",
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
            "sip:vivekg@chair-dnrc.example.com;unknownparam",
            "sip:user@[2001:db8::10]:5070;transport=tcp",
            "soap.beep://192.0.2.103:3002",
            "nobodyKnowsThisScheme:totallyopaquecontent",
        ] {
            assert!(Uri::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["<sip:user@example.com>", "sip:user@example.com; lr", "sip:", "sip:user@ex ample.com", "sip:%zz@x"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("%75se%72"), "user");
        assert_eq!(unescape("100%"), "100%");
    }
}
