//! Backups (issue 24 item 3): `oncall backup DIR` while a server runs, after a caller left a message; then a second
//! server restored from that folder into an empty data folder answers with the same requests and plays the same
//! recording (the bytes its web admin serves hash like the original file). A damaged backup is refused before
//! anything is written, and a restore never writes into a data folder that already has a database.

mod support;

use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;
use std::time::Duration;
use support::*;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// (id, status, caller, summary) of each request, the part a restore must keep.
fn request_rows(server: &Server) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = server.requests().iter().map(|r| (r["id"].to_string(), field(r, "status").into(), field(r, "caller").into(), field(r, "summary").into())).collect();
    rows.sort();
    rows
}

/// The recording a manager downloads from the request's page.
fn downloaded_recording(server: &Server, cookie: &str, request: &str) -> Vec<u8> {
    let (status, _, page) = get_with_cookie(server.http, &format!("/requests/{request}"), cookie).expect("request page");
    assert_eq!(status, 200, "{page}");
    let at = page.find("/download\"").unwrap_or_else(|| panic!("no recording link on the request page:\n{page}"));
    let start = page[..at].rfind("\"/recordings/").expect("recording link") + 1;
    let link = &page[start..at + "/download".len()];
    let (status, head, body) = http_exchange_raw(server.http, &format!("GET {link} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")).expect("download");
    assert_eq!(status, 200, "{head}");
    body
}

#[test]
fn a_restored_server_has_the_same_requests_and_recordings() {
    let first = Server::start("backup-first", ServerOptions::default());
    let work = first.dir.subdir("peers");
    let mut checks = Checks::default();
    first.oncall(&["user", "add", "--name", "Mia", "--email", "mia@example.test", "--role", "manager", "--password", "backup-test-pass-1"]);
    leave_page_message_to(&first, &work, "The lift on floor three is stuck with nobody inside.", "oncall");
    let request = match first.wait_for_request(Duration::from_secs(10), |_| true) {
        Ok(r) => r["id"].to_string(),
        Err(rows) => panic!("no request after the message: {rows:?}"),
    };
    let originals = first.recordings();
    assert!(!originals.is_empty(), "the message left no recording under {}", first.data_dir.display());
    let original_hashes: Vec<String> = originals.iter().map(|p| sha256(&fs::read(p).unwrap())).collect();

    // Online: the first server keeps running while the backup is taken.
    let backup = first.dir.join("backup");
    let out = first.oncall(&["backup", &backup.display().to_string()]);
    eprintln!("[e2e] {}", out.trim());
    checks.check(out.contains("backup written") && out.contains("the database"), || format!("backup said {out:?}"));
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["sha256"].as_str().unwrap()).collect();
    for h in &original_hashes {
        checks.check(listed.contains(&h.as_str()), || format!("recording sha256 {h} is not in the manifest: {manifest:#}"));
    }
    checks.check(manifest["schema_version"].as_i64().unwrap_or(0) > 0, || format!("no schema version: {manifest:#}"));
    // A second backup into the same folder is refused.
    let again = first.oncall_fails(&["backup", &backup.display().to_string()]);
    checks.check(again.contains("not empty"), || format!("a backup over a backup said {again:?}"));
    let before = request_rows(&first);
    let cookie = format!("oncall_session={}", web_login(&first, "mia@example.test", "backup-test-pass-1"));
    let served_before = downloaded_recording(&first, &cookie, &request);

    // A damaged copy is refused and writes nothing.
    let damaged = work.join("damaged");
    copy_dir(&backup, &damaged);
    let wav = manifest["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).find(|p| p.ends_with(".wav")).expect("a WAV in the backup");
    let mut bytes = fs::read(damaged.join(wav)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(damaged.join(wav), bytes).unwrap();
    let target = work.join("target-data");
    let config = work.join("restore.toml");
    fs::write(&config, format!("[storage]\ndata_dir = \"{}\"\n", target.display())).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_oncall")).arg("--config").arg(&config).arg("restore").arg(&damaged).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    checks.check(!refused.status.success() && said.contains("does not match the manifest"), || format!("a damaged backup: {said}"));
    checks.check(!target.join("oncall.db").exists(), || "the damaged restore wrote a database".into());

    let restored = Server::start("backup-restored", ServerOptions { restore_from: Some(backup.clone()), ..ServerOptions::default() });
    let after = request_rows(&restored);
    checks.check(after == before, || format!("requests after the restore {after:#?}, before {before:#?}"));
    let restored_hashes: Vec<String> = restored.recordings().iter().map(|p| sha256(&fs::read(p).unwrap())).collect();
    checks.check(restored_hashes == original_hashes, || format!("recordings {restored_hashes:?}, expected {original_hashes:?}"));
    let cookie = format!("oncall_session={}", web_login(&restored, "mia@example.test", "backup-test-pass-1"));
    let served_after = downloaded_recording(&restored, &cookie, &request);
    checks.check(sha256(&served_after) == sha256(&served_before), || "the restored server plays a different recording".into());

    // Restoring over a data folder that has a database is refused.
    let over = std::process::Command::new(env!("CARGO_BIN_EXE_oncall")).arg("--config").arg(&restored.config_path).arg("restore").arg(&backup).output().unwrap();
    let said = String::from_utf8_lossy(&over.stderr).to_string();
    checks.check(!over.status.success() && said.contains("empty data folder"), || format!("restore over live data: {said}"));
    checks.finish();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
