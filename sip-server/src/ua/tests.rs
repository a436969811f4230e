//! User agent tests: whole call flows and the application-layer answers, on a virtual clock.

use super::*;
use crate::transaction::Transport;
use std::time::Duration;

fn ua() -> UserAgent {
    UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()))
}

fn caller() -> Peer {
    Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Udp, conn: None }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn invite(branch: &str, body: &str) -> Vec<u8> {
    let ct = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: call-{branch}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn sent(ua: &mut UserAgent) -> Vec<String> {
    std::iter::from_fn(|| ua.poll_transmit()).map(|t| String::from_utf8_lossy(&t.data).into_owned()).collect()
}

fn first_lines(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.lines().next().unwrap_or("")).collect()
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": "))).unwrap_or("")
}

fn incoming(ua: &mut UserAgent) -> CallRef {
    match ua.poll_event() {
        Some(UaEvent::IncomingCall { call, offer, .. }) => {
            assert!(offer.is_some());
            call
        }
        other => panic!("expected IncomingCall, got {other:?}"),
    }
}

#[test]
fn answer_ack_and_remote_bye() {
    let mut ua = ua();
    let t0 = Instant::now();
    ua.handle_datagram(&invite("z9hG4bK1", SDP), caller(), t0);
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 100 Trying"]);
    let call = incoming(&mut ua);
    ua.accept(call, "127.0.0.1:20000".parse().unwrap(), t0);
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert!(out[0].contains("m=audio 20000 RTP/AVP 0 101"));
    let to = header(&out[0], "To").to_string();
    assert!(to.contains(";tag="));
    assert!(header(&out[0], "Via").contains("received=127.0.0.1") || header(&out[0], "Via").contains("rport=5070"));

    // 200 retransmitted until the ACK
    ua.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 200 OK"]);
    let ack = format!(
        "ACK sip:oncall@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\nTo: {to}\r\nCall-ID: call-z9hG4bK1\r\nCSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    ua.handle_datagram(ack.as_bytes(), caller(), t0 + Duration::from_millis(600));
    assert_eq!(ua.poll_event(), Some(UaEvent::Confirmed { call }));
    ua.handle_timeout(t0 + Duration::from_secs(2));
    assert!(sent(&mut ua).is_empty(), "no retransmission after ACK");

    let bye = ack.replace("ACK sip", "BYE sip").replace("1 ACK", "2 BYE").replace("bK2", "bK3");
    ua.handle_datagram(bye.as_bytes(), caller(), t0 + Duration::from_secs(3));
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 200 OK"]);
    assert_eq!(ua.poll_event(), Some(UaEvent::Ended { call, reason: EndReason::RemoteHangup }));
    assert_eq!(ua.active_calls(), 0);
}

#[test]
fn cancel_before_answer_gets_487() {
    let mut ua = ua();
    let t0 = Instant::now();
    ua.handle_datagram(&invite("z9hG4bKc", SDP), caller(), t0);
    let call = incoming(&mut ua);
    sent(&mut ua);
    let cancel = "CANCEL sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc;rport\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: call-z9hG4bKc\r\n\
         CSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    ua.handle_datagram(cancel.as_bytes(), caller(), t0);
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]);
    assert!(header(&out[0], "CSeq").ends_with("CANCEL"));
    assert_eq!(ua.poll_event(), Some(UaEvent::Ended { call, reason: EndReason::Cancelled }));
}

#[test]
fn g729_only_gets_488() {
    let mut ua = ua();
    let sdp = SDP.replace("RTP/AVP 0 101", "RTP/AVP 18").replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    ua.handle_datagram(&invite("z9hG4bK9", &sdp), caller(), Instant::now());
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 100 Trying", "SIP/2.0 488 Not Acceptable Here"]);
    assert!(ua.poll_event().is_none());
}

