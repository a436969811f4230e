//! Digest challenges (`WWW-Authenticate`/`Proxy-Authenticate`) and credentials (`Authorization`/
//! `Proxy-Authorization`): parsing, the response computation for MD5 and SHA-256 with `qop=auth`
//! (or none, RFC 2069 style), and verification. `auth-int` and the `-sess` algorithms are not offered.

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The `algorithm` parameter's value: `MD5` or `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    pub fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data.as_bytes()).to_vec(),
        };
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest challenge or credentials")]
    NotDigest,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    #[error("unsupported qop {0:?} (only auth)")]
    Qop(String),
    #[error("malformed parameter list")]
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the server offered `qop=auth`.
    pub qop_auth: bool,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub nc: Option<String>,
    pub qop_auth: bool,
    pub opaque: Option<String>,
}

/// `Digest k=v, k="v", ...` into pairs (names lower-cased, quotes and escapes removed).
fn params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let rest = value.trim_start();
    let rest = rest.strip_prefix("Digest").or_else(|| rest.strip_prefix("digest")).ok_or(DigestError::NotDigest)?;
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(DigestError::Malformed);
        }
        let name = rest[start..i].trim().to_ascii_lowercase();
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(DigestError::Malformed),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        // quoted-pair: the escaped character may be multi-byte UTF-8; take it whole.
                        let ch = rest[i + 1..].chars().next().ok_or(DigestError::Malformed)?;
                        val.push(ch);
                        i += 1 + ch.len_utf8();
                    }
                    Some(_) => {
                        // Copy one UTF-8 character.
                        let ch = rest[i..].chars().next().ok_or(DigestError::Malformed)?;
                        val.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = rest[vs..i].trim().to_string();
        }
        if name.is_empty() {
            return Err(DigestError::Malformed);
        }
        out.push((name, val));
    }
    Ok(out)
}

