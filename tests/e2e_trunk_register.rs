//! Trunk registration against a real registrar, and the PBX-mode source filter (GitHub issue 6, first part).
//!
//! Kamailio 5.6 (Debian) is configured by the test as a registrar that challenges every REGISTER with a digest
//! (`qop=auth`; MD5 or SHA-256) and checks one user's plain-text password. Its script logs each REGISTER and what it
//! answered, with a timestamp, so the test measures what OnCall actually sent: the challenge then the accepted
//! REGISTER, the refresh at about 80% of the granted expiry, the unregistration on SIGTERM, and with a wrong
//! password the backoff (no REGISTER storm). OnCall's side is read from /metrics (`oncall_trunk_registered`) and
//! its log. Takes about 25 s (the tests run in parallel).

mod support;

use std::time::{Duration, Instant};
use support::*;

fn trunk_toml(registrar: std::net::SocketAddr, password: &str, expires: u32) -> String {
    format!(
        r#"[[trunks]]
name = "kam"
registrar = "sip:{registrar}"
username = "alice"
password = "{password}"
expires_secs = {expires}
"#
    )
}

fn registered(server: &Server) -> Option<f64> {
    let (_, page) = http_get(server.http, "/metrics")?;
    metric(&page, "oncall_trunk_registered{trunk=\"kam\"}")
}

