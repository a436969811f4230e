//! The user agent's MESSAGE client (RFC 3428 §4): one `text/plain` MESSAGE out of any dialog to a
//! URI through a next hop, its 401/407 challenge answered with the given credentials (the policy of
//! [`crate::auth::client`]: SHA-256 preferred, stale nonces answered, a wrong password not retried),
//! and one outcome: delivered on a 2xx, else why not.
//!
//! The application only says what to send where ([`OutgoingMessage`]) and maps the returned
//! [`MessageRef`] to its own notification. Inbound MESSAGEs are not here: they reach the application
//! as `UaEvent::Request`. Deliberately not done: MESSAGE over TCP for bodies larger than one
//! datagram, and delivery reports (RFC 5438).
//!
//! This file is the client's types and sans-IO state (`PendingMessage`); it does not import the
//! user agent. The user agent passes in what it owns (the top Via, fresh tokens) and carries out the
//! result in `send_message.rs`: `UserAgent::send_message` and `UaEvent::MessageDone`.

use crate::auth::client::{AuthError, ClientAuth};
use crate::message::{Headers, Method, Request, Response};
use crate::transaction::Peer;

/// Handle of one MESSAGE sent with `UserAgent::send_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef(pub u64);

/// What to send and how.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Request-URI and To, e.g. `sip:+15551234567@trunk.example.net` or a person's SIP URI.
    pub target: String,
    /// Where the MESSAGE goes: the trunk, or the target's host.
    pub via: Peer,
    /// Our From URI.
    pub from_uri: String,
    /// The text, sent as `text/plain;charset=UTF-8`.
    pub body: String,
    /// Username and password for a 401/407 challenge; without them a challenge fails the MESSAGE.
    pub credentials: Option<(String, String)>,
}

/// Why a MESSAGE was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageFailure {
    #[error("cannot send the MESSAGE")]
    NotSent,
    /// No final response (Timer F).
    #[error("no answer to the MESSAGE")]
    NoAnswer,
    /// A final response other than 2xx, or a challenge not answered (no credentials, or answered
    /// once already with them).
    #[error("the MESSAGE was answered {0}")]
    Refused(u16),
    #[error("{0} without a usable challenge")]
    NoChallenge(u16),
    #[error("the MESSAGE was answered {0} (too many stale nonces)")]
    TooManyStale(u16),
}

/// A MESSAGE whose transaction is in flight: what it is, where it goes, and the challenge state
/// of its credentials. The user agent keeps one per transaction and feeds it the final response.
pub(super) struct PendingMessage {
    message: MessageRef,
    /// The request as last sent (with its Via): re-sent with credentials after a challenge.
    request: Request,
    to: Peer,
    auth: Option<ClientAuth>,
}

/// What a final response means for a [`PendingMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MessageStep {
    /// A challenge was answered: send [`PendingMessage::request`] again, as a new transaction, after
    /// [`PendingMessage::set_via`] gave it a fresh top Via.
    Retry,
    /// Finished: the 2xx status, or why not.
    Done(Result<u16, MessageFailure>),
}

impl PendingMessage {
    /// The MESSAGE for `out`, with top Via `via` (the user agent's, for the hop's transport);
    /// `token` draws the From tag and the Call-ID.
    pub(super) fn new(
        message: MessageRef,
        out: OutgoingMessage,
        via: String,
        mut token: impl FnMut() -> String,
    ) -> Self {
        let mut headers = Headers::default();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        headers.push("From", format!("<{}>;tag={}", out.from_uri, token()));
        headers.push("To", format!("<{}>", out.target));
        headers.push("Call-ID", format!("{}@oncall", token()));
        headers.push("CSeq", "1 MESSAGE");
        headers.push("Content-Type", "text/plain;charset=UTF-8");
        let request = Request {
            method: Method::Message,
            uri: out.target,
            headers,
            body: out.body.into_bytes(),
        };
        let auth = out.credentials.map(|(user, pass)| ClientAuth::new(user, pass));
        PendingMessage {
            message,
            request,
            to: out.via,
            auth,
        }
    }

