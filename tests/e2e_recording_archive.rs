//! Playback of a recording that only the S3 archive holds (issue 10 item 4): `oncall serve` with
//! `[storage] backend = "s3"` on s3s-fs and the default `keep_spool = false`. A SIPp caller leaves a
//! message; once the uploader has put it in the bucket and deleted the spool copy, a manager downloads it
//! from the request page (`GET /recordings/{id}/download`, whole and with a `Range`) and gets the
//! bucket's bytes. s3s-fs comes from `ONCALL_S3S_FS` or `~/.cache/oncall-tools/bin/s3s-fs`
//! (`scripts/install-s3-server.sh`); the test is skipped with a message when neither is there.

mod support;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const ACCESS_KEY: &str = "oncall-archive";
const SECRET_KEY: &str = "oncall-archive-secret";
const BUCKET: &str = "recordings";

fn s3s_fs_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ONCALL_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/oncall-tools/bin/s3s-fs");
    default.exists().then_some(default)
}

/// s3s-fs on a loopback port serving `<dir>/s3`; killed on drop (by `Spawned`).
struct S3Server {
    _process: Spawned,
    endpoint: String,
    root: PathBuf,
}

impl S3Server {
    fn start(bin: &Path, dir: &Path) -> S3Server {
        let root = dir.join("s3");
        fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--host", LOOPBACK, "--port", &port.to_string(), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]).arg(&root);
        let process = Spawned::spawn(&mut cmd, dir, "s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((LOOPBACK, port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port}");
            thread::sleep(Duration::from_millis(50));
        }
        S3Server { _process: process, endpoint: format!("http://{LOOPBACK}:{port}"), root }
    }

    /// Where s3s-fs keeps the object `key`.
    fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }
}

/// One HTTP/1.1 exchange with raw bytes: (status, head, body). The body is not de-chunked: the
/// recordings endpoint answers with a `Content-Length`.
fn http_raw(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    http_exchange_raw(addr, request).unwrap_or_else(|| panic!("no HTTP answer from the admin site to {request:?}"))
}

fn get(addr: SocketAddr, path: &str, cookie: &str, extra: &str) -> (u16, String, Vec<u8>) {
    http_raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n{extra}Connection: close\r\n\r\n"))
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_recording_only_the_bucket_holds_is_played_from_the_bucket() {
    let Some(bin) = s3s_fs_binary() else {
        eprintln!("[e2e] SKIPPED e2e_recording_archive: no s3s-fs (set ONCALL_S3S_FS or run scripts/install-s3-server.sh; CI does)");
        return;
    };
    require_tool("sipp");
    let dir = TestDir::new("recording-archive");
    let s3 = S3Server::start(&bin, &dir.path);
    let s3_section = format!(
        "[storage.s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n\
         access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
        s3.endpoint
    );
    // Server::start writes `[storage]` itself: start once, then switch the backend to S3 and restart.
    let mut server = Server::start("recording-archive", ServerOptions { silence_secs: 0, extra_config: s3_section, ..ServerOptions::default() });
    server.terminate(Duration::from_secs(10));
    let config = fs::read_to_string(&server.config_path).unwrap().replacen("[storage]\n", "[storage]\nbackend = \"s3\"\n", 1);
    fs::write(&server.config_path, config).unwrap();
    server.kill_and_restart();
    server.oncall(&["user", "add", "--name", "Mia", "--email", "mia@example.test", "--role", "manager", "--password", "archive-pass-1"]);

    // Scenarios are named relative to tests/scenarios/; this one lives in bench/scenarios/.
    Sipp::new(&server, "../../bench/scenarios/ivr_message.xml", "caller").limit(Duration::from_secs(40)).run().assert_success();
    let request = server
        .wait_for_request(Duration::from_secs(20), |r| r["recordings"].as_array().is_some_and(|a| !a.is_empty()))
        .unwrap_or_else(|rows| panic!("no request with a recording: {rows:?}"));
    let id = request["id"].as_i64().unwrap();
    let key = request["recordings"][0].as_str().unwrap().to_string();
    let spool = server.data_dir.join("recordings").join(&key);
    let object = s3.object_path(&key);
    wait_until(Duration::from_secs(30), "the upload to the bucket and the spool copy's deletion", || object.is_file() && !spool.exists());
    let archived = fs::read(&object).unwrap();
    assert!(archived.len() > 44 + 8000 && archived.starts_with(b"RIFF"), "the bucket holds a WAV ({} bytes)", archived.len());

    let session = format!("oncall_session={}", web_login(&server, "mia@example.test", "archive-pass-1"));
    let (status, _, page) = get(server.http, &format!("/requests/{id}"), &session, "");
    assert_eq!(status, 200, "request page");
    let page = String::from_utf8_lossy(&page);
    let at = page.find("/download\"").unwrap_or_else(|| panic!("no download link on the request page:\n{page}"));
    let link = &page[page[..at].rfind("\"/recordings/").expect("the link's start") + 1..at + "/download".len()];

    let (status, head, body) = get(server.http, link, &session, "");
    assert_eq!(status, 200, "download of {link} after the spool copy is gone:\n{head}");
    assert!(body == archived, "the download is the bucket's object ({} vs {} bytes)", body.len(), archived.len());
    assert!(head.to_ascii_lowercase().contains("content-type: audio/wav"), "{head}");

    let (status, head, body) = get(server.http, link, &session, "Range: bytes=40-99\r\n");
    assert_eq!(status, 206, "ranged download:\n{head}");
    assert_eq!(body, archived[40..100]);
    assert!(head.contains(&format!("bytes 40-99/{}", archived.len())), "{head}");
    let (status, _, body) = get(server.http, link, &session, "Range: bytes=-10\r\n");
    assert_eq!((status, &body[..]), (206, &archived[archived.len() - 10..]), "the last 10 bytes");
    let (status, _, _) = get(server.http, link, "x=y", "");
    assert_ne!(status, 200, "no session, no recording");
}
