//! Who a message comes from or goes to: the transport and the address (plus the TCP connection, so
//! answers reuse it). Its own module because the client and server transactions name peers too, and
//! they should not import the transaction layer (`mod.rs`) that drives them.

use std::net::SocketAddr;

/// Transport of a peer: unreliable transports need retransmission timers, reliable ones do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Where a message came from or goes to. `conn` names a TCP or TLS connection so answers reuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub conn: Option<u64>,
}
