//! Paging with real phones (issue 6): a caller (baresip) chooses "page on-call", leaves a message and hangs up;
//! OnCall phones the people of the escalation policy, which are headless baresips answering by themselves
//! (`answermode=auto`), driven over `ctrl_tcp` with `sndcode`.
//!
//! - `employee_hears_the_message_accepts_and_completes`: 2 plays the caller's message (checked against the
//!   caller's speech in baresip's dump of what it heard), 1 accepts (request acknowledged by that person), 9
//!   completes it.
//! - `decline_escalates_to_the_next_person`: the first person presses 3, the second is called and accepts.
//! - `nobody_answering_exhausts_the_request`: the only person's phone never answers; when the step's wait
//!   (30 s, the shortest a policy allows) is over the ring is cancelled and the request is exhausted.
//!
//! - `a_holding_caller_is_bridged_to_the_employee`: the caller holds after the message; Erin presses 1 and
//!   the two talk (each hears the other's speech), the conversation is recorded in stereo, Erin hangs up and
//!   the caller is told and released.
//! - `a_holding_caller_hears_that_nobody_is_available`: with nobody answering, the holding caller hears
//!   "no one is available" when the escalation is exhausted, and is released.
//!
//! - `a_killed_server_carries_the_escalation_on_after_restart`: `kill -9` while the first person's phone rings;
//!   the restarted server takes its escalation back (lease), moves to the next person when the step's wait is
//!   over, and that person hears the caller's message.
//!
//! - `seven_snoozes_and_five_escalates`: Erin presses 7 and is phoned again after the (shortened) snooze, then
//!   presses 5 and Frank, the next step, is phoned at once and accepts.
//!
//! People and policies are added with `oncall person add` / `oncall policy add` against the running server's
//! database: the paging task reads them when a request opens.

mod support;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// The snooze of key 7, shortened.
const SNOOZE_SECS: u64 = 8;

/// `max_hold_secs` 0: the caller is released after the message (the employee hears it instead of a bridge).
fn paging_server(name: &str, max_hold_secs: u64) -> Server {
    Server::start(
        name,
        ServerOptions {
            extra_config: format!("[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = {max_hold_secs}\nsnooze_secs = {SNOOZE_SECS}\n"),
            ..ServerOptions::default()
        },
    )
}

/// 60 s of silence: an employee's microphone (baresip hangs up when its source ends).
fn silence_wav(dir: &Path) -> PathBuf {
    let path = dir.join("silence.wav");
    if !path.exists() {
        tool(dir, "sox", &["-n", "-r", "8000", "-c", "1", "-b", "16", &path.display().to_string(), "trim", "0", "60"]);
    }
    path
}

/// Adds a person reachable at `uri`; returns their id.
fn add_person(server: &Server, name: &str, email: &str, uri: &str) -> i64 {
    let out = server.oncall(&["person", "add", "--name", name, "--email", email, "--sip-uri", uri]);
    out.trim().parse().unwrap_or_else(|_| panic!("`oncall person add` printed {out:?}, not an id"))
}

#[test]
fn a_holding_caller_is_bridged_to_the_employee() {
    bridge_both_ways("paging-bridge", None);
}

/// Issue 18 item 3: the whole server stops for 600 ms in the middle of the bridge (SIGSTOP, as a busy
/// machine does to a process), while both phones keep sending. Afterwards both directions carry speech
/// again. Before, the audio that waited in each leg's socket overflowed its jitter buffer and the bridge
/// stayed silent both ways to the end.
#[test]
fn a_bridge_carries_audio_both_ways_after_the_server_stalls() {
    bridge_both_ways("paging-bridge-stall", Some(Duration::from_millis(600)));
}

