//! Per-source call admission under a flood (issue 9): with `calls_per_second_per_source = 20` and
//! `call_burst_per_source = 40`, SIPp floods OnCall from 127.0.0.1 at 1000 calls/s for 5 s (INVITE, then 200 → ACK
//! → BYE, or 503 → ACK), while a second SIPp, a "trunk" on 127.0.0.2, places 2 calls/s of half a second each. The
//! flood must be throttled (most attempts get 503, each with Retry-After, and what is accepted stays near the bucket:
//! burst + rate × duration), and the trunk, another source, must get 200 for every call. Both rates are printed.

mod support;

use std::thread;
use std::time::{Duration, Instant};
use support::*;

const RATE: f64 = 20.0;
const BURST: f64 = 40.0;
const FLOOD_CPS: u32 = 1000;
const FLOOD_SECS: u32 = 5;
const TRUNK_IP: &str = "127.0.0.2";

#[test]
fn a_flood_from_one_source_is_throttled_while_another_source_gets_through() {
    let server = Server::start(
        "flood",
        ServerOptions {
            extra_sip: format!("calls_per_second_per_source = {RATE:.1}\ncall_burst_per_source = {BURST:.1}"),
            // Room for the accepted burst (40 calls at once): with too few RTP ports the overflow gets 503 for
            // another reason than the rate limit.
            rtp_ports: 200,
            ..ServerOptions::default()
        },
    );
    let mut checks = Checks::default();

    let flood_calls = FLOOD_CPS * FLOOD_SECS;
    let trunk_calls = 2 * FLOOD_SECS;
    let started = Instant::now();
    let flood = Sipp::new(&server, "uac_flood.xml", "sipp-flood")
        .load(FLOOD_CPS, flood_calls, 400)
        .limit(Duration::from_secs(30))
        .spawn();
    // The trunk starts a moment later so that it calls while the flood is on.
    thread::sleep(Duration::from_millis(300));
    let trunk = Sipp::new(&server, "uac_flood.xml", "sipp-trunk")
        .from_ip(TRUNK_IP)
        .load(2, trunk_calls, 10)
        .arg("-d")
        .arg("500")
        .limit(Duration::from_secs(30))
        .spawn();
    let flood = flood.wait();
    let flood_secs = started.elapsed().as_secs_f64();
    let trunk = trunk.wait();
    let trunk_secs = started.elapsed().as_secs_f64() - 0.3;

    // Scenario lines: INVITE sent; 503 received; 200 received (to INVITE, then to BYE).
    let count = |run: &SippRun, msg: &str, arrow: &str, nth: usize| -> u64 {
        run.screen_counts(msg, arrow).get(nth).copied().unwrap_or(0)
    };
    let (f_sent, f_503, f_200) = (
        count(&flood, "INVITE", "---------->", 0),
        count(&flood, "503", "<----------", 0),
        count(&flood, "200", "<----------", 0),
    );
    let (t_sent, t_503, t_200) = (
        count(&trunk, "INVITE", "---------->", 0),
        count(&trunk, "503", "<----------", 0),
        count(&trunk, "200", "<----------", 0),
    );
    let accepted_limit = BURST + RATE * flood_secs;
    eprintln!(
        "[e2e] flood from 127.0.0.1: {f_sent} INVITEs in {flood_secs:.1} s ({:.0}/s offered), {f_200} accepted \
         ({:.1}/s overall, {:.1}/s above the burst of {BURST}; the bucket allows {accepted_limit:.0}), {f_503} \
         rejected with 503 ({:.1}%)",
        f_sent as f64 / flood_secs,
        f_200 as f64 / flood_secs,
        (f_200 as f64 - BURST).max(0.0) / flood_secs,
        100.0 * f_503 as f64 / f_sent.max(1) as f64
    );
    eprintln!(
        "[e2e] trunk from {TRUNK_IP}: {t_sent} INVITEs in {trunk_secs:.1} s, {t_200} accepted ({:.1}/s), {t_503} rejected",
        t_200 as f64 / trunk_secs
    );

    checks.check(f_sent >= (flood_calls as u64) * 9 / 10, || {
        format!(
            "SIPp sent only {f_sent} of {flood_calls} flood INVITEs:\n{}",
            flood.describe()
        )
    });
    checks.check(f_503 >= f_sent * 9 / 10, || {
        format!(
            "the flood was not throttled: {f_503} of {f_sent} got 503:\n{}",
            flood.describe()
        )
    });
    checks.check(
        (f_200 as f64) <= accepted_limit * 1.1 + 5.0 && f_200 >= (BURST as u64) / 2,
        || {
            format!(
                "accepted {f_200} flood calls; the bucket allows about {accepted_limit:.0}:\n{}",
                flood.describe()
            )
        },
    );
    checks.check(f_200 + f_503 >= f_sent * 98 / 100, || {
        format!(
            "{} flood INVITEs got neither 200 nor 503:\n{}",
            f_sent - f_200 - f_503,
            flood.describe()
        )
    });
    // The scenario fails a call whose 503 lacks Retry-After; SIPp exits 0 only when every call succeeded.
    checks.check(flood.success(), || {
        format!("flood calls failed (503 without Retry-After?):\n{}", flood.describe())
    });
    checks.check(t_sent == trunk_calls as u64 && t_200 == t_sent && t_503 == 0, || {
        format!(
            "the trunk on {TRUNK_IP} did not get 200 for all its calls:\n{}",
            trunk.describe()
        )
    });
    checks.check(trunk.success(), || format!("trunk calls failed:\n{}", trunk.describe()));
    checks.check(http_get(server.http, "/healthz").map(|r| r.0) == Some(200), || {
        format!("oncall unhealthy after the flood:\n{}", server.log_tail(40))
    });
    checks.finish();
}

