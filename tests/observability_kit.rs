//! The monitoring kit in docs/deploy/ (issue 24 item 5): the Grafana dashboard is a well-formed dashboard in
//! Grafana's JSON model (panels on the 24-column grid, each with PromQL targets, the datasource as an input), and
//! every `oncall_*` series the dashboard and the Prometheus alert rules name is one a running server exports on
//! `/metrics` (so a renamed metric breaks this test, not a manager's dashboard).

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use support::*;

/// Every `oncall_…` identifier in a PromQL expression.
fn oncall_series(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("oncall_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The families in a /metrics text (from its `# TYPE` lines).
fn families(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

fn exported(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name) || ["_sum", "_count", "_bucket"].iter().any(|s| name.strip_suffix(s).is_some_and(|base| families.contains(base)))
}

#[test]
fn the_dashboard_and_alert_rules_use_metrics_oncall_exports() {
    let root = repo_root();
    let dashboard: Value = serde_json::from_str(&fs::read_to_string(root.join("docs/deploy/grafana-dashboard.json")).unwrap()).expect("the dashboard is JSON");
    let mut checks = Checks::default();

    // Grafana's dashboard model: what an import needs.
    for key in ["title", "uid", "schemaVersion", "panels", "templating", "time"] {
        checks.check(dashboard.get(key).is_some(), || format!("the dashboard has no {key:?}"));
    }
    let input = &dashboard["__inputs"][0];
    checks.check(input["type"] == "datasource" && input["pluginId"] == "prometheus", || format!("the datasource input is {input}"));
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().unwrap_or("?");
        checks.check(ids.insert(p["id"].as_i64().unwrap_or(-1)), || format!("panel id {} repeats", p["id"]));
        checks.check(matches!(p["type"].as_str(), Some("timeseries" | "stat" | "gauge" | "table")), || format!("panel {title}: type {}", p["type"]));
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_i64().unwrap_or(-1), g["w"].as_i64().unwrap_or(0), g["h"].as_i64().unwrap_or(0));
        checks.check(x >= 0 && w > 0 && h > 0 && x + w <= 24 && g["y"].as_i64().is_some(), || format!("panel {title}: gridPos {g}"));
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        checks.check(!targets.is_empty(), || format!("panel {title} has no query"));
        for t in targets {
            checks.check(t["refId"].is_string(), || format!("panel {title}: a target without refId"));
            exprs.push((format!("dashboard panel {title:?}"), t["expr"].as_str().unwrap_or_default().to_string()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().expect("templating.list") {
        exprs.push((format!("dashboard variable {}", v["name"]), v["definition"].as_str().unwrap_or_default().to_string()));
    }
    let rules = fs::read_to_string(root.join("docs/deploy/prometheus-rules.yml")).unwrap();
    let mut alerts = 0;
    for line in rules.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr:") {
            exprs.push(("alert rule".into(), expr.trim().to_string()));
        }
        alerts += usize::from(line.trim().starts_with("- alert:"));
    }
    checks.check(alerts >= 5, || format!("{alerts} alert rules"));
    for topic in ["OnCallTrunkDown", "OnCallPagingFailures", "OnCallDiskAlmostFull"] {
        checks.check(rules.contains(topic), || format!("no {topic} rule"));
    }

    // A server with the sections whose families only appear when configured: paging, a registering trunk.
    let server = Server::start(
        "observability",
        ServerOptions {
            extra_config: format!("[paging]\nenabled = true\n\n[[trunks]]\nname = \"carrier\"\nregistrar = \"sip:127.0.0.1:{}\"\nusername = \"oncall\"\npassword = \"trunk-secret-1\"\n", free_port()),
            ..ServerOptions::default()
        },
    );
    let (status, metrics) = http_get(server.http, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{metrics}");
    let exported_families = families(&metrics);
    for (whose, expr) in &exprs {
        for name in oncall_series(expr) {
            checks.check(exported(&name, &exported_families), || format!("{whose} uses {name}, which /metrics does not export: {expr}"));
        }
    }
    eprintln!("[e2e] {} queries checked against {} exported families", exprs.len(), exported_families.len());
    checks.finish();
}
