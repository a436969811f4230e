//! The alert receivers (issue 20) driven through tower's `oneshot` on a fresh store: Alertmanager groups,
//! Events API v2 de-duplication, and bad input refused with a reason and nothing stored.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use oncall_core::{RequestId, RequestStatus, Timestamp};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::*;
use tower::ServiceExt;

#[derive(Default)]
struct Paged(Mutex<Vec<(RequestId, String)>>);

impl oncall_web::alerts::AlertPager for Paged {
    fn opened(&self, request: RequestId, caller: String) {
        self.0.lock().unwrap().push((request, caller));
    }
}

async fn post(app: &axum::Router, path: &str, content_type: &str, auth: Option<&str>, body: String) -> (StatusCode, Value) {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type);
    if let Some(key) = auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let resp = app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn group(status: &str, alerts: usize) -> String {
    let alerts: Vec<Value> = (0..alerts).map(|i| json!({"status": status, "labels": {"alertname": "DiskFull", "instance": format!("db{i}")}, "annotations": {}})).collect();
    json!({"version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": status, "receiver": "oncall", "commonLabels": {"alertname": "DiskFull"},
           "commonAnnotations": {"summary": "Disk almost full"}, "alerts": alerts})
    .to_string()
}

#[tokio::test]
async fn an_alert_group_pages_once_and_its_resolution_completes_it() {
    let f = fixture().await;
    let (_, key) = f.store.create_integration(f.org_a, "Alertmanager", None, Timestamp::now()).await.unwrap();
    let paged = Arc::new(Paged::default());
    let app = oncall_web::alerts::routes(f.store.clone(), Some(paged.clone()));
    let mut request = None;
    for n in [1, 100, 3] {
        let (status, body) = post(&app, "/api/v1/alerts/alertmanager", "application/json", Some(&key), group("firing", n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["request_id"].as_i64();
        assert!(request.is_none() || request == id, "one request for the group: {body}");
        request = id;
    }
    let id = RequestId(request.unwrap());
    assert_eq!(paged.0.lock().unwrap().clone(), vec![(id, "Alertmanager".to_string())], "paged once");
    let r = f.store.request(f.org_a, id).await.unwrap();
    assert_eq!(r.summary, "Disk almost full");
    assert_eq!((r.source.as_str(), r.alert_count), ("alert", 3), "the group was delivered three times");
    assert!(f.store.request(f.org_b, id).await.is_err(), "the key's organization only");
    let (status, _) = post(&app, "/api/v1/alerts/alertmanager", "application/json", Some(&key), group("resolved", 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().state.status(), RequestStatus::Completed);
}

#[tokio::test]
async fn events_v2_triggers_with_one_dedup_key_open_one_request() {
    let f = fixture().await;
    let (_, key) = f.store.create_integration(f.org_a, "Nagios", None, Timestamp::now()).await.unwrap();
    let paged = Arc::new(Paged::default());
    let app = oncall_web::alerts::routes(f.store.clone(), Some(paged.clone()));
    let event = |action: &str| json!({"routing_key": key, "event_action": action, "dedup_key": "web-down", "payload": {"summary": "Website down", "source": "web1", "severity": "critical"}}).to_string();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, body) = post(&app, "/v2/enqueue", "application/json", None, event("trigger")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!((body["status"].as_str(), body["dedup_key"].as_str()), (Some("success"), Some("web-down")));
        ids.push(body["request_id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one request");
    assert_eq!(paged.0.lock().unwrap().len(), 1, "one page");
    let id = RequestId(ids[0]);
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().summary, "critical: Website down on web1");
    let (status, _) = post(&app, "/api/v1/alerts/events", "application/json", None, event("acknowledge")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().state.status(), RequestStatus::Acknowledged);
    let (status, _) = post(&app, "/v2/enqueue", "application/json", None, event("resolve")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().state.status(), RequestStatus::Completed);
    // A trigger without a dedup_key gets one made up, which the answer carries.
    let (status, body) = post(&app, "/v2/enqueue", "application/json", None, json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "x"}}).to_string()).await;
    assert!(status == StatusCode::ACCEPTED && body["dedup_key"].as_str().is_some_and(|k| k.len() == 32), "{body}");
}

