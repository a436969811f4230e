//! Bytes to [`SipMessage`] (RFC 3261 §7, §18.3): start line, header unfolding, compact forms, body
//! framing by Content-Length, then the syntax checks of `validate`.
//!
//! The result separates what the RFC 4475 torture tests separate: a message that is syntactically
//! invalid is an error (a request still yields enough headers to answer 400 or 505), while a message
//! that parses but breaks an application rule (duplicate Call-ID, unknown scheme, missing headers)
//! parses fine and is left to the user agent. Never panics, whatever the bytes.

use super::validate::validate;
use super::{Header, Headers, Method, Request, Response, SipMessage};

/// Largest message OnCall reads; beyond it a request gets 513 (RFC 3261 §18.1.1, §21.5.14).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Largest number of header lines accepted in one message.
pub const MAX_HEADERS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not recognisably SIP (or a bad response): drop it and log.
    Unparseable(&'static str),
    /// A request with a syntax error: answer 400 with this reason if a response can be formed.
    BadRequest(String),
    /// A request whose SIP-Version is not 2.0: answer 505.
    VersionNotSupported,
    /// Over [`MAX_MESSAGE_SIZE`] or [`MAX_HEADERS`]: answer 513.
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// For requests that got as far as a header list: the method and headers, to build the error response.
    pub partial: Option<Box<(Method, Headers)>>,
}

impl ParseError {
    fn drop(reason: &'static str) -> Self {
        ParseError { kind: ParseErrorKind::Unparseable(reason), partial: None }
    }
}

/// Canonical long name for a compact form or a known header written in any case.
pub fn canonical_name(name: &str) -> String {
    const KNOWN: &[&str] = &[
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
        "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
        "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date", "Error-Info", "Event",
        "Expires", "From", "In-Reply-To", "Max-Forwards", "Min-Expires", "MIME-Version", "Organization",
        "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Record-Route",
        "Refer-To", "Reply-To", "Require", "Retry-After", "Route", "Server", "Subject", "Supported",
        "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
    ];
    let long = match name {
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "e" | "E" => "Content-Encoding",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "f" | "F" => "From",
        "s" | "S" => "Subject",
        "k" | "K" => "Supported",
        "t" | "T" => "To",
        "v" | "V" => "Via",
        "o" | "O" => "Event",
        "r" | "R" => "Refer-To",
        "u" | "U" => "Allow-Events",
        _ => return KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)).map_or_else(|| name.to_string(), |k| k.to_string()),
    };
    long.to_string()
}

/// Where the header section ends: (index of the first body byte). Accepts CRLFCRLF or a bare LFLF.
pub fn find_header_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Leading CRLFs before a start line are ignored (RFC 3261 §7.5; also keepalives, RFC 5626).
pub fn skip_leading_crlf(buf: &[u8]) -> &[u8] {
    let n = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    &buf[n..]
}

/// Parses one UDP datagram. A Content-Length shorter than the rest of the datagram cuts the body
/// (extra octets ignored, RFC 4475 DBLREQ); a longer one is an error (RFC 3261 §18.3, CLERR).
pub fn parse_datagram(buf: &[u8]) -> Result<SipMessage, ParseError> {
    parse_framed(buf, false)
}

/// Parses one message already framed from a TCP stream by `framing` (the body is exactly the bytes
/// after the header section).
pub fn parse_stream_message(buf: &[u8]) -> Result<SipMessage, ParseError> {
    parse_framed(buf, true)
}

fn parse_framed(buf: &[u8], stream: bool) -> Result<SipMessage, ParseError> {
    let buf = skip_leading_crlf(buf);
    if buf.is_empty() {
        return Err(ParseError::drop("empty"));
    }
    if buf.len() > MAX_MESSAGE_SIZE {
        // Try to salvage headers for a 513 answer.
        let partial = find_header_end(&buf[..MAX_MESSAGE_SIZE])
            .and_then(|end| split_head(&buf[..end]).ok())
            .and_then(|(start, headers)| request_method(&start).map(|m| Box::new((m, headers))));
        return Err(ParseError { kind: ParseErrorKind::TooLarge, partial });
    }
    let Some(head_end) = find_header_end(buf) else {
        // A datagram whose header section never ends is malformed, but a request still names
        // enough to answer 400 (RFC 4475 BADDN arrives this way).
        if !stream {
            if let Ok((start, headers)) = split_head(buf) {
                if let Some(m) = request_method(&start) {
                    // Name the first header error if there is one: it says more than the missing line.
                    let uri = start.split(' ').nth(1).unwrap_or("").to_string();
                    let probe = SipMessage::Request(Request { method: m.clone(), uri, headers, body: Vec::new() });
                    let reason = validate(&probe).err().unwrap_or_else(|| "no blank line after the headers".into());
                    let SipMessage::Request(r) = probe else { unreachable!("built as a request above") };
                    return Err(ParseError { kind: ParseErrorKind::BadRequest(reason), partial: Some(Box::new((m, r.headers))) });
                }
            }
        }
        return Err(ParseError::drop("no end of header section"));
    };
    let (start_line, headers) = split_head(&buf[..head_end])?;
    let rest = &buf[head_end..];

    let is_response = start_line.starts_with("SIP/");
    let method = if is_response { None } else { request_method(&start_line) };
    let fail = |kind: ParseErrorKind, method: &Option<Method>, headers: &Headers| ParseError {
        kind,
        partial: method.clone().map(|m| Box::new((m, headers.clone()))),
    };
    if headers.0.len() > MAX_HEADERS {
        return Err(fail(ParseErrorKind::TooLarge, &method, &headers));
    }

    let body = match content_length(&headers) {
        Err(reason) => return Err(fail(ParseErrorKind::BadRequest(reason.into()), &method, &headers)),
        Ok(None) => rest.to_vec(),
        Ok(Some(n)) if n <= rest.len() => rest[..n].to_vec(),
        Ok(Some(_)) if stream => rest.to_vec(),
        Ok(Some(_)) => {
            return Err(fail(
                ParseErrorKind::BadRequest("Content-Length larger than the datagram".into()),
                &method,
                &headers,
            ))
        }
    };

    let msg = if is_response {
        let (status, reason) = parse_status_line(&start_line).map_err(ParseError::drop)?;
        SipMessage::Response(Response { status, reason, headers, body })
    } else {
        let Some(method) = method.clone() else {
            return Err(ParseError::drop("bad request line"));
        };
        let uri = match parse_request_line(&start_line) {
            Ok(uri) => uri,
            Err(RequestLineError::Version) => return Err(fail(ParseErrorKind::VersionNotSupported, &Some(method), &headers)),
            Err(RequestLineError::Syntax(r)) => return Err(fail(ParseErrorKind::BadRequest(r.into()), &Some(method), &headers)),
        };
        SipMessage::Request(Request { method, uri, headers, body })
    };
    match validate(&msg) {
        Ok(()) => Ok(msg),
        Err(reason) => match msg {
            SipMessage::Response(_) => Err(ParseError::drop("invalid response")),
            SipMessage::Request(r) => Err(ParseError {
                kind: ParseErrorKind::BadRequest(reason),
                partial: Some(Box::new((r.method, r.headers))),
            }),
        },
    }
}