/// A caller holds, Erin presses 1, the two talk; with `stall`, the server is stopped that long half a
/// second into the bridge, before either has spoken. Checks each heard the other after that point.
fn bridge_both_ways(name: &str, stall: Option<Duration>) {
    let server = paging_server(name, 120);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    // Erin speaks a while after answering: after the announcement and her key press.
    let erin_speech = speech_wav(&work, "erin-speech", "Hello, this is Erin from maintenance. I am on my way to you now.");
    let erin_mic = work.join("erin-microphone.wav");
    compose_wav(&erin_mic, 100.0, &[(announcement_secs() + 2.5, &erin_speech)]);
    let mut erin = Baresip::start_callee(&work.join("erin"), &erin_mic, Duration::from_secs(120), "erin");
    let erin_id = add_person(&server, "Erin", "erin@example.test", &erin.uri("erin"));
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);

    let message = speech_wav(&work, "message", "Water is coming through the ceiling of apartment twelve.");
    let reply = speech_wav(&work, "reply", "Thank you. Please hurry, the water is rising.");
    let (mut caller, caller_at) = call_and_hold(&server, &work, &message, &reply);
    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not phone Erin within 15 s of the message; requests: {:#?}", server.requests());
    };
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    erin.command("sndcode", "1");
    let mut bridged = Instant::now();
    if let Some(stall) = stall {
        sleep_until(bridged + Duration::from_millis(500));
        let pid = server.pid().to_string();
        tool(&work, "kill", &["-STOP", &pid]);
        thread::sleep(stall);
        tool(&work, "kill", &["-CONT", &pid]);
        eprintln!("[e2e] server stopped for {} ms, half a second into the bridge", stall.as_millis());
        // What each side hears is looked for from here on.
        bridged = Instant::now();
    }
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => {
            eprintln!("[e2e] request after 1: {row}");
            checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by")));
            checks.check(!row["answered_at"].is_null(), || "the request has no answered time".into());
        }
        Err(rows) => checks.fail(format!("the request was not acknowledged 10 s after Erin pressed 1: {rows:#?}")),
    }
    // Talk for 10 s (Erin's sentence starts 2 s after her key press, the caller's every 5 s), then Erin hangs up.
    sleep_until(bridged + Duration::from_secs(10));
    erin.command("hangup", "");
    let closing = prompt_secs("staff_left") + prompt_secs("goodbye");
    let released = caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(closing + 4.0));
    checks.check(released.is_some(), || "the caller was not released after Erin hung up".into());
    caller.quit();
    erin.quit();

    // Each side heard the other during the bridge; the conversation is in stereo, the caller left, Erin right.
    check_heard(&mut checks, "Erin", erin.heard_wav(), (bridged - erin_at).as_secs_f64(), &reply);
    check_heard(&mut checks, "the caller", caller.heard_wav(), (bridged - caller_at).as_secs_f64(), &erin_speech);
    check_conversation(&server, &mut checks, &reply, "Erin", &erin_speech);
    checks.finish();
}

#[test]
fn a_holding_caller_hears_that_nobody_is_available() {
    let server = paging_server("paging-nobody", 120);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let nowhere = format!("sip:ghost@{LOOPBACK}:{}", free_port());
    add_person(&server, "Ghost", "ghost@example.test", &nowhere);
    server.oncall(&["policy", "add", "--name", "Short", "--person", "ghost@example.test", "--wait-secs", "30"]);
    let message = speech_wav(&work, "message", "Hello, is anyone there?");
    let reply = speech_wav(&work, "reply", "Hello?");
    let (mut caller, _) = call_and_hold(&server, &work, &message, &reply);
    let held = Instant::now();
    // The step's 30 s wait runs out; the caller hears "no one is available" and goodbye.
    let closing = prompt_secs("everyone_unavailable") + prompt_secs("goodbye");
    match caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(30.0 + closing + 8.0)) {
        Some((at, _)) => {
            let secs = (at - held).as_secs_f64();
            eprintln!("[e2e] the holding caller was released {secs:.1} s after the message");
            checks.check(secs > 30.0, || format!("released after {secs:.1} s, before the step's 30 s wait was over"));
        }
        None => checks.fail("the holding caller was never released"),
    }
    match server.wait_for_request(Duration::from_secs(5), |r| field(r, "status") == "exhausted") {
        Ok(_) => {}
        Err(rows) => checks.fail(format!("the request is not exhausted: {rows:#?}")),
    }
    checks.check(server.log().contains("caller holding"), || "no \"caller holding\" in the log".into());
    caller.quit();
    checks.finish();
}

