//! OnCall as a registrar for employees' own phones (issue 6 item 2) and its defences against the SIPVicious
//! scanners (issue 9 item 3), with real peers on loopback:
//!
//! - baresip registers with the right password (200, the binding shows on `/metrics` and in the log), and
//!   with a wrong one it gets no binding;
//! - `svwar` (REGISTER) cannot tell a real username from made-up ones: every REGISTER is challenged the same;
//! - `svcrack` with a wordlist holding the right password after the lockout threshold never finds it: the
//!   account is locked out after `lockout_account_attempts` failed answers, and a source that keeps failing
//!   is locked out too (its REGISTERs then go unanswered, so svcrack stops); both show on `/metrics`.
//!
//! - a phone that registers the moment its account is created (before the periodic reload) registers at once
//!   (issue 18 item 2), with no failure counted.
//!
//! Each test has its own server, so source lockouts of one do not leak into the other.

mod support;

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const REGISTRAR: &str = "[registrar]
enabled = true
realm = \"oncall-test\"
min_expires_secs = 30
lockout_source_attempts = 5
lockout_account_attempts = 3
lockout_window_secs = 120
lockout_secs = 300
";

fn server(name: &str, extra: &str) -> Server {
    Server::start(
        name,
        ServerOptions {
            extra_config: format!("{REGISTRAR}{extra}"),
            ..ServerOptions::default()
        },
    )
}

/// Adds a person and their SIP account through the CLI, then waits for the registrar's account reload.
fn add_account(server: &Server, name: &str, username: &str, password: &str) {
    let email = format!("{username}@example.com");
    server.oncall(&[
        "person",
        "add",
        "--name",
        name,
        "--email",
        &email,
        "--phone",
        "+441632960001",
    ]);
    let out = server.oncall(&[
        "person",
        "sip-account",
        &email,
        "--username",
        username,
        "--password",
        password,
    ]);
    assert!(out.contains(&format!("SIP account {username} set")), "{out}");
}

fn wait_for_accounts() {
    // The registrar re-reads the accounts every 3 s.
    thread::sleep(Duration::from_millis(3500));
}

