//! Text messages (issue 6 item 6) through an HTTP SMS gateway: a caller (baresip) leaves a "page on-call"
//! message; the only person of the policy is notified by text, which OnCall POSTs to a gateway played by
//! this test (a plain HTTP server on loopback, Twilio-compatible form, basic auth); the test then posts the
//! person's reply `ACK <id>` to `POST /api/v1/texts/inbound`, and the request becomes acknowledged by them.
//! A post with a wrong token gets 403 and changes nothing; a reply from an unknown number is refused.
//!
//! Issue 15 item 1 (forged replies): a From header is not an identity. By SIP MESSAGE, a forged reply with
//! an employee's From from an unproven source is challenged (registrar on) or refused (403, no registrar)
//! and the request stays open and escalating; the employee's phone answering the registrar's digest
//! challenge, and a trunk's allowed source, are believed. By HTTP, with Twilio signatures, a post with
//! no or a bad `X-Twilio-Signature` gets 403 and the request is unchanged; Twilio's own signed post works.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use support::*;

/// One request the fake gateway received.
struct GatewayPost {
    path: String,
    headers: HashMap<String, String>,
    form: HashMap<String, String>,
}

fn form_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An SMS gateway on loopback answering 201 to every POST; each request goes down the channel.
fn start_gateway() -> (SocketAddr, mpsc::Receiver<GatewayPost>) {
    let (addr, posts) = support::http_peer::serve(|_, _| support::http_peer::Reply::Answer(201, "{\"sid\":\"SM1\",\"status\":\"queued\"}"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for p in posts {
            let form = p.text().split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (form_decode(k), form_decode(v))).collect();
            if tx.send(GatewayPost { path: p.path, headers: p.headers, form }).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

const ERIN_PHONE: &str = "+15551234567";
// At least 32 characters (`texts.inbound_token` is refused shorter).
const INBOUND_TOKEN: &str = "hook-secret-42-hook-secret-42-hook";

/// Adds Erin (phone `ERIN_PHONE` plus `contact_args`, notified by text) and a policy paging her, then a
/// caller leaves `message` with "page on-call". Returns Erin's id and the request once it is escalating.
fn page_erin_by_text(
    server: &Server,
    work: &std::path::Path,
    contact_args: &[&str],
    message: &str,
) -> (i64, serde_json::Value) {
    let mut args = vec![
        "person",
        "add",
        "--name",
        "Erin",
        "--email",
        "erin@example.test",
        "--phone",
        ERIN_PHONE,
    ];
    args.extend_from_slice(contact_args);
    args.push("--text");
    let out = server.oncall(&args);
    let erin_id: i64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("`oncall person add` printed {out:?}"));
    server.oncall(&[
        "policy",
        "add",
        "--name",
        "Front desk",
        "--person",
        "erin@example.test",
        "--wait-secs",
        "60",
    ]);
    leave_page_message(server, work, message);
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "notifying") {
        Ok(r) => (erin_id, r),
        Err(rows) => panic!("the request is not being escalated: {rows:#?}\n{}", server.log_tail(40)),
    }
}

#[test]
fn a_text_through_the_gateway_and_an_ack_reply() {
    let (gateway, posts) = start_gateway();
    let server = Server::start(
        "texts-gateway",
        ServerOptions {
            extra_config: format!(
                "[paging]\nenabled = true\nmax_hold_secs = 0\n\n[texts]\nenabled = true\ntransport = \"http\"\n\
                 url = \"http://{gateway}/2010-04-01/Accounts/AC123/Messages.json\"\naccount = \"AC123\"\ntoken = \"tok\"\n\
                 from = \"+15550001111\"\ninbound_token = \"{INBOUND_TOKEN}\"\n"
            ),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let (erin_id, request) = page_erin_by_text(&server, &work, &[], "The heating in the lobby has stopped working.");
    let id = request["id"].as_i64().expect("request id");
    let caller = field(&request, "caller").to_string();
    let caller_user = caller
        .split("sip:")
        .nth(1)
        .and_then(|r| r.split(['@', ';', '>']).next())
        .unwrap_or(&caller)
        .to_string();
    eprintln!("[e2e] request #{id} from {caller}");

    let post = match posts.recv_timeout(Duration::from_secs(10)) {
        Ok(p) => p,
        Err(_) => panic!(
            "the gateway got no text within 10 s; requests: {:#?}\n{}",
            server.requests(),
            server.log_tail(40)
        ),
    };
    let body = post.form.get("Body").cloned().unwrap_or_default();
    eprintln!(
        "[e2e] gateway got {} To={:?} Body={body:?}",
        post.path,
        post.form.get("To")
    );
    checks.check(post.path == "/2010-04-01/Accounts/AC123/Messages.json", || {
        format!("posted to {}", post.path)
    });
    checks.check(post.form.get("To").map(String::as_str) == Some(ERIN_PHONE), || {
        format!("To = {:?}", post.form.get("To"))
    });
    checks.check(
        post.form.get("From").map(String::as_str) == Some("+15550001111"),
        || format!("From = {:?}", post.form.get("From")),
    );
    checks.check(body.contains(&format!("#{id}")), || {
        format!("the text does not name request #{id}: {body:?}")
    });
    checks.check(body.contains(&caller_user), || {
        format!("the text does not name the caller {caller_user:?}: {body:?}")
    });
    checks.check(body.contains(&format!("/requests/{id}")), || {
        format!("the text has no link to the request: {body:?}")
    });
    // AC123:tok in base64.
    checks.check(
        post.headers.get("authorization").map(String::as_str) == Some("Basic QUMxMjM6dG9r"),
        || format!("Authorization = {:?}", post.headers.get("authorization")),
    );

    // A wrong token changes nothing; an unknown number is told so.
    let form = format!("From=%2B15551234567&Body=ACK+{id}");
    let wrong = http_post(
        server.http,
        "/api/v1/texts/inbound?token=nope",
        "application/x-www-form-urlencoded",
        &[],
        &form,
    );
    checks.check(wrong.as_ref().map(|r| r.0) == Some(403), || {
        format!("a wrong token got {wrong:?}")
    });
    let stranger = http_post(
        server.http,
        &format!("/api/v1/texts/inbound?token={INBOUND_TOKEN}"),
        "application/x-www-form-urlencoded",
        &[],
        &format!("From=%2B15559990000&Body=ACK+{id}"),
    );
    checks.check(
        stranger
            .as_ref()
            .is_some_and(|(s, b)| *s == 200 && b.contains("not known")),
        || format!("an unknown number got {stranger:?}"),
    );
    checks.check(
        server
            .requests()
            .iter()
            .any(|r| r["id"].as_i64() == Some(id) && field(r, "status") == "notifying"),
        || "the request changed before the real reply".into(),
    );

    // Erin's reply, with the token in a header this time.
    let reply = http_post(
        server.http,
        "/api/v1/texts/inbound",
        "application/x-www-form-urlencoded",
        &[("X-OnCall-Token", INBOUND_TOKEN)],
        &form,
    );
    eprintln!("[e2e] reply answered {reply:?}");
    checks.check(
        reply
            .as_ref()
            .is_some_and(|(s, b)| *s == 200 && b.contains("<Message>") && b.contains("is yours")),
        || format!("the reply got {reply:?}"),
    );
    match server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id) && field(r, "status") == "acknowledged"
    }) {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || {
            format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))
        }),
        Err(rows) => checks.fail(format!(
            "the request was not acknowledged after Erin's reply: {rows:#?}"
        )),
    }
    // Then DONE completes it.
    let done = http_post(
        server.http,
        &format!("/api/v1/texts/inbound?token={INBOUND_TOKEN}"),
        "application/x-www-form-urlencoded",
        &[],
        "From=%2B15551234567&Body=done",
    );
    checks.check(
        done.as_ref().is_some_and(|(s, b)| *s == 200 && b.contains("is done")),
        || format!("DONE got {done:?}"),
    );
    if let Err(rows) = server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id) && field(r, "status") == "completed"
    }) {
        checks.fail(format!("the request was not completed after DONE: {rows:#?}"));
    }
    checks.finish();
}

