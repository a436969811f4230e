//! The operator's organization commands against a running demo server's database (issue 17):
//! `oncall org add` with numbers and a first manager, `list`, numbers owned once, `disable`/`enable`,
//! and `delete`, which refuses without `--yes`, then removes the organization's rows and recording
//! files, counted, and leaves the other organization as it was.

mod support;

use serde_json::Value;
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
