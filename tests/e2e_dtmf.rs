//! Key presses that do not come as RFC 4733 events (e2e_call.rs covers those): SIP INFO from SIPp, and in-band
//! tones from a caller that does not offer telephone-event. Both callers press `2` (leave a message) during the
//! greeting and `#` after about 1.7 s of message; OnCall must collect "2#", store the message and hang up.

mod support;

use std::time::Duration;
use support::*;


/// The call row with its digits, recording and times, checked the same way for every DTMF transport.
fn check_message_call(server: &Server, checks: &mut Checks, min_message_secs: f64) {
    let row = match server.wait_for_call(Duration::from_secs(10), |r| !field(r, "ended_at").is_empty()) {
        Ok(row) => row,
        Err(rows) => panic!("no ended call in `oncall calls --json` 10 s after the call: {rows:#?}"),
    };
    eprintln!("[e2e] call row: {row}");
    checks.check(field(&row, "digits") == "2#", || {
        format!("digits {:?}, expected \"2#\"", field(&row, "digits"))
    });
    checks.check(!field(&row, "answered_at").is_empty(), || "answered_at is null".into());
    let path = field(&row, "recording_path");
    checks.check(!path.is_empty(), || {
        "recording_path is null: the message was not stored".into()
    });
    if !path.is_empty() {
        let on_disk = std::path::Path::new(path);
        checks.check(on_disk.is_file(), || format!("recording_path {path} does not exist"));
        checks.check(
            on_disk.starts_with(server.data_dir.join("recordings")) || path.contains("/recordings/"),
            || format!("recording_path {path} is not under data_dir/recordings"),
        );
        if on_disk.is_file() {
            let secs = read_wav(on_disk).secs();
            checks.check(secs >= min_message_secs, || {
                format!("recording lasts {secs:.2} s, expected at least {min_message_secs:.2}")
            });
        }
    }
}

#[test]
fn sip_info_keys_are_collected() {
    let server = Server::start("info", ServerOptions::default());
    let mut checks = Checks::default();
    // 1 s, INFO 2, 6.5 s (prompt + ~1.7 s message), INFO #, then thank_you + goodbye before the BYE
    let run = Sipp::new(&server, "uac_info_dtmf.xml", "sipp-info")
        .limit(Duration::from_secs(40))
        .run();
    eprintln!(
        "[e2e] SIPp INFO scenario: {:?} after {:.1} s",
        run.finished.status,
        run.finished.elapsed.as_secs_f64()
    );
    checks.check(run.success(), || run.describe());
    let statuses = run.received_statuses();
    // both INFOs answered 200 (the INVITE's 200 is the first "200")
    checks.check(statuses.iter().filter(|s| s.starts_with("200")).count() >= 3, || {
        format!("expected 200 for the INVITE and both INFOs, got {statuses:?}")
    });
    let message = 6.5 - prompt_secs("record_after_tone") - prompt_secs("beep");
    check_message_call(&server, &mut checks, message - 0.5);
    checks.finish();
}

#[test]
fn in_band_tones_are_detected_when_telephone_event_is_not_offered() {
    let server = Server::start("inband", ServerOptions::default());
    let mut checks = Checks::default();
    let work = server.dir.subdir("tones");

    // The caller's audio: 1 s silence, `2` (200 ms), silence through the recording prompt and ~1.7 s of message,
    // `#` (200 ms), 1.5 s silence. Tones made by SoX `synth` (two sines at -9 dBFS each), sent as PCMU.
    let record_prompt = prompt_secs("record_after_tone") + prompt_secs("beep");
    let key_2 = read_wav(&dtmf_wav(&work, '2', 0.2)).samples;
    let pound = read_wav(&dtmf_wav(&work, '#', 0.2)).samples;
    let silence = |secs: f64| vec![0i16; (secs * 8000.0) as usize];
    let mut audio = silence(1.0);
    audio.extend(&key_2);
    audio.extend(silence(record_prompt + 1.5));
    audio.extend(&pound);
    audio.extend(silence(1.5));
    // SIPp resolves the scenario's relative `play_pcap_audio="inband_dtmf.pcap"` from its working directory.
    write_rtp_pcap(&work.join("inband_dtmf.pcap"), &audio);

    let run = Sipp::new(&server, "uac_inband_dtmf.xml", "sipp-inband")
        .cwd(&work)
        .limit(Duration::from_secs(40))
        .run();
    eprintln!(
        "[e2e] SIPp in-band scenario: {:?} after {:.1} s",
        run.finished.status,
        run.finished.elapsed.as_secs_f64()
    );
    checks.check(run.success(), || {
        format!(
            "the in-band call did not end with OnCall's BYE after the keys (were the tones heard?)\n{}",
            run.describe()
        )
    });
    check_message_call(&server, &mut checks, 1.0);
    checks.finish();
}
