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

use crate::config::WebhooksConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oncall_core::store::{AttemptOutcome, ClaimedDelivery};
use oncall_core::webhook::{self, Payload, RetryPolicy};
use oncall_core::{Millis, Store, Timestamp};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

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
        let client = match http_client() {
            Ok(c) => c,
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
                        let (store, client, owner, link_base) = (
                            self.store.clone(),
                            client.clone(),
                            owner.clone(),
                            self.config.public_url.clone(),
                        );
                        sends.spawn(async move {
                            deliver(&store, &client, &owner, &d, policy, timeout, link_base.as_deref()).await
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
    client: &HttpClient,
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
    let result = tokio::time::timeout(timeout, post(client, d, &body, sent_at, attempt)).await;
    let duration = Millis(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    let outcome = match result {
        Ok(Ok(status)) => AttemptOutcome {
            status_code: Some(status),
            error: None,
            duration,
        },
        Ok(Err(e)) => AttemptOutcome {
            status_code: None,
            error: Some(e),
            duration,
        },
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

/// POSTs `body`; the status code, or why there is none.
async fn post(
    client: &HttpClient,
    d: &ClaimedDelivery,
    body: &[u8],
    sent_at: Timestamp,
    attempt: u32,
) -> Result<u16, String> {
    let req = hyper::Request::post(d.webhook.url.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("OnCall-Webhook/", env!("CARGO_PKG_VERSION")),
        )
        .header(webhook::SIGNATURE_HEADER, webhook::signature(&d.webhook.secret, body))
        .header(webhook::TIMESTAMP_HEADER, (sent_at.0 / 1000).to_string())
        .header(webhook::EVENT_HEADER, d.event.as_str())
        .header("X-OnCall-Delivery", d.id.0.to_string())
        .header("X-OnCall-Attempt", attempt.to_string())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    // Read (and drop) the answer so the connection can be reused; a receiver that never ends
    // its body is cut off by the caller's timeout.
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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

/// HTTP and HTTPS (the system's root certificates; without any, HTTPS fails per attempt with a
/// clear error and HTTP still works).
pub(crate) fn http_client() -> Result<HttpClient, String> {
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
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
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

    #[test]
    fn the_webhooks_section_maps_to_the_retry_policy_and_is_validated() {
        assert_eq!(WebhooksConfig::default().retry_policy(), RetryPolicy::default());
        let cfg: crate::config::Config =
            toml::from_str("[webhooks]\nretry_initial_ms = 500\nretry_max_secs = 2\nmax_attempts = 0\n").unwrap();
        cfg.validate().unwrap();
        let p = cfg.webhooks.retry_policy();
        assert_eq!(p.max_attempts, None, "0 retries forever");
        assert_eq!((1..=4).map(|n| p.delay_after(n).0).collect::<Vec<_>>(), [500, 1000, 2000, 2000]);
        for bad in ["timeout_secs = 0", "poll_interval_ms = 1", "retry_initial_ms = 5000\nretry_max_secs = 1", "public_url = \"oncall.lan\""] {
            let cfg: crate::config::Config = toml::from_str(&format!("[webhooks]\n{bad}\n")).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with("webhooks."), "{bad}: {e}");
        }
    }
}
