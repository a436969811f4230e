//! Client transactions: INVITE (§17.1.1, with RFC 6026's Accepted state) and non-INVITE (§17.1.2).

use super::key::TxKey;
use super::output::{Out, TxEvent};
use super::peer::Peer;
use super::timers::TimerConfig;
use crate::message::{Headers, Method, Request, Response};
use std::time::{Duration, Instant};

enum State {
    /// Request sent; Timer A/E retransmits (unreliable only), Timer B/F gives up.
    Calling { retransmit_at: Option<Instant>, interval: Duration, give_up_at: Instant },
    /// A provisional response arrived. Non-INVITE keeps retransmitting at T2 (§17.1.2.2).
    Proceeding { retransmit_at: Option<Instant>, give_up_at: Instant },
    /// Final response received; Timer D (INVITE) / K (non-INVITE) absorbs retransmissions.
    Completed { until: Instant, ack: Option<Vec<u8>> },
    /// INVITE 2xx received (RFC 6026 Timer M): further 2xx go to the TU too.
    Accepted { until: Instant },
    Terminated,
}

pub(super) struct ClientTx {
    request: Request,
    bytes: Vec<u8>,
    to: Peer,
    cfg: TimerConfig,
    state: State,
}

impl ClientTx {
    pub fn new(request: Request, to: Peer, cfg: TimerConfig, now: Instant, out: &mut Out) -> ClientTx {
        let bytes = request.to_bytes();
        out.transmits.push((to, bytes.clone()));
        let reliable = to.transport.reliable();
        let state = State::Calling {
            retransmit_at: (!reliable).then(|| now + cfg.t1),
            interval: cfg.t1,
            give_up_at: now + cfg.t1x64(),
        };
        ClientTx { request, bytes, to, cfg, state }
    }

    fn invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    pub fn terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Calling { retransmit_at, give_up_at, .. } | State::Proceeding { retransmit_at, give_up_at } => {
                Some(retransmit_at.map_or(*give_up_at, |r| r.min(*give_up_at)))
            }
            State::Completed { until, .. } | State::Accepted { until } => Some(*until),
            State::Terminated => None,
        }
    }

    pub fn on_response(&mut self, key: &TxKey, response: Response, now: Instant, out: &mut Out) {
        let status = response.status;
        let reliable = self.to.transport.reliable();
        match &self.state {
            State::Calling { .. } | State::Proceeding { .. } => {
                if status < 200 {
                    let give_up_at = match self.state {
                        State::Calling { give_up_at, .. } | State::Proceeding { give_up_at, .. } => give_up_at,
                        _ => now,
                    };
                    // INVITE stops retransmitting on a provisional; non-INVITE continues at T2.
                    let retransmit_at = (!self.invite() && !reliable).then(|| now + self.cfg.t2);
                    // Timer B no longer applies to an INVITE that is ringing: the TU decides how long to wait.
                    let give_up_at = if self.invite() { now + Duration::from_secs(3600) } else { give_up_at };
                    self.state = State::Proceeding { retransmit_at, give_up_at };
                } else if self.invite() && status < 300 {
                    self.state = State::Accepted { until: now + self.cfg.t1x64() };
                } else if self.invite() {
                    // §17.1.1.3: the transaction itself ACKs a non-2xx final response.
                    let ack = self.ack_for(&response).to_bytes();
                    out.transmits.push((self.to, ack.clone()));
                    let wait = if reliable { Duration::ZERO } else { self.cfg.timer_d() };
                    self.state = State::Completed { until: now + wait, ack: Some(ack) };
                } else {
                    let wait = if reliable { Duration::ZERO } else { self.cfg.t4 };
                    self.state = State::Completed { until: now + wait, ack: None };
                }
                out.events.push(TxEvent::Response { key: key.clone(), response });
            }
            State::Completed { ack: Some(ack), .. } => out.transmits.push((self.to, ack.clone())),
            State::Accepted { .. } if status >= 200 && status < 300 => {
                out.events.push(TxEvent::Response { key: key.clone(), response });
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, key: &TxKey, now: Instant, out: &mut Out) {
        match &mut self.state {
            State::Calling { retransmit_at, interval, give_up_at } => {
                if now >= *give_up_at {
                    out.events.push(TxEvent::Timeout { key: key.clone() });
                    self.state = State::Terminated;
                } else if retransmit_at.is_some_and(|r| now >= r) {
                    // Timer A doubles without bound (capped by B); Timer E is capped at T2.
                    out.transmits.push((self.to, self.bytes.clone()));
                    *interval = if self.request.method == Method::Invite { *interval * 2 } else { (*interval * 2).min(self.cfg.t2) };
                    *retransmit_at = Some(now + *interval);
                }
            }
            State::Proceeding { retransmit_at, give_up_at } => {
                if now >= *give_up_at {
                    out.events.push(TxEvent::Timeout { key: key.clone() });
                    self.state = State::Terminated;
                } else if retransmit_at.is_some_and(|r| now >= r) {
                    out.transmits.push((self.to, self.bytes.clone()));
                    *retransmit_at = Some(now + self.cfg.t2);
                }
            }
            State::Completed { until, .. } | State::Accepted { until } if now >= *until => {
                self.state = State::Terminated;
            }
            _ => {}
        }
    }

    /// §17.1.1.3: ACK with the INVITE's Request-URI, Call-ID, From, top Via, CSeq number and Route,
    /// and the response's To (with its tag).
    fn ack_for(&self, response: &Response) -> Request {
        let mut headers = Headers::default();
        if let Some(v) = self.request.headers.list_values("Via").first() {
            headers.push("Via", *v);
        }
        for name in ["Route", "From"] {
            for v in self.request.headers.get_all(name) {
                headers.push(name, v);
            }
        }
        if let Some(to) = response.headers.get("To") {
            headers.push("To", to);
        }
        if let Some(c) = self.request.headers.get("Call-ID") {
            headers.push("Call-ID", c);
        }
        let seq = self.request.headers.cseq().map(|c| c.seq).unwrap_or(1);
        headers.push("CSeq", format!("{seq} ACK"));
        headers.push("Max-Forwards", "70");
        Request { method: Method::Ack, uri: self.request.uri.clone(), headers, body: Vec::new() }
    }
}
