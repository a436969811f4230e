//! Text messages by SIP MESSAGE inside the call controller: sending paging's texts through the user
//! agent's MESSAGE client (which answers the digest challenge), reporting their outcome, and taking
//! inbound MESSAGEs (replies) from proven senders only (issue 15 item 1: a From header is not an
//! identity). What a reply does is paging's ([`TextReplies`]).

use crate::dial::Route;
use crate::orders::{ControllerCommand, Outcome, PagingEvent};
use oncall_core::escalation::NotificationKey;
use oncall_core::{OrgId, PersonId};
use oncall_sip::message::{Request, Response};
use oncall_sip::transaction::{Peer, TxKey};
use oncall_sip::ua::outbound_message::{MessageFailure, MessageRef, OutgoingMessage};
use oncall_sip::ua::UserAgent;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Who a text reply is proven to come from; never a bare From header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenSender {
    /// A phone number or SIP URI asserted by a source we trust to assert it: a trunk's
    /// `allowed_sources`, or an SMS gateway whose signature verified.
    Asserted(String),
    /// The person of a SIP account whose digest answer verified, in the account's organization.
    Person { org: OrgId, person: PersonId },
}

/// Applies a text reply from a proven sender (paging's texts do: the store, the escalation).
pub trait TextReplies: Send + Sync + 'static {
    /// The answer to send back; `None` when the sender is nobody we know (an answer could be
    /// reflected at a victim).
    fn reply(&self, sender: ProvenSender, text: String) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>>;
    /// The From of answers sent by SIP MESSAGE.
    fn reply_from(&self) -> String;
}

/// SIP MESSAGE inside the call controller: hands [`ControllerCommand::SendText`] to the user agent's
/// MESSAGE client (which answers its challenge), reports the outcome to paging, and takes inbound
/// MESSAGEs (replies).
#[derive(Default)]
pub struct SipTexts {
    /// Notification texts in flight; replies (no key) are not followed.
    pending: HashMap<MessageRef, NotificationKey>,
    /// Set when `[texts] enabled`: replies are handled; else inbound MESSAGE gets 405.
    replies: Option<Arc<dyn TextReplies>>,
    paging: Option<mpsc::UnboundedSender<PagingEvent>>,
    /// The controller's own command queue: answers to replies are sent through it.
    commands: Option<mpsc::UnboundedSender<ControllerCommand>>,
}

impl SipTexts {
    pub fn new(replies: Option<Arc<dyn TextReplies>>, paging: Option<mpsc::UnboundedSender<PagingEvent>>, commands: Option<mpsc::UnboundedSender<ControllerCommand>>) -> SipTexts {
        SipTexts { pending: HashMap::new(), replies, paging, commands }
    }

    /// Sends one MESSAGE (RFC 3428 §4: text/plain, out of any dialog); the outcome comes back as
    /// [`oncall_sip::ua::UaEvent::MessageDone`], for [`SipTexts::on_message_done`].
    pub fn send(&mut self, ua: &mut UserAgent, key: Option<NotificationKey>, route: Route, body: String, now: Instant) {
        let Route { target, via, credentials, from_uri, .. } = route;
        let message = OutgoingMessage { target, via, from_uri, body, credentials };
        let message = ua.send_message(message, now);
        if let Some(key) = key {
            self.pending.insert(message, key);
        }
    }

