//! The operator's organization commands against a running demo server's database (issue 17):
//! `oncall org add` with numbers and a first manager, `list`, numbers owned once, `disable`/`enable`,
//! an operator account (`oncall operator add`) whose web area lists the organizations, and `delete`,
//! which refuses without `--yes`, then removes the organization's rows and recording files, counted,
//! and leaves the other organization as it was.
//!
//! `calls_are_answered_by_their_number`: the demo seeds two organizations with their numbers; a baresip call to
//! a number nobody owns gets 404, to Demo Apartments' number its IVR, to Harbor Help Desk's number the help
//! desk's (its call row is the help desk's, the demo's count does not move); with `oncall org set --max-calls 1`
//! the help desk's second call at once gets 503 while Demo Apartments still answers; an organization added on the
//! running server answers its number within one reload; disabling the demo makes its number 404 while the
//! help desk's still answers.
//!
//! `each_organization_pages_its_own_phones`: with paging on and the demo's five phones registered (three of
//! Demo Apartments, two of the help desk), a message left on each organization's number pages one of its own
//! phones and none of the other's; each request and recording opens for its own manager only.

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

    // The operator's web area, with an account from `oncall operator add`.
    let out = server.oncall(&["operator", "add", "--email", "ops@oncall.example"]);
    // The first word after it: anything the command prints later (a warning under load) is not the password.
    let password = out.split("with password ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or("").to_string();
    assert_eq!(password.len(), 20, "operator add printed {out:?}");
    let operator = operator_login(&server, "ops@oncall.example", &password);
    let page = get_with_cookie(server.http, "/operator", &format!("oncall_operator={operator}")).map(|r| (r.0, r.2));
    checks.check(page.as_ref().is_some_and(|(status, body)| *status == 200 && body.contains("Help Desk East") && body.contains("+15559870000")), || {
        format!("the operator's page: {page:?}")
    });

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

/// Signs in at /operator like a browser: the operator session cookie's value.
fn operator_login(server: &Server, email: &str, password: &str) -> String {
    let addr = server.http;
    let (_, head, _) = get_with_cookie(addr, "/operator/login", "x=y").expect("GET /operator/login");
    let csrf = set_cookie(&head, "oncall_login_csrf").unwrap_or_else(|| panic!("no CSRF cookie from /operator/login:\n{head}"));
    let body = format!("email={}&password={password}&csrf={csrf}", email.replace('@', "%40"));
    let request = format!(
        "POST /operator/login HTTP/1.1\r\nHost: {addr}\r\nCookie: oncall_login_csrf={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, head, _) = http_exchange(addr, &request).expect("POST /operator/login");
    assert_eq!(status, 303, "operator login answered {status}:\n{head}");
    set_cookie(&head, "oncall_operator").unwrap_or_else(|| panic!("no operator cookie after login:\n{head}"))
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
    // The demo seeds both organizations' numbers, so a number nobody owns gets 404 from the first call.
    let unknown = dial(&mut caller, &server, "+15557777777");
    eprintln!("[e2e] unknown number: {unknown:?}");
    checks.check(unknown.as_ref().is_err_and(|r| r.contains("404")), || format!("a number nobody owns should get 404, got {unknown:?}"));
    let own = dial(&mut caller, &server, "100");
    checks.check(own.is_ok(), || format!("the demo's number should reach its IVR: {own:?}"));
    let calls_of = |slug: &str| by_slug(&orgs(&server), slug).map_or(0, |o| o["calls"].as_u64().unwrap_or(0));
    let (demo_before, desk_before) = (calls_of("demo-apartments"), calls_of("harbor-help-desk"));
    let other = dial(&mut caller, &server, "200");
    eprintln!("[e2e] the help desk's number: {other:?}");
    checks.check(other.is_ok(), || format!("the help desk's number should reach the help desk's IVR: {other:?}"));
    let filed = until(Duration::from_secs(5), || calls_of("harbor-help-desk") == desk_before + 1);
    checks.check(filed && calls_of("demo-apartments") == demo_before, || {
        format!(
            "the help desk's call should be filed under the help desk only: demo {demo_before}→{}, desk {desk_before}→{}",
            calls_of("demo-apartments"),
            calls_of("harbor-help-desk")
        )
    });

    // The operator's per-organization call limit: with one help desk call in progress, the next gets 503, and
    // Demo Apartments is not limited by it.
    server.oncall(&["org", "set", "harbor-help-desk", "--max-calls", "1"]);
    let mut holder = Baresip::start(&work.join("holder"), &mic, Duration::from_secs(90));
    let mut last = Ok(());
    let limited = until(Duration::from_secs(10), || {
        holder.command("dial", &format!("sip:200@{}", server.sip_udp));
        let held = holder.wait_event_any(&["CALL_ESTABLISHED", "CALL_CLOSED"], Duration::from_secs(10)).is_some_and(|(_, e)| field(&e, "type") == "CALL_ESTABLISHED");
        last = dial(&mut caller, &server, "200");
        if held {
            holder.command("hangup", "");
            holder.wait_event("CALL_CLOSED", Duration::from_secs(5));
        }
        last.is_err()
    });
    eprintln!("[e2e] a second help desk call at --max-calls 1: {last:?}");
    checks.check(limited && last.as_ref().is_err_and(|r| r.contains("503")), || format!("the help desk's second call should get 503, got {last:?}"));
    let apartments = dial(&mut caller, &server, "100");
    checks.check(apartments.is_ok(), || format!("Demo Apartments is not limited by the help desk's max-calls: {apartments:?}"));
    holder.quit();
    server.oncall(&["org", "set", "harbor-help-desk", "--max-calls", "0"]);

    // An organization added on a running server answers its number within one reload.
    server.oncall(&["org", "add", "--name", "Help Desk", "--number", "+15559870000"]);
    let mut last = Err(String::new());
    let added = until(Duration::from_secs(10), || {
        last = dial(&mut caller, &server, "+15559870000");
        last.is_ok()
    });
    checks.check(added, || format!("a new organization's number should be answered within a reload: {last:?}"));

    server.oncall(&["org", "disable", "demo-apartments"]);
    let mut last = Ok(());
    let stopped = until(Duration::from_secs(10), || {
        last = dial(&mut caller, &server, "100");
        last.is_err()
    });
    eprintln!("[e2e] disabled organization's number: {last:?}");
    checks.check(stopped && last.as_ref().is_err_and(|r| r.contains("404")), || format!("a disabled organization's number should get 404, got {last:?}"));
    let desk = dial(&mut caller, &server, "200");
    checks.check(desk.is_ok(), || format!("the help desk's number should still answer: {desk:?}"));
    caller.quit();
    let log = server.log_tail(200);
    checks.check(log.contains("call refused by its number"), || "the refusals are not in the server log".into());
    checks.finish();
}

/// The demo's phones: (organization, username), each an auto-answering baresip registered with OnCall.
const PHONES: [(&str, &str); 5] =
    [("demo-apartments", "maria"), ("demo-apartments", "james"), ("demo-apartments", "aisha"), ("harbor-help-desk", "sam"), ("harbor-help-desk", "noor")];
/// Their people's mobile numbers (what a text reply comes from), URL-encoded.
const MOBILES: [(&str, &str); 5] =
    [("maria", "%2B12125550101"), ("james", "%2B12125550102"), ("aisha", "%2B12125550103"), ("sam", "%2B13125550201"), ("noor", "%2B13125550202")];
const INBOUND_TOKEN: &str = "orgs-inbound-token-0123456789abcdef";

/// `oncall requests --org <slug> --json`, newest first.
fn requests_of(server: &Server, slug: &str) -> Vec<Value> {
    let out = server.oncall(&["requests", "--org", slug, "--json"]);
    let mut rows = serde_json::from_str::<Value>(out.trim()).unwrap_or_else(|e| panic!("requests --json printed {out:?}: {e}")).as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| -r["id"].as_i64().unwrap_or(0));
    rows
}

/// A caller leaves a message on `number`; one phone gets the page, its user presses 1. Returns the request's id
/// (checked: acknowledged, notified to that phone) and whose phone it was; checks that no phone of the other
/// organization got any call.
fn page_through(
    server: &Server,
    work: &std::path::Path,
    phones: &mut [(&'static str, &'static str, Baresip)],
    number: &str,
    slug: &str,
    text: &str,
    checks: &mut Checks,
) -> Option<(i64, &'static str)> {
    std::fs::create_dir_all(work).expect("the caller's folder");
    leave_page_message_to(server, work, text, number);
    let deadline = Instant::now() + Duration::from_secs(20);
    let paged = 'found: loop {
        for (org, user, phone) in phones.iter_mut() {
            if phone.wait_event("CALL_ESTABLISHED", Duration::from_millis(100)).is_some() {
                break 'found Some((*org, *user));
            }
        }
        if Instant::now() > deadline {
            break None;
        }
    };
    eprintln!("[e2e] a call to {number}: the page went to {paged:?}");
    let Some((org, user)) = paged else {
        checks.fail(format!("no phone got the page for {number}:\n{}", server.log_tail(60)));
        return None;
    };
    checks.check(org == slug, || format!("a call to {slug}'s number {number} paged {user} of {org}"));
    let announcement = prompt_secs("new_request") + prompt_secs("from") + prompt_secs("press_1_talk");
    std::thread::sleep(Duration::from_secs_f64(announcement + 0.5));
    let phone = &mut phones.iter_mut().find(|p| p.1 == user).expect("the paged phone").2;
    phone.command("sndcode", "1");
    let mut newest = None;
    let acknowledged = until(Duration::from_secs(20), || {
        newest = requests_of(server, slug).into_iter().next();
        newest.as_ref().is_some_and(|r| field(r, "status") == "acknowledged")
    });
    phone.command("hangup", "");
    let request = newest.unwrap_or_default();
    let target = request["notifications"].as_array().and_then(|a| a.first()).map(|n| field(n, "target").to_string()).unwrap_or_default();
    checks.check(acknowledged && target.contains(&format!("sip:{user}")), || format!("{slug}'s newest request should be acknowledged by {user}'s phone: {request}"));
    // Nothing rang in the other organization (an auto-answering baresip reports CALL_ESTABLISHED at once).
    for (org, user, phone) in phones.iter_mut().filter(|p| p.0 != slug) {
        let rang: Vec<_> = phone.drain_events(Duration::from_millis(50)).into_iter().filter(|(_, e)| ["CALL_INCOMING", "CALL_ESTABLISHED"].contains(&field(e, "type"))).collect();
        checks.check(rang.is_empty(), || format!("{user} of {org} got a call while {slug} was paged: {rang:?}"));
    }
    request["id"].as_i64().map(|id| (id, user))
}

