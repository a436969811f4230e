//! The webhook sender: one tokio task per instance that turns the database's delivery queue
//! into HTTP POSTs (issue 7).
//!
//! Every `poll_interval_ms` it asks the store to queue new request events for each webhook
//! (`enqueue_webhook_deliveries`, safe to run on every instance at once), leases a batch of due
//! deliveries (`claim_webhook_deliveries`: no other instance gets them while the lease lasts),
//! sends them concurrently with a timeout, and records each attempt with the next step from
//! the retry policy (`finish_webhook_attempt`). Nothing is kept in memory between passes, so a
//! restart or a second instance loses and duplicates nothing; the lease is longer than the send
//! timeout so it cannot run out mid-send. A crash between a send and its record means that
//! delivery is sent again after the lease: receivers deduplicate on the payload's `id`.
//!
//! The body, signature and backoff are `oncall_core::webhook` (pure, tested there); this file is
//! only the loop and the HTTP client (hyper-util over rustls, both already built for S3).
//! Redirects are not followed.
//!
//! Where a POST may go is `oncall_core::destination` (issue #15, SSRF): the client resolves names
//! itself ([`CheckedResolver`]) and hands the connector only the addresses the policy allowed, so
//! a name that resolves to 169.254.169.254 (or is rebound to 127.0.0.1 after the URL was saved) is
//! never connected to; address literals, which the connector would not resolve, are checked before
//! the request. The tenant's delivery log says only "destination not allowed" or "could not
//! connect"; the reason (address, OS error) is in the server log, for the operator.

use crate::config::WebhooksConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oncall_core::destination::{DestinationPolicy, Refused};
use oncall_core::store::{AttemptOutcome, ClaimedDelivery};
use oncall_core::webhook::{self, Payload, RetryPolicy};
use oncall_core::{Millis, Store, Timestamp};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
/// The webhook sender's client: connects only where the destination policy allows.
pub(crate) type WebhookClient = Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

/// What the tenant's delivery log says when the policy refused the address.
pub const NOT_ALLOWED: &str = "destination not allowed";
/// What it says for any failure to connect (refused, unreachable, DNS, TLS): details would map
/// the server's network for the tenant.
pub const COULD_NOT_CONNECT: &str = "could not connect";

/// Deliveries leased per pass; a full batch makes the next pass start at once.
const BATCH: i64 = 32;
/// How far the queue's cursor trails the request log (see `store/webhooks.rs`).
const SETTLE: Millis = Millis::seconds(30);
/// Attempt log lines older than this are forgotten.
const KEEP_ATTEMPTS: Millis = Millis::hours(24 * 30);

pub struct Sender {
    pub store: Store,
    pub config: WebhooksConfig,
}

impl Sender {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let owner = format!("webhooks-{}-{:08x}", std::process::id(), rand::random::<u32>());
        let destinations = Arc::new(self.config.destination_policy());
        let http = match webhook_client(destinations.clone()) {
            Ok(client) => Http { client, destinations },
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot build the HTTP client; webhooks are not sent");
                return;
            }
        };
        let policy = self.config.retry_policy();
        let timeout = Duration::from_secs(self.config.timeout_secs);
        // The lease outlasts the slowest send of a batch (they run concurrently) by a margin.
        let lease = Millis::seconds(i64::try_from(self.config.timeout_secs).unwrap_or(60) + 30);
        let interval = Duration::from_millis(self.config.poll_interval_ms);
        let mut last_prune = Timestamp(0);
        tracing::info!(owner = %owner, "webhook sender started");
        loop {
            let now = Timestamp::now();
            let mut full = false;
            if let Err(e) = self.store.enqueue_webhook_deliveries(now, SETTLE).await {
                tracing::warn!(error = %e, "webhooks: queueing new events failed");
            }
            match self.store.claim_webhook_deliveries(&owner, now, lease, BATCH).await {
                Ok(batch) => {
                    full = batch.len() as i64 == BATCH;
                    let mut sends = tokio::task::JoinSet::new();
                    for d in batch {
                        let (store, http, owner, link_base) = (
                            self.store.clone(),
                            http.clone(),
                            owner.clone(),
                            self.config.public_url.clone(),
                        );
                        sends.spawn(async move {
                            deliver(&store, &http, &owner, &d, policy, timeout, link_base.as_deref()).await
                        });
                    }
                    while sends.join_next().await.is_some() {}
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: claiming deliveries failed"),
            }
            if now - last_prune > Millis::hours(1) {
                last_prune = now;
                if let Err(e) = self.store.prune_webhook_attempts(now - KEEP_ATTEMPTS).await {
                    tracing::warn!(error = %e, "webhooks: pruning the attempt log failed");
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                tracing::info!("webhook sender stopped");
                return;
            }
        }
    }
}

