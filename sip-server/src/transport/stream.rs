//! TCP and TLS connections: accepting them (with the connection limit and a handshake deadline), opening
//! them to peers, and one task per connection that frames what it reads and writes what is queued.

use super::framing::StreamFramer;
use super::tls::ServerTls;
use super::{lock, Inbound, Shared, TlsPeer};
use crate::transaction::{Peer, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A TLS handshake or an outgoing connect must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections we open send a CRLF CRLF this often (RFC 5626 §4.4.1), so NATs and the peer keep them.
const KEEPALIVE: Duration = Duration::from_secs(30);

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<ServerTls>>) {
    let transport = if tls.is_some() { Transport::Tls } else { Transport::Tcp };
    loop {
        let Ok((stream, addr)) = listener.accept().await else { continue };
        let (tx, rx) = mpsc::unbounded_channel();
        let id = {
            let mut conns = lock(&shared.conns);
            if conns.accepted >= shared.limits.max_tcp_connections {
                tracing::warn!(%addr, transport = transport.as_str(), "connection limit reached; refusing");
                continue;
            }
            conns.accepted += 1;
            conns.add(tx)
        };
        let (shared, tls) = (shared.clone(), tls.clone());
        tokio::spawn(async move {
            let peer = Peer { addr, transport, conn: Some(id) };
            match tls {
                None => serve(stream, peer, rx, &shared, false).await,
                Some(server) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(server.config());
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve(tls, peer, rx, &shared, false).await,
                        Ok(Err(e)) => tracing::info!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
                    }
                }
            }
            let mut conns = lock(&shared.conns);
            conns.by_id.remove(&id);
            conns.accepted -= 1;
        });
    }
}

/// Opens the connection `peer` names (its `conn` already registered with `rx` as its queue) and serves it;
/// a failure is logged with its reason and kept for [`super::Sender::connection_failure`].
pub(super) async fn connect_and_serve(shared: Arc<Shared>, peer: Peer, tls: Option<TlsPeer>, rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    let id = peer.conn.expect("an opened connection has an id");
    let result = async {
        let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(peer.addr)).await.map_err(|_| "no answer to the connection".to_string())?.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        if peer.transport != Transport::Tls {
            return Ok(Err(tcp));
        }
        // A peer nobody declared (a phone reached at its registration address) is checked by its IP address.
        let tls = tls.unwrap_or_else(|| TlsPeer { server_name: peer.addr.ip().into(), config: default_client() });
        let connector = tokio_rustls::TlsConnector::from(tls.config);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(tls.server_name.clone(), tcp)).await.map_err(|_| "TLS handshake timed out".to_string())?;
        stream.map(Ok).map_err(|e| format!("TLS handshake with {:?} failed: {e}", tls.server_name))
    }
    .await;
    match result {
        Ok(stream) => {
            lock(&shared.failures).remove(&peer.addr);
            tracing::debug!(to = %peer.addr, transport = peer.transport.as_str(), "connection opened");
            match stream {
                Ok(tls) => serve(tls, peer, rx, &shared, true).await,
                Err(tcp) => serve(tcp, peer, rx, &shared, true).await,
            }
        }
        Err(why) => {
            tracing::warn!(to = %peer.addr, transport = peer.transport.as_str(), error = %why, "cannot connect; messages to this peer dropped");
            lock(&shared.failures).insert(peer.addr, why);
        }
    }
    let mut conns = lock(&shared.conns);
    conns.by_id.remove(&id);
    if conns.outbound.get(&(peer.transport, peer.addr)) == Some(&id) {
        conns.outbound.remove(&(peer.transport, peer.addr));
    }
}

fn default_client() -> Arc<rustls::ClientConfig> {
    static SYSTEM: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> = std::sync::OnceLock::new();
    SYSTEM
        .get_or_init(|| super::tls::client_config(None).ok())
        .clone()
        .unwrap_or_else(|| Arc::new(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider())).with_safe_default_protocol_versions().expect("ring has TLS 1.2 and 1.3").with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth()))
}

/// Reads framed messages into the inbound channel and writes the queue out, until either side ends. A
/// connection we opened (`ours`) is kept with keepalives instead of being closed when idle.
async fn serve<S>(stream: S, peer: Peer, mut outbound: mpsc::UnboundedReceiver<Vec<u8>>, shared: &Shared, ours: bool)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let data = tokio::select! {
                d = outbound.recv() => match d { Some(d) => d, None => break },
                _ = keepalive.tick(), if ours => b"\r\n\r\n".to_vec(),
            };
            if wr.write_all(&data).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let (idle, message_timeout) = (shared.limits.tcp_idle_timeout, shared.limits.tcp_message_timeout);
    let idle = if ours { Duration::from_secs(24 * 3600) } else { idle };
    let addr: SocketAddr = peer.addr;
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16384];
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
                tracing::debug!(%addr, why, "closing connection");
                break;
            }
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(data)) => {
                    if shared.inbound.send(Inbound { data, source: peer }).await.is_err() {
                        writer.abort();
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%addr, error = %e, "closing connection");
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
