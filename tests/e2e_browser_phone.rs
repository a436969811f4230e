//! The browser phone (issue 19) in a real browser: Debian's headless Chromium, logged in as an employee, takes
//! pages in its tab over WebRTC. Its microphone is a fake device playing a speech WAV.
//!
//! - `the_browser_takes_a_page_and_talks_to_the_caller`: a caller (baresip) presses 1, leaves a message and
//!   holds; the tab rings, the test clicks Answer and then "1 Talk to the caller"; the request is acknowledged by
//!   the employee, the caller hears the browser's speech and the browser receives the caller's (WebRTC
//!   `getStats` inbound audio energy); the conversation is recorded in stereo with both voices. Then the tab goes
//!   away mid-call (it navigates off the site): its leg ends and the caller hears that staff left.
//! - The WebSocket's refusals, spoken by hand on a raw socket: no session (4401), another origin (4403), a
//!   malformed message with the browser's own session cookie (4400).

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::*;
use webdriver::{ensure_browser, Driver};

const PASSWORD: &str = "browser-phone-42";

const REGISTRAR: &str = "[registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\nmin_expires_secs = 30\n";

/// A paging server with Erin (a login, and the only person of the policy), and Chromium logged in as her with the
/// browser phone on; its microphone says `erin_speech`. Returns the server, the browser (its profile folder lives in
/// the server's) and Erin's person id.
fn erin_in_a_browser(name: &str, extra_config: &str, erin_speech: &std::path::Path) -> (Server, Driver, i64) {
    ensure_browser();
    let config = format!("[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = 120\n\n{extra_config}");
    let server = Server::start(name, ServerOptions { extra_config: config, ..ServerOptions::default() });
    let erin_id: i64 = server.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", "+441632960001"]).trim().parse().unwrap();
    server.oncall(&["user", "add", "--name", "Erin", "--email", "erin@example.test", "--role", "employee", "--password", PASSWORD]);
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);
    // The browser's microphone: Erin's sentence and a pause, looped by Chromium for as long as the call lasts.
    let work = server.dir.subdir("peers");
    let erin_mic = work.join("erin-microphone.wav");
    compose_wav(&erin_mic, read_wav(erin_speech).secs() + 1.5, &[(0.5, erin_speech)]);
    let profile = server.dir.subdir("chromium-profile");
    let flags = [
        "--use-fake-device-for-media-stream".to_string(),
        "--use-fake-ui-for-media-stream".into(),
        format!("--use-file-for-fake-audio-capture={}", erin_mic.display()),
        "--autoplay-policy=no-user-gesture-required".into(),
        // The server's media address is 127.0.0.1 here.
        "--allow-loopback-in-peer-connection".into(),
    ];
    let d = Driver::start(format!("http://{}", server.http), &profile, &flags);
    d.login("erin@example.test", PASSWORD);
    d.click("#phone-on");
    d.wait_for("the browser phone ready", "return document.getElementById('browser-phone').dataset.state === 'ready'");
    let ready = d.js("return document.getElementById('phone-status').innerText", json!([]));
    eprintln!("[e2e] browser phone: {ready}");
    (server, d, erin_id)
}

/// Waits for the tab to ring, answers and waits for the call's audio to connect; returns when it did.
fn answer_in_the_browser(d: &Driver, since: Instant) -> Instant {
    let rang = d.wait_up_to(Duration::from_secs(20), "the tab ringing", "return document.getElementById('browser-phone').dataset.state === 'ringing' && document.getElementById('phone-what').innerText");
    eprintln!("[e2e] the tab rang {:.1} s after the message: {rang}", since.elapsed().as_secs_f64());
    d.click("#phone-answer");
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.js("return document.getElementById('browser-phone').dataset.state", json!([])) != json!("in-call") {
        if Instant::now() > deadline {
            let status = d.js("return document.getElementById('phone-status').innerText", json!([]));
            let console = d.cmd("POST", "/se/log", json!({"type": "browser"}));
            panic!("the browser's call did not connect in 15 s: {status}\nconsole: {console:#}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Instant::now()
}

#[test]
fn the_browser_takes_a_page_and_talks_to_the_caller() {
    let dir = TestDir::new("browser-phone-speech");
    let erin_speech = speech_wav(&dir.subdir("speech"), "erin-speech", "Hello, this is Erin from maintenance. I am on my way to you now.");
    let (server, d, erin_id) = erin_in_a_browser("browser-phone", "", &erin_speech);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();

    // The WebSocket's refusals, with the session Chromium holds.
    let cookie = d.cmd("GET", "/cookie/oncall_session", json!({}))["value"].as_str().unwrap_or("").to_string();
    refusals(server.http, &cookie, &mut checks);

    let message = speech_wav(&work, "message", "Water is coming through the ceiling of apartment twelve.");
    let reply = speech_wav(&work, "reply", "Thank you. Please hurry, the water is rising.");
    let (mut caller, caller_at) = call_and_hold(&server, &work, &message, &reply);
    let answered = answer_in_the_browser(&d, caller_at);
    sleep_until(answered + Duration::from_secs_f64(announcement_secs() + 0.5));
    let energy_before = inbound_energy(&d);
    d.click("[data-key='1']");
    let bridged = Instant::now();
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))),
        Err(rows) => checks.fail(format!("the request was not acknowledged 10 s after the browser pressed 1: {rows:#?}")),
    }
    sleep_until(bridged + Duration::from_secs(10));
    let energy_after = inbound_energy(&d);
    eprintln!("[e2e] the browser's inbound audio: energy {energy_before:?} before the bridge, {energy_after:?} after 10 s of it");
    match (energy_before, energy_after) {
        (Some(a), Some(b)) => checks.check(b - a > 1e-4, || format!("the browser received no speech from the caller (energy {a} → {b})")),
        _ => checks.fail("the browser's call has no inbound audio statistics"),
    }

    // The tab goes away mid-call: its leg ends, and the caller is told and released.
    d.go("/account");
    let closing = prompt_secs("staff_left") + prompt_secs("goodbye");
    let released = caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(closing + 6.0));
    checks.check(released.is_some(), || format!("the caller was not released after the tab left:\n{}", server.log_tail(30)));
    caller.quit();

    check_heard(&mut checks, "the caller", caller.heard_wav(), (bridged - caller_at).as_secs_f64(), &erin_speech);
    check_conversation(&server, &mut checks, &reply, "the browser", &erin_speech);
    let log = server.log();
    checks.check(!log.contains("panicked"), || "the server panicked".into());
    checks.finish();
}

