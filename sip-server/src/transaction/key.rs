//! Transaction identity (RFC 3261 §17.1.3, §17.2.3) with the RFC 2543 fallback for branches
//! without the magic cookie (RFC 4475 BADBRANCH, INV2543).

use crate::message::{Method, Request, Via};

/// The method part of a key: an ACK matches its INVITE's transaction; CANCEL has its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMethod {
    Invite,
    Other(Method),
}

impl KeyMethod {
    pub fn of(m: &Method) -> KeyMethod {
        match m {
            Method::Invite | Method::Ack => KeyMethod::Invite,
            other => KeyMethod::Other(other.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    side_server: bool,
    branch: String,
    sent_by: String,
    method: KeyMethod,
}

impl PartialOrd for TxKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TxKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.branch, &self.sent_by, self.side_server).cmp(&(&other.branch, &other.sent_by, other.side_server))
    }
}

impl TxKey {
    pub fn for_server(req: &Request, via: &Via) -> TxKey {
        let branch = if via.has_magic_cookie() {
            via.branch().unwrap_or_default().to_string()
        } else {
            // RFC 2543 matching (§17.2.3, last paragraph): Call-ID, CSeq number, From tag and top Via.
            let h = &req.headers;
            format!(
                "2543|{}|{}|{}|{}",
                h.call_id().unwrap_or_default(),
                h.cseq().map(|c| c.seq).unwrap_or_default(),
                h.from().and_then(|f| f.tag().map(str::to_string)).unwrap_or_default(),
                via.branch().unwrap_or_default(),
            )
        };
        TxKey { side_server: true, branch, sent_by: via.sent_by().to_ascii_lowercase(), method: KeyMethod::of(&req.method) }
    }

    pub fn for_client(via: &Via, method: &Method) -> TxKey {
        TxKey {
            side_server: false,
            branch: via.branch().unwrap_or_default().to_string(),
            sent_by: String::new(),
            method: KeyMethod::of(method),
        }
    }

    /// The key of the INVITE transaction a CANCEL refers to (same branch, §9.2).
    pub fn invite_of_cancel(&self) -> TxKey {
        TxKey { method: KeyMethod::Invite, ..self.clone() }
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }
}
