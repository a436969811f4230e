//! The HTTP accept loop: a connection cap, header and idle timeouts, and graceful shutdown.
//!
//! `axum::serve` accepts every connection it is offered and keeps an idle one forever, so
//! enough idle sockets exhaust the process's open files and SIP calls then fail for want of
//! an RTP socket (issue 15 item 2). Here, as in mini-redis's `server.rs`:
//!
//! - a connection is accepted only when a permit of the `max_connections` semaphore is free;
//!   while all are taken, newcomers wait in the kernel's listen backlog, which costs this
//!   process no file descriptor, so the budget left for SIP and RTP stays whole;
//! - hyper's `header_read_timeout` closes a connection whose request head is not complete
//!   within that time. hyper starts that clock whenever it waits for a head, from the accept
//!   and again after every response, so it also bounds a quiet keep-alive connection;
//! - a connection on which no byte moves either way for `idle_timeout` is dropped (a stalled
//!   body upload, a client that stops reading a response);
//! - a request must be handled (body read included) within `request_timeout`, else 408;
//! - on shutdown the loop stops accepting, open connections finish their current request
//!   ([`hyper::server::conn::http1::Connection::graceful_shutdown`]) and are waited for up to
//!   a grace period.
//!
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy terminates. How
//! many connections HTTP may have is the binary's decision (it knows the SIP/RTP reserve);
//! this module only enforces it. The peer's address reaches handlers as
//! [`axum::extract::ConnectInfo`].

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// What one HTTP server allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A request head must arrive whole within this long of the server starting to wait for it.
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// A request (its body included) must be handled within this long, else 408.
    pub request_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// Clients waiting in the kernel for a free connection slot. They cost the process no file
/// descriptor, so this may be well above the cap (a plain `bind` gives 128).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds the HTTP port with a [`LISTEN_BACKLOG`]-deep queue.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does: a restart must not wait for the old connections' TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A running HTTP server; [`HttpServer::shutdown`] stops it.
pub struct HttpServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Serves `app` on `listener` in a background task.
    pub fn start(listener: TcpListener, app: Router, limits: ServerLimits) -> io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let request_timeout = limits.request_timeout;
        let app = app.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            request_deadline(request_timeout, req, next)
        }));
        let task = tokio::spawn(accept_loop(listener, app, limits, stop_rx));
        Ok(HttpServer { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open connections finish their request, and waits for them up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "HTTP connections still open at shutdown; dropped"
            );
        }
    }
}

async fn accept_loop(listener: TcpListener, app: Router, limits: ServerLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // While full, say so once a minute rather than once per waiting client.
    let mut warned_at: Option<Instant> = None;
    loop {
        // Take a permit before accepting: while every permit is in use, we hold no new socket.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "HTTP connection limit reached; new connections wait"
                    );
                    warned_at = Some(Instant::now());
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    _ = stop.changed() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE/ENFILE: the process is out of files despite the cap (something else holds
                    // them). Back off rather than spin; the permit goes back with `permit`'s drop.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = stop.changed() => break,
                    }
                }
            },
            _ = stop.changed() => break,
        };
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection task holds a permit: having them all back means every connection has ended.
    let _ = permits.acquire_many(limits.max_connections.max(1) as u32).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    // Timeouts and resets are the client's doing: debug, not warn.
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = tokio::time::sleep_until(idle_until) => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!(%peer, idle_secs = limits.idle_timeout.as_secs(), "HTTP connection idle; closed");
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// 408 when a request (reading its body included) takes longer than `limit`. The response body
/// streams after this returns, so a long download is not cut.
async fn request_deadline(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request took too long.\n").into_response(),
    }
}

/// When a connection last moved a byte, shared between its socket and its watchdog.
#[derive(Clone)]
struct Activity {
    base: Instant,
    /// Milliseconds after `base`.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The TCP stream, noting every read or write that moved bytes.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(max: usize) -> ServerLimits {
        ServerLimits {
            max_connections: max,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
        }
    }

    async fn start(limits: ServerLimits) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() })
                .post(|body: String| async move { body.len().to_string() }),
        );
        HttpServer::start(listener, app, limits).unwrap()
    }

    async fn get_root(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// With the cap taken by idle clients, the next client waits in the backlog; it is served
    /// as soon as one of them leaves.
    #[tokio::test]
    async fn a_full_server_serves_the_next_client_once_one_leaves() {
        let server = start(limits(2)).await;
        let idle_a = TcpStream::connect(server.local_addr()).await.unwrap();
        let _idle_b = TcpStream::connect(server.local_addr()).await.unwrap();
        let waiting = tokio::spawn(get_root(server.local_addr()));
        drop(idle_a);
        let answer = waiting.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with("127.0.0.1"),
            "ConnectInfo reaches the handler: {answer}"
        );
        server.shutdown(Duration::from_secs(5)).await;
    }

    /// Slowloris on the head: half a request line and nothing more is closed by the server.
    #[tokio::test]
    async fn an_incomplete_head_is_closed_after_the_header_timeout() {
        let server = start(ServerLimits {
            header_read_timeout: Duration::from_millis(200),
            ..limits(4)
        })
        .await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
        let mut buf = Vec::new();
        // Ends (EOF or reset) only because the server closed the connection.
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
            .await
            .expect("server closed the connection");
        server.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_connection_that_moves_no_byte_is_closed_after_the_idle_timeout() {
        // The header timeout is longer, so only the idle watchdog can close it: a request whose
        // body never comes.
        let server = start(ServerLimits {
            idle_timeout: Duration::from_millis(200),
            ..limits(4)
        })
        .await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
            .await
            .expect("server closed the connection");
        server.shutdown(Duration::from_secs(5)).await;
    }

    /// Slowloris on the body: bytes keep coming (so the idle watchdog is happy) but the body never
    /// ends; the request deadline answers 408.
    #[tokio::test]
    async fn a_body_that_never_ends_gets_408_at_the_request_deadline() {
        let server = start(ServerLimits {
            request_timeout: Duration::from_millis(300),
            ..limits(4)
        })
        .await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            .await
            .unwrap();
        let (mut rd, mut wr) = s.into_split();
        // Trickle a byte every 50 ms until the server answers (or closes).
        let trickle = tokio::spawn(async move {
            while wr.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(20), rd.read_exact(&mut head))
            .await
            .expect("answered")
            .unwrap();
        trickle.abort();
        let head = String::from_utf8_lossy(&head).into_owned();
        assert_eq!(head, "HTTP/1.1 408");
        server.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let server = start(limits(4)).await;
        let addr = server.local_addr();
        assert!(get_root(addr).await.starts_with("HTTP/1.1 200"));
        server.shutdown(Duration::from_secs(5)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed after shutdown"
        );
    }
}
