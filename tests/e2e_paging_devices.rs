//! Paging phones that registered with OnCall itself, and escalation past a busy phone (issue 6), with real peers
//! on loopback:
//!
//! - `both_registered_phones_ring_and_the_loser_gets_cancel`: Erin has two phones (baresips) registered to
//!   OnCall's registrar under her SIP account. A caller leaves a "page on-call" message; both phones ring
//!   together (their INVITEs arrive within a second of each other), Erin answers the desk phone and
//!   presses 1, the request is acknowledged by her, and the other phone's ring ends with a CANCEL.
//! - `a_busy_first_person_escalates_to_the_next_at_once`: the first person's phone answers 486 Busy Here; the
//!   second person's phone rings right after (not when the step's 30 s wait is over) and they accept.
//! - `keys_cross_the_bridge_both_ways`: a holding caller is bridged to Erin; a key Erin presses (RFC 4733)
//!   reaches the caller's phone, and one the caller presses reaches Erin's (baresip's CALL_DTMF_START).

mod support;

use serde_json::Value;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const REGISTRAR: &str = "[registrar]
enabled = true
realm = \"oncall-test\"
algorithms = [\"MD5\"]
min_expires_secs = 30
";

/// `max_hold_secs` 0: the caller is released after the message.
fn paging_server(name: &str, registrar: bool, max_hold_secs: u64) -> Server {
    let registrar = if registrar { REGISTRAR } else { "" };
    Server::start(
        name,
        ServerOptions {
            extra_config: format!("[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = {max_hold_secs}\n\n{registrar}"),
            ..ServerOptions::default()
        },
    )
}

fn add_person(server: &Server, args: &[&str]) -> i64 {
    let mut all = vec!["person", "add"];
    all.extend_from_slice(args);
    let out = server.oncall(&all);
    out.trim().parse().unwrap_or_else(|_| panic!("`oncall person add` printed {out:?}, not an id"))
}

/// Waits for the request to be acknowledged; checks by whom.
fn check_acknowledged_by(server: &Server, checks: &mut Checks, person: i64, who: &str) {
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => {
            eprintln!("[e2e] request after {who} pressed 1: {row}");
            checks.check(field(&row, "acknowledged_by") == format!("person:{person}"), || {
                format!("acknowledged_by {:?}, expected {who}", field(&row, "acknowledged_by"))
            });
        }
        Err(rows) => checks.fail(format!("the request was not acknowledged 10 s after {who} pressed 1: {rows:#?}")),
    }
}