/// A text reply by the SMS gateway's webhook from `user`'s mobile: the answer OnCall sends back.
fn text_reply(server: &Server, user: &str, body: &str) -> String {
    let from = MOBILES.iter().find(|m| m.0 == user).map_or("", |m| m.1);
    let path = format!("/api/v1/texts/inbound?token={INBOUND_TOKEN}");
    let form = format!("From={from}&Body={}", body.replace(' ', "+"));
    http_post(server.http, &path, "application/x-www-form-urlencoded", &[], &form).map_or_else(|| "no answer".into(), |(status, b)| format!("{status} {b}"))
}

fn status_of(server: &Server, slug: &str, id: i64) -> String {
    requests_of(server, slug).iter().find(|r| r["id"].as_i64() == Some(id)).map_or("missing".into(), |r| field(r, "status").to_string())
}

/// The first recording download link on a request page (`/recordings/<id>/download`).
fn recording_link(page: &str) -> Option<String> {
    let at = page.find("/download\"")?;
    let start = page[..at].rfind("\"/recordings/")? + 1;
    Some(page[start..at + "/download".len()].to_string())
}

/// Issue 17's two tenants, each with its number, schedule, policy and registered phones (the demo's): a call to
/// Demo Apartments' number pages one of its phones and none of the help desk's, and the reverse; a text reply
/// from the employee who took A's request naming B's request is refused and B's stays as it was, while naming
/// their own completes it; each request, and its recording, is visible to its own organization's manager only
/// (404 to the other's).
#[test]
fn each_organization_pages_its_own_phones() {
    // One SMS gateway for the whole server (its outbound URL is never reached: the demo pages by call).
    let config = format!(
        "[paging]\nenabled = true\n\n[texts]\nenabled = true\ntransport = \"http\"\nurl = \"http://127.0.0.1:9/Messages.json\"\n\
         account = \"AC1\"\ntoken = \"tok\"\nfrom = \"+15550001111\"\ninbound_token = \"{INBOUND_TOKEN}\"\n"
    );
    let server = Server::start("orgs-paging", ServerOptions { demo: true, extra_config: config, ..ServerOptions::default() });
    let work = server.dir.subdir("peers");
    let mut checks = Checks::default();
    let mic = silence_wav_secs(&work, 150);
    let sip = server.sip_udp;
    let mut phones: Vec<(&str, &str, Baresip)> = PHONES
        .into_iter()
        .map(|(org, user)| {
            let line = move |_port: u16| format!("<sip:{user}@{sip};transport=udp>;auth_pass=oncall-phone-2026;regint=60;answermode=auto\n");
            (org, user, Baresip::start_with_account(&work.join(user), &mic, Duration::from_secs(150), line))
        })
        .collect();
    let registered = until(Duration::from_secs(10), || server.log().matches("device registered username=").count() >= PHONES.len());
    assert!(registered, "the demo phones did not all register:\n{}", server.log_tail(40));

    let apartments = page_through(&server, &work.join("call-100"), &mut phones, "100", "demo-apartments", "The boiler in the basement is leaking.", &mut checks);
    let desk = page_through(&server, &work.join("call-200"), &mut phones, "200", "harbor-help-desk", "My laptop will not start and I have a client at nine.", &mut checks);
    for (_, _, phone) in phones.iter_mut() {
        phone.quit();
    }
    let (Some((apartments, tenant)), Some((desk, _))) = (apartments, desk) else { return checks.finish() };

    // The employee who took Demo Apartments' request names the help desk's: nothing of theirs matches.
    let refused = text_reply(&server, tenant, &format!("DONE {desk}"));
    eprintln!("[e2e] {tenant} texts DONE {desk}: {refused}");
    checks.check(refused.starts_with("200") && refused.contains("no open request of yours matches"), || format!("{tenant}'s reply naming the other organization's request got {refused:?}"));
    checks.check(status_of(&server, "harbor-help-desk", desk) == "acknowledged", || format!("the help desk's request changed: {}", status_of(&server, "harbor-help-desk", desk)));
    let done = text_reply(&server, tenant, &format!("DONE {apartments}"));
    checks.check(done.contains("is done"), || format!("{tenant}'s reply naming their own request got {done:?}"));
    checks.check(status_of(&server, "demo-apartments", apartments) == "completed", || format!("their own request is {}", status_of(&server, "demo-apartments", apartments)));

    // Each manager sees their own request and its recording; the other organization's are not found.
    let dana = format!("oncall_session={}", web_login(&server, "dana@demo-apartments.example", "oncall-demo-2026"));
    let lee = format!("oncall_session={}", web_login(&server, "lee@harbor-help-desk.example", "oncall-demo-2026"));
    let page = |session: &str, id: i64| get_with_cookie(server.http, &format!("/requests/{id}"), session).map_or((0, String::new()), |(status, _, body)| (status, body));
    let mut links = Vec::new();
    for (session, mine, theirs, who) in [(&dana, apartments, desk, "Dana"), (&lee, desk, apartments, "Lee")] {
        let (status, body) = page(session, mine);
        let link = recording_link(&body);
        checks.check(status == 200 && link.is_some(), || format!("{who}'s own request #{mine}: {status}, recording link {link:?}"));
        let (status, _) = page(session, theirs);
        checks.check(status == 404, || format!("{who} opened the other organization's request #{theirs}: {status}"));
        links.push(link.unwrap_or_default());
    }
    for (session, mine, theirs, who) in [(&dana, &links[0], &links[1], "Dana"), (&lee, &links[1], &links[0], "Lee")] {
        let status = |link: &str| get_with_cookie(server.http, link, session).map_or(0, |r| r.0);
        checks.check(status(mine) == 200, || format!("{who}'s own recording {mine}: {}", status(mine)));
        checks.check(status(theirs) == 404, || format!("{who} fetched the other organization's recording {theirs}: {}", status(theirs)));
    }
    checks.finish();
}
