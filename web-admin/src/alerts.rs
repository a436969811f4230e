//! Receivers for monitoring (issue 20): alerts open requests that page the on-call person like a call does.
//!
//! - `POST /api/v1/alerts/alertmanager`: Prometheus Alertmanager's webhook (payload version 4) and Grafana's
//!   webhook contact point (the same shape). One request per alert group (`groupKey`): `firing` opens it or
//!   counts on it, `resolved` completes it.
//! - `POST /v2/enqueue` (and `/api/v1/alerts/events`): PagerDuty's Events API v2 (`routing_key` = the key,
//!   `event_action` trigger/acknowledge/resolve, `dedup_key`, `payload.summary`), answered as PagerDuty does
//!   (202 with the `dedup_key`), so tools that speak it work with only the URL changed.
//! - `POST /api/v1/alerts`: generic JSON (`summary`, `dedup_key`, `action`), for scripts.
//! - `GET|POST /api/v1/heartbeat`: a beat of a heartbeat monitor (a key made with an interval); a missed beat
//!   opens a request (`oncall_paging::heartbeats`), the next beat resolves it.
//!
//! Each is authenticated by an integration key (`Authorization: Bearer <key>` or `?key=`; Events v2 also by
//! `routing_key`), which also says the organization. Bad input gets a 4xx with a reason and stores nothing:
//! no key 401, an unknown or revoked one 403, not JSON 415, over 256 KiB 413, malformed or missing fields 400.
//! What an opened request does next (paging) is the binary's ([`AlertPager`]).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use oncall_core::store::{AlertOutcome, Integration};
use oncall_core::{RequestId, Store, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const MAX_BODY: usize = 256 * 1024;

/// Starts paging a request an alert opened (the caller shown and announced is the integration's name).
pub trait AlertPager: Send + Sync + 'static {
    fn opened(&self, request: RequestId, caller: String);
}

#[derive(Clone)]
struct Alerts {
    store: Store,
    pager: Option<Arc<dyn AlertPager>>,
}

/// The receivers; `pager` starts paging opened requests (`None`: paging is off, requests are only stored).
pub fn routes(store: Store, pager: Option<Arc<dyn AlertPager>>) -> Router {
    Router::new()
        .route("/api/v1/alerts/alertmanager", post(alertmanager))
        .route("/api/v1/alerts/events", post(events_v2))
        .route("/v2/enqueue", post(events_v2))
        .route("/api/v1/alerts", post(generic))
        .route("/api/v1/heartbeat", post(heartbeat).get(heartbeat))
        .with_state(Alerts { store, pager })
}

/// A refusal: status and reason, as JSON (`{"status": "invalid event", "message": …}` like PagerDuty's).
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::info!(%status, %message, "alert refused");
    (status, Json(json!({ "status": "invalid event", "message": message }))).into_response()
}

/// The body as JSON, or the refusal.
async fn json_body(req: Request) -> Result<(HeaderMap, HashMap<String, String>, Value), Response> {
    let (parts, body) = req.into_parts();
    let is_json = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        return Err(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json"));
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {} KiB", MAX_BODY / 1024)));
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(refuse(StatusCode::BAD_REQUEST, "the body must be a JSON object"));
    }
    let query: HashMap<String, String> = parts.uri.query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    Ok((parts.headers, query, value))
}

/// The integration named by the bearer header, `?key=` or (Events v2) the body's `routing_key`.
async fn integration(store: &Store, headers: &HeaderMap, query: &HashMap<String, String>, routing_key: Option<&str>) -> Result<Integration, Response> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(key) = bearer.or(query.get("key").map(String::as_str)).or(routing_key).filter(|k| !k.is_empty()) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "send the integration key: Authorization: Bearer <key>, ?key=<key> or routing_key (oncall integration add)"));
    };
    match store.integration_by_secret(key).await {
        Ok(Some(i)) => Ok(i),
        Ok(None) => Err(refuse(StatusCode::FORBIDDEN, "unknown or revoked integration key")),
        Err(e) => {
            tracing::error!(error = %e, "alert: cannot look the key up");
            Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later"))
        }
    }
}