fn get<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The `algorithm` parameter (MD5 when absent, RFC 2617).
fn algorithm_of(p: &[(String, String)]) -> Result<Algorithm, DigestError> {
    match get(p, "algorithm") {
        None => Ok(Algorithm::Md5),
        Some(a) => Algorithm::parse(a).ok_or_else(|| DigestError::Algorithm(a.to_string())),
    }
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let p = params(value)?;
        let algorithm = algorithm_of(&p)?;
        let qop_auth = match get(&p, "qop") {
            None => false,
            Some(q) if q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")) => true,
            Some(q) => return Err(DigestError::Qop(q.to_string())),
        };
        Ok(Challenge {
            realm: get(&p, "realm").ok_or(DigestError::Missing("realm"))?.to_string(),
            nonce: get(&p, "nonce").ok_or(DigestError::Missing("nonce"))?.to_string(),
            opaque: get(&p, "opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: get(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The header value a server sends.
    pub fn to_header(&self) -> String {
        let mut s = format!("Digest realm=\"{}\", nonce=\"{}\", algorithm={}", self.realm, self.nonce, self.algorithm.name());
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(s, ", opaque=\"{o}\"");
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Answers this challenge for `method` on `uri`. `cnonce` is the client's random value; `nc` counts
    /// requests made with this nonce (1 for the first).
    pub fn respond(&self, username: &str, password: &str, method: &str, uri: &str, cnonce: &str, nc: u32) -> Credentials {
        let ha1 = ha1(self.algorithm, username, &self.realm, password);
        let nc = format!("{nc:08x}");
        let qop = self.qop_auth.then_some((nc.as_str(), cnonce));
        let response = response_from_ha1(self.algorithm, &ha1, &self.nonce, qop, method, uri);
        Credentials {
            username: username.to_string(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_string(),
            response,
            algorithm: self.algorithm,
            cnonce: self.qop_auth.then(|| cnonce.to_string()),
            nc: self.qop_auth.then_some(nc),
            qop_auth: self.qop_auth,
            opaque: self.opaque.clone(),
        }
    }
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let p = params(value)?;
        let algorithm = algorithm_of(&p)?;
        let qop_auth = match get(&p, "qop") {
            None => false,
            Some(q) if q.eq_ignore_ascii_case("auth") => true,
            Some(q) => return Err(DigestError::Qop(q.to_string())),
        };
        let need = |n: &'static str| get(&p, n).map(str::to_string).ok_or(DigestError::Missing(n));
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            cnonce: if qop_auth { Some(need("cnonce")?) } else { None },
            nc: if qop_auth { Some(need("nc")?) } else { None },
            qop_auth,
            opaque: get(&p, "opaque").map(str::to_string),
        })
    }

    pub fn to_header(&self) -> String {
        let mut s = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            self.username, self.realm, self.nonce, self.uri, self.response, self.algorithm.name()
        );
        if let (true, Some(c), Some(nc)) = (self.qop_auth, &self.cnonce, &self.nc) {
            let _ = write!(s, ", qop=auth, cnonce=\"{c}\", nc={nc}");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(s, ", opaque=\"{o}\"");
        }
        s
    }

    /// Whether these credentials answer `challenge` for `method` with `password` (server side).
    /// Compares in constant time so the response cannot be guessed byte by byte.
    pub fn verify(&self, challenge: &Challenge, method: &str, password: &str) -> bool {
        if self.nonce != challenge.nonce || self.realm != challenge.realm || self.algorithm != challenge.algorithm {
            return false;
        }
        let nc = self.nc.as_deref().and_then(|n| u32::from_str_radix(n, 16).ok()).unwrap_or(1);
        let expected = challenge.respond(&self.username, password, method, &self.uri, self.cnonce.as_deref().unwrap_or(""), nc);
        let (a, b) = (expected.response.as_bytes(), self.response.to_ascii_lowercase().into_bytes());
        a.len() == b.len() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `H(username:realm:password)`: what a server stores instead of the password (RFC 7616 §3.4.2), one per
/// algorithm. Only the algorithm's hash of the three joined values; no normalisation of the username.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// The `response` value from a stored HA1 (RFC 7616 §3.4.1): with `qop=auth` (`Some((nc, cnonce))`) or
/// RFC 2069 style without.
pub fn response_from_ha1(algorithm: Algorithm, ha1: &str, nonce: &str, qop: Option<(&str, &str)>, method: &str, uri: &str) -> String {
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Equality of two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Credentials {
    /// Server side with a stored HA1 (the password is never kept): whether `response` is right for
    /// `method`, for the nonce, realm, algorithm, `uri`, `nc` and `cnonce` these credentials carry.
    /// The caller checks the nonce itself (that it issued it, that it is fresh) and the realm.
    pub fn verify_ha1(&self, ha1: &str, method: &str) -> bool {
        let qop = match (self.qop_auth, &self.nc, &self.cnonce) {
            (true, Some(nc), Some(c)) => Some((nc.as_str(), c.as_str())),
            (true, _, _) => return false,
            (false, _, _) => None,
        };
        let expected = response_from_ha1(self.algorithm, &ha1.to_ascii_lowercase(), &self.nonce, qop, method, &self.uri);
        constant_time_eq(expected.as_bytes(), self.response.to_ascii_lowercase().as_bytes())
    }
}

/// HMAC-SHA-256 (RFC 2104) of `data` under `key`; the registrar signs its nonces with it.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5 (an HTTP example; the computation is the same for SIP).
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let r = c.respond("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b", 1);
        assert_eq!(r.response, "6629fae49393a05397450978507c4ef1");
        let back = Credentials::parse(&r.to_header()).unwrap();
        assert!(back.verify(&c, "GET", "Circle Of Life"));
        assert!(!back.verify(&c, "GET", "wrong"));
        assert!(!back.verify(&c, "POST", "Circle Of Life"));
    }

    #[test]
    fn rfc7616_sha256_example() {
        // RFC 7616 §3.9.1.
        let c = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let r = c.respond("Mufasa", "Circle of Life", "GET", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", 1);
        assert_eq!(r.response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }

    #[test]
    fn server_verifies_with_stored_ha1() {
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let c = Challenge { realm: "oncall".into(), nonce: "n1".into(), opaque: None, algorithm, qop_auth: true, stale: false };
            let creds = Credentials::parse(&c.respond("alice", "s3cret", "REGISTER", "sip:oncall", "cn", 1).to_header()).unwrap();
            assert!(creds.verify_ha1(&ha1(algorithm, "alice", "oncall", "s3cret"), "REGISTER"));
            assert!(!creds.verify_ha1(&ha1(algorithm, "alice", "oncall", "wrong"), "REGISTER"));
            assert!(!creds.verify_ha1(&ha1(algorithm, "alice", "oncall", "s3cret"), "INVITE"));
        }
        // RFC 2069 style (no qop) also verifies.
        let c = Challenge { realm: "r".into(), nonce: "n".into(), opaque: None, algorithm: Algorithm::Md5, qop_auth: false, stale: false };
        let creds = c.respond("bob", "pw", "REGISTER", "sip:r", "", 1);
        assert!(creds.verify_ha1(&ha1(Algorithm::Md5, "bob", "r", "pw"), "REGISTER"));
    }

    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn escaped_multibyte_character_does_not_panic() {
        // Found by the digest fuzz target (fuzz/artifacts/digest/crash-minimal-backslash-multibyte).
        let c = Challenge::parse("Digest realm=\"\\\u{4cf}\", nonce=\"n\"").unwrap();
        assert_eq!(c.realm, "\u{4cf}");
        let _ = Challenge::parse("Digest realm=\"\\\u{4cf}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Challenge::parse("Basic realm=x"), Err(DigestError::NotDigest));
        assert_eq!(Challenge::parse("Digest realm=\"x"), Err(DigestError::Malformed));
        assert_eq!(Challenge::parse("Digest nonce=1"), Err(DigestError::Missing("realm")));
        assert!(matches!(Challenge::parse("Digest realm=a, nonce=b, algorithm=SHA-512-256"), Err(DigestError::Algorithm(_))));
        assert!(Credentials::parse("Digest username=\"a\"").is_err());
    }
}