#[tokio::test]
async fn bad_alerts_get_a_reason_and_store_nothing() {
    let f = fixture().await;
    let now = Timestamp::now();
    let (revoked, old) = f.store.create_integration(f.org_a, "Old", None, now).await.unwrap();
    f.store.revoke_integration(f.org_a, revoked.id, now).await.unwrap();
    let (_, key) = f.store.create_integration(f.org_a, "Script", None, now).await.unwrap();
    let paged = Arc::new(Paged::default());
    let app = oncall_web::alerts::routes(f.store.clone(), Some(paged.clone()));
    let before = f.store.list_requests(f.org_a, 1000).await.unwrap().len();
    let ok = json!({"summary": "Backup failed"}).to_string();
    let cases: Vec<(&str, &str, Option<&str>, String, StatusCode, &str)> = vec![
        ("/api/v1/alerts", "application/json", None, ok.clone(), StatusCode::UNAUTHORIZED, "integration key"),
        ("/api/v1/alerts", "application/json", Some("oci_nope"), ok.clone(), StatusCode::FORBIDDEN, "unknown or revoked"),
        ("/api/v1/alerts", "application/json", Some(&old), ok.clone(), StatusCode::FORBIDDEN, "unknown or revoked"),
        ("/api/v1/alerts", "text/plain", Some(&key), ok.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json"),
        ("/api/v1/alerts", "application/json", Some(&key), "{\"summary\": ".into(), StatusCode::BAD_REQUEST, "not valid JSON"),
        ("/api/v1/alerts", "application/json", Some(&key), "[1, 2]".into(), StatusCode::BAD_REQUEST, "JSON object"),
        ("/api/v1/alerts", "application/json", Some(&key), json!({"summary": ""}).to_string(), StatusCode::BAD_REQUEST, "needs a summary"),
        ("/api/v1/alerts", "application/json", Some(&key), format!("{{\"summary\": \"{}\"}}", "x".repeat(300 * 1024)), StatusCode::PAYLOAD_TOO_LARGE, "KiB"),
        ("/api/v1/alerts/alertmanager", "application/json", Some(&key), json!({"status": "firing"}).to_string(), StatusCode::BAD_REQUEST, "groupKey"),
        ("/v2/enqueue", "application/json", None, json!({"routing_key": key, "event_action": "explode", "payload": {"summary": "x"}}).to_string(), StatusCode::BAD_REQUEST, "event_action"),
        ("/v2/enqueue", "application/json", None, json!({"routing_key": key, "event_action": "trigger"}).to_string(), StatusCode::BAD_REQUEST, "payload.summary"),
    ];
    for (path, content_type, auth, body, want, reason) in cases {
        let (status, answer) = post(&app, path, content_type, auth, body).await;
        assert_eq!(status, want, "{path} {content_type} {auth:?}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(reason)), "{path}: {answer} should say {reason:?}");
    }
    assert_eq!(f.store.list_requests(f.org_a, 1000).await.unwrap().len(), before, "nothing stored");
    assert!(paged.0.lock().unwrap().is_empty(), "nothing paged");
    let (status, body) = post(&app, "/api/v1/alerts", "application/json", Some(&key), ok).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Grafana's webhook contact point (the Alertmanager shape plus its own fields): firing opens a request with the
/// title as summary (no summary annotation) and the labels in its log; resolved completes it.
#[tokio::test]
async fn a_grafana_alert_opens_and_resolves_a_request() {
    let f = fixture().await;
    let (_, key) = f.store.create_integration(f.org_a, "Grafana", None, Timestamp::now()).await.unwrap();
    let app = oncall_web::alerts::routes(f.store.clone(), None);
    let grafana = |status: &str| {
        json!({
            "receiver": "OnCall", "status": status, "orgId": 1, "groupKey": "{}/{}:{alertname=\"High latency\"}",
            "alerts": [{"status": status, "labels": {"alertname": "High latency", "grafana_folder": "Web"}, "annotations": {},
                        "startsAt": "2026-12-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://grafana/alerting/1",
                        "fingerprint": "57c6d9296de2ad39", "values": {"A": 812.5}}],
            "groupLabels": {"alertname": "High latency"}, "commonLabels": {"alertname": "High latency", "grafana_folder": "Web"},
            "commonAnnotations": {}, "externalURL": "http://grafana/", "version": "1", "truncatedAlerts": 0,
            "title": format!("[{}:1] High latency (Web)", status.to_uppercase()), "state": "alerting", "message": "**Firing**"
        })
        .to_string()
    };
    let (status, body) = post(&app, &format!("/api/v1/alerts/alertmanager?key={key}"), "application/json", None, grafana("firing")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = RequestId(body["request_id"].as_i64().unwrap());
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().summary, "[FIRING:1] High latency (Web)");
    let log = f.store.request_events(f.org_a, id).await.unwrap();
    assert!(log.iter().any(|e| e.kind == "alert" && e.detail.contains("[alertname=High latency, grafana_folder=Web]")), "{log:?}");
    let (status, _) = post(&app, &format!("/api/v1/alerts/alertmanager?key={key}"), "application/json", None, grafana("resolved")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.store.request(f.org_a, id).await.unwrap().state.status(), RequestStatus::Completed);
}
