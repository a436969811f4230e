//! Redirect answers (RFC 3261 §8.3 and §21.3): a 3xx final response to an INVITE whose Contact
//! headers tell the caller where to try instead, ranked by q-value (§20.10: higher first; a proxy
//! or UA tries equal q-values in parallel and lower ones after). OnCall uses it to answer a PBX
//! with the on-call people's phones without carrying the media.
//!
//! The user agent only writes the response ([`UserAgent::redirect`]); which contacts, in which
//! order, is the application's business. The ACK for the 3xx is absorbed by the INVITE server
//! transaction (§17.2.1) like any other non-2xx. Nothing here follows redirects we receive.

use super::{CallRef, DialogState, EndReason, UserAgent};
use crate::message::Response;
use std::fmt;
use std::time::Instant;

/// A Contact q-value (§20.10): a preference between 0 and 1 with at most three decimals, kept in
/// thousandths so that it cannot be out of range or over-precise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QValue(u16);

impl QValue {
    pub const MAX: QValue = QValue(1000);

    /// `thousandths` clamped to 0..=1000 (`1000` = `q=1.0`).
    pub fn from_thousandths(thousandths: u16) -> QValue {
        QValue(thousandths.min(1000))
    }

    pub fn thousandths(self) -> u16 {
        self.0
    }
}

impl fmt::Display for QValue {
    /// The shortest form the grammar allows with one decimal at least: `1.0`, `0.9`, `0.85`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 1000 {
            return f.write_str("1.0");
        }
        let mut digits = format!("{:03}", self.0);
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "0.{digits}")
    }
}

/// One place to try: a SIP (or tel) URI and its preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectContact {
    pub uri: String,
    pub q: QValue,
}

impl RedirectContact {
    /// The Contact header value: `<uri>;q=0.9` (angle brackets, so the URI's own parameters stay its own).
    pub fn header_value(&self) -> String {
        format!("<{}>;q={}", self.uri, self.q)
    }
}

impl UserAgent {
    /// Answers a call that has not been answered yet with a redirect: `status` (300-399, normally 302
    /// Moved Temporarily) and one Contact header per entry, in the order given. The call ends
    /// ([`EndReason::Rejected`]): no dialog is created by a 3xx.
    pub fn redirect(&mut self, call: CallRef, status: u16, contacts: &[RedirectContact], now: Instant) {
        debug_assert!((300..400).contains(&status), "a redirect needs a 3xx status");
        let Some(d) = self.dialogs.get(&call) else { return };
        if !matches!(d.state, DialogState::Early) || d.outbound.is_some() {
            return;
        }
        let (key, invite, tag) = (d.invite_key.clone(), d.invite.clone(), d.local_tag.clone());
        let mut resp = Response::from_request_headers(&invite.headers, status, Some(&tag));
        for c in contacts {
            resp.headers.push("Contact", c.header_value());
        }
        self.decorate(&mut resp.headers);
        self.tx.respond(&key, resp, now);
        self.end(call, EndReason::Rejected);
        self.drain_tx(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_are_written_in_the_rfc_grammar() {
        let q = |t| QValue::from_thousandths(t).to_string();
        assert_eq!(q(1000), "1.0");
        assert_eq!(q(5000), "1.0");
        assert_eq!(q(900), "0.9");
        assert_eq!(q(850), "0.85");
        assert_eq!(q(125), "0.125");
        assert_eq!(q(5), "0.005");
        assert_eq!(q(0), "0.0");
    }

    #[test]
    fn a_302_lists_the_contacts_in_order_and_its_ack_is_absorbed() {
        use crate::transaction::{Peer, Transport};
        use crate::ua::{UaConfig, UaEvent};
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let pbx = Peer {
            addr: "127.0.0.1:5070".parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
        };
        let t0 = Instant::now();
        let head = "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1\r\nFrom: <sip:pbx@127.0.0.1>;tag=p1\r\n";
        let invite = format!(
            "INVITE sip:oncall-night@127.0.0.1 SIP/2.0\r\n{head}To: <sip:oncall-night@127.0.0.1>\r\n\
             Call-ID: r1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1:5070>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        ua.handle_datagram(invite.as_bytes(), pbx, t0);
        let Some(UaEvent::IncomingCall { call, request_uri, .. }) = ua.poll_event() else {
            panic!("no IncomingCall")
        };
        assert_eq!(request_uri, "sip:oncall-night@127.0.0.1");
        let contacts = [
            RedirectContact {
                uri: "sip:erin@127.0.0.1:5062;transport=udp".into(),
                q: QValue::MAX,
            },
            RedirectContact {
                uri: "sip:+441632960001@trunk.example.net".into(),
                q: QValue::from_thousandths(900),
            },
        ];
        ua.redirect(call, 302, &contacts, t0);
        let out: Vec<String> = std::iter::from_fn(|| ua.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect();
        let resp = out.iter().find(|m| m.starts_with("SIP/2.0 302")).expect("a 302");
        assert!(resp.starts_with("SIP/2.0 302 Moved Temporarily\r\n"), "{resp}");
        let got: Vec<&str> = resp.lines().filter_map(|l| l.strip_prefix("Contact: ")).collect();
        assert_eq!(
            got,
            vec![
                "<sip:erin@127.0.0.1:5062;transport=udp>;q=1.0",
                "<sip:+441632960001@trunk.example.net>;q=0.9"
            ]
        );
        let to_tag = resp
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .and_then(|t| t.split(";tag=").nth(1))
            .expect("a To tag")
            .to_string();
        assert!(matches!(ua.poll_event(), Some(UaEvent::Ended { call: c, reason: EndReason::Rejected }) if c == call));
        // The ACK for the 302 (same branch, §17.1.1.3) is absorbed: no event, nothing sent.
        let ack = format!(
            "ACK sip:oncall-night@127.0.0.1 SIP/2.0\r\n{head}To: <sip:oncall-night@127.0.0.1>;tag={to_tag}\r\n\
             Call-ID: r1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        ua.handle_datagram(ack.as_bytes(), pbx, t0 + std::time::Duration::from_millis(10));
        assert!(ua.poll_event().is_none());
        assert!(ua.poll_transmit().is_none());
        // A redirect of a call that already ended does nothing.
        ua.redirect(call, 302, &contacts, t0);
        assert!(ua.poll_transmit().is_none());
    }

    #[test]
    fn contact_values_keep_uri_parameters_inside_the_brackets() {
        let c = RedirectContact {
            uri: "sip:erin@127.0.0.1:5062;transport=udp".into(),
            q: QValue::from_thousandths(900),
        };
        assert_eq!(c.header_value(), "<sip:erin@127.0.0.1:5062;transport=udp>;q=0.9");
    }
}
