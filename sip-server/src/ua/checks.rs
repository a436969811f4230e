//! Application-layer checks of a parsed request (RFC 3261 §8.2; RFC 4475 §3.3): the answers a UAS
//! gives before looking at what the request asks for.

use crate::message::{split_list, Method, Request, Uri};

/// Methods OnCall knows but does not serve get 405 with this Allow list; unknown ones get 501.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

/// Out-of-dialog requests the user agent hands to the application ([`super::UaEvent::Request`])
/// instead of answering 405 itself: REGISTER (the registrar) and MESSAGE (text replies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppMethods {
    pub register: bool,
    pub message: bool,
}

impl AppMethods {
    pub const NONE: AppMethods = AppMethods { register: false, message: false };

    /// The Allow header value for what is served.
    pub fn allow(self) -> &'static str {
        match (self.register, self.message) {
            (false, false) => ALLOW,
            (true, false) => "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER",
            (false, true) => "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE",
            (true, true) => "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER, MESSAGE",
        }
    }

    pub fn serves(self, method: &Method) -> bool {
        matches!(method, Method::Register if self.register) || matches!(method, Method::Message if self.message)
    }
}

/// A rejection: status code, and extra headers (Unsupported, Allow, Accept) to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(&'static str, String)>,
}

fn reject(status: u16, reason: &str) -> Rejection {
    Rejection { status, reason: reason.to_string(), headers: Vec::new() }
}

/// Returns the rejection for a request that cannot be processed, or None to go on.
pub fn check_request(req: &Request) -> Option<Rejection> {
    check_request_for(req, AppMethods::NONE)
}

/// [`check_request`] for a user agent that also hands `app`'s methods to the application.
pub fn check_request_for(req: &Request, app: AppMethods) -> Option<Rejection> {
    let h = &req.headers;
    // §8.1.1: To, From, CSeq, Call-ID and Via are mandatory (RFC 4475 INSUF). Max-Forwards is not
    // demanded so RFC 2543 peers still work (INV2543).
    for name in ["To", "From", "CSeq", "Call-ID", "Via"] {
        if h.count(name) == 0 {
            return Some(reject(400, &format!("missing {name} header")));
        }
    }
    // Single-valued headers that appear twice make the request ambiguous (MULTI01, MCL01).
    for name in ["To", "From", "CSeq", "Call-ID", "Max-Forwards", "Content-Length", "Content-Type"] {
        if h.count(name) > 1 {
            return Some(reject(400, &format!("more than one {name} header")));
        }
    }
    if req.method == Method::Ack || req.method == Method::Cancel {
        return None;
    }
    // §8.2.2.1: an unknown Request-URI scheme gets 416 (UNKSCM, NOVELSC).
    match Uri::parse(&req.uri) {
        Ok(u) if u.is_dialable_scheme() => {}
        _ => return Some(reject(416, "Unsupported URI Scheme")),
    }
    // §8.2.2.3: OnCall supports no extensions, so any Require option is unsupported (BEXT01).
    let required: Vec<&str> = h.list_values("Require").into_iter().filter(|s| !s.is_empty()).collect();
    if !required.is_empty() {
        let mut r = reject(420, "Bad Extension");
        r.headers.push(("Unsupported", required.join(", ")));
        return Some(r);
    }
    let known = !matches!(req.method, Method::Other(_));
    if !known {
        let mut r = reject(501, "Not Implemented");
        r.headers.push(("Allow", app.allow().to_string()));
        return Some(r);
    }
    if !matches!(req.method, Method::Invite | Method::Bye | Method::Options | Method::Info) && !app.serves(&req.method) {
        let mut r = reject(405, "Method Not Allowed");
        r.headers.push(("Allow", app.allow().to_string()));
        return Some(r);
    }
    // §8.2.3: a body OnCall cannot read gets 415 with what it accepts (INVUT).
    if req.method == Method::Invite && !req.body.is_empty() {
        let ct = h.content_type().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct != "application/sdp" {
            let mut r = reject(415, "Unsupported Media Type");
            r.headers.push(("Accept", "application/sdp".into()));
            return Some(r);
        }
    }
    // An Accept that rules out SDP means our answer could not carry a session (SDP01): 406.
    if req.method == Method::Invite {
        let accepts: Vec<String> = h.list_values("Accept").iter().map(|a| a.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).collect();
        if !accepts.is_empty() && !accepts.iter().any(|a| a == "application/sdp" || a == "*/*" || a == "application/*" || a.is_empty()) {
            let mut r = reject(406, "Not Acceptable");
            r.headers.push(("Accept", "application/sdp".into()));
            return Some(r);
        }
    }
    None
}

/// Whether a header value lists an option token (for Supported/Require).
pub fn lists(value: &str, token: &str) -> bool {
    split_list(value).iter().any(|v| v.eq_ignore_ascii_case(token))
}