/// The value of a sample line of `/metrics` (`name` includes labels, e.g. `x{kind="source"}`).
fn metric(server: &Server, name: &str) -> f64 {
    let (status, body) = http_get(server.http, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{name} not on /metrics:\n{body}"))
}

fn wait_metric(server: &Server, name: &str, limit: Duration, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(server, name);
        if pred(v) || Instant::now() >= deadline {
            return v;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A headless baresip whose only account registers to the server as `username` with `password`; it quits by
/// itself after `secs`.
fn baresip_register(server: &Server, label: &str, username: &str, password: &str, secs: u64) -> Spawned {
    require_tool("baresip");
    let dir = server.dir.subdir(label);
    let port = free_ports(2);
    let config = format!(
        "poll_method\tepoll\nsip_listen\t{LOOPBACK}:{port}\nnet_interface\t{LOOPBACK}\naudio_player\tnone\naudio_source\tnone\n\
         module_path\t/usr/lib/baresip/modules\nmodule\tg711.so\nmodule_tmp\taccount.so\nmodule_app\tmenu.so\n"
    );
    fs::write(dir.join("config"), config).unwrap();
    // `;transport=udp`: without it baresip 1.0 looks the host up (NAPTR/SRV) and fails with "Function not implemented".
    let account = format!(
        "<sip:{username}@{};transport=udp>;auth_pass={password};regint=60\n",
        server.sip_udp
    );
    fs::write(dir.join("accounts"), account).unwrap();
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(&dir).arg("-t").arg(secs.to_string());
    Spawned::spawn(&mut cmd, &server.dir.path, label)
}

#[test]
fn baresip_registers_with_the_right_password_and_not_with_a_wrong_one() {
    // baresip 1.0 (Debian 12's, on libre 1.x) abandons a 401 that offers any algorithm besides MD5
    // ("Register: Function not implemented"), so this server challenges with MD5 alone.
    let server = server("registrar-baresip", "algorithms = [\"MD5\"]\n");
    add_account(&server, "Erin", "erin", "correct-horse-1");
    add_account(&server, "Frank", "frank", "frank-secret-2");
    wait_for_accounts();
    let mut checks = Checks::default();

    let phone = baresip_register(&server, "baresip-erin", "erin", "correct-horse-1", 6);
    let bindings = wait_metric(&server, "oncall_registrar_bindings", Duration::from_secs(10), |v| {
        v >= 1.0
    });
    checks.check(bindings == 1.0, || {
        format!(
            "erin's phone did not register: bindings {bindings}\n{}",
            server.log_tail(30)
        )
    });
    checks.check(server.log().contains("device registered"), || {
        "no 'device registered' log line".into()
    });
    // The binding is in the database too (another instance, or this one restarted, would know the phone);
    // the write is asynchronous, so poll briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let devices = loop {
        let out = server.oncall(&["person", "sip-devices", "erin@example.com"]);
        if out.contains("erin") || Instant::now() >= deadline {
            break out;
        }
        thread::sleep(Duration::from_millis(200));
    };
    eprintln!("[e2e] oncall person sip-devices erin@example.com:\n{devices}");
    checks.check(
        devices.starts_with("erin  sip:erin") && devices.contains("/udp"),
        || format!("binding not in the database: {devices:?}"),
    );
    let finished = phone.wait_for(Duration::from_secs(15));
    eprintln!("[e2e] baresip (right password):\n{}", tail(&finished.stdout, 8));
    checks.check(finished.stdout.contains("200 OK"), || {
        format!("baresip did not print 200 OK:\n{}", finished.stdout)
    });

    let failures_before = metric(&server, "oncall_registrar_auth_failures_total");
    let phone = baresip_register(&server, "baresip-frank", "frank", "not-franks-password", 4);
    let finished = phone.wait_for(Duration::from_secs(15));
    eprintln!("[e2e] baresip (wrong password):\n{}", tail(&finished.stdout, 8));
    let failures = metric(&server, "oncall_registrar_auth_failures_total");
    checks.check(failures > failures_before, || {
        format!("the wrong password was not counted as a failure ({failures_before} → {failures})")
    });
    // Erin's baresip unregistered when it quit (Expires 0); frank's never registered.
    checks.check(server.log().contains("device unregistered username=erin"), || {
        "erin's phone did not unregister on quit".into()
    });
    checks.check(metric(&server, "oncall_registrar_bindings") == 0.0, || {
        "a binding is left (a wrong password registered?)".into()
    });
    checks.check(!server.log().contains("device registered username=frank"), || {
        "frank registered with a wrong password".into()
    });
    checks.finish();
}

/// Issue 18 item 2: a phone that registers the moment its account is created (before the 3 s reload) must
/// register, not collect digest failures and a lockout. The registrar holds the failure while it re-reads the
/// accounts at once, and asks the phone to answer again (`stale=true`).
#[test]
fn a_phone_registering_right_after_its_account_is_created_registers() {
    let server = server("registrar-fresh-account", "algorithms = [\"MD5\"]\n");
    let mut checks = Checks::default();
    add_account(&server, "Hana", "hana", "hana-secret-4");
    // At once: no wait for the periodic reload.
    let phone = baresip_register(&server, "baresip-hana", "hana", "hana-secret-4", 6);
    let bindings = wait_metric(&server, "oncall_registrar_bindings", Duration::from_secs(5), |v| v >= 1.0);
    checks.check(bindings == 1.0, || {
        format!("hana's phone did not register right after the account was made: bindings {bindings}\n{}", server.log_tail(30))
    });
    let log = server.log();
    checks.check(!log.contains("locked out"), || format!("a lockout for a new account:\n{}", server.log_tail(30)));
    checks.check(metric(&server, "oncall_registrar_auth_failures_total") == 0.0, || {
        format!("failures counted for the right password:\n{}", server.log_tail(30))
    });
    // Whatever failed while the account was read is on /metrics as not counted (zero when the read came first).
    let uncounted = metric(&server, "oncall_registrar_uncounted_failures_total{reason=\"account_reload\"}");
    eprintln!("[e2e] failed answers held while the accounts were re-read: {uncounted}");
    checks.check(uncounted >= 0.0, || "oncall_registrar_uncounted_failures_total is missing from /metrics".into());
    let finished = phone.wait_for(Duration::from_secs(15));
    checks.check(finished.stdout.contains("200 OK"), || format!("baresip did not print 200 OK:\n{}", finished.stdout));
    checks.finish();
}

fn scanner(server: &Server, tool: &str, label: &str, args: &[&str]) -> Finished {
    sipvicious(server, tool, label, args, Duration::from_secs(60))
}

#[test]
fn svwar_cannot_tell_accounts_apart_and_svcrack_is_locked_out() {
    // The default challenges (MD5 then SHA-256): svcrack answers the first.
    let server = server("registrar-scanners", "");
    add_account(&server, "Erin", "erin", "correct-horse-1");
    add_account(&server, "Grace", "grace", "grace-pass-3");
    wait_for_accounts();
    let mut checks = Checks::default();

    // svwar: a dictionary of two real usernames and three made-up ones.
    let users = server.dir.join("users.txt");
    fs::write(&users, "erin\nnobody1\ngrace\nnobody2\nadmin\n").unwrap();
    let out = scanner(
        &server,
        "svwar",
        "svwar-register",
        &["-m", "REGISTER", "-d", users.to_str().unwrap()],
    );
    let text = format!("{}\n{}", out.stdout, out.stderr);
    eprintln!("[e2e] svwar -m REGISTER:\n{}", tail(&text, 12));
    let reported: Vec<&str> = ["erin", "grace", "nobody1", "nobody2", "admin"]
        .into_iter()
        .filter(|u| {
            text.lines()
                .any(|l| l.starts_with('|') && l.contains(&format!(" {u} ")))
        })
        .collect();
    checks.check(reported.is_empty() || reported.len() == 5, || {
        format!("svwar told usernames apart: reported {reported:?}\n{text}")
    });

    // svcrack positive control: with the password second in the list (one failure, under every limit), it finds it.
    let short = server.dir.join("short.txt");
    fs::write(&short, "wrong-guess-0\ngrace-pass-3\n").unwrap();
    let out = scanner(
        &server,
        "svcrack",
        "svcrack-control",
        &["-u", "grace", "-d", short.to_str().unwrap()],
    );
    let text = format!("{}\n{}", out.stdout, out.stderr);
    eprintln!("[e2e] svcrack (control):\n{}", tail(&text, 8));
    checks.check(text.contains("grace-pass-3"), || {
        format!("svcrack did not find grace's password without a lockout (control):\n{text}")
    });

    // The attack: the right password comes after the account's lockout threshold (3 failures).
    let words = server.dir.join("words.txt");
    fs::write(&words, "123456\npassword\nerin\nqwerty\nletmein\ncorrect-horse-1\n").unwrap();
    let out = scanner(
        &server,
        "svcrack",
        "svcrack-erin",
        &["-u", "erin", "-d", words.to_str().unwrap()],
    );
    let text = format!("{}\n{}", out.stdout, out.stderr);
    eprintln!("[e2e] svcrack (erin):\n{}", tail(&text, 8));
    checks.check(!text.contains("correct-horse-1"), || {
        format!("svcrack found erin's password despite the lockout:\n{text}")
    });
    let account_lockouts = metric(&server, "oncall_registrar_lockouts_total{kind=\"account\"}");
    checks.check(account_lockouts >= 1.0, || {
        format!("no account lockout on /metrics ({account_lockouts})")
    });
    checks.check(server.log().contains("account locked out"), || {
        "no account lockout in the log".into()
    });

    // Keep guessing from the same source at another (made-up) account: the source is locked out, and
    // then hears nothing, so svcrack stops on its own.
    let out = scanner(
        &server,
        "svcrack",
        "svcrack-nobody",
        &["-u", "nobody1", "-d", words.to_str().unwrap()],
    );
    let text = format!("{}\n{}", out.stdout, out.stderr);
    eprintln!("[e2e] svcrack (nobody1):\n{}", tail(&text, 8));
    let source_lockouts = metric(&server, "oncall_registrar_lockouts_total{kind=\"source\"}");
    checks.check(source_lockouts >= 1.0, || {
        format!(
            "no source lockout on /metrics ({source_lockouts})\n{}",
            server.log_tail(20)
        )
    });
    checks.check(server.log().contains("source locked out"), || {
        "no source lockout in the log".into()
    });
    // Only the control run registered (grace, with the password it found).
    checks.check(metric(&server, "oncall_registrar_bindings") == 1.0, || {
        "the attack registered something".into()
    });
    checks.finish();
}

/// A REGISTER as text from `local` (its Via, with rport, and Contact), for `user`, with an optional Authorization.
fn register_text(
    server: &Server,
    local: std::net::SocketAddr,
    user: &str,
    call_id: &str,
    cseq: u32,
    auth: Option<&str>,
) -> String {
    let mut text = format!(
        "REGISTER sip:{registrar} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@{LOOPBACK}>;tag=f{cseq}\r\nTo: <sip:{user}@{LOOPBACK}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local}>\r\nExpires: 300\r\n",
        registrar = server.sip_udp
    );
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

/// The final response to `call_id` on `sock`: status and headers.
fn final_response(sock: &std::net::UdpSocket, call_id: &str, limit: Duration) -> Option<(u16, Vec<(String, String)>)> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
        let raw = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut lines = raw.split("\r\n");
        let Some(code) = lines.next().and_then(|l| l.strip_prefix("SIP/2.0 ")) else {
            continue;
        };
        let code: u16 = code.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let same = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("call-id") && v == call_id);
        if same && code >= 200 {
            return Some((code, headers));
        }
    }
    None
}

