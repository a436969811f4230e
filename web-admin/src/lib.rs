//! OnCall's web admin site and JSON API.
//!
//! Server-rendered pages (axum + tera) for managers and employees, a JSON API under `/api/v1`
//! with per-user bearer tokens (docs/api.md), and the operational endpoints every deployment
//! needs: `/healthz` for load balancers and `/metrics` for Prometheus.
//!
//! Layout, one file per concern: `auth` (sessions, CSRF, roles, login rate limiting),
//! `recording_source` (serving recordings with HTTP Range), `calendar` (month/week grids and
//! iCal), `charts` (server-side SVG), `views` (formatting for templates), `pages/*` (one file
//! per area of the site), `reachability` (whether paging can reach people now: the health
//! warnings), `api` (the JSON mirror), `metrics_access` (who may read `/metrics`) and `server`
//! (the accept loop: connection cap, header/idle/request timeouts, graceful shutdown). Templates
//! and static files are embedded in the binary, so it runs from any directory.
//!
//! Tenancy: every handler takes the organization from the session (or API token) and passes it
//! to the store, which puts it in every `WHERE`. An id from another organization is therefore
//! simply "not found" (404), never "forbidden", so ids cannot be probed.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod browser_phone;
pub mod calendar;
pub mod charts;
pub mod client_addr;
mod config;
pub mod error;
pub mod fd_budget;
pub mod metrics_access;
pub mod pages;
pub mod rate_limit;
pub mod reachability;
pub mod recording_source;
pub mod security_headers;
pub mod server;
pub mod state;
pub mod templates;
pub mod text_inbound;
pub mod views;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub use config::WebConfig;
pub use metrics_access::MetricsAccess;
pub use state::{Hooks, OrgFiles};
pub use recording_source::{LocalRecordings, RecordingSource};
pub use state::AppState;

/// What the HTTP side asks of the running server.
pub trait StatusSource: Send + Sync + 'static {
    /// Ready to take calls (transports bound, database reachable).
    fn healthy(&self) -> bool;
    /// Prometheus text exposition of the server's counters.
    fn prometheus(&self) -> String;
    /// Extra lines for the /healthz body (e.g. one per trunk with its registration state).
    fn health_details(&self) -> String {
        String::new()
    }
}

/// The whole HTTP application: ops endpoints, the admin site, the operator area and the JSON API.
/// `recordings` serves the files the `recordings` table points at; `hooks` remove a deleted organization's
/// recordings and page requests opened through the API.
pub fn app(status: Arc<dyn StatusSource>, store: oncall_core::Store, config: WebConfig, recordings: Arc<dyn RecordingSource>, hooks: Hooks) -> Router {
    let force_tls = config.force_secure_cookies;
    let (access, max_body) = (config.metrics_access.clone(), config.max_body_bytes);
    let state = AppState::new(store, config, recordings).with_hooks(hooks);
    router(status, access)
        .merge(pages::routes(state.clone()))
        .merge(browser_phone::routes(state.clone()))
        .merge(api::routes(state))
        // Every extractor reads at most this much; the upload route raises it for itself.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(force_tls, security_headers::add))
}

/// The operational endpoints alone (`/healthz`, `/metrics`, the latter as `access` allows).
pub fn router(status: Arc<dyn StatusSource>, access: MetricsAccess) -> Router {
    let state = (status, Arc::new(access));
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(state)
}

/// 200 while SIP and the database serve; a failing trunk is reported in the body, not as a failure,
/// because calls from other trunks and PBXs are still answered. The details (trunk names, their
/// registration errors) go only to those `[http] metrics_access` lets see `/metrics`; a load
/// balancer elsewhere needs only the status.
async fn healthz(State((s, access)): State<(Arc<dyn StatusSource>, Arc<MetricsAccess>)>, ext: axum::http::Extensions, headers: axum::http::HeaderMap) -> impl IntoResponse {
    let (status, head) = if s.healthy() { (StatusCode::OK, "ok\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting\n") };
    let peer = ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let details = if access.check(peer, &headers).is_ok() { s.health_details() } else { String::new() };
    (status, format!("{head}{details}"))
}

async fn metrics(State((s, access)): State<(Arc<dyn StatusSource>, Arc<MetricsAccess>)>, ext: axum::http::Extensions, headers: axum::http::HeaderMap) -> axum::response::Response {
    let peer = ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    if let Err(status) = access.check(peer, &headers) {
        return (status, "metrics are not available to you ([http] metrics_access)\n").into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus()).into_response()
}
