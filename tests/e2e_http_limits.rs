//! The web must never starve the phone line (issue 15 item 2). The attack: idle TCP connections
//! to the admin port, more than the process has file descriptors, then a call. Before the fix
//! `axum::serve` accepted every one until `accept` failed with EMFILE, and the call got 503
//! "no free RTP port". Now HTTP holds at most its share of the open-file limit (the rest of the
//! flood waits in the kernel's backlog), so the call is answered, the IVR collects the keys and
//! the message is recorded (an RTP socket pair and a file, all needing descriptors).
//!
//! The server runs with a small open-file limit (512) so the flood stays small (700 sockets on
//! loopback). A second test shows a slow client (half a request head) is closed by the server.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

const OPEN_FILES: u64 = 512;
const FLOOD: usize = 700;

#[test]
fn idle_http_connections_beyond_the_fd_limit_do_not_stop_a_call() {
    let server = Server::start(
        "http-flood",
        ServerOptions {
            open_files: Some(OPEN_FILES),
            rtp_ports: 40,
            extra_sip: "max_tcp_connections = 16".into(),
            // Long timeouts: the flood holds its connections for the whole call, so only the cap protects SIP.
            extra_http: "header_read_timeout_secs = 300\nidle_timeout_secs = 300".into(),
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let budget = server
        .log()
        .lines()
        .find(|l| l.contains("file descriptor budget"))
        .unwrap_or_default()
        .to_string();
    eprintln!("[e2e] {budget}");

    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        match TcpStream::connect_timeout(&server.http, Duration::from_secs(2)) {
            Ok(s) => flood.push(s),
            Err(_) => break,
        }
    }
    eprintln!(
        "[e2e] {} idle HTTP connections open (server open-file limit {OPEN_FILES})",
        flood.len()
    );
    checks.check(flood.len() as u64 > OPEN_FILES, || {
        format!(
            "only {} connections opened; the flood must exceed the fd limit",
            flood.len()
        )
    });

    // The call: SIP INFO keys `2` then `#`, a recorded message, OnCall hangs up.
    let run = Sipp::new(&server, "uac_info_dtmf.xml", "sipp-during-flood")
        .limit(Duration::from_secs(40))
        .run();
    checks.check(run.success(), || {
        format!("the call during the HTTP flood failed: {}", run.describe())
    });
    let statuses = run.received_statuses();
    checks.check(statuses.iter().any(|s| s.starts_with("200")), || {
        format!("INVITE not answered 200: {statuses:?}")
    });
    checks.check(!statuses.iter().any(|s| s.starts_with("503")), || {
        format!("503 during the flood: {statuses:?}")
    });

    // The flood leaves; the site answers again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut health = None;
    while Instant::now() < deadline {
        health = http_get(server.http, "/healthz").map(|(s, _)| s);
        if health == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    checks.check(health == Some(200), || format!("/healthz after the flood: {health:?}"));

    match server.wait_for_call(Duration::from_secs(10), |r| !field(r, "ended_at").is_empty()) {
        Ok(row) => {
            eprintln!("[e2e] call row: {row}");
            checks.check(field(&row, "digits") == "2#", || {
                format!("digits {:?}, expected \"2#\" (the IVR ran)", field(&row, "digits"))
            });
            let path = field(&row, "recording_path");
            checks.check(!path.is_empty() && std::path::Path::new(path).is_file(), || {
                format!("no recording on disk ({path:?})")
            });
        }
        Err(rows) => checks.fail(format!("no ended call row: {rows:#?}")),
    }
    let log = server.log();
    checks.check(
        !log.contains("Too many open files") && !log.contains("os error 24"),
        || format!("the server ran out of files:\n{}", tail(&log, 40)),
    );
    checks.check(log.contains("HTTP connection limit reached"), || {
        "the HTTP cap was never reached (was the flood served?)".into()
    });
    checks.finish();
}

#[test]
fn a_slow_request_head_and_a_silent_connection_are_closed_by_the_server() {
    let server = Server::start(
        "http-slow-head",
        ServerOptions {
            extra_http: "header_read_timeout_secs = 2\nidle_timeout_secs = 60".into(),
            ..ServerOptions::default()
        },
    );
    let mut slow = TcpStream::connect(server.http).expect("connect");
    let mut silent = TcpStream::connect(server.http).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: oncall\r\nX-Slow: ")
        .expect("half a head");
    // Ends only because the server closes the connection (EOF or reset); the read timeout is a test safety net.
    for (name, s) in [("slow head", &mut slow), ("silent", &mut silent)] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{name} connection was not closed by the server: {e}"),
        }
        eprintln!(
            "[e2e] {name} connection closed by the server ({} bytes answered)",
            buf.len()
        );
        assert!(
            !String::from_utf8_lossy(&buf).contains("200 OK"),
            "{name}: the incomplete request was served"
        );
    }
    // A client that sends its request at once is served as before.
    assert_eq!(http_get(server.http, "/healthz").map(|(s, _)| s), Some(200));
}
