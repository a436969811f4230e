//! OnCall's user agent core (UAS side of RFC 3261 §12-§15), sans-IO.
//!
//! It sits on the transaction layer: bytes in (`handle_datagram`), events out (`poll_event`: a call
//! arrived, was confirmed, changed media, sent INFO, ended), commands in (`accept`, `reject`,
//! `hangup`), bytes out (`poll_transmit`), and one deadline (`poll_timeout`). It owns the dialogs:
//! tags, CSeq, the route set, the 2xx retransmission until the ACK (§13.3.1.4), BYE and CANCEL.
//! As a client it places calls (`outbound`) and sends out-of-dialog MESSAGEs (`outbound_message`,
//! driven by `send_message`), both answering digest challenges through [`crate::auth::client`].
//! It knows nothing of sockets, RTP or the IVR. In-dialog requests are sent back to the address the
//! INVITE came from (symmetric signalling), which is what trunks behind NAT and loopback tests need.

pub mod checks;
mod dialog;
pub mod outbound_message;
pub mod outbound;
pub mod redirect;
mod send_message;
#[cfg(test)]
mod tests;

use crate::message::{self, parse_datagram, reason_phrase, Method, ParseErrorKind, Request, Response, SipMessage};
use crate::sdp::{self, Codec, Direction, Negotiated, SessionDescription};
use crate::transaction::{Peer, TimerConfig, TransactionLayer, Transmit, Transport, TxEvent, TxKey};
use dialog::{Dialog, DialogState};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// Opaque handle of one call inside the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteHangup,
    /// The caller sent CANCEL before the answer (the INVITE got 487).
    Cancelled,
    /// We hung up (BYE sent).
    LocalHangup,
    /// We rejected the INVITE.
    Rejected,
    /// Our 2xx was never ACKed (64*T1), or our BYE got no answer.
    Timeout,
    /// A call we placed got this final response (486 busy, 603 decline, 404, ...).
    Failed(u16),
    /// A call we placed got no response at all (Timer B).
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    IncomingCall { call: CallRef, call_id: String, from: String, to: String, request_uri: String, offer: Option<Negotiated>, source: Peer },
    /// The ACK for our 2xx arrived: media may flow both ways.
    Confirmed { call: CallRef },
    /// New remote media parameters (re-INVITE, hold/unhold, or the answer in a late-offer ACK).
    MediaChanged { call: CallRef, media: Negotiated },
    /// An INFO request inside the dialog (DTMF relay bodies are decoded by the IVR).
    Info { call: CallRef, content_type: String, body: Vec<u8> },
    /// A call we placed is ringing (180) or in progress (183).
    Progress { call: CallRef, status: u16 },
    /// A call we placed was answered; `media` is the callee's negotiated answer.
    Answered { call: CallRef, media: Option<Negotiated> },
    /// The final response to a request sent with [`UserAgent::send_request`].
    Response { key: TxKey, response: Response },
    /// A request sent with [`UserAgent::send_request`] got no final response (Timer F).
    RequestTimeout { key: TxKey },
    /// The outcome of a MESSAGE sent with [`UserAgent::send_message`]: the 2xx status, or why not.
    MessageDone { message: outbound_message::MessageRef, result: Result<u16, outbound_message::MessageFailure> },
    /// A request the application serves ([`UaConfig::app_methods`]: REGISTER, out-of-dialog MESSAGE),
    /// on a new server transaction; answer it with [`UserAgent::respond_to`] (retransmissions are absorbed).
    Request { key: TxKey, request: Request, source: Peer },
    Ended { call: CallRef, reason: EndReason },
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Address written in Via and Contact for each transport (what peers can reach).
    pub advertised_udp: SocketAddr,
    pub advertised_tcp: SocketAddr,
    /// The TLS listener's, when there is one (a TLS peer without it is given the TCP address).
    pub advertised_tls: Option<SocketAddr>,
    pub codecs: Vec<Codec>,
    /// Payload type we offer for telephone-event when we make the offer (late offer).
    pub telephone_event_pt: u8,
    /// Sent as User-Agent/Server; None to give scanners no banner.
    pub server_header: Option<String>,
    pub timers: TimerConfig,
    /// Requests handed to the application as [`UaEvent::Request`] instead of answered 405.
    pub app_methods: checks::AppMethods,
}

