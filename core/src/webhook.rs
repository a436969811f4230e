//! Outbound webhooks: what OnCall POSTs when a request changes, how it is signed, and when a
//! failed delivery is tried again.
//!
//! Everything here is pure: the store (`store/webhooks.rs`) turns the append-only
//! `request_events` log into a queue of deliveries and leases them to one instance at a time;
//! `oncall_paging::webhooks` does the HTTP. This module builds the body
//! ([`Payload::json`] or the Slack-compatible [`Payload::slack`]), signs it
//! (`X-OnCall-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, RFC 2104 over
//! SHA-256, the timestamp signed with the body so a captured delivery cannot be replayed later
//! under a fresh timestamp) and says when the next attempt is due ([`RetryPolicy`]: exponential
//! backoff with a cap).
//!
//! Deliberately not here: HTTP, clocks, the database. `docs/webhooks.md` is the receiver's guide.

use crate::ids::{OrgId, RequestId};
use crate::request::{Actor, Request, RequestStatus, Stamp};
use crate::timestamp::{Millis, Timestamp};
use crate::validation::ValidationError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::fmt;

/// The header carrying `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-OnCall-Signature";
/// The header carrying the send time in Unix seconds: the signature's `t`, repeated for logs.
pub const TIMESTAMP_HEADER: &str = "X-OnCall-Timestamp";
/// How old a signed timestamp a receiver should accept (and how far in the future): 5 minutes.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// The header naming the event (`request.created`, ...), handy for routing without parsing.
pub const EVENT_HEADER: &str = "X-OnCall-Event";
/// Prefix of the secrets OnCall generates.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook (row of `webhooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookId(pub i64);

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webhook-{}", self.0)
    }
}

/// One queued delivery (row of `webhook_deliveries`): one event for one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delivery-{}", self.0)
    }
}

/// What a webhook is told about: one per request status the store logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    Created,
    Notifying,
    Answered,
    Acknowledged,
    Completed,
    Abandoned,
    Exhausted,
    /// The caller's message (or a conversation) was transcribed: a `transcribed` event, not a status.
    Transcribed,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 8] = [
        WebhookEvent::Created,
        WebhookEvent::Notifying,
        WebhookEvent::Answered,
        WebhookEvent::Acknowledged,
        WebhookEvent::Completed,
        WebhookEvent::Abandoned,
        WebhookEvent::Exhausted,
        WebhookEvent::Transcribed,
    ];

    /// The name in payloads and the `X-OnCall-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Created => "request.created",
            WebhookEvent::Notifying => "request.notifying",
            WebhookEvent::Answered => "request.answered",
            WebhookEvent::Acknowledged => "request.acknowledged",
            WebhookEvent::Completed => "request.completed",
            WebhookEvent::Abandoned => "request.abandoned",
            WebhookEvent::Exhausted => "request.exhausted",
            WebhookEvent::Transcribed => "request.transcribed",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The request status whose `status` event in `request_events` this is (`None`: not a status event).
    pub fn status(self) -> Option<RequestStatus> {
        Some(match self {
            WebhookEvent::Created => RequestStatus::Received,
            WebhookEvent::Notifying => RequestStatus::Notifying,
            WebhookEvent::Answered => RequestStatus::Answered,
            WebhookEvent::Acknowledged => RequestStatus::Acknowledged,
            WebhookEvent::Completed => RequestStatus::Completed,
            WebhookEvent::Abandoned => RequestStatus::Abandoned,
            WebhookEvent::Exhausted => RequestStatus::Exhausted,
            WebhookEvent::Transcribed => return None,
        })
    }

    /// What `webhook_deliveries.event` holds for it: the status name, or `transcribed`.
    pub fn stored(self) -> &'static str {
        match self.status() {
            Some(s) => s.as_str(),
            None => "transcribed",
        }
    }

    /// The inverse of [`WebhookEvent::stored`].
    pub fn from_stored(s: &str) -> Option<WebhookEvent> {
        match s {
            "transcribed" => Some(WebhookEvent::Transcribed),
            _ => RequestStatus::parse(s).map(WebhookEvent::from_status),
        }
    }

    pub fn from_status(s: RequestStatus) -> WebhookEvent {
        match s {
            RequestStatus::Received => WebhookEvent::Created,
            RequestStatus::Notifying => WebhookEvent::Notifying,
            RequestStatus::Answered => WebhookEvent::Answered,
            RequestStatus::Acknowledged => WebhookEvent::Acknowledged,
            RequestStatus::Completed => WebhookEvent::Completed,
            RequestStatus::Abandoned => WebhookEvent::Abandoned,
            RequestStatus::Exhausted => WebhookEvent::Exhausted,
        }
    }

    /// Past tense for people ("acknowledged").
    fn verb(self) -> &'static str {
        match self {
            WebhookEvent::Created => "opened",
            WebhookEvent::Notifying => "is paging on-call",
            WebhookEvent::Answered => "was answered",
            WebhookEvent::Acknowledged => "was acknowledged",
            WebhookEvent::Completed => "was completed",
            WebhookEvent::Abandoned => "was abandoned",
            WebhookEvent::Exhausted => "was not answered by anyone (escalation exhausted)",
            WebhookEvent::Transcribed => "was transcribed",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// OnCall's JSON (`docs/webhooks.md`), signed.
    #[default]
    Json,
    /// `{"text": "..."}`, what Slack's (and Mattermost's, Rocket.Chat's) incoming webhooks take.
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "slack" => Some(Format::Slack),
            _ => None,
        }
    }
}

