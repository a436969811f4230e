//! Registrar tests on a virtual clock: challenge, register, refresh, remove, expiry, 423, lockouts,
//! and that a scanner sees the same answers for real and made-up usernames.

use super::*;
use crate::message::{parse_datagram, SipMessage};
use crate::transaction::Transport;

const REALM: &str = "oncall";

fn peer(ip: &str, port: u16) -> Peer {
    Peer {
        addr: format!("{ip}:{port}").parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
    }
}

fn accounts() -> HashMap<String, AccountKeys> {
    let mut m = HashMap::new();
    m.insert(
        "alice".to_string(),
        AccountKeys::from_password("alice", REALM, "correct horse"),
    );
    m.insert(
        "bob".to_string(),
        AccountKeys::from_password("bob", REALM, "battery staple"),
    );
    m
}

fn registrar(now: Instant) -> Registrar {
    let mut cfg = RegistrarConfig::new(REALM);
    cfg.lockout = LockoutConfig {
        source_attempts: 6,
        account_attempts: 3,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
    };
    Registrar::new(cfg, [7u8; 32], now)
}

/// A REGISTER for `user` with `contacts` (full header values), an optional Expires and Authorization.
fn register(
    user: &str,
    call_id: &str,
    cseq: u32,
    contacts: &[&str],
    expires: Option<u32>,
    auth: Option<&str>,
) -> Request {
    let mut text = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}{call_id}\r\n\
         From: <sip:{user}@127.0.0.1>;tag=f1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
    );
    for c in contacts {
        text.push_str(&format!("Contact: {c}\r\n"));
    }
    if let Some(e) = expires {
        text.push_str(&format!("Expires: {e}\r\n"));
    }
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_datagram(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    }
}

fn challenges(resp: &Response) -> Vec<Challenge> {
    resp.headers
        .get_all("WWW-Authenticate")
        .map(|v| Challenge::parse(v).unwrap())
        .collect()
}

/// Answers the first challenge of `resp` with `algorithm`.
fn answer(resp: &Response, username: &str, password: &str, algorithm: Algorithm) -> String {
    answer_nc(resp, username, password, algorithm, 1)
}

/// The same, as the `nc`-th request on that nonce.
fn answer_nc(resp: &Response, username: &str, password: &str, algorithm: Algorithm, nc: u32) -> String {
    let c = challenges(resp)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .expect("challenge for the algorithm");
    c.respond(username, password, "REGISTER", "sip:127.0.0.1", "cnonce1", nc)
        .to_header()
}

/// The whole exchange: unauthenticated REGISTER, 401, authenticated REGISTER; returns the last answer.
#[allow(clippy::too_many_arguments)]
fn login(
    r: &mut Registrar,
    from: Peer,
    user: &str,
    password: &str,
    contacts: &[&str],
    expires: Option<u32>,
    cseq: u32,
    now: Instant,
) -> Response {
    let first = r.handle_register(
        &register(user, "cid-1", cseq, contacts, expires, None),
        from,
        &accounts(),
        now,
    );
    assert_eq!(first.status, 401);
    let auth = answer(&first, user, password, Algorithm::Md5);
    r.handle_register(
        &register(user, "cid-1", cseq + 1, contacts, expires, Some(&auth)),
        from,
        &accounts(),
        now,
    )
}

fn contact_values(resp: &Response) -> Vec<String> {
    resp.headers
        .list_values("Contact")
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[test]
fn first_register_is_challenged_with_md5_and_sha256() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let resp = r.handle_register(
        &register("alice", "c", 1, &["<sip:alice@10.0.0.5:5062>"], None, None),
        peer("10.0.0.5", 5062),
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 401);
    let cs = challenges(&resp);
    assert_eq!(
        cs.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        vec![Algorithm::Md5, Algorithm::Sha256]
    );
    assert!(cs.iter().all(|c| c.qop_auth && c.realm == REALM && !c.stale));
    assert!(resp.headers.to().unwrap().tag().is_some(), "the UAS adds a To tag");
    assert!(
        resp.headers.get("Server").is_none() && resp.headers.get("User-Agent").is_none(),
        "no banner"
    );
    assert!(r.bindings("alice", t0).is_empty());
}