#[test]
fn both_registered_phones_ring_and_the_loser_gets_cancel() {
    let started = Instant::now();
    let server = paging_server("paging-devices", true, 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let erin_id = add_person(&server, &["--name", "Erin", "--email", "erin@example.test", "--phone", "+441632960001"]);
    let out = server.oncall(&["person", "sip-account", "erin@example.test", "--username", "erin", "--password", "desk-phone-7"]);
    assert!(out.contains("SIP account erin set"), "{out}");
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);
    // No wait: an account created a moment ago registers at once (issue 18 item 2).

    // Two phones on one account, both ringing; the test answers the desk phone, the mobile only rings. (An
    // auto-answering phone could answer before the page's order for the other phone reached the call side, and
    // then rightly it is never rung.)
    // `;transport=udp`: without it baresip 1.0 looks the host up (NAPTR/SRV) and fails.
    let mic = silence_wav_secs(&work, 90);
    let account = |answer: &str| {
        let sip = server.sip_udp;
        let answer = answer.to_string();
        move |_port: u16| format!("<sip:erin@{sip};transport=udp>;auth_pass=desk-phone-7;regint=60{answer}\n")
    };
    let mut desk = Baresip::start_with_account(&work.join("desk"), &mic, Duration::from_secs(90), account(""));
    let mut mobile = Baresip::start_with_account(&work.join("mobile"), &mic, Duration::from_secs(90), account(""));
    // (baresip's REGISTER_OK may come before its control connection is up: read OnCall's log instead.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches("device registered username=erin").count() < 2 {
        if Instant::now() > deadline {
            panic!("Erin's phones did not both register:\n{}\n{}\n{}", tail(&desk.log(), 20), tail(&mobile.log(), 20), server.log_tail(30));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let devices = server.oncall(&["person", "sip-devices", "erin@example.test"]);
    eprintln!("[e2e] oncall person sip-devices erin@example.test:\n{devices}");

    leave_page_message(&server, &work, "The heating in the server room has failed.");
    let desk_ring = desk.wait_event("CALL_INCOMING", Duration::from_secs(15));
    let mobile_ring = mobile.wait_event("CALL_INCOMING", Duration::from_secs(15));
    let (Some((desk_at, _)), Some((mobile_at, _))) = (&desk_ring, &mobile_ring) else {
        panic!(
            "both phones should ring: desk {desk_ring:?}, mobile {mobile_ring:?}\n{}",
            server.log_tail(40)
        );
    };
    let apart = if desk_at > mobile_at { *desk_at - *mobile_at } else { *mobile_at - *desk_at };
    eprintln!("[e2e] both phones got the page {:.1} ms apart", apart.as_secs_f64() * 1000.0);
    checks.check(apart < Duration::from_secs(1), || format!("the phones rang {apart:?} apart, not together"));
    desk.command("accept", "");
    let Some((answered_at, _)) = desk.wait_event("CALL_ESTABLISHED", Duration::from_secs(5)) else {
        panic!("the desk phone could not answer:\n{}\n{}", tail(&desk.log(), 20), server.log_tail(30));
    };
    // The mobile's ring ends by CANCEL once the desk phone answered.
    match mobile.wait_event("CALL_CLOSED", Duration::from_secs(5)) {
        Some((closed_at, ev)) => {
            // Signed: the mobile's CANCEL can beat the desk phone's own event to the test.
            let after = closed_at.saturating_duration_since(answered_at);
            let signed_ms = if closed_at >= answered_at { after.as_secs_f64() } else { -(answered_at - closed_at).as_secs_f64() } * 1000.0;
            eprintln!(
                "[e2e] the mobile stopped ringing {signed_ms:+.1} ms from the desk phone's answer ({}), {:.1} ms after it started ringing",
                field(&ev, "param"),
                closed_at.saturating_duration_since(*mobile_at).as_secs_f64() * 1000.0
            );
            checks.check(after < Duration::from_secs(2), || format!("the mobile rang on for {after:?} after the answer"));
            // libre (baresip's SIP stack) closes a ringing session with ECONNRESET when a CANCEL arrives.
            checks.check(field(&ev, "param") == "Connection reset by peer", || {
                format!("the mobile's ring ended with {:?}, not by CANCEL", field(&ev, "param"))
            });
        }
        None => checks.fail("the mobile phone's ring was never ended"),
    }
    let log = server.log();
    checks.check(log.contains("another phone answered: cancelling this one"), || "no CANCEL of the other phone in the log".into());
    checks.check(log.matches("paging a registered phone").count() == 2, || {
        format!("expected 2 \"paging a registered phone\" lines, got {}", log.matches("paging a registered phone").count())
    });
    checks.check(mobile.wait_event("CALL_ESTABLISHED", Duration::from_millis(200)).is_none(), || "the mobile got a call established".into());

    sleep_until(answered_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    desk.command("sndcode", "1");
    check_acknowledged_by(&server, &mut checks, erin_id, "Erin (desk phone)");
    desk.command("hangup", "");
    desk.quit();
    mobile.quit();
    eprintln!("[e2e] took {:.1} s", started.elapsed().as_secs_f64());
    checks.finish();
}

/// A phone that answers every INVITE with 486 Busy Here (and its retransmissions with the same), on a loopback
/// UDP port; returns its URI and when it first said 486.
fn busy_phone(limit: Duration) -> (String, Arc<Mutex<Option<Instant>>>) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).expect("bind the busy phone");
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let uri = format!("sip:ghost@{}", sock.local_addr().unwrap());
    let busy_at = Arc::new(Mutex::new(None));
    let at = busy_at.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 8192];
        while Instant::now() < deadline {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            if req.starts_with("INVITE ") {
                let _ = sock.send_to(sip_response(&req, "486 Busy Here", "busy1", "").as_bytes(), from);
                at.lock().unwrap().get_or_insert_with(Instant::now);
            }
        }
    });
    (uri, busy_at)
}

