//! The SIP message model (RFC 3261 §7): requests, responses, an ordered header list and a body.
//!
//! Headers are kept as (canonical name, unfolded value) pairs in arrival order, because a user agent
//! must echo Via, From, To, Call-ID and CSeq byte-for-byte and forward headers it does not understand.
//! Typed views (Via, name-addr, CSeq) are parsed on demand by the sibling modules.
//! Parsing lives in `parse`, syntax checks of the headers OnCall relies on in `validate`,
//! serialisation and response construction in `write`.

pub mod cseq;
mod method;
pub mod name_addr;
pub mod parse;
pub mod scanner;
pub mod uri;
pub mod validate;
pub mod via;
pub mod write;

pub use cseq::CSeq;
pub use method::Method;
pub use name_addr::NameAddr;
pub use parse::{parse_datagram, parse_stream_message, ParseError, ParseErrorKind};
pub use uri::Uri;
pub use via::Via;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Ordered header list with case-insensitive lookup by full name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push(Header { name: name.into(), value: value.into() });
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|h| h.name.eq_ignore_ascii_case(name)) {
            Some(h) => h.value = value,
            None => self.push(name, value),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Every comma-separated element of every instance of a list header (Via, Contact, Route, Require...),
    /// splitting only at commas outside quotes and angle brackets.
    pub fn list_values<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.get_all(name).flat_map(split_list).collect()
    }

    pub fn top_via(&self) -> Option<Via> {
        self.list_values("Via").first().and_then(|v| Via::parse(v).ok())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    pub fn cseq(&self) -> Option<CSeq> {
        self.get("CSeq").and_then(|v| CSeq::parse(v).ok())
    }

    pub fn from(&self) -> Option<NameAddr> {
        self.get("From").and_then(|v| NameAddr::parse(v).ok())
    }

    pub fn to(&self) -> Option<NameAddr> {
        self.get("To").and_then(|v| NameAddr::parse(v).ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }
}

/// Splits a list header value at top-level commas (not inside `"..."` or `<...>`).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let (mut start, mut in_quote, mut in_angle, mut i) = (0, false, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b',' if !in_quote && !in_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(value[start..].trim());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The Request-URI as received (its syntax was checked by the parser).
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    Request(Request),
    Response(Response),
}

impl SipMessage {
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }
}

/// The standard reason phrase of a status code (RFC 3261 §21 and extensions OnCall sends).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}
