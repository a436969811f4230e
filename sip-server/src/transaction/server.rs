//! Server transactions: INVITE (§17.2.1, with RFC 6026's Accepted state) and non-INVITE (§17.2.2).

use super::key::TxKey;
use super::output::{Out, TxEvent};
use super::peer::Peer;
use super::timers::TimerConfig;
use crate::message::Method;
use std::time::{Duration, Instant};

enum State {
    /// Waiting for the TU; `last` is the last provisional response sent (resent on retransmission).
    Proceeding { last: Option<Vec<u8>> },
    /// INVITE 3xx-6xx sent: Timer G retransmits it (unreliable only) until ACK or Timer H.
    /// Non-INVITE final sent: Timer J absorbs retransmissions.
    Completed { last: Vec<u8>, g_next: Option<Instant>, g_interval: Duration, until: Instant },
    /// ACK received for an INVITE error response: Timer I absorbs ACK retransmissions.
    Confirmed { until: Instant },
    /// INVITE 2xx sent (RFC 6026): Timer L absorbs INVITE retransmissions; the dialog resends the 2xx.
    Accepted { until: Instant },
    Terminated,
}

pub(super) struct ServerTx {
    invite: bool,
    target: Peer,
    cfg: TimerConfig,
    state: State,
}

impl ServerTx {
    pub fn new(method: &Method, target: Peer, cfg: TimerConfig) -> ServerTx {
        ServerTx { invite: *method == Method::Invite, target, cfg, state: State::Proceeding { last: None } }
    }

    pub fn proceeding(&self) -> bool {
        matches!(self.state, State::Proceeding { .. })
    }

    pub fn terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Completed { g_next, until, .. } => Some(g_next.map_or(*until, |g| g.min(*until))),
            State::Confirmed { until } | State::Accepted { until } => Some(*until),
            _ => None,
        }
    }

    pub fn on_retransmission(&mut self, out: &mut Out) {
        match &self.state {
            State::Proceeding { last: Some(last) } | State::Completed { last, .. } => {
                out.transmits.push((self.target, last.clone()));
            }
            _ => {}
        }
    }

    pub fn on_ack(&mut self, now: Instant, _out: &mut Out) {
        if let State::Completed { .. } = self.state {
            if self.invite {
                let wait = if self.target.transport.reliable() { Duration::ZERO } else { self.cfg.t4 };
                self.state = State::Confirmed { until: now + wait };
            }
        }
    }

    pub fn send_response(&mut self, status: u16, data: Vec<u8>, now: Instant, out: &mut Out) {
        if !matches!(self.state, State::Proceeding { .. }) {
            return;
        }
        out.transmits.push((self.target, data.clone()));
        let reliable = self.target.transport.reliable();
        self.state = if status < 200 {
            State::Proceeding { last: Some(data) }
        } else if self.invite && status < 300 {
            State::Accepted { until: now + self.cfg.t1x64() }
        } else if self.invite {
            State::Completed {
                last: data,
                g_next: (!reliable).then(|| now + self.cfg.t1),
                g_interval: self.cfg.t1,
                until: now + self.cfg.t1x64(),
            }
        } else {
            let j = if reliable { Duration::ZERO } else { self.cfg.t1x64() };
            State::Completed { last: data, g_next: None, g_interval: Duration::ZERO, until: now + j }
        };
    }

    pub fn on_timer(&mut self, key: &TxKey, now: Instant, out: &mut Out) {
        match &mut self.state {
            State::Completed { last, g_next, g_interval, until } => {
                if now >= *until {
                    // Timer H (INVITE: the ACK never came) or Timer J (non-INVITE).
                    if self.invite {
                        out.events.push(TxEvent::Timeout { key: key.clone() });
                    }
                    self.state = State::Terminated;
                } else if g_next.is_some_and(|g| now >= g) {
                    // Timer G: resend the final response, doubling up to T2.
                    out.transmits.push((self.target, last.clone()));
                    *g_interval = (*g_interval * 2).min(self.cfg.t2);
                    *g_next = Some(now + *g_interval);
                }
            }
            State::Confirmed { until } | State::Accepted { until } if now >= *until => {
                self.state = State::Terminated;
            }
            _ => {}
        }
    }
}
