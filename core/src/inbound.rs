//! Which organization a call is for (issue 17): every organization owns its numbers — the dialled number
//! (E.164, or the digits a PBX sends) or a SIP address — optionally only when the call comes through one
//! trunk. A call to an address nobody owns gets the server's answer for unknown numbers, never another
//! organization's IVR.
//!
//! Pure: the calls side keeps the table in memory (it is small and changes rarely) and asks [`route`] per
//! INVITE; the store only saves it (`Store::add_number`).

use crate::ids::OrgId;
use crate::phone::E164;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};

/// One address an organization answers, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedNumber {
    pub org: OrgId,
    /// Normalized by [`normalize`]: `+15551230000`, `4100` or `help@oncall.example.com`.
    pub address: String,
    /// Only calls through this `[[trunks]]` entry (by name); `None`: from anywhere.
    pub source: Option<String>,
    /// The organization is disabled: its numbers get the unknown-number answer.
    pub org_disabled: bool,
}

/// Where a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    Org(OrgId),
    /// The number belongs to a disabled organization.
    Disabled(OrgId),
    /// Nobody owns it.
    Nobody,
}

/// What an INVITE says about where it is going.
#[derive(Debug, Clone, Copy, Default)]
pub struct InboundCall<'a> {
    /// The Request-URI's user part and host (`+15551230000`, `oncall.example.com`).
    pub user: &'a str,
    pub host: &'a str,
    /// The To header's user part, which some trunks set to the dialled number when the Request-URI
    /// carries a registration contact instead.
    pub to_user: Option<&'a str>,
    /// The `[[trunks]]` entry the call came through (matched by source address), if any.
    pub source: Option<&'a str>,
}

/// The stored form of an address an operator typed: `+1 (555) 123-0000` and `tel:+15551230000` →
/// `+15551230000`; `sip:Help@OnCall.Example.com` → `Help@oncall.example.com` (the host is
/// case-insensitive, the user is not); `4100` (an extension or national digits a PBX sends) stays.
pub fn normalize(input: &str) -> Result<String, ValidationError> {
    let bad = || ValidationError::new("number", "give an E.164 number (+15551230000), the digits your PBX sends (4100) or a SIP address (help@oncall.example.com)");
    let s = input.trim();
    let s = s.strip_prefix("tel:").unwrap_or(s);
    let s = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:")).unwrap_or(s);
    if let Some((user, host)) = s.split_once('@') {
        let host = host.split([';', '>', ':']).next().unwrap_or("");
        let ok = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-._+*#".contains(c));
        if !ok(user) || !ok(host) {
            return Err(bad());
        }
        return Ok(format!("{user}@{}", host.to_ascii_lowercase()));
    }
    if s.starts_with('+') {
        return s.parse::<E164>().map(|n| n.as_str().to_string()).map_err(|e| ValidationError::new("number", e.to_string()));
    }
    let digits: String = s.chars().filter(|c| !" -.()".contains(*c)).collect();
    if digits.is_empty() || digits.len() > 20 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(digits)
}

/// The addresses a call could be for, most specific first: `user@host`, then the user part, then the To
/// user; each user also without visual separators, and a bare-digits user also as `+digits` (trunks
/// often drop the plus).
fn candidates(call: &InboundCall) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    if !call.user.is_empty() && !call.host.is_empty() {
        push(format!("{}@{}", call.user, call.host.to_ascii_lowercase()));
    }
    for user in [Some(call.user), call.to_user].into_iter().flatten() {
        if let Ok(n) = normalize(user) {
            if n.chars().all(|c| c.is_ascii_digit()) {
                push(n.clone());
                push(format!("+{n}"));
            } else {
                push(n);
            }
        }
    }
    out
}