#[test]
fn register_with_md5_and_with_sha256_then_several_devices() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let desk = peer("10.0.0.5", 5062);
    let resp = login(
        &mut r,
        desk,
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.5:5062>"],
        Some(600),
        1,
        t0,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(contact_values(&resp), vec!["<sip:alice@10.0.0.5:5062>;expires=600"]);

    // A second device, answering the SHA-256 challenge.
    let laptop = peer("10.0.0.9", 5060);
    let first = r.handle_register(
        &register("alice", "cid-2", 1, &["<sip:alice@10.0.0.9>;expires=120"], None, None),
        laptop,
        &accounts(),
        t0,
    );
    let auth = answer(&first, "alice", "correct horse", Algorithm::Sha256);
    let resp = r.handle_register(
        &register(
            "alice",
            "cid-2",
            2,
            &["<sip:alice@10.0.0.9>;expires=120"],
            None,
            Some(&auth),
        ),
        laptop,
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(contact_values(&resp).len(), 2);
    let devices = r.bindings("alice", t0);
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[1].source, laptop);
    assert_eq!(r.binding_count(t0), 2);
    let changes: Vec<_> = std::iter::from_fn(|| r.poll_change()).collect();
    assert_eq!(changes.len(), 2);
    assert!(
        matches!(&changes[0], BindingChange::Set { username, binding } if username == "alice" && binding.contact == "sip:alice@10.0.0.5:5062")
    );

    // The laptop's binding expires first; the desk phone's later.
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    r.handle_timeout(t0 + Duration::from_secs(121));
    assert_eq!(r.bindings("alice", t0 + Duration::from_secs(121)).len(), 1);
    assert_eq!(
        r.poll_change(),
        Some(BindingChange::Removed {
            username: "alice".into(),
            contact: "sip:alice@10.0.0.9".into()
        })
    );
}

#[test]
fn refresh_replaces_and_expires_zero_removes_one_contact() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    let resp = login(
        &mut r,
        from,
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.5:5062>", "<sip:alice@10.0.0.5:5064>"],
        Some(300),
        1,
        t0,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(r.bindings("alice", t0).len(), 2);
    // Refresh with the same nonce (nc 2) later: same binding, new expiry; the host compares case-insensitively.
    let t1 = t0 + Duration::from_secs(100);
    let first = r.handle_register(
        &register("alice", "cid-1", 5, &["<sip:alice@10.0.0.5:5062>"], Some(0), None),
        from,
        &accounts(),
        t1,
    );
    let auth = answer(&first, "alice", "correct horse", Algorithm::Md5);
    let resp = r.handle_register(
        &register(
            "alice",
            "cid-1",
            6,
            &["<sip:alice@10.0.0.5:5062>"],
            Some(0),
            Some(&auth),
        ),
        from,
        &accounts(),
        t1,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(contact_values(&resp), vec!["<sip:alice@10.0.0.5:5064>;expires=200"]);
    // An older CSeq on the same Call-ID must not undo it (§10.3 step 7), even on a good nonce count.
    let auth = answer_nc(&first, "alice", "correct horse", Algorithm::Md5, 2);
    let resp = r.handle_register(
        &register(
            "alice",
            "cid-1",
            2,
            &["<sip:alice@10.0.0.5:5064>"],
            Some(3600),
            Some(&auth),
        ),
        from,
        &accounts(),
        t1,
    );
    assert_eq!(resp.status, 500);
}

#[test]
fn star_with_expires_zero_removes_all_and_needs_expires_zero() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    login(
        &mut r,
        from,
        "bob",
        "battery staple",
        &["<sip:bob@10.0.0.5:5062>", "<sip:bob@10.0.0.6>"],
        None,
        1,
        t0,
    );
    assert_eq!(r.bindings("bob", t0).len(), 2);
    let first = r.handle_register(
        &register("bob", "cid-9", 1, &["*"], Some(3600), None),
        from,
        &accounts(),
        t0,
    );
    let auth = answer(&first, "bob", "battery staple", Algorithm::Md5);
    let bad = r.handle_register(
        &register("bob", "cid-9", 2, &["*"], Some(3600), Some(&auth)),
        from,
        &accounts(),
        t0,
    );
    assert_eq!(bad.status, 400);
    let auth = answer_nc(&first, "bob", "battery staple", Algorithm::Md5, 2);
    let ok = r.handle_register(
        &register("bob", "cid-9", 3, &["*"], Some(0), Some(&auth)),
        from,
        &accounts(),
        t0,
    );
    assert_eq!(ok.status, 200);
    assert!(contact_values(&ok).is_empty());
    assert!(r.bindings("bob", t0).is_empty());
    let removed = std::iter::from_fn(|| r.poll_change())
        .filter(|c| matches!(c, BindingChange::Removed { .. }))
        .count();
    assert_eq!(removed, 2);
}