/// Issue 15 item 5: a REGISTER captured off the wire and sent again from another port, with a new Call-ID
/// and the attacker's Contact, used to get 200 and add the attacker's phone to the person's devices (so the
/// attacker got their pages). Now it is challenged again (401, stale) and no binding is added.
#[test]
fn a_captured_register_replayed_from_another_port_adds_no_binding() {
    let server = server("registrar-replay", "");
    add_account(&server, "Alice", "alice", "alices-password");
    wait_for_accounts();
    let mut checks = Checks::default();
    let phone = std::net::UdpSocket::bind((LOOPBACK, 0)).expect("bind the phone");
    phone.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = phone.local_addr().unwrap();
    phone
        .send_to(
            register_text(&server, local, "alice", "alice-reg", 1, None).as_bytes(),
            server.sip_udp,
        )
        .unwrap();
    let challenge = final_response(&phone, "alice-reg", Duration::from_secs(5));
    let Some(www) = challenge.as_ref().and_then(|(code, h)| {
        (*code == 401).then(|| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
                .map(|(_, v)| v.clone())
        })?
    }) else {
        panic!(
            "the first REGISTER was not challenged: {challenge:?}\n{}",
            server.log_tail(20)
        );
    };
    let c = oncall_sip::auth::digest::Challenge::parse(&www).expect("a digest challenge");
    let auth = c
        .respond(
            "alice",
            "alices-password",
            "REGISTER",
            &format!("sip:{}", server.sip_udp),
            "phone-cnonce",
            1,
        )
        .to_header();
    // The REGISTER the attacker captures.
    let captured = register_text(&server, local, "alice", "alice-reg", 2, Some(&auth));
    phone.send_to(captured.as_bytes(), server.sip_udp).unwrap();
    let ok = final_response(&phone, "alice-reg", Duration::from_secs(5)).map(|r| r.0);
    checks.check(ok == Some(200), || format!("Alice's phone did not register: {ok:?}"));
    checks.check(
        wait_metric(&server, "oncall_registrar_bindings", Duration::from_secs(3), |v| {
            v == 1.0
        }) == 1.0,
        || "no binding for Alice".into(),
    );

    // The replay: same Authorization, another port, new Call-ID, Via and Contact.
    let attacker = std::net::UdpSocket::bind((LOOPBACK, 0)).expect("bind the attacker");
    attacker.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let evil = attacker.local_addr().unwrap();
    let replay = register_text(&server, evil, "alice", "evil-call", 7, Some(&auth));
    attacker.send_to(replay.as_bytes(), server.sip_udp).unwrap();
    let answer = final_response(&attacker, "evil-call", Duration::from_secs(5));
    eprintln!(
        "[e2e] the replayed REGISTER from {evil} got {:?}",
        answer.as_ref().map(|a| a.0)
    );
    checks.check(answer.as_ref().is_some_and(|(code, _)| *code == 401), || {
        format!(
            "the replayed REGISTER got {:?} (expected 401)",
            answer.as_ref().map(|a| a.0)
        )
    });
    let stale = answer.as_ref().is_some_and(|(_, h)| {
        h.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("WWW-Authenticate") && v.contains("stale=true"))
    });
    checks.check(stale, || "the replay was not re-challenged with stale=true".into());
    checks.check(metric(&server, "oncall_registrar_replays_total") == 1.0, || {
        "replays_total is not 1".into()
    });
    checks.check(metric(&server, "oncall_registrar_bindings") == 1.0, || {
        "the replay added a binding".into()
    });
    checks.check(metric(&server, "oncall_registrar_auth_failures_total") == 0.0, || {
        "a replay counted as a failed password".into()
    });

    // Alice's phone refreshes as phones do (same nonce, next nc) and is still fine.
    let refresh_auth = c
        .respond(
            "alice",
            "alices-password",
            "REGISTER",
            &format!("sip:{}", server.sip_udp),
            "phone-cnonce",
            2,
        )
        .to_header();
    phone
        .send_to(
            register_text(&server, local, "alice", "alice-reg", 3, Some(&refresh_auth)).as_bytes(),
            server.sip_udp,
        )
        .unwrap();
    let refreshed = final_response(&phone, "alice-reg", Duration::from_secs(5)).map(|r| r.0);
    checks.check(refreshed == Some(200), || {
        format!("the refresh with nc=2 got {refreshed:?}")
    });
    checks.finish();
}
