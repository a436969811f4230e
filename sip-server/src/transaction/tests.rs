//! Transaction layer tests on a virtual clock: every timer fires at its RFC 3261 time without sleeping.

use super::*;
use crate::message::{parse_datagram, SipMessage};
use std::time::Duration;

fn peer(transport: Transport) -> Peer {
    Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport, conn: None }
}

fn request(method: &str, branch: &str) -> Request {
    let raw = format!(
        "{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
         From: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    match parse_datagram(raw.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    }
}

fn drain(layer: &mut TransactionLayer) -> Vec<String> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.data).lines().next().unwrap_or("").to_string())
        .collect()
}

/// Advances the virtual clock timer by timer, collecting the first line of everything sent and when.
fn run_until(layer: &mut TransactionLayer, start: Instant, end: Instant) -> Vec<(u128, String)> {
    let mut out = Vec::new();
    while let Some(t) = layer.poll_timeout() {
        if t > end {
            break;
        }
        layer.handle_timeout(t);
        for line in drain(layer) {
            out.push(((t - start).as_millis(), line));
        }
    }
    out
}

fn key_of_new_request(layer: &mut TransactionLayer) -> TxKey {
    loop {
        match layer.poll_event() {
            Some(TxEvent::Request { key, .. }) => return key,
            Some(_) => continue,
            None => panic!("no request event"),
        }
    }
}

#[test]
fn server_invite_sends_trying_and_absorbs_retransmissions() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let now = Instant::now();
    l.handle_request(request("INVITE", "z9hG4bKa"), peer(Transport::Udp), now);
    assert_eq!(drain(&mut l), vec!["SIP/2.0 100 Trying"]);
    let key = key_of_new_request(&mut l);
    l.handle_request(request("INVITE", "z9hG4bKa"), peer(Transport::Udp), now);
    assert_eq!(drain(&mut l), vec!["SIP/2.0 100 Trying"], "retransmission answered with the last provisional");
    assert!(l.poll_event().is_none(), "a retransmission is not a new request");
    assert!(l.invite_pending(&key));
}

#[test]
fn server_invite_error_retransmits_with_timer_g_until_timer_h() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKb");
    l.handle_request(req.clone(), peer(Transport::Udp), t0);
    let key = key_of_new_request(&mut l);
    drain(&mut l);
    l.respond(&key, Response::from_request_headers(&req.headers, 486, Some("t")), t0);
    assert_eq!(drain(&mut l), vec!["SIP/2.0 486 Busy Here"]);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    // G: 0.5, 1.5, 3.5, 7.5, then every T2=4 s; H at 32 s ends it.
    assert_eq!(&times[..5], &[500, 1500, 3500, 7500, 11500]);
    assert!(times.iter().all(|&t| t < 32_000));
    assert!(matches!(l.poll_event(), Some(TxEvent::Timeout { .. })), "Timer H reports the missing ACK");
    assert!(l.is_empty());
}

#[test]
fn ack_stops_timer_g_and_timer_i_ends_the_transaction() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKc");
    l.handle_request(req.clone(), peer(Transport::Udp), t0);
    let key = key_of_new_request(&mut l);
    l.respond(&key, Response::from_request_headers(&req.headers, 487, Some("t")), t0);
    drain(&mut l);
    l.handle_request(request("ACK", "z9hG4bKc"), peer(Transport::Udp), t0 + Duration::from_millis(100));
    assert!(l.poll_event().is_none(), "the ACK of an error response is absorbed");
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(10));
    assert!(sent.is_empty(), "no retransmission after the ACK: {sent:?}");
    assert!(l.is_empty(), "Timer I (T4) ended the transaction");
}

#[test]
fn reliable_transport_has_no_retransmissions() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKd");
    l.handle_request(req.clone(), peer(Transport::Tcp), t0);
    let key = key_of_new_request(&mut l);
    l.respond(&key, Response::from_request_headers(&req.headers, 603, Some("t")), t0);
    drain(&mut l);
    assert!(run_until(&mut l, t0, t0 + Duration::from_secs(40)).is_empty());
}

#[test]
fn server_non_invite_repeats_final_response_until_timer_j() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKe");
    l.handle_request(req.clone(), peer(Transport::Udp), t0);
    let key = key_of_new_request(&mut l);
    assert!(drain(&mut l).is_empty(), "no 100 for non-INVITE");
    l.respond(&key, Response::from_request_headers(&req.headers, 200, Some("t")), t0);
    assert_eq!(drain(&mut l).len(), 1);
    l.handle_request(req.clone(), peer(Transport::Udp), t0 + Duration::from_secs(1));
    assert_eq!(drain(&mut l), vec!["SIP/2.0 200 OK"]);
    run_until(&mut l, t0, t0 + Duration::from_secs(33));
    assert!(l.is_empty(), "Timer J (64*T1) ended it");
}

#[test]
fn client_non_invite_timer_e_and_f() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l.send_request(request("BYE", "z9hG4bKf"), peer(Transport::Udp), t0).unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(&times[..5], &[500, 1500, 3500, 7500, 11500], "E doubles up to T2");
    assert_eq!(l.poll_event(), Some(TxEvent::Timeout { key }), "Timer F");
}

#[test]
fn client_non_invite_completes_on_final_response() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("BYE", "z9hG4bKg");
    l.send_request(req.clone(), peer(Transport::Udp), t0).unwrap();
    drain(&mut l);
    l.handle_response(Response::from_request_headers(&req.headers, 200, None), t0 + Duration::from_millis(50));
    assert!(matches!(l.poll_event(), Some(TxEvent::Response { .. })));
    // a retransmitted 200 is absorbed during Timer K
    l.handle_response(Response::from_request_headers(&req.headers, 200, None), t0 + Duration::from_millis(60));
    assert!(l.poll_event().is_none());
    assert!(run_until(&mut l, t0, t0 + Duration::from_secs(6)).is_empty());
    assert!(l.is_empty(), "Timer K (T4)");
}

#[test]
fn client_invite_acks_errors_and_times_out_with_timer_b() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKh");
    l.send_request(req.clone(), peer(Transport::Udp), t0).unwrap();
    drain(&mut l);
    l.handle_response(Response::from_request_headers(&req.headers, 486, Some("x")), t0);
    assert!(matches!(l.poll_event(), Some(TxEvent::Response { .. })));
    assert_eq!(drain(&mut l), vec!["ACK sip:100@127.0.0.1 SIP/2.0"]);
    l.handle_response(Response::from_request_headers(&req.headers, 486, Some("x")), t0 + Duration::from_secs(1));
    assert_eq!(drain(&mut l), vec!["ACK sip:100@127.0.0.1 SIP/2.0"], "retransmitted error re-ACKed in Completed");
    run_until(&mut l, t0, t0 + Duration::from_secs(33));
    assert!(l.is_empty(), "Timer D");

    let mut l = TransactionLayer::new(TimerConfig::default());
    let key = l.send_request(request("INVITE", "z9hG4bKi"), peer(Transport::Udp), t0).unwrap();
    drain(&mut l);
    let sent = run_until(&mut l, t0, t0 + Duration::from_secs(40));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500], "Timer A doubles until B");
    assert_eq!(l.poll_event(), Some(TxEvent::Timeout { key }), "Timer B");
}