#[test]
fn expiry_limits_423_and_cap() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    let resp = login(
        &mut r,
        from,
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.5>;expires=30"],
        None,
        1,
        t0,
    );
    assert_eq!(resp.status, 423);
    assert_eq!(resp.headers.get("Min-Expires"), Some("60"));
    assert!(r.bindings("alice", t0).is_empty());
    let resp = login(
        &mut r,
        from,
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.5>"],
        Some(86_400),
        10,
        t0,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        contact_values(&resp),
        vec!["<sip:alice@10.0.0.5>;expires=3600"],
        "capped at max_expires"
    );
    // No Contact: a fetch of the current bindings.
    let resp = login(
        &mut r,
        from,
        "alice",
        "correct horse",
        &[],
        None,
        20,
        t0 + Duration::from_secs(10),
    );
    assert_eq!(contact_values(&resp), vec!["<sip:alice@10.0.0.5>;expires=3590"]);
}

#[test]
fn another_users_aor_is_forbidden_even_with_a_valid_password() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    let first = r.handle_register(
        &register("bob", "c", 1, &["<sip:evil@10.0.0.66>"], None, None),
        from,
        &accounts(),
        t0,
    );
    let auth = answer(&first, "alice", "correct horse", Algorithm::Md5);
    let resp = r.handle_register(
        &register("bob", "c", 2, &["<sip:evil@10.0.0.66>"], None, Some(&auth)),
        from,
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 403);
    assert!(r.bindings("bob", t0).is_empty());
}

#[test]
fn stale_and_forged_nonces_are_rechallenged_without_counting_a_failure() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    let first = r.handle_register(
        &register("alice", "c", 1, &["<sip:alice@10.0.0.5>"], None, None),
        from,
        &accounts(),
        t0,
    );
    let auth = answer(&first, "alice", "correct horse", Algorithm::Md5);
    let late = t0 + Duration::from_secs(301);
    let resp = r.handle_register(
        &register("alice", "c", 2, &["<sip:alice@10.0.0.5>"], None, Some(&auth)),
        from,
        &accounts(),
        late,
    );
    assert_eq!(resp.status, 401);
    assert!(challenges(&resp).iter().all(|c| c.stale));
    // A nonce this registrar never issued.
    let forged = auth.replace(&challenges(&first)[0].nonce, &"0".repeat(48));
    let resp = r.handle_register(
        &register("alice", "c", 3, &["<sip:alice@10.0.0.5>"], None, Some(&forged)),
        from,
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 401);
    assert!(challenges(&resp).iter().all(|c| !c.stale));
    // An Authorization with an unknown scheme (RFC 4475 REGAUT01) is just challenged.
    let resp = r.handle_register(
        &register(
            "alice",
            "c",
            4,
            &[],
            None,
            Some("NoOneKnowsThisScheme opaque-data=here"),
        ),
        from,
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 401);
    assert_eq!(r.stats.auth_failures, 0);
}

/// What a scanner sees, minus the parts that differ for every request anyway (nonce, To tag).
fn shape(resp: &Response) -> String {
    let mut out = format!("{} {}\n", resp.status, resp.reason);
    for h in resp.headers.iter() {
        let v = match h.name.as_str() {
            "WWW-Authenticate" => {
                let c = Challenge::parse(&h.value).unwrap();
                format!("{:?} {} {} {}", c.algorithm, c.realm, c.qop_auth, c.stale)
            }
            "To" => h
                .value
                .split(";tag=")
                .next()
                .unwrap_or("")
                .replace("alice", "U")
                .replace("mallory", "U"),
            "From" | "Via" | "Call-ID" | "CSeq" => continue,
            _ => h.value.clone(),
        };
        out.push_str(&format!("{}: {v}\n", h.name));
    }
    out
}

#[test]
fn known_and_unknown_usernames_get_the_same_answers() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let (a, b) = (peer("10.0.0.5", 5062), peer("10.0.0.6", 5062));
    let mut seen = Vec::new();
    for (user, from) in [("alice", a), ("mallory", b)] {
        let first = r.handle_register(
            &register(user, "c", 1, &["<sip:x@10.0.0.5>"], None, None),
            from,
            &accounts(),
            t0,
        );
        let auth = answer(&first, user, "wrong", Algorithm::Md5);
        let second = r.handle_register(
            &register(user, "c", 2, &["<sip:x@10.0.0.5>"], None, Some(&auth)),
            from,
            &accounts(),
            t0,
        );
        seen.push((shape(&first), shape(&second)));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(r.stats.auth_failures, 2);
}

