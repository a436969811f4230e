//! Paging through a real carrier-like trunk (issue 6): Kamailio 5.6 plays the trunk (registrar and proxy,
//! [`Kamailio::start_trunk`]), OnCall registers to it and sends its INVITEs and MESSAGEs through it; Kamailio
//! challenges each with 407 and, once OnCall answered with the trunk's credentials, delivers it to the phone
//! registered there under the employee's number.
//!
//! - `a_page_call_through_the_trunk_is_challenged_then_reaches_the_phone`: the employee's phone is a baresip
//!   registered at Kamailio; it rings, answers by itself, hears the announcement, and the employee presses 1.
//! - `a_text_through_the_trunk_is_challenged_then_delivered`: a SIP MESSAGE notification goes the same way to
//!   a minimal UA (a UDP socket) registered at Kamailio, which answers 200; the notification is delivered.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::*;

const TRUNK_USER: &str = "oncall-trunk";
const TRUNK_PASSWORD: &str = "trunk-s3cret";
/// The employee's number; Kamailio delivers `sip:+15550001111@trunk` to the phone registered as 15550001111.
const NUMBER: &str = "+15550001111";
const NUMBER_USER: &str = "15550001111";

fn server(name: &str, kam: &Kamailio, texts: bool) -> Server {
    let texts = if texts { "[texts]\nenabled = true\ntransport = \"sip\"\n" } else { "" };
    Server::start(
        name,
        ServerOptions {
            extra_sip: format!(
                "\n[[trunks]]\nname = \"carrier\"\nregistrar = \"sip:{}\"\nusername = \"{TRUNK_USER}\"\npassword = \"{TRUNK_PASSWORD}\"\nexpires_secs = 300\n",
                kam.addr
            ),
            extra_config: format!("[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = 0\n\n{texts}"),
            ..ServerOptions::default()
        },
    )
}

/// The kinds of the Kamailio events whose kind starts with `prefix` (e.g. "INVITE-"), in order.
fn kinds(kam: &Kamailio, prefix: &str) -> Vec<String> {
    kam.events().into_iter().filter(|e| e.kind.starts_with(prefix)).map(|e| e.kind).collect()
}

#[test]
fn a_page_call_through_the_trunk_is_challenged_then_reaches_the_phone() {
    let dir = TestDir::new("kam-trunk-call");
    let kam = Kamailio::start_trunk(&dir.path, TRUNK_USER, TRUNK_PASSWORD);
    let server = server("kam-trunk-call", &kam, false);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    // The employee's mobile, registered at the carrier.
    let kam_addr = kam.addr;
    let mut phone = Baresip::start_with_account(&work.join("phone"), &silence_wav_secs(&work, 90), Duration::from_secs(90), |_| {
        format!("<sip:{NUMBER_USER}@{kam_addr};transport=udp>;regint=60;answermode=auto\n")
    });
    if kam.wait_event(Duration::from_secs(10), |e| e.kind == "ACCEPTED" && e.user == NUMBER_USER).is_none() {
        panic!("the phone did not register at kamailio: {:?}\n{}", kam.events(), tail(&phone.log(), 30));
    }
    let dana = server.oncall(&["person", "add", "--name", "Dana", "--email", "dana@example.test", "--phone", NUMBER]);
    let dana: i64 = dana.trim().parse().expect("person id");
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "dana@example.test", "--wait-secs", "60"]);

    leave_page_message(&server, &work, "The fire alarm panel shows a fault.");
    let Some((answered_at, _)) = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("the phone at the carrier never answered; kamailio: {:?}\n{}", kam.events(), server.log_tail(40));
    };
    let invites = kinds(&kam, "INVITE-");
    eprintln!("[e2e] kamailio saw: {invites:?}; replies {:?}", kinds(&kam, "REPLY-"));
    checks.check(invites.starts_with(&["INVITE-CHALLENGED".to_string(), "INVITE-AUTHORIZED".to_string(), "INVITE-RELAYED".to_string()]), || {
        format!("expected the INVITE challenged (407), then authorized and relayed: {invites:?}")
    });
    let events = kam.events();
    if let (Some(c), Some(r)) = (
        events.iter().find(|e| e.kind == "INVITE-CHALLENGED"),
        events.iter().find(|e| e.kind == "INVITE-RELAYED"),
    ) {
        eprintln!("[e2e] INVITE → 407 → INVITE with credentials relayed to the phone: {:.1} ms", (r.at - c.at) * 1000.0);
        checks.check(r.cseq > c.cseq, || format!("the answered INVITE has CSeq {} after the challenged {}", r.cseq, c.cseq));
    }
    checks.check(kinds(&kam, "REPLY-").iter().any(|k| k == "REPLY-200"), || "no 200 from the phone through kamailio".into());

    // Dana hears the announcement, then takes the request.
    accept_page_on(&server, &mut phone, answered_at, dana, &mut checks);
    checks.finish();
}

