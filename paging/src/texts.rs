//! Text messages (issue 6 item 6): `text` notifications out, and the employees' replies in.
//!
//! Out: the paging task hands a `text` notification to [`Texts::send_notification`], which writes
//! the body ([`notification_body`]) and sends it either through an HTTP SMS gateway (one POST, a
//! Twilio-compatible form by default, any form or JSON body through `[texts] body_template`) or as a
//! SIP MESSAGE (RFC 3428) that the call controller sends ([`ControllerCommand::SendText`], carried
//! out by [`SipTexts`] with the user agent's MESSAGE client, `oncall_sip::ua::outbound_message`,
//! which answers the digest challenge): phone numbers through the first `[[trunks]]` entry, SIP URIs
//! directly. A 2xx is "delivered"; anything else, or no answer in `[texts] timeout_secs`, fails the
//! notification and the escalation moves on.
//!
//! In: a reply arrives on the web admin's `POST /api/v1/texts/inbound` (Twilio-style `From` and
//! `Body`, signed by the gateway) or as an out-of-dialog SIP MESSAGE. A From header is not an
//! identity (issue 15 item 1: one forged datagram completed someone else's emergency request), so a
//! reply is only taken from a proven sender ([`ProvenSender`]): a MESSAGE from a trunk's
//! `allowed_sources` (the carrier asserts the number in From), a MESSAGE whose digest answer
//! verifies for a SIP account of OnCall's registrar (the account's person is the sender, whatever
//! From says; challenged with 401 first), or a webhook post whose signature the web admin checked.
//! Anything else gets 403 and changes nothing. [`Texts::handle_reply`] parses the text
//! (`oncall_core::text_reply`), picks among the open requests that person was notified of, applies
//! it through the store (acknowledge/complete) and tells the paging task ([`PagingEvent::TextReply`]);
//! the returned sentence is the answer sent back to the sender.
//!
//! Not done: delivery receipts (a gateway's 2xx is taken as delivered), MESSAGE over TCP, and texts
//! longer than one SIP datagram.

use crate::config::TextsConfig;
use crate::webhooks::{error_chain, HttpClient};
use oncall_calls::dial::Dialer;
use oncall_calls::orders::{ControllerCommand, Outcome, PagingEvent};
use oncall_calls::sip_texts::{ProvenSender, TextReplies};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use oncall_core::escalation::NotificationKey;
use oncall_core::text_reply::{self, Pick, ReplyAction};
use oncall_core::{Actor, Contact, Person, RequestId, Store, Timestamp};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The text of a `text` notification; an alert's says what is wrong (`summary`).
pub fn notification_body(request: RequestId, caller: &str, summary: Option<&str>, link: &str) -> String {
    let caller = if caller.is_empty() { "an unknown caller" } else { caller };
    let about = summary.map(|s| format!(": {s}")).unwrap_or_default();
    format!(
        "OnCall: new request #{} from {caller}{about}. Reply 1 or ACK to take it, DONE when done. {link}",
        request.0
    )
}

/// The link to a request's page under the site's base URL.
pub fn request_link(base: &str, request: RequestId) -> String {
    format!("{}/requests/{}", base.trim_end_matches('/'), request.0)
}

/// Percent-encoding for `application/x-www-form-urlencoded` values (space as `+`).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON string's contents (without the quotes).
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("").to_string()
}