/// The organization `call` is for. A number tied to the call's trunk wins over the same number from
/// anywhere; an address earlier in [`candidates`] wins over a later one.
pub fn route(numbers: &[OwnedNumber], call: &InboundCall) -> Routed {
    for address in candidates(call) {
        let mut found: Option<&OwnedNumber> = None;
        for n in numbers.iter().filter(|n| n.address == address) {
            match (&n.source, call.source) {
                (Some(s), Some(c)) if s == c => {
                    found = Some(n);
                    break;
                }
                (None, _) if found.is_none() => found = Some(n),
                _ => {}
            }
        }
        if let Some(n) = found {
            return if n.org_disabled { Routed::Disabled(n.org) } else { Routed::Org(n.org) };
        }
    }
    Routed::Nobody
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(org: i64, address: &str, source: Option<&str>) -> OwnedNumber {
        OwnedNumber { org: OrgId(org), address: address.into(), source: source.map(Into::into), org_disabled: false }
    }

    fn call<'a>(user: &'a str, host: &'a str) -> InboundCall<'a> {
        InboundCall { user, host, ..InboundCall::default() }
    }

    #[test]
    fn addresses_are_stored_in_one_form() {
        assert_eq!(normalize("+1 (555) 123-0000").unwrap(), "+15551230000");
        assert_eq!(normalize("tel:+15551230000").unwrap(), "+15551230000");
        assert_eq!(normalize("sip:Help@OnCall.Example.com;transport=tcp").unwrap(), "Help@oncall.example.com");
        assert_eq!(normalize("help@oncall.example.com:5060").unwrap(), "help@oncall.example.com");
        assert_eq!(normalize(" 41-00 ").unwrap(), "4100");
        for bad in ["", "+0123", "help@", "@host", "ab c", "sip:a b@host", "12345678901234567890123"] {
            assert_eq!(normalize(bad).unwrap_err().field, "number", "{bad:?}");
        }
    }

    #[test]
    fn each_number_reaches_its_own_organization_and_an_unknown_one_nobody() {
        let numbers = [owned(1, "+15551230000", None), owned(2, "+15559870000", None), owned(2, "help@desk.example", None)];
        assert_eq!(route(&numbers, &call("+15551230000", "10.0.0.1")), Routed::Org(OrgId(1)));
        assert_eq!(route(&numbers, &call("+15559870000", "10.0.0.1")), Routed::Org(OrgId(2)));
        assert_eq!(route(&numbers, &call("help", "Desk.Example")), Routed::Org(OrgId(2)));
        assert_eq!(route(&numbers, &call("help", "other.example")), Routed::Nobody, "a SIP address is user and host");
        assert_eq!(route(&numbers, &call("+15550000000", "10.0.0.1")), Routed::Nobody);
        assert_eq!(route(&numbers, &call("", "")), Routed::Nobody);
    }

    #[test]
    fn a_trunk_that_drops_the_plus_or_sets_only_the_to_header_still_finds_the_number() {
        let numbers = [owned(1, "+15551230000", None), owned(3, "4100", None)];
        assert_eq!(route(&numbers, &call("15551230000", "10.0.0.1")), Routed::Org(OrgId(1)));
        assert_eq!(route(&numbers, &call("4100", "pbx.local")), Routed::Org(OrgId(3)));
        let via_contact = InboundCall { user: "oncall", host: "203.0.113.5", to_user: Some("+15551230000"), source: None };
        assert_eq!(route(&numbers, &via_contact), Routed::Org(OrgId(1)));
    }

    #[test]
    fn a_number_tied_to_a_trunk_wins_for_calls_through_that_trunk_only() {
        let numbers = [owned(1, "4100", None), owned(2, "4100", Some("pbx-b"))];
        let through = |source| InboundCall { user: "4100", host: "x", to_user: None, source };
        assert_eq!(route(&numbers, &through(Some("pbx-b"))), Routed::Org(OrgId(2)));
        assert_eq!(route(&numbers, &through(Some("pbx-a"))), Routed::Org(OrgId(1)));
        assert_eq!(route(&numbers, &through(None)), Routed::Org(OrgId(1)));
        let only_b = [owned(2, "4100", Some("pbx-b"))];
        assert_eq!(route(&only_b, &through(None)), Routed::Nobody, "tied to a trunk: not from anywhere else");
    }

    #[test]
    fn a_disabled_organizations_numbers_say_so() {
        let numbers = [OwnedNumber { org_disabled: true, ..owned(4, "+15551230000", None) }];
        assert_eq!(route(&numbers, &call("+15551230000", "h")), Routed::Disabled(OrgId(4)));
    }
}
