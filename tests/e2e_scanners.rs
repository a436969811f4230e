//! What a SIP scanner learns from OnCall, with the SIPVicious tools attackers run against every public SIP port
//! (Debian `sipvicious`, installed by scripts/install-test-deps.sh):
//!
//! - `svmap` (OPTIONS and INVITE sweeps) finds a SIP device — OnCall must answer, or no caller could reach it —
//!   but learns no version banner: the default config sends neither `Server` nor `User-Agent`. (The product
//!   name does show in the SDP and Contact of a 200 to INVITE: see the ignored test below.)
//! - `svwar` (extension enumeration by REGISTER, OPTIONS and INVITE) cannot tell extensions apart: OnCall answers
//!   every Request-URI user the same way, so svwar reports either every extension of the range or none, never a
//!   subset (which would mean some extensions exist and others do not).
//!
//! Loopback only: the scanners bind 127.0.0.1 at a free port (`-b`, `-P`; their default source port is 5060) and
//! target the test's server; every run has a hard time limit.

mod support;

use std::time::Duration;
use support::*;

fn scanner(server: &Server, tool: &str, label: &str, args: &[&str]) -> Finished {
    sipvicious(server, tool, label, args, Duration::from_secs(25))
}

#[test]
fn svmap_finds_oncall_but_learns_no_version() {
    let server = Server::start("svmap", ServerOptions::default());
    let device = server.sip_udp.to_string();
    let mut checks = Checks::default();
    for method in ["OPTIONS", "INVITE"] {
        // --debug prints every SIP message svmap receives, so the headers can be checked too.
        let out = scanner(&server, "svmap", &format!("svmap-{method}"), &["-m", method, "--debug"]);
        let text = format!("{}\n{}", out.stdout, out.stderr);
        eprintln!("[e2e] svmap -m {method}:\n{}", tail(&out.stdout, 12));
        let row = text.lines().find(|l| l.contains(&device) && l.starts_with('|'));
        checks.check(row.is_some(), || {
            format!("svmap -m {method} did not find OnCall at {device}:\n{text}")
        });
        if let Some(row) = row {
            // | 127.0.0.1:port | unknown |  → the User Agent cell
            let agent = row.split('|').nth(2).unwrap_or("").trim().to_string();
            checks.check(agent == "unknown", || {
                format!("svmap -m {method} learned a user agent: {row}")
            });
        }
        let lower = text.to_ascii_lowercase();
        let version = env!("CARGO_PKG_VERSION");
        for banner in [
            "oncall/".to_string(),
            format!("oncall {version}"),
            format!("oncall v{version}"),
        ] {
            checks.check(!lower.contains(&banner), || {
                format!("svmap -m {method} saw a version banner {banner:?}:\n{text}")
            });
        }
        for banner in ["server:", "user-agent:"] {
            checks.check(!lower.contains(banner), || {
                format!("OnCall sent a {banner} header to svmap -m {method}:\n{text}")
            });
        }
    }
    checks.finish();
}

/// The product name should not be visible either: today the 200 to an INVITE names it in the SDP (`o=oncall`,
/// `s=OnCall`) and in its Contact (`sip:oncall@...`), so an INVITE sweep fingerprints OnCall even without a banner.
#[test]
fn svmap_invite_answer_does_not_name_the_product() {
    let server = Server::start("svmap-name", ServerOptions::default());
    let out = scanner(&server, "svmap", "svmap-INVITE", &["-m", "INVITE", "--debug"]);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        !text.to_ascii_lowercase().contains("oncall"),
        "the INVITE answer names OnCall:\n{text}"
    );
}

/// The extensions svwar reports, from its result table (`| 100 | reqauth |`).
fn reported_extensions(out: &Finished) -> Vec<u32> {
    format!("{}\n{}", out.stdout, out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next()?.trim().parse().ok())
        .collect()
}

#[test]
fn svwar_cannot_tell_extensions_apart() {
    // 84 INVITEs in a few seconds from one address: the per-source call rate limit (on by default) would answer
    // some 503 by time rather than by extension; this test is about what the answers themselves reveal.
    let server = Server::start("svwar", ServerOptions { extra_sip: "calls_per_second_per_source = 0".into(), ..ServerOptions::default() });
    let range = 100..=120u32;
    let mut checks = Checks::default();
    // svwar first probes a random extension to learn what "no such user" looks like; --force skips that check and
    // reports every extension whose answer it takes for "exists".
    let runs: [(&str, &[&str]); 5] = [
        ("REGISTER", &[]),
        ("OPTIONS", &["-m", "OPTIONS"]),
        ("INVITE", &["-m", "INVITE"]),
        ("OPTIONS-forced", &["-m", "OPTIONS", "--force"]),
        ("INVITE-forced", &["-m", "INVITE", "--force"]),
    ];
    for (name, extra) in runs {
        let mut args = vec!["-e", "100-120"];
        args.extend_from_slice(extra);
        let out = scanner(&server, "svwar", &format!("svwar-{name}"), &args);
        let found = reported_extensions(&out);
        eprintln!(
            "[e2e] svwar {name}: {} of {} extensions reported {found:?}",
            found.len(),
            range.clone().count()
        );
        let all = range.clone().all(|e| found.contains(&e));
        checks.check(found.is_empty() || all, || {
            format!(
                "svwar {name} told extensions apart (reported {found:?} of 100-120):\n{}",
                out.describe()
            )
        });
    }
    checks.check(server_alive(&server), || {
        format!("oncall died during the scans:\n{}", server.log_tail(40))
    });
    checks.finish();
}

fn server_alive(server: &Server) -> bool {
    http_get(server.http, "/healthz").map(|r| r.0) == Some(200)
}
