//! The UAC side of the user agent: placing a call (RFC 3261 §13.2), answering digest challenges with
//! the configured credentials (§22.2, the policy of [`crate::auth::client`]), ACKing the 2xx
//! ourselves (§13.2.2.4), and CANCEL (§9.1).
//! The paging flow uses this to ring an employee's phone through the trunk or directly.

// OutboundState lives with the dialog that holds it (dialog.rs), so the dialog does not import this file;
// re-exported here, its old path.
pub use super::dialog::OutboundState;
use super::dialog::{Dialog, DialogState};
use super::{advertised, random_token, via_for, CallRef, EndReason, UaEvent, UserAgent};
use crate::auth::client::ClientAuth;
use crate::message::{Headers, Method, Request, Response};
use crate::sdp::{self, Direction, SessionDescription};
use crate::transaction::{Peer, Transmit, Transport, TxKey};
use std::net::SocketAddr;
use std::time::Instant;

/// What to call and how.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// Request-URI, e.g. `sip:+15551230000@trunk.example.net` or an employee's registered contact.
    pub target: String,
    /// Where the INVITE goes: the trunk/proxy, or the target itself.
    pub via: Peer,
    /// Our identity: From URI (caller ID) and display name.
    pub from_uri: String,
    pub from_display: Option<String>,
    pub local_media: SocketAddr,
    /// Username and password for 401/407 challenges.
    pub credentials: Option<(String, String)>,
    /// Whether the offer carries SRTP keys (SDES), and whether the callee must take them.
    pub media_encryption: MediaEncryption,
}

/// SRTP on a call we place (a trunk's or a contact's `media_encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaEncryption {
    /// Plain RTP.
    #[default]
    None,
    /// Keys offered on an `RTP/AVP` line: SRTP when the callee takes them, plain RTP otherwise.
    Optional,
    /// `RTP/SAVP`: a callee that answers without keys gets the call ended.
    Srtp,
}

impl MediaEncryption {
    fn offer(self) -> Option<sdp::Sdes> {
        match self {
            MediaEncryption::None => None,
            MediaEncryption::Optional => Some(sdp::Sdes::offer(false)),
            MediaEncryption::Srtp => Some(sdp::Sdes::offer(true)),
        }
    }
}

impl UserAgent {
    /// Places a call; events follow: `Progress`, then `Answered` or `Ended`.
    pub fn place_call(&mut self, out: OutboundCall, now: Instant) -> CallRef {
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let local_tag = random_token();
        let advertised = self.advertised(out.via.transport);
        let call_id = format!("{}@{}", random_token(), advertised.ip());
        let from = match &out.from_display {
            Some(d) => format!("\"{}\" <{}>;tag={local_tag}", d.replace('"', ""), out.from_uri),
            None => format!("<{}>;tag={local_tag}", out.from_uri),
        };
        let to = format!("<{}>", out.target);
        let session = rand::random::<u32>() as u64;
        let offered_srtp = out.media_encryption.offer();
        let body = sdp::build(out.local_media, session, 1, &self.cfg.codecs, Some(self.cfg.telephone_event_pt), Direction::SendRecv, offered_srtp.as_ref());
        let mut headers = Headers::default();
        headers.push("Via", self.new_via(out.via.transport));
        headers.push("Max-Forwards", "70");
        headers.push("From", from.clone());
        headers.push("To", to.clone());
        headers.push("Call-ID", call_id.clone());
        headers.push("CSeq", "1 INVITE");
        headers.push("Contact", self.contact(&out.via));
        headers.push("Allow", super::checks::ALLOW);
        if let Some(s) = &self.cfg.server_header {
            headers.push("User-Agent", s.clone());
        }
        headers.push("Content-Type", "application/sdp");
        let invite = Request { method: Method::Invite, uri: out.target.clone(), headers, body };
        let key = self.tx.send_request(invite.clone(), out.via, now).unwrap_or_else(|| unreachable!("we wrote the Via"));
        let dialog = Dialog {
            state: DialogState::Early,
            invite: invite.clone(),
            invite_key: key.clone(),
            peer: out.via,
            reply_to: out.via,
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            local_uri: from,
            remote_uri: to,
            remote_target: out.target.clone(),
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: 0,
            media: None,
            local_media: Some(out.local_media),
            sdp_session: session,
            sdp_version: 1,
            outbound: Some(OutboundState { invite, invite_key: key.clone(), auth: out.credentials.map(|(user, pass)| ClientAuth::new(user, pass)), cancel_requested: false, provisional: false, cancel_sent: false, ack: None, offered_srtp }),
        };
        self.by_dialog.insert((call_id, local_tag), call);
        self.by_invite.insert(key, call);
        self.dialogs.insert(call, dialog);
        self.drain_tx(now);
        call
    }