#[test]
fn a_killed_server_carries_the_escalation_on_after_restart() {
    let mut server = paging_server("paging-restart", 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let nowhere = format!("sip:ghost@{LOOPBACK}:{}", free_port());
    add_person(&server, "Ghost", "ghost@example.test", &nowhere);
    let mut erin = Baresip::start_callee(&work.join("erin"), &silence_wav(&work), Duration::from_secs(150), "erin");
    let erin_id = add_person(&server, "Erin", "erin@example.test", &erin.uri("erin"));
    server.oncall(&["policy", "add", "--name", "Chain", "--person", "ghost@example.test", "--person", "erin@example.test", "--wait-secs", "30"]);
    let speech = leave_page_message(&server, &work, "The front door lock is broken and the building is open.");
    if let Err(rows) = server.wait_for_request(Duration::from_secs(5), |r| field(r, "status") == "notifying") {
        panic!("the request is not being escalated: {rows:#?}");
    }
    let left = Instant::now();
    thread::sleep(Duration::from_secs(2));
    server.kill_and_restart();
    eprintln!("[e2e] server killed and restarted {:.1} s after the message", left.elapsed().as_secs_f64());
    // Ghost's step (30 s from the message) runs out on the restarted server, which then phones Erin.
    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(45)) else {
        panic!("the restarted server did not phone Erin; requests: {:#?}\nlog:\n{}", server.requests(), server.log_tail(40));
    };
    eprintln!("[e2e] Erin phoned {:.1} s after the message", (erin_at - left).as_secs_f64());
    // `left` is a few seconds after the request opened (the caller heard the closing prompts first).
    checks.check((erin_at - left).as_secs_f64() > 20.0, || "Erin was phoned before Ghost's step was over".into());
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.3));
    erin.command("sndcode", "1");
    let key_1 = Instant::now();
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => {
            eprintln!("[e2e] request: {row}");
            checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by")));
        }
        Err(rows) => checks.fail(format!("the request was not acknowledged after Erin pressed 1: {rows:#?}")),
    }
    // "accepted", then the caller's message, read back from the recording by the restarted server.
    thread::sleep(Duration::from_secs_f64(prompt_secs("accepted") + read_wav(&speech).secs() + 1.5));
    erin.command("hangup", "");
    erin.quit();
    match erin.heard_wav() {
        None => checks.fail("Erin's baresip wrote no dump of what it heard"),
        Some(path) => {
            let (at, corr, _) = find_speech(&read_wav(&path).samples, (key_1 - erin_at).as_secs_f64(), 8.0, &speech);
            eprintln!("[e2e] after 1 Erin heard the caller's message {at:.2} s in, correlation {corr:.3}");
            checks.check(corr > 0.6, || format!("Erin did not hear the caller's message after the restart (correlation {corr:.2})"));
        }
    }
    checks.check(server.log().contains("escalation taken over"), || "no \"escalation taken over\" in the restarted server's log".into());
    checks.finish();
}

#[test]
fn seven_snoozes_and_five_escalates() {
    let server = paging_server("paging-keys", 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let silence = silence_wav(&work);
    let mut erin = Baresip::start_callee(&work.join("erin"), &silence, Duration::from_secs(120), "erin");
    let mut frank = Baresip::start_callee(&work.join("frank"), &silence, Duration::from_secs(120), "frank");
    let erin_id = add_person(&server, "Erin", "erin@example.test", &erin.uri("erin"));
    let frank_id = add_person(&server, "Frank", "frank@example.test", &frank.uri("frank"));
    server.oncall(&["policy", "add", "--name", "Chain", "--person", "erin@example.test", "--person", "frank@example.test", "--wait-secs", "60"]);
    leave_page_message(&server, &work, "The heating is off on the third floor.");
    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not phone Erin; requests: {:#?}", server.requests());
    };
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.3));
    erin.command("sndcode", "7");
    let snoozed = Instant::now();
    let closed = erin.wait_event("CALL_CLOSED", Duration::from_secs_f64(prompt_secs("snoozed") + 4.0));
    checks.check(closed.is_some(), || "OnCall did not hang up on Erin after \"snoozed\"".into());
    match erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(SNOOZE_SECS + 10)) {
        Some((again_at, _)) => {
            let after = (again_at - snoozed).as_secs_f64();
            eprintln!("[e2e] Erin phoned again {after:.1} s after pressing 7 (snooze {SNOOZE_SECS} s)");
            checks.check(after >= SNOOZE_SECS as f64 - 0.5, || format!("Erin was phoned again after {after:.1} s, before the snooze was over"));
            sleep_until(again_at + Duration::from_secs_f64(announcement_secs() + 0.3));
            erin.command("sndcode", "5");
            let escalated = Instant::now();
            match frank.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) {
                Some((frank_at, _)) => {
                    eprintln!("[e2e] Frank phoned {:.1} s after Erin pressed 5", (frank_at - escalated).as_secs_f64());
                    sleep_until(frank_at + Duration::from_secs_f64(announcement_secs() + 0.3));
                    frank.command("sndcode", "1");
                    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
                        Ok(row) => {
                            let statuses: Vec<(i64, String)> = row["notifications"]
                                .as_array()
                                .map(|a| a.iter().map(|n| (n["person"].as_i64().unwrap_or(0), field(n, "status").to_string())).collect())
                                .unwrap_or_default();
                            eprintln!("[e2e] notifications {statuses:?}");
                            let expected = vec![(erin_id, "snoozed".to_string()), (erin_id, "escalated".to_string()), (frank_id, "accepted".to_string())];
                            checks.check(statuses == expected, || format!("notifications {statuses:?}, expected {expected:?}"));
                        }
                        Err(rows) => checks.fail(format!("the request was not acknowledged after Frank pressed 1: {rows:#?}")),
                    }
                    frank.command("hangup", "");
                }
                None => checks.fail("Frank was not phoned within 10 s of Erin pressing 5"),
            }
        }
        None => checks.fail(format!("Erin was not phoned again within {} s of snoozing", SNOOZE_SECS + 10)),
    }
    erin.quit();
    frank.quit();
    checks.finish();
}