#[test]
fn a_busy_first_person_escalates_to_the_next_at_once() {
    let started = Instant::now();
    let server = paging_server("paging-busy", false, 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let (ghost_uri, busy_at) = busy_phone(Duration::from_secs(60));
    add_person(&server, &["--name", "Ghost", "--email", "ghost@example.test", "--sip-uri", &ghost_uri]);
    let mut frank = Baresip::start_callee(&work.join("frank"), &silence_wav_secs(&work, 90), Duration::from_secs(90), "frank");
    let frank_id = add_person(&server, &["--name", "Frank", "--email", "frank@example.test", "--sip-uri", &frank.uri("frank")]);
    server.oncall(&["policy", "add", "--name", "Chain", "--person", "ghost@example.test", "--person", "frank@example.test", "--wait-secs", "30"]);

    leave_page_message(&server, &work, "The car park barrier is stuck closed.");
    // Frank's phone answers by itself as the INVITE arrives (auto-answer: no CALL_INCOMING event).
    let Some((frank_at, _)) = frank.wait_event("CALL_ESTABLISHED", Duration::from_secs(20)) else {
        panic!("Frank's phone never rang; requests: {:#?}\n{}", server.requests(), server.log_tail(40));
    };
    let frank_ring = frank_at;
    match *busy_at.lock().unwrap() {
        Some(busy) => {
            let after = frank_ring.saturating_duration_since(busy);
            eprintln!("[e2e] Frank's phone rang {:.1} ms after Ghost's 486 (the step waits 30 s)", after.as_secs_f64() * 1000.0);
            checks.check(after < Duration::from_secs(2), || format!("the next step began {after:?} after the 486"));
        }
        None => checks.fail("Ghost's phone never got an INVITE (no 486 sent)"),
    }
    sleep_until(frank_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    frank.command("sndcode", "1");
    check_acknowledged_by(&server, &mut checks, frank_id, "Frank");
    // Ghost's notification failed, Frank's was answered.
    let requests = server.requests();
    let notifications: Vec<(String, String)> = requests
        .first()
        .and_then(|r| r["notifications"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n: &Value| (n["person"].to_string(), field(n, "status").to_string()))
        .collect();
    eprintln!("[e2e] notifications: {notifications:?}");
    checks.check(
        notifications == vec![("1".to_string(), "failed".to_string()), ("2".to_string(), "accepted".to_string())],
        || format!("expected Ghost's notification failed and Frank's accepted: {notifications:?}"),
    );
    // Issue 18 item 4: each attempt says where it went and, for Ghost's, why it failed in words.
    let attempts = requests.first().and_then(|r| r["notifications"].as_array().cloned()).unwrap_or_default();
    let ghost = attempts.first().cloned().unwrap_or_default();
    checks.check(field(&ghost, "target") == ghost_uri && field(&ghost, "detail").contains("busy (486)"), || {
        format!("Ghost's attempt should name {ghost_uri} and say busy (486): {ghost}")
    });
    frank.command("hangup", "");
    frank.quit();
    eprintln!("[e2e] took {:.1} s", started.elapsed().as_secs_f64());
    checks.finish();
}

#[test]
fn keys_cross_the_bridge_both_ways() {
    let started = Instant::now();
    let server = paging_server("paging-dtmf-relay", false, 120);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let mut erin = Baresip::start_callee(&work.join("erin"), &silence_wav_secs(&work, 90), Duration::from_secs(90), "erin");
    let erin_id = add_person(&server, &["--name", "Erin", "--email", "erin@example.test", "--sip-uri", &erin.uri("erin")]);
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);

    // The caller: 1 ("page on-call"), the message after the record prompt, #, then holds (silence).
    let speech = speech_wav(&work, "speech", "Someone is stuck in the lift.");
    let hush = silence_wav_secs(&work, 1);
    let (mut caller, _) = call_and_hold(&server, &work, &speech, &hush);

    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not phone Erin; requests: {:#?}\n{}", server.requests(), server.log_tail(40));
    };
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    erin.command("sndcode", "1");
    check_acknowledged_by(&server, &mut checks, erin_id, "Erin");
    checks.check(server.log().contains("employee bridged to the caller"), || "Erin was not bridged to the caller".into());
    thread::sleep(Duration::from_millis(500));

    // Erin presses 4: the caller's phone hears the key as a telephone-event.
    erin.command("sndcode", "4");
    let pressed = Instant::now();
    match caller.wait_event("CALL_DTMF_START", Duration::from_secs(3)) {
        Some((at, ev)) => {
            eprintln!("[e2e] Erin's 4 reached the caller after {:.1} ms as {:?}", (at - pressed).as_secs_f64() * 1000.0, field(&ev, "param"));
            checks.check(field(&ev, "param") == "4", || format!("the caller got key {:?}, not 4", field(&ev, "param")));
        }
        None => checks.fail("Erin's key 4 never reached the caller"),
    }
    // The caller presses 6: Erin's phone gets it.
    caller.command("sndcode", "6");
    let pressed = Instant::now();
    match erin.wait_event("CALL_DTMF_START", Duration::from_secs(3)) {
        Some((at, ev)) => {
            eprintln!("[e2e] the caller's 6 reached Erin after {:.1} ms as {:?}", (at - pressed).as_secs_f64() * 1000.0, field(&ev, "param"));
            checks.check(field(&ev, "param") == "6", || format!("Erin got key {:?}, not 6", field(&ev, "param")));
        }
        None => checks.fail("the caller's key 6 never reached Erin"),
    }
    erin.command("hangup", "");
    let _ = caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(prompt_secs("staff_left") + prompt_secs("goodbye") + 4.0));
    caller.quit();
    erin.quit();
    eprintln!("[e2e] took {:.1} s", started.elapsed().as_secs_f64());
    checks.finish();
}