#[test]
fn late_offer_answer_comes_in_ack() {
    let mut ua = ua();
    let t0 = Instant::now();
    ua.handle_datagram(&invite("z9hG4bKl", ""), caller(), t0);
    let call = match ua.poll_event() {
        Some(UaEvent::IncomingCall { call, offer: None, .. }) => call,
        other => panic!("{other:?}"),
    };
    ua.accept(call, "127.0.0.1:20002".parse().unwrap(), t0);
    let out = sent(&mut ua);
    assert!(out[1].contains("RTP/AVP 0 8 101"), "our offer lists both codecs and telephone-event");
    let to = header(&out[1], "To");
    let ack = format!(
        "ACK sip:oncall@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKla\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: {to}\r\nCall-ID: call-z9hG4bKl\r\nCSeq: 1 ACK\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    ua.handle_datagram(ack.as_bytes(), caller(), t0);
    assert!(matches!(ua.poll_event(), Some(UaEvent::MediaChanged { media, .. }) if media.codec == Codec::Pcmu));
    assert_eq!(ua.poll_event(), Some(UaEvent::Confirmed { call }));
}

#[test]
fn no_ack_ends_the_call_with_bye() {
    let mut ua = ua();
    let t0 = Instant::now();
    ua.handle_datagram(&invite("z9hG4bKn", SDP), caller(), t0);
    let call = incoming(&mut ua);
    ua.accept(call, "127.0.0.1:20004".parse().unwrap(), t0);
    sent(&mut ua);
    while let Some(next) = ua.poll_timeout() {
        if next > t0 + Duration::from_secs(40) {
            break;
        }
        ua.handle_timeout(next);
    }
    let out = sent(&mut ua);
    assert!(first_lines(&out).contains(&"BYE sip:alice@127.0.0.1:5070 SIP/2.0"));
    assert_eq!(ua.poll_event(), Some(UaEvent::Ended { call, reason: EndReason::Timeout }));
}

fn torture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/rfc4475/TC_{name}.dat", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn application_layer_answers_of_rfc4475() {
    // Every file of the corpus: the first final answer, "call" when the INVITE reaches the IVR, "none" when
    // nothing is sent (responses and unparseable input). docs/conformance.md explains each.
    for (name, expected) in [
        ("BADASPEC_I", "400"),
        ("BADBRANCH_V", "200"),
        ("BADDATE_V", "400"),
        ("BADDN_I", "400"),
        ("BADINV01_I", "400"),
        ("BADVERS_V", "505"),
        ("BCAST_V", "none"),
        ("BEXT01_V", "420"),
        ("BIGCODE_V", "none"),
        ("CLERR_I", "400"),
        ("CPARAM01_V", "405"),
        ("CPARAM02_V", "405"),
        ("DBLREQ", "405"),
        ("ESC01_V", "call"),
        ("ESC02_V", "501"),
        ("ESCNULL_V", "405"),
        ("ESCRURI_V", "400"),
        ("INSUF_I", "400"),
        ("INTMETH", "501"),
        ("INV2543_I", "call"),
        ("INVUT_V", "415"),
        ("LONGREQ_V", "call"),
        ("LTGTRURI_I", "400"),
        ("LWSDISP_V", "200"),
        ("LWSRURI_I", "400"),
        ("LWSSTART_V", "400"),
        ("MCL01_I", "400"),
        ("MISMATCH01_V", "400"),
        ("MISMATCH02_V", "400"),
        ("MPART01", "405"),
        ("MULTI01_I", "400"),
        ("NCL_I", "400"),
        ("NOREASON_V", "none"),
        ("NOVELSC_V", "416"),
        ("QUOTBAL_I", "400"),
        ("REGAUT01_V", "405"),
        ("REGBADCT_I", "400"),
        ("REGESCRT_V", "405"),
        ("SCALAR02_V", "400"),
        ("SCALARLG_V", "none"),
        ("SDP01_V", "406"),
        ("SEMIURI_V", "200"),
        ("TEST_I", "none"),
        ("TRANSPORTS_V", "200"),
        ("TRWS_I", "400"),
        ("UNKSCM_V", "416"),
        ("UNKSM2_V", "405"),
        ("UNREASON_V", "none"),
        ("WSINV", "481"),
        ("ZEROMF_V", "200"),
    ] {
        let mut ua = ua();
        ua.handle_datagram(&torture(name), caller(), Instant::now());
        let out = sent(&mut ua);
        let finals: Vec<&str> = first_lines(&out).into_iter().filter(|l| !l.contains(" 100 ")).collect();
        let offered = std::iter::from_fn(|| ua.poll_event()).any(|e| matches!(e, UaEvent::IncomingCall { .. }));
        match expected {
            "call" => assert!(offered && finals.is_empty(), "{name}: {out:?}"),
            "none" => assert!(out.is_empty() && !offered, "{name}: {out:?}"),
            code => {
                assert_eq!(finals.len(), 1, "{name}: {out:?}");
                assert!(finals[0].starts_with(&format!("SIP/2.0 {code}")), "{name}: got {}", finals[0]);
            }
        }
    }
}

