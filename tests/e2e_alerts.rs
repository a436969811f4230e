//! Requests from monitoring (issue 20) with a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`,
//! started on loopback with a webhook receiver pointing at OnCall, its key from `oncall integration add`).
//!
//! `an_alertmanager_alert_pages_and_its_resolution_completes_the_request`: 100 alerts posted to Alertmanager's
//! API in one group open one request; Erin's registered baresip is paged once and hears "new request" and the
//! alert's summary spoken (espeak-ng in OnCall; the test renders the same sentence and finds it in what she
//! heard), presses 1 and the request is acknowledged; the alerts resolved in Alertmanager complete the request.
//!
//! `a_missed_heartbeat_opens_a_request_and_the_next_beat_resolves_it` (a 2 s heartbeat monitor) and
//! `an_alert_mail_opens_a_request_and_an_unknown_key_is_refused_at_rcpt` (swaks against the `[email]` listener).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const SUMMARY: &str = "Disk almost full on the database server";

/// Alertmanager on loopback (no cluster port), sending every group to OnCall's receiver with `key`.
fn start_alertmanager(dir: &Path, oncall: SocketAddr, key: &str) -> (Spawned, SocketAddr) {
    let bin = require_tool("prometheus-alertmanager");
    let port = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: oncall\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n- name: oncall\n  webhook_configs:\n  - url: http://{oncall}/api/v1/alerts/alertmanager\n    send_resolved: true\n\
             \x20   http_config:\n      authorization:\n        credentials: {key}\n"
        ),
    )
    .unwrap();
    let storage = dir.join("alertmanager-data");
    std::fs::create_dir_all(&storage).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address={LOOPBACK}:{port}"))
        .arg("--cluster.listen-address=");
    let am = Spawned::spawn(&mut cmd, dir, "alertmanager");
    let addr: SocketAddr = format!("{LOOPBACK}:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(addr, "/-/ready").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "Alertmanager did not get ready:\n{}", tail(&am.stderr_text(), 30));
        thread::sleep(Duration::from_millis(200));
    }
    (am, addr)
}

/// Posts `alerts` DiskFull alerts (one per instance) to Alertmanager's API; `resolved` sets them ended.
fn post_alerts(am: SocketAddr, alerts: usize, resolved: bool) {
    let ends = if resolved { ", \"endsAt\": \"2020-01-01T00:00:00Z\"" } else { "" };
    let list: Vec<String> = (0..alerts)
        .map(|i| format!("{{\"labels\": {{\"alertname\": \"DiskFull\", \"instance\": \"db{i}\"}}, \"annotations\": {{\"summary\": \"{SUMMARY}\"}}{ends}}}"))
        .collect();
    let body = format!("[{}]", list.join(","));
    let answer = http_post(am, "/api/v2/alerts", "application/json", &[], &body);
    assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "Alertmanager refused the alerts: {answer:?}");
}