#[test]
fn employee_hears_the_message_accepts_and_completes() {
    let server = paging_server("paging-accept", 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let mut erin = Baresip::start_callee(&work.join("erin"), &silence_wav(&work), Duration::from_secs(90), "erin");
    let erin_id = add_person(&server, "Erin", "erin@example.test", &erin.uri("erin"));
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "60"]);

    let speech = leave_page_message(&server, &work, "The boiler in building B has stopped. There is no hot water.");
    let Some((established, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not phone Erin within 15 s of the message; requests: {:#?}", server.requests());
    };
    eprintln!("[e2e] Erin's phone answered OnCall's call");
    // 2 after the announcement: the caller's message plays; then 1 accepts, 9 completes.
    sleep_until(established + Duration::from_secs_f64(announcement_secs() + 0.5));
    erin.command("sndcode", "2");
    let key_2 = Instant::now();
    let message_secs = read_wav(&speech).secs() + LEAD_IN + TAIL;
    sleep_until(key_2 + Duration::from_secs_f64(message_secs + 0.5));
    erin.command("sndcode", "1");
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => {
            eprintln!("[e2e] request after 1: {row}");
            checks.check(field(&row, "acknowledged_by") == format!("person:{erin_id}"), || {
                format!("acknowledged_by {:?}, expected person:{erin_id}", field(&row, "acknowledged_by"))
            });
        }
        Err(rows) => checks.fail(format!("the request was not acknowledged 10 s after Erin pressed 1: {rows:#?}")),
    }
    // "accepted", the message again and "press 9 when done"; 9 barges in.
    thread::sleep(Duration::from_secs_f64(prompt_secs("accepted") + 1.0));
    erin.command("sndcode", "9");
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "completed") {
        Ok(row) => eprintln!("[e2e] request after 9: {row}"),
        Err(rows) => checks.fail(format!("the request was not completed 10 s after Erin pressed 9: {rows:#?}")),
    }
    let closed = erin.wait_event("CALL_CLOSED", Duration::from_secs_f64(prompt_secs("goodbye") + 4.0));
    checks.check(closed.is_some(), || "OnCall did not hang up on Erin after goodbye".into());
    erin.quit();

    // What Erin heard after pressing 2 holds the caller's speech.
    match erin.heard_wav() {
        None => checks.fail("Erin's baresip wrote no dump of what it heard"),
        Some(path) => {
            let heard = read_wav(&path);
            let from = ((key_2 - established).as_secs_f64() * 8000.0) as usize;
            let window = &heard.samples[from.min(heard.samples.len())..(from + 6 * 8000).min(heard.samples.len())];
            let voice = read_wav(&speech);
            let start = first_sound(&voice.samples, 300).unwrap_or(0);
            let needle = &voice.samples[start..(start + 4000).min(voice.samples.len())];
            let max_lag = window.len().saturating_sub(needle.len());
            let (lag, corr) = best_match(window, needle, max_lag);
            let level = rms_dbfs(window);
            eprintln!("[e2e] after 2 Erin heard {level:.1} dBFS; the caller's speech found {:.2} s in, correlation {corr:.3}", lag as f64 / 8000.0);
            checks.check(level > -40.0, || format!("Erin heard silence after pressing 2 ({level:.1} dBFS)"));
            checks.check(corr > 0.6, || format!("what Erin heard after 2 is not the caller's message (best correlation {corr:.2})"));
        }
    }
    checks.finish();
}