#[test]
fn account_lockout_after_failures_then_403_even_with_the_right_password_until_it_ends() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut statuses = Vec::new();
    // Three guesses from three sources (each source stays under its own limit).
    for (i, ip) in ["10.0.1.1", "10.0.1.2", "10.0.1.3"].into_iter().enumerate() {
        let from = peer(ip, 5060);
        let first = r.handle_register(&register("alice", "c", 1, &[], None, None), from, &accounts(), t0);
        let auth = answer(&first, "alice", &format!("guess{i}"), Algorithm::Md5);
        statuses.push(
            r.handle_register(
                &register("alice", "c", 2, &[], None, Some(&auth)),
                from,
                &accounts(),
                t0,
            )
            .status,
        );
    }
    assert_eq!(statuses, vec![401, 401, 403]);
    assert_eq!(r.stats.account_lockouts, 1);
    assert_eq!(
        r.poll_lockout().map(|l| l.target),
        Some(LockoutTarget::Account("alice".into()))
    );
    // The right password from a fourth source: still 403 during the lockout.
    let from = peer("10.0.1.4", 5060);
    let t1 = t0 + Duration::from_secs(599);
    let resp = login(
        &mut r,
        from,
        "alice",
        "correct horse",
        &["<sip:alice@10.0.1.4>"],
        None,
        1,
        t1,
    );
    assert_eq!(resp.status, 403);
    // Bob is not affected.
    assert_eq!(
        login(
            &mut r,
            from,
            "bob",
            "battery staple",
            &["<sip:bob@10.0.1.4>"],
            None,
            1,
            t1
        )
        .status,
        200
    );
    // After the lockout the right password works again.
    let t2 = t0 + Duration::from_secs(601);
    assert_eq!(
        login(
            &mut r,
            from,
            "alice",
            "correct horse",
            &["<sip:alice@10.0.1.4>"],
            None,
            5,
            t2
        )
        .status,
        200
    );
}

#[test]
fn source_lockout_covers_every_username_and_unknown_ones_count_the_same() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("192.0.2.7", 5060);
    let mut statuses = Vec::new();
    // Six failures across three usernames (each under the account limit of 3, two of them made up).
    for i in 0..6 {
        let user = ["mallory", "bob", "trudy"][i as usize % 3];
        let first = r.handle_register(&register(user, "c", 1, &[], None, None), from, &accounts(), t0);
        let auth = answer(&first, user, &format!("guess{i}"), Algorithm::Md5);
        statuses.push(
            r.handle_register(
                &register(user, "c", 2, &[], None, Some(&auth)),
                from,
                &accounts(),
                t0 + Duration::from_secs(i),
            )
            .status,
        );
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 403]);
    assert_eq!((r.stats.source_lockouts, r.stats.account_lockouts), (1, 0));
    assert!(r.source_locked(from.addr.ip(), t0 + Duration::from_secs(10)));
    let lock = r.poll_lockout().unwrap();
    assert_eq!(lock.target, LockoutTarget::Source(from.addr.ip()));
    // Everything from that source gets 403, even the right password for another account.
    let resp = r.handle_register(
        &register("alice", "c", 1, &[], None, None),
        from,
        &accounts(),
        t0 + Duration::from_secs(10),
    );
    assert_eq!(resp.status, 403);
    assert_eq!(r.stats.rejected_locked, 1);
    // Another source is fine.
    assert_eq!(
        login(
            &mut r,
            peer("192.0.2.8", 5060),
            "alice",
            "correct horse",
            &[],
            None,
            1,
            t0 + Duration::from_secs(10)
        )
        .status,
        200
    );
    // The lockout ends.
    assert_eq!(
        login(&mut r, from, "alice", "correct horse", &[], None, 1, lock.until).status,
        200
    );
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("192.0.2.9", 5060);
    for i in 0..10u64 {
        let now = t0 + Duration::from_secs(61 * i);
        let first = r.handle_register(&register("alice", "c", 1, &[], None, None), from, &accounts(), now);
        let auth = answer(&first, "alice", "nope", Algorithm::Md5);
        assert_eq!(
            r.handle_register(
                &register("alice", "c", 2, &[], None, Some(&auth)),
                from,
                &accounts(),
                now
            )
            .status,
            401
        );
        r.handle_timeout(now);
    }
    assert_eq!(r.stats.source_lockouts + r.stats.account_lockouts, 0);
}