impl UaConfig {
    /// Defaults for one address on both transports: PCMU and PCMA, telephone-event 101, no Server
    /// header, RFC 3261 timers.
    pub fn on(addr: SocketAddr) -> UaConfig {
        UaConfig {
            advertised_udp: addr,
            advertised_tcp: addr,
            advertised_tls: None,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event_pt: 101,
            server_header: None,
            timers: TimerConfig::default(),
            app_methods: checks::AppMethods::NONE,
        }
    }
}

pub struct UserAgent {
    cfg: UaConfig,
    tx: TransactionLayer,
    dialogs: HashMap<CallRef, Dialog>,
    /// (Call-ID, our tag) → call, for in-dialog requests.
    by_dialog: HashMap<(String, String), CallRef>,
    /// INVITE server transaction → call, for CANCEL and the final response.
    by_invite: HashMap<TxKey, CallRef>,
    /// BYE client transaction → call.
    by_bye: HashMap<TxKey, CallRef>,
    /// Client transactions outside any call (REGISTER, OPTIONS) whose result is reported as an event.
    standalone: std::collections::HashSet<TxKey>,
    /// MESSAGEs of ours in flight ([`UserAgent::send_message`]), by their current transaction.
    messages: HashMap<TxKey, outbound_message::PendingMessage>,
    next_message: u64,
    deadlines: BinaryHeap<Reverse<(Instant, CallRef)>>,
    /// Sources whose REGISTERs are dropped unanswered until the instant (registrar lockouts).
    register_blocked: HashMap<std::net::IpAddr, Instant>,
    events: VecDeque<UaEvent>,
    transmits: VecDeque<Transmit>,
    next_call: u64,
    pub stats: UaStats,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct UaStats {
    pub unparseable: u64,
    pub bad_requests: u64,
    /// REGISTERs dropped because their source is blocked ([`UserAgent::block_registers_from`]).
    pub dropped_registers: u64,
}

pub(crate) fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The address peers reach us at over `transport`.
fn advertised(cfg: &UaConfig, transport: Transport) -> SocketAddr {
    match transport {
        Transport::Udp => cfg.advertised_udp,
        Transport::Tcp => cfg.advertised_tcp,
        Transport::Tls => cfg.advertised_tls.unwrap_or(cfg.advertised_tcp),
    }
}

/// A top Via with a fresh branch; a free function so it can be called while a dialog is borrowed.
/// Here rather than in `outbound.rs` because in-dialog requests (BYE) need it too.
fn via_for(cfg: &UaConfig, transport: Transport) -> String {
    format!("SIP/2.0/{} {};branch=z9hG4bK{};rport", transport.as_str(), advertised(cfg, transport), random_token())
}

impl UserAgent {
    pub fn new(cfg: UaConfig) -> Self {
        UserAgent {
            tx: TransactionLayer::new(cfg.timers),
            cfg,
            dialogs: HashMap::new(),
            by_dialog: HashMap::new(),
            by_invite: HashMap::new(),
            by_bye: HashMap::new(),
            standalone: std::collections::HashSet::new(),
            messages: HashMap::new(),
            next_message: 1,
            deadlines: BinaryHeap::new(),
            register_blocked: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            next_call: 1,
            stats: UaStats::default(),
        }
    }

    pub fn active_calls(&self) -> usize {
        self.dialogs.len()
    }

