//! SIP over TLS and SRTP (issue 21) with real peers on loopback:
//!
//! - `a_tls_srtp_caller_is_bridged_to_a_phone_registered_over_tls`: Erin's phone (baresip) registers with OnCall's
//!   registrar over TLS, with `mediaenc=srtp-mand`. A caller (another baresip, TLS and SRTP required) leaves a
//!   "page on-call" message and holds; OnCall pages Erin over her TLS connection with SRTP, she presses 1 and the
//!   two talk. Checked: the recorded message holds the caller's speech, each side heard the other through the
//!   bridge, the conversation is recorded in stereo; the caller's TLS bytes (through a relay in the test) never
//!   show SIP in clear text; plain RTP sprayed at every media port is dropped (`oncall_srtp_refused_total`).
//! - `a_trunk_with_an_untrusted_certificate_is_refused_with_the_reason`: a TLS trunk (`openssl s_server` with a
//!   certificate of another CA) fails verification; /healthz shows the trunk failed and why.
//! - `oncall_registers_over_tls_to_kamailio_and_pages_through_it_with_srtp`: Kamailio with its TLS module is the
//!   trunk; OnCall registers over TLS with digest, its page INVITE (SRTP required) is challenged and relayed to a
//!   baresip registered at Kamailio (`srtp-mand`), which hears the announcement and takes the request.
//! - `a_key_that_does_not_match_the_certificate_stops_the_start`: the configuration is refused with a message
//!   naming both files; `an_expired_certificate_is_refused_by_config_check_with_its_date` likewise.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

fn tls_sip(port: u16, certs: &TestCerts) -> String {
    format!("listen_tls = \"{LOOPBACK}:{port}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n", certs.cert.display(), certs.key.display())
}

/// baresip's extra config for TLS (our CA trusted) and SRTP.
fn baresip_tls(certs: &TestCerts) -> String {
    format!("module\tsrtp.so\nsip_cafile\t{}\n", certs.ca.display())
}

/// A TCP relay in front of `target` that keeps every byte it forwards either way: what a capture of the TLS
/// port would show.
fn capturing_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else { return };
            for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                let keep = keep.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        }
    });
    (addr, seen)
}

