//! The demo pages out of the box (issue 18 item 13): `serve --demo` turns the registrar on and gives every demo
//! employee a SIP account, so a softphone registered as whoever is on call receives the page with no trunk and no
//! texts. Before, every demo person had only a `+1 212` number and nothing was reached.
//!
//! Three baresips register as maria, james and aisha (the README's account line, `answermode=auto`); a caller
//! presses 1 and leaves a message; the on-call one's phone gets the page call and the request is acknowledged
//! when they press 1.

mod support;

use std::thread;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn a_registered_softphone_receives_the_demo_page() {
    let server = Server::start("demo-pages", ServerOptions { demo: true, extra_config: "[paging]\nenabled = true\n".into(), ..ServerOptions::default() });
    let work = server.dir.subdir("peers");
    let mic = silence_wav_secs(&work, 90);
    let sip = server.sip_udp;
    let mut phones: Vec<(&str, Baresip)> = ["maria", "james", "aisha"]
        .into_iter()
        .map(|user| {
            // The README's line (`;transport=udp`: baresip 1.0 otherwise looks the host up by NAPTR/SRV).
            let line = move |_port: u16| format!("<sip:{user}@{sip};transport=udp>;auth_pass=oncall-phone-2026;regint=60;answermode=auto\n");
            (user, Baresip::start_with_account(&work.join(user), &mic, Duration::from_secs(90), line))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log().matches("device registered username=").count() < 3 {
        assert!(Instant::now() < deadline, "the demo phones did not register:\n{}", server.log_tail(40));
        thread::sleep(Duration::from_millis(100));
    }

    leave_page_message_to(&server, &work, "The boiler in the basement is leaking.", "100");
    // Whoever is on call this week: their phone answers the page call by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let paged = 'found: loop {
        for (user, phone) in phones.iter_mut() {
            if phone.wait_event("CALL_ESTABLISHED", Duration::from_millis(200)).is_some() {
                break 'found *user;
            }
        }
        assert!(Instant::now() < deadline, "no demo phone got the page:\n{}", server.log_tail(60));
    };
    eprintln!("[e2e] demo: {paged}'s softphone got the page");
    let log = server.log();
    assert!(log.contains("paging a registered phone"), "{}", server.log_tail(40));
    for (user, phone) in phones.iter_mut() {
        if *user == paged {
            // Accept the page once the announcement played: the request becomes acknowledged.
            let announcement = prompt_secs("new_request") + prompt_secs("from") + prompt_secs("press_1_talk");
            thread::sleep(Duration::from_secs_f64(announcement + 0.5));
            phone.command("sndcode", "1");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The demo's history holds older requests: the caller's is the newest.
        let rows = server.requests();
        let newest = rows.iter().max_by_key(|r| r["id"].as_i64().unwrap_or(0)).cloned();
        if let Some(r) = newest.as_ref().filter(|r| field(r, "status") == "acknowledged") {
            // Issue 18 item 4: the attempt names the registered phone it went to.
            let attempt = r["notifications"].as_array().and_then(|a| a.first().cloned()).unwrap_or_default();
            assert!(field(&attempt, "target").contains(&format!("sip:{paged}")) && field(&attempt, "target").contains("(registered phone at"), "{attempt}");
            break;
        }
        assert!(Instant::now() < deadline, "the request was not acknowledged after {paged} pressed 1: {newest:#?}\n{}", server.log_tail(40));
        thread::sleep(Duration::from_millis(250));
    }
}
