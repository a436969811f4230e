//! Contact addresses: E.164 phone numbers and SIP URIs.
//!
//! Both are parsed once at the boundary (`FromStr`) so the rest of OnCall can only hold valid
//! values. E.164 (ITU-T E.164 §6) is `+` then at most 15 digits, the first of which (the country
//! code) is not 0. Humans type spaces, dashes, dots and parentheses; those are dropped. We do not
//! check numbering plans per country: that needs a database and the carrier will tell us anyway.
//! SIP URIs (RFC 3261 §19.1) are checked only for shape (`sip:`/`sips:`, a host, no spaces);
//! the SIP crate parses them for real when it dials.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why an address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("phone number {0:?} must start with '+' and the country code (E.164)")]
    MissingPlus(String),
    #[error("phone number {0:?} contains a character that is not a digit")]
    NotDigits(String),
    #[error("phone number {0:?} must have 7 to 15 digits")]
    BadLength(String),
    #[error("phone number {0:?}: a country code never starts with 0")]
    LeadingZero(String),
    #[error("SIP URI {0:?} must look like sip:user@host")]
    BadSipUri(String),
}

/// A phone number in E.164 form, e.g. `+14155550123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for E164 {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<E164, AddressError> {
        let trimmed = s.trim();
        let rest = trimmed
            .strip_prefix('+')
            .ok_or_else(|| AddressError::MissingPlus(s.to_string()))?;
        let mut digits = String::with_capacity(16);
        digits.push('+');
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                // Visual separators people use when writing numbers.
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(AddressError::NotDigits(s.to_string())),
            }
        }
        let n = digits.len() - 1;
        if !(7..=15).contains(&n) {
            return Err(AddressError::BadLength(s.to_string()));
        }
        if digits.as_bytes().get(1) == Some(&b'0') {
            return Err(AddressError::LeadingZero(s.to_string()));
        }
        Ok(E164(digits))
    }
}

impl TryFrom<String> for E164 {
    type Error = AddressError;
    fn try_from(s: String) -> Result<E164, AddressError> {
        s.parse()
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SIP or SIPS URI such as `sip:alice@pbx.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipUri(String);

impl SipUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SipUri {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<SipUri, AddressError> {
        let t = s.trim();
        let bad = || AddressError::BadSipUri(s.to_string());
        let lower = t.to_ascii_lowercase();
        let rest = if lower.starts_with("sips:") {
            &t[5..]
        } else if lower.starts_with("sip:") {
            &t[4..]
        } else {
            return Err(bad());
        };
        // The host is whatever follows the optional `user@`, up to parameters.
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host_part.split([';', '?']).next().unwrap_or("");
        if host.is_empty() || rest.starts_with('@') || t.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        Ok(SipUri(t.to_string()))
    }
}

impl TryFrom<String> for SipUri {
    type Error = AddressError;
    fn try_from(s: String) -> Result<SipUri, AddressError> {
        s.parse()
    }
}

impl From<SipUri> for String {
    fn from(u: SipUri) -> String {
        u.0
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Somewhere a person can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "address", rename_all = "snake_case")]
pub enum Contact {
    Phone(E164),
    Sip(SipUri),
}

impl Contact {
    pub(crate) fn kind_str(&self) -> &'static str {
        match self {
            Contact::Phone(_) => "phone",
            Contact::Sip(_) => "sip",
        }
    }
    pub(crate) fn address(&self) -> &str {
        match self {
            Contact::Phone(p) => p.as_str(),
            Contact::Sip(u) => u.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_normalizes_separators() {
        let p: E164 = " +1 (415) 555-0123 ".parse().unwrap();
        assert_eq!(p.as_str(), "+14155550123");
    }

    #[test]
    fn e164_rejects_bad_input() {
        assert!(matches!("4155550123".parse::<E164>(), Err(AddressError::MissingPlus(_))));
        assert!(matches!("+1415abc0123".parse::<E164>(), Err(AddressError::NotDigits(_))));
        assert!(matches!("+123".parse::<E164>(), Err(AddressError::BadLength(_))));
        assert!(matches!("+1234567890123456".parse::<E164>(), Err(AddressError::BadLength(_))));
        assert!(matches!("+0441234567".parse::<E164>(), Err(AddressError::LeadingZero(_))));
        assert!("+".parse::<E164>().is_err());
        assert!("".parse::<E164>().is_err());
    }

    #[test]
    fn sip_uris() {
        assert!("sip:alice@pbx.example.com".parse::<SipUri>().is_ok());
        assert!("sips:bob@10.0.0.1:5061;transport=tls".parse::<SipUri>().is_ok());
        assert!("sip:pbx.example.com".parse::<SipUri>().is_ok());
        assert!("http://x".parse::<SipUri>().is_err());
        assert!("sip:".parse::<SipUri>().is_err());
        assert!("sip:@host".parse::<SipUri>().is_err());
        assert!("sip:a b@host".parse::<SipUri>().is_err());
        // Multi-byte input must not panic on slicing.
        assert!("sí:x".parse::<SipUri>().is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: Result<E164, _> = serde_json::from_str("\"+442071838750\"");
        assert!(ok.is_ok());
        let bad: Result<E164, _> = serde_json::from_str("\"12\"");
        assert!(bad.is_err());
    }
}