#[test]
fn an_alertmanager_alert_pages_and_its_resolution_completes_the_request() {
    let server = Server::start(
        "alerts-am",
        ServerOptions {
            extra_config: "[paging]\nenabled = true\nkey_timeout_secs = 8\nspeech_voice = \"en-us\"\n\n[registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\n".into(),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    server.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", "+441632960001"]);
    server.oncall(&["person", "sip-account", "erin@example.test", "--username", "erin", "--password", "desk-phone-7"]);
    server.oncall(&["policy", "add", "--name", "Ops", "--person", "erin@example.test", "--wait-secs", "60"]);
    let out = server.oncall(&["integration", "add", "--name", "Alertmanager", "--policy", "Ops"]);
    let key = out.split("key ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("integration add printed {out:?}")).to_string();

    let mic = silence_wav_secs(&work, 90);
    let sip = server.sip_udp;
    let mut erin = Baresip::start_with_account(&work.join("erin"), &mic, Duration::from_secs(90), move |_| {
        format!("<sip:erin@{sip};transport=udp>;auth_pass=desk-phone-7;regint=60;answermode=auto\n")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("device registered username=erin") {
        assert!(Instant::now() < deadline, "Erin's phone did not register:\n{}", server.log_tail(30));
        thread::sleep(Duration::from_millis(100));
    }

    let (mut am, am_addr) = start_alertmanager(&work, server.http, &key);
    post_alerts(am_addr, 100, false);
    let Some((established, _)) = erin.wait_event("CALL_ESTABLISHED", Duration::from_secs(20)) else {
        panic!("Erin was not paged for the alert:\n{}\n{}", server.log_tail(40), tail(&am.stderr_text(), 20));
    };
    let requests = server.requests();
    checks.check(requests.len() == 1, || format!("100 alerts in one group should open one request: {requests:#?}"));
    // "New request", the summary, then the keys.
    let spoken = speech_wav(&work, "summary", SUMMARY);
    sleep_until(established + Duration::from_secs_f64(prompt_secs("new_request") + read_wav(&spoken).secs() + prompt_secs("press_1_talk") + 0.5));
    erin.command("sndcode", "1");
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => checks.check(field(&row, "caller") == "Alertmanager", || format!("the request's caller: {row}")),
        Err(rows) => checks.fail(format!("the alert's request was not acknowledged after 1: {rows:#?}")),
    }
    erin.command("hangup", "");
    thread::sleep(Duration::from_secs(1));
    checks.check(server.log().matches("paging a registered phone").count() == 1, || "the group should page Erin once".into());

    post_alerts(am_addr, 100, true);
    match server.wait_for_request(Duration::from_secs(15), |r| field(r, "status") == "completed") {
        Ok(row) => eprintln!("[e2e] after the alerts resolved: {row}"),
        Err(rows) => checks.fail(format!("resolving the alerts in Alertmanager did not complete the request: {rows:#?}\n{}", tail(&am.stderr_text(), 20))),
    }
    am.kill();
    erin.quit();

    // What Erin heard after "new request" is the summary, spoken.
    match erin.heard_wav() {
        None => checks.fail("Erin's baresip wrote no dump of what it heard"),
        Some(path) => {
            let (at, corr, level) = find_speech(&read_wav(&path).samples, prompt_secs("new_request"), 8.0, &spoken);
            eprintln!("[e2e] after \"new request\" Erin heard {level:.1} dBFS; the summary found {at:.2} s in, correlation {corr:.3}");
            checks.check(level > -40.0, || format!("Erin heard silence after \"new request\" ({level:.1} dBFS)"));
            checks.check(corr > 0.5, || format!("what Erin heard after \"new request\" is not the spoken summary (best correlation {corr:.2})"));
        }
    }
    checks.finish();
}

/// A heartbeat monitor once for real, with a 2 s interval: a beat is taken, the missed next one opens a request
/// within the check interval, and the next beat completes it. A key that is no heartbeat gets 400, a wrong one 403.
#[test]
fn a_missed_heartbeat_opens_a_request_and_the_next_beat_resolves_it() {
    let server = Server::start("alerts-heartbeat", ServerOptions { extra_config: "[paging]\nenabled = false\n".into(), ..ServerOptions::default() });
    let mut checks = Checks::default();
    let out = server.oncall(&["integration", "add", "--name", "Nightly backup", "--heartbeat-secs", "2"]);
    let key = out.split("key ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("integration add printed {out:?}")).to_string();
    let plain = server.oncall(&["integration", "add", "--name", "Script"]);
    let plain = plain.split("key ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or("").to_string();
    let beat = |key: &str| http_post(server.http, "/api/v1/heartbeat", "text/plain", &[("Authorization", &format!("Bearer {key}"))], "").map(|r| r.0);
    checks.check(beat(&key) == Some(200), || "the first beat".into());
    checks.check(beat(&plain) == Some(400), || "a key that is no heartbeat should get 400".into());
    checks.check(beat("oci_wrong") == Some(403), || "a wrong key should get 403".into());
    let missed = server.wait_for_request(Duration::from_secs(15), |r| field(r, "caller") == "Nightly backup");
    match &missed {
        Ok(row) => {
            eprintln!("[e2e] missed heartbeat: {row}");
            checks.check(field(row, "status") == "received" && field(row, "summary").starts_with("No heartbeat from Nightly backup"), || format!("{row}"));
        }
        Err(rows) => checks.fail(format!("no request after the missed beat: {rows:#?}\n{}", server.log_tail(20))),
    }
    checks.check(beat(&key) == Some(200), || "the beat after".into());
    match server.wait_for_request(Duration::from_secs(5), |r| field(r, "caller") == "Nightly backup" && field(r, "status") == "completed") {
        Ok(_) => {}
        Err(rows) => checks.fail(format!("the next beat did not complete the request: {rows:#?}")),
    }
    checks.finish();
}

/// Alerts by e-mail with a real SMTP client (swaks): a message to `<key>@domain` opens a request whose summary
/// is its subject; the same subject again counts on it; an unknown key is refused at RCPT and opens nothing.
#[test]
fn an_alert_mail_opens_a_request_and_an_unknown_key_is_refused_at_rcpt() {
    let swaks = require_tool("swaks");
    let port = free_port();
    let server = Server::start(
        "alerts-mail",
        ServerOptions {
            extra_config: format!("[paging]\nenabled = false\n\n[email]\nenabled = true\nlisten = \"{LOOPBACK}:{port}\"\ndomain = \"alerts.oncall.test\"\n"),
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let out = server.oncall(&["integration", "add", "--name", "Nagios mail"]);
    let key = out.split("key ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("integration add printed {out:?}")).to_string();
    let local = key.trim_start_matches("oci_").to_string();
    let send = |to: &str, label: &str| {
        let mut cmd = Command::new(&swaks);
        cmd.args(["--server", &format!("{LOOPBACK}:{port}"), "--from", "nagios@example.test", "--to", to])
            .args(["--header", "Subject: PROBLEM: web1 is DOWN", "--body", "Host web1 stopped answering pings.", "--timeout", "10"]);
        run_for(&mut cmd, Duration::from_secs(20), &server.dir.path, label)
    };
    for n in 1..=2 {
        let sent = send(&format!("{local}@alerts.oncall.test"), &format!("swaks-{n}"));
        checks.check(sent.success(), || format!("swaks to the key's address: {}", sent.describe()));
    }
    match server.wait_for_request(Duration::from_secs(5), |r| field(r, "caller") == "Nagios mail") {
        Ok(row) => {
            eprintln!("[e2e] alert mail: {row}");
            checks.check(field(&row, "summary") == "PROBLEM: web1 is DOWN" && row["alert_count"] == 2, || format!("one request counting both mails: {row}"));
        }
        Err(rows) => checks.fail(format!("no request from the mail: {rows:#?}\n{}", server.log_tail(20))),
    }
    let before = server.requests().len();
    let refused = send(&format!("{}@alerts.oncall.test", "0".repeat(64)), "swaks-unknown");
    let said = format!("{}{}", refused.stdout, refused.stderr);
    checks.check(!refused.success() && said.contains("<** 550"), || format!("an unknown key should be refused at RCPT: {}", refused.describe()));
    checks.check(server.requests().len() == before, || "the refused mail opened a request".into());
    checks.finish();
}