/// One attempt of one delivery, recorded whatever happens.
async fn deliver(
    store: &Store,
    http: &Http,
    owner: &str,
    d: &ClaimedDelivery,
    policy: RetryPolicy,
    timeout: Duration,
    link_base: Option<&str>,
) {
    let sent_at = Timestamp::now();
    let attempt = d.attempts + 1;
    let payload = Payload {
        event_id: d.event_id,
        event: d.event,
        at: d.event_at,
        actor: d.actor,
        request: &d.request,
        organization: &d.organization,
        sent_at,
        attempt,
        link: link_base.map(|b| format!("{}/requests/{}", b.trim_end_matches('/'), d.request.id.0)),
    };
    let body = payload.body(d.webhook.format);
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, post(http, d, &body, sent_at, attempt)).await;
    let duration = Millis(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    let outcome = match result {
        Ok(Ok(status)) => AttemptOutcome {
            status_code: Some(status),
            error: None,
            duration,
        },
        Ok(Err(failure)) => {
            // The detail is for the operator only.
            tracing::warn!(webhook = %d.webhook.id, delivery = %d.id, url = %d.webhook.url, detail = %failure.detail, "webhook not delivered: {}", failure.shown);
            AttemptOutcome {
                status_code: None,
                error: Some(failure.shown.to_string()),
                duration,
            }
        }
        Err(_) => AttemptOutcome {
            status_code: None,
            error: Some(format!("no answer within {} s", timeout.as_secs())),
            duration,
        },
    };
    let success = outcome.status_code.is_some_and(webhook::is_success);
    let now = Timestamp::now();
    let next = policy.after_attempt(attempt, success, now);
    tracing::info!(
        webhook = %d.webhook.id, delivery = %d.id, event = %d.event, request = %d.request.id, attempt,
        status = ?outcome.status_code, error = ?outcome.error, next = ?next, "webhook attempt"
    );
    match store.finish_webhook_attempt(d, owner, &outcome, next, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery = %d.id, "webhooks: lease lost before the attempt was recorded; the holder decides")
        }
        Err(e) => {
            tracing::error!(delivery = %d.id, error = %e, "webhooks: recording the attempt failed; it will be retried after the lease")
        }
    }
}

/// The sender's client and the policy it was built with (literals are checked against it too).
#[derive(Clone)]
struct Http {
    client: WebhookClient,
    destinations: Arc<DestinationPolicy>,
}

/// Why an attempt got no status code: what the tenant is shown, and the operator's detail.
struct Failure {
    shown: &'static str,
    detail: String,
}

/// POSTs `body`; the status code, or why there is none.
async fn post(http: &Http, d: &ClaimedDelivery, body: &[u8], sent_at: Timestamp, attempt: u32) -> Result<u16, Failure> {
    let unix_secs = sent_at.0.div_euclid(1000);
    let req = hyper::Request::post(d.webhook.url.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("OnCall-Webhook/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            webhook::SIGNATURE_HEADER,
            webhook::signature(&d.webhook.secret, unix_secs, body),
        )
        .header(webhook::TIMESTAMP_HEADER, unix_secs.to_string())
        .header(webhook::EVENT_HEADER, d.event.as_str())
        .header("X-OnCall-Delivery", d.id.0.to_string())
        .header("X-OnCall-Attempt", attempt.to_string())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| Failure {
            shown: "invalid URL",
            detail: e.to_string(),
        })?;
    // The connector does not resolve address literals, so they are checked here; names are
    // checked by the resolver, after resolution.
    if let Some(ip) = req
        .uri()
        .host()
        .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok())
    {
        http.destinations.allows(ip).map_err(|r| Failure {
            shown: NOT_ALLOWED,
            detail: r.to_string(),
        })?;
    }
    let resp = http.client.request(req).await.map_err(|e| classify(&e))?;
    let status = resp.status().as_u16();
    // Read (and drop) the answer so the connection can be reused; a receiver that never ends
    // its body is cut off by the caller's timeout.
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// The tenant's short text for a failed request, and the full chain for the log.
fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let detail = error_chain(e);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<Refused>().is_some() {
            return Failure {
                shown: NOT_ALLOWED,
                detail,
            };
        }
        source = s.source();
    }
    let shown = if e.is_connect() {
        COULD_NOT_CONNECT
    } else {
        "the connection failed before an answer"
    };
    Failure { shown, detail }
}