    pub(super) fn message(&self) -> MessageRef {
        self.message
    }

    /// The request as it is to be sent next.
    pub(super) fn request(&self) -> &Request {
        &self.request
    }

    /// The next hop.
    pub(super) fn to(&self) -> Peer {
        self.to
    }

    /// Replaces the top Via (a retry is a new transaction, so it needs a new branch).
    pub(super) fn set_via(&mut self, via: String) {
        self.request.headers.set("Via", via);
    }

    /// The final response to the current transaction (`None`: Timer F fired). `cnonce` is drawn
    /// only when a challenge is answered.
    pub(super) fn on_final_response(
        &mut self,
        response: Option<&Response>,
        cnonce: impl FnOnce() -> String,
    ) -> MessageStep {
        let Some(r) = response else {
            return MessageStep::Done(Err(MessageFailure::NoAnswer));
        };
        let result = match (r.status, self.auth.as_mut()) {
            (200..=299, _) => Ok(r.status),
            (401 | 407, Some(auth)) => match auth.retry(&self.request, r, &cnonce()) {
                Ok(retry) => {
                    self.request = retry;
                    return MessageStep::Retry;
                }
                Err(AuthError::NoChallenge) => Err(MessageFailure::NoChallenge(r.status)),
                Err(AuthError::TooManyStale) => Err(MessageFailure::TooManyStale(r.status)),
                Err(AuthError::Rejected | AuthError::NoCredentials) => Err(MessageFailure::Refused(r.status)),
            },
            (s, _) => Err(MessageFailure::Refused(s)),
        };
        MessageStep::Done(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::Transport;

    fn pending(credentials: Option<(&str, &str)>) -> PendingMessage {
        let out = OutgoingMessage {
            target: "sip:+15551234567@sip.example".into(),
            via: Peer {
                addr: "127.0.0.1:5080".parse().unwrap(),
                transport: Transport::Udp,
                conn: None,
            },
            from_uri: "sip:+15550001111@sip.example".into(),
            body: "hello".into(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        let via = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKone;rport".to_string();
        PendingMessage::new(MessageRef(1), out, via, || "token".to_string())
    }

    fn answer(p: &PendingMessage, status: u16, challenge: Option<&str>) -> Response {
        let mut r = Response::from_request_headers(&p.request().headers, status, Some("far"));
        if let Some(c) = challenge {
            r.headers.push("WWW-Authenticate", c);
        }
        r
    }

    const CHALLENGE: &str = "Digest realm=\"sip.example\", nonce=\"abc\", qop=\"auth\", algorithm=MD5";

    /// No user agent and no clock: the state alone decides retry or outcome.
    #[test]
    fn final_responses_decide_retry_or_outcome() {
        let mut p = pending(Some(("oncall", "secret")));
        assert_eq!(p.request().headers.get("Call-ID"), Some("token@oncall"));
        let challenge = answer(&p, 401, Some(CHALLENGE));
        assert_eq!(
            p.on_final_response(Some(&challenge), || "cnonce".into()),
            MessageStep::Retry
        );
        assert!(p.request().headers.get("Authorization").is_some());
        let ok = answer(&p, 202, None);
        assert_eq!(
            p.on_final_response(Some(&ok), || unreachable!()),
            MessageStep::Done(Ok(202))
        );

        let mut bare = pending(None);
        let challenge = answer(&bare, 401, Some(CHALLENGE));
        assert_eq!(
            bare.on_final_response(Some(&challenge), || unreachable!()),
            MessageStep::Done(Err(MessageFailure::Refused(401)))
        );
        assert_eq!(
            bare.on_final_response(None, || unreachable!()),
            MessageStep::Done(Err(MessageFailure::NoAnswer))
        );
    }
}
