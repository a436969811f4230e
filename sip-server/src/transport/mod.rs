//! Sockets for SIP: one UDP socket, a TCP listener and optionally a TLS listener, feeding received
//! messages into one channel, and sending what the user agent produces. A message for a TCP or TLS peer
//! goes on the connection it names, else on the connection we already hold to that address, else on a
//! new one we open (trunks over TLS, RFC 3261 §18.1.1); answers from the peer come back on it.
//! Thin tokio code; all protocol logic is elsewhere.

pub mod framing;
mod stream;
pub mod tls;

use crate::transaction::{Peer, Transport};
pub use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// One received message (a datagram or one framed TCP message).
pub struct Inbound {
    pub data: Vec<u8>,
    pub source: Peer,
}

#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// TCP and TLS connections accepted at once (those we open are not counted).
    pub max_tcp_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// A message must arrive whole within this long of its first byte, however slowly the bytes
    /// trickle in (slowloris: a client holding half-sent messages open to use up connections).
    pub tcp_message_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits { max_tcp_connections: 1024, tcp_idle_timeout: Duration::from_secs(120), tcp_message_timeout: Duration::from_secs(30) }
    }
}

/// How a TLS peer we connect to is checked: the name its certificate must carry and the roots to trust.
#[derive(Clone)]
pub struct TlsPeer {
    pub server_name: ServerName<'static>,
    pub config: Arc<rustls::ClientConfig>,
}

#[derive(Default)]
struct Connections {
    by_id: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    /// Connections we opened, by where they go: the next request to that peer reuses it.
    outbound: HashMap<(Transport, SocketAddr), u64>,
    /// Accepted connections (the limit counts these).
    accepted: usize,
    next_id: u64,
}

impl Connections {
    fn add(&mut self, tx: mpsc::UnboundedSender<Vec<u8>>) -> u64 {
        self.next_id += 1;
        self.by_id.insert(self.next_id, tx);
        self.next_id
    }
}

struct Shared {
    conns: Mutex<Connections>,
    inbound: mpsc::Sender<Inbound>,
    limits: TransportLimits,
    tls_peers: Mutex<HashMap<SocketAddr, TlsPeer>>,
    /// The last reason a connection to the address failed (a refused certificate, no answer), until one works.
    failures: Mutex<HashMap<SocketAddr, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sending side, shared by the user agent's driver.
#[derive(Clone)]
pub struct Sender {
    udp: Arc<UdpSocket>,
    shared: Arc<Shared>,
}

impl Sender {
    pub fn send(&self, to: Peer, data: Vec<u8>) {
        if to.transport == Transport::Udp {
            if let Err(e) = self.udp.try_send_to(&data, to.addr) {
                tracing::debug!(to = %to.addr, error = %e, "UDP send failed");
            }
            return;
        }
        let mut conns = lock(&self.shared.conns);
        let existing = to.conn.filter(|c| conns.by_id.contains_key(c)).or_else(|| conns.outbound.get(&(to.transport, to.addr)).copied());
        if let Some(tx) = existing.and_then(|c| conns.by_id.get(&c)) {
            let _ = tx.send(data);
            return;
        }
        // No connection to the peer (never opened, or it closed): open one; the message waits in its queue.
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(data);
        let id = conns.add(tx);
        conns.outbound.insert((to.transport, to.addr), id);
        drop(conns);
        let tls = (to.transport == Transport::Tls).then(|| lock(&self.shared.tls_peers).get(&to.addr).cloned());
        tokio::spawn(stream::connect_and_serve(self.shared.clone(), Peer { conn: Some(id), ..to }, tls.flatten(), rx));
    }

    /// Declares how a TLS peer at `addr` (a trunk) is verified when we connect to it.
    pub fn set_tls_peer(&self, addr: SocketAddr, peer: TlsPeer) {
        lock(&self.shared.tls_peers).insert(addr, peer);
    }

    /// Why the last connection to `addr` failed, while no newer one has succeeded.
    pub fn connection_failure(&self, addr: SocketAddr) -> Option<String> {
        lock(&self.shared.failures).get(&addr).cloned()
    }
}

pub struct Bound {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub sender: Sender,
}

/// Binds the transports (TLS when `tls` is given) and starts their receive loops, which feed `inbound`.
pub async fn bind(
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<(SocketAddr, Arc<tls::ServerTls>)>,
    limits: TransportLimits,
    inbound: mpsc::Sender<Inbound>,
) -> std::io::Result<Bound> {
    let udp_sock = Arc::new(UdpSocket::bind(udp).await?);
    let listener = TcpListener::bind(tcp).await?;
    let udp_addr = udp_sock.local_addr()?;
    let tcp_addr = listener.local_addr()?;
    let tls_listener = match &tls {
        Some((addr, _)) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let tls_addr = tls_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let shared = Arc::new(Shared {
        conns: Mutex::default(),
        inbound: inbound.clone(),
        limits,
        tls_peers: Mutex::default(),
        failures: Mutex::default(),
    });

    let rx_sock = udp_sock.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            match rx_sock.recv_from(&mut buf).await {
                Ok((n, addr)) => {
                    let msg = Inbound { data: buf[..n].to_vec(), source: Peer { addr, transport: Transport::Udp, conn: None } };
                    // Under overload, drop rather than queue without bound: UDP peers retransmit.
                    if inbound.try_send(msg).is_err() {
                        tracing::warn!("SIP inbound queue full; datagram dropped");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
        }
    });
    tokio::spawn(stream::accept_loop(listener, shared.clone(), None));
    if let (Some(listener), Some((_, server))) = (tls_listener, tls) {
        tokio::spawn(stream::accept_loop(listener, shared.clone(), Some(server)));
    }
    Ok(Bound { udp_addr, tcp_addr, tls_addr, sender: Sender { udp: udp_sock, shared } })
}
