//! Serialisation of messages to wire bytes, and building a response from a request (RFC 3261 §8.2.6).

use super::{reason_phrase, Headers, Request, Response, SipMessage};
use std::fmt::Write;

/// Headers a response copies from its request, in this order (§8.2.6.2).
const ECHOED: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

pub fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Content-Length is always written last and always right, for TCP framing.
    let mut cl = String::with_capacity(24);
    let _ = write!(cl, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(cl.as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// A response to `request_headers` with the §8.2.6.2 headers copied; `to_tag` is added to To
    /// when the request's To has none (not for 100 Trying).
    pub fn from_request_headers(request_headers: &Headers, status: u16, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for name in ECHOED {
            for v in request_headers.get_all(name) {
                let mut v = v.to_string();
                if name == "To" && status != 100 {
                    if let Some(tag) = to_tag {
                        let has_tag = request_headers.to().is_some_and(|t| t.tag().is_some());
                        if !has_tag {
                            v.push_str(";tag=");
                            v.push_str(tag);
                        }
                    }
                }
                headers.push(name, v);
            }
        }
        Response { status, reason: reason_phrase(status).to_string(), headers, body: Vec::new() }
    }
}

impl SipMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}