#[test]
fn too_many_devices_and_restore() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    for i in 0..10 {
        r.restore(
            "alice",
            Binding {
                contact: format!("sip:alice@10.0.0.{i}"),
                expires_at: t0 + Duration::from_secs(100),
                source: peer("10.0.0.1", 5060),
                call_id: "x".into(),
                cseq: 1,
            },
            t0,
        );
    }
    r.restore(
        "alice",
        Binding {
            contact: "sip:alice@10.9.9.9".into(),
            expires_at: t0,
            source: peer("10.0.0.1", 5060),
            call_id: "x".into(),
            cseq: 1,
        },
        t0,
    );
    assert_eq!(r.bindings("alice", t0).len(), 10);
    assert!(r.poll_change().is_none(), "restoring queues nothing");
    let resp = login(
        &mut r,
        peer("10.0.0.1", 5060),
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.99>"],
        None,
        1,
        t0,
    );
    assert_eq!(resp.status, 403);
    // Refreshing one of the ten is fine.
    let resp = login(
        &mut r,
        peer("10.0.0.1", 5060),
        "alice",
        "correct horse",
        &["<sip:alice@10.0.0.3>"],
        None,
        1,
        t0,
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn md5_only_challenges_and_refuses_sha256_answers() {
    let t0 = Instant::now();
    let mut cfg = RegistrarConfig::new(REALM);
    cfg.algorithms = vec![Algorithm::Md5];
    let mut r = Registrar::new(cfg, [7u8; 32], t0);
    let from = peer("10.0.0.5", 5062);
    let first = r.handle_register(&register("alice", "c", 1, &[], None, None), from, &accounts(), t0);
    assert_eq!(
        challenges(&first).iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        vec![Algorithm::Md5]
    );
    // An answer with an algorithm that was not offered is just challenged again.
    let c = Challenge {
        algorithm: Algorithm::Sha256,
        ..challenges(&first)[0].clone()
    };
    let auth = c
        .respond("alice", "correct horse", "REGISTER", "sip:127.0.0.1", "cn", 1)
        .to_header();
    assert_eq!(
        r.handle_register(
            &register("alice", "c", 2, &[], None, Some(&auth)),
            from,
            &accounts(),
            t0
        )
        .status,
        401
    );
    assert_eq!(r.stats.auth_failures, 0);
}

#[test]
fn bad_contacts_get_400() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.0.5", 5062);
    assert_eq!(
        login(
            &mut r,
            from,
            "alice",
            "correct horse",
            &["<tel:+15551234>"],
            None,
            1,
            t0
        )
        .status,
        400
    );
    assert_eq!(
        login(
            &mut r,
            from,
            "alice",
            "correct horse",
            &["*", "<sip:alice@10.0.0.5>"],
            Some(0),
            3,
            t0
        )
        .status,
        400
    );
}

#[test]
fn a_captured_register_replayed_from_another_port_with_a_new_call_id_and_contact_is_refused() {
    // Issue 15 item 5: the attacker has one authenticated REGISTER of alice's off the wire.
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let phone = peer("10.0.0.5", 5062);
    let first = r.handle_register(
        &register("alice", "cid-a", 1, &["<sip:alice@10.0.0.5:5062>"], None, None),
        phone,
        &accounts(),
        t0,
    );
    let auth = answer(&first, "alice", "correct horse", Algorithm::Md5);
    let captured = register("alice", "cid-a", 2, &["<sip:alice@10.0.0.5:5062>"], None, Some(&auth));
    assert_eq!(r.handle_register(&captured, phone, &accounts(), t0).status, 200);
    let _ = std::iter::from_fn(|| r.poll_change()).count();

    // Replayed a second later from another port of the same address (same NAT), new Call-ID and Contact.
    let t1 = t0 + Duration::from_secs(1);
    let replay = register(
        "alice",
        "evil-call",
        1,
        &["<sip:alice@10.0.0.5:40000>"],
        None,
        Some(&auth),
    );
    let resp = r.handle_register(&replay, peer("10.0.0.5", 40000), &accounts(), t1);
    assert_eq!(resp.status, 401);
    assert!(
        challenges(&resp).iter().all(|c| c.stale),
        "a replay is re-challenged as stale"
    );
    // And from another address: the nonce was issued to 10.0.0.5 only.
    let resp = r.handle_register(&replay, peer("203.0.113.9", 5060), &accounts(), t1);
    assert_eq!(resp.status, 401);
    let devices: Vec<&str> = r.bindings("alice", t1).iter().map(|b| b.contact.as_str()).collect();
    assert_eq!(
        devices,
        vec!["sip:alice@10.0.0.5:5062"],
        "no binding was added for the attacker"
    );
    assert_eq!(r.poll_change(), None);
    assert_eq!(r.stats.replays, 1);
    assert_eq!(r.stats.auth_failures, 0, "a replay is not a password guess");
}