    /// The address peers reach us at over `transport`.
    pub fn advertised(&self, transport: Transport) -> SocketAddr {
        advertised(&self.cfg, transport)
    }

    /// A top Via for a new request from us, with a fresh branch and rport.
    pub fn new_via(&self, transport: Transport) -> String {
        via_for(&self.cfg, transport)
    }

    /// Gives up on a call we placed that has not been answered (CANCEL), or hangs it up (BYE).
    pub fn cancel(&mut self, call: CallRef, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        let Some(ob) = d.outbound.as_mut() else { return };
        if !matches!(d.state, DialogState::Early) {
            return self.hangup(call, now);
        }
        if ob.cancel_requested {
            return;
        }
        ob.cancel_requested = true;
        // §9.1: no CANCEL before a provisional response (a CANCEL that overtakes its INVITE gets 481 and the
        // phone rings on); the first 1xx sends it.
        if ob.provisional {
            self.send_cancel(call, now);
        }
    }

    fn send_cancel(&mut self, call: CallRef, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        let Some(ob) = d.outbound.as_mut() else { return };
        if ob.cancel_sent {
            return;
        }
        ob.cancel_sent = true;
        // §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via (branch) as the INVITE.
        let inv = &ob.invite;
        let mut headers = Headers::default();
        for name in ["Via", "Route", "From", "To", "Call-ID"] {
            if name == "Via" {
                if let Some(v) = inv.headers.list_values("Via").first() {
                    headers.push("Via", *v);
                }
                continue;
            }
            for v in inv.headers.get_all(name) {
                headers.push(name, v);
            }
        }
        let seq = inv.headers.cseq().map(|c| c.seq).unwrap_or(1);
        headers.push("CSeq", format!("{seq} CANCEL"));
        headers.push("Max-Forwards", "70");
        let cancel = Request { method: Method::Cancel, uri: inv.uri.clone(), headers, body: Vec::new() };
        let peer = d.peer;
        self.tx.send_request(cancel, peer, now);
        self.drain_tx(now);
    }

