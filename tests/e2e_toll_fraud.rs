//! Toll fraud (issue #15 item 4), over the wire: with no `allowed_sources` and no rate configured, OnCall used to
//! accept every call from anyone (`calls_per_second_per_source = 0`): 150 of 150 anonymous calls at 50/s got
//! through, each one able to page someone by trunk call and text. Here the same SIPp flood meets the defaults (5 calls
//! per second per source, burst 20): the excess is refused with 503 and Retry-After and counted in
//! `oncall_calls_rejected_total`. A PBX listed in a trunk's `allowed_sources` (it carries many callers, like
//! Kamailio in front) is not limited by default: the same 150 calls at 50/s from it are all answered.
//!
//! `a_premium_number_already_stored_is_not_dialled_through_the_trunk`: a manager's number is changed to `+882…` in
//! the database behind OnCall's back (a contact saved before the dial plan existed); a caller leaves a page message;
//! the trunk (a UDP socket standing in for the carrier) gets no INVITE, the request's log says why, and the escalation
//! moves straight on to the next step, whose SIP phone (another socket) gets the INVITE.
//!
//! The dial plan table and the page cap are unit-tested: `core/src/dial_plan.rs`, `core/src/page_cap.rs` (virtual
//! clock), the store (`the_store_refuses_to_save_a_denied_number`), the web form (`web-admin/tests/handlers.rs`) and
//! the paging task (`paging/src/escalations.rs`, also requests beyond `[paging] max_pages_per_hour`).

mod support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// The defaults in `src/config.rs` (`[sip] calls_per_second_per_source`, `call_burst_per_source`).
const RATE: f64 = 5.0;
const BURST: f64 = 20.0;
/// The attack of the report: 150 calls at 50 per second.
const CALLS: u32 = 150;
const CPS: u32 = 50;

/// (INVITEs sent, 503 received, 200 received to the INVITE) of a finished `uac_flood.xml` run.
fn counts(run: &SippRun) -> (u64, u64, u64) {
    let count = |msg: &str, arrow: &str| run.screen_counts(msg, arrow).first().copied().unwrap_or(0);
    (
        count("INVITE", "---------->"),
        count("503", "<----------"),
        count("200", "<----------"),
    )
}

#[test]
fn an_anonymous_flood_meets_the_default_per_source_limit() {
    // Room for the calls accepted at once, so that no 503 is for lack of RTP ports.
    let server = Server::start(
        "toll-flood",
        ServerOptions {
            rtp_ports: 200,
            ..ServerOptions::default()
        },
    );
    let started = Instant::now();
    let flood = Sipp::new(&server, "uac_flood.xml", "sipp-anonymous")
        .load(CPS, CALLS, CALLS)
        .limit(Duration::from_secs(30))
        .run();
    let secs = started.elapsed().as_secs_f64();
    let (sent, refused, accepted) = counts(&flood);
    let rejected_metric = http_get(server.http, "/metrics")
        .and_then(|(_, page)| metric(&page, "oncall_calls_rejected_total"))
        .unwrap_or(-1.0);
    let allowed = BURST + RATE * secs;
    eprintln!(
        "[e2e] {sent} anonymous INVITEs from 127.0.0.1 in {secs:.1} s: {accepted} answered (the bucket allows {allowed:.0}), \
         {refused} refused with 503; oncall_calls_rejected_total {rejected_metric}"
    );
    let mut checks = Checks::default();
    checks.check(sent == CALLS as u64, || {
        format!("SIPp sent {sent} of {CALLS} INVITEs:\n{}", flood.describe())
    });
    // The bucket's own bound, from the time the flood really took (no timing threshold of our own).
    checks.check(accepted as f64 <= allowed + 1.0 && accepted >= BURST as u64, || {
        format!(
            "{accepted} calls answered; the default limit allows {allowed:.0} in {secs:.1} s:\n{}",
            flood.describe()
        )
    });
    checks.check(accepted + refused == sent, || {
        format!(
            "{} INVITEs got neither 200 nor 503:\n{}",
            sent - accepted - refused,
            flood.describe()
        )
    });
    // uac_flood.xml fails a call whose 503 has no Retry-After; SIPp exits 0 only when every call passed.
    checks.check(flood.success(), || {
        format!("a 503 without Retry-After?\n{}", flood.describe())
    });
    checks.check(rejected_metric >= refused as f64, || {
        format!("oncall_calls_rejected_total is {rejected_metric}, {refused} were refused")
    });
    checks.finish();
}