#[test]
fn nonce_counts_must_grow_and_a_nonce_answered_without_qop_is_single_use() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let phone = peer("10.0.0.5", 5062);
    let contact = ["<sip:alice@10.0.0.5:5062>"];
    let first = r.handle_register(&register("alice", "c", 1, &contact, None, None), phone, &accounts(), t0);
    let send = |r: &mut Registrar, cseq: u32, auth: &str| {
        r.handle_register(
            &register("alice", "c", cseq, &contact, None, Some(auth)),
            phone,
            &accounts(),
            t0,
        )
        .status
    };
    let nc = |n| answer_nc(&first, "alice", "correct horse", Algorithm::Md5, n);
    assert_eq!(send(&mut r, 2, &nc(1)), 200);
    assert_eq!(send(&mut r, 3, &nc(3)), 200, "counts may skip (a lost request)");
    assert_eq!(send(&mut r, 4, &nc(3)), 401);
    assert_eq!(send(&mut r, 5, &nc(2)), 401);
    assert_eq!(send(&mut r, 6, &nc(4)), 200);

    // RFC 2069 style (the client ignores qop): no nc, so the nonce may carry one request only.
    let again = r.handle_register(&register("alice", "d", 1, &contact, None, None), phone, &accounts(), t0);
    let mut c = challenges(&again).remove(0);
    c.qop_auth = false;
    let plain = c
        .respond("alice", "correct horse", "REGISTER", "sip:127.0.0.1", "", 1)
        .to_header();
    assert!(!plain.contains("nc="));
    assert_eq!(
        r.handle_register(
            &register("alice", "d", 2, &contact, None, Some(&plain)),
            phone,
            &accounts(),
            t0
        )
        .status,
        200
    );
    assert_eq!(
        r.handle_register(
            &register("alice", "d", 3, &contact, None, Some(&plain)),
            phone,
            &accounts(),
            t0
        )
        .status,
        401
    );
    assert_eq!(r.stats.auth_failures, 0);
}

