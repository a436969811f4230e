//! A caller that never presses a key. SIPp does the signalling; its SDP names this test's own UDP listener
//! ([`RtpSink`]) as the media address, so the test sees exactly what OnCall sends and when: the greeting first,
//! one 20 ms packet every 20 ms, then the menu, `no_input` and the menu again after each timeout, and after
//! `max_retries` timeouts `no_input` + `goodbye` and a BYE, at the time those prompts add up to.

mod support;

use std::time::Duration;
use support::*;

const TIMEOUT_SECS: u64 = 1;
const MAX_RETRIES: u32 = 1;

fn prompt(name: &str) -> Wav {
    read_wav(&sounds_dir().join(format!("{name}.wav")))
}

/// The received audio laid out by RTP timestamp (8 kHz clock): a packet's samples go where the sender placed them,
/// so a prompt's position in this signal is when OnCall played it, whatever the receiving thread's scheduling.
/// (Real-time pacing is checked separately, from arrival times.)
fn timeline(packets: &[RtpPacket]) -> Vec<i16> {
    let Some(first) = packets.iter().find(|p| p.payload_type == 0 || p.payload_type == 8) else {
        return Vec::new();
    };
    let mut out: Vec<i16> = Vec::new();
    for p in packets {
        let samples = decode_g711(std::slice::from_ref(p));
        let at = p.timestamp.wrapping_sub(first.timestamp) as usize;
        if samples.is_empty() || at > 8000 * 600 {
            continue; // not audio, or from before the first packet
        }
        if out.len() < at + samples.len() {
            out.resize(at + samples.len(), 0);
        }
        out[at..at + samples.len()].copy_from_slice(&samples);
    }
    out
}

/// Finds the first second of `name` within ±`window` s of `expected_at` s in `heard`: (found at, correlation).
fn find_prompt(heard: &[i16], name: &str, expected_at: f64, window: f64) -> (f64, f64) {
    let p = prompt(name);
    let start = first_sound(&p.samples, 300).unwrap_or(0);
    let needle = &p.samples[start..(start + 8000).min(p.samples.len())];
    let from = ((expected_at - window).max(0.0) * 8000.0) as usize + start;
    if from >= heard.len() {
        return (f64::NAN, 0.0);
    }
    let (lag, corr) = best_match(&heard[from..], needle, (2.0 * window * 8000.0) as usize);
    ((from + lag - start) as f64 / 8000.0, corr)
}

