//! After hours (issue 7): a caller who picks a `normal` "page on-call" option while the organization is closed
//! hears when the request will be handled, leaves the message and is released; the request is opened at once and
//! deferred to the next opening instead of paging anyone now. The same option during business hours would have
//! paged at once and held the caller. SIPp is the caller (`bench/scenarios/ivr_message.xml`: key 1, ~7 s of speech,
//! #, then it waits for OnCall's BYE: an urgent page would hold it for `max_hold_secs` and the scenario would fail).
//! About 25 s.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::*;

const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

#[test]
fn a_normal_option_after_hours_releases_the_caller_and_defers_the_page() {
    // Open only on the weekday two days from now (UTC): closed now, and the next opening is known.
    let days_since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 86_400;
    let open_day = DAYS[((days_since_epoch + 2 + 3) % 7) as usize]; // 1970-01-01 was a Thursday (index 3)
    let hours: String = DAYS
        .iter()
        .map(|d| format!("{d} = \"{}\"\n", if *d == open_day { "08:00-18:00" } else { "closed" }))
        .collect();
    let server = Server::start(
        "after-hours",
        ServerOptions {
            extra_config: format!(
                r#"
[paging]
enabled = true
max_hold_secs = 60

[business_hours]
time_zone = "UTC"
{hours}
[ivr.menu]
prompt = "menu"

[[ivr.menu.options]]
digit = "1"
action = "page_on_call"
urgency = "normal"
"#
            ),
            silence_secs: 0,
            ..ServerOptions::default()
        },
    );
    let run = Sipp::new(&server, "../../bench/scenarios/ivr_message.xml", "caller").limit(Duration::from_secs(60)).run();

    let mut checks = Checks::default();
    checks.check(run.success(), || format!("the caller was not released after the message: {}", run.describe()));
    let request = server.wait_for_request(Duration::from_secs(10), |_| true);
    checks.check(request.is_ok(), || format!("no request opened: {request:?}"));
    if let Ok(r) = &request {
        checks.check(field(r, "status") == "received", || format!("the request moved on: {r:#}"));
        checks.check(r["notifications"].as_array().is_some_and(|n| n.is_empty()), || format!("someone was notified after hours: {r:#}"));
        checks.check(r["recordings"].as_array().is_some_and(|n| n.len() == 1), || format!("the message is not with the request: {r:#}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = server.log();
    let deferred = log.lines().find(|l| l.contains("after hours: the request pages when business hours start"));
    checks.check(deferred.is_some(), || format!("no deferral logged:\n{}", server.log_tail(40)));
    checks.check(!log.contains("caller holding for the on-call staff"), || "the caller was held".into());
    eprintln!("[e2e] open only on {open_day}; caller released after its message; {}", deferred.unwrap_or("(no deferral line)").trim());
    checks.finish();
}
