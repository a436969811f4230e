//! Signalling outside the happy path, with real peers: a caller that cancels while OnCall rings, an offer OnCall
//! cannot speak (G.729 only), and a keep-alive OPTIONS from sipsak.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

#[test]
fn cancel_before_answer_gets_487_and_stores_no_message() {
    // Ring 3 s before answering; the scenario cancels after 0.5 s of ringing.
    let server = Server::start(
        "cancel",
        ServerOptions {
            answer_after_ms: 3000,
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();
    let run = Sipp::new(&server, "uac_cancel.xml", "sipp-cancel")
        .limit(Duration::from_secs(20))
        .run();
    let statuses = run.received_statuses();
    eprintln!("[e2e] responses to the cancelled INVITE: {statuses:?}");
    checks.check(run.success(), || run.describe());
    checks.check(statuses.iter().any(|s| s.starts_with("487")), || {
        format!("no 487 for the INVITE: {statuses:?}")
    });
    // 200 for the CANCEL only: the INVITE is never answered (the scenario waits past the 3 s answer timer).
    checks.check(statuses.iter().filter(|s| s.starts_with("200")).count() == 1, || {
        format!("expected exactly one 200 (for the CANCEL), got {statuses:?}")
    });

    let rows = server.calls();
    eprintln!("[e2e] calls after the CANCEL: {rows:?}");
    checks.check(rows.len() <= 1, || {
        format!("one cancelled INVITE produced {} call rows", rows.len())
    });
    for row in &rows {
        checks.check(field(row, "answered_at").is_empty(), || {
            format!("cancelled call has answered_at: {row}")
        });
        checks.check(field(row, "recording_path").is_empty(), || {
            format!("cancelled call has a recording: {row}")
        });
    }
    let recordings = server.recordings();
    checks.check(recordings.is_empty(), || {
        format!("a cancelled call left recordings: {recordings:?}")
    });
    checks.finish();
}

#[test]
fn g729_only_offer_is_refused_with_488() {
    let server = Server::start("g729", ServerOptions::default());
    let run = Sipp::new(&server, "uac_g729_only.xml", "sipp-g729")
        .limit(Duration::from_secs(15))
        .run();
    let statuses = run.received_statuses();
    eprintln!("[e2e] responses to the G.729-only INVITE: {statuses:?}");
    run.assert_success();
    assert!(
        statuses.iter().any(|s| s.starts_with("488")),
        "no 488: {statuses:?}\n{}",
        run.describe()
    );
    assert!(
        !statuses.iter().any(|s| s.starts_with("200")),
        "a G.729-only offer was answered: {statuses:?}"
    );
    // The refused INVITE must not leave a recording behind.
    assert!(
        server.recordings().is_empty(),
        "recordings after a refused call: {:?}",
        server.recordings()
    );
}

#[test]
fn sipsak_options_gets_200() {
    let server = Server::start("options", ServerOptions::default());
    require_tool("sipsak");
    // -vv prints the reply; -H puts 127.0.0.1 rather than the host name in Via/Contact. sipsak exits 0 on a 2xx.
    let uri = format!("sip:oncall@{}", server.sip_udp);
    let out = run_for(
        Command::new("sipsak").args(["-vv", "-H", LOOPBACK, "-s", &uri]),
        Duration::from_secs(15),
        &server.dir.path,
        "sipsak",
    );
    eprintln!("[e2e] sipsak: {}", tail(&out.stdout, 12));
    assert!(
        out.success(),
        "sipsak OPTIONS {uri} did not get a 2xx: {}",
        out.describe()
    );
    assert!(
        out.stdout.contains("SIP/2.0 200"),
        "no `SIP/2.0 200` in sipsak's output: {}",
        out.describe()
    );
}