#[test]
fn decline_escalates_to_the_next_person() {
    let server = paging_server("paging-decline", 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let silence = silence_wav(&work);
    let mut erin = Baresip::start_callee(&work.join("erin"), &silence, Duration::from_secs(90), "erin");
    let mut frank = Baresip::start_callee(&work.join("frank"), &silence, Duration::from_secs(90), "frank");
    let erin_id = add_person(&server, "Erin", "erin@example.test", &erin.uri("erin"));
    let frank_id = add_person(&server, "Frank", "frank@example.test", &frank.uri("frank"));
    server.oncall(&["policy", "add", "--name", "Chain", "--person", "erin@example.test", "--person", "frank@example.test", "--wait-secs", "60"]);

    leave_page_message(&server, &work, "The lift is stuck between floors two and three.");
    let Some((erin_at, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(15)) else {
        panic!("OnCall did not phone Erin; requests: {:#?}", server.requests());
    };
    sleep_until(erin_at + Duration::from_secs_f64(announcement_secs() + 0.3));
    erin.command("sndcode", "3");
    let declined = Instant::now();
    let erin_closed = erin.wait_event("CALL_CLOSED", Duration::from_secs_f64(prompt_secs("declined") + 4.0));
    checks.check(erin_closed.is_some(), || "OnCall did not hang up on Erin after she declined".into());
    match frank.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) {
        Some((frank_at, _)) => {
            eprintln!("[e2e] Frank called {:.2} s after Erin declined", (frank_at - declined).as_secs_f64());
            sleep_until(frank_at + Duration::from_secs_f64(announcement_secs() + 0.3));
            frank.command("sndcode", "1");
            match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
                Ok(row) => {
                    eprintln!("[e2e] request: {row}");
                    checks.check(field(&row, "acknowledged_by") == format!("person:{frank_id}"), || {
                        format!("acknowledged_by {:?}, expected Frank (person:{frank_id})", field(&row, "acknowledged_by"))
                    });
                    let statuses: Vec<(i64, String)> = row["notifications"]
                        .as_array()
                        .map(|a| a.iter().map(|n| (n["person"].as_i64().unwrap_or(0), field(n, "status").to_string())).collect())
                        .unwrap_or_default();
                    checks.check(statuses == vec![(erin_id, "declined".into()), (frank_id, "accepted".into())], || {
                        format!("notifications {statuses:?}, expected Erin declined then Frank accepted")
                    });
                }
                Err(rows) => checks.fail(format!("the request was not acknowledged after Frank pressed 1: {rows:#?}")),
            }
            frank.command("hangup", "");
        }
        None => checks.fail(format!("Frank was not phoned within 10 s of Erin's decline; requests: {:#?}", server.requests())),
    }
    erin.quit();
    frank.quit();
    checks.finish();
}

#[test]
fn nobody_answering_exhausts_the_request() {
    let server = paging_server("paging-exhausted", 0);
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    // Nothing listens there: the INVITE is never answered.
    let nowhere = format!("sip:ghost@{LOOPBACK}:{}", free_port());
    add_person(&server, "Ghost", "ghost@example.test", &nowhere);
    server.oncall(&["policy", "add", "--name", "Short", "--person", "ghost@example.test", "--wait-secs", "30"]);
    leave_page_message(&server, &work, "Hello, is anyone there?");
    let left = Instant::now();
    // 30 s is the shortest step wait a policy may have.
    match server.wait_for_request(Duration::from_secs(45), |r| field(r, "status") == "exhausted") {
        Ok(row) => {
            eprintln!("[e2e] exhausted {:.1} s after the message: {row}", left.elapsed().as_secs_f64());
            let statuses: Vec<String> = row["notifications"].as_array().map(|a| a.iter().map(|n| field(n, "status").to_string()).collect()).unwrap_or_default();
            checks.check(statuses.len() == 1, || format!("notifications {statuses:?}, expected one call to Ghost"));
        }
        Err(rows) => checks.fail(format!("the request was not exhausted within 45 s: {rows:#?}")),
    }
    let log = server.log();
    checks.check(log.contains("escalation exhausted"), || "no \"escalation exhausted\" in the log".into());
    checks.check(log.contains("ending page call"), || "the unanswered call to Ghost was not cancelled".into());
    checks.finish();
}