/// The gateway request body: `template` with `{to}`, `{from}` and `{body}` replaced, each value
/// escaped for `format` ("form" or "json"). The values are replaced in one pass, so a `{from}` in
/// the message text stays text.
pub fn render_template(template: &str, format: &str, to: &str, from: &str, body: &str) -> String {
    let esc = |v: &str| {
        if format == "json" {
            json_escape(v)
        } else {
            form_encode(v)
        }
    };
    let mut out = String::with_capacity(template.len() + body.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (value, len) = if tail.starts_with("{to}") {
            (Some(esc(to)), 4)
        } else if tail.starts_with("{from}") {
            (Some(esc(from)), 6)
        } else if tail.starts_with("{body}") {
            (Some(esc(body)), 6)
        } else {
            (None, 1)
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push('{'),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

fn default_template(format: &str) -> &'static str {
    if format == "json" {
        r#"{"to":"{to}","from":"{from}","body":"{body}"}"#
    } else {
        "To={to}&From={from}&Body={body}"
    }
}

/// Standard base64 (RFC 4648 §4), for the basic auth header.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Texts for one instance: shared by the paging task (sending), the web admin (replies by HTTP) and
/// the call controller (replies by SIP MESSAGE).
pub struct Texts {
    pub config: TextsConfig,
    pub store: Store,
    /// Links in texts point under this (`[http] public_url`, else built from `[http] listen`).
    pub link_base: String,
    /// Contacts → routes for SIP MESSAGE (the calls side's dial plan).
    pub dialer: Dialer,
    pub controller: mpsc::UnboundedSender<ControllerCommand>,
    /// The paging task (when `[paging] enabled`): told of deliveries and replies.
    pub paging: Option<mpsc::UnboundedSender<PagingEvent>>,
    pub client: Option<HttpClient>,
}

impl Texts {
    /// Sends a notification's text to `person`: `Ok` once it is on its way (the outcome is reported
    /// to the paging task later), `Err` with why when it cannot be sent at all.
    pub async fn send_notification(&self, key: NotificationKey, person: &Person, caller: &str, summary: Option<&str>) -> Result<(), String> {
        if !self.config.enabled {
            return Err("texts are off ([texts] enabled = false)".into());
        }
        let body = notification_body(key.request, caller, summary, &request_link(&self.link_base, key.request));
        // The organization's own sender (`oncall org set --text-from`), else `[texts] from`; its own trunks.
        let org = self.store.organization(person.org).await.ok();
        let from = org.as_ref().and_then(|o| o.limits.text_from.clone()).unwrap_or_else(|| self.config.from.clone());
        let dialer = org.map_or_else(|| self.dialer.clone(), |o| self.dialer.for_org(&o.slug));
        let phone = person.contacts.iter().find(|c| matches!(c, Contact::Phone(_)));
        let sip = person.contacts.iter().find(|c| matches!(c, Contact::Sip(_)));
        match (self.config.transport.as_str(), phone, sip) {
            ("http", Some(Contact::Phone(number)), _) => {
                let number = number.as_str().to_string();
                let client = self.client.clone().ok_or("no HTTP client")?;
                let (config, paging) = (TextsConfig { from, ..self.config.clone() }, self.paging.clone());
                tracing::info!(request = %key.request, person = %key.person, to = %number, "sending a text through the SMS gateway");
                tokio::spawn(async move {
                    let outcome = match post_to_gateway(&client, &config, &number, &body).await {
                        Ok(()) => Outcome::Ringing,
                        Err(e) => Outcome::Failed(e),
                    };
                    tracing::info!(request = %key.request, person = %key.person, ?outcome, "text through the SMS gateway");
                    if let Some(p) = paging {
                        let _ = p.send(PagingEvent::CallResult { key, outcome });
                    }
                });
                Ok(())
            }
            (_, _, Some(uri)) => self.send_by_sip(&dialer, key, uri, &from, body).await,
            ("sip", Some(number), None) => self.send_by_sip(&dialer, key, number, &from, body).await,
            _ => Err("no phone number or SIP URI to text".into()),
        }
    }

    /// A SIP MESSAGE along the dialer's route (a SIP URI directly, a number through the first trunk).
    async fn send_by_sip(&self, dialer: &Dialer, key: NotificationKey, contact: &Contact, from: &str, body: String) -> Result<(), String> {
        let route = dialer.route(contact, from).await?;
        tracing::info!(request = %key.request, person = %key.person, target = %route.target, via = %route.next_hop(), "sending a text as SIP MESSAGE");
        self.controller.send(ControllerCommand::SendText { key: Some(key), route, body }).map_err(|_| "the call controller has stopped".to_string())
    }

    /// Handles a reply from a proven `sender`; returns the answer to send back, `None` when the
    /// sender is nobody we know (a SIP answer to them could be reflected at a victim).
    ///
    /// Issue 17: one gateway number and one MESSAGE identity serve every organization, so the sender
    /// says which: a phone number is looked up in each enabled organization (someone working for two
    /// is the same number in both), a SIP account is its own organization's. The reply only ever
    /// touches a request that one of those people was notified of.
    pub async fn handle_reply(&self, sender: &ProvenSender, text: &str) -> Option<String> {
        let found = match sender {
            ProvenSender::Asserted(s) => self.people_by_sender(s).await,
            ProvenSender::Person { org, person } => match self.store.person(*org, *person).await {
                Ok(p) => Ok((!p.disabled).then_some(p).into_iter().collect()),
                Err(oncall_core::StoreError::NotFound(_)) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
        };
        let people = match found {
            Ok(people) if !people.is_empty() => people,
            Ok(_) => {
                tracing::warn!(?sender, "text reply from an unknown sender");
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "text reply: cannot look the sender up");
                return Some("OnCall: try again later.".into());
            }
        };
        Some(self.apply_reply(&people, text).await)
    }

    /// The person `sender` is in each enabled organization (at most one per organization).
    async fn people_by_sender(&self, sender: &str) -> oncall_core::store::Result<Vec<Person>> {
        let mut people = Vec::new();
        for org in self.store.list_organizations().await?.into_iter().filter(|o| o.disabled_at.is_none()) {
            people.extend(self.store.person_by_text_sender(org.id, sender).await?);
        }
        Ok(people)
    }

    async fn apply_reply(&self, people: &[Person], text: &str) -> String {
        let reply = match text_reply::parse(text) {
            Ok(r) => r,
            Err(_) => return text_reply::HELP.to_string(),
        };
        // Request ids are unique across organizations: one list, newest first, each with its person.
        let mut open: Vec<(RequestId, &Person)> = Vec::new();
        for person in people {
            match self.store.open_requests_notified_to(person.org, person.id).await {
                Ok(ids) => open.extend(ids.into_iter().map(|id| (id, person))),
                Err(e) => {
                    tracing::error!(error = %e, "text reply: cannot list open requests");
                    return "OnCall: try again later.".into();
                }
            }
        }
        open.sort_by(|a, b| b.0.cmp(&a.0));
        let ids: Vec<RequestId> = open.iter().map(|(id, _)| *id).collect();
        let request = match text_reply::pick_request(&reply, &ids) {
            Pick::One(r) => r,
            Pick::None => return "OnCall: no open request of yours matches.".into(),
            Pick::Ambiguous(list) => return text_reply::ask_which(&list),
        };
        let Some(&(_, person)) = open.iter().find(|(id, _)| *id == request) else {
            return "OnCall: no open request of yours matches.".into();
        };
        let org = person.org;
        let now = Timestamp::now();
        let me = Actor::Person(person.id);
        tracing::info!(%request, person = %person.id, action = reply.action.as_str(), "text reply");
        let answer = match reply.action {
            ReplyAction::Acknowledge => match self.store.acknowledge(org, request, me, now).await {
                Ok(()) => format!("OnCall: request #{} is yours.", request.0),
                Err(e) => {
                    tracing::info!(%request, error = %e, "text acknowledge refused");
                    return format!(
                        "OnCall: request #{} cannot be acknowledged (already taken?).",
                        request.0
                    );
                }
            },
            ReplyAction::Complete => {
                // A request not yet acknowledged is taken on the way (acknowledged, then completed).
                let _ = self.store.acknowledge(org, request, me, now).await;
                match self.store.complete(org, request, me, now).await {
                    Ok(()) => format!("OnCall: request #{} is done. Thank you.", request.0),
                    Err(e) => {
                        tracing::info!(%request, error = %e, "text complete refused");
                        return format!("OnCall: request #{} cannot be completed.", request.0);
                    }
                }
            }
            ReplyAction::EscalateNow => format!("OnCall: request #{} goes to the next step.", request.0),
            ReplyAction::Snooze => format!("OnCall: request #{} snoozed.", request.0),
        };
        if let Some(p) = &self.paging {
            let _ = p.send(PagingEvent::TextReply {
                request,
                person: person.id,
                action: reply.action,
            });
        }
        answer
    }
}

/// One POST to the SMS gateway; `Ok` on a 2xx.
async fn post_to_gateway(client: &HttpClient, config: &TextsConfig, to: &str, body: &str) -> Result<(), String> {
    let template = if config.body_template.is_empty() {
        default_template(&config.body_format)
    } else {
        config.body_template.as_str()
    };
    let payload = render_template(template, &config.body_format, to, &config.from, body);
    let content_type = if config.body_format == "json" {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut req = hyper::Request::post(config.url.as_str())
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::USER_AGENT, concat!("OnCall/", env!("CARGO_PKG_VERSION")));
    if !config.account.is_empty() {
        let auth = base64(format!("{}:{}", config.account, config.token).as_bytes());
        req = req.header(hyper::header::AUTHORIZATION, format!("Basic {auth}"));
    }
    let req = req
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| format!("bad request: {e}"))?;
    let send = async {
        let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(Duration::from_secs(config.timeout_secs), send).await {
        Ok(Ok(s)) if (200..300).contains(&s) => Ok(()),
        Ok(Ok(s)) => Err(format!("the SMS gateway answered {s}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "the SMS gateway did not answer within {} s",
            config.timeout_secs
        )),
    }
}

/// How the inbound webhook checks posts, from `[texts]` (validated at start-up: a Twilio signature
/// has its auth token and `[http] public_url`, a shared token is long enough).
pub fn inbound_auth(texts: &TextsConfig, public_url: Option<&str>) -> oncall_web::text_inbound::InboundAuth {
    use oncall_web::text_inbound::InboundAuth;
    if texts.inbound_signature == "twilio" {
        InboundAuth::Twilio {
            auth_token: texts.token.clone(),
            public_url: public_url.unwrap_or_default().to_string(),
        }
    } else {
        InboundAuth::Token(texts.inbound_token.clone())
    }
}

/// The inbound webhook's per-source throttle, from `[texts]`.
pub fn inbound_throttle(texts: &TextsConfig) -> oncall_web::text_inbound::ThrottleConfig {
    oncall_web::text_inbound::ThrottleConfig {
        posts_per_minute: texts.inbound_posts_per_minute,
        max_failures: texts.inbound_max_failures,
        failure_window: Duration::from_secs(900),
    }
}

/// Replies by SIP MESSAGE, from the call controller.
impl TextReplies for Texts {
    fn reply(&self, sender: ProvenSender, text: String) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move { self.handle_reply(&sender, &text).await })
    }

    fn reply_from(&self) -> String {
        if self.config.from.starts_with("sip:") {
            self.config.from.clone()
        } else {
            self.dialer.local_uri().to_string()
        }
    }
}

