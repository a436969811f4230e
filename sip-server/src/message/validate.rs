//! Syntax checks of the headers a user agent relies on (RFC 3261 §25.1 grammar), the line between
//! RFC 4475 §3.1.2 (invalid: 400 or drop) and everything that merely looks odd (§3.1.1, §3.3).
//!
//! Only syntax: a duplicate Call-ID, a missing To or an unknown URI scheme are application-layer
//! questions answered by the user agent (`ua::checks`), because the RFC wants those messages parsed.

use super::name_addr::NameAddr;
use super::scanner::is_word_char;
use super::uri::Uri;
use super::{split_list, CSeq, SipMessage, Via};

pub fn validate(msg: &SipMessage) -> Result<(), String> {
    let headers = msg.headers();
    if let SipMessage::Request(r) = msg {
        let uri = Uri::parse(&r.uri).map_err(|e| format!("Request-URI: {}", e.0))?;
        if let Uri::Sip(u) = &uri {
            // §19.1.5: headers are not allowed in a Request-URI (RFC 4475 ESCRURI).
            if u.headers.is_some() {
                return Err("Request-URI must not contain headers (?...)".into());
            }
        }
    }
    for h in headers.iter() {
        let v = h.value.as_str();
        let check = match h.name.as_str() {
            "Via" => split_list(v).into_iter().try_for_each(|p| Via::parse(p).map(drop)),
            "From" | "To" => NameAddr::parse(v).map(drop),
            "Contact" if v.trim() == "*" => Ok(()),
            "Contact" | "Route" | "Record-Route" => split_list(v).into_iter().try_for_each(|p| NameAddr::parse(p).map(drop)),
            "CSeq" => CSeq::parse(v).map(drop),
            "Call-ID" => check_call_id(v),
            "Max-Forwards" => check_number(v, 255, "Max-Forwards"),
            "Content-Length" => check_number(v, u64::MAX, "Content-Length"),
            // delta-seconds: too-large values are legal and mean "very long" (§20.19), so no bound.
            "Expires" | "Min-Expires" => {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) { Ok(()) } else { Err("Expires is not a number") }
            }
            "Date" => check_date(v),
            "Warning" => check_warning(v),
            _ => Ok(()),
        };
        check.map_err(|e| format!("{}: {}", h.name, e))?;
    }
    if let SipMessage::Request(r) = msg {
        // §8.2: the CSeq method must match the request method (RFC 4475 MISMATCH01/02).
        for v in headers.get_all("CSeq") {
            if let Ok(c) = CSeq::parse(v) {
                if c.method != r.method {
                    return Err(format!("CSeq method {} does not match request method {}", c.method, r.method));
                }
            }
        }
    }
    Ok(())
}

fn check_call_id(v: &str) -> Result<(), &'static str> {
    // callid = word [ "@" word ]
    let mut parts = v.splitn(2, '@');
    let ok = |w: &str| !w.is_empty() && w.bytes().all(is_word_char);
    match (parts.next(), parts.next()) {
        (Some(a), None) if ok(a) => Ok(()),
        (Some(a), Some(b)) if ok(a) && ok(b) => Ok(()),
        _ => Err("invalid Call-ID"),
    }
}

fn check_number(v: &str, max: u64, _what: &str) -> Result<(), &'static str> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a number");
    }
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(()),
        _ => Err("number out of range"),
    }
}

/// SIP-date is RFC 1123 and always GMT (§20.17; RFC 4475 BADDATE).
fn check_date(v: &str) -> Result<(), &'static str> {
    if v.trim_end().ends_with(" GMT") {
        Ok(())
    } else {
        Err("Date must be in GMT")
    }
}

/// warning-value = warn-code SP warn-agent SP warn-text, warn-code = 3DIGIT (RFC 4475 SCALARLG).
fn check_warning(v: &str) -> Result<(), &'static str> {
    for w in split_list(v) {
        let code = w.split(' ').next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err("warn-code must be three digits");
        }
    }
    Ok(())
}
