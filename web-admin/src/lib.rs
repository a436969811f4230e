//! OnCall's web admin site and JSON API. For now it serves the operational endpoints every
//! deployment needs: `/healthz` for load balancers and `/metrics` for Prometheus. The manager and
//! employee pages (issue 5) will be added here on top of the domain crate.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What the HTTP side asks of the running server.
pub trait StatusSource: Send + Sync + 'static {
    /// Ready to take calls (transports bound, database reachable).
    fn healthy(&self) -> bool;
    /// Prometheus text exposition of the server's counters.
    fn prometheus(&self) -> String;
}

pub fn router(status: Arc<dyn StatusSource>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(status)
}

async fn healthz(State(s): State<Arc<dyn StatusSource>>) -> impl IntoResponse {
    if s.healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn metrics(State(s): State<Arc<dyn StatusSource>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus())
}
