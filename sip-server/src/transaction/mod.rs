//! The RFC 3261 §17 transaction layer as a sans-IO state machine.
//!
//! Feed it parsed requests and responses with the peer they came from and the current `Instant`;
//! drain [`TransactionLayer::poll_transmit`] (bytes to send), [`TransactionLayer::poll_event`]
//! (what the user agent core must act on) and sleep until [`TransactionLayer::poll_timeout`].
//! All eleven timers live here: A, B, D (client INVITE), E, F, K (client non-INVITE), G, H, I
//! (server INVITE; plus L from RFC 6026) and J (server non-INVITE). Retransmitted requests are
//! absorbed and answered with the last response; retransmitted responses re-trigger the ACK.
//! The ACK for a 2xx and 2xx retransmission belong to the dialog (RFC 3261 §13.3.1.4), not here.

mod client;
mod key;
mod output;
mod peer;
mod server;
pub mod timers;

pub use key::{KeyMethod, TxKey};
pub use output::TxEvent;
pub use peer::{Peer, Transport};
pub use timers::TimerConfig;

use crate::message::{Method, Request, Response, Via};
use client::ClientTx;
use output::Out;
use server::ServerTx;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Peer,
    pub data: Vec<u8>,
}

enum Tx {
    Server(ServerTx),
    Client(ClientTx),
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Tx::Server(t) => t.next_deadline(),
            Tx::Client(t) => t.next_deadline(),
        }
    }
    fn terminated(&self) -> bool {
        match self {
            Tx::Server(t) => t.terminated(),
            Tx::Client(t) => t.terminated(),
        }
    }
}

pub struct TransactionLayer {
    timers_cfg: TimerConfig,
    txs: HashMap<TxKey, Tx>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, TxKey)>>,
    seq: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(timers_cfg: TimerConfig) -> Self {
        TransactionLayer {
            timers_cfg,
            txs: HashMap::new(),
            deadlines: BinaryHeap::new(),
            seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// A request arrived from `source` (its top Via already stamped with received/rport).
    pub fn handle_request(&mut self, request: Request, source: Peer, now: Instant) {
        let Some(via) = request.headers.top_via() else { return };
        let key = TxKey::for_server(&request, &via);
        let mut out = Out::default();
        match self.txs.get_mut(&key) {
            Some(Tx::Server(tx)) => {
                if request.method == Method::Ack {
                    tx.on_ack(now, &mut out);
                } else {
                    tx.on_retransmission(&mut out);
                }
            }
            Some(Tx::Client(_)) => return,
            None if request.method == Method::Ack => {
                out.events.push(TxEvent::Ack { request, source });
            }
            None => {
                let target = response_target(&via, source);
                let mut tx = ServerTx::new(&request.method, target, self.timers_cfg);
                // §17.2.1: an INVITE gets 100 Trying at once, so the caller stops retransmitting.
                if request.method == Method::Invite {
                    let trying = Response::from_request_headers(&request.headers, 100, None);
                    tx.send_response(100, trying.to_bytes(), now, &mut out);
                }
                self.txs.insert(key.clone(), Tx::Server(tx));
                out.events.push(TxEvent::Request { key: key.clone(), request, source });
            }
        }
        self.absorb(key, out);
    }

    /// Sends `response` on the server transaction `key`. Unknown or finished transactions ignore it.
    pub fn respond(&mut self, key: &TxKey, response: Response, now: Instant) {
        let mut out = Out::default();
        if let Some(Tx::Server(tx)) = self.txs.get_mut(key) {
            tx.send_response(response.status, response.to_bytes(), now, &mut out);
        }
        self.absorb(key.clone(), out);
    }

    /// Whether a server INVITE transaction may still get a final response (CANCEL → 487).
    pub fn invite_pending(&self, key: &TxKey) -> bool {
        matches!(self.txs.get(key), Some(Tx::Server(t)) if t.proceeding())
    }

    /// Starts a client transaction for `request` (which carries a fresh top Via branch) to `to`.
    pub fn send_request(&mut self, request: Request, to: Peer, now: Instant) -> Option<TxKey> {
        let via = request.headers.top_via()?;
        let key = TxKey::for_client(&via, &request.method);
        let mut out = Out::default();
        let tx = ClientTx::new(request, to, self.timers_cfg, now, &mut out);
        self.txs.insert(key.clone(), Tx::Client(tx));
        self.absorb(key.clone(), out);
        Some(key)
    }

    /// A response arrived; it is matched to its client transaction by branch and CSeq method.
    pub fn handle_response(&mut self, response: Response, now: Instant) {
        let (Some(via), Some(cseq)) = (response.headers.top_via(), response.headers.cseq()) else { return };
        let key = TxKey::for_client(&via, &cseq.method);
        let mut out = Out::default();
        if let Some(Tx::Client(tx)) = self.txs.get_mut(&key) {
            tx.on_response(&key, response, now, &mut out);
        }
        self.absorb(key, out);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, _, _))) = self.deadlines.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, _, key))) = self.deadlines.pop() else { break };
            let mut out = Out::default();
            match self.txs.get_mut(&key) {
                Some(Tx::Server(tx)) => tx.on_timer(&key, now, &mut out),
                Some(Tx::Client(tx)) => tx.on_timer(&key, now, &mut out),
                None => continue,
            }
            self.absorb(key, out);
        }
    }

    fn absorb(&mut self, key: TxKey, out: Out) {
        for (to, data) in out.transmits {
            self.transmits.push_back(Transmit { to, data });
        }
        self.events.extend(out.events);
        match self.txs.get(&key) {
            Some(tx) if tx.terminated() => {
                self.txs.remove(&key);
            }
            Some(tx) => {
                if let Some(d) = tx.next_deadline() {
                    // Stale heap entries are harmless: a timer handler re-checks the state's own deadlines.
                    self.seq += 1;
                    self.deadlines.push(Reverse((d, self.seq, key)));
                }
            }
            None => {}
        }
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4): back on the same TCP
/// connection; over UDP to the source address when the Via asked for rport, else to the
/// source IP at the sent-by port.
pub fn response_target(via: &Via, source: Peer) -> Peer {
    if source.transport.reliable() || via.param("rport").is_some() {
        return source;
    }
    let port = via.port.unwrap_or(5060);
    Peer { addr: SocketAddr::new(source.addr.ip(), port), ..source }
}

#[cfg(test)]
mod tests;