#[test]
fn a_tls_srtp_caller_is_bridged_to_a_phone_registered_over_tls() {
    let base = TestDir::new("tls-certs");
    let certs = TestCerts::make(&base.path, "oncall");
    let tls_port = free_port();
    let server = Server::start(
        "tls-srtp",
        ServerOptions {
            extra_sip: tls_sip(tls_port, &certs),
            extra_config: "[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = 120\n\n\
                [registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\nmin_expires_secs = 30\n"
                .into(),
            ..ServerOptions::default()
        },
    );
    let tls_addr: SocketAddr = format!("{LOOPBACK}:{tls_port}").parse().unwrap();
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let erin_id: i64 = server.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", "+441632960001"]).trim().parse().unwrap();
    let out = server.oncall(&["person", "sip-account", "erin@example.test", "--username", "erin", "--password", "desk-phone-7"]);
    assert!(out.contains("SIP account erin set"), "{out}");
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);

    // Erin's phone: registered over TLS, SRTP required, answers by itself.
    let erin_speech = speech_wav(&work, "erin-speech", "Hello, this is Erin from maintenance. I am on my way to you now.");
    let erin_mic = work.join("erin-microphone.wav");
    compose_wav(&erin_mic, 100.0, &[(announcement_secs() + 2.5, &erin_speech)]);
    let mut erin = Baresip::start_with(
        &work.join("erin"),
        &erin_mic,
        Duration::from_secs(120),
        |_| format!("<sip:erin@{tls_addr};transport=tls>;auth_pass=desk-phone-7;regint=60;mediaenc=srtp-mand;answermode=auto\n"),
        &baresip_tls(&certs),
    );
    // 20 s: the TLS handshake and the digest round trips share two cores with the other tests' peers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains("device registered username=erin") {
        assert!(Instant::now() < deadline, "Erin's phone did not register over TLS:\n{}\n{}", tail(&erin.log(), 30), server.log_tail(30));
        thread::sleep(Duration::from_millis(100));
    }
    let devices = server.oncall(&["person", "sip-devices", "erin@example.test"]);
    eprintln!("[e2e] Erin's devices: {devices}");
    checks.check(devices.to_ascii_lowercase().contains("tls"), || format!("the registration is not shown as TLS: {devices}"));

    // The caller: TLS through the capturing relay, SRTP required; message, then holds and replies every 5 s.
    let (relay, captured) = capturing_relay(tls_addr);
    let message = speech_wav(&work, "message", "Water is coming through the ceiling of apartment twelve.");
    let reply = speech_wav(&work, "reply", "Thank you. Please hurry, the water is rising.");
    let record_prompt = prompt_secs("record_after_tone") + prompt_secs("beep");
    let speech_at = KEY_1_AT + record_prompt + LEAD_IN;
    let pound_at = speech_at + read_wav(&message).secs() + TAIL;
    let mut clips = vec![(speech_at, message.as_path())];
    clips.extend((0..16).map(|i| (pound_at + 2.0 + 5.0 * i as f64, reply.as_path())));
    let caller_mic = work.join("caller-microphone.wav");
    compose_wav(&caller_mic, pound_at + 90.0, &clips);
    let mut caller = Baresip::start_with(
        &work.join("caller"),
        &caller_mic,
        Duration::from_secs(120),
        |_| format!("<sip:tester@{LOOPBACK};transport=tls>;regint=0;mediaenc=srtp-mand\n"),
        &baresip_tls(&certs),
    );
    caller.command("dial", &format!("sip:oncall@{relay};transport=tls"));
    let Some((caller_at, _)) = caller.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) else {
        panic!("the TLS/SRTP call was not established:\n{}\n{}", tail(&caller.log(), 40), server.log_tail(30));
    };
    sleep_until(caller_at + Duration::from_secs_f64(KEY_1_AT));
    caller.command("sndcode", "1");
    sleep_until(caller_at + Duration::from_secs_f64(pound_at));
    caller.command("sndcode", "#");

    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not page Erin over TLS within 15 s:\n{}\n{}", tail(&erin.log(), 30), server.log_tail(40));
    };
    // Plain RTP at every media port while the page plays: an SRTP call drops all of it.
    let spray = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let mut plain = [0u8; 172];
    plain[0] = 0x80;
    plain[12..].fill(0x10); // loud μ-law
    for seq in 0..10u16 {
        plain[2..4].copy_from_slice(&seq.to_be_bytes());
        for port in (server.rtp_ports.0..=server.rtp_ports.1).step_by(2) {
            let _ = spray.send_to(&plain, (LOOPBACK, port));
        }
        thread::sleep(Duration::from_millis(20));
    }
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    erin.command("sndcode", "1");
    let bridged = Instant::now();
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))),
        Err(rows) => checks.fail(format!("the request was not acknowledged after Erin pressed 1: {rows:#?}")),
    }
    sleep_until(bridged + Duration::from_secs(10));
    erin.command("hangup", "");
    let closing = prompt_secs("staff_left") + prompt_secs("goodbye");
    checks.check(caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(closing + 4.0)).is_some(), || "the caller was not released after Erin hung up".into());
    caller.quit();
    erin.quit();

    // The message was recorded whole through SRTP.
    let found = server.recordings().into_iter().find(|p| p.to_string_lossy().ends_with("-message.wav"));
    match found {
        None => checks.fail(format!("no message recording among {:?}", server.recordings())),
        Some(path) => {
            let wav = read_wav(&path);
            let (_, corr, level) = find_speech(&wav.samples, 0.0, wav.secs(), &message);
            eprintln!("[e2e] message {:.1} s at {level:.1} dBFS, the caller's speech matched {corr:.2}", wav.secs());
            checks.check(corr > 0.6, || format!("the recorded message is not the caller's speech (correlation {corr:.2})"));
        }
    }
    check_heard(&mut checks, "Erin", erin.heard_wav(), (bridged - erin_at).as_secs_f64(), &reply);
    check_heard(&mut checks, "the caller", caller.heard_wav(), (bridged - caller_at).as_secs_f64(), &erin_speech);
    check_conversation(&server, &mut checks, &reply, "Erin", &erin_speech);
    // What went over the caller's TLS connection: records of ciphertext, no SIP.
    let captured = captured.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&captured);
    eprintln!("[e2e] {} bytes crossed the caller's TLS connection", captured.len());
    checks.check(captured.len() > 2000, || format!("only {} bytes crossed the relay", captured.len()));
    checks.check(captured.first() == Some(&0x16), || "the connection did not start with a TLS handshake record".into());
    for clear in ["SIP/2.0", "INVITE", "m=audio", "a=crypto"] {
        checks.check(!text.contains(clear), || format!("{clear:?} crossed the TLS connection in clear text"));
    }
    let metrics = http_get(server.http, "/metrics").map(|(_, b)| b).unwrap_or_default();
    let refused = metric(&metrics, "oncall_srtp_refused_total").unwrap_or(0.0);
    eprintln!("[e2e] oncall_srtp_refused_total {refused}");
    checks.check(refused >= 10.0, || format!("plain RTP sprayed at the SRTP calls was not refused: oncall_srtp_refused_total {refused}"));
    let log = server.log();
    checks.check(!log.contains("panicked"), || "the server panicked".into());
    checks.finish();
}