/// A configured webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub org: OrgId,
    pub name: String,
    pub url: String,
    pub format: Format,
    /// The events it is sent; empty means all of them.
    pub events: Vec<WebhookEvent>,
    /// The HMAC key. Never serialized: pages and the API show it once, when created.
    #[serde(skip)]
    pub secret: String,
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl Webhook {
    pub fn wants(&self, e: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&e)
    }

    /// The first characters of the secret, to tell secrets apart without showing them.
    pub fn secret_hint(&self) -> String {
        let shown: String = self.secret.chars().take(SECRET_PREFIX.len() + 4).collect();
        format!("{shown}…")
    }
}

/// Input for a new webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub format: Format,
    pub events: Vec<WebhookEvent>,
    /// `None`: generate one (`whsec_` + 64 hex characters).
    pub secret: Option<String>,
}

impl NewWebhook {
    /// Checks the fields; returns the trimmed name, URL and secret (generated when absent).
    pub fn validate(&self) -> Result<(String, String, String), ValidationError> {
        let name = crate::validation::non_blank("name", &self.name)?;
        let url = self.url.trim().to_string();
        validate_url(&url)?;
        let secret = match self.secret.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => new_secret(),
            Some(s) if s.len() < 16 => {
                return Err(ValidationError::new(
                    "secret",
                    "must be at least 16 characters (or leave it empty to generate one)",
                ))
            }
            Some(s) if s.len() > 200 => return Err(ValidationError::new("secret", "must be at most 200 characters")),
            Some(s) if s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(ValidationError::new("secret", "must not contain spaces"))
            }
            Some(s) => s.to_string(),
        };
        Ok((name, url, secret))
    }
}

/// `http://` or `https://` with a host, at most 2000 characters. Where it may point is
/// [`crate::destination::DestinationPolicy`]'s question (the operator's config, asked by the web
/// handlers when saving and by the sender when delivering).
pub fn validate_url(url: &str) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(ValidationError::new("url", m));
    if url.len() > 2000 {
        return bad("must be at most 2000 characters");
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return bad("must start with https:// or http://");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("is not a valid URL (e.g. https://hooks.example.com/oncall)");
    }
    Ok(())
}

/// A fresh secret: `whsec_` and 64 hex characters from the OS generator.
pub fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", crate::secret::new_token())
}

/// `t=<unix_secs>,v1=<hex HMAC-SHA256(secret, "<unix_secs>.<body>")>`: the `X-OnCall-Signature`
/// value. The timestamp is inside the MAC, so a receiver that checks its age refuses replays.
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    format!(
        "t={unix_secs},v1={}",
        hmac_sha256_hex(secret.as_bytes(), &signed_message(unix_secs, body))
    )
}

fn signed_message(unix_secs: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{unix_secs}.").into_bytes();
    m.extend_from_slice(body);
    m
}