#[test]
fn a_phone_resending_its_answer_in_a_burst_is_rechallenged_not_locked_out() {
    // Issue 18: a phone that fires the same authenticated REGISTER several times in new transactions
    // (new branch and CSeq, same Authorization) must still register, and never be locked out.
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let phone = peer("10.0.0.5", 5062);
    let contact = ["<sip:alice@10.0.0.5:5062>"];
    let first = r.handle_register(&register("alice", "c", 1, &contact, None, None), phone, &accounts(), t0);
    let auth = answer(&first, "alice", "correct horse", Algorithm::Md5);
    let mut last = None;
    for cseq in 2..22 {
        let resp = r.handle_register(
            &register("alice", "c", cseq, &contact, None, Some(&auth)),
            phone,
            &accounts(),
            t0,
        );
        assert_eq!(resp.status, if cseq == 2 { 200 } else { 401 }, "CSeq {cseq}");
        last = Some(resp);
    }
    assert!(!r.source_locked(phone.addr.ip(), t0));
    assert_eq!(r.stats.auth_failures, 0);
    // The phone answers the last (stale) challenge like any other and is registered.
    let auth = answer(&last.unwrap(), "alice", "correct horse", Algorithm::Md5);
    let resp = r.handle_register(
        &register("alice", "c", 30, &contact, None, Some(&auth)),
        phone,
        &accounts(),
        t0,
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn used_nonces_are_forgotten_once_stale_on_the_virtual_clock() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let phone = peer("10.0.0.5", 5062);
    assert_eq!(
        login(&mut r, phone, "alice", "correct horse", &[], None, 1, t0).status,
        200
    );
    assert_eq!(
        login(&mut r, phone, "bob", "battery staple", &[], None, 1, t0).status,
        200
    );
    assert_eq!(r.nonce_uses.len(), 2);
    r.handle_timeout(t0 + Duration::from_secs(200));
    assert_eq!(r.nonce_uses.len(), 2, "still fresh");
    r.handle_timeout(t0 + Duration::from_secs(301));
    assert_eq!(r.nonce_uses.len(), 0);
}

/// A MESSAGE from `user` with an optional Authorization (text replies are proven this way).
fn message(user: &str, cseq: u32, auth: Option<&str>) -> Request {
    let mut text = format!(
        "MESSAGE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKm{cseq}\r\n\
         From: <sip:+12125550103@evil.example>;tag=f1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: m-{user}\r\nCSeq: {cseq} MESSAGE\r\nMax-Forwards: 70\r\n"
    );
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 4\r\n\r\nDONE");
    match parse_datagram(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn authenticate_proves_a_message_sender_by_account_not_by_from() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let phone = peer("10.0.0.5", 5062);
    let first = r
        .authenticate(&message("alice", 1, None), phone, &accounts(), t0)
        .unwrap_err();
    assert_eq!(first.status, 401);
    let c = challenges(&first).remove(0);
    // A REGISTER's answer does not pass for a MESSAGE (the method is in the digest).
    let register_answer = c
        .respond("alice", "correct horse", "REGISTER", "sip:127.0.0.1", "cn", 1)
        .to_header();
    let resp = r.authenticate(&message("alice", 2, Some(&register_answer)), phone, &accounts(), t0);
    assert_eq!(resp.unwrap_err().status, 401);
    let answer = c
        .respond("alice", "correct horse", "MESSAGE", "sip:127.0.0.1", "cn", 2)
        .to_header();
    assert_eq!(
        r.authenticate(&message("alice", 3, Some(&answer)), phone, &accounts(), t0),
        Ok("alice".to_string()),
        "the account is the sender, whatever From says"
    );
    // The same answer again is a replay.
    assert_eq!(
        r.authenticate(&message("alice", 4, Some(&answer)), phone, &accounts(), t0)
            .unwrap_err()
            .status,
        401
    );
    // Wrong passwords on MESSAGE count toward the account's lockout like REGISTER's.
    for cseq in 5..8 {
        let again = r
            .authenticate(&message("bob", cseq, None), phone, &accounts(), t0)
            .unwrap_err();
        let guess = challenges(&again)
            .remove(0)
            .respond("bob", "guess", "MESSAGE", "sip:127.0.0.1", "cn", 1)
            .to_header();
        let _ = r.authenticate(&message("bob", cseq, Some(&guess)), phone, &accounts(), t0);
    }
    assert_eq!(r.stats.account_lockouts, 1);
}

/// The caller's copy of the accounts, read from its source at `read_at` (issue 18 item 2).
struct Copy {
    table: HashMap<String, AccountKeys>,
    read_at: Instant,
}

impl Accounts for Copy {
    fn keys(&self, username: &str) -> Option<AccountKeys> {
        self.table.get(username).cloned()
    }
    fn read_at(&self) -> Option<Instant> {
        Some(self.read_at)
    }
}

/// Answers the last response's MD5 challenge as `user` with `password`; returns the new response.
fn answer_again(r: &mut Registrar, last: &Response, from: Peer, user: &str, password: &str, cseq: u32, accounts: &impl Accounts, now: Instant) -> Response {
    let auth = answer(last, user, password, Algorithm::Md5);
    r.handle_register(&register(user, "fresh", cseq, &[&format!("<sip:{user}@10.0.9.9>")], None, Some(&auth)), from, accounts, now)
}

fn is_stale(resp: &Response) -> bool {
    resp.status == 401 && challenges(resp).iter().all(|c| c.stale)
}

/// A phone that registers just after its account was created, before the copy has it: its immediate
/// retries are not failures, the registrar asks for a reload, and once the copy has the account it registers.
#[test]
fn a_phone_registering_before_its_account_is_read_is_not_locked_out() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.9.9", 5060);
    let mut copy = Copy { table: accounts(), read_at: t0 };
    let t = t0 + Duration::from_millis(10);
    // The account is created now, in another process; the copy does not have it yet.
    let mut last = r.handle_register(&register("carol", "fresh", 1, &[], None, None), from, &copy, t);
    assert_eq!(last.status, 401);
    assert!(!r.poll_accounts_reload(), "no answer yet, nothing to re-read");
    // Five immediate retries within a millisecond, each answering the newest nonce.
    for i in 0..5u32 {
        last = answer_again(&mut r, &last, from, "carol", "carol's password", 2 + i, &copy, t + Duration::from_micros(200 * i as u64));
        assert!(is_stale(&last), "retry {i}: {} (not a stale=true 401)", last.status);
    }
    assert!(r.poll_accounts_reload(), "the registrar asked for a fresh read of the accounts");
    assert!(!r.poll_accounts_reload(), "asked once");
    assert_eq!((r.stats.auth_failures, r.stats.account_lockouts, r.stats.source_lockouts), (0, 0, 0));
    // The fresh read (begun after the answers) has the account: the next answer registers.
    copy.table.insert("carol".into(), AccountKeys::from_password("carol", REALM, "carol's password"));
    copy.read_at = t + Duration::from_millis(2);
    let ok = answer_again(&mut r, &last, from, "carol", "carol's password", 10, &copy, t + Duration::from_millis(3));
    assert_eq!(ok.status, 200);
    assert_eq!(r.bindings("carol", t + Duration::from_millis(3)).len(), 1);
}

/// The grace ends with the first fresh read: a wrong password, or a username that really does not exist,
/// then counts as before (svcrack gains one guess), known and unknown usernames alike.
#[test]
fn after_a_fresh_read_failed_answers_count_and_lock_out_as_before() {
    for user in ["alice", "nobody"] {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let from = peer("10.0.8.8", 5060);
        let mut copy = Copy { table: accounts(), read_at: t0 };
        let t = t0 + Duration::from_millis(10);
        let mut last = r.handle_register(&register(user, "fresh", 1, &[], None, None), from, &copy, t);
        last = answer_again(&mut r, &last, from, user, "guess-0", 2, &copy, t);
        assert!(is_stale(&last), "{user}: the first failure waits for a fresh read");
        assert!(r.poll_accounts_reload());
        copy.read_at = t + Duration::from_millis(1);
        let mut statuses = Vec::new();
        for i in 1..=3u32 {
            last = answer_again(&mut r, &last, from, user, &format!("guess-{i}"), 2 + i, &copy, t + Duration::from_millis(2));
            statuses.push((last.status, is_stale(&last)));
        }
        assert_eq!(statuses, vec![(401, false), (401, false), (403, false)], "{user}");
        assert_eq!(r.stats.account_lockouts, 1, "{user}");
        assert!(!r.poll_accounts_reload(), "{user}: judged failures ask for no reload");
        // No second grace for that username within the window.
        let t2 = t + Duration::from_secs(30);
        let other = peer("10.0.8.9", 5060);
        let first = r.handle_register(&register(user, "again", 1, &[], None, None), other, &copy, t2);
        assert_eq!(answer_again(&mut r, &first, other, user, "guess-9", 2, &copy, t2).status, 403, "{user}: still locked out");
    }
}

/// A grace lasts a bounded number of answers, and one source gets it for a few usernames only.
#[test]
fn the_grace_is_bounded_per_username_and_per_source() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.7.7", 5060);
    let copy = Copy { table: accounts(), read_at: t0 };
    let mut last = r.handle_register(&register("dave", "fresh", 1, &[], None, None), from, &copy, t0);
    let mut stale = 0;
    for i in 0..GRACE_ANSWERS + 2 {
        last = answer_again(&mut r, &last, from, "dave", &format!("guess-{i}"), 2 + i, &copy, t0);
        if is_stale(&last) {
            stale += 1;
        }
    }
    assert_eq!(stale, GRACE_ANSWERS, "no read ever came: the grace ran out");
    assert_eq!(r.stats.auth_failures, 2);

    let t0 = Instant::now();
    let mut r = registrar(t0);
    let copy = Copy { table: accounts(), read_at: t0 };
    let graced: Vec<bool> = ["u1", "u2", "u3", "u4"]
        .into_iter()
        .map(|user| {
            let first = r.handle_register(&register(user, "spray", 1, &[], None, None), from, &copy, t0);
            is_stale(&answer_again(&mut r, &first, from, user, "Summer2024", 2, &copy, t0))
        })
        .collect();
    assert_eq!(graced, vec![true, true, true, false], "a password spray gets the grace for three usernames");
}

/// The same bad answer sent again and again (a phone re-sending its REGISTER) is one failure.
#[test]
fn a_burst_of_the_same_bad_answer_counts_once() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let from = peer("10.0.6.6", 5060);
    let first = r.handle_register(&register("alice", "burst", 1, &[], None, None), from, &accounts(), t0);
    let auth = answer(&first, "alice", "an old password", Algorithm::Md5);
    let statuses: Vec<u16> = (0..5u32)
        .map(|i| r.handle_register(&register("alice", "burst", 2 + i, &[], None, Some(&auth)), from, &accounts(), t0 + Duration::from_micros(200 * i as u64)).status)
        .collect();
    assert_eq!(statuses, vec![401; 5], "not locked out (limit 3)");
    assert_eq!((r.stats.auth_failures, r.stats.repeated_bad_answers, r.stats.account_lockouts), (1, 4, 0));
    // The right password still works.
    assert_eq!(login(&mut r, from, "alice", "correct horse", &["<sip:alice@10.0.6.6>"], None, 10, t0).status, 200);
}