/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A resolver that returns only the addresses `policy` allows: the connector then connects to
/// exactly what was checked (a second lookup, which DNS rebinding could answer differently, never
/// happens). A name with no allowed address fails with [`Refused`].
#[derive(Clone)]
pub(crate) struct CheckedResolver {
    policy: Arc<DestinationPolicy>,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on each address.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.allows(a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refused.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(r)) => Err(Box::new(r) as Self::Error),
                (true, None) => Err(format!("{} has no address", name.as_str()).into()),
                (false, _) => Ok(allowed.into_iter()),
            }
        })
    }
}

/// The webhook sender's HTTP(S) client over a [`CheckedResolver`].
pub(crate) fn webhook_client(policy: Arc<DestinationPolicy>) -> Result<WebhookClient, String> {
    let mut http = HttpConnector::new_with_resolver(CheckedResolver { policy });
    // The HTTPS wrapper decides the scheme; the inner connector must accept https:// URIs.
    http.enforce_http(false);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https_builder()?.wrap_connector(http)))
}

/// HTTP and HTTPS (the system's root certificates; without any, HTTPS fails per attempt with a
/// clear error and HTTP still works). For operator-configured endpoints (the text gateway).
pub fn http_client() -> Result<HttpClient, String> {
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https_builder()?.build()))
}

fn https_builder() -> Result<hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols2>, String>
{
    let provider = rustls::crypto::ring::default_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: no system root certificates; https:// webhooks will fail");
            let tls = rustls::ClientConfig::builder_with_provider(provider.into())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    Ok(builder.https_or_http().enable_http1())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_name_the_cause_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "Connection refused");
    }

    /// A name is resolved by the client itself and only allowed addresses are connected to: with
    /// the default policy `localhost` is refused before any connection (the listener sees none);
    /// with 127.0.0.1 allowed the same request reaches it.
    #[tokio::test]
    async fn the_client_connects_only_to_addresses_the_policy_allows() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let request = || {
            hyper::Request::post(format!("http://localhost:{port}/hook"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap()
        };
        let closed = webhook_client(Arc::new(DestinationPolicy::default())).unwrap();
        let e = closed.request(request()).await.unwrap_err();
        let failure = classify(&e);
        assert_eq!(failure.shown, NOT_ALLOWED);
        assert!(failure.detail.contains("127.0.0.1 is loopback"), "{}", failure.detail);
        // A connection made before the error would be waiting in the backlog.
        let pending = listener.accept().map(|_| ()).map_err(|e| e.kind());
        assert_eq!(pending, Err(std::io::ErrorKind::WouldBlock), "nothing connected");
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();

        let lab = DestinationPolicy { allow_private: vec!["127.0.0.1/32".parse().unwrap()] };
        let open = webhook_client(Arc::new(lab)).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await.unwrap();
        });
        let resp = open.request(request()).await.unwrap();
        assert_eq!(resp.status(), 204);
        server.await.unwrap();
    }

    #[test]
    fn the_webhooks_section_maps_to_the_retry_policy_and_is_validated() {
        assert_eq!(WebhooksConfig::default().retry_policy(), RetryPolicy::default());
        let cfg: WebhooksConfig = toml::from_str("retry_initial_ms = 500\nretry_max_secs = 2\nmax_attempts = 0\n").unwrap();
        cfg.validate().unwrap();
        let p = cfg.retry_policy();
        assert_eq!(p.max_attempts, None, "0 retries forever");
        assert_eq!(
            (1..=4).map(|n| p.delay_after(n).0).collect::<Vec<_>>(),
            [500, 1000, 2000, 2000]
        );
        for bad in [
            "timeout_secs = 0",
            "poll_interval_ms = 1",
            "retry_initial_ms = 5000\nretry_max_secs = 1",
            "public_url = \"oncall.lan\"",
            "allow_private = [\"localhost\"]",
            "allow_private = [\"10.0.0.0/33\"]",
        ] {
            let cfg: WebhooksConfig = toml::from_str(&format!("{bad}\n")).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with("webhooks."), "{bad}: {e}");
        }
    }
}
