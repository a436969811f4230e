//! The user agent's side of the MESSAGE client of `outbound_message.rs`: `send_message`, the
//! transaction that carries each attempt, and the one `UaEvent::MessageDone` per MESSAGE.
//! `ua/mod.rs` does not import this file; it reaches it through the methods below.

use super::outbound_message::{MessageFailure, MessageRef, MessageStep, OutgoingMessage, PendingMessage};
use super::{random_token, UaEvent, UserAgent};
use crate::message::Response;
use crate::transaction::TxKey;
use std::time::Instant;

impl UserAgent {
    /// Sends one MESSAGE; its outcome follows as one [`UaEvent::MessageDone`] with the returned handle.
    pub fn send_message(&mut self, out: OutgoingMessage, now: Instant) -> MessageRef {
        let message = MessageRef(self.next_message);
        self.next_message += 1;
        let via = self.new_via(out.via.transport);
        self.transmit_message(PendingMessage::new(message, out, via, random_token), now);
        self.drain_tx(now);
        message
    }

    fn transmit_message(&mut self, p: PendingMessage, now: Instant) {
        match self.tx.send_request(p.request().clone(), p.to(), now) {
            Some(key) => {
                self.messages.insert(key, p);
            }
            None => self.message_done(p.message(), Err(MessageFailure::NotSent)),
        }
    }

    fn message_done(&mut self, message: MessageRef, result: Result<u16, MessageFailure>) {
        self.events.push_back(UaEvent::MessageDone { message, result });
    }

    /// Whether `key` is the transaction of a MESSAGE of ours.
    pub(super) fn is_message(&self, key: &TxKey) -> bool {
        self.messages.contains_key(key)
    }