/// With a registrar behind the user agent (`app_methods.register`), the REGISTER messages of RFC 4475 are
/// handed over and challenged: §3.3.9 (REGAUT01) says a registrar that authenticates answers 401 with a
/// scheme it understands; §10.3 authenticates before it looks at the To (UNKSM2) or the Contacts
/// (CPARAM01/02, REGESCRT). MESSAGE stays 405 while the application does not serve it.
#[test]
fn rfc4475_registers_are_challenged_when_a_registrar_serves_them() {
    use crate::registrar::{AccountKeys, Registrar, RegistrarConfig};
    let accounts: HashMap<String, AccountKeys> = HashMap::new();
    for (name, expected) in [
        ("REGAUT01_V", "401"),
        ("REGESCRT_V", "401"),
        ("CPARAM01_V", "401"),
        ("CPARAM02_V", "401"),
        ("ESCNULL_V", "401"),
        ("UNKSM2_V", "401"),
        ("DBLREQ", "401"),
        ("REGBADCT_I", "400"),
        ("MPART01", "405"),
    ] {
        let mut cfg = UaConfig::on("127.0.0.1:5060".parse().unwrap());
        cfg.app_methods.register = true;
        let mut ua = UserAgent::new(cfg);
        let now = Instant::now();
        let mut registrar = Registrar::new(RegistrarConfig::new("oncall"), [1; 32], now);
        ua.handle_datagram(&torture(name), caller(), now);
        while let Some(ev) = ua.poll_event() {
            if let UaEvent::Request { key, request, source } = ev {
                let resp = registrar.handle_register(&request, source, &accounts, now);
                ua.respond_to(&key, resp, now);
            }
        }
        let out = sent(&mut ua);
        assert_eq!(out.len(), 1, "{name}: {out:?}");
        assert!(out[0].starts_with(&format!("SIP/2.0 {expected}")), "{name}: got {}", out[0]);
        if expected == "401" {
            assert!(header(&out[0], "WWW-Authenticate").starts_with("Digest "), "{name}: {}", out[0]);
        }
    }
}

#[test]
fn register_and_message_are_handed_over_and_blocked_sources_dropped() {
    let mut cfg = UaConfig::on("127.0.0.1:5060".parse().unwrap());
    cfg.app_methods = checks::AppMethods { register: true, message: true };
    let mut ua = UserAgent::new(cfg);
    let t0 = Instant::now();
    let register = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1;rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@127.0.0.1:5070>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    ua.handle_datagram(register.as_bytes(), caller(), t0);
    let Some(UaEvent::Request { key, request, source }) = ua.poll_event() else { panic!("no Request event") };
    assert_eq!((request.method, source), (Method::Register, caller()));
    assert!(sent(&mut ua).is_empty(), "the application answers");
    // A retransmission is absorbed by the transaction, not handed over twice.
    ua.handle_datagram(register.as_bytes(), caller(), t0);
    assert!(ua.poll_event().is_none());
    ua.respond_to(&key, Response::from_request_headers(&request.headers, 200, Some("t")), t0);
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 200 OK"]);
    ua.handle_datagram(register.as_bytes(), caller(), t0);
    assert_eq!(first_lines(&sent(&mut ua)), vec!["SIP/2.0 200 OK"], "retransmission answered from the transaction");

    let message = "MESSAGE sip:oncall@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKm1\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:oncall@127.0.0.1>\r\nCall-ID: msg-1\r\nCSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\nMax-Forwards: 70\r\nContent-Length: 3\r\n\r\nACK";
    ua.handle_datagram(message.as_bytes(), caller(), t0);
    assert!(matches!(ua.poll_event(), Some(UaEvent::Request { request, .. }) if request.method == Method::Message && request.body == b"ACK"));

    // OPTIONS advertises what is served.
    let options = register.replace("REGISTER sip", "OPTIONS sip").replace("1 REGISTER", "1 OPTIONS").replace("bKr1", "bKo1");
    ua.handle_datagram(options.as_bytes(), caller(), t0);
    let out = sent(&mut ua);
    assert!(header(&out[0], "Allow").contains("REGISTER, MESSAGE"), "{out:?}");

    // A blocked source's REGISTERs vanish until the block ends.
    ua.block_registers_from(caller().addr.ip(), t0 + Duration::from_secs(60), t0);
    let again = register.replace("bKr1", "bKr2").replace("1 REGISTER", "2 REGISTER");
    ua.handle_datagram(again.as_bytes(), caller(), t0 + Duration::from_secs(1));
    assert!(ua.poll_event().is_none() && sent(&mut ua).is_empty());
    assert_eq!(ua.stats.dropped_registers, 1);
    ua.handle_datagram(again.as_bytes(), caller(), t0 + Duration::from_secs(61));
    assert!(matches!(ua.poll_event(), Some(UaEvent::Request { .. })));
}