/// A SIP message's start line, headers (names as written) and body.
fn split_sip(raw: &str) -> (String, Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (start, headers, body.to_string())
}

/// Waits for a MESSAGE on `sock` whose Call-ID is not `skip` (retransmissions of one already seen),
/// answering every MESSAGE 200 (headers echoed); returns its Call-ID, Content-Type and body.
fn receive_message(sock: &std::net::UdpSocket, limit: Duration, skip: &str) -> Option<(String, String, String)> {
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while std::time::Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let raw = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (start, headers, body) = split_sip(&raw);
        if !start.starts_with("MESSAGE ") {
            continue;
        }
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for (k, v) in &headers {
            if ["via", "from", "call-id", "cseq"].contains(&k.to_ascii_lowercase().as_str()) {
                resp.push_str(&format!("{k}: {v}\r\n"));
            } else if k.eq_ignore_ascii_case("to") {
                resp.push_str(&format!("{k}: {v};tag=callee1\r\n"));
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(resp.as_bytes(), from);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if header("call-id") == skip {
            continue;
        }
        return Some((header("call-id"), header("content-type"), body));
    }
    None
}

/// A SIP request as text (Content-Length computed), from `local` (Via, rport) to the server.
#[allow(clippy::too_many_arguments)]
fn sip_request(
    server: &Server,
    method: &str,
    local: SocketAddr,
    from: &str,
    call_id: &str,
    cseq: u32,
    extra: &[(&str, String)],
    body: &str,
) -> String {
    let mut text = format!(
        "{method} {sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq};rport\r\nMax-Forwards: 70\r\n\
         From: <{from}>;tag=t{cseq}\r\nTo: <{sip}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n",
        sip = server.sip_uri(),
    );
    for (k, v) in extra {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        text.push_str("Content-Type: text/plain\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

/// Waits for the response to `call_id` on `sock`, answering any MESSAGE that comes meanwhile (200) and
/// keeping its body in `texts`; returns the status line's code and the headers.
fn await_response(
    sock: &std::net::UdpSocket,
    call_id: &str,
    limit: Duration,
    texts: &mut Vec<String>,
) -> Option<(u16, Vec<(String, String)>)> {
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while std::time::Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let raw = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (start, headers, body) = split_sip(&raw);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if start.starts_with("MESSAGE ") {
            let mut resp = String::from("SIP/2.0 200 OK\r\n");
            for (k, v) in &headers {
                if ["via", "from", "call-id", "cseq"].contains(&k.to_ascii_lowercase().as_str()) {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                } else if k.eq_ignore_ascii_case("to") {
                    resp.push_str(&format!("{k}: {v};tag=callee1\r\n"));
                }
            }
            resp.push_str("Content-Length: 0\r\n\r\n");
            let _ = sock.send_to(resp.as_bytes(), from);
            texts.push(body);
            continue;
        }
        if let Some(code) = start.strip_prefix("SIP/2.0 ") {
            let code: u16 = code.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
            if header("call-id") == call_id && code >= 200 {
                return Some((code, headers));
            }
        }
    }
    None
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether the request is still open and escalating (nobody took it).
fn still_notifying(server: &Server, id: i64) -> bool {
    server
        .requests()
        .iter()
        .any(|r| r["id"].as_i64() == Some(id) && field(r, "status") == "notifying")
}

const REGISTRAR: &str = "[registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\n";
const ERIN_SIP_PASSWORD: &str = "erins-phone-password";

#[test]
fn a_text_by_sip_message_and_a_reply_by_sip_message() {
    let server = Server::start(
        "texts-sip",
        ServerOptions {
            extra_config: format!(
                "[paging]\nenabled = true\nmax_hold_secs = 0\n\n[texts]\nenabled = true\ntransport = \"sip\"\n\n{REGISTRAR}"
            ),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    // Erin's phone: a UDP socket on loopback speaking just enough SIP.
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the phone");
    phone.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let port = phone_addr.port();
    let uri = format!("sip:erin@127.0.0.1:{port}");
    let (erin_id, request) = page_erin_by_text(
        &server,
        &work,
        &["--sip-uri", &uri],
        "The elevator is stuck between two floors.",
    );
    let id = request["id"].as_i64().expect("request id");
    // Her phone's account with OnCall's registrar: what proves a reply is hers.
    let out = server.oncall(&[
        "person",
        "sip-account",
        "erin@example.test",
        "--username",
        "erin",
        "--password",
        ERIN_SIP_PASSWORD,
    ]);
    assert!(out.contains("SIP account erin set"), "{out}");
    let Some((call_id, content_type, body)) = receive_message(&phone, Duration::from_secs(10), "") else {
        panic!("no MESSAGE reached Erin's phone within 10 s\n{}", server.log_tail(40));
    };
    eprintln!("[e2e] Erin's phone got MESSAGE ({content_type}): {body:?}");
    checks.check(content_type.starts_with("text/plain"), || {
        format!("Content-Type {content_type:?}")
    });
    checks.check(
        body.contains(&format!("#{id}")) && body.contains(&format!("/requests/{id}")),
        || format!("the text does not name request #{id}: {body:?}"),
    );
    // The notification is delivered (the 200 was heard).
    let delivered = server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id)
            && r["notifications"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| field(n, "status") == "delivered"))
    });
    checks.check(delivered.is_ok(), || {
        format!("the notification is not marked delivered: {delivered:?}")
    });
    // The registrar re-reads the accounts every 3 s.
    thread::sleep(Duration::from_millis(3500));

    // The attack: one datagram from another port with Erin's From and "done <id>".
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the attacker");
    attacker.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let forged = sip_request(
        &server,
        "MESSAGE",
        attacker.local_addr().unwrap(),
        &uri,
        "forged-1",
        1,
        &[],
        &format!("done {id}"),
    );
    attacker
        .send_to(forged.as_bytes(), server.sip_udp)
        .expect("send the forged reply");
    let mut seen = Vec::new();
    let answer = await_response(&attacker, "forged-1", Duration::from_secs(5), &mut seen);
    eprintln!("[e2e] the forged MESSAGE got {:?}", answer.as_ref().map(|a| a.0));
    checks.check(answer.as_ref().is_some_and(|(code, _)| *code == 401), || {
        format!(
            "the forged MESSAGE got {:?} (expected a 401 challenge)",
            answer.as_ref().map(|a| a.0)
        )
    });
    // Answering the challenge without Erin's password does not help either.
    if let Some(challenge) = answer.as_ref().and_then(|(_, h)| header_value(h, "WWW-Authenticate")) {
        let c = oncall_sip::auth::digest::Challenge::parse(challenge).expect("a digest challenge");
        let guess = c
            .respond("erin", "guess", "MESSAGE", &server.sip_uri(), "c0ffee", 1)
            .to_header();
        let again = sip_request(
            &server,
            "MESSAGE",
            attacker.local_addr().unwrap(),
            &uri,
            "forged-1",
            2,
            &[("Authorization", guess)],
            &format!("done {id}"),
        );
        attacker.send_to(again.as_bytes(), server.sip_udp).unwrap();
        let answer = await_response(&attacker, "forged-1", Duration::from_secs(5), &mut seen);
        checks.check(
            answer.as_ref().is_some_and(|(code, _)| *code == 401 || *code == 403),
            || format!("a wrong password got {:?}", answer.as_ref().map(|a| a.0)),
        );
    }
    thread::sleep(Duration::from_millis(500));
    checks.check(still_notifying(&server, id), || {
        format!("the forged reply changed the request: {:#?}", server.requests())
    });
    checks.check(seen.is_empty(), || format!("OnCall texted the attacker: {seen:?}"));

    // Erin replies "ack <id>" by MESSAGE, is challenged, and answers with her account.
    let text = format!("ack {id}");
    let first = sip_request(&server, "MESSAGE", phone_addr, &uri, "reply-1", 1, &[], &text);
    phone.send_to(first.as_bytes(), server.sip_udp).expect("send the reply");
    let mut texts = Vec::new();
    let challenge = await_response(&phone, "reply-1", Duration::from_secs(5), &mut texts);
    let Some(challenge) = challenge
        .as_ref()
        .filter(|(c, _)| *c == 401)
        .and_then(|(_, h)| header_value(h, "WWW-Authenticate"))
    else {
        panic!(
            "Erin's MESSAGE was not challenged: {challenge:?}\n{}",
            server.log_tail(30)
        );
    };
    let c = oncall_sip::auth::digest::Challenge::parse(challenge).expect("a digest challenge");
    let creds = c
        .respond(
            "erin",
            ERIN_SIP_PASSWORD,
            "MESSAGE",
            &server.sip_uri(),
            "erin-cnonce",
            1,
        )
        .to_header();
    let second = sip_request(
        &server,
        "MESSAGE",
        phone_addr,
        &uri,
        "reply-1",
        2,
        &[("Authorization", creds)],
        &text,
    );
    phone.send_to(second.as_bytes(), server.sip_udp).unwrap();
    let answer = await_response(&phone, "reply-1", Duration::from_secs(5), &mut texts);
    checks.check(answer.as_ref().is_some_and(|(code, _)| *code == 200), || {
        format!("Erin's authenticated MESSAGE got {:?}", answer.as_ref().map(|a| a.0))
    });
    match server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id) && field(r, "status") == "acknowledged"
    }) {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || {
            format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))
        }),
        Err(rows) => checks.fail(format!(
            "the request was not acknowledged after Erin's MESSAGE: {rows:#?}\n{}",
            server.log_tail(30)
        )),
    }
    // OnCall answers the reply with a MESSAGE of its own.
    if !texts.iter().any(|t| t.contains("is yours")) {
        match receive_message(&phone, Duration::from_secs(5), &call_id) {
            Some((_, _, answer)) => checks.check(answer.contains("is yours"), || {
                format!("the answer to the reply was {answer:?}")
            }),
            None => checks.fail("no MESSAGE answered Erin's reply"),
        }
    }
    checks.finish();
}