#[test]
fn a_trunk_with_an_untrusted_certificate_is_refused_with_the_reason() {
    let base = TestDir::new("tls-bad-trunk");
    let trusted = TestCerts::make(&base.path, "trusted");
    // The trunk presents a certificate of another CA than the one OnCall is told to trust.
    let rogue = TestCerts::make(&base.path, "rogue");
    let port = free_port();
    let mut s_server = Command::new("openssl");
    s_server.args(["s_server", "-quiet", "-accept", &format!("{LOOPBACK}:{port}"), "-cert"]).arg(&rogue.cert).arg("-key").arg(&rogue.key);
    let mut trunk = Spawned::spawn(&mut s_server, &base.path, "openssl-s_server");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect((LOOPBACK, port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start:\n{}", trunk.stderr_text());
        thread::sleep(Duration::from_millis(50));
    }
    let trunks = format!(
        "[[trunks]]\nname = \"carrier\"\nregistrar = \"{LOOPBACK}:{port}\"\ntransport = \"tls\"\ntls_ca_file = \"{}\"\ntls_server_name = \"rogue.test\"\nusername = \"oncall\"\npassword = \"x\"\nexpires_secs = 60\n",
        trusted.ca.display()
    );
    let server = Server::start("tls-bad-trunk", options_with_trunks(&trunks));
    let deadline = Instant::now() + Duration::from_secs(45);
    let health = loop {
        let body = http_get(server.http, "/healthz").map(|(_, b)| b).unwrap_or_default();
        if body.contains("failed") || Instant::now() > deadline {
            break body;
        }
        thread::sleep(Duration::from_millis(500));
    };
    eprintln!("[e2e] /healthz: {health}");
    let log = server.log();
    assert!(log.contains("cannot connect") && log.to_ascii_lowercase().contains("certificate"), "no certificate failure logged:\n{}", server.log_tail(30));
    assert!(health.contains("failed") && health.to_ascii_lowercase().contains("certificate"), "/healthz does not show the trunk failed over its certificate: {health}");
    trunk.kill();
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_start() {
    let dir = TestDir::new("tls-mismatch");
    let a = TestCerts::make(&dir.path, "a");
    let b = TestCerts::make(&dir.path, "b");
    let config = dir.join("oncall.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"{LOOPBACK}:{}\"\nlisten_tcp = \"{LOOPBACK}:{}\"\nlisten_tls = \"{LOOPBACK}:{}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n[http]\nlisten = \"{LOOPBACK}:{}\"\n[storage]\ndata_dir = \"{}\"\n",
            free_port(),
            free_port(),
            free_port(),
            a.cert.display(),
            b.key.display(),
            free_port(),
            dir.subdir("data").display()
        ),
    )
    .unwrap();
    let out = run_for(Command::new(env!("CARGO_BIN_EXE_oncall")).arg("serve").arg("--config").arg(&config), Duration::from_secs(20), &dir.path, "oncall");
    let text = out.describe();
    assert!(!out.success(), "the server started with a key of another certificate");
    assert!(out.stderr.contains("does not belong to the certificate"), "the refusal does not say why: {text}");
}

#[test]
fn oncall_registers_over_tls_to_kamailio_and_pages_through_it_with_srtp() {
    const USER: &str = "oncall-trunk";
    const PASSWORD: &str = "trunk-s3cret";
    const NUMBER: &str = "+15550001111";
    let base = TestDir::new("tls-kamailio");
    let carrier = TestCerts::make(&base.path, "carrier");
    let ours = TestCerts::make(&base.path, "oncall");
    let kam = Kamailio::start_trunk_tls(&base.path, USER, PASSWORD, &carrier);
    let kam_tls = kam.tls_addr.expect("kamailio TLS listener");
    let server = Server::start(
        "tls-kamailio",
        ServerOptions {
            extra_sip: format!(
                "{}\n[[trunks]]\nname = \"carrier\"\nregistrar = \"sips:{kam_tls}\"\ntls_ca_file = \"{}\"\ntls_server_name = \"carrier.test\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nexpires_secs = 300\n",
                tls_sip(free_port(), &ours),
                carrier.ca.display()
            ),
            extra_config: "[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = 0\n".into(),
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let Some(accepted) = kam.wait_event(Duration::from_secs(10), |e| e.kind == "ACCEPTED" && e.user == USER) else {
        panic!("OnCall did not register at kamailio over TLS: {:?}\n{}\n{}", kam.events(), server.log_tail(30), tail(&kam.log(), 30));
    };
    let challenged = kam.events().iter().any(|e| e.kind == "CHALLENGE");
    eprintln!("[e2e] registered over TLS (challenged first: {challenged}) at {:.3}", accepted.at);
    checks.check(challenged, || "the REGISTER over TLS was not challenged".into());
    let health = http_get(server.http, "/healthz").map(|(_, b)| b).unwrap_or_default();
    checks.check(health.contains("trunk carrier: registered"), || format!("/healthz: {health}"));

    let work = server.dir.subdir("peers");
    let kam_udp = kam.addr;
    let mut phone = Baresip::start_with(
        &work.join("phone"),
        &silence_wav_secs(&work, 90),
        Duration::from_secs(90),
        |_| format!("<sip:{}@{kam_udp};transport=udp>;regint=60;answermode=auto;mediaenc=srtp-mand\n", &NUMBER[1..]),
        &baresip_tls(&ours),
    );
    if kam.wait_event(Duration::from_secs(10), |e| e.kind == "ACCEPTED" && e.user == NUMBER[1..]).is_none() {
        panic!("the phone did not register at kamailio: {:?}\n{}", kam.events(), tail(&phone.log(), 30));
    }
    let dana: i64 = server.oncall(&["person", "add", "--name", "Dana", "--email", "dana@example.test", "--phone", NUMBER]).trim().parse().unwrap();
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "dana@example.test", "--wait-secs", "60"]);
    leave_page_message(&server, &work, "The fire alarm panel shows a fault.");
    let Some((answered_at, _)) = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("the phone behind kamailio never answered: {:?}\n{}\n{}", kam.events(), server.log_tail(40), tail(&phone.log(), 30));
    };
    let invites: Vec<String> = kam.events().into_iter().map(|e| e.kind).filter(|k| k.starts_with("INVITE-")).collect();
    eprintln!("[e2e] kamailio saw {invites:?}");
    checks.check(invites.starts_with(&["INVITE-CHALLENGED".to_string(), "INVITE-AUTHORIZED".to_string(), "INVITE-RELAYED".to_string()]), || format!("{invites:?}"));
    accept_page_on(&server, &mut phone, answered_at, dana, &mut checks);
    checks.finish();
}

