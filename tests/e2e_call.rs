//! A whole call with a real softphone: baresip dials OnCall, hears the greeting, presses `1` (RFC 4733
//! telephone-event), speaks a message (espeak-ng speech played through baresip's `aufile` microphone), presses `#`,
//! and OnCall says goodbye and hangs up. Then the stored call and its recording are checked.
//!
//! baresip 1.0 is driven over its `ctrl_tcp` socket: `dial`, then `sndcode 1` / `sndcode #`, which baresip sends
//! as RFC 4733 events on the negotiated telephone-event payload type; its `CALL_ESTABLISHED` / `CALL_CLOSED`
//! events time the test. Its `sndfile` module dumps what it heard to a WAV, which is compared with
//! `sounds/greeting.wav`, and whose growth while the greeting plays shows the RTP arrives in real time.

mod support;

use std::fs;
use std::time::{Duration, Instant};
use support::*;

/// When the caller presses `1`, in seconds after the call is established (during the greeting: barge-in).
const KEY_1_AT: f64 = 2.0;
/// Silence before and after the speech inside the message, seconds.
const LEAD_IN: f64 = 0.7;
const TAIL: f64 = 1.0;
/// How far the recording's length may differ from the time between the end of the beep and `#`.
const DURATION_TOLERANCE: f64 = 0.3;