#[test]
fn a_trusted_pbx_is_not_limited_by_default() {
    let server = Server::start(
        "toll-trusted",
        ServerOptions {
            rtp_ports: 200,
            ..options_with_trunks("[[trunks]]\nname = \"pbx\"\nregister = false\nallowed_sources = [\"127.0.0.2\"]\n")
        },
    );
    let run = Sipp::new(&server, "uac_flood.xml", "sipp-pbx")
        .from_ip("127.0.0.2")
        .load(CPS, CALLS, CALLS)
        .limit(Duration::from_secs(30))
        .run();
    let (sent, refused, accepted) = counts(&run);
    eprintln!("[e2e] {sent} INVITEs from the PBX on 127.0.0.2 at {CPS}/s: {accepted} answered, {refused} refused");
    assert!(
        sent == CALLS as u64 && accepted == sent && refused == 0 && run.success(),
        "the listed PBX was limited:\n{}",
        run.describe()
    );
}

/// The INVITEs that arrive at `sock` until one does or `limit` passes (its Request-URI lines).
fn invites(sock: &UdpSocket, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 65536];
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("INVITE ") {
                got.push(text.lines().next().unwrap_or("").to_string());
            }
        }
    }
    got
}

/// The INVITEs already waiting at `sock` (read without waiting).
fn pending_invites(sock: &UdpSocket) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65536];
    let mut got = Vec::new();
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("INVITE ") {
            got.push(text.lines().next().unwrap_or("").to_string());
        }
    }
    got
}

fn sqlite(server: &Server, sql: &str) -> String {
    let db = server.data_dir.join("oncall.db");
    let out = Command::new("sqlite3").arg(&db).arg(sql).output().expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_premium_number_already_stored_is_not_dialled_through_the_trunk() {
    let trunk = UdpSocket::bind("127.0.0.1:0").expect("bind the fake trunk");
    let phone = UdpSocket::bind("127.0.0.1:0").expect("bind the SIP phone");
    let server = Server::start(
        "toll-dial-plan",
        ServerOptions {
            extra_config: format!(
                "[[trunks]]\nname = \"carrier\"\nregister = false\nregistrar = \"{}\"\nusername = \"acme\"\npassword = \"secret\"\n\n\
                 [paging]\nenabled = true\nmax_hold_secs = 0\n",
                trunk.local_addr().unwrap()
            ),
            ..ServerOptions::default()
        },
    );
    let work = server.dir.subdir("peers");
    server.oncall(&[
        "person",
        "add",
        "--name",
        "Mallory",
        "--email",
        "mallory@example.test",
        "--role",
        "manager",
        "--phone",
        "+44 20 7946 0100",
    ]);
    let refused = Command::new(env!("CARGO_BIN_EXE_oncall"))
        .args([
            "person",
            "add",
            "--name",
            "Eve",
            "--email",
            "eve@example.test",
            "--phone",
            "+882 1234 5678",
            "--config",
        ])
        .arg(&server.config_path)
        .output()
        .expect("run oncall person add");
    let refusal = String::from_utf8_lossy(&refused.stderr).into_owned();
    eprintln!("[e2e] oncall person add --phone +882 1234 5678: {}", refusal.trim());
    let mut checks = Checks::default();
    checks.check(
        !refused.status.success() && refusal.contains("International Networks"),
        || format!("the CLI saved a +882 contact: {refusal}"),
    );
    // Behind OnCall's back, as a contact saved before the dial plan existed would be.
    sqlite(
        &server,
        "UPDATE contact_methods SET address = '+88212345678' WHERE kind = 'phone'",
    );
    let uri = format!("sip:erin@{}", phone.local_addr().unwrap());
    server.oncall(&[
        "person",
        "add",
        "--name",
        "Erin",
        "--email",
        "erin@example.test",
        "--sip-uri",
        &uri,
    ]);
    server.oncall(&[
        "policy",
        "add",
        "--name",
        "Front desk",
        "--person",
        "mallory@example.test",
        "--person",
        "erin@example.test",
        "--wait-secs",
        "60",
    ]);

    leave_page_message(&server, &work, "The boiler is leaking.");
    // Erin is the second step (Mallory's step waits 60 s): her INVITE now means Mallory's was skipped at once, and
    // an INVITE to the trunk for Mallory would have been sent before it, so it would be waiting at the socket.
    let erin = invites(&phone, Duration::from_secs(20));
    let at_trunk = pending_invites(&trunk);
    let log = sqlite(
        &server,
        "SELECT kind || ': ' || detail FROM request_events WHERE kind = 'dial_plan'",
    );
    eprintln!(
        "[e2e] Erin's phone got {erin:?}; the trunk got {at_trunk:?}; the request's log: {}",
        log.trim()
    );
    checks.check(erin.len() == 1, || {
        format!(
            "Erin's phone got no INVITE (the escalation did not move on):\n{}",
            server.log_tail(40)
        )
    });
    checks.check(at_trunk.is_empty(), || {
        format!("the +882 number was dialled through the trunk: {at_trunk:?}")
    });
    checks.check(
        log.contains("+88212345678 (person-1) not called") && log.contains("International Networks"),
        || format!("the request's log does not say why: {log:?}\n{}", server.log_tail(40)),
    );
    checks.finish();
}