#[test]
fn an_expired_certificate_is_refused_by_config_check_with_its_date() {
    let dir = TestDir::new("tls-expired");
    let (cert, key, csr) = (dir.join("expired.pem"), dir.join("expired.key"), dir.join("expired.csr"));
    let path = |p: &std::path::Path| p.display().to_string();
    tool(&dir.path, "openssl", &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=expired.test", "-keyout", &path(&key), "-out", &path(&csr)]);
    // Self-signed with `-days 0`: valid until the second it was made (`req -x509` refuses 0 days, `x509` takes it).
    tool(&dir.path, "openssl", &["x509", "-req", "-in", &path(&csr), "-signkey", &path(&key), "-days", "0", "-out", &path(&cert)]);
    thread::sleep(Duration::from_millis(1500));
    let config = dir.join("oncall.toml");
    std::fs::write(&config, format!("[sip]\nlisten_tls = \"{LOOPBACK}:5061\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n", cert.display(), key.display())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oncall")).args(["config", "check", "--config"]).arg(&config).env_remove("ONCALL_CONFIG").output().expect("run oncall");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("[e2e] oncall config check: {}", said.trim());
    assert!(!out.status.success(), "an expired certificate passed the check: {said}");
    assert!(said.contains("expired on") && said.contains("renew it"), "the refusal does not say the certificate expired: {said}");
}