    /// The final response to a MESSAGE of ours (`None`: Timer F fired).
    pub(super) fn on_message_result(&mut self, key: &TxKey, response: Option<&Response>, now: Instant) {
        let Some(mut p) = self.messages.remove(key) else { return };
        match p.on_final_response(response, random_token) {
            MessageStep::Retry => {
                p.set_via(self.new_via(p.to().transport));
                self.transmit_message(p, now);
            }
            MessageStep::Done(result) => self.message_done(p.message(), result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::Credentials;
    use crate::message::{parse_datagram, Method, Request, SipMessage};
    use crate::transaction::{Peer, Transport};
    use crate::ua::UaConfig;

    fn hop() -> Peer {
        Peer {
            addr: "127.0.0.1:5080".parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
        }
    }

    /// The MESSAGE the user agent put on the wire last.
    fn sent_message(ua: &mut UserAgent) -> Request {
        let last = std::iter::from_fn(|| ua.poll_transmit()).last().expect("a transmit");
        match parse_datagram(&last.data) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// Feeds `status` (to `request`) back into the user agent; returns its events.
    fn answer(
        ua: &mut UserAgent,
        request: &Request,
        status: u16,
        extra: &[(&str, &str)],
        now: Instant,
    ) -> Vec<UaEvent> {
        let mut response = Response::from_request_headers(&request.headers, status, Some("far"));
        for (name, value) in extra {
            response.headers.push(*name, *value);
        }
        ua.handle_datagram(&response.to_bytes(), hop(), now);
        std::iter::from_fn(|| ua.poll_event()).collect()
    }

    fn text(credentials: Option<(&str, &str)>) -> OutgoingMessage {
        OutgoingMessage {
            target: "sip:+15551234567@sip.example".into(),
            via: hop(),
            from_uri: "sip:+15550001111@sip.example".into(),
            body: "hello #7".into(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    const CHALLENGE: &str = "Digest realm=\"sip.example\", nonce=\"abc\", qop=\"auth\", algorithm=MD5";

    #[test]
    fn a_message_answers_one_challenge_and_reports_delivery() {
        let now = Instant::now();
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let message = ua.send_message(text(Some(("oncall", "secret"))), now);
        let first = sent_message(&mut ua);
        assert_eq!(first.method, Method::Message);
        assert_eq!(first.body, b"hello #7");
        assert_eq!(first.headers.get("Content-Type"), Some("text/plain;charset=UTF-8"));
        assert_eq!(first.headers.get("To"), Some("<sip:+15551234567@sip.example>"));

        let events = answer(&mut ua, &first, 407, &[("Proxy-Authenticate", CHALLENGE)], now);
        assert!(
            events.is_empty(),
            "nothing is reported before the final answer: {events:?}"
        );
        let second = sent_message(&mut ua);
        let auth = second
            .headers
            .get("Proxy-Authorization")
            .expect("credentials on the second MESSAGE");
        let parsed = Credentials::parse(auth).unwrap();
        assert_eq!(
            (parsed.username.as_str(), parsed.uri.as_str()),
            ("oncall", "sip:+15551234567@sip.example")
        );
        assert_eq!(second.headers.get("CSeq"), Some("2 MESSAGE"));
        assert_ne!(
            second.headers.top_via().unwrap().branch(),
            first.headers.top_via().unwrap().branch(),
            "a new transaction"
        );
        assert_eq!(second.headers.call_id(), first.headers.call_id());

        let events = answer(&mut ua, &second, 202, &[], now);
        assert_eq!(
            events,
            vec![UaEvent::MessageDone {
                message,
                result: Ok(202)
            }]
        );
    }

    #[test]
    fn a_wrong_password_or_no_credentials_fails_the_message() {
        let now = Instant::now();
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let message = ua.send_message(text(Some(("oncall", "wrong"))), now);
        let first = sent_message(&mut ua);
        assert!(answer(&mut ua, &first, 401, &[("WWW-Authenticate", CHALLENGE)], now).is_empty());
        let second = sent_message(&mut ua);
        let again = CHALLENGE.replace("abc", "def");
        let events = answer(&mut ua, &second, 401, &[("WWW-Authenticate", &again)], now);
        assert_eq!(
            events,
            vec![UaEvent::MessageDone {
                message,
                result: Err(MessageFailure::Refused(401))
            }]
        );

        let message = ua.send_message(text(None), now);
        let first = sent_message(&mut ua);
        let events = answer(&mut ua, &first, 407, &[("Proxy-Authenticate", CHALLENGE)], now);
        assert_eq!(
            events,
            vec![UaEvent::MessageDone {
                message,
                result: Err(MessageFailure::Refused(407))
            }]
        );
        assert_eq!(MessageFailure::Refused(407).to_string(), "the MESSAGE was answered 407");
    }

    #[test]
    fn a_stale_nonce_is_answered_again() {
        let now = Instant::now();
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let message = ua.send_message(text(Some(("oncall", "secret"))), now);
        let first = sent_message(&mut ua);
        assert!(answer(&mut ua, &first, 401, &[("WWW-Authenticate", CHALLENGE)], now).is_empty());
        let second = sent_message(&mut ua);
        let stale = format!("{}, stale=true", CHALLENGE.replace("abc", "fresh"));
        assert!(answer(&mut ua, &second, 401, &[("WWW-Authenticate", &stale)], now).is_empty());
        let third = sent_message(&mut ua);
        assert_eq!(
            Credentials::parse(third.headers.get("Authorization").unwrap())
                .unwrap()
                .nonce,
            "fresh"
        );
        assert_eq!(third.headers.get("CSeq"), Some("3 MESSAGE"));
        assert_eq!(
            answer(&mut ua, &third, 200, &[], now),
            vec![UaEvent::MessageDone {
                message,
                result: Ok(200)
            }]
        );
    }

    #[test]
    fn no_answer_is_reported_after_timer_f() {
        let now = Instant::now();
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let message = ua.send_message(text(None), now);
        let mut events = Vec::new();
        while let Some(next) = ua.poll_timeout() {
            if next > now + std::time::Duration::from_secs(40) {
                break;
            }
            ua.handle_timeout(next);
            events.extend(std::iter::from_fn(|| ua.poll_event()));
        }
        assert_eq!(
            events,
            vec![UaEvent::MessageDone {
                message,
                result: Err(MessageFailure::NoAnswer)
            }]
        );
    }
}
