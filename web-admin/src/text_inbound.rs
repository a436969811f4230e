//! `POST /api/v1/texts/inbound`: replies to text notifications, posted by an SMS gateway (issue 6
//! item 6).
//!
//! The body is a Twilio-style form (`From`, `Body`; other fields are ignored) or JSON with the same
//! keys (`from`/`body` too). The `From` of a post is only believed once the post is proven to come
//! from the gateway (issue 15 item 1: a forged `ACK 41` took someone else's request), by
//! `[texts] inbound_signature`:
//! - `"twilio"`: `X-Twilio-Signature` must be Twilio's HMAC-SHA1 of `[http] public_url` + path +
//!   query and the sorted form fields under the auth token `[texts] token` (`signature.rs`);
//! - `"token"` (default): the shared secret `[texts] inbound_token` (at least 32 characters, checked
//!   at start-up), as `?token=` or the `X-OnCall-Token` header; without a token every post gets 403.
//!
//! Each source address is throttled (`throttle.rs`): posts per minute, and after a few refused posts
//! nothing more for a while (429 with `Retry-After`). A refused post gets 403 and reaches nothing.
//! What a reply does is the binary's business ([`TextInbound`]); the answer sentence goes back as
//! TwiML (`<Response><Message>…`) so a Twilio number replies with it, or as JSON when the post was JSON.

mod signature;
mod throttle;

pub use signature::{twilio_signature, twilio_signature_valid};
pub use throttle::{Throttle, ThrottleConfig};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use oncall_core::secret::constant_time_eq;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Posts larger than this are refused (an SMS reply is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Handles one reply: `from` (a phone number or SIP URI) and its text; returns the answer to send back.
pub trait TextInbound: Send + Sync + 'static {
    fn reply(&self, from: String, body: String) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// How a post proves it comes from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundAuth {
    /// `X-Twilio-Signature` under `auth_token`, over `public_url` (scheme://host[:port][/prefix],
    /// as Twilio posts to it) followed by the request's path and query.
    Twilio { auth_token: String, public_url: String },
    /// The shared secret as `?token=` or `X-OnCall-Token`; empty refuses every post.
    Token(String),
}

#[derive(Clone)]
struct Inbound {
    handler: Arc<dyn TextInbound>,
    auth: Arc<InboundAuth>,
    throttle: Arc<Mutex<Throttle>>,
}

/// The route, to merge into the app.
pub fn routes(handler: Arc<dyn TextInbound>, auth: InboundAuth, throttle: ThrottleConfig) -> Router {
    Router::new()
        .route("/api/v1/texts/inbound", post(inbound))
        .with_state(Inbound {
            handler,
            auth: Arc::new(auth),
            throttle: Arc::new(Mutex::new(Throttle::new(throttle))),
        })
}