/// The web admin's view of texts: the inbound webhook's handler.
pub struct WebInbound(pub Arc<Texts>);

impl oncall_web::text_inbound::TextInbound for WebInbound {
    fn reply(&self, from: String, body: String) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            // The web admin calls this only for a post whose gateway signature verified.
            self.0
                .handle_reply(&ProvenSender::Asserted(from), &body)
                .await
                .unwrap_or_else(|| "OnCall: this number is not known.".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notification_carries_id_caller_and_link() {
        let body = notification_body(RequestId(12), "+15551234", None, &request_link("https://oncall.example.com/", RequestId(12)));
        assert_eq!(body, "OnCall: new request #12 from +15551234. Reply 1 or ACK to take it, DONE when done. https://oncall.example.com/requests/12");
        let alert = notification_body(RequestId(13), "Alertmanager", Some("Disk almost full"), "https://o/requests/13");
        assert_eq!(alert, "OnCall: new request #13 from Alertmanager: Disk almost full. Reply 1 or ACK to take it, DONE when done. https://o/requests/13");
    }

    #[test]
    fn the_default_template_is_a_twilio_form() {
        let t = default_template("form");
        assert_eq!(
            render_template(t, "form", "+15551234", "+15550000", "new #12 & more {from}"),
            "To=%2B15551234&From=%2B15550000&Body=new+%2312+%26+more+%7Bfrom%7D"
        );
    }

    #[test]
    fn json_templates_escape_quotes() {
        let t = default_template("json");
        let out = render_template(t, "json", "+1555", "me", "say \"hi\"\n");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["body"], "say \"hi\"\n");
        assert_eq!(v["to"], "+1555");
        assert_eq!(render_template("{x} {to}", "form", "a b", "", ""), "{x} a+b");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    /// Two organizations on a fresh store, and texts with `config` whose controller's end comes back.
    async fn two_organizations(config: TextsConfig) -> (Store, oncall_core::OrgId, oncall_core::OrgId, Texts, mpsc::UnboundedReceiver<ControllerCommand>) {
        let now = Timestamp(1_800_000_000_000);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let a = store.create_organization("Apartments", "apartments", "UTC", now).await.unwrap();
        let b = store.create_organization("Help Desk", "help-desk", "UTC", now).await.unwrap();
        let (controller, rx) = mpsc::unbounded_channel();
        let texts = Texts {
            config,
            store: store.clone(),
            link_base: "http://oncall.test".into(),
            dialer: Dialer::new(vec![], "sip:oncall@127.0.0.1".into(), None),
            controller,
            paging: None,
            client: None,
        };
        (store, a, b, texts, rx)
    }

    /// Issue 17 item 3: an organization's texts come from its own sender (`oncall org set --text-from`), the
    /// others' from `[texts] from`.
    #[tokio::test]
    async fn each_organization_texts_from_its_own_sender() {
        use oncall_core::store::OrgLimits;
        use oncall_core::{Channel, NewPerson, NewRequest};
        let now = Timestamp(1_800_000_000_000);
        let config = TextsConfig { enabled: true, transport: "sip".into(), from: "sip:oncall@oncall.example".into(), ..TextsConfig::default() };
        let (store, a, b, texts, mut rx) = two_organizations(config).await;
        store.set_organization_limits(b, &OrgLimits { text_from: Some("sip:desk@oncall.example".into()), ..OrgLimits::default() }).await.unwrap();
        for (org, want) in [(a, "sip:oncall@oncall.example"), (b, "sip:desk@oncall.example")] {
            let new = NewPerson { name: "Pat".into(), sip_uris: vec!["sip:pat@127.0.0.1:5090".into()], time_zone: "UTC".into(), ..NewPerson::default() };
            let person = store.add_person(org, &new, now).await.unwrap();
            let request = store.create_request(org, &NewRequest { caller: "+15550000000".into(), ..NewRequest::default() }, now).await.unwrap();
            let key = NotificationKey { request, stage: 0, person, channel: Channel::Text };
            texts.send_notification(key, &store.person(org, person).await.unwrap(), "+15550000000", None).await.unwrap();
            match rx.recv().await {
                Some(ControllerCommand::SendText { route, .. }) => assert_eq!(route.from_uri, want),
                _ => panic!("no SIP MESSAGE for the person of {org}"),
            }
        }
    }

    /// Issue 17 item 4: one gateway serves every organization, and a reply never reaches another's request.
    /// Ann (organization A) replies "ACK <B's request>" and is told nothing of hers matches; B's request stays
    /// open. Bob, B's employee whose request it is, is found in B and takes it; his SIP account proves B, so
    /// it cannot be turned on A's request. Ann's own request is hers to take.
    #[tokio::test]
    async fn a_reply_never_touches_another_organizations_request() {
        use oncall_core::{Channel, NewPerson, NewRequest, RequestStatus};
        let now = Timestamp(1_800_000_000_000);
        let (store, a, b, texts, _rx) = two_organizations(TextsConfig { enabled: true, ..TextsConfig::default() }).await;
        let person = |name: &str, phone: &str| NewPerson { name: name.into(), phones: vec![phone.into()], time_zone: "UTC".into(), ..NewPerson::default() };
        let ann = store.add_person(a, &person("Ann", "+15551110000"), now).await.unwrap();
        let bob = store.add_person(b, &person("Bob", "+15552220000"), now).await.unwrap();
        let mut ids = Vec::new();
        for (org, person) in [(b, bob), (a, ann)] {
            let request = store.create_request(org, &NewRequest { caller: "+15550000000".into(), ..NewRequest::default() }, now).await.unwrap();
            store.record_notification(org, &NotificationKey { request, stage: 0, person, channel: Channel::Text }, now).await.unwrap();
            ids.push(request);
        }
        let (theirs, mine) = (ids[0], ids[1]);
        let ann_text = ProvenSender::Asserted("+15551110000".into());
        let answer = texts.handle_reply(&ann_text, &format!("ACK {}", theirs.0)).await.unwrap();
        assert!(answer.contains("no open request of yours matches"), "{answer}");
        let forged = ProvenSender::Person { org: a, person: bob };
        assert_eq!(texts.handle_reply(&forged, &format!("DONE {}", mine.0)).await, None, "Bob is nobody in A");
        assert_eq!(store.request(b, theirs).await.unwrap().state.status(), RequestStatus::Received, "B's request is untouched");
        let bob_sip = ProvenSender::Person { org: b, person: bob };
        let answer = texts.handle_reply(&bob_sip, &format!("ACK {}", mine.0)).await.unwrap();
        assert!(answer.contains("no open request of yours matches"), "Bob cannot take A's request: {answer}");
        let answer = texts.handle_reply(&ProvenSender::Asserted("+15552220000".into()), &format!("ACK {}", theirs.0)).await.unwrap();
        assert!(answer.contains("is yours"), "Bob takes his own organization's request: {answer}");
        assert_eq!(store.request(b, theirs).await.unwrap().state.status(), RequestStatus::Acknowledged);
        assert_eq!(store.request(a, mine).await.unwrap().state.status(), RequestStatus::Received, "A's request is untouched");
        let answer = texts.handle_reply(&ann_text, &format!("ACK {}", mine.0)).await.unwrap();
        assert!(answer.contains("is yours"), "{answer}");
        assert_eq!(store.request(a, mine).await.unwrap().state.status(), RequestStatus::Acknowledged);
    }
}