mod outbound_calls {
    use super::*;
    use crate::ua::outbound::OutboundCall;

    fn peer(port: u16) -> Peer {
        Peer { addr: format!("127.0.0.1:{port}").parse().unwrap(), transport: Transport::Udp, conn: None }
    }

    fn agent(port: u16) -> UserAgent {
        UserAgent::new(UaConfig::on(format!("127.0.0.1:{port}").parse().unwrap()))
    }

    /// Delivers everything each side sent to the other until both are quiet.
    fn exchange(a: &mut UserAgent, b: &mut UserAgent, now: Instant) {
        loop {
            let to_b: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
            let to_a: Vec<_> = std::iter::from_fn(|| b.poll_transmit()).collect();
            if to_a.is_empty() && to_b.is_empty() {
                return;
            }
            for t in to_b {
                b.handle_datagram(&t.data, peer(5060), now);
            }
            for t in to_a {
                a.handle_datagram(&t.data, peer(5080), now);
            }
        }
    }

    fn events(ua: &mut UserAgent) -> Vec<UaEvent> {
        std::iter::from_fn(|| ua.poll_event()).collect()
    }

    fn call_to_b(a: &mut UserAgent, now: Instant) -> CallRef {
        a.place_call(
            OutboundCall {
                target: "sip:employee@127.0.0.1:5080".into(),
                via: peer(5080),
                from_uri: "sip:oncall@127.0.0.1:5060".into(),
                from_display: Some("OnCall".into()),
                local_media: "127.0.0.1:20010".parse().unwrap(),
                credentials: None,
                media_encryption: Default::default(),
            },
            now,
        )
    }