/// Without a registrar, only a trunk's allowed source is believed: the exact attack (From with
/// the employee's number at `evil.example`, body `DONE <id>`) from elsewhere gets 403 and paging goes on;
/// the same number asserted by the trunk's source acknowledges.
#[test]
fn a_forged_message_gets_403_and_the_trunks_source_is_believed() {
    let server = Server::start(
        "texts-sip-trunk",
        ServerOptions {
            extra_config: "[paging]\nenabled = true\nmax_hold_secs = 0\n\n[texts]\nenabled = true\ntransport = \"sip\"\n\n\
                 [[trunks]]\nname = \"pbx\"\nregister = false\nregistrar = \"127.0.0.1\"\nallowed_sources = [\"127.0.0.1\"]\n"
                .into(),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let (erin_id, request) = page_erin_by_text(&server, &work, &[], "Water is coming through the ceiling.");
    let id = request["id"].as_i64().expect("request id");

    // 127.0.0.3 is loopback too, but not the trunk's source.
    let attacker = std::net::UdpSocket::bind("127.0.0.3:0").expect("bind the attacker on 127.0.0.3");
    attacker.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let evil = format!("sip:{ERIN_PHONE}@evil.example");
    let forged = sip_request(
        &server,
        "MESSAGE",
        attacker.local_addr().unwrap(),
        &evil,
        "forged-2",
        1,
        &[],
        &format!("DONE {id}"),
    );
    attacker
        .send_to(forged.as_bytes(), server.sip_udp)
        .expect("send the forged reply");
    let mut seen = Vec::new();
    let answer = await_response(&attacker, "forged-2", Duration::from_secs(5), &mut seen);
    eprintln!("[e2e] the forged MESSAGE got {:?}", answer.as_ref().map(|a| a.0));
    checks.check(answer.as_ref().is_some_and(|(code, _)| *code == 403), || {
        format!(
            "the forged MESSAGE got {:?} (expected 403)",
            answer.as_ref().map(|a| a.0)
        )
    });
    thread::sleep(Duration::from_millis(500));
    checks.check(still_notifying(&server, id), || {
        format!("the forged reply changed the request: {:#?}", server.requests())
    });

    // The carrier (the trunk's source) delivers Erin's real reply.
    let trunk = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the trunk");
    trunk.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let from = format!("sip:{ERIN_PHONE}@127.0.0.1");
    let reply = sip_request(
        &server,
        "MESSAGE",
        trunk.local_addr().unwrap(),
        &from,
        "carrier-1",
        1,
        &[],
        &format!("ACK {id}"),
    );
    trunk.send_to(reply.as_bytes(), server.sip_udp).unwrap();
    let mut texts = Vec::new();
    let answer = await_response(&trunk, "carrier-1", Duration::from_secs(5), &mut texts);
    checks.check(answer.as_ref().is_some_and(|(code, _)| *code == 200), || {
        format!("the trunk's MESSAGE got {:?}", answer.as_ref().map(|a| a.0))
    });
    match server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id) && field(r, "status") == "acknowledged"
    }) {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || {
            format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))
        }),
        Err(rows) => checks.fail(format!(
            "the trunk's reply did not acknowledge: {rows:#?}\n{}",
            server.log_tail(30)
        )),
    }
    checks.finish();
}

