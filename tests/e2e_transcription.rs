//! What the caller said, in words (issue 23). A caller (baresip) leaves a "page on-call" message; the
//! transcription worker turns it into text off the media threads, and the text reaches the request, the texts
//! sent after it, the `request.transcribed` webhook and the request list's search.
//!
//! - The HTTP engine against an OpenAI-compatible server played by this test: its first answer never comes
//!   (the job times out), its second is a 500, its third the transcript; the multipart request is checked.
//!   The page's first text goes out before the transcript exists (transcription never delays paging), a
//!   later one quotes it.
//! - The built-in engine (pocketsphinx, as the test script installs it) on a spoken message and on a silent
//!   one: words with a word error rate printed, and "empty" with a reason instead of an error loop.
//! - Word error rate and real-time factor of the built-in engine on known sentences spoken by espeak-ng and
//!   flite, clean, through a G.711 round trip, and with noise added (docs/performance.md quotes the table).

mod support;

use oncall_core::transcript::word_error_rate;
use oncall_core::webhook::{NewWebhook, WebhookEvent};
use oncall_core::{Store, Timestamp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::http_peer::{collect, serve, Post, Reply};
use support::*;

/// The request once its message's transcription is no longer pending.
fn wait_for_transcription(server: &Server, limit: Duration) -> Value {
    let settled = |r: &Value| r["transcriptions"].as_array().is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["status"] != "pending"));
    match server.wait_for_request(limit, settled) {
        Ok(r) => r,
        Err(rows) => panic!("no transcription finished within {limit:?}: {rows:#?}\n{}", server.log_tail(60)),
    }
}

/// `text` spoken by flite's `slt` voice, as an 8 kHz mono WAV (a phone's audio).
fn flite_wav(dir: &Path, name: &str, text: &str, rate: u32) -> PathBuf {
    let raw = dir.join(format!("{name}-raw.wav"));
    let out = dir.join(format!("{name}.wav"));
    tool(dir, "flite", &["-voice", "slt", "-t", text, "-o", &raw.display().to_string()]);
    tool(dir, "sox", &[&raw.display().to_string(), "-r", &rate.to_string(), "-c", "1", "-b", "16", &out.display().to_string()]);
    out
}

const SAID: &str = "Water is coming through the ceiling in flat four B.";
const HEARD: &str = "Water is coming through the ceiling in 4B.";
const ERIN_PHONE: &str = "+15551234567";
const INBOUND_TOKEN: &str = "hook-secret-42-hook-secret-42-hook";

