//! Webhooks end to end (issue 7): a SIPp caller leaves a message (request opened), a manager
//! acknowledges and completes it, and an HTTP receiver in this test gets every event exactly once,
//! signed with the webhook's secret, even though it refused connections at first and then
//! answered 500 twice: the server's sender retries with backoff and loses nothing.
//!
//! The webhooks are added, and the request acknowledged and completed, through the store on the
//! running server's SQLite database (what the web pages do); the sender only ever sees the
//! database, which is the point of its design (any instance may send, issue 10).
//!
//! Issue #15: the receiver is on 127.0.0.1, which the sender refuses unless the operator allows it
//! (`[webhooks] allow_private`); the second test stores loopback and metadata-service URLs
//! directly in the database of a server without that allowance and sees none of them connected.

mod support;

use oncall_core::webhook::{self, Format, NewWebhook, WebhookEvent};
use oncall_core::{Actor, NewRequest, Store, Timestamp};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const SECRET: &str = "whsec_e2e-test-secret-0123456789";
const SLACK_SECRET: &str = "whsec_e2e-slack-secret-987654321";

/// One POST the receiver read, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: u16,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1: answers 500 to the first `fail_first` POSTs, then
/// 204; one request per connection (`Connection: close`). Stops when the test ends.
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(listener: TcpListener, fail_first: u32) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicU32::new(fail_first));
        let sink = got.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let fail = failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let answered = if fail { 500 } else { 204 };
                let reason = if fail { "Internal Server Error" } else { "No Content" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.flush();
                sink.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                    answered,
                    at: Instant::now(),
                });
            }
        });
        Receiver { got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_request_event_reaches_the_receiver_once_signed_despite_an_outage() {
    let server = Server::start(
        "webhooks",
        ServerOptions {
            // Fast retries so the outage spans several attempts: 300 ms, 600 ms, then every second.
            // The receiver is on loopback, which only the operator's allow-list opens (issue #15).
            extra_config: "[webhooks]\npoll_interval_ms = 100\nretry_initial_ms = 300\nretry_max_secs = 1\nmax_attempts = 0\ntimeout_secs = 3\nallow_private = [\"127.0.0.1/32\"]\n".into(),
            ..ServerOptions::default()
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", server.data_dir.join("oncall.db").display());
    let store = rt.block_on(Store::connect(&db)).expect("open the server's database");
    let org = rt
        .block_on(store.default_organization())
        .unwrap()
        .expect("the server made its organization");

    // Nothing listens on the receiver's port yet: connections are refused.
    let port = free_port();
    let hook = |path: &str| format!("http://{LOOPBACK}:{port}{path}");
    let (json_hook, _) = rt
        .block_on(store.create_webhook(
            org.id,
            &NewWebhook {
                name: "Script".into(),
                url: hook("/hook"),
                secret: Some(SECRET.into()),
                ..NewWebhook::default()
            },
            Timestamp::now(),
        ))
        .unwrap();
    let (slack_hook, _) = rt
        .block_on(store.create_webhook(
            org.id,
            &NewWebhook {
                name: "Chat".into(),
                url: hook("/slack"),
                format: Format::Slack,
                events: vec![WebhookEvent::Completed],
                secret: Some(SLACK_SECRET.into()),
            },
            Timestamp::now(),
        ))
        .unwrap();

    // A caller presses 1 and leaves a message: the request is opened.
    let run = Sipp::new(&server, "../../bench/scenarios/ivr_message.xml", "caller")
        .limit(Duration::from_secs(60))
        .run();
    run.assert_success();
    let request = wait_until(Duration::from_secs(15), "the caller's request", || {
        rt.block_on(store.list_requests(org.id, 10)).unwrap().into_iter().next()
    });
    eprintln!("[e2e] request {} opened by the call", request.id);
    // Issue #15: the caller's message and every folder above it are closed to other local users.
    // (The database's mode is checked in the store's tests: this test's own connection would
    // tighten it anyway.)
    {
        use std::os::unix::fs::PermissionsExt;
        let recordings = server.recordings();
        assert!(recordings.iter().any(|p| p.extension().is_some_and(|e| e == "wav")), "{recordings:?}");
        for file in &recordings {
            let mut p = file.as_path();
            loop {
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & 0o007, 0, "{} is {mode:o}", p.display());
                if p == server.data_dir {
                    break;
                }
                p = p.parent().expect("below the data folder");
            }
        }
    }
    // A manager takes it and finishes it (what the Requests page does).
    rt.block_on(store.acknowledge(org.id, request.id, Actor::System, Timestamp::now()))
        .unwrap();
    rt.block_on(store.complete(org.id, request.id, Actor::System, Timestamp::now()))
        .unwrap();

    // While the receiver is down, the first delivery is tried again and again (the others of the
    // same request wait behind it, so they arrive in order).
    let refused = wait_until(Duration::from_secs(20), "three refused attempts", || {
        let log = rt.block_on(store.webhook_attempts(org.id, json_hook, 50)).unwrap();
        (log.len() >= 3).then_some(log)
    });
    // The tenant sees that it failed, not how (the OS error would map the server's network).
    assert!(
        refused.iter().all(|a| a.status_code.is_none() && a.error.as_deref() == Some("could not connect")),
        "{refused:#?}"
    );
    assert!(server.log().contains("Connection refused"), "the operator's log has the detail");
    assert!(
        refused.iter().all(|a| a.event == WebhookEvent::Created),
        "later events wait for the first: {refused:#?}"
    );
    eprintln!(
        "[e2e] receiver down: {} attempts failed, e.g. {:?}",
        refused.len(),
        refused[0].error
    );

    // The receiver comes up, answers 500 twice, then accepts.
    let listener = TcpListener::bind((LOOPBACK, port)).expect("bind the receiver's port");
    let up_at = Instant::now();
    let receiver = Receiver::start(listener, 2);
    let accepted = |r: &Vec<Received>| r.iter().filter(|x| x.answered == 204).count();
    wait_until(
        Duration::from_secs(30),
        "four accepted deliveries (three JSON, one Slack)",
        || {
            let r = receiver.received();
            (accepted(&r) >= 4).then_some(())
        },
    );
    // Anything sent twice would show up within a few more polls.
    thread::sleep(Duration::from_secs(3));
    let got = receiver.received();
    let mut checks = Checks::default();

    let mut delivered: Vec<(String, i64)> = Vec::new();
    for r in &got {
        let secret = if r.path == "/slack" { SLACK_SECRET } else { SECRET };
        // What a receiver does (docs/webhooks.md): the MAC covers "<t>.<body>" and t is recent.
        let now = Timestamp::now().0 / 1000;
        let signature = r.header("x-oncall-signature");
        checks.check(
            webhook::verify_signature(secret, &r.body, signature, now).is_ok()
                && signature.starts_with(&format!("t={},v1=", r.header("x-oncall-timestamp"))),
            || {
                format!(
                    "bad signature {:?} on {} {}",
                    r.header("x-oncall-signature"),
                    r.path,
                    String::from_utf8_lossy(&r.body)
                )
            },
        );
        let sent: i64 = r.header("x-oncall-timestamp").parse().unwrap_or(0);
        checks.check((now - 120..=now + 1).contains(&sent), || {
            format!("X-OnCall-Timestamp {sent} is not about now ({now})")
        });
        checks.check(r.header("content-type") == "application/json", || {
            format!("content type {:?}", r.header("content-type"))
        });
        if r.answered != 204 {
            continue;
        }
        let v = r.json();
        if r.path == "/slack" {
            let text = v["text"].as_str().unwrap_or("");
            checks.check(
                v.as_object().is_some_and(|o| o.len() == 1)
                    && text.contains(&format!("Request #{}", request.id.0))
                    && text.contains("completed"),
                || format!("Slack body {v}"),
            );
            delivered.push(("slack".into(), 0));
            continue;
        }
        checks.check(
            v["event"] == r.header("x-oncall-event")
                && v["request"]["id"] == request.id.0
                && v["organization"]["id"] == org.id.0,
            || format!("JSON body {v} with headers {:?}", r.headers),
        );
        checks.check(r.at >= up_at, || "accepted before the receiver was up?".into());
        delivered.push((
            v["event"].as_str().unwrap_or("?").to_string(),
            v["id"].as_i64().unwrap_or(-1),
        ));
    }
    // The JSON webhook's events arrive in order; the Slack webhook's one delivery may land anywhere among them.
    let json_events: Vec<&str> = delivered
        .iter()
        .map(|(e, _)| e.as_str())
        .filter(|e| *e != "slack")
        .collect();
    checks.check(
        json_events == ["request.created", "request.acknowledged", "request.completed"],
        || format!("accepted JSON deliveries, in order: {json_events:?}"),
    );
    let slack_count = delivered.iter().filter(|(e, _)| e == "slack").count();
    checks.check(slack_count == 1, || {
        format!("{slack_count} Slack deliveries accepted, expected 1")
    });
    let mut ids: Vec<i64> = delivered
        .iter()
        .filter(|(e, _)| e != "slack")
        .map(|(_, id)| *id)
        .collect();
    ids.dedup();
    checks.check(ids.len() == 3, || format!("event ids {ids:?}: each event once"));
    let failed_500 = got.iter().filter(|r| r.answered == 500).count();
    checks.check(failed_500 == 2, || format!("{failed_500} answers of 500, expected 2"));

    // The delivery log says the same.
    let counts = rt.block_on(store.webhook_delivery_counts(org.id, json_hook)).unwrap();
    checks.check(
        counts.delivered == 3 && counts.pending == 0 && counts.failed == 0,
        || format!("JSON webhook deliveries {counts:?}"),
    );
    let slack = rt.block_on(store.webhook_delivery_counts(org.id, slack_hook)).unwrap();
    checks.check(slack.delivered == 1 && slack.pending == 0, || {
        format!("Slack webhook deliveries {slack:?}")
    });
    let log = rt.block_on(store.webhook_attempts(org.id, json_hook, 200)).unwrap();
    checks.check(
        log.iter().any(|a| a.status_code == Some(500))
            || rt
                .block_on(store.webhook_attempts(org.id, slack_hook, 50))
                .unwrap()
                .iter()
                .any(|a| a.status_code == Some(500)),
        || "no 500 in the attempt logs".into(),
    );
    checks.check(log.iter().filter(|a| a.status_code == Some(204)).count() == 3, || {
        format!("log {log:#?}")
    });
    // Shown only when the test fails.
    eprintln!("server log (tail):\n{}", server.log_tail(60));
    checks.finish();
}

/// Issue #15 item 6 (SSRF): without `[webhooks] allow_private`, webhooks stored straight into the
/// database (bypassing the save-time check) for 127.0.0.1, `localhost`, an IPv4-mapped IPv6
/// loopback, the decimal form 2130706433 (which the resolver turns into 127.0.0.1) and the cloud
/// metadata service are never connected to: a listener on the loopback port sees no connection,
/// and the tenant's delivery log says only "destination not allowed".
#[test]
fn webhooks_to_loopback_or_the_metadata_service_are_never_connected_without_the_allow_list() {
    let server = Server::start(
        "webhooks-ssrf",
        ServerOptions {
            extra_config: "[webhooks]\npoll_interval_ms = 100\nretry_initial_ms = 200\nretry_max_secs = 1\nmax_attempts = 3\ntimeout_secs = 3\n".into(),
            ..ServerOptions::default()
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = format!("sqlite://{}", server.data_dir.join("oncall.db").display());
    let store = rt.block_on(Store::connect(&db)).expect("open the server's database");
    let org = rt.block_on(store.default_organization()).unwrap().expect("the server made its organization");

    // Something listens on the loopback port: any connection the sender made would be counted.
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU32::new(0));
    let counter = connections.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = write!(stream, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
    ];
    let mut hooks = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let (id, _) = rt
            .block_on(store.create_webhook(org.id, &NewWebhook { name: format!("probe {i}"), url: url.clone(), secret: Some(SECRET.into()), ..NewWebhook::default() }, Timestamp::now()))
            .unwrap();
        hooks.push((id, url));
    }
    rt.block_on(store.create_request(org.id, &NewRequest { caller: "+12125550142".into(), summary: "probe".into(), call: None }, Timestamp::now()))
        .unwrap();

    // Every webhook is tried until given up (3 attempts), each refused before any connection.
    for (id, url) in &hooks {
        let log = wait_until(Duration::from_secs(30), &format!("three attempts for {url}"), || {
            let log = rt.block_on(store.webhook_attempts(org.id, *id, 50)).unwrap();
            (log.len() >= 3).then_some(log)
        });
        eprintln!("[e2e] {url}: {:?}", log.iter().map(|a| a.error.clone()).collect::<Vec<_>>());
        assert!(
            log.iter().all(|a| a.status_code.is_none() && a.error.as_deref() == Some("destination not allowed")),
            "{url}: {log:#?}"
        );
        let counts = rt.block_on(store.webhook_delivery_counts(org.id, *id)).unwrap();
        assert_eq!((counts.delivered, counts.failed), (0, 1), "{url}: {counts:?}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the loopback listener was connected to");
    // The operator's log says which address and why.
    let log = server.log();
    for detail in ["destination 127.0.0.1 is loopback", "destination 169.254.169.254 is link-local"] {
        assert!(log.contains(detail), "server log lacks {detail:?}:\n{}", server.log_tail(40));
    }
}