/// What to do with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trigger" | "firing" | "open" => Some(Action::Trigger),
            "acknowledge" | "ack" => Some(Action::Acknowledge),
            "resolve" | "resolved" | "close" => Some(Action::Resolve),
            _ => None,
        }
    }
}

/// Applies the alert (`detail`: its line in the request's log) and starts paging a request it opened.
async fn apply(a: &Alerts, integration: &Integration, action: Action, dedup_key: &str, summary: &str, detail: &str) -> Result<AlertOutcome, Response> {
    let now = Timestamp::now();
    let store = &a.store;
    let done = match action {
        Action::Trigger => store.alert_trigger_detailed(integration, dedup_key, summary, detail, now).await,
        Action::Acknowledge => store.alert_acknowledge(integration, dedup_key, now).await,
        Action::Resolve => store.alert_resolve(integration, dedup_key, now).await,
    };
    let outcome = match done {
        Ok(o) => o,
        Err(oncall_core::StoreError::Invalid(e)) => return Err(refuse(StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "alert: cannot store it");
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later"));
        }
    };
    tracing::info!(integration = %integration.name, org = %integration.org, ?action, %dedup_key, ?outcome, "alert");
    if let (AlertOutcome::Opened(request), Some(pager)) = (outcome, &a.pager) {
        pager.opened(request, integration.name.clone());
    }
    Ok(outcome)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// The sentence an alert group is announced with: its summary annotation, Grafana's title, or the alert name,
/// with how many alerts it holds.
fn group_summary(body: &Value) -> String {
    let first = body.get("alerts").and_then(|a| a.get(0)).cloned().unwrap_or(Value::Null);
    let base = text(body, &["commonAnnotations", "summary"])
        .or_else(|| text(&first, &["annotations", "summary"]))
        .or_else(|| text(body, &["title"]))
        .or_else(|| text(body, &["commonLabels", "alertname"]))
        .or_else(|| text(&first, &["labels", "alertname"]))
        .unwrap_or("Alert");
    let n = body.get("alerts").and_then(Value::as_array).map_or(0, Vec::len);
    if n > 1 {
        format!("{base} ({n} alerts)")
    } else {
        base.to_string()
    }
}

/// The group's common labels, `name=value` sorted by name, for the request's log ("alertname=DiskFull, severity=page").
fn group_labels(body: &Value) -> String {
    let Some(labels) = body.get("commonLabels").and_then(Value::as_object) else { return String::new() };
    let mut pairs: Vec<String> = labels.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
    pairs.sort();
    pairs.join(", ")
}

async fn alertmanager(State(a): State<Alerts>, req: Request) -> Response {
    let (headers, query, body) = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let integration = match integration(&a.store, &headers, &query, None).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (Some(group), Some(status)) = (text(&body, &["groupKey"]), text(&body, &["status"])) else {
        return refuse(StatusCode::BAD_REQUEST, "an Alertmanager webhook needs groupKey and status (payload version 4)");
    };
    let Some(action) = Action::parse(status).filter(|a| *a != Action::Acknowledge) else {
        return refuse(StatusCode::BAD_REQUEST, format!("status {status:?} is neither firing nor resolved"));
    };
    let summary = group_summary(&body);
    let detail = match group_labels(&body) {
        labels if labels.is_empty() => summary.clone(),
        labels => format!("{summary} [{labels}]"),
    };
    match apply(&a, &integration, action, group, &summary, &detail).await {
        Ok(outcome) => (StatusCode::OK, Json(json!({ "status": "ok", "request_id": outcome.request().map(|r| r.0) }))).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct EventsV2 {
    routing_key: Option<String>,
    event_action: String,
    dedup_key: Option<String>,
    payload: Option<EventsV2Payload>,
}

#[derive(Debug, Deserialize)]
struct EventsV2Payload {
    summary: String,
    source: Option<String>,
    severity: Option<String>,
}

async fn events_v2(State(a): State<Alerts>, req: Request) -> Response {
    let (headers, query, body) = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let event: EventsV2 = match serde_json::from_value(body) {
        Ok(e) => e,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("not an Events API v2 event: {e}")),
    };
    let integration = match integration(&a.store, &headers, &query, event.routing_key.as_deref()).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(action) = Action::parse(&event.event_action) else {
        return refuse(StatusCode::BAD_REQUEST, format!("event_action {:?} is not trigger, acknowledge or resolve", event.event_action));
    };
    let dedup_key = match (event.dedup_key.filter(|k| !k.trim().is_empty()), action) {
        (Some(k), _) => k,
        // PagerDuty makes one up for a trigger without one (and returns it).
        (None, Action::Trigger) => oncall_core::secret::new_token()[..32].to_string(),
        (None, _) => return refuse(StatusCode::BAD_REQUEST, "acknowledge and resolve need the dedup_key of the trigger"),
    };
    let summary = match (&event.payload, action) {
        (Some(p), _) => {
            let from = p.source.as_deref().filter(|s| !s.is_empty()).map(|s| format!(" on {s}")).unwrap_or_default();
            let severity = p.severity.as_deref().filter(|s| !s.is_empty()).map(|s| format!("{s}: ")).unwrap_or_default();
            format!("{severity}{}{from}", p.summary.trim())
        }
        (None, Action::Trigger) => return refuse(StatusCode::BAD_REQUEST, "a trigger needs payload.summary"),
        (None, _) => String::new(),
    };
    match apply(&a, &integration, action, &dedup_key, &summary, &summary).await {
        Ok(outcome) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key, "request_id": outcome.request().map(|r| r.0) })),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct Generic {
    summary: Option<String>,
    dedup_key: Option<String>,
    action: Option<String>,
}

async fn generic(State(a): State<Alerts>, req: Request) -> Response {
    let (headers, query, body) = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let alert: Generic = match serde_json::from_value(body) {
        Ok(g) => g,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("expected {{\"summary\", \"dedup_key\", \"action\"}}: {e}")),
    };
    let integration = match integration(&a.store, &headers, &query, None).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(action) = Action::parse(alert.action.as_deref().unwrap_or("trigger")) else {
        return refuse(StatusCode::BAD_REQUEST, "action must be trigger, acknowledge or resolve");
    };
    let summary = alert.summary.unwrap_or_default();
    if action == Action::Trigger && summary.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "a trigger needs a summary");
    }
    let dedup_key = alert.dedup_key.filter(|k| !k.trim().is_empty()).unwrap_or_else(|| summary.trim().to_string());
    if dedup_key.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "acknowledge and resolve need the dedup_key");
    }
    match apply(&a, &integration, action, &dedup_key, &summary, &summary).await {
        Ok(outcome) => (StatusCode::ACCEPTED, Json(json!({ "status": "ok", "dedup_key": dedup_key, "request_id": outcome.request().map(|r| r.0) }))).into_response(),
        Err(r) => r,
    }
}