#[test]
fn the_http_engine_transcript_reaches_the_request_texts_webhooks_and_search() {
    // The transcription server: no answer, then a 500, then the transcript.
    const ANSWER: &str = r#"{"task":"transcribe","language":"english","duration":4.1,"text":" Water is coming through the ceiling in 4B.","segments":[{"id":0,"avg_logprob":-0.25,"no_speech_prob":0.02}]}"#;
    let (openai, openai_posts) = serve(|n, _| match n {
        0 => Reply::Hang,
        1 => Reply::Answer(500, r#"{"error":{"message":"model is loading"}}"#),
        _ => Reply::Answer(200, ANSWER),
    });
    let (gateway, texts) = serve(|_, _| Reply::Answer(201, r#"{"sid":"SM1","status":"queued"}"#));
    let (receiver, hooks) = serve(|_, _| Reply::Answer(200, "{}"));
    let server = Server::start(
        "transcription-http",
        ServerOptions {
            extra_config: format!(
                "[paging]\nenabled = true\nmax_hold_secs = 0\n\n\
                 [texts]\nenabled = true\ntransport = \"http\"\nurl = \"http://{gateway}/2010-04-01/Accounts/AC123/Messages.json\"\n\
                 account = \"AC123\"\ntoken = \"tok\"\nfrom = \"+15550001111\"\ninbound_token = \"{INBOUND_TOKEN}\"\n\n\
                 [webhooks]\npoll_interval_ms = 100\nallow_private = [\"127.0.0.1/32\"]\n\n\
                 [transcription]\nengine = \"http\"\ntimeout_secs = 2\nretry_initial_secs = 1\nmax_attempts = 4\npoll_interval_ms = 200\n\
                 [transcription.http]\nurl = \"http://{openai}/v1/audio/transcriptions\"\napi_key = \"sk-e2e-key\"\n"
            ),
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = rt.block_on(Store::connect(&format!("sqlite://{}", server.data_dir.join("oncall.db").display()))).expect("open the server's database");
    let org = rt.block_on(store.default_organization()).unwrap().expect("the server made its organization");
    let hook = NewWebhook {
        name: "Transcripts".into(),
        url: format!("http://{receiver}/hook"),
        events: vec![WebhookEvent::Transcribed],
        ..NewWebhook::default()
    };
    rt.block_on(store.create_webhook(org.id, &hook, Timestamp::now())).unwrap();
    server.oncall(&["user", "add", "--name", "Mia", "--email", "mia@example.test", "--role", "manager", "--password", "transcribe-pass-1"]);
    server.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", ERIN_PHONE, "--text"]);
    server.oncall(&["policy", "add", "--name", "Front desk", "--person", "erin@example.test", "--wait-secs", "30", "--repeat", "1"]);

    let work = server.dir.subdir("peers");
    leave_page_message(&server, &work, SAID);
    let left = Instant::now();
    let request = wait_for_transcription(&server, Duration::from_secs(40));
    let id = request["id"].as_i64().unwrap();
    let t = &request["transcriptions"][0];
    eprintln!("[e2e] request #{id}: transcript {:?}, transcription {t}", request["transcript"]);
    checks.check(request["transcript"] == HEARD, || format!("the request's transcript is {:?}", request["transcript"]));
    checks.check(t["status"] == "done" && t["engine"] == "http" && t["attempts"] == 3, || format!("transcription {t}"));
    let confidence = t["confidence"].as_f64().unwrap_or(0.0);
    checks.check((confidence - (-0.25f64).exp()).abs() < 1e-6 && t["low_quality"] == false, || format!("confidence {t}"));

    // The engine's three requests: the timeout and the 500 were retried; each carried the message.
    let mut asked = Vec::new();
    collect(&openai_posts, &mut asked, Duration::from_secs(1), |p| p.len() >= 3);
    checks.check(asked.len() == 3, || format!("{} requests to the transcription server", asked.len()));
    for p in &asked {
        let body = p.text();
        let boundary = p.header("content-type").split("boundary=").nth(1).unwrap_or("?").to_string();
        let field = |name: &str, value: &str| body.contains(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
        checks.check(p.path == "/v1/audio/transcriptions" && p.header("authorization") == "Bearer sk-e2e-key", || format!("{} {:?}", p.path, p.headers));
        checks.check(p.header("content-type").starts_with("multipart/form-data; boundary="), || format!("content type {:?}", p.header("content-type")));
        checks.check(field("model", "whisper-1") && field("language", "en") && field("response_format", "verbose_json"), || format!("fields of {body:.400}"));
        let file = body.find("filename=\"message.wav\"").map(|i| &p.body[i..]).unwrap_or(&[]);
        let riff = file.windows(4).position(|w| w == b"RIFF");
        checks.check(riff.is_some_and(|i| file[i + 8..].starts_with(b"WAVE")), || "the file part is no WAV".into());
        // At least the 2 s of speech at 8 kHz, 16 bits; the body ends with the closing boundary.
        checks.check(file.len() > 32_000 && body.ends_with(&format!("--{boundary}--\r\n")), || format!("a {} byte file part", file.len()));
    }
    if let [first, second, third] = &asked[..] {
        let gap = |a: &Post, b: &Post| b.at.duration_since(a.at).as_secs_f64();
        eprintln!("[e2e] attempts {:.1} s and {:.1} s apart", gap(first, second), gap(second, third));
        // A 2 s timeout then a 1 s wait; then the 500's 2 s back-off.
        checks.check(gap(first, second) >= 2.9 && gap(second, third) >= 1.9, || format!("retries {:.1} s, {:.1} s apart", gap(first, second), gap(second, third)));
    }
    let log = server.log();
    checks.check(log.contains("timed out") || log.contains("took longer"), || "the timeout is not logged".into());
    checks.check(log.contains("HTTP 500"), || "the 500 is not logged".into());

    // Paging did not wait: the first text went out before the transcript existed; the repeat 30 s later (the
    // shortest step a policy may have) quotes it.
    let mut sent = Vec::new();
    let quoted = collect(&texts, &mut sent, Duration::from_secs(40), |p| p.iter().any(|p| p.text().contains("ceiling")));
    let bodies: Vec<String> = sent.iter().map(|p| p.text()).collect();
    eprintln!("[e2e] texts: {bodies:#?}");
    checks.check(quoted, || format!("no text quotes the transcript: {bodies:#?}"));
    checks.check(sent.first().is_some_and(|p| !p.text().contains("ceiling") && p.at < asked.last().map_or(left, |a| a.at)), || {
        "the first text should go out at once, before the transcript".into()
    });

    // The webhook that asked for transcripts.
    let mut delivered = Vec::new();
    collect(&hooks, &mut delivered, Duration::from_secs(10), |p| !p.is_empty());
    let payload: Value = delivered.first().map(|p| serde_json::from_slice(&p.body).unwrap_or(Value::Null)).unwrap_or(Value::Null);
    checks.check(payload["event"] == "request.transcribed" && payload["request"]["transcript"] == HEARD && payload["request"]["id"] == id, || {
        format!("webhook payload {payload}")
    });

    // The request list finds it by what was said, and shows it; the detail page says who transcribed it.
    let cookie = format!("oncall_session={}", web_login(&server, "mia@example.test", "transcribe-pass-1"));
    let (status, _, found) = get_with_cookie(server.http, "/requests?words=ceiling", &cookie).expect("GET /requests?words=ceiling");
    checks.check(status == 200 && found.contains(&format!("/requests/{id}")) && found.contains("Water is coming through the ceiling"), || {
        format!("search for \"ceiling\" answered {status}:\n{}", tail(&found, 30))
    });
    let (_, _, none) = get_with_cookie(server.http, "/requests?words=elephant", &cookie).expect("GET /requests?words=elephant");
    checks.check(!none.contains(&format!("/requests/{id}\"")), || "a search for a word not said found the request".into());
    let (_, _, detail) = get_with_cookie(server.http, &format!("/requests/{id}"), &cookie).expect("GET the request");
    checks.check(detail.contains("Transcribed by http") && detail.contains("Water is coming through the ceiling"), || {
        format!("the detail page:\n{}", tail(&detail, 40))
    });
    checks.finish();
}

#[test]
fn the_built_in_engine_transcribes_a_spoken_message_and_reports_a_silent_one() {
    require_tool("pocketsphinx_continuous");
    require_tool("flite");
    let server = Server::start(
        "transcription-pocketsphinx",
        ServerOptions { extra_config: "[transcription]\nengine = \"pocketsphinx\"\npoll_interval_ms = 200\n".into(), ..ServerOptions::default() },
    );
    let mut checks = Checks::default();
    let spoken = server.dir.subdir("spoken");
    let speech = flite_wav(&spoken, "speech", SAID, 8000);
    leave_recorded_message(&server, &spoken, &speech, "oncall");
    let request = wait_for_transcription(&server, Duration::from_secs(60));
    let t = &request["transcriptions"][0];
    let text = t["text"].as_str().unwrap_or("");
    let wer = word_error_rate(SAID, text);
    eprintln!("[e2e] said {SAID:?}; pocketsphinx heard {text:?} (WER {wer:.2}, confidence {}, {} ms of CPU-bound work for {} ms of audio)", t["confidence"], t["engine_ms"], t["audio_ms"]);
    checks.check(t["status"] == "done" && t["engine"] == "pocketsphinx", || format!("transcription {t}\n{}", server.log_tail(30)));
    checks.check(t["confidence"].is_f64(), || format!("no confidence: {t}"));

    // A caller who says nothing: an empty transcript with the reason, once.
    let silent = server.dir.subdir("silent");
    let quiet = silence_wav_secs(&silent, 3);
    leave_recorded_message(&server, &silent, &quiet, "oncall");
    let settled = |r: &Value| r["id"] != request["id"] && r["transcriptions"].as_array().is_some_and(|t| !t.is_empty() && t[0]["status"] != "pending");
    match server.wait_for_request(Duration::from_secs(30), settled) {
        Ok(r) => {
            let t = &r["transcriptions"][0];
            eprintln!("[e2e] the silent message: {t}");
            checks.check(t["status"] == "empty" && t["reason"].as_str().is_some_and(|r| r.contains("silent")) && t["attempts"] == 1, || format!("silent message {t}"));
            checks.check(r["transcript"].is_null(), || format!("a silent message gave the request a transcript {:?}", r["transcript"]));
        }
        Err(rows) => checks.fail(format!("the silent message was not settled: {rows:#?}")),
    }
    let metrics = http_get(server.http, "/metrics").map(|(_, b)| b).unwrap_or_default();
    checks.check(metrics.contains("oncall_transcriptions{status=\"done\"} 1") && metrics.contains("oncall_transcriptions{status=\"empty\"} 1"), || {
        format!("metrics: {}", metrics.lines().filter(|l| l.contains("transcri")).collect::<Vec<_>>().join("\n"))
    });
    checks.finish();
}

/// CPU seconds this process's waited-for children have used (`/proc/self/stat` cutime + cstime).
fn children_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, cutime 16 and cstime 17 (1-based over the whole line).
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(16) + ticks(17)) / 100.0
}

/// The numbers behind docs/performance.md's transcription table; only sanity is asserted.
#[test]
fn word_error_rate_and_real_time_factor_of_the_built_in_engine() {
    use oncall_transcribe::{config::PocketsphinxConfig, pocketsphinx::Pocketsphinx, Audio, Engine};
    require_tool("pocketsphinx_continuous");
    require_tool("flite");
    let dir = TestDir::new("transcription-wer");
    let engine = Pocketsphinx::new(&PocketsphinxConfig::default(), &dir.path).expect("the built-in engine");
    let sentences = [
        "Water is coming through the ceiling in flat four B.",
        "The heating in the lobby has stopped working.",
        "Please send someone to the front door, the lock is broken.",
        "There is a strong smell of gas in the basement.",
    ];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let noise = dir.join("noise.wav");
    tool(&dir.path, "sox", &["-n", "-r", "8000", "-c", "1", "-b", "16", &noise.display().to_string(), "synth", "8", "whitenoise", "vol", "0.02"]);
    println!("voice     | audio                 | WER  | RTF (CPU s per audio s)");
    for voice in ["espeak-ng", "flite"] {
        for condition in ["16 kHz clean", "8 kHz G.711", "8 kHz G.711 + noise"] {
            let (mut errors, mut words, mut cpu, mut secs) = (0.0, 0usize, 0.0, 0.0);
            for (i, said) in sentences.iter().enumerate() {
                let name = format!("{voice}-{i}");
                let rate = if condition.starts_with("16") { 16_000 } else { 8_000 };
                let clean = if voice == "flite" { flite_wav(&dir.path, &name, said, rate) } else { speech_wav_at(&dir.path, &name, said, rate) };
                let wav = if condition.starts_with("16") {
                    clean
                } else {
                    let ulaw = dir.path.join(format!("{name}.ul.wav"));
                    let phone = dir.path.join(format!("{name}-phone.wav"));
                    tool(&dir.path, "sox", &[&clean.display().to_string(), "-e", "u-law", &ulaw.display().to_string()]);
                    if condition.ends_with("noise") {
                        tool(&dir.path, "sox", &["-m", &ulaw.display().to_string(), &noise.display().to_string(), "-e", "signed-integer", "-b", "16", &phone.display().to_string(), "trim", "0", &format!("{:.2}", read_wav(&clean).secs())]);
                    } else {
                        tool(&dir.path, "sox", &[&ulaw.display().to_string(), "-e", "signed-integer", "-b", "16", &phone.display().to_string()]);
                    }
                    phone
                };
                let w = read_wav(&wav);
                let audio = Audio { samples: w.samples.clone(), rate };
                let before = children_cpu_secs();
                let heard = rt.block_on(engine.transcribe(&audio, "en-US")).map(|t| t.text).unwrap_or_else(|e| panic!("{voice} {condition}: {e:?}"));
                cpu += children_cpu_secs() - before;
                secs += w.secs();
                let n = said.split_whitespace().count();
                errors += word_error_rate(said, &heard) * n as f64;
                words += n;
                eprintln!("  {voice} {condition}: {said:?} → {heard:?}");
            }
            let wer = errors / words as f64;
            println!("{voice:<9} | {condition:<21} | {wer:.2} | {:.2}", cpu / secs);
            assert!(wer.is_finite() && cpu >= 0.0);
        }
    }
}

/// espeak-ng's `en-us` voice at `rate`.
fn speech_wav_at(dir: &Path, name: &str, text: &str, rate: u32) -> PathBuf {
    let eight = speech_wav(dir, name, text);
    if rate == 8000 {
        return eight;
    }
    let raw = dir.join(format!("{name}-raw.wav"));
    let out = dir.join(format!("{name}-{rate}.wav"));
    tool(dir, "sox", &[&raw.display().to_string(), "-r", &rate.to_string(), "-c", "1", "-b", "16", &out.display().to_string()]);
    out
}
