//! SIGKILL during calls (issue 9, "graceful shutdown and restart"): nothing recorded is lost.
//!
//! Four SIPp callers leave a short message and hang up (`bench/scenarios/ivr_message.xml`: their requests are
//! opened) while eight others are in the middle of a long one (`bench/scenarios/soak_long_message.xml`). Once the
//! four are stored and the eight WAVs hold a few seconds of audio each, `oncall serve` gets `kill -9`: the eight
//! WAV headers are left as the last one-second checkpoint wrote them, while more audio follows on disk. The server
//! is started again on the same config and data directory, and then:
//!
//! * each of the eight WAVs is a valid 16-bit PCM RIFF file (RIFF and data sizes match the file), holds at least
//!   every whole frame that was on disk at the kill, and is not silent; the start-up repair logged the ones it fixed
//!   (the kill leaves the headers right, see below, so one header is zeroed before the restart to make sure);
//! * all twelve calls have their rows; the four finished ones still have their recording and their request;
//! * the eight cut calls are closed by the start-up recovery, each with its recording, and each has a request
//!   holding that recording (the message as far as it got: the caller's request is not lost);
//! * `oncall recordings verify` is clean and counts twelve recordings;
//! * the server answers a new call (SIPp `uac_call.xml`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const FINISHED_CALLER: &str = "15551230000";
const CUT_CALLER: &str = "15551239999";

/// What a WAV's header says against what is on disk.
#[derive(Debug, Clone, Copy)]
struct WavSizes {
    file_len: u64,
    riff_size: u32,
    /// Offset of the first audio byte.
    data_start: u64,
    declared_data_len: u32,
}

impl WavSizes {
    fn read(path: &Path) -> WavSizes {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert!(
            bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
            "{} has no RIFF/WAVE header",
            path.display()
        );
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let mut pos = 12;
        while pos + 8 <= bytes.len() {
            let size = u32_at(pos + 4);
            if &bytes[pos..pos + 4] == b"data" {
                return WavSizes {
                    file_len: bytes.len() as u64,
                    riff_size: u32_at(4),
                    data_start: pos as u64 + 8,
                    declared_data_len: size,
                };
            }
            pos += 8 + size as usize + (size as usize & 1);
        }
        panic!("{}: no data chunk", path.display());
    }

    /// Both sizes agree with the file's length (a player reads exactly the audio there is).
    fn consistent(&self) -> bool {
        u64::from(self.riff_size) == self.file_len - 8
            && u64::from(self.declared_data_len) == self.file_len - self.data_start
            && self.declared_data_len.is_multiple_of(2)
    }

    /// Audio bytes on disk after the header.
    fn audio_on_disk(&self) -> u64 {
        self.file_len - self.data_start
    }
}

/// The pid of the `oncall serve` started with `config` (the test harness does not hand out its child's pid).
fn server_pid(config: &Path) -> u32 {
    let want = config.to_string_lossy().to_string();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "serve") && args.contains(&want) {
            return pid;
        }
    }
    panic!("no `oncall serve --config {want}` process");
}

fn rows_of<'a>(calls: &'a [serde_json::Value], caller: &str) -> Vec<&'a serde_json::Value> {
    calls.iter().filter(|c| field(c, "caller").contains(caller)).collect()
}