    /// One datagram (UDP) or one framed message (TCP) from `source`.
    pub fn handle_datagram(&mut self, data: &[u8], source: Peer, now: Instant) {
        match parse_datagram(data) {
            Ok(SipMessage::Response(resp)) => self.tx.handle_response(resp, now),
            Ok(SipMessage::Request(mut req)) => {
                stamp_via(&mut req, source);
                if req.method == Method::Register && self.register_is_blocked(source.addr.ip(), now) {
                    self.stats.dropped_registers += 1;
                    return;
                }
                if let Some(rej) = checks::check_request_for(&req, self.cfg.app_methods) {
                    if req.method != Method::Ack {
                        self.stats.bad_requests += 1;
                        tracing::info!(method = %req.method, status = rej.status, reason = %rej.reason, "rejecting request");
                        let mut resp = Response::from_request_headers(&req.headers, rej.status, Some(&random_token()));
                        resp.reason = if rej.status == 400 { format!("Bad Request ({})", rej.reason) } else { reason_phrase(rej.status).to_string() };
                        for (n, v) in rej.headers {
                            resp.headers.push(n, v);
                        }
                        self.send_stateless(&req.headers, resp, source);
                    }
                } else {
                    self.tx.handle_request(req, source, now);
                }
            }
            Err(e) => {
                let status = match &e.kind {
                    ParseErrorKind::Unparseable(why) => {
                        self.stats.unparseable += 1;
                        tracing::debug!(%source.addr, why, "dropping unparseable message");
                        return;
                    }
                    ParseErrorKind::BadRequest(_) => 400,
                    ParseErrorKind::VersionNotSupported => 505,
                    ParseErrorKind::TooLarge => 513,
                };
                self.stats.bad_requests += 1;
                let Some(partial) = e.partial else { return };
                let (method, headers) = *partial;
                if method == Method::Ack || headers.count("Via") == 0 {
                    return; // never answer an ACK; without a Via there is nowhere to answer
                }
                let mut resp = Response::from_request_headers(&headers, status, Some(&random_token()));
                if let ParseErrorKind::BadRequest(reason) = &e.kind {
                    tracing::info!(%source.addr, %method, reason, "400 for malformed request");
                    resp.reason = format!("Bad Request ({})", sanitize_reason(reason));
                }
                self.send_stateless(&headers, resp, source);
            }
        }
        self.drain_tx(now);
    }

    /// Answers outside any transaction (malformed requests): to the source, over its transport.
    fn send_stateless(&mut self, _req_headers: &message::Headers, mut resp: Response, source: Peer) {
        self.decorate(&mut resp.headers);
        self.transmits.push_back(Transmit { to: source, data: resp.to_bytes() });
    }

    fn decorate(&self, headers: &mut message::Headers) {
        if let Some(s) = &self.cfg.server_header {
            headers.push("Server", s.clone());
        }
    }

    /// Our Contact header value for requests and responses over `peer`'s transport.
    pub fn contact(&self, peer: &Peer) -> String {
        match peer.transport {
            Transport::Udp => format!("<sip:{}>", self.cfg.advertised_udp),
            Transport::Tcp => format!("<sip:{};transport=tcp>", self.cfg.advertised_tcp),
            Transport::Tls => format!("<sip:{};transport=tls>", advertised(&self.cfg, Transport::Tls)),
        }
    }