/// RFC 2104 HMAC over SHA-256, lowercase hex.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // new_from_slice accepts keys of any length (longer ones are hashed first, RFC 2104 §2).
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a received signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("the signed timestamp is more than {SIGNATURE_TOLERANCE_SECS} s from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// What a receiver does with `X-OnCall-Signature`: the MAC over `"<t>.<body>"` must match (compared
/// in constant time) and `t` must be within [`SIGNATURE_TOLERANCE_SECS`] of `now_unix_secs`.
pub fn verify_signature(secret: &str, body: &[u8], header: &str, now_unix_secs: i64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.trim().split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            // Several v1 entries may be present while a secret is being rotated; any may match.
            Some(("v1", v)) => v1.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now_unix_secs - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = hmac_sha256_hex(secret.as_bytes(), &signed_message(t, body));
    if v1.iter().any(|v| crate::secret::constant_time_eq(&expected, v)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// One event as a receiver sees it.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    /// The `request_events` row id: stable across retries and instances, so receivers can
    /// drop a repeat (after a crash between sending and recording, a delivery is sent again).
    pub event_id: i64,
    pub event: WebhookEvent,
    pub at: Timestamp,
    pub actor: Actor,
    /// The request as it is when the delivery is made (it may have moved on since the event).
    pub request: &'a Request,
    pub organization: &'a crate::Organization,
    /// This send's time (also the `X-OnCall-Timestamp` header).
    pub sent_at: Timestamp,
    /// 1 for the first try.
    pub attempt: u32,
    /// Where a person can open the request, when the server knows its public address.
    pub link: Option<String>,
}

fn rfc3339(t: Timestamp) -> String {
    t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `#12`: how people and texts refer to a request.
pub fn short_id(id: RequestId) -> String {
    format!("#{}", id.0)
}

impl Payload<'_> {
    /// OnCall's JSON body.
    pub fn json(&self) -> Value {
        let r = self.request;
        let stamp = |s: Option<Stamp>| s.map(|s| json!({"at": rfc3339(s.at), "by": s.by.to_string()}));
        let st = r.state;
        let notifying = match st {
            crate::RequestState::Notifying { since } => Some(rfc3339(since)),
            _ => None,
        };
        let exhausted = match st {
            crate::RequestState::Exhausted { at } => Some(rfc3339(at)),
            _ => None,
        };
        let abandoned = match st {
            crate::RequestState::Abandoned { abandoned, .. } => Some(abandoned),
            _ => None,
        };
        json!({
            "id": self.event_id,
            "event": self.event.as_str(),
            "at": rfc3339(self.at),
            "actor": self.actor.to_string(),
            "sent_at": rfc3339(self.sent_at),
            "attempt": self.attempt,
            "organization": {"id": self.organization.id.0, "name": self.organization.name, "slug": self.organization.slug},
            "request": {
                "id": r.id.0,
                "short_id": short_id(r.id),
                "status": st.status().as_str(),
                "caller": r.caller,
                "summary": r.summary,
                "source": r.source,
                "alert_count": r.alert_count,
                "transcript": r.transcript,
                "received_at": rfc3339(r.received_at),
                "notifying_since": notifying,
                "answered": stamp(st.answered()),
                "acknowledged": stamp(st.acknowledged()),
                "completed": stamp(st.completed()),
                "abandoned": stamp(abandoned),
                "exhausted_at": exhausted,
                "url": self.link,
            },
        })
    }

    /// One line for a chat channel.
    pub fn text(&self) -> String {
        let r = self.request;
        let by = match self.actor {
            Actor::Person(_) | Actor::User(_)
                if matches!(
                    self.event,
                    WebhookEvent::Answered | WebhookEvent::Acknowledged | WebhookEvent::Completed
                ) =>
            {
                format!(" by {}", self.actor)
            }
            _ => String::new(),
        };
        let link = self.link.as_deref().map(|l| format!(" <{l}|open>")).unwrap_or_default();
        // A transcription's news is what was said; every other event's is the summary.
        let about = match (self.event, r.transcript.as_deref()) {
            (WebhookEvent::Transcribed, Some(t)) => format!("\u{201c}{}\u{201d}", one_line(t, 300)),
            _ => one_line(&r.summary, 300),
        };
        format!(
            "[{}] Request {} from {} {}{by}: {about}{link}",
            self.organization.name,
            short_id(r.id),
            r.caller,
            self.event.verb(),
        )
    }

    /// `{"text": "..."}` for Slack-compatible incoming webhooks.
    pub fn slack(&self) -> Value {
        json!({"text": self.text()})
    }

    /// The body in `format`, as bytes to send and sign.
    pub fn body(&self, format: Format) -> Vec<u8> {
        let v = match format {
            Format::Json => self.json(),
            Format::Slack => self.slack(),
        };
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

/// When a failed delivery is tried again: `initial`, then doubling, never more than `max_delay`
/// apart; after `max_attempts` attempts it is given up (`None`: never given up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial: Millis,
    pub max_delay: Millis,
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s … capped at 1 hour, 20 attempts (about 14 hours in all).
    fn default() -> Self {
        RetryPolicy {
            initial: Millis::seconds(1),
            max_delay: Millis::hours(1),
            max_attempts: Some(20),
        }
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based): initial · 2^(attempts-1), capped.
    pub fn delay_after(&self, attempts: u32) -> Millis {
        let initial = self.initial.0.max(1);
        let cap = self.max_delay.0.max(initial);
        let shift = attempts.saturating_sub(1).min(62);
        let delay = initial.checked_mul(1i64 << shift).unwrap_or(i64::MAX);
        Millis(delay.min(cap))
    }

    /// The step after attempt number `attempts` (1-based) ended at `now`, `success` or not.
    pub fn after_attempt(&self, attempts: u32, success: bool, now: Timestamp) -> NextStep {
        if success {
            return NextStep::Delivered;
        }
        match self.max_attempts {
            Some(max) if attempts >= max => NextStep::GiveUp,
            _ => NextStep::RetryAt(now + self.delay_after(attempts)),
        }
    }
}

/// A 2xx answer counts as delivered; anything else (3xx included: redirects are not followed,
/// so a moved endpoint shows up in the log) is retried.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestState;
    use crate::store::Organization;
    use crate::{PersonId, RequestId};

    fn org() -> Organization {
        Organization {
            id: OrgId(3),
            name: "Demo Apartments".into(),
            slug: "demo".into(),
            time_zone: chrono_tz::Europe::London,
            created_at: Timestamp(0),
            disabled_at: None,
            limits: Default::default(),
        }
    }

    fn request() -> Request {
        Request {
            id: RequestId(42),
            org: OrgId(3),
            call: None,
            caller: "+12125550142".into(),
            summary: "Water\n leak in 4B".into(),
            received_at: Timestamp(1_717_200_000_000),
            source: "call".into(),
            alert_count: 0,
            transcript: None,
            state: RequestState::Acknowledged {
                answered: None,
                acknowledged: Stamp {
                    at: Timestamp(1_717_200_060_000),
                    by: Actor::Person(PersonId(2)),
                },
            },
        }
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block size is hashed first).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// Issue #15: the old signature covered the body alone, so a captured delivery could be sent
    /// again at any time with a fresh X-OnCall-Timestamp. Now `t` is signed and checked.
    #[test]
    fn the_signature_covers_the_timestamp_and_old_or_moved_timestamps_are_refused() {
        let body = br#"{"id":1}"#;
        let t = 1_793_000_821;
        let header = signature("whsec_secret-0123456789", t, body);
        // Same as: printf '1793000821.{"id":1}' | openssl dgst -sha256 -hmac whsec_secret-0123456789
        assert_eq!(
            header,
            format!(
                "t={t},v1={}",
                hmac_sha256_hex(b"whsec_secret-0123456789", b"1793000821.{\"id\":1}")
            )
        );
        assert_eq!(
            verify_signature("whsec_secret-0123456789", body, &header, t + 10),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_secret-0123456789", body, &header, t - 10),
            Ok(())
        );
        // The attack: replay the captured body and MAC six minutes later.
        assert_eq!(
            verify_signature("whsec_secret-0123456789", body, &header, t + 360),
            Err(SignatureError::Stale)
        );
        // ... or replay it with the timestamp rewritten to now: the MAC no longer matches.
        let v1 = header.split_once(",v1=").unwrap().1;
        let moved = format!("t={},v1={v1}", t + 360);
        assert_eq!(
            verify_signature("whsec_secret-0123456789", body, &moved, t + 360),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_secret-0123456789", b"{\"id\":2}", &header, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("another-secret-0123456789", body, &header, t),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "sha256=abc",
            &format!("v1={v1}"),
            &format!("t=x,v1={v1}"),
            &format!("t={t}"),
        ] {
            assert_eq!(
                verify_signature("whsec_secret-0123456789", body, bad, t),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // During a rotation a receiver may see two v1 values; one matching is enough.
        let two = format!("t={t},v1={},v1={v1}", "0".repeat(64));
        assert_eq!(verify_signature("whsec_secret-0123456789", body, &two, t), Ok(()));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_gives_up() {
        let p = RetryPolicy {
            initial: Millis::seconds(1),
            max_delay: Millis::seconds(10),
            max_attempts: Some(6),
        };
        let delays: Vec<i64> = (1..=6).map(|n| p.delay_after(n).0 / 1000).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        let now = Timestamp(1_000_000);
        assert_eq!(p.after_attempt(1, false, now), NextStep::RetryAt(Timestamp(1_001_000)));
        assert_eq!(p.after_attempt(5, false, now), NextStep::RetryAt(Timestamp(1_010_000)));
        assert_eq!(p.after_attempt(6, false, now), NextStep::GiveUp);
        assert_eq!(p.after_attempt(6, true, now), NextStep::Delivered);
        let forever = RetryPolicy {
            max_attempts: None,
            ..p
        };
        assert_eq!(
            forever.after_attempt(10_000, false, now),
            NextStep::RetryAt(Timestamp(1_010_000))
        );
        // Huge attempt counts and odd settings neither overflow nor go below 1 ms.
        let odd = RetryPolicy {
            initial: Millis(0),
            max_delay: Millis(0),
            max_attempts: None,
        };
        assert_eq!(odd.delay_after(u32::MAX), Millis(1));
        assert_eq!(RetryPolicy::default().delay_after(100), Millis::hours(1));
    }

    #[test]
    fn json_payload_carries_event_request_and_organization() {
        let (o, r) = (org(), request());
        let p = Payload {
            event_id: 17,
            event: WebhookEvent::Acknowledged,
            at: Timestamp(1_717_200_060_000),
            actor: Actor::Person(PersonId(2)),
            request: &r,
            organization: &o,
            sent_at: Timestamp(1_717_200_061_000),
            attempt: 2,
            link: None,
        };
        let v: Value = serde_json::from_slice(&p.body(Format::Json)).unwrap();
        assert_eq!(v["id"], 17);
        assert_eq!(v["event"], "request.acknowledged");
        assert_eq!(v["at"], "2024-06-01T00:01:00.000Z");
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["organization"]["slug"], "demo");
        assert_eq!(v["request"]["id"], 42);
        assert_eq!(v["request"]["short_id"], "#42");
        assert_eq!(v["request"]["status"], "acknowledged");
        assert_eq!(v["request"]["caller"], "+12125550142");
        assert_eq!(v["request"]["acknowledged"]["by"], "person:2");
        assert!(v["request"]["completed"].is_null());

        let s: Value = serde_json::from_slice(&p.body(Format::Slack)).unwrap();
        assert_eq!(s.as_object().unwrap().len(), 1);
        assert_eq!(
            s["text"],
            "[Demo Apartments] Request #42 from +12125550142 was acknowledged by person:2: Water leak in 4B"
        );
        let linked = Payload {
            link: Some("https://oncall.example/requests/42".into()),
            event: WebhookEvent::Created,
            actor: Actor::Caller,
            ..p
        };
        assert!(
            linked
                .text()
                .ends_with("opened: Water leak in 4B <https://oncall.example/requests/42|open>"),
            "{}",
            linked.text()
        );
    }

    #[test]
    fn events_and_formats_round_trip() {
        for e in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(e.as_str()), Some(e));
            assert_eq!(WebhookEvent::from_stored(e.stored()), Some(e));
        }
        assert_eq!(Format::parse("slack"), Some(Format::Slack));
        assert_eq!(Format::parse("xml"), None);
        assert!(is_success(204) && !is_success(301) && !is_success(500));
    }

    #[test]
    fn new_webhooks_are_validated() {
        let ok = NewWebhook {
            name: " Ops ".into(),
            url: "https://hooks.example.com/x".into(),
            ..NewWebhook::default()
        };
        let (name, url, secret) = ok.validate().unwrap();
        assert_eq!((name.as_str(), url.as_str()), ("Ops", "https://hooks.example.com/x"));
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 64);
        for (url, field) in [
            ("ftp://x", "url"),
            ("https://", "url"),
            ("http://a b", "url"),
            ("hooks.example.com", "url"),
        ] {
            let e = NewWebhook {
                url: url.into(),
                ..ok.clone()
            }
            .validate()
            .unwrap_err();
            assert_eq!(e.field, field, "{url}");
        }
        assert_eq!(
            NewWebhook {
                secret: Some("short".into()),
                ..ok.clone()
            }
            .validate()
            .unwrap_err()
            .field,
            "secret"
        );
        let own = NewWebhook {
            secret: Some("my-own-secret-1234".into()),
            ..ok.clone()
        }
        .validate()
        .unwrap();
        assert_eq!(own.2, "my-own-secret-1234");
        assert_eq!(
            NewWebhook {
                name: "  ".into(),
                ..ok
            }
            .validate()
            .unwrap_err()
            .field,
            "name"
        );
        assert!(validate_url("http://127.0.0.1:8081/hook").is_ok());
    }
}