/// Registers the UDP socket `sock` (a minimal phone) at `registrar` as `user`, without credentials (the trunk
/// script asks none of phones); panics unless it gets 200.
fn register_raw(sock: &UdpSocket, registrar: std::net::SocketAddr, user: &str) {
    let local = sock.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:{registrar} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{port};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@{registrar}>;tag=r{port}\r\nTo: <sip:{user}@{registrar}>\r\nCall-ID: reg-{port}@127.0.0.1\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:{user}@{local}>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
        port = local.port()
    );
    sock.send_to(register.as_bytes(), registrar).expect("send REGISTER");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 200") {
                return;
            }
            panic!("REGISTER at kamailio answered: {}", text.lines().next().unwrap_or(""));
        }
    }
    panic!("no answer to REGISTER from kamailio");
}

#[test]
fn a_text_through_the_trunk_is_challenged_then_delivered() {
    let dir = TestDir::new("kam-trunk-text");
    let kam = Kamailio::start_trunk(&dir.path, TRUNK_USER, TRUNK_PASSWORD);
    let server = server("kam-trunk-text", &kam, true);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let phone = UdpSocket::bind((LOOPBACK, 0)).expect("bind the phone");
    phone.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    register_raw(&phone, kam.addr, NUMBER_USER);
    server.oncall(&["person", "add", "--name", "Dana", "--email", "dana@example.test", "--phone", NUMBER, "--text"]);
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "dana@example.test", "--wait-secs", "60"]);

    // The phone answers every MESSAGE 200 from its own thread (the text goes out while the caller still
    // hears the goodbye) and keeps the first one with its wall-clock arrival (kamailio logs wall clock).
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = phone.try_clone().expect("clone the phone socket");
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            let Ok((n, from)) = reader.recv_from(&mut buf) else { continue };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("MESSAGE ") {
                let _ = reader.send_to(sip_response(&text, "200 OK", "dana1", "").as_bytes(), from);
                let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
                let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
                let _ = tx.send((at, from, body));
            }
        }
    });
    leave_page_message(&server, &work, "The lift is out of order.");
    let Ok((at, from, body)) = rx.recv_timeout(Duration::from_secs(15)) else {
        panic!("no MESSAGE reached the phone; kamailio: {:?}\n{}", kam.events(), server.log_tail(40));
    };
    let repeats = std::iter::from_fn(|| rx.try_recv().ok()).count();
    if let Some(c) = kam.events().iter().find(|e| e.kind == "MESSAGE-CHALLENGED") {
        eprintln!("[e2e] MESSAGE → 407 → MESSAGE with credentials → at the phone: {:.1} ms ({repeats} retransmissions seen)", (at - c.at) * 1000.0);
    }
    eprintln!("[e2e] the phone got a MESSAGE from {from}: {body:?}");
    checks.check(from == kam.addr, || format!("the MESSAGE came from {from}, not through kamailio {}", kam.addr));
    checks.check(body.contains("/requests/"), || format!("the text names no request: {body:?}"));
    let messages = kinds(&kam, "MESSAGE-");
    eprintln!("[e2e] kamailio saw: {messages:?}; replies {:?}", kinds(&kam, "REPLY-"));
    checks.check(messages.starts_with(&["MESSAGE-CHALLENGED".to_string(), "MESSAGE-AUTHORIZED".to_string(), "MESSAGE-RELAYED".to_string()]), || {
        format!("expected the MESSAGE challenged (407), then authorized and relayed: {messages:?}")
    });
    let delivered = server.wait_for_request(Duration::from_secs(5), |r| {
        r["notifications"].as_array().is_some_and(|n| n.iter().any(|n| field(n, "status") == "delivered"))
    });
    checks.check(delivered.is_ok(), || format!("the text notification is not marked delivered: {delivered:?}"));
    checks.finish();
}
