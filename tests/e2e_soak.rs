//! The short soak: `bench/soak.py` for 55 s at 20 concurrent IVR calls with recording, sampling every 5 s, against
//! this build's `oncall` (the long run, 30 minutes at 200 calls, and its figures are in docs/reliability.md).
//!
//! The script does the checking: SIPp counts 0 failed calls, every call SIPp placed has its row in `calls` (ended,
//! with a recording path), a valid WAV of the row's length and a row in `recordings`, and `oncall recordings
//! verify` is clean; it exits non-zero otherwise. This test runs it, asserts it passed, and reads its summary for
//! a sanity check of the numbers. RSS and descriptor slopes are printed but not asserted: 55 s is too short for a
//! slope to mean anything (calls start in step, so descriptors rise and fall with the call phases).

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// The numbers after `label` on the summary line that starts with it (e.g. "calls placed / ok / fail 47 / 47 / 0").
fn summary_numbers(out: &str, label: &str) -> Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in the soak summary:\n{out}"));
    line[label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

#[test]
fn short_soak_keeps_every_call_and_recording() {
    require_tool("sipp");
    require_tool("python3");
    let dir = TestDir::new("soak");
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("bench/soak.py"))
        .args(["--calls", "20", "--seconds", "55", "--interval", "5"])
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_oncall"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--csv")
        .arg(dir.join("soak.csv"))
        .arg("--svg")
        .arg(dir.join("soak.svg"));
    // A developer's environment must not override the script's config.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ONCALL_") {
            cmd.env_remove(key);
        }
    }
    // 55 s of calls, one call length (~22 s) to drain, start-up and checks: ~80 s.
    let run = run_for(&mut cmd, Duration::from_secs(150), &dir.path, "soak");
    assert!(run.success(), "bench/soak.py failed: {}", run.describe());
    let out = &run.stdout;
    eprintln!("[e2e] bench/soak.py summary:\n{}", tail(out, 14));
    assert!(out.contains("PASSED"), "no PASSED line:\n{out}");

    let calls = summary_numbers(out, "calls placed / ok / fail");
    assert_eq!(calls.len(), 3, "{calls:?}");
    let (placed, ok, failed) = (calls[0], calls[1], calls[2]);
    assert_eq!(failed, 0, "{out}");
    assert_eq!(ok, placed, "{out}");
    // 20 calls of ~22 s held for 55 s: about 60 calls; fewer than 30 means the concurrency was not held.
    assert!(placed >= 30, "only {placed} calls in 55 s at 20 concurrent:\n{out}");
    let stored = summary_numbers(out, "rows / valid WAVs");
    assert_eq!(stored[..2], [placed, placed], "{out}");

    // The samples and the plot were written.
    let csv = std::fs::read_to_string(dir.join("soak.csv")).expect("soak.csv");
    assert!(csv.lines().count() >= 12, "expected a sample every 5 s:\n{csv}");
    let svg = std::fs::read_to_string(dir.join("soak.svg")).expect("soak.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "not a plot:\n{svg}"
    );
}