    fn drain_tx(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TxEvent::Request { key, request, source } => self.on_request(key, request, source, now),
                TxEvent::Ack { request, .. } => self.on_ack(request, now),
                TxEvent::Response { key, response } => {
                    if self.is_message(&key) {
                        if response.status >= 200 {
                            self.on_message_result(&key, Some(&response), now);
                        }
                    } else if self.standalone.contains(&key) {
                        if response.status >= 200 {
                            self.standalone.remove(&key);
                            self.events.push_back(UaEvent::Response { key, response });
                        }
                    } else if let Some(&call) = self.by_invite.get(&key) {
                        self.on_invite_response(call, key, response, now);
                    } else if response.status >= 200 {
                        if let Some(call) = self.by_bye.remove(&key) {
                            self.end(call, EndReason::LocalHangup);
                        }
                    }
                }
                TxEvent::Timeout { key } => {
                    if self.is_message(&key) {
                        self.on_message_result(&key, None, now);
                    } else if self.standalone.remove(&key) {
                        self.events.push_back(UaEvent::RequestTimeout { key });
                    } else if let Some(call) = self.by_bye.remove(&key) {
                        self.end(call, EndReason::Timeout);
                    } else if let Some(&call) = self.by_invite.get(&key) {
                        if self.dialogs.get(&call).is_some_and(|d| d.outbound.is_some() && matches!(d.state, DialogState::Early)) {
                            self.end(call, EndReason::Unreachable);
                        }
                    }
                }
            }
        }
        while let Some(t) = self.tx.poll_transmit() {
            self.transmits.push_back(t);
        }
    }

    fn respond(&mut self, key: &TxKey, req: &Request, status: u16, to_tag: Option<&str>, now: Instant) {
        let mut resp = Response::from_request_headers(&req.headers, status, to_tag);
        self.decorate(&mut resp.headers);
        if req.method == Method::Options {
            resp.headers.push("Allow", self.cfg.app_methods.allow());
            resp.headers.push("Accept", "application/sdp");
        }
        self.tx.respond(key, resp, now);
    }

    fn on_request(&mut self, key: TxKey, req: Request, source: Peer, now: Instant) {
        let to_tag = req.headers.to().and_then(|t| t.tag().map(str::to_string));
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let in_dialog = to_tag.as_ref().and_then(|t| self.by_dialog.get(&(call_id.clone(), t.clone())).copied());
        match req.method {
            Method::Options => self.respond(&key, &req, 200, Some(&random_token()), now),
            Method::Invite if to_tag.is_none() => self.on_new_invite(key, req, source, now),
            Method::Invite => match in_dialog {
                Some(call) => self.on_reinvite(call, key, req, now),
                None => self.respond(&key, &req, 481, None, now),
            },
            Method::Bye => match in_dialog {
                Some(call) => {
                    self.respond(&key, &req, 200, None, now);
                    self.end(call, EndReason::RemoteHangup);
                }
                None => self.respond(&key, &req, 481, None, now),
            },
            Method::Info => match in_dialog {
                Some(call) => {
                    self.respond(&key, &req, 200, None, now);
                    let content_type = req.headers.content_type().unwrap_or("").to_string();
                    self.events.push_back(UaEvent::Info { call, content_type, body: req.body });
                }
                None => self.respond(&key, &req, 481, None, now),
            },
            Method::Cancel => {
                let invite_key = key.invite_of_cancel();
                match self.by_invite.get(&invite_key).copied() {
                    Some(call) => {
                        self.respond(&key, &req, 200, None, now);
                        if self.tx.invite_pending(&invite_key) {
                            // §9.2: the INVITE gets 487 Request Terminated.
                            let d = &self.dialogs[&call];
                            let (invite, tag) = (d.invite.clone(), d.local_tag.clone());
                            self.respond(&invite_key, &invite, 487, Some(&tag), now);
                            self.end(call, EndReason::Cancelled);
                        }
                    }
                    None => self.respond(&key, &req, 481, None, now),
                }
            }
            Method::Register if self.cfg.app_methods.register => self.events.push_back(UaEvent::Request { key, request: req, source }),
            Method::Message if self.cfg.app_methods.message && to_tag.is_none() => {
                self.events.push_back(UaEvent::Request { key, request: req, source })
            }
            _ => self.respond(&key, &req, 405, None, now),
        }
    }

    /// Answers a [`UaEvent::Request`]. The response is sent as given: no Server header is added, so a
    /// registrar's answers carry no banner. Unknown or already answered keys are ignored.
    pub fn respond_to(&mut self, key: &TxKey, response: Response, now: Instant) {
        self.tx.respond(key, response, now);
        self.drain_tx(now);
    }

    /// Drops REGISTERs from `ip` unanswered (before any transaction exists) until `until`: a
    /// registrar lockout, so a password-guessing scanner hears nothing and gives up.
    pub fn block_registers_from(&mut self, ip: std::net::IpAddr, until: Instant, now: Instant) {
        if self.register_blocked.len() >= 65_536 {
            self.register_blocked.retain(|_, u| *u > now);
        }
        self.register_blocked.insert(ip, until);
    }

    fn register_is_blocked(&mut self, ip: std::net::IpAddr, now: Instant) -> bool {
        match self.register_blocked.get(&ip) {
            Some(u) if now < *u => true,
            Some(_) => {
                self.register_blocked.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn on_new_invite(&mut self, key: TxKey, req: Request, source: Peer, now: Instant) {
        let offer = if req.body.is_empty() {
            None
        } else {
            match SessionDescription::parse(&req.body).and_then(|sd| sdp::negotiate(&sd, &self.cfg.codecs)) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::info!(error = %e, "488 for INVITE");
                    let mut resp = Response::from_request_headers(&req.headers, 488, Some(&random_token()));
                    resp.headers.push("Warning", format!("304 oncall \"{e}\""));
                    self.decorate(&mut resp.headers);
                    self.tx.respond(&key, resp, now);
                    return;
                }
            }
        };
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let dialog = Dialog::from_invite(&req, key.clone(), source, random_token(), offer);
        let ev = UaEvent::IncomingCall {
            call,
            call_id: dialog.call_id.clone(),
            from: req.headers.from().map(|f| f.uri.to_string()).unwrap_or_default(),
            to: req.headers.to().map(|f| f.uri.to_string()).unwrap_or_default(),
            request_uri: req.uri.clone(),
            offer,
            source,
        };
        self.by_dialog.insert((dialog.call_id.clone(), dialog.local_tag.clone()), call);
        self.by_invite.insert(key, call);
        self.dialogs.insert(call, dialog);
        self.events.push_back(ev);
    }

    /// Answers the call with 200 OK and our SDP for media at `local_media`.
    pub fn accept(&mut self, call: CallRef, local_media: SocketAddr, now: Instant) {
        let Some(peer) = self.dialogs.get(&call).map(|d| d.peer) else { return };
        let contact = self.contact(&peer);
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        if !matches!(d.state, DialogState::Early) {
            return;
        }
        d.local_media = Some(local_media);
        let body = match d.media {
            Some(n) => sdp::build(local_media, d.sdp_session, d.sdp_version, &[n.codec], n.telephone_event, n.direction, n.srtp.as_ref()),
            // Late offer (no SDP in the INVITE): ours is in the clear; SDES needs the caller to offer keys.
            None => sdp::build(local_media, d.sdp_session, d.sdp_version, &self.cfg.codecs, Some(self.cfg.telephone_event_pt), Direction::SendRecv, None),
        };
        let mut resp = Response::from_request_headers(&d.invite.headers, 200, Some(&d.local_tag));
        for rr in d.invite.headers.get_all("Record-Route") {
            resp.headers.push("Record-Route", rr);
        }
        resp.headers.push("Contact", contact);
        resp.headers.push("Allow", self.cfg.app_methods.allow());
        resp.headers.push("Content-Type", "application/sdp");
        if let Some(s) = &self.cfg.server_header {
            resp.headers.push("Server", s.clone());
        }
        resp.body = body;
        let bytes = resp.to_bytes();
        self.tx.respond(&d.invite_key, resp, now);
        let t1 = self.cfg.timers.t1;
        let reliable = d.peer.transport.reliable();
        d.state = DialogState::Answered {
            ok: bytes,
            retransmit_at: (!reliable).then(|| now + t1),
            interval: t1,
            give_up_at: now + self.cfg.timers.t1x64(),
        };
        let next = d.next_deadline();
        self.schedule(call, next);
        self.drain_tx(now);
    }

    /// Sends a request outside any call (REGISTER to a trunk, OPTIONS) on a new client
    /// transaction; its final response comes back as [`UaEvent::Response`] with the returned key.
    /// The request needs a top Via with a fresh branch: see [`UserAgent::new_via`].
    pub fn send_request(&mut self, request: Request, to: Peer, now: Instant) -> Option<TxKey> {
        let key = self.tx.send_request(request, to, now)?;
        self.standalone.insert(key.clone());
        self.drain_tx(now);
        Some(key)
    }

    /// Sends 180 Ringing for a call that will be answered later.
    pub fn ring(&mut self, call: CallRef, now: Instant) {
        let Some(d) = self.dialogs.get(&call) else { return };
        if !matches!(d.state, DialogState::Early) {
            return;
        }
        let (key, invite, tag) = (d.invite_key.clone(), d.invite.clone(), d.local_tag.clone());
        self.respond(&key, &invite, 180, Some(&tag), now);
        self.drain_tx(now);
    }

    /// Rejects a call that has not been answered yet (e.g. 486, 503, 603).
    pub fn reject(&mut self, call: CallRef, status: u16, now: Instant) {
        self.reject_with(call, status, &[], now);
    }

    /// Rejects with extra headers, e.g. `Retry-After` on a 503 (RFC 3261 §21.5.4).
    pub fn reject_with(&mut self, call: CallRef, status: u16, extra: &[(&str, String)], now: Instant) {
        let Some(d) = self.dialogs.get(&call) else { return };
        if !matches!(d.state, DialogState::Early) {
            return;
        }
        let (key, invite, tag) = (d.invite_key.clone(), d.invite.clone(), d.local_tag.clone());
        let mut resp = Response::from_request_headers(&invite.headers, status, Some(&tag));
        self.decorate(&mut resp.headers);
        for (n, v) in extra {
            resp.headers.push(*n, v.clone());
        }
        self.tx.respond(&key, resp, now);
        self.end(call, EndReason::Rejected);
        self.drain_tx(now);
    }

    /// Ends the call from our side: BYE once confirmed, 480 if still unanswered.
    pub fn hangup(&mut self, call: CallRef, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        match d.state {
            DialogState::Early if d.outbound.is_some() => self.cancel(call, now),
            DialogState::Early => {
                self.reject(call, 480, now);
            }
            DialogState::Answered { .. } | DialogState::Confirmed => {
                let bye = d.build_request(Method::Bye, via_for(&self.cfg, d.peer.transport), self.cfg.server_header.as_deref());
                let peer = d.peer;
                d.state = DialogState::Terminating;
                if let Some(key) = self.tx.send_request(bye, peer, now) {
                    self.by_bye.insert(key, call);
                }
                self.drain_tx(now);
            }
            DialogState::Terminating => {}
        }
    }

    fn on_ack(&mut self, req: Request, _now: Instant) {
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let Some(tag) = req.headers.to().and_then(|t| t.tag().map(str::to_string)) else { return };
        let Some(&call) = self.by_dialog.get(&(call_id, tag)) else { return };
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        if let DialogState::Answered { .. } = d.state {
            d.state = DialogState::Confirmed;
            // Late offer: the ACK carries the answer (§13.2.1).
            if d.media.is_none() {
                if let Ok(n) = SessionDescription::parse(&req.body).and_then(|sd| sdp::negotiate(&sd, &self.cfg.codecs)) {
                    d.media = Some(n);
                    self.events.push_back(UaEvent::MediaChanged { call, media: n });
                }
            }
            self.events.push_back(UaEvent::Confirmed { call });
        }
    }

    fn on_reinvite(&mut self, call: CallRef, key: TxKey, req: Request, now: Instant) {
        let Some(peer) = self.dialogs.get(&call).map(|d| d.peer) else { return };
        let contact = self.contact(&peer);
        let Some(d) = self.dialogs.get_mut(&call) else { return };
        let Some(local) = d.local_media else { return self.respond(&key, &req, 491, None, now) };
        let negotiated = if req.body.is_empty() { d.media.ok_or(sdp::SdpError::NoAudio) } else {
            SessionDescription::parse(&req.body).and_then(|sd| sdp::negotiate(&sd, &self.cfg.codecs))
        };
        let mut n = match negotiated {
            Ok(n) => n,
            Err(_) => return self.respond(&key, &req, 488, None, now),
        };
        sdp::keep_local_key(d.media.as_ref(), &mut n);
        d.sdp_version += 1;
        d.media = Some(n);
        d.remote_cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(d.remote_cseq);
        let body = sdp::build(local, d.sdp_session, d.sdp_version, &[n.codec], n.telephone_event, n.direction, n.srtp.as_ref());
        let mut resp = Response::from_request_headers(&req.headers, 200, None);
        resp.headers.push("Contact", contact);
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = body;
        // The 2xx of a re-INVITE is also retransmitted until ACK; OnCall relies on the caller's
        // INVITE retransmission over UDP instead (absorbed in Accepted), which keeps one timer per call.
        self.tx.respond(&key, resp, now);
        self.events.push_back(UaEvent::MediaChanged { call, media: n });
    }

    fn end(&mut self, call: CallRef, reason: EndReason) {
        if let Some(d) = self.dialogs.remove(&call) {
            self.by_dialog.remove(&(d.call_id.clone(), d.local_tag.clone()));
            self.by_invite.remove(&d.invite_key);
            self.events.push_back(UaEvent::Ended { call, reason });
        }
    }

    fn schedule(&mut self, call: CallRef, at: Option<Instant>) {
        if let Some(at) = at {
            self.deadlines.push(Reverse((at, call)));
        }
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mine = self.deadlines.peek().map(|Reverse((t, _))| *t);
        match (mine, self.tx.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        while let Some(Reverse((t, call))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            let Some(d) = self.dialogs.get_mut(&call) else { continue };
            if let DialogState::Answered { ok, retransmit_at, interval, give_up_at } = &mut d.state {
                if now >= *give_up_at {
                    // §13.3.1.4: no ACK within 64*T1: end the dialog with a BYE.
                    tracing::warn!(call_id = %d.call_id, "no ACK for 200 OK; hanging up");
                    let peer = d.peer;
                    let bye = d.build_request(Method::Bye, via_for(&self.cfg, peer.transport), self.cfg.server_header.as_deref());
                    d.state = DialogState::Terminating;
                    self.tx.send_request(bye, peer, now);
                    self.end(call, EndReason::Timeout);
                    continue;
                }
                if retransmit_at.is_some_and(|r| now >= r) {
                    self.transmits.push_back(Transmit { to: d.reply_to, data: ok.clone() });
                    *interval = (*interval * 2).min(self.cfg.timers.t2);
                    *retransmit_at = Some(now + *interval);
                }
                let next = d.next_deadline();
                self.schedule(call, next);
            }
        }
        self.drain_tx(now);
    }
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: note where the request really came from in its top Via.
fn stamp_via(req: &mut Request, source: Peer) {
    let Some(first) = req.headers.0.iter_mut().find(|h| h.name == "Via") else { return };
    let list = message::split_list(&first.value);
    let Some(top) = list.first() else { return };
    let Ok(via) = message::Via::parse(top) else { return };
    let ip = source.addr.ip().to_string();
    let mut new_top = String::with_capacity(top.len() + 40);
    new_top.push_str(&format!("{} {}", via_proto(&via), via.sent_by()));
    for (n, v) in &via.params {
        match (n.as_str(), v) {
            ("received", _) => continue,
            ("rport", _) => new_top.push_str(&format!(";rport={}", source.addr.port())),
            (n, Some(v)) => new_top.push_str(&format!(";{n}={v}")),
            (n, None) => new_top.push_str(&format!(";{n}")),
        }
    }
    if via.host != ip || via.param("rport").is_some() {
        new_top.push_str(&format!(";received={ip}"));
    }
    let rest: Vec<&str> = list[1..].to_vec();
    first.value = std::iter::once(new_top.as_str()).chain(rest).collect::<Vec<_>>().join(", ");
}

fn via_proto(via: &message::Via) -> String {
    format!("{}/{}", via.protocol_version, via.transport)
}

/// Keeps a parser's reason printable in a reason phrase (no CR/LF).
fn sanitize_reason(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}
