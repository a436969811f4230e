//! Sockets for SIP: one UDP socket and a TCP listener, feeding received messages into one channel
//! and sending what the user agent produces. Thin tokio code; all protocol logic is elsewhere.

pub mod framing;

use crate::transaction::{Peer, Transport};
use framing::StreamFramer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// One received message (a datagram or one framed TCP message).
pub struct Inbound {
    pub data: Vec<u8>,
    pub source: Peer,
}

#[derive(Debug, Clone)]
pub struct TransportLimits {
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

/// Sending side, shared by the user agent's driver.
#[derive(Clone)]
pub struct Sender {
    udp: Arc<UdpSocket>,
    tcp: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>>,
}

impl Sender {
    pub fn send(&self, to: Peer, data: Vec<u8>) {
        match to.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&data, to.addr) {
                    tracing::debug!(to = %to.addr, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp => {
                let conns = self.tcp.lock().unwrap_or_else(|p| p.into_inner());
                match to.conn.and_then(|c| conns.get(&c)) {
                    Some(tx) => {
                        let _ = tx.send(data);
                    }
                    None => tracing::debug!(to = %to.addr, "TCP connection gone; message dropped"),
                }
            }
        }
    }
}

pub struct Bound {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub sender: Sender,
}

/// Binds both transports and starts their receive loops, which feed `inbound`.
pub async fn bind(udp: SocketAddr, tcp: SocketAddr, limits: TransportLimits, inbound: mpsc::Sender<Inbound>) -> std::io::Result<Bound> {
    let udp_sock = Arc::new(UdpSocket::bind(udp).await?);
    let listener = TcpListener::bind(tcp).await?;
    let udp_addr = udp_sock.local_addr()?;
    let tcp_addr = listener.local_addr()?;
    let conns: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>> = Arc::default();

    let rx_sock = udp_sock.clone();
    let udp_inbound = inbound.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            match rx_sock.recv_from(&mut buf).await {
                Ok((n, addr)) => {
                    let msg = Inbound { data: buf[..n].to_vec(), source: Peer { addr, transport: Transport::Udp, conn: None } };
                    // Under overload, drop rather than queue without bound: UDP peers retransmit.
                    if udp_inbound.try_send(msg).is_err() {
                        tracing::warn!("SIP inbound queue full; datagram dropped");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
        }
    });

    let accept_conns = conns.clone();
    tokio::spawn(async move {
        let next_id = AtomicU64::new(1);
        loop {
            let Ok((stream, addr)) = listener.accept().await else { continue };
            if accept_conns.lock().map(|c| c.len()).unwrap_or(0) >= limits.max_tcp_connections {
                tracing::warn!(%addr, "TCP connection limit reached; refusing");
                drop(stream);
                continue;
            }
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            if let Ok(mut c) = accept_conns.lock() {
                c.insert(id, tx);
            }
            let conns = accept_conns.clone();
            let inbound = inbound.clone();
            let (idle, message_timeout) = (limits.tcp_idle_timeout, limits.tcp_message_timeout);
            tokio::spawn(async move {
                serve_tcp(stream, addr, id, rx, inbound, idle, message_timeout).await;
                if let Ok(mut c) = conns.lock() {
                    c.remove(&id);
                }
            });
        }
    });

    Ok(Bound { udp_addr, tcp_addr, sender: Sender { udp: udp_sock, tcp: conns } })
}

async fn serve_tcp(
    stream: TcpStream,
    addr: SocketAddr,
    id: u64,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
    idle: Duration,
    message_timeout: Duration,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(data) = outbound.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16384];
    let peer = Peer { addr, transport: Transport::Tcp, conn: Some(id) };
    // When the message now being received started (None between messages).
    let mut partial_since: Option<tokio::time::Instant> = None;
    loop {
        let wait = match partial_since {
            Some(t) => idle.min(message_timeout.saturating_sub(t.elapsed())),
            None => idle,
        };
        let n = match tokio::time::timeout(wait, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Err(_) => {
                let why = if partial_since.is_some() { "a message took too long to arrive" } else { "idle" };
                tracing::debug!(%addr, why, "closing TCP connection");
                break;
            }
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(data)) => {
                    if inbound.send(Inbound { data, source: peer }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%addr, error = %e, "closing TCP connection");
                    writer.abort();
                    return;
                }
            }
        }
        partial_since = match (framer.pending() > 0, partial_since) {
            (false, _) => None,
            (true, None) => Some(tokio::time::Instant::now()),
            (true, started) => started,
        };
    }
    writer.abort();
}