#[test]
fn silent_caller_hears_greeting_then_retries_then_goodbye_and_bye() {
    let server = Server::start(
        "silent",
        ServerOptions {
            timeout_secs: TIMEOUT_SECS,
            max_retries: MAX_RETRIES,
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let mut sink = RtpSink::start();

    // greeting + menu, wait; (no_input + menu, wait) per retry; then no_input + goodbye and BYE
    let (greeting, menu, no_input, goodbye) = (
        prompt("greeting").secs(),
        prompt("menu").secs(),
        prompt("no_input").secs(),
        prompt("goodbye").secs(),
    );
    let wait = TIMEOUT_SECS as f64;
    let cycle = no_input + menu + wait;
    let first_no_input_at = greeting + menu + wait;
    let goodbye_at = first_no_input_at + MAX_RETRIES as f64 * cycle + no_input;
    let expected_bye = goodbye_at + goodbye;

    let run = Sipp::new(&server, "uac_silent.xml", "sipp-silent")
        .set("rtp_port", sink.port)
        .limit(Duration::from_secs(expected_bye as u64 + 20))
        .run();
    let packets = sink.stop();
    checks.check(run.success(), || run.describe());
    checks.check(run.received_requests().iter().any(|r| r.starts_with("BYE")), || {
        format!("OnCall never sent BYE to the silent caller\n{}", run.describe())
    });

    let Some(first) = packets.first() else {
        panic!(
            "no RTP reached the caller's media port {}\n{}",
            sink.port,
            run.describe()
        );
    };
    // SIPp starts the call and exits right after answering the BYE: its run time is the length of the call.
    let last = packets.last().unwrap();
    let audio_secs = (last.at - first.at).as_secs_f64();
    let call_secs = run.finished.elapsed.as_secs_f64();
    eprintln!(
        "[e2e] {} RTP packets over {audio_secs:.2} s; SIPp ran {call_secs:.2} s; expected the BYE after {expected_bye:.2} s",
        packets.len()
    );
    // The call lasts the prompts and waits plus set-up; allow a little slack either way.
    checks.check(
        call_secs >= expected_bye - 0.7 && call_secs <= expected_bye + 3.0,
        || {
            format!(
                "the silent call ended after {call_secs:.2} s, expected the BYE after {expected_bye:.2} s (-0.7/+3.0)"
            )
        },
    );
    checks.check(audio_secs <= expected_bye + 1.0, || {
        format!("RTP kept coming for {audio_secs:.2} s, past the expected hang-up at {expected_bye:.2} s")
    });

    // Pacing while the greeting and menu play continuously: one packet every 20 ms, 160-sample timestamps.
    let continuous: Vec<RtpPacket> = packets
        .iter()
        .filter(|p| (p.at - first.at).as_secs_f64() < greeting + menu - 0.5)
        .cloned()
        .collect();
    let pace = pacing(&continuous);
    eprintln!("[e2e] pacing over the greeting and menu: {pace:?}");
    checks.check((19.0..=21.0).contains(&pace.mean_ms), || {
        format!("mean packet spacing {:.2} ms, expected 20 ±1", pace.mean_ms)
    });
    checks.check(pace.within_10ms >= 0.9, || {
        format!("only {:.0}% of packet gaps within 10-30 ms", pace.within_10ms * 100.0)
    });
    checks.check(pace.max_ms < 120.0, || {
        format!("a {:.0} ms gap in the middle of a prompt", pace.max_ms)
    });
    let ts_ok = continuous
        .windows(2)
        .filter(|w| w[1].seq == w[0].seq.wrapping_add(1) && w[1].timestamp.wrapping_sub(w[0].timestamp) == 160)
        .count();
    checks.check(ts_ok as f64 >= 0.95 * continuous.len().saturating_sub(1) as f64, || {
        format!(
            "only {ts_ok} of {} consecutive packets advance seq by 1 and timestamp by 160",
            continuous.len()
        )
    });
    let types: std::collections::BTreeSet<u8> = packets.iter().map(|p| p.payload_type).collect();
    checks.check(types.contains(&0), || {
        format!("no PCMU (payload type 0) packets; payload types seen: {types:?}")
    });
    checks.check(
        packets.iter().all(|p| p.payload_type != 0 || p.payload.len() == 160),
        || "PCMU packets not 20 ms (160 bytes) long".into(),
    );

    // What was said, and when: the greeting first, then no_input after each timeout, then goodbye.
    let heard = timeline(&packets);
    let (at, corr) = greeting_match(&heard, 1.0);
    eprintln!("[e2e] greeting at {at:.2} s (correlation {corr:.3})");
    checks.check(corr > 0.9 && at < 0.5, || {
        format!("the audio does not start with the greeting (correlation {corr:.2} at {at:.2} s)")
    });
    for i in 0..=MAX_RETRIES {
        let expected = first_no_input_at + i as f64 * cycle;
        let (at, corr) = find_prompt(&heard, "no_input", expected, 1.5);
        eprintln!(
            "[e2e] no_input #{} at {at:.2} s (expected {expected:.2}, correlation {corr:.3})",
            i + 1
        );
        checks.check(corr > 0.8, || {
            format!(
                "no_input #{} not heard near {expected:.2} s (best {corr:.2} at {at:.2} s)",
                i + 1
            )
        });
    }
    let (at, corr) = find_prompt(&heard, "goodbye", goodbye_at, 1.5);
    eprintln!("[e2e] goodbye at {at:.2} s (expected {goodbye_at:.2}, correlation {corr:.3})");
    checks.check(corr > 0.8, || {
        format!("goodbye not heard near {goodbye_at:.2} s (best {corr:.2} at {at:.2} s)")
    });

    // The stored call: answered, ended, no keys, no recording.
    match server.wait_for_call(Duration::from_secs(10), |r| !field(r, "ended_at").is_empty()) {
        Ok(row) => {
            eprintln!("[e2e] call row: {row}");
            checks.check(field(&row, "digits").is_empty(), || {
                format!("digits {:?} for a silent caller", field(&row, "digits"))
            });
            checks.check(!field(&row, "answered_at").is_empty(), || "answered_at is null".into());
            checks.check(field(&row, "recording_path").is_empty(), || {
                "a silent caller got a recording".into()
            });
        }
        Err(rows) => checks.fail(format!("no ended call in `oncall calls --json`: {rows:?}")),
    }
    checks.finish();
}
