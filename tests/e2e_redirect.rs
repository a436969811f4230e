//! The SIP redirect target (issue 7 item 4) with real peers on loopback.
//!
//! `a_caller_is_redirected_to_the_registered_phone_of_whoever_is_on_call`: Erin is on call in "Night" (Frank is
//! her backup) and her baresip is registered with OnCall (it rings, it does not answer).
//! - A caller's baresip dials `oncall-night@` OnCall: OnCall answers `302 Moved Temporarily`, baresip (1.0, as
//!   Debian ships it) follows the first Contact and Erin's phone rings; the caller hangs up and the ring ends.
//! - A PBX (SIPp, from the PBX trunk's allowed source) sends the same INVITE: the 302's Contacts are, in order,
//!   Erin's registered phone (q=1.0), Erin's number at the trunk's host (q=0.9), Frank's number (q=0.8); its ACK
//!   is absorbed (the 302 is sent once).
//! - From 127.0.0.2 (not an allowed source) the INVITE gets 403 with no Contact; `oncall-payroll` gets 404.
//! - No redirect shows in the call log. `oncall-night-bridge` is answered by the IVR and logged as a call; the
//!   caller pages on-call (1, then # right after the beep) and the request is paged with "Night desk", the
//!   policy that pages Night (added on the web admin, as a manager would), not with "Front desk", the first
//!   enabled policy (Frank only): Erin's registered phone rings.
//! - `oncall_redirects_total` counts all of them on `/metrics`.

mod support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const PASSWORD: &str = "night-desk-4";
const MANAGER_PASSWORD: &str = "manager-desk-7";

fn server() -> Server {
    // A PBX-mode trunk: calls (and redirect questions) only from 127.0.0.1; numbers go to its host.
    // baresip 1.0 abandons a 401 that offers any algorithm besides MD5. Paging on: the bridge call pages.
    Server::start(
        "redirect",
        ServerOptions {
            extra_config: "[registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\n\n\
                 [paging]\nenabled = true\n\n\
                 [[trunks]]\nname = \"pbx\"\nregister = false\nregistrar = \"192.0.2.10\"\nallowed_sources = [\"127.0.0.1\"]\n"
                .into(),
            ..ServerOptions::default()
        },
    )
}

