//! One UAS dialog (RFC 3261 §12.1.1, §12.2): identifiers, CSeq, route set, remote target, and the
//! state between our 2xx and the caller's ACK.
//! For a call we placed it also holds the UAC state ([`OutboundState`]) that `outbound.rs` drives.

use crate::auth::client::ClientAuth;
use crate::message::{Headers, Method, Request};
use crate::sdp::Negotiated;
use crate::transaction::{Peer, TxKey};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(super) enum DialogState {
    /// INVITE received, no final response yet.
    Early,
    /// 200 OK sent; retransmitted over UDP (T1 doubling to T2) until the ACK or 64*T1.
    Answered { ok: Vec<u8>, retransmit_at: Option<Instant>, interval: Duration, give_up_at: Instant },
    Confirmed,
    /// Our BYE is out.
    Terminating,
}

pub(super) struct Dialog {
    pub state: DialogState,
    pub invite: Request,
    pub invite_key: TxKey,
    /// Where in-dialog requests go: the address the INVITE came from (symmetric signalling).
    pub peer: Peer,
    /// Where our 2xx retransmissions go: the same place the transaction layer sends responses
    /// (§18.2.2: the Via's sent-by port unless the caller asked for rport).
    pub reply_to: Peer,
    pub call_id: String,
    pub local_tag: String,
    /// Our identity: the INVITE's To value, tagged.
    pub local_uri: String,
    /// The caller: the INVITE's From value with its tag.
    pub remote_uri: String,
    pub remote_target: String,
    /// Record-Route of the INVITE, in order (the UAS keeps it as is, §12.1.1).
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub media: Option<Negotiated>,
    pub local_media: Option<SocketAddr>,
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// Set when we placed the call (UAC side).
    pub outbound: Option<OutboundState>,
}

/// The UAC half of a dialog we placed: defined here, next to the dialog that holds it, and driven by
/// `outbound.rs` (which re-exports it under its old path `ua::outbound::OutboundState`).
#[derive(Debug, Clone)]
pub struct OutboundState {
    /// The last INVITE sent (re-sent with credentials after a challenge; CANCEL copies it).
    pub invite: Request,
    pub invite_key: TxKey,
    /// Answers 401/407 challenges, when the call has credentials.
    pub auth: Option<ClientAuth>,
    /// We want the call given up; the CANCEL goes out once a provisional response came (§9.1).
    pub cancel_requested: bool,
    /// A 1xx came for the current INVITE: a CANCEL may be sent.
    pub provisional: bool,
    pub cancel_sent: bool,
    /// Our ACK for the 2xx, re-sent when the 2xx is retransmitted.
    pub ack: Option<Vec<u8>>,
    /// The SRTP keys our offer carried (the answer supplies the peer's).
    pub offered_srtp: Option<crate::sdp::Sdes>,
}

impl Dialog {
    pub fn from_invite(req: &Request, invite_key: TxKey, peer: Peer, local_tag: String, media: Option<Negotiated>) -> Dialog {
        let h = &req.headers;
        let to = h.get("To").unwrap_or_default().to_string();
        let remote_target = h
            .list_values("Contact")
            .first()
            .and_then(|c| crate::message::NameAddr::parse(c).ok())
            .map(|c| c.uri.to_string())
            .unwrap_or_else(|| req.uri.clone());
        Dialog {
            state: DialogState::Early,
            invite: req.clone(),
            invite_key,
            reply_to: h.top_via().map_or(peer, |v| crate::transaction::response_target(&v, peer)),
            peer,
            call_id: h.call_id().unwrap_or_default().to_string(),
            local_uri: format!("{to};tag={local_tag}"),
            local_tag,
            remote_uri: h.get("From").unwrap_or_default().to_string(),
            remote_target,
            route_set: h.list_values("Record-Route").into_iter().map(str::to_string).collect(),
            local_cseq: rand::random::<u16>() as u32 + 1,
            remote_cseq: h.cseq().map(|c| c.seq).unwrap_or(0),
            media,
            local_media: None,
            sdp_session: rand::random::<u32>() as u64,
            sdp_version: 1,
            outbound: None,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            DialogState::Answered { retransmit_at, give_up_at, .. } => Some(retransmit_at.map_or(*give_up_at, |r| r.min(*give_up_at))),
            _ => None,
        }
    }

    /// A new in-dialog request from us (§12.2.1.1), with the next CSeq.
    pub fn build_request(&mut self, method: Method, via: String, user_agent: Option<&str>) -> Request {
        self.local_cseq += 1;
        self.request_with_cseq(method, self.local_cseq, via, user_agent)
    }

    /// An in-dialog request with a given CSeq number (the ACK of a 2xx reuses the INVITE's, §13.2.2.4).
    pub fn request_with_cseq(&self, method: Method, cseq: u32, via: String, user_agent: Option<&str>) -> Request {
        let mut headers = Headers::default();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        for r in &self.route_set {
            headers.push("Route", r.clone());
        }
        headers.push("From", self.local_uri.clone());
        headers.push("To", self.remote_uri.clone());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{cseq} {method}"));
        if let Some(s) = user_agent {
            headers.push("User-Agent", s);
        }
        Request { method, uri: self.remote_target.clone(), headers, body: Vec::new() }
    }
}