/// The first token of a request line, if it is one.
fn request_method(start: &str) -> Option<Method> {
    let first = start.split(' ').next()?;
    super::scanner::is_token(first).then(|| Method::from_token(first))
}

/// Splits the header section into the start line and unfolded headers.
fn split_head(head: &[u8]) -> Result<(String, Headers), ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::drop("header section is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or("").to_string();
    if start.is_empty() {
        return Err(ParseError::drop("empty start line"));
    }
    let mut headers: Vec<Header> = Vec::new();
    let mut bad_line = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation: replace the line break and leading white space with one space.
            match headers.last_mut() {
                Some(h) => {
                    if !h.value.is_empty() {
                        h.value.push(' ');
                    }
                    h.value.push_str(line.trim());
                }
                None => bad_line = true,
            }
            continue;
        }
        match line.find(':') {
            Some(colon) => {
                let name = line[..colon].trim_end_matches([' ', '\t']);
                if !super::scanner::is_token(name) {
                    bad_line = true;
                    continue;
                }
                headers.push(Header { name: canonical_name(name), value: line[colon + 1..].trim().to_string() });
            }
            None => bad_line = true,
        }
    }
    let headers = Headers(headers);
    if bad_line {
        let partial = request_method(&start).map(|m| Box::new((m, headers.clone())));
        return Err(ParseError { kind: ParseErrorKind::BadRequest("malformed header line".into()), partial });
    }
    Ok((start, headers))
}

fn content_length(headers: &Headers) -> Result<Option<usize>, &'static str> {
    // Several Content-Length headers parse (RFC 4475 MCL01 is an application-layer case); the first frames.
    match headers.get("Content-Length") {
        None => Ok(None),
        Some(v) => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err("Content-Length is not a number");
            }
            v.parse::<usize>().map(Some).map_err(|_| "Content-Length too large")
        }
    }
}

fn parse_status_line(line: &str) -> Result<(u16, String), &'static str> {
    let rest = line.strip_prefix("SIP/2.0 ").ok_or("bad response version")?;
    let (code, reason) = match rest.find(' ') {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("status code is not three digits");
    }
    let status: u16 = code.parse().map_err(|_| "bad status code")?;
    if !(100..700).contains(&status) {
        return Err("status code out of range");
    }
    Ok((status, reason.to_string()))
}

enum RequestLineError {
    Syntax(&'static str),
    Version,
}

/// `Method SP Request-URI SP SIP-Version` with exactly single spaces (RFC 4475 LWSSTART, TRWS, LWSRURI).
fn parse_request_line(line: &str) -> Result<String, RequestLineError> {
    use RequestLineError::*;
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(Syntax("request line must be: method, one space, Request-URI, one space, SIP-Version"));
    }
    let version = parts[2];
    let v = version.strip_prefix("SIP/").ok_or(Syntax("bad SIP-Version"))?;
    let mut nums = v.split('.');
    let ok = matches!((nums.next(), nums.next(), nums.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(Syntax("bad SIP-Version"));
    }
    if version != "SIP/2.0" {
        return Err(Version);
    }
    Ok(parts[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
Content-Length: 4\r\n\r\nabcdEXTRA";

    #[test]
    fn datagram_body_cut_at_content_length() {
        let SipMessage::Request(r) = parse_datagram(INVITE).unwrap() else { panic!() };
        assert_eq!(r.body, b"abcd");
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.headers.get("call-id"), Some("x@y"));
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..INVITE.len() {
            let _ = parse_datagram(&INVITE[..n]);
        }
        let _ = parse_datagram(b"\xff\xfe\r\n\r\n");
        let _ = parse_datagram(b"SIP/2.0 99999999999999999999 x\r\n\r\n");
    }
}