    /// A response to a client INVITE of ours.
    pub(super) fn on_invite_response(&mut self, call: CallRef, key: TxKey, resp: Response, now: Instant) {
        let status = resp.status;
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        if status < 200 {
            let given_up = d.outbound.as_mut().is_some_and(|ob| {
                ob.provisional = true;
                ob.cancel_requested
            });
            if given_up {
                // Sends the CANCEL that waited for this response (once); no progress for a call given up.
                return self.send_cancel(call, now);
            }
            if status > 100 {
                self.events.push_back(UaEvent::Progress { call, status });
            }
            return;
        }
        if status < 300 {
            if let DialogState::Confirmed | DialogState::Terminating = d.state {
                // A retransmitted 2xx: our ACK was lost.
                if let Some(ack) = d.outbound.as_ref().and_then(|o| o.ack.clone()) {
                    self.transmits.push_back(Transmit { to: d.peer, data: ack });
                }
                return;
            }
            d.remote_uri = resp.headers.get("To").unwrap_or_default().to_string();
            if let Some(c) = resp.headers.list_values("Contact").first().and_then(|c| crate::message::NameAddr::parse(c).ok()) {
                d.remote_target = c.uri.to_string();
            }
            d.route_set = resp.headers.list_values("Record-Route").into_iter().rev().map(str::to_string).collect();
            let answer = SessionDescription::parse(&resp.body).ok().and_then(|sd| sdp::negotiate(&sd, &self.cfg.codecs).ok());
            let offered = d.outbound.as_ref().and_then(|o| o.offered_srtp);
            // Keys count only as the answer to ours (same tag and suite); required SRTP answered without them ends the call.
            let srtp_refused = offered.is_some_and(|o| o.savp) && answer.is_some_and(|n| offered.and_then(|o| o.completed_by(n.srtp)).is_none());
            d.media = answer.map(|n| sdp::Negotiated { srtp: offered.and_then(|o| o.completed_by(n.srtp)), ..n });
            if srtp_refused {
                tracing::warn!(call = call.0, "the callee answered without SRTP keys, which this call requires: hanging up");
            }
            let ack = self.build_ack(call);
            let Some(d) = self.dialogs.get_mut(&call) else { return };
            d.state = DialogState::Confirmed;
            let cancel_requested = d.outbound.as_ref().is_some_and(|o| o.cancel_requested);
            if let Some(ob) = d.outbound.as_mut() {
                ob.ack = Some(ack.clone());
            }
            let (peer, media) = (d.peer, d.media);
            self.transmits.push_back(Transmit { to: peer, data: ack });
            if cancel_requested || srtp_refused {
                // The answer crossed our CANCEL (§9.1), or refused the SRTP this call requires: end it properly.
                self.hangup(call, now);
            } else {
                self.events.push_back(UaEvent::Answered { call, media });
            }
            return;
        }
        // 401/407: answer the challenge once per nonce.
        let peer = d.peer;
        let given_up = d.outbound.as_ref().is_some_and(|o| o.cancel_requested);
        let cancelled = given_up && matches!(status, 401 | 407 | 487);
        if (status == 401 || status == 407) && !given_up {
            if let Some(retry) = self.authenticated_retry(call, &resp) {
                self.by_invite.remove(&key);
                if let Some(new_key) = self.tx.send_request(retry.clone(), peer, now) {
                    self.by_invite.insert(new_key.clone(), call);
                    if let Some(d) = self.dialogs.get_mut(&call) {
                        d.invite_key = new_key.clone();
                        d.local_cseq = retry.headers.cseq().map(|c| c.seq).unwrap_or(d.local_cseq);
                        if let Some(ob) = d.outbound.as_mut() {
                            ob.invite = retry;
                            ob.invite_key = new_key;
                            ob.provisional = false;
                        }
                    }
                }
                return;
            }
        }
        self.end(call, if cancelled { EndReason::Cancelled } else { EndReason::Failed(status) });
    }

    /// The INVITE again with credentials for the challenge in `resp`, if we have any and the
    /// challenge is one to answer (see [`ClientAuth`]).
    fn authenticated_retry(&mut self, call: CallRef, resp: &Response) -> Option<Request> {
        let transport = self.dialogs.get(&call)?.peer.transport;
        let via = self.new_via(transport);
        let d = self.dialogs.get_mut(&call)?;
        let ob = d.outbound.as_mut()?;
        match ob.auth.as_mut()?.retry(&ob.invite, resp, &random_token()) {
            Ok(mut invite) => {
                invite.headers.set("Via", via);
                Some(invite)
            }
            Err(e) => {
                tracing::info!(call_id = %d.call_id, status = resp.status, error = %e, "challenge to our INVITE not answered");
                None
            }
        }
    }

    /// §13.2.2.4: the ACK of a 2xx is a new request of the dialog with the INVITE's CSeq number.
    fn build_ack(&mut self, call: CallRef) -> Vec<u8> {
        let Some(d) = self.dialogs.get(&call) else { return Vec::new() };
        let mut ack = d.request_with_cseq(Method::Ack, d.local_cseq, self.new_via(d.peer.transport), None);
        for h in ["Authorization", "Proxy-Authorization"] {
            if let Some(v) = d.outbound.as_ref().and_then(|o| o.invite.headers.get(h)) {
                ack.headers.push(h, v);
            }
        }
        ack.to_bytes()
    }
}