#[test]
fn baresip_caller_hears_greeting_presses_1_and_leaves_a_message() {
    let server = Server::start("call", ServerOptions::default());
    let work = server.dir.subdir("baresip");
    let mut checks = Checks::default();

    // The caller's voice: speech, placed in the microphone stream so that it falls inside the recording.
    let speech = speech_wav(
        &work,
        "speech",
        "The boiler in building B has stopped. There is no hot water. Please call me back.",
    );
    let speech_secs = read_wav(&speech).secs();
    // "leave your message after the tone" + beep: the recording starts when both have played.
    let record_prompt = prompt_secs("record_after_tone") + prompt_secs("beep");
    let speech_at = KEY_1_AT + record_prompt + LEAD_IN;
    let message_secs = LEAD_IN + speech_secs + TAIL;
    let microphone = work.join("microphone.wav");
    // baresip hangs up when its aufile source ends: pad well past the end of the call.
    tool(
        &work,
        "sox",
        &[
            &speech.display().to_string(),
            &microphone.display().to_string(),
            "pad",
            &format!("{speech_at:.3}"),
            "40",
        ],
    );

    let mut phone = Baresip::start(&work.join("phone"), &microphone, Duration::from_secs(60));
    phone.command("dial", &server.sip_uri());
    let Some((established, _)) = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) else {
        panic!(
            "baresip's call to {} was not established within 10 s:\n{}",
            server.sip_uri(),
            tail(&phone.log(), 40)
        );
    };

    // While the greeting plays, the dump of what baresip heard grows at 8000 samples/s if OnCall paces its RTP
    // (a burst would make it jump, a slow sender would make it lag).
    sleep_until(established + Duration::from_millis(500));
    let size_at = |p: &Option<std::path::PathBuf>| p.as_ref().and_then(|p| fs::metadata(p).ok()).map_or(0, |m| m.len());
    let (t_a, size_a) = (Instant::now(), size_at(&phone.heard_wav()));
    sleep_until(established + Duration::from_millis(1900));
    let (t_b, size_b) = (Instant::now(), size_at(&phone.heard_wav()));
    let heard_rate = (size_b.saturating_sub(size_a)) as f64 / 2.0 / (t_b - t_a).as_secs_f64();
    eprintln!("[e2e] heard audio grew at {heard_rate:.0} samples/s during the greeting");
    checks.check((6800.0..=9200.0).contains(&heard_rate), || {
        format!("audio from OnCall arrived at {heard_rate:.0} samples/s during the greeting, expected 8000 ±15% (RTP not paced at 20 ms?)")
    });

    sleep_until(established + Duration::from_secs_f64(KEY_1_AT));
    phone.command("sndcode", "1");
    let key_1 = Instant::now();
    sleep_until(key_1 + Duration::from_secs_f64(record_prompt + message_secs));
    phone.command("sndcode", "#");
    let pound = Instant::now();
    let expected = (pound - key_1).as_secs_f64() - record_prompt;
    eprintln!(
        "[e2e] pressed 1 and, {:.2} s later, #: expecting a {expected:.2} s message",
        (pound - key_1).as_secs_f64()
    );

    // OnCall says request_created + goodbye, then hangs up itself.
    let closing = prompt_secs("request_created") + prompt_secs("goodbye");
    match phone.wait_event("CALL_CLOSED", Duration::from_secs_f64(closing + 4.0)) {
        Some((at, ev)) => {
            let after = (at - pound).as_secs_f64();
            eprintln!("[e2e] call closed {after:.2} s after #: {}", field(&ev, "param"));
            checks.check(after >= closing - 0.5, || {
                format!(
                    "OnCall hung up {after:.2} s after #, before request_created + goodbye ({closing:.2} s) could play"
                )
            });
        }
        None => {
            checks.fail(format!(
                "OnCall did not hang up (BYE) within {:.1} s after #",
                closing + 4.0
            ));
            phone.command("hangup", "");
            phone.wait_event("CALL_CLOSED", Duration::from_secs(3));
        }
    }
    let quit = phone.quit();
    eprintln!("[e2e] baresip quit: {:?}", quit.as_ref().map(|f| f.status));

    // What the caller heard: sound, starting with the greeting.
    match phone.heard_wav() {
        None => checks.fail("baresip wrote no dump of what it heard"),
        Some(path) => {
            let heard = read_wav(&path);
            let first = &heard.samples[..heard.samples.len().min(3 * 8000)];
            let level = rms_dbfs(first);
            checks.check(level > -40.0, || {
                format!("the first 3 s the caller heard are silent ({level:.1} dBFS)")
            });
            let (offset, corr) = greeting_match(&heard.samples, 1.5);
            eprintln!("[e2e] greeting found {offset:.2} s into what baresip heard, correlation {corr:.3}");
            checks.check(corr > 0.8, || {
                format!("what the caller heard does not start with sounds/greeting.wav (best correlation {corr:.2} at {offset:.2} s)")
            });
        }
    }

    // The stored call.
    let row = match server.wait_for_call(Duration::from_secs(10), |r| !field(r, "ended_at").is_empty()) {
        Ok(row) => row,
        Err(rows) => panic!("no ended call in `oncall calls --json` 10 s after the call: {rows:#?}"),
    };
    eprintln!("[e2e] call row: {row}");
    checks.check(field(&row, "digits") == "1#", || {
        format!("digits {:?}, expected \"1#\"", field(&row, "digits"))
    });
    checks.check(!field(&row, "answered_at").is_empty(), || "answered_at is null".into());
    let row_ms = row.get("recording_duration_ms").and_then(|v| v.as_f64());
    checks.check(
        row_ms.is_some_and(|ms| (ms / 1000.0 - expected).abs() <= DURATION_TOLERANCE),
        || {
            format!(
                "recording_duration_ms {row_ms:?}, expected {:.0} ±{:.0}",
                expected * 1000.0,
                DURATION_TOLERANCE * 1000.0
            )
        },
    );

    // The recording: one `*-message.wav` under data_dir/recordings, as long as the message, holding the speech.
    let recordings = server.recordings();
    let messages: Vec<_> = recordings
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-message.wav"))
        .collect();
    checks.check(messages.len() == 1, || {
        format!("expected one *-message.wav under data_dir/recordings, found {recordings:?}")
    });
    if let Some(path) = messages.first() {
        let row_path = field(&row, "recording_path");
        checks.check(
            !row_path.is_empty() && fs::canonicalize(row_path).ok() == fs::canonicalize(path).ok(),
            || format!("recording_path {row_path:?} is not the file on disk {}", path.display()),
        );
        let rec = read_wav(path);
        checks.check(rec.rate == 8000, || {
            format!("recording is {} Hz, expected 8000", rec.rate)
        });
        let secs = rec.secs();
        eprintln!(
            "[e2e] recording {} lasts {secs:.2} s (expected {expected:.2})",
            path.display()
        );
        checks.check((secs - expected).abs() <= DURATION_TOLERANCE, || {
            format!("recording lasts {secs:.2} s, expected {expected:.2} ±{DURATION_TOLERANCE}")
        });
        let level = rms_dbfs(&rec.samples);
        checks.check(level > -45.0, || format!("recording is silent ({level:.1} dBFS)"));
        // The caller's speech is in it: the first second of speech matches somewhere in the recording.
        let voice = read_wav(&speech);
        let start = first_sound(&voice.samples, 300).unwrap_or(0);
        let needle = &voice.samples[start..(start + 8000).min(voice.samples.len())];
        let (lag, corr) = best_match(&rec.samples, needle, rec.samples.len());
        eprintln!(
            "[e2e] caller's speech found {:.2} s into the recording, correlation {corr:.3}",
            lag as f64 / 8000.0
        );
        checks.check(corr > 0.6, || {
            format!("the recording does not contain the caller's speech (best correlation {corr:.2})")
        });
    }

    checks.finish();
}