/// `[texts] inbound_signature = "twilio"`: the issue's `ACK <id>` posted without a signature, or with one
/// made under another key, gets 403 and the request stays escalating; Twilio's signed post is believed.
#[test]
fn a_forged_sms_webhook_post_gets_403_with_twilio_signatures() {
    let (gateway, posts) = start_gateway();
    const AUTH_TOKEN: &str = "twilio-auth-token-0123456789abcdef";
    let public_url = "https://oncall.example.com";
    let server = Server::start(
        "texts-twilio",
        ServerOptions {
            extra_config: format!(
                "[paging]\nenabled = true\nmax_hold_secs = 0\n\n[texts]\nenabled = true\ntransport = \"http\"\n\
                 url = \"http://{gateway}/2010-04-01/Accounts/AC123/Messages.json\"\naccount = \"AC123\"\ntoken = \"{AUTH_TOKEN}\"\n\
                 from = \"+15550001111\"\ninbound_signature = \"twilio\"\n"
            ),
            extra_http: format!("public_url = \"{public_url}\"\n"),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let (erin_id, request) = page_erin_by_text(&server, &work, &[], "The front door lock is broken.");
    let id = request["id"].as_i64().expect("request id");
    checks.check(posts.recv_timeout(Duration::from_secs(10)).is_ok(), || {
        "the gateway got no text".into()
    });

    let path = "/api/v1/texts/inbound";
    let form = format!("From=%2B15551234567&Body=ACK+{id}&MessageSid=SM42");
    let fields: Vec<(String, String)> = form
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect();
    let form_type = "application/x-www-form-urlencoded";
    let unsigned = http_post(server.http, path, form_type, &[], &form);
    let wrong_key =
        oncall_web::text_inbound::twilio_signature("guessed-token", &format!("{public_url}{path}"), &fields);
    let bad = http_post(
        server.http,
        path,
        form_type,
        &[("X-Twilio-Signature", &wrong_key)],
        &form,
    );
    eprintln!(
        "[e2e] unsigned post: {:?}, wrongly signed: {:?}",
        unsigned.as_ref().map(|r| r.0),
        bad.as_ref().map(|r| r.0)
    );
    checks.check(unsigned.as_ref().map(|r| r.0) == Some(403), || {
        format!("an unsigned post got {unsigned:?}")
    });
    checks.check(bad.as_ref().map(|r| r.0) == Some(403), || {
        format!("a wrongly signed post got {bad:?}")
    });
    checks.check(still_notifying(&server, id), || {
        format!("a forged post changed the request: {:#?}", server.requests())
    });

    let signature = oncall_web::text_inbound::twilio_signature(AUTH_TOKEN, &format!("{public_url}{path}"), &fields);
    let good = http_post(
        server.http,
        path,
        form_type,
        &[("X-Twilio-Signature", &signature)],
        &form,
    );
    checks.check(
        good.as_ref().is_some_and(|(s, b)| *s == 200 && b.contains("is yours")),
        || format!("Twilio's signed post got {good:?}"),
    );
    match server.wait_for_request(Duration::from_secs(5), |r| {
        r["id"].as_i64() == Some(id) && field(r, "status") == "acknowledged"
    }) {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || {
            format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))
        }),
        Err(rows) => checks.fail(format!("the signed reply did not acknowledge: {rows:#?}")),
    }
    checks.finish();
}
