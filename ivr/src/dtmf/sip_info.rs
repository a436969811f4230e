//! DTMF in SIP INFO requests: the bodies PBXs and SIP phones send when they relay key presses out of band.
//!
//! Two content types are understood, neither of which has an RFC of its own (both are de-facto formats):
//! `application/dtmf-relay` (Cisco's `Signal=5\r\nDuration=160\r\n` key/value lines) and `application/dtmf` (the bare
//! key, `5`). Parsing is lenient where real devices differ: LF or CRLF line ends, spaces around `=`, any key case,
//! and `Signal=10`/`Signal=11` for `*`/`#` as some PBXs send the RFC 4733 event code instead of the key.
//!
//! Not handled: the key-press duration (the IVR reacts to the press, not its length) and the SIP transaction itself
//! (the caller answers the INFO with 200 on success, or 415/400 on the matching error).

use std::str;

use thiserror::Error;

use crate::digit::Digit;

/// Why a SIP INFO body did not yield a key press.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfInfoError {
    /// The INFO carried something other than DTMF (answer 415 Unsupported Media Type).
    #[error("content type {0:?} does not carry DTMF")]
    UnsupportedContentType(String),
    #[error("DTMF body is not UTF-8")]
    NotUtf8,
    #[error("dtmf-relay body has no Signal= line")]
    MissingSignal,
    #[error("{0:?} is not a DTMF key")]
    InvalidSignal(String),
}

/// Parses the body of a SIP INFO carrying one key press. `content_type` is the Content-Type header value; case and
/// parameters (`; charset=...`) are ignored.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Digit, DtmfInfoError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let body = str::from_utf8(body).map_err(|_| DtmfInfoError::NotUtf8)?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        parse_dtmf_relay(body)
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        parse_signal(body.trim())
    } else {
        Err(DtmfInfoError::UnsupportedContentType(content_type.to_owned()))
    }
}

fn parse_dtmf_relay(body: &str) -> Result<Digit, DtmfInfoError> {
    // `lines()` splits on LF and strips a trailing CR, so CRLF and bare LF bodies read the same.
    body.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("signal"))
        .ok_or(DtmfInfoError::MissingSignal)
        .and_then(|(_, value)| parse_signal(value.trim()))
}

/// A key as a character (`5`, `*`, `#`, `A`) or as its RFC 4733 event code (`10` for `*`, `11` for `#`).
fn parse_signal(value: &str) -> Result<Digit, DtmfInfoError> {
    let mut chars = value.chars();
    let digit = match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => value.parse::<u8>().ok().and_then(Digit::from_event_code),
    };
    digit.ok_or_else(|| DtmfInfoError::InvalidSignal(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: &str = "application/dtmf-relay";

    #[test]
    fn dtmf_relay_canonical_form() {
        assert_eq!(parse(RELAY, b"Signal=5\r\nDuration=160\r\n"), Ok(Digit::D5));
        assert_eq!(parse(RELAY, b"Signal=*\r\nDuration=100\r\n"), Ok(Digit::Star));
        assert_eq!(parse(RELAY, b"Signal=#\r\nDuration=100\r\n"), Ok(Digit::Pound));
        assert_eq!(parse(RELAY, b"Signal=D\r\n"), Ok(Digit::D));
    }

    #[test]
    fn dtmf_relay_variants_seen_in_the_wild() {
        assert_eq!(parse(RELAY, b"Signal= 7\nDuration= 250\n"), Ok(Digit::D7));
        assert_eq!(parse(RELAY, b"signal = 8"), Ok(Digit::D8));
        assert_eq!(parse(RELAY, b"Duration=160\r\nSIGNAL=0\r\n"), Ok(Digit::D0));
        assert_eq!(parse(RELAY, b"Signal=10\r\nDuration=160\r\n"), Ok(Digit::Star));
        assert_eq!(parse(RELAY, b"Signal=11\r\nDuration=160\r\n"), Ok(Digit::Pound));
        assert_eq!(parse(RELAY, b"Signal=a\r\n"), Ok(Digit::A));
    }

    #[test]
    fn dtmf_relay_errors() {
        assert_eq!(parse(RELAY, b"Duration=160\r\n"), Err(DtmfInfoError::MissingSignal));
        assert_eq!(parse(RELAY, b""), Err(DtmfInfoError::MissingSignal));
        assert_eq!(parse(RELAY, b"Signal=\r\n"), Err(DtmfInfoError::InvalidSignal(String::new())));
        assert_eq!(parse(RELAY, b"Signal=16\r\n"), Err(DtmfInfoError::InvalidSignal("16".into())));
        assert_eq!(parse(RELAY, b"Signal=x\r\n"), Err(DtmfInfoError::InvalidSignal("x".into())));
        assert_eq!(parse(RELAY, b"Signal=\xff\r\n"), Err(DtmfInfoError::NotUtf8));
    }

    #[test]
    fn application_dtmf_is_the_bare_key() {
        assert_eq!(parse("application/dtmf", b"5"), Ok(Digit::D5));
        assert_eq!(parse("application/dtmf", b"#\r\n"), Ok(Digit::Pound));
        assert_eq!(parse("application/dtmf", b" * \n"), Ok(Digit::Star));
        assert_eq!(parse("application/dtmf", b"11"), Ok(Digit::Pound));
        assert_eq!(parse("application/dtmf", b"55"), Err(DtmfInfoError::InvalidSignal("55".into())));
    }

    #[test]
    fn content_type_case_and_parameters_are_ignored() {
        assert_eq!(parse("Application/DTMF-Relay", b"Signal=3"), Ok(Digit::D3));
        assert_eq!(parse(" application/dtmf-relay ; charset=utf-8", b"Signal=3"), Ok(Digit::D3));
        assert_eq!(parse("APPLICATION/DTMF;x=y", b"4"), Ok(Digit::D4));
    }

    #[test]
    fn other_content_types_are_rejected() {
        assert_eq!(
            parse("application/media_control+xml", b"<xml/>"),
            Err(DtmfInfoError::UnsupportedContentType("application/media_control+xml".into()))
        );
        assert!(matches!(parse("text/plain", b"5"), Err(DtmfInfoError::UnsupportedContentType(_))));
        assert!(matches!(parse("", b"5"), Err(DtmfInfoError::UnsupportedContentType(_))));
    }
}