/// Erin's browser and her registered desk phone ring together for one page; the browser answers, the phone's
/// ring ends with a CANCEL, and Erin's key in the browser acknowledges the request.
#[test]
fn a_browser_and_a_phone_ring_together_and_the_first_to_answer_wins() {
    let dir = TestDir::new("browser-phone-two-speech");
    let erin_speech = speech_wav(&dir.subdir("speech"), "erin-speech", "Erin here.");
    let (server, d, erin_id) = erin_in_a_browser("browser-phone-two", REGISTRAR, &erin_speech);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    server.oncall(&["person", "sip-account", "erin@example.test", "--username", "erin", "--password", "desk-phone-7"]);
    let sip = server.sip_udp;
    let mic = silence_wav_secs(&work, 90);
    let mut desk = Baresip::start_with_account(&work.join("desk"), &mic, Duration::from_secs(90), move |_| format!("<sip:erin@{sip};transport=udp>;auth_pass=desk-phone-7;regint=60\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("device registered username=erin") {
        assert!(Instant::now() < deadline, "Erin's desk phone did not register:\n{}", server.log_tail(30));
        std::thread::sleep(Duration::from_millis(100));
    }

    let left = Instant::now();
    leave_page_message(&server, &work, "The heating in the server room has failed.");
    let desk_ring = desk.wait_event("CALL_INCOMING", Duration::from_secs(15));
    checks.check(desk_ring.is_some(), || "the desk phone did not ring".into());
    let answered = answer_in_the_browser(&d, left);
    match desk.wait_event("CALL_CLOSED", Duration::from_secs(5)) {
        // libre (baresip's SIP stack) closes a ringing session with ECONNRESET when a CANCEL arrives.
        Some((_, ev)) => checks.check(field(&ev, "param") == "Connection reset by peer", || format!("the desk phone's ring ended with {:?}, not by CANCEL", field(&ev, "param"))),
        None => checks.fail("the desk phone rang on after the browser answered"),
    }
    sleep_until(answered + Duration::from_secs_f64(announcement_secs() + 0.5));
    d.click("[data-key='1']");
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))),
        Err(rows) => checks.fail(format!("the request was not acknowledged after the browser pressed 1: {rows:#?}")),
    }
    d.click("#phone-hangup");
    desk.quit();
    let log = server.log();
    checks.check(log.contains("another phone answered: cancelling this one"), || "no CANCEL of the desk phone in the log".into());
    checks.check(!log.contains("panicked"), || "the server panicked".into());
    checks.finish();
}

/// The browser's received audio energy so far (`getStats`' inbound-rtp `totalAudioEnergy`), if it has a call.
fn inbound_energy(d: &Driver) -> Option<f64> {
    let script = "const done = arguments[arguments.length - 1];
        window.oncallPhone.stats().then(function (r) {
            let e = null;
            if (r) r.forEach(function (s) { if (s.type === 'inbound-rtp' && s.kind === 'audio') e = s.totalAudioEnergy || 0; });
            done(e);
        }).catch(function () { done(null); });";
    d.js_async(script, json!([])).as_f64()
}

/// The close code and reason the server's first frame carries, for a WebSocket handshake with these headers,
/// after sending `send` (a text message) once it is open.
fn ws_close(http: SocketAddr, origin: &str, cookie: Option<&str>, send: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie.map(|c| format!("Cookie: oncall_session={c}\r\n")).unwrap_or_default();
    write!(s, "GET /phone/ws HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n{cookie}\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    if let Some(text) = send {
        // A client's frame is masked (RFC 6455 §5.3); a zero mask keeps the payload as it is.
        let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(text.as_bytes());
        s.write_all(&frame).unwrap();
    }
    // Frames until the close: the ready message comes first when the tab was let in.
    loop {
        let mut h = [0u8; 2];
        if s.read_exact(&mut h).is_err() {
            return (0, "no close frame".into());
        }
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            len = u16::from_be_bytes(l) as usize;
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        if h[0] & 0x0f == 8 {
            let code = if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 0 };
            return (code, String::from_utf8_lossy(payload.get(2..).unwrap_or(&[])).into_owned());
        }
    }
}

fn refusals(http: SocketAddr, cookie: &str, checks: &mut Checks) {
    let own = format!("http://{http}");
    let cases: [(&str, &str, Option<&str>, Option<&str>, u16); 3] = [
        ("no session", own.as_str(), None, None, 4401),
        ("another origin", "https://evil.example", Some(cookie), None, 4403),
        ("a malformed message", own.as_str(), Some(cookie), Some("{\"type\":\"accept\",\"leg\":\"x\"}"), 4400),
    ];
    for (what, origin, cookie, send, expected) in cases {
        let (code, reason) = ws_close(http, origin, cookie, send);
        eprintln!("[e2e] WebSocket with {what}: closed {code} {reason:?}");
        checks.check(code == expected && !reason.is_empty(), || format!("a WebSocket with {what} closed with {code} {reason:?}, expected {expected} with a reason"));
    }
}