/// Every 503 should carry Retry-After so a trunk backs off (RFC 3261 §21.5.4), including the one OnCall sends when
/// its RTP port range is used up. Today that 503 has none (the rate-limit and call-ceiling ones do).
#[test]
fn the_503_for_exhausted_rtp_ports_carries_retry_after() {
    let server = Server::start(
        "rtp-exhausted",
        ServerOptions {
            rtp_ports: 6, // three calls at a time (the config requires room for two)
            ..ServerOptions::default()
        },
    );
    // Six calls at once, each held 2 s: the last three find no RTP port.
    let run = Sipp::new(&server, "uac_flood.xml", "sipp-rtp-exhausted")
        .load(20, 6, 6)
        .arg("-d")
        .arg("2000")
        .limit(Duration::from_secs(20))
        .run();
    assert!(
        run.screen_counts("503", "<----------").first().copied().unwrap_or(0) >= 1,
        "no call was refused for lack of RTP ports:\n{}",
        run.describe()
    );
    assert!(
        run.success(),
        "a 503 without Retry-After (the scenario checks it):\n{}",
        run.describe()
    );
}

/// Overload (issue 22 item 3): above `[sip] max_media_load` new calls get 503 with Retry-After. The limit here is
/// below what an idle engine's wake-up alone uses, so every call is refused: the wiring from the media threads'
/// load to the INVITE's answer, end to end, without having to saturate the machine. `oncall_media_load` reports
/// the load on /metrics.
#[test]
fn an_overloaded_media_engine_refuses_new_calls_with_503() {
    let server = Server::start("media-overload", ServerOptions { extra_sip: "max_media_load = 0.0001".into(), ..ServerOptions::default() });
    let run = Sipp::new(&server, "uac_flood.xml", "sipp-overload").load(5, 3, 3).limit(Duration::from_secs(20)).run();
    let refused = run.screen_counts("503", "<----------").first().copied().unwrap_or(0);
    assert!(refused == 3 && run.success(), "every call should get 503 with Retry-After: {refused} did\n{}", run.describe());
    assert!(server.log().contains("media threads near their 20 ms budget"), "{}", server.log_tail(20));
    let (_, metrics) = http_get(server.http, "/metrics").expect("/metrics");
    let load = metrics.lines().find_map(|l| l.strip_prefix("oncall_media_load ")).and_then(|v| v.trim().parse::<f64>().ok());
    assert!(load.is_some_and(|l| l > 0.0), "oncall_media_load on /metrics: {load:?}");
}