/// A beat of a heartbeat monitor (GET or POST, any body: cron jobs `curl` it): remembered, and the request a
/// missed beat opened is resolved.
async fn heartbeat(State(a): State<Alerts>, req: Request) -> Response {
    let query: HashMap<String, String> = req.uri().query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    let integration = match integration(&a.store, req.headers(), &query, None).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match a.store.heartbeat(&integration, Timestamp::now()).await {
        Ok(outcome) => {
            tracing::debug!(integration = %integration.name, ?outcome, "heartbeat");
            (StatusCode::OK, Json(json!({ "status": "ok", "resolved_request_id": outcome.request().map(|r| r.0) }))).into_response()
        }
        Err(oncall_core::StoreError::Invalid(e)) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "heartbeat: cannot store it");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_announced_by_its_summary_and_size() {
        let body = json!({"commonAnnotations": {"summary": "Disk almost full on db1"}, "alerts": [{}, {}, {}]});
        assert_eq!(group_summary(&body), "Disk almost full on db1 (3 alerts)");
        let body = json!({"commonLabels": {"alertname": "InstanceDown"}, "alerts": [{"labels": {"alertname": "InstanceDown"}}]});
        assert_eq!(group_summary(&body), "InstanceDown");
        let grafana = json!({"title": "[FIRING:1] High latency", "alerts": [{"labels": {}}]});
        assert_eq!(group_summary(&grafana), "[FIRING:1] High latency");
        assert_eq!(group_summary(&json!({})), "Alert");
        assert_eq!(group_labels(&json!({"commonLabels": {"severity": "page", "alertname": "DiskFull"}})), "alertname=DiskFull, severity=page");
    }
}
