//! The operator's organization commands against a running demo server's database (issue 17):
//! `oncall org add` with numbers and a first manager, `list`, numbers owned once, `disable`/`enable`,
//! and `delete`, which refuses without `--yes`, then removes the organization's rows and recording
//! files, counted, and leaves the other organization as it was.
//!
//! `calls_are_answered_by_their_number`: once numbers are configured, a baresip call to the demo's number gets
//! its IVR, a call to a number nobody owns gets 404, a call to another organization's number is answered by
//! that organization (its call row is the help desk's, the demo's count does not move), and disabling the
//! demo makes its number 404 while the help desk's still answers.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::*;

fn orgs(server: &Server) -> Vec<Value> {
    let out = server.oncall(&["org", "list", "--json"]);
    serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("org list --json printed {out:?}: {e}")).as_array().cloned().unwrap_or_default()
}

fn by_slug<'a>(list: &'a [Value], slug: &str) -> Option<&'a Value> {
    list.iter().find(|o| o["slug"] == slug)
}

#[test]
fn an_operator_adds_disables_and_deletes_organizations() {
    let server = Server::start("orgs-cli", ServerOptions { demo: true, ..ServerOptions::default() });
    let mut checks = Checks::default();

    let out = server.oncall(&["org", "add", "--name", "Help Desk", "--time-zone", "Europe/Berlin", "--number", "+1 555 987 0000", "--manager-email", "boss@desk.example"]);
    checks.check(out.contains("number +15559870000 answers for help-desk"), || format!("org add printed {out:?}"));
    checks.check(out.contains("boss@desk.example signs in") && out.contains("one-time password"), || format!("no first manager in {out:?}"));
    server.oncall(&["org", "number", "add", "demo-apartments", "+15551230000"]);
    let taken = server.oncall_fails(&["org", "number", "add", "help-desk", "+15551230000"]);
    checks.check(taken.contains("already belongs to organization demo-apartments"), || format!("a number owned twice: {taken}"));
    let unknown_trunk = server.oncall_fails(&["org", "number", "add", "help-desk", "4100", "--trunk", "nope"]);
    checks.check(unknown_trunk.contains("no [[trunks]] entry"), || format!("unknown trunk: {unknown_trunk}"));

    let list = orgs(&server);
    let desk = by_slug(&list, "help-desk").cloned().unwrap_or_default();
    checks.check(desk["numbers"] == serde_json::json!(["+15559870000"]) && desk["time_zone"] == "Europe/Berlin", || format!("help-desk listed as {desk}"));
    let demo = by_slug(&list, "demo-apartments").cloned().unwrap_or_default();
    checks.check(demo["people"].as_u64().unwrap_or(0) >= 3, || format!("demo listed as {demo}"));

    server.oncall(&["org", "disable", "help-desk"]);
    checks.check(by_slug(&orgs(&server), "help-desk").is_some_and(|o| o["disabled"] == true), || "help-desk is not disabled".into());
    server.oncall(&["org", "enable", "help-desk"]);
    checks.check(by_slug(&orgs(&server), "help-desk").is_some_and(|o| o["disabled"] == false), || "help-desk is not enabled again".into());
    server.oncall(&["org", "rename", "help-desk", "--name", "Help Desk East"]);

    // A recording file of the demo organization, where the server files them (recordings/<slug>/…).
    let folder = server.data_dir.join("recordings/demo-apartments/2026/12");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("x-message.wav"), b"RIFF").unwrap();

    let refused = server.oncall_fails(&["org", "delete", "demo-apartments"]);
    checks.check(refused.contains("--yes") && refused.contains("people"), || format!("delete without --yes: {refused}"));
    let desk_before = by_slug(&orgs(&server), "help-desk").cloned();
    let out = server.oncall(&["org", "delete", "demo-apartments", "--yes"]);
    eprintln!("[e2e] {out}");
    checks.check(out.contains("deleted organization demo-apartments") && out.contains(" people") && out.contains("1 recording files"), || format!("delete printed {out:?}"));
    checks.check(!server.data_dir.join("recordings/demo-apartments").exists(), || "the demo's recordings folder is still there".into());
    let after = orgs(&server);
    checks.check(by_slug(&after, "demo-apartments").is_none(), || format!("demo still listed: {after:?}"));
    let desk_after = by_slug(&after, "help-desk").cloned();
    checks.check(
        desk_after.as_ref().map(|o| (&o["numbers"], &o["people"])) == desk_before.as_ref().map(|o| (&o["numbers"], &o["people"])) && desk_after.as_ref().is_some_and(|o| o["name"] == "Help Desk East"),
        || format!("help-desk changed: {desk_before:?} → {desk_after:?}"),
    );
    checks.finish();
}