/// The value of one sample line of `/metrics`, 0 when absent.
fn metric(server: &Server, name: &str) -> f64 {
    let (_, body) = http_get(server.http, "/metrics").expect("GET /metrics");
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// POSTs a form (already URL-encoded) with `cookie`.
fn post_form(addr: SocketAddr, path: &str, cookie: &str, body: &str) -> Option<(u16, String, String)> {
    http_exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Adds policy `name`, one step paging whoever is on call in schedule `schedule_id`, on the web admin as manager
/// `email` (log in, take the form's CSRF token, post the form).
fn add_schedule_policy_on_the_web(server: &Server, email: &str, password: &str, name: &str, schedule_id: &str) {
    let addr = server.http;
    let get = |path: &str, cookie: &str| {
        http_exchange(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap_or_else(|| panic!("GET {path}"))
    };
    let (_, head, _) = get("/login", "x=y");
    let csrf = set_cookie(&head, "oncall_login_csrf").unwrap_or_else(|| panic!("no CSRF cookie from /login:\n{head}"));
    let body = format!(
        "email={}&password={password}&csrf={csrf}&next=%2Fpolicies",
        email.replace('@', "%40")
    );
    let (status, head, _) =
        post_form(addr, "/login", &format!("oncall_login_csrf={csrf}"), &body).expect("POST /login");
    assert_eq!(status, 303, "login answered {status}:\n{head}");
    let session = set_cookie(&head, "oncall_session").unwrap_or_else(|| panic!("no session cookie:\n{head}"));
    let cookie = format!("oncall_session={session}");
    let (status, _, page) = get("/policies/new", &cookie);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("GET /policies/new ({status}) has no CSRF field:\n{page}"));
    let body = format!(
        "csrf={csrf}&name={}&repeat=0&steps%5B0%5D.target=schedule%3A{schedule_id}&steps%5B0%5D.wait=1",
        name.replace(' ', "+")
    );
    let (status, head, page) = post_form(addr, "/policies/new", &cookie, &body).expect("POST /policies/new");
    assert!(
        status == 303 && head.contains("flash=created"),
        "the policy was not created ({status}):\n{head}\n{page}"
    );
}

/// The first received final response of a SIPp run (status line and raw message).
fn final_response(run: &SippRun) -> Option<String> {
    run.messages
        .split("message received")
        .skip(1)
        .map(|chunk| {
            chunk
                .lines()
                .skip_while(|l| !l.starts_with("SIP/2.0"))
                .take_while(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\r\n")
        })
        .find(|m| m.starts_with("SIP/2.0") && !m.starts_with("SIP/2.0 1"))
}

#[test]
fn a_caller_is_redirected_to_the_registered_phone_of_whoever_is_on_call() {
    let started = Instant::now();
    let server = server();
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    server.oncall(&[
        "person",
        "add",
        "--name",
        "Erin",
        "--email",
        "erin@example.test",
        "--phone",
        "+441632960001",
    ]);
    server.oncall(&[
        "person",
        "add",
        "--name",
        "Frank",
        "--email",
        "frank@example.test",
        "--phone",
        "+441632960002",
    ]);
    let out = server.oncall(&[
        "person",
        "sip-account",
        "erin@example.test",
        "--username",
        "erin",
        "--password",
        PASSWORD,
    ]);
    assert!(out.contains("SIP account erin set"), "{out}");
    let night = server.oncall(&[
        "schedule",
        "add",
        "--name",
        "Night",
        "--person",
        "erin@example.test",
        "--backup",
        "frank@example.test",
    ]);
    // The first enabled policy pages Frank only; "Night desk" pages whoever is on call in Night (Erin).
    server.oncall(&[
        "policy",
        "add",
        "--name",
        "Front desk",
        "--person",
        "frank@example.test",
    ]);
    server.oncall(&[
        "user",
        "add",
        "--name",
        "Dana",
        "--email",
        "dana@example.test",
        "--role",
        "manager",
        "--password",
        MANAGER_PASSWORD,
    ]);
    add_schedule_policy_on_the_web(
        &server,
        "dana@example.test",
        MANAGER_PASSWORD,
        "Night desk",
        night.trim(),
    );
    // The registrar's accounts and the redirect's schedules are re-read every 3 s.
    thread::sleep(Duration::from_millis(3500));

    // Erin's phone registers and only rings (no auto-answer). `;transport=udp`: baresip 1.0 would look the host up.
    let mic = silence_wav_secs(&work, 60);
    let sip = server.sip_udp;
    let mut erin = Baresip::start_with_account(&work.join("erin"), &mic, Duration::from_secs(60), move |_| {
        format!("<sip:erin@{sip};transport=udp>;auth_pass={PASSWORD};regint=60\n")
    });
    // Polled on the server (baresip may register before its control socket is connected, so REGISTER_OK can be missed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("device registered username=erin") {
        if Instant::now() >= deadline {
            panic!(
                "Erin's phone did not register:\n{}\n{}",
                tail(&erin.log(), 30),
                server.log_tail(30)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }

    // A caller (baresip, as a PBX would) dials `oncall-night@`: OnCall answers 302, baresip follows the first
    // Contact, and Erin's registered phone rings.
    let mut caller = Baresip::start(&work.join("caller"), &mic, Duration::from_secs(20));
    caller.command("dial", &format!("sip:oncall-night@{}", server.sip_udp));
    match erin.wait_event("CALL_INCOMING", Duration::from_secs(8)) {
        Some((_, ev)) => eprintln!("[e2e] Erin's phone rings after the redirect: {}", field(&ev, "param")),
        None => checks.fail(format!(
            "Erin's phone did not ring after the redirect:\n--- caller ---\n{}\n--- erin ---\n{}\n--- server ---\n{}",
            tail(&caller.log(), 20),
            tail(&erin.log(), 20),
            server.log_tail(20)
        )),
    }
    checks.check(caller.log().contains("oncall-night"), || {
        format!("the caller did not dial oncall-night:\n{}", tail(&caller.log(), 20))
    });
    // The caller gives up: the ring ends (CANCEL from the caller to Erin's phone, not through OnCall).
    caller.command("hangup", "");
    checks.check(erin.wait_event("CALL_CLOSED", Duration::from_secs(5)).is_some(), || {
        "Erin's phone rang on after the caller hung up".into()
    });
    caller.quit();

    // A PBX (SIPp) asks the same: the 302's Contacts, in order, with falling q-values; its ACK is absorbed.
    let run = Sipp::new(&server, "uac_redirect.xml", "pbx")
        .arg("-s")
        .arg("oncall-night")
        .limit(Duration::from_secs(8))
        .run();
    checks.check(run.success(), || {
        format!("the PBX's scenario failed:\n{}", run.describe())
    });
    let answer = final_response(&run).unwrap_or_default();
    eprintln!("[e2e] answer to INVITE oncall-night:\n{answer}");
    checks.check(answer.starts_with("SIP/2.0 302 Moved Temporarily"), || {
        format!("expected a 302, got:\n{}", run.describe())
    });
    let contacts: Vec<&str> = answer.lines().filter_map(|l| l.strip_prefix("Contact: ")).collect();
    let q = |c: &str| c.rsplit_once(";q=").map(|(_, q)| q.to_string()).unwrap_or_default();
    checks.check(contacts.len() == 3, || {
        format!("expected 3 Contacts (Erin's phone, Erin's number, Frank's number), got {contacts:?}")
    });
    checks.check(
        contacts
            .first()
            .is_some_and(|c| c.starts_with("<sip:erin") && c.contains(&format!("127.0.0.1:{}", erin.sip_port))),
        || {
            format!(
                "the first Contact should be Erin's registered phone (port {}): {contacts:?}",
                erin.sip_port
            )
        },
    );
    checks.check(
        contacts
            .get(1)
            .is_some_and(|c| c.starts_with("<sip:+441632960001@192.0.2.10>")),
        || format!("the second Contact should be Erin's number at the trunk: {contacts:?}"),
    );
    checks.check(
        contacts
            .get(2)
            .is_some_and(|c| c.starts_with("<sip:+441632960002@192.0.2.10>")),
        || format!("the third Contact should be Frank's number: {contacts:?}"),
    );
    let qs: Vec<String> = contacts.iter().map(|c| q(c)).collect();
    checks.check(qs == ["1.0", "0.9", "0.8"], || {
        format!("q-values {qs:?}, expected 1.0, 0.9, 0.8")
    });
    checks.check(
        run.received_statuses().iter().filter(|s| s.starts_with("302")).count() == 1,
        || {
            format!(
                "the 302 was retransmitted (ACK not matched?): {:?}",
                run.received_statuses()
            )
        },
    );

    // Not an allowed source: 403, whatever the schedule (a scanner learns nothing, not even which schedules exist).
    let run = Sipp::new(&server, "uac_redirect.xml", "scanner")
        .arg("-s")
        .arg("oncall-night")
        .from_ip("127.0.0.2")
        .limit(Duration::from_secs(8))
        .run();
    let answer = final_response(&run).unwrap_or_default();
    checks.check(answer.starts_with("SIP/2.0 403"), || {
        format!("expected 403 for an untrusted source, got:\n{}", run.describe())
    });
    checks.check(!answer.contains("Contact:") && !answer.contains("+44"), || {
        format!("the 403 leaks contacts:\n{answer}")
    });
    // No such schedule: 404.
    let run = Sipp::new(&server, "uac_redirect.xml", "unknown")
        .arg("-s")
        .arg("oncall-payroll")
        .limit(Duration::from_secs(8))
        .run();
    let answer = final_response(&run).unwrap_or_default();
    checks.check(answer.starts_with("SIP/2.0 404"), || {
        format!("expected 404 for an unknown schedule, got:\n{}", run.describe())
    });

    // A redirect is not a call: no row in the call log.
    checks.check(server.calls().is_empty(), || {
        format!("redirects were logged as calls: {:?}", server.calls())
    });

    // `oncall-night-bridge`: OnCall answers with its IVR (an ordinary call, logged as one). The caller pages
    // on-call (1, # just after the beep): the request is paged with Night desk, so Erin's phone rings.
    let mut bridged = Baresip::start(&work.join("bridge-caller"), &mic, Duration::from_secs(30));
    bridged.command("dial", &format!("sip:oncall-night-bridge@{}", server.sip_udp));
    match bridged.wait_event("CALL_ESTABLISHED", Duration::from_secs(8)) {
        Some((established, _)) => {
            sleep_until(established + Duration::from_secs_f64(KEY_1_AT));
            bridged.command("sndcode", "1");
            thread::sleep(Duration::from_secs_f64(
                prompt_secs("record_after_tone") + prompt_secs("beep") + 1.0,
            ));
            bridged.command("sndcode", "#");
            checks.check(
                erin.wait_event("CALL_INCOMING", Duration::from_secs(10)).is_some(),
                || {
                    format!(
                        "Erin's phone was not paged for the oncall-night-bridge request:\n{}",
                        server.log_tail(30)
                    )
                },
            );
        }
        None => checks.fail(format!(
            "OnCall did not answer oncall-night-bridge:\n{}",
            server.log_tail(20)
        )),
    }
    bridged.command("hangup", "");
    bridged.quit();
    // The To the PBX sent is logged as the call's `called`: paging reads the schedule from it.
    match server.wait_for_call(Duration::from_secs(10), |r| {
        field(r, "called").contains("oncall-night-bridge")
    }) {
        Ok(row) => checks.check(field(&row, "called").starts_with("sip:oncall-night-bridge@"), || {
            format!("called is {:?}", field(&row, "called"))
        }),
        Err(rows) => checks.fail(format!("the bridge call is not in the call log: {rows:?}")),
    }
    let log = server.log();
    checks.check(
        log.lines().any(|l| {
            l.contains("bridge call: paging with the policy that pages its schedule") && l.contains("Night desk")
        }),
        || {
            format!(
                "no 'paging with the policy that pages its schedule' line for Night desk:\n{}",
                server.log_tail(30)
            )
        },
    );

    for (result, want) in [
        ("redirected", 2.0),
        ("forbidden", 1.0),
        ("not_found", 1.0),
        ("bridged", 1.0),
    ] {
        let v = metric(&server, &format!("oncall_redirects_total{{result=\"{result}\"}}"));
        checks.check(v == want, || {
            format!("oncall_redirects_total{{result=\"{result}\"}} = {v}, expected {want}")
        });
    }
    checks.check(server.log().contains("redirecting to the on-call people"), || {
        "no 'redirecting' log line".into()
    });
    erin.quit();
    eprintln!("[e2e] redirect test took {:.1} s", started.elapsed().as_secs_f64());
    checks.finish();
}
