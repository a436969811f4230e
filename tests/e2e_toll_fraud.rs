//! Toll fraud (issue #15 item 4), over the wire: with no `allowed_sources` and no rate configured, OnCall used to
//! accept every call from anyone (`calls_per_second_per_source = 0`): 150 of 150 anonymous calls at 50/s got
//! through, each one able to page someone by trunk call and text. Here the same SIPp flood meets the defaults (5 calls
//! per second per source, burst 20): the excess is refused with 503 and Retry-After and counted in
//! `oncall_calls_rejected_total`. A PBX listed in a trunk's `allowed_sources` (it carries many callers, like
//! Kamailio in front) is not limited by default: the same 150 calls at 50/s from it are all answered.
//!
//! The dial plan and the page cap are tested without a network: `core/src/dial_plan.rs`, `core/src/page_cap.rs`,
//! the store (`the_store_refuses_to_save_a_denied_number`), the web form (`web-admin/tests/handlers.rs`) and the
//! paging task (`src/paging.rs`, a `+882` contact already stored never becomes a trunk INVITE).

mod support;

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