fn wait_registered(server: &Server, want: f64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if registered(server) == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn registers_with_md5_digest_refreshes_before_expiry_and_unregisters() {
    let dir = TestDir::new("trunk-register");
    let kam = Kamailio::start(&dir.path, "alice", "s3cret", "MD5", 10);
    let mut server = Server::start(
        "trunk-register",
        options_with_trunks(&trunk_toml(kam.addr, "s3cret", 20)),
    );
    let mut checks = Checks::default();

    checks.check(wait_registered(&server, 1.0, Duration::from_secs(5)), || {
        format!(
            "/metrics never showed the trunk registered: {:?}",
            http_get(server.http, "/metrics")
        )
    });
    let health = http_get(server.http, "/healthz");
    checks.check(
        health.as_ref().is_some_and(|h| h.0 == 200 && h.1.contains("trunk kam: registered")),
        || format!("/healthz should be 200 and list the trunk as registered: {health:?}"),
    );

    // The first exchange: REGISTER without credentials → 401, then the answer → saved.
    let first_ok = kam.wait_event(Duration::from_secs(5), |e| e.kind == "ACCEPTED");
    let events = kam.events();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    checks.check(
        kinds.starts_with(&["REGISTER", "CHALLENGE", "REGISTER", "ACCEPTED"]),
        || format!("first exchange: {events:?}"),
    );
    if let (Some(first), Some(ok)) = (events.first(), &first_ok) {
        eprintln!(
            "[e2e] REGISTER → 401 → REGISTER → 200 took {:.1} ms",
            (ok.at - first.at) * 1000.0
        );
        checks.check(ok.expires == "20" && ok.user == "alice", || {
            format!("accepted REGISTER: {ok:?}")
        });
    }

    // The refresh: same registration (CSeq goes on), at ~80% of the 20 s granted.
    let refresh = kam.wait_event(Duration::from_secs(22), |e| {
        e.kind == "ACCEPTED" && first_ok.as_ref().is_some_and(|f| e.cseq > f.cseq)
    });
    match (&first_ok, &refresh) {
        (Some(a), Some(b)) => {
            let after = b.at - a.at;
            eprintln!(
                "[e2e] refresh accepted {after:.2} s after the registration (expiry 20 s); events: {:?}",
                kam.events()
            );
            checks.check((14.0..=18.5).contains(&after), || {
                format!("refresh after {after:.2} s, expected about 16 s")
            });
        }
        _ => checks.fail(format!("no refresh REGISTER accepted within 22 s: {:?}", kam.events())),
    }
    checks.check(registered(&server) == Some(1.0), || {
        "not registered after the refresh".into()
    });
    checks.check(server.log().contains("trunk registered"), || {
        "no \"trunk registered\" log line".into()
    });

    // SIGTERM: OnCall removes its binding (Expires: 0) before it exits.
    let status = server.terminate(Duration::from_secs(10));
    checks.check(status.is_some(), || "oncall did not exit within 10 s of SIGTERM".into());
    let unreg = kam.wait_event(Duration::from_secs(2), |e| e.kind == "ACCEPTED" && e.expires == "0");
    checks.check(unreg.is_some(), || {
        format!("no unregistration (Expires: 0) accepted: {:?}", kam.events())
    });
    checks.finish();
}

#[test]
fn registers_with_sha256_digest() {
    let dir = TestDir::new("trunk-sha256");
    let kam = Kamailio::start(&dir.path, "alice", "s3cret", "SHA-256", 10);
    let server = Server::start("trunk-sha256", options_with_trunks(&trunk_toml(kam.addr, "s3cret", 60)));
    let mut checks = Checks::default();
    checks.check(wait_registered(&server, 1.0, Duration::from_secs(5)), || {
        format!("not registered with SHA-256: {:?}", kam.events())
    });
    let log = kam.log();
    checks.check(kam.events().iter().any(|e| e.kind == "CHALLENGE"), || {
        "the registrar never challenged".into()
    });
    checks.check(!log.contains("ERROR"), || {
        format!("kamailio errors:\n{}", tail(&log, 20))
    });
    checks.finish();
}

#[test]
fn wrong_password_fails_and_backs_off_without_a_register_storm() {
    let dir = TestDir::new("trunk-wrong-password");
    let kam = Kamailio::start(&dir.path, "alice", "s3cret", "MD5", 10);
    let started = Instant::now();
    let server = Server::start(
        "trunk-wrong-password",
        options_with_trunks(&trunk_toml(kam.addr, "wrong", 60)),
    );
    let mut checks = Checks::default();
    checks.check(wait_registered(&server, 0.0, Duration::from_secs(3)), || {
        "/metrics does not show the trunk unregistered".into()
    });
    // Attempts (a REGISTER and its answer to the challenge) at 0 s and after 4-5 s; the next backoff is 8-10 s.
    std::thread::sleep(Duration::from_secs(11).saturating_sub(started.elapsed()));
    let events = kam.events();
    let registers: Vec<f64> = events.iter().filter(|e| e.kind == "REGISTER").map(|e| e.at).collect();
    let t0 = registers.first().copied().unwrap_or(0.0);
    let offsets: Vec<String> = registers.iter().map(|t| format!("{:.2}", t - t0)).collect();
    eprintln!("[e2e] REGISTERs with a wrong password over 11 s, at (s): {offsets:?}");
    checks.check((4..=6).contains(&registers.len()), || {
        format!(
            "{} REGISTERs in 11 s (expected 4: two attempts of two): {offsets:?}",
            registers.len()
        )
    });
    if registers.len() >= 3 {
        let gap = registers[2] - registers[1];
        checks.check((3.9..=5.5).contains(&gap), || {
            format!("first retry after {gap:.2} s, expected 4-5 s")
        });
    }
    checks.check(events.iter().all(|e| e.kind != "ACCEPTED"), || {
        format!("accepted with a wrong password?! {events:?}")
    });
    let log = server.log();
    checks.check(
        log.contains("trunk registration failed") && log.contains("credentials rejected"),
        || format!("no failure logged:\n{}", tail(&log, 20)),
    );
    let health = http_get(server.http, "/healthz");
    checks.check(
        health.as_ref().is_some_and(|h| h.0 == 200 && h.1.contains("trunk kam: failed")),
        || format!("a trunk failure must not fail /healthz, and is listed there: {health:?}"),
    );
    checks.finish();
}

#[test]
fn pbx_mode_answers_only_allowed_sources() {
    let server = Server::start(
        "trunk-pbx",
        options_with_trunks("[[trunks]]\nname = \"pbx\"\nregister = false\nallowed_sources = [\"127.0.0.2\"]\n"),
    );
    let mut checks = Checks::default();
    let refused = udp_invite_statuses("127.0.0.1", server.sip_udp, Duration::from_secs(3));
    eprintln!("[e2e] INVITE from 127.0.0.1: {refused:?}");
    checks.check(refused.last() == Some(&403), || {
        format!("INVITE from a source no trunk allows: {refused:?}")
    });

    // A real call from the allowed address (SIPp bound to 127.0.0.2; the later -i wins).
    let run = Sipp::new(&server, "uac_call.xml", "sipp-allowed")
        .arg("-i")
        .arg("127.0.0.2")
        .limit(Duration::from_secs(15))
        .run();
    let statuses = run.received_statuses();
    eprintln!("[e2e] call from 127.0.0.2: {statuses:?}");
    checks.check(run.success(), || run.describe());
    checks.check(statuses.iter().any(|s| s.starts_with("200")), || {
        format!("no 200 for the allowed source: {statuses:?}")
    });
    checks.check(server.log().contains("no trunk allows"), || {
        "the refusal was not logged".into()
    });
    checks.finish();
}