/// The WAVs of calls still recording: every file under the recordings directory but the `stored` ones.
fn in_progress(server: &Server, stored: &[PathBuf]) -> Vec<PathBuf> {
    server
        .recordings()
        .into_iter()
        .filter(|p| !stored.contains(p))
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigkill_while_recording_loses_nothing() {
    let mut server = Server::start(
        "crash",
        ServerOptions {
            rtp_ports: 60,
            max_message_secs: 300,
            silence_secs: 0,
            ..ServerOptions::default()
        },
    );
    // Scenarios are named relative to tests/scenarios/; these two live in bench/scenarios/.
    let finished = Sipp::new(&server, "../../bench/scenarios/ivr_message.xml", "finished")
        .load(4, 4, 4)
        .limit(Duration::from_secs(60))
        .spawn();
    let cut = Sipp::new(&server, "../../bench/scenarios/soak_long_message.xml", "cut")
        .load(8, 8, 8)
        .limit(Duration::from_secs(120))
        .spawn();

    // The four short messages are stored (call ended with its recording) ...
    wait_until(Duration::from_secs(45), "the four short calls to be stored", || {
        let calls = server.calls();
        rows_of(&calls, FINISHED_CALLER)
            .iter()
            .filter(|c| !field(c, "ended_at").is_empty() && !field(c, "recording_path").is_empty())
            .count()
            == 4
    });
    let finished_run = finished.wait();
    finished_run.assert_success();
    let calls = server.calls();
    let stored: Vec<PathBuf> = rows_of(&calls, FINISHED_CALLER)
        .iter()
        .map(|c| PathBuf::from(field(c, "recording_path")))
        .collect();
    let requests_before = server.requests();

    // ... and the eight long ones each have more than 3 s of audio on disk.
    wait_until(Duration::from_secs(30), "eight WAVs with 3 s of audio", || {
        let files = in_progress(&server, &stored);
        files.len() == 8
            && files
                .iter()
                .all(|p| fs::metadata(p).is_ok_and(|m| m.len() > 44 + 3 * 16000))
    });
    // Half-way between two header checkpoints (once a second), so the headers are behind the audio.
    thread::sleep(Duration::from_millis(500));

    let pid = server_pid(&server.config_path);
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_until(Duration::from_secs(5), "the server to die", || !server.is_running());
    drop(cut); // SIPp would only retransmit into the void
    let killed_at = Instant::now();

    let files = in_progress(&server, &stored);
    assert_eq!(files.len(), 8, "{files:?}");
    let before: Vec<WavSizes> = files.iter().map(|p| WavSizes::read(p)).collect();
    let stale = before.iter().filter(|w| !w.consistent()).count();
    let calls = server.calls();
    let cut_rows = rows_of(&calls, CUT_CALLER);
    eprintln!(
        "[e2e] killed with {} calls in the log; {stale} of 8 WAV headers behind the audio on disk: {:?}",
        calls.len(),
        before
            .iter()
            .map(|w| (w.declared_data_len, w.audio_on_disk()))
            .collect::<Vec<_>>()
    );

    // The recorder's buffer (1 s of mono audio) is written out together with the header at each checkpoint, so the
    // kill normally leaves every header right and loses only the unwritten last second. A header left behind the
    // audio (a writer killed before its first checkpoint leaves zero sizes) is made here on one file, so the
    // start-up repair is checked on a real recording as well.
    let zeroed = &files[0];
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new().write(true).open(zeroed).expect("open WAV");
        f.seek(SeekFrom::Start(4)).unwrap();
        f.write_all(&0u32.to_le_bytes()).unwrap();
        f.seek(SeekFrom::Start(before[0].data_start - 4)).unwrap();
        f.write_all(&0u32.to_le_bytes()).unwrap();
    }
    let stale = stale + usize::from(before[0].consistent());

    // Start again on the same config and data directory.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
    cmd.arg("serve")
        .arg("--config")
        .arg(&server.config_path)
        .env("RUST_LOG", "info,oncall=debug");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ONCALL_") {
            cmd.env_remove(key);
        }
    }
    let mut restarted = Spawned::spawn(&mut cmd, &server.dir.path, "oncall-restarted");
    wait_until(Duration::from_secs(20), "the restarted server's /healthz", || {
        assert!(
            restarted.is_running(),
            "the restarted server exited:\n{}",
            restarted.stderr_text()
        );
        http_get(server.http, "/healthz").map(|(s, _)| s) == Some(200)
    });
    let restart_secs = killed_at.elapsed().as_secs_f64();
    let log = restarted.stderr_text() + &restarted.stdout_text();

    let mut checks = Checks::default();
    for (path, was) in files.iter().zip(&before) {
        let now = WavSizes::read(path);
        checks.check(now.consistent(), || {
            format!("{}: still inconsistent after restart: {now:?}", path.display())
        });
        // Nothing on disk is dropped but a trailing partial frame.
        checks.check(now.audio_on_disk() >= was.audio_on_disk() / 2 * 2, || {
            format!(
                "{}: {} audio bytes at the kill, {} after the restart",
                path.display(),
                was.audio_on_disk(),
                now.audio_on_disk()
            )
        });
        let wav = read_wav(path);
        checks.check(wav.rate == 8000 && wav.secs() > 3.0, || {
            format!("{}: {} s at {} Hz", path.display(), wav.secs(), wav.rate)
        });
        let level = rms_dbfs(&wav.samples);
        checks.check(level > -50.0, || {
            format!("{}: silent ({level:.1} dBFS)", path.display())
        });
    }
    let repaired = log.matches("repaired a recording cut short by a crash").count();
    checks.check(repaired == stale, || {
        format!("{stale} stale headers but the start-up repair logged {repaired}")
    });

    // The start-up recovery runs beside the health check: wait for its eight requests (and the calls it closes first).
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.requests().len() < 12 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(300));
    }
    let calls_after = server.calls();
    checks.check(calls_after.len() == 12, || {
        format!("{} call rows, expected 12: {calls_after:#?}", calls_after.len())
    });
    checks.check(cut_rows.len() == 8, || {
        format!("{} rows of the cut calls before the restart", cut_rows.len())
    });
    checks.check(rows_of(&calls_after, CUT_CALLER).len() == 8, || {
        "rows of the cut calls lost in the restart".into()
    });
    let cut_after = rows_of(&calls_after, CUT_CALLER);
    eprintln!(
        "[e2e] after the restart the cut calls' rows have ended_at {:?} and recording_path {:?}",
        cut_after.iter().map(|c| field(c, "ended_at")).collect::<Vec<_>>(),
        cut_after.iter().map(|c| field(c, "recording_path")).collect::<Vec<_>>()
    );
    let finished_after = rows_of(&calls_after, FINISHED_CALLER);
    checks.check(
        finished_after
            .iter()
            .filter(|c| !field(c, "recording_path").is_empty())
            .count()
            == 4,
        || format!("finished calls lost their recording: {finished_after:#?}"),
    );
    checks.check(
        cut_after.iter().all(|c| !field(c, "ended_at").is_empty() && !field(c, "recording_path").is_empty()),
        || format!("cut calls left open or without their recording: {cut_after:#?}"),
    );
    // The same four requests (their status may move on: the escalation engine runs again after the restart), and
    // one more per cut call, each holding that call's recording.
    let key = |r: &serde_json::Value| (r["id"].clone(), r["caller"].clone(), r["received_at"].clone());
    let requests_after = server.requests();
    let (cut_requests, kept): (Vec<_>, Vec<_>) =
        requests_after.iter().partition(|r| r["caller"].as_str().is_some_and(|c| c.contains(CUT_CALLER)));
    checks.check(
        requests_before.len() == 4
            && kept.iter().map(|r| key(r)).collect::<Vec<_>>() == requests_before.iter().map(key).collect::<Vec<_>>(),
        || format!("requests changed: before {requests_before:#?}\nafter {requests_after:#?}"),
    );
    let mut cut_keys: Vec<String> = cut_requests
        .iter()
        .flat_map(|r| r["recordings"].as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    cut_keys.sort();
    let mut cut_files: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    cut_files.sort();
    checks.check(
        cut_requests.len() == 8
            && cut_keys.len() == 8
            && cut_keys.iter().zip(&cut_files).all(|(k, f)| k.ends_with(f.as_str())),
        || format!("the cut calls' requests: {cut_requests:#?}\nexpected one per file {cut_files:?}"),
    );
    eprintln!("[e2e] after the restart: {} requests for the 8 cut calls, holding {} recordings", cut_requests.len(), cut_keys.len());
    let verify = server.oncall(&["recordings", "verify"]);
    checks.check(
        verify.contains("12 recordings checked") && verify.contains("0 missing"),
        || format!("verify: {verify}"),
    );

    // And it takes calls again.
    let call = Sipp::new(&server, "uac_call.xml", "after-restart").run();
    checks.check(call.success(), || {
        format!("no call after the restart: {}", call.describe())
    });
    eprintln!(
        "[e2e] restart to healthy in {restart_secs:.2} s; {repaired} WAVs repaired; {}",
        verify.trim().lines().last().unwrap_or_default()
    );
    // Shown only when the test fails (the harness captures it otherwise).
    eprintln!("[e2e] restarted server log tail:\n{}", tail(&log, 40));
    checks.finish();
    let _ = Command::new("kill")
        .args(["-TERM", &restarted.pid().to_string()])
        .status();
    let _ = restarted.wait_for(Duration::from_secs(10));
}