/// Whether the post is proven to come from the gateway.
fn proven(
    auth: &InboundAuth,
    path_and_query: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> bool {
    match auth {
        InboundAuth::Token(token) => {
            let given = query
                .get("token")
                .map(String::as_str)
                .or_else(|| headers.get("x-oncall-token").and_then(|v| v.to_str().ok()))
                .unwrap_or("");
            !token.is_empty() && constant_time_eq(given, token)
        }
        InboundAuth::Twilio { auth_token, public_url } => {
            // Twilio signs form posts only; a JSON post cannot carry its signature.
            let (Some(form), Some(given)) = (form, headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()))
            else {
                return false;
            };
            let url = format!("{}{path_and_query}", public_url.trim_end_matches('/'));
            twilio_signature_valid(auth_token, &url, form, given)
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn inbound(State(s): State<Inbound>, req: Request) -> Response {
    // Without the connection's address (a test calling the router directly) every post shares one budget.
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let now = Instant::now();
    let admitted = s.throttle.lock().unwrap_or_else(|p| p.into_inner()).admit(ip, now);
    if let Err(wait) = admitted {
        tracing::warn!(source = %ip, "text webhook: source throttled; 429");
        let retry = wait.as_secs().max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry)],
            "too many requests\n",
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response();
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Every field in order, for the signature (which also covers duplicates).
    let form: Option<Vec<(String, String)>> = (!json).then(|| serde_urlencoded::from_bytes(&body).ok()).flatten();
    if !proven(&s.auth, &path_and_query, &query, &headers, form.as_deref()) {
        s.throttle.lock().unwrap_or_else(|p| p.into_inner()).failed(ip, now);
        tracing::warn!(source = %ip, "text webhook: post without a valid gateway signature or token; 403");
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let fields: HashMap<String, String> = if json {
        match serde_json::from_slice::<HashMap<String, serde_json::Value>>(&body) {
            Ok(m) => m
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
            Err(_) => return (StatusCode::BAD_REQUEST, "body is not a JSON object\n").into_response(),
        }
    } else {
        match form {
            Some(pairs) => pairs.into_iter().collect(),
            None => return (StatusCode::BAD_REQUEST, "body is not a form\n").into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt as _;

    /// Counts the replies that got through to the binary (a forged one must not).
    #[derive(Default)]
    struct Recorder(AtomicUsize, Mutex<Vec<(String, String)>>);

    impl TextInbound for Recorder {
        fn reply(&self, from: String, body: String) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.lock().unwrap().push((from, body));
            Box::pin(async { "OnCall: request #41 is yours.".to_string() })
        }
    }

    const PUBLIC: &str = "https://oncall.example.com";
    const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const FORM: &str = "From=%2B12125550103&Body=ACK+41&MessageSid=SM1";

    fn twilio_app(rec: Arc<Recorder>, throttle: ThrottleConfig) -> Router {
        let auth = InboundAuth::Twilio {
            auth_token: AUTH_TOKEN.into(),
            public_url: format!("{PUBLIC}/"),
        };
        routes(rec, auth, throttle)
    }

    async fn post(app: &Router, uri: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, String) {
        let mut req = axum::http::Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn signed(path: &str) -> String {
        let form: Vec<(String, String)> = serde_urlencoded::from_str(FORM).unwrap();
        twilio_signature(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &form)
    }

    #[tokio::test]
    async fn a_forged_twilio_post_gets_403_and_reaches_nothing() {
        let rec = Arc::new(Recorder::default());
        // More failures than the default allows, to try every forgery here.
        let app = twilio_app(rec.clone(), ThrottleConfig { max_failures: 10, ..ThrottleConfig::default() });
        let path = "/api/v1/texts/inbound";
        // The attack: a plain post with a known employee's number, no signature.
        assert_eq!(post(&app, path, &[], FORM).await.0, StatusCode::FORBIDDEN);
        // A signature made with another key, or for another URL, or over other fields.
        let wrong_key = twilio_signature(
            "guess",
            &format!("{PUBLIC}{path}"),
            &serde_urlencoded::from_str::<Vec<(String, String)>>(FORM).unwrap(),
        );
        assert_eq!(
            post(&app, path, &[("X-Twilio-Signature", &wrong_key)], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        let other_url = signed("/elsewhere");
        assert_eq!(
            post(&app, path, &[("X-Twilio-Signature", &other_url)], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        let good = signed(path);
        let altered = FORM.replace("ACK+41", "DONE+41");
        assert_eq!(
            post(&app, path, &[("X-Twilio-Signature", &good)], &altered).await.0,
            StatusCode::FORBIDDEN
        );
        // The shared-token way does not open the Twilio mode.
        assert_eq!(
            post(&app, &format!("{path}?token={AUTH_TOKEN}"), &[], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(rec.0.load(Ordering::SeqCst), 0, "no forged reply reached the binary");

        // Twilio's own post, signed over the public URL.
        let (status, body) = post(&app, path, &[("X-Twilio-Signature", &good)], FORM).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("<Message>OnCall: request #41 is yours.</Message>"),
            "{body}"
        );
        assert_eq!(
            rec.1.lock().unwrap().as_slice(),
            &[("+12125550103".to_string(), "ACK 41".to_string())]
        );
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_gets_403_and_reaches_nothing() {
        let rec = Arc::new(Recorder::default());
        let token = "a-shared-secret-of-at-least-32-chars!";
        let app = routes(rec.clone(), InboundAuth::Token(token.into()), ThrottleConfig::default());
        let path = "/api/v1/texts/inbound";
        assert_eq!(post(&app, path, &[], FORM).await.0, StatusCode::FORBIDDEN);
        assert_eq!(
            post(&app, &format!("{path}?token=nope"), &[], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(&app, path, &[("X-OnCall-Token", &token[..31])], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(rec.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            post(&app, path, &[("X-OnCall-Token", token)], FORM).await.0,
            StatusCode::OK
        );
        // An empty token refuses everything, even an empty guess.
        let closed = routes(
            rec.clone(),
            InboundAuth::Token(String::new()),
            ThrottleConfig::default(),
        );
        assert_eq!(
            post(&closed, &format!("{path}?token="), &[], FORM).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(rec.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_signature_guesser_is_throttled_then_shut_out() {
        let rec = Arc::new(Recorder::default());
        let app = twilio_app(
            rec.clone(),
            ThrottleConfig {
                posts_per_minute: 0,
                max_failures: 3,
                ..ThrottleConfig::default()
            },
        );
        let path = "/api/v1/texts/inbound";
        for guess in ["AAAA", "BBBB", "CCCC"] {
            assert_eq!(
                post(&app, path, &[("X-Twilio-Signature", guess)], FORM).await.0,
                StatusCode::FORBIDDEN
            );
        }
        // Shut out: even the right signature waits now.
        let good = signed(path);
        let app2 = app.clone();
        let mut req = axum::http::Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        req = req.header("X-Twilio-Signature", good.as_str());
        let resp = app2.oneshot(req.body(Body::from(FORM)).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.headers().get(header::RETRY_AFTER).is_some());
        assert_eq!(rec.0.load(Ordering::SeqCst), 0);
    }
}