/// Dials `number` once: `Ok(())` when the IVR answered (then hangs up), `Err(reason)` when the call was refused.
fn dial(caller: &mut Baresip, server: &Server, number: &str) -> Result<(), String> {
    caller.command("dial", &format!("sip:{number}@{}", server.sip_udp));
    let Some((_, ev)) = caller.wait_event_any(&["CALL_ESTABLISHED", "CALL_CLOSED"], Duration::from_secs(10)) else {
        return Err("no answer within 10 s".into());
    };
    if field(&ev, "type") != "CALL_ESTABLISHED" {
        return Err(field(&ev, "param").to_string());
    }
    caller.command("hangup", "");
    caller.wait_event("CALL_CLOSED", Duration::from_secs(5));
    Ok(())
}

fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

#[test]
fn calls_are_answered_by_their_number() {
    let server = Server::start("orgs-numbers", ServerOptions { demo: true, ..ServerOptions::default() });
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let mic = silence_wav_secs(&work, 60);
    let mut caller = Baresip::start(&work.join("caller"), &mic, Duration::from_secs(90));
    // No numbers yet: every call is the demo's (a single-tenant install changes nothing).
    checks.check(dial(&mut caller, &server, "+15557777777").is_ok(), || "without numbers an unknown number should still reach the IVR".into());

    server.oncall(&["org", "number", "add", "demo-apartments", "+15551230000"]);
    server.oncall(&["org", "add", "--name", "Help Desk", "--number", "+15559870000"]);
    let mut last = Ok(());
    let refused = until(Duration::from_secs(10), || {
        last = dial(&mut caller, &server, "+15557777777");
        last.is_err()
    });
    eprintln!("[e2e] unknown number: {last:?}");
    checks.check(refused && last.as_ref().is_err_and(|r| r.contains("404")), || format!("a number nobody owns should get 404, got {last:?}"));
    let own = dial(&mut caller, &server, "+15551230000");
    checks.check(own.is_ok(), || format!("the demo's number should reach its IVR: {own:?}"));
    let calls_of = |slug: &str| by_slug(&orgs(&server), slug).map_or(0, |o| o["calls"].as_u64().unwrap_or(0));
    let (demo_before, desk_before) = (calls_of("demo-apartments"), calls_of("help-desk"));
    let other = dial(&mut caller, &server, "+15559870000");
    eprintln!("[e2e] the help desk's number: {other:?}");
    checks.check(other.is_ok(), || format!("the help desk's number should reach the help desk's IVR: {other:?}"));
    let filed = until(Duration::from_secs(5), || calls_of("help-desk") == desk_before + 1);
    checks.check(filed && calls_of("demo-apartments") == demo_before, || {
        format!("the help desk's call should be filed under the help desk only: demo {demo_before}→{}, desk {desk_before}→{}", calls_of("demo-apartments"), calls_of("help-desk"))
    });

    server.oncall(&["org", "disable", "demo-apartments"]);
    let mut last = Ok(());
    let stopped = until(Duration::from_secs(10), || {
        last = dial(&mut caller, &server, "+15551230000");
        last.is_err()
    });
    eprintln!("[e2e] disabled organization's number: {last:?}");
    checks.check(stopped && last.as_ref().is_err_and(|r| r.contains("404")), || format!("a disabled organization's number should get 404, got {last:?}"));
    let desk = dial(&mut caller, &server, "+15559870000");
    checks.check(desk.is_ok(), || format!("the help desk's number should still answer: {desk:?}"));
    caller.quit();
    let log = server.log_tail(200);
    checks.check(log.contains("call refused by its number"), || "the refusals are not in the server log".into());
    checks.finish();
}