    #[test]
    fn answered_then_callee_hangs_up() {
        let (mut a, mut b) = (agent(5060), agent(5080));
        let t = Instant::now();
        let call = call_to_b(&mut a, t);
        exchange(&mut a, &mut b, t);
        let incoming = match events(&mut b).pop() {
            Some(UaEvent::IncomingCall { call, .. }) => call,
            other => panic!("{other:?}"),
        };
        b.ring(incoming, t);
        exchange(&mut a, &mut b, t);
        assert_eq!(events(&mut a), vec![UaEvent::Progress { call, status: 180 }]);
        b.accept(incoming, "127.0.0.1:20020".parse().unwrap(), t);
        exchange(&mut a, &mut b, t);
        match events(&mut a).as_slice() {
            [UaEvent::Answered { call: c, media: Some(m) }] => {
                assert_eq!(*c, call);
                assert_eq!(m.remote, Some("127.0.0.1:20020".parse().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events(&mut b), vec![UaEvent::Confirmed { call: incoming }], "our ACK reached the callee");
        b.hangup(incoming, t);
        exchange(&mut a, &mut b, t);
        assert_eq!(events(&mut a), vec![UaEvent::Ended { call, reason: EndReason::RemoteHangup }]);
        assert_eq!(events(&mut b), vec![UaEvent::Ended { call: incoming, reason: EndReason::LocalHangup }]);
    }

    #[test]
    fn busy_callee_fails_the_call_and_cancel_gets_487() {
        let (mut a, mut b) = (agent(5060), agent(5080));
        let t = Instant::now();
        let call = call_to_b(&mut a, t);
        exchange(&mut a, &mut b, t);
        let UaEvent::IncomingCall { call: incoming, .. } = events(&mut b).remove(0) else { panic!() };
        b.reject(incoming, 486, t);
        exchange(&mut a, &mut b, t);
        assert_eq!(events(&mut a), vec![UaEvent::Ended { call, reason: EndReason::Failed(486) }]);

        let call = call_to_b(&mut a, t);
        exchange(&mut a, &mut b, t);
        events(&mut b);
        a.cancel(call, t);
        exchange(&mut a, &mut b, t);
        assert_eq!(events(&mut a), vec![UaEvent::Ended { call, reason: EndReason::Cancelled }]);
        assert!(matches!(events(&mut b).as_slice(), [UaEvent::Ended { reason: EndReason::Cancelled, .. }]));
    }

    #[test]
    fn cancel_waits_for_a_provisional_response() {
        let mut a = agent(5060);
        let t = Instant::now();
        let call = call_to_b(&mut a, t);
        let invite = String::from_utf8(a.poll_transmit().unwrap().data).unwrap();
        a.cancel(call, t);
        assert!(a.poll_transmit().is_none(), "§9.1: no CANCEL before a provisional response");
        let SipMessage::Request(req) = crate::message::parse_datagram(invite.as_bytes()).unwrap() else { panic!() };
        let trying = Response::from_request_headers(&req.headers, 100, None);
        a.handle_datagram(&trying.to_bytes(), peer(5080), t);
        let sent: Vec<String> = std::iter::from_fn(|| a.poll_transmit()).map(|t| String::from_utf8(t.data).unwrap()).collect();
        assert!(matches!(sent.as_slice(), [c] if c.starts_with("CANCEL ")), "{sent:?}");
        assert_eq!(header(&sent[0], "Via"), header(&invite, "Via"), "the CANCEL matches the INVITE's branch");
        let ringing = Response::from_request_headers(&req.headers, 180, Some("b1"));
        a.handle_datagram(&ringing.to_bytes(), peer(5080), t);
        assert!(a.poll_transmit().is_none(), "one CANCEL only");
        assert!(events(&mut a).is_empty(), "no progress reported for a call being given up");
    }

    #[test]
    fn nobody_answers_the_invite_timer_b() {
        let mut a = agent(5060);
        let t = Instant::now();
        let call = call_to_b(&mut a, t);
        while let Some(next) = a.poll_timeout() {
            if next > t + Duration::from_secs(40) {
                break;
            }
            a.handle_timeout(next);
        }
        assert_eq!(events(&mut a), vec![UaEvent::Ended { call, reason: EndReason::Unreachable }]);
    }

    #[test]
    fn proxy_challenge_is_answered_with_credentials() {
        use crate::auth::digest::{Challenge, Credentials, Algorithm};
        let mut a = agent(5060);
        let t = Instant::now();
        let mut out = OutboundCall {
            target: "sip:+15551230000@trunk.example".into(),
            via: peer(5080),
            from_uri: "sip:oncall@127.0.0.1".into(),
            from_display: None,
            local_media: "127.0.0.1:20030".parse().unwrap(),
            credentials: Some(("alice".into(), "secret".into())),
            media_encryption: Default::default(),
        };
        let call = a.place_call(out.clone(), t);
        let invite = String::from_utf8(a.poll_transmit().unwrap().data).unwrap();
        let challenge = Challenge { realm: "trunk".into(), nonce: "n0nce".into(), opaque: None, algorithm: Algorithm::Sha256, qop_auth: true, stale: false };
        let SipMessage::Request(req) = crate::message::parse_datagram(invite.as_bytes()).unwrap() else { panic!() };
        let mut resp = Response::from_request_headers(&req.headers, 407, Some("p1"));
        resp.headers.push("Proxy-Authenticate", challenge.to_header());
        a.handle_datagram(&resp.to_bytes(), peer(5080), t);
        let sent: Vec<String> = std::iter::from_fn(|| a.poll_transmit()).map(|t| String::from_utf8(t.data).unwrap()).collect();
        assert!(sent[0].starts_with("ACK "), "the 407 is ACKed by the transaction");
        let retry = &sent[1];
        assert!(retry.starts_with("INVITE ") && retry.contains("CSeq: 2 INVITE"));
        let auth = header(retry, "Proxy-Authorization");
        assert!(Credentials::parse(auth).unwrap().verify(&challenge, "INVITE", "secret"));
        assert!(events(&mut a).is_empty(), "no failure reported for a challenge we can answer");
        // Without credentials the 407 fails the call.
        out.credentials = None;
        let call2 = a.place_call(out, t);
        let invite = String::from_utf8(a.poll_transmit().unwrap().data).unwrap();
        let SipMessage::Request(req) = crate::message::parse_datagram(invite.as_bytes()).unwrap() else { panic!() };
        let mut resp = Response::from_request_headers(&req.headers, 407, Some("p2"));
        resp.headers.push("Proxy-Authenticate", challenge.to_header());
        a.handle_datagram(&resp.to_bytes(), peer(5080), t);
        assert_eq!(events(&mut a), vec![UaEvent::Ended { call: call2, reason: EndReason::Failed(407) }]);
        let _ = call;
    }
}