    /// The outcome of a MESSAGE: a notification's is reported to paging (a 2xx is "delivered").
    pub fn on_message_done(&mut self, message: MessageRef, result: Result<u16, MessageFailure>) {
        let Some(key) = self.pending.remove(&message) else {
            return;
        };
        let outcome = match result {
            Ok(_) => Outcome::Ringing,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        tracing::info!(request = %key.request, person = %key.person, ?outcome, "text by SIP MESSAGE");
        if let Some(p) = &self.paging {
            let _ = p.send(PagingEvent::CallResult { key, outcome });
        }
    }

    /// An out-of-dialog MESSAGE. The sender is proven first: from a trunk's `allowed_sources`
    /// (`from_trunk`, decided by the caller with the same check INVITE admission uses) the From is
    /// the carrier's assertion; otherwise the registrar challenges it (401) and the authenticated
    /// account's person is the sender; without a registrar, 403. Only a proven MESSAGE gets its 200
    /// (RFC 3428 §7), then the reply is handled and answered with a MESSAGE back to the sender.
    #[allow(clippy::too_many_arguments)]
    pub fn on_request(
        &mut self,
        ua: &mut UserAgent,
        key: TxKey,
        request: Request,
        source: Peer,
        from_trunk: bool,
        registrar: Option<&mut crate::phones::RegistrarService>,
        now: Instant,
    ) {
        let Some(replies) = self.replies.clone() else {
            return crate::phones::answer_unserved(ua, &key, &request, now);
        };
        let tag = format!("{:016x}", rand::random::<u64>());
        let Some(from) = request.headers.from() else {
            let mut resp = Response::from_request_headers(&request.headers, 400, Some(&tag));
            resp.reason = "Bad Request (no From)".into();
            return ua.respond_to(&key, resp, now);
        };
        let reply_to = from.uri.to_string();
        let sender = if from_trunk {
            ProvenSender::Asserted(reply_to.clone())
        } else if let Some(registrar) = registrar {
            match registrar.authenticate_sender(ua, &key, &request, source, now) {
                Some((username, org, person)) => {
                    tracing::info!(%username, %org, %person, source = %source.addr, "text reply from an authenticated SIP account");
                    ProvenSender::Person { org, person }
                }
                // Challenged (401) or refused (403) already.
                None => return,
            }
        } else {
            tracing::warn!(from = %reply_to, source = %source.addr, "text reply by MESSAGE from an unproven sender (not a trunk's allowed source, no registrar); 403");
            let mut resp = Response::from_request_headers(&request.headers, 403, Some(&tag));
            resp.reason = "Forbidden (sender not authenticated)".into();
            return ua.respond_to(&key, resp, now);
        };
        let resp = Response::from_request_headers(&request.headers, 200, Some(&tag));
        ua.respond_to(&key, resp, now);
        let text = String::from_utf8_lossy(&request.body).into_owned();
        tracing::info!(?sender, source = %source.addr, "text reply by SIP MESSAGE");
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let Some(answer) = replies.reply(sender, text).await else {
                return;
            };
            let route = Route { target: reply_to, via: source, credentials: None, from_uri: replies.reply_from(), media_encryption: Default::default(), browser: None };
            if let Some(c) = commands {
                let _ = c.send(ControllerCommand::SendText { key: None, route, body: answer });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_sip::transaction::Transport;

    /// The MESSAGE the user agent put on the wire last.
    fn sent_message(ua: &mut UserAgent) -> Request {
        let mut last = None;
        while let Some(t) = ua.poll_transmit() {
            last = Some(t);
        }
        match oncall_sip::message::parse_datagram(&last.expect("a transmit").data) {
            Ok(oncall_sip::message::SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// Feeds `response` (to `request`) back into the user agent and hands the result to `texts`.
    fn answer(
        ua: &mut UserAgent,
        texts: &mut SipTexts,
        request: &Request,
        status: u16,
        extra: &[(&str, &str)],
        now: Instant,
    ) {
        let mut response = Response::from_request_headers(&request.headers, status, Some("far"));
        for (name, value) in extra {
            response.headers.push(*name, *value);
        }
        let peer = Peer {
            addr: "127.0.0.1:5080".parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
        };
        ua.handle_datagram(&response.to_bytes(), peer, now);
        while let Some(ev) = ua.poll_event() {
            if let oncall_sip::ua::UaEvent::MessageDone { message, result } = ev {
                texts.on_message_done(message, result);
            }
        }
    }

    #[test]
    fn a_sip_message_answers_one_challenge_and_reports_delivery() {
        use oncall_core::escalation::NotificationKey;
        use oncall_core::{Channel, PersonId};
        let now = Instant::now();
        let mut ua = UserAgent::new(oncall_sip::ua::UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut texts = SipTexts::new(None, Some(tx), None);
        let key = NotificationKey {
            request: oncall_core::RequestId(7),
            stage: 0,
            person: PersonId(3),
            channel: Channel::Text,
        };
        let via = Peer {
            addr: "127.0.0.1:5080".parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
        };
        let credentials = Some(("oncall".to_string(), "secret".to_string()));
        let route = Route { target: "sip:+15551234567@sip.example".into(), via, from_uri: "sip:+15550001111@sip.example".into(), credentials, media_encryption: Default::default(), browser: None };
        texts.send(&mut ua, Some(key), route, "hello #7".into(), now);
        let first = sent_message(&mut ua);
        assert_eq!(first.method, oncall_sip::message::Method::Message);
        assert_eq!(first.body, b"hello #7");
        assert_eq!(first.headers.get("Content-Type"), Some("text/plain;charset=UTF-8"));

        let challenge = "Digest realm=\"sip.example\", nonce=\"abc\", qop=\"auth\", algorithm=MD5";
        answer(
            &mut ua,
            &mut texts,
            &first,
            407,
            &[("Proxy-Authenticate", challenge)],
            now,
        );
        let second = sent_message(&mut ua);
        let auth = second
            .headers
            .get("Proxy-Authorization")
            .expect("credentials on the second MESSAGE");
        let parsed = oncall_sip::auth::digest::Credentials::parse(auth).unwrap();
        assert_eq!(
            (parsed.username.as_str(), parsed.uri.as_str()),
            ("oncall", "sip:+15551234567@sip.example")
        );
        assert_eq!(second.headers.get("CSeq"), Some("2 MESSAGE"));
        assert!(rx.try_recv().is_err(), "nothing is reported before the final answer");

        answer(&mut ua, &mut texts, &second, 202, &[], now);
        match rx.try_recv() {
            Ok(PagingEvent::CallResult {
                key: k,
                outcome: Outcome::Ringing,
            }) => assert_eq!(k, key),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
}
