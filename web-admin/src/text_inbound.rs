//! `POST /api/v1/texts/inbound`: replies to text notifications, posted by an SMS gateway (issue 6
//! item 6).
//!
//! The body is a Twilio-style form (`From`, `Body`; other fields are ignored) or JSON with the same
//! keys (`from`/`body` too). The gateway proves itself with the shared secret `[texts]
//! inbound_token`, as `?token=` or the `X-OnCall-Token` header (compared in constant time); without a
//! configured token every post gets 403. What a reply does is the binary's business ([`TextInbound`]);
//! the answer sentence goes back as TwiML (`<Response><Message>…`) so a Twilio number replies with
//! it, or as JSON when the post was JSON.
//!
//! Not here: Twilio's `X-Twilio-Signature` check (the shared token stands in for it).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Handles one reply: `from` (a phone number or SIP URI) and its text; returns the answer to send back.
pub trait TextInbound: Send + Sync + 'static {
    fn reply(&self, from: String, body: String) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

#[derive(Clone)]
struct Inbound {
    handler: Arc<dyn TextInbound>,
    token: Arc<str>,
}

/// The route, to merge into the app.
pub fn routes(handler: Arc<dyn TextInbound>, token: &str) -> Router {
    Router::new()
        .route("/api/v1/texts/inbound", post(inbound))
        .with_state(Inbound {
            handler,
            token: token.into(),
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn inbound(
    State(s): State<Inbound>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let given = query
        .get("token")
        .map(String::as_str)
        .or_else(|| headers.get("x-oncall-token").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    if s.token.is_empty() || !constant_time_eq(given.as_bytes(), s.token.as_bytes()) {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields: HashMap<String, String> = if json {
        match serde_json::from_slice::<HashMap<String, serde_json::Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
            Err(_) => return (StatusCode::BAD_REQUEST, "body is not a JSON object\n").into_response(),
        }
    } else {
        match serde_urlencoded::from_bytes(&body) {
            Ok(m) => m,
            Err(_) => return (StatusCode::BAD_REQUEST, "body is not a form\n").into_response(),
        }
    };
    let get = |k: &str| fields.get(k).or_else(|| fields.get(&k.to_ascii_lowercase())).cloned();
    let (Some(from), Some(text)) = (get("From"), get("Body")) else {
        return (StatusCode::BAD_REQUEST, "From and Body are required\n").into_response();
    };
    let answer = s.handler.reply(from, text).await;
    if json {
        axum::Json(serde_json::json!({ "reply": answer })).into_response()
    } else {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(&answer)
        );
        ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
    }
}
