//! Recording storage against a real S3-compatible server: s3s-fs (crates.io), started by each test on 127.0.0.1 on a
//! free port with a temporary data folder, and stopped (SIGKILL) when the test ends. The binary comes from
//! `ONCALL_S3S_FS`, else `~/.cache/oncall-tools/bin/s3s-fs`, else `scripts/install-s3-server.sh` installs it there.
//!
//! Covered: a recorded call ends up as an object with the same bytes; Range reads are exact; a 30-minute WAV goes
//! up in parts; the server is stopped with uploads pending and in the middle of one, calls keep recording, and
//! after it is back every file arrives exactly once; a recorder killed mid-call leaves a WAV that start-up repairs,
//! registers and uploads; another organization's lookup is "not found"; verify reports missing and orphaned
//! objects; retention deletes and logs; migrate moves a local archive to S3.

use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oncall_core::request::{NewRecording, NewRequest, RecordingKind};
use oncall_core::{OrgId, RecordingId, RequestId, Store, StoreError, Timestamp};
use oncall_recordings::playback::{is_not_found, open_recording, PlaybackAnswer};
use oncall_recordings::spool::RetryPolicy;
use oncall_recordings::storage::s3::{S3Config, S3Store};
use oncall_recordings::storage::{open_for_playback, LocalStore, ObjectKey, RecordingStore};
use oncall_recordings::uploader::{self, UploaderConfig};
use oncall_recordings::{RecordingInfo, WavRecorder};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCESS_KEY: &str = "oncall-test";
const SECRET_KEY: &str = "oncall-test-secret";
const BUCKET: &str = "recordings";

// ---------------------------------------------------------------------------------------------------------------
// The S3 server

fn s3s_fs_binary() -> PathBuf {
    static BIN: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut bin = BIN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = &*bin {
        return b.clone();
    }
    let path = match std::env::var_os("ONCALL_S3S_FS") {
        Some(p) => PathBuf::from(p),
        None => {
            let default = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/oncall-tools/bin/s3s-fs");
            if !default.exists() {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-s3-server.sh");
                let status = Command::new("bash").arg(script).stdout(Stdio::null()).status().expect("run install-s3-server.sh");
                assert!(status.success(), "scripts/install-s3-server.sh failed");
            }
            default
        }
    };
    assert!(path.exists(), "s3s-fs not found at {}", path.display());
    *bin = Some(path.clone());
    path
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// s3s-fs serving `root` on 127.0.0.1:`port`; killed on drop.
struct S3Server {
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let mut s = S3Server { root: root.to_path_buf(), port: free_port(), child: None };
        s.restart();
        s
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server dies mid-request, as in a crash or a network cut.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay in front of the server that counts and paces request bytes, so a test can stop the server while
/// a large upload is provably in transit. New connections while the server is down are closed at once.
struct Relay {
    port: u16,
    uploaded: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let uploaded = Arc::new(AtomicU64::new(0));
        let counter = uploaded.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], upstream))).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            // ~64 MB/s at most: a 29 MB body takes long enough to be interrupted.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Relay { port, uploaded, task }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

struct Env {
    _dir: tempfile::TempDir,
    db: Store,
    acme: OrgId,
    other: OrgId,
    spool: PathBuf,
    s3_root: PathBuf,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::connect(&format!("sqlite://{}", dir.path().join("oncall.db").display())).await.unwrap();
    let acme = db.create_organization("Acme", "acme", "UTC", Timestamp::now()).await.unwrap();
    let other = db.create_organization("Other", "other", "UTC", Timestamp::now()).await.unwrap();
    let spool = dir.path().join("recordings");
    let s3_root = dir.path().join("s3");
    Env { db, acme, other, spool, s3_root, _dir: dir }
}

async fn s3_store(endpoint: &str, multipart_threshold: u64) -> Arc<S3Store> {
    let mut cfg = S3Config::new(BUCKET);
    cfg.prefix = "oncall/".into();
    cfg.region = Some("us-east-1".into());
    cfg.endpoint = Some(endpoint.into());
    cfg.path_style = true;
    cfg.access_key_id = Some(ACCESS_KEY.into());
    cfg.secret_access_key = Some(SECRET_KEY.into());
    cfg.multipart_threshold = multipart_threshold;
    cfg.part_size = 8 * 1024 * 1024;
    Arc::new(S3Store::connect(cfg).await.unwrap())
}

/// Records `seconds` of a tone as a call would, into `<spool>/<org>/2024/06/<token>-message.wav`.
fn record(spool: &Path, org: &str, token: &str, seconds: u32) -> (ObjectKey, RecordingInfo) {
    let key = ObjectKey::new(format!("{org}/2024/06/{token}-message.wav")).unwrap();
    let path = spool.join(key.as_str());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut rec = WavRecorder::create(&path, 1, 8000).unwrap();
    let mut frame = [0i16; 160];
    for n in 0..seconds * 50 {
        for (i, s) in frame.iter_mut().enumerate() {
            let t = (n * 160 + i as u32) as f64 / 8000.0;
            *s = (8000.0 * (t * 440.0 * std::f64::consts::TAU).sin() + (n % 7) as f64) as i16;
        }
        rec.write(&frame).unwrap();
        if n % 50 == 49 {
            rec.checkpoint().unwrap();
        }
    }
    (key, rec.finish().unwrap())
}

async fn add_row(db: &Store, org: OrgId, request: Option<RequestId>, key: &ObjectKey, info: &RecordingInfo, at: Timestamp) -> RecordingId {
    let new = NewRecording {
        request,
        kind: RecordingKind::Message,
        storage_key: key.to_string(),
        duration_ms: info.duration_ms as i64,
        peak: info.peak as f64,
        rms: info.rms as f64,
        created_at: at,
    };
    db.add_recording(org, &new).await.unwrap()
}

fn fast_uploader(spool: &Path) -> UploaderConfig {
    let mut cfg = UploaderConfig::new(spool);
    cfg.retry = RetryPolicy { base: Duration::from_millis(50), max: Duration::from_millis(400), jitter: 0.2 };
    cfg.poll_interval = Duration::from_millis(100);
    cfg
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn read_object(store: &dyn RecordingStore, key: &ObjectKey) -> Vec<u8> {
    let mut body = store.get(key, None).await.unwrap();
    let mut v = Vec::new();
    body.read_to_end(&mut v).await.unwrap();
    v
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A plain HTTP/1.0 GET (for presigned URLs); returns the status and body.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    use std::io::Write;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&resp[9..12]).unwrap().parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_call_becomes_an_object_with_the_same_bytes_and_plays_by_range() {
    let e = env().await;
    let server = S3Server::start(&e.s3_root);
    let store = s3_store(&server.endpoint(), 16 * 1024 * 1024).await;

    let request = e.db.create_request(e.acme, &NewRequest { caller: "+15550001".into(), summary: "leak".into(), call: None }, Timestamp::now()).await.unwrap();
    let (key, info) = record(&e.spool, "acme", "tok1", 3);
    let original = std::fs::read(e.spool.join(key.as_str())).unwrap();
    let id = add_row(&e.db, e.acme, Some(request), &key, &info, Timestamp::now()).await;

    let up = uploader::start(e.db.clone(), store.clone(), fast_uploader(&e.spool)).await.unwrap();
    up.notify();
    eventually("upload", Duration::from_secs(20), || async { e.db.pending_uploads(10).await.unwrap().is_empty() }).await;
    up.shutdown().await;

    // The object holds exactly the recorded bytes; the row knows its key, size and checksum; the spool copy is gone.
    assert_eq!(read_object(&*store, &key).await, original);
    let row = e.db.stored_recording(e.acme, id).await.unwrap();
    let upload = row.upload.unwrap();
    assert_eq!((upload.object_key.as_str(), upload.size_bytes, upload.sha256.clone()), (key.as_str(), original.len() as i64, sha_hex(&original)));
    assert!(!e.spool.join(key.as_str()).exists(), "spool copy deleted after a verified upload");
    assert!(e.s3_root.join(BUCKET).join("oncall").join(key.as_str()).exists(), "stored under the prefix");
    assert_eq!((row.duration_ms, row.peak > 0.2, row.rms > 0.1), (3000, true, true));

    // Range requests return exactly the asked bytes.
    for (header, first, last) in [("bytes=0-43", 0, 43), ("bytes=1000-1999", 1000, 1999), ("bytes=-100", original.len() - 100, original.len() - 1)] {
        let p = open_for_playback(&*store, &key, Some(header)).await.unwrap();
        assert_eq!(p.head.status, 206, "{header}");
        assert_eq!(p.head.content_length, (last - first + 1) as u64);
        assert_eq!(p.head.content_range, Some(format!("bytes {first}-{last}/{}", original.len())));
        let mut got = Vec::new();
        p.body.unwrap().read_to_end(&mut got).await.unwrap();
        assert_eq!(got, &original[first..=last], "{header}");
    }
    let p = open_for_playback(&*store, &key, Some(&format!("bytes={}-", original.len()))).await.unwrap();
    assert_eq!((p.head.status, p.head.content_range.as_deref()), (416, Some(&*format!("bytes */{}", original.len()))));
    let p = open_for_playback(&*store, &key, None).await.unwrap();
    assert_eq!((p.head.status, p.head.content_length), (200, original.len() as u64));

    // A presigned URL serves the same bytes without credentials.
    let url = store.presign_get(&key, Duration::from_secs(60)).await.unwrap().unwrap();
    let (status, body) = http_get(&url);
    assert_eq!((status, body == original), (200, true));

    // Another organization cannot look the recording up: the playback endpoint's 404.
    assert!(matches!(e.db.stored_recording(e.other, id).await, Err(StoreError::NotFound(_))));
    let err = open_recording(&e.db, &*store, &e.spool, e.other, id, None, None).await.unwrap_err();
    assert!(is_not_found(&err), "{err}");
    let (_, answer) = open_recording(&e.db, &*store, &e.spool, e.acme, id, Some("bytes=44-"), None).await.unwrap();
    let PlaybackAnswer::Stream(p) = answer else { panic!("expected a stream") };
    assert_eq!((p.head.status, p.head.content_length), (206, original.len() as u64 - 44));
    let (_, answer) = open_recording(&e.db, &*store, &e.spool, e.acme, id, None, Some(Duration::from_secs(30))).await.unwrap();
    assert!(matches!(answer, PlaybackAnswer::Redirect(url) if url.contains("X-Amz-Signature")));

    // verify: clean; then an orphan and a missing object are reported.
    let report = oncall_recordings::verify::verify(&e.db, &*store, &e.spool).await.unwrap();
    assert!(report.is_clean() && report.archived == 1, "{report}");
    let stray = ObjectKey::new("acme/2024/06/stray-message.wav").unwrap();
    std::fs::write(e.spool.join("stray.wav"), b"not a recording").unwrap();
    store.put(&stray, &e.spool.join("stray.wav")).await.unwrap();
    store.delete(&key).await.unwrap();
    let report = oncall_recordings::verify::verify(&e.db, &*store, &e.spool).await.unwrap();
    assert_eq!(report.orphaned, vec![stray]);
    assert_eq!(report.missing.len(), 1, "{report}");
    assert_eq!(report.missing[0].recording, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_minute_recording_goes_up_in_parts() {
    let e = env().await;
    let server = S3Server::start(&e.s3_root);
    let store = s3_store(&server.endpoint(), 16 * 1024 * 1024).await;
    let (key, info) = record(&e.spool, "acme", "long", 30 * 60);
    assert_eq!(info.duration_ms, 30 * 60 * 1000);
    let path = e.spool.join(key.as_str());
    let original = std::fs::read(&path).unwrap();
    assert!(original.len() > 28_000_000);

    let put = store.put(&key, &path).await.unwrap();
    assert_eq!((put.size, put.already_present), (original.len() as u64, false));
    let head = store.client().head_object().bucket(BUCKET).key(store.s3_key(&key)).send().await.unwrap();
    let etag = head.e_tag().unwrap().trim_matches('"').to_string();
    assert!(etag.ends_with("-4"), "a 28.8 MB file in 8 MiB parts is a 4-part upload, ETag {etag}");
    assert_eq!(sha_hex(&read_object(&*store, &key).await), sha_hex(&original));
    // Storing it again sends nothing.
    assert!(store.put(&key, &path).await.unwrap().already_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_outage_loses_and_duplicates_nothing() {
    let e = env().await;
    let mut server = S3Server::start(&e.s3_root);
    let relay = Relay::start(server.port).await;
    let store = s3_store(&format!("http://127.0.0.1:{}", relay.port), 16 * 1024 * 1024).await;
    let mut expected: Vec<(ObjectKey, RecordingId, String)> = Vec::new();
    let mut add = |key: ObjectKey, id: RecordingId| {
        let sha = sha_hex(&std::fs::read(e.spool.join(key.as_str())).unwrap());
        expected.push((key, id, sha));
    };

    // 1. The server is down with uploads pending; calls keep being recorded.
    server.stop();
    let up = uploader::start(e.db.clone(), store.clone(), fast_uploader(&e.spool)).await.unwrap();
    for i in 0..4 {
        let (key, info) = record(&e.spool, "acme", &format!("down{i}"), 2);
        let id = add_row(&e.db, e.acme, None, &key, &info, Timestamp::now()).await;
        up.notify();
        add(key, id);
    }
    eventually("failed attempts", Duration::from_secs(10), || async { up.stats().failures.load(Ordering::Relaxed) >= 4 }).await;
    assert_eq!(e.db.pending_uploads(100).await.unwrap().len(), 4);

    // 2. The process restarts while the server is still down: the queue comes back from the database.
    up.shutdown().await;
    let up = uploader::start(e.db.clone(), store.clone(), fast_uploader(&e.spool)).await.unwrap();

    // 3. The server comes back; then dies again in the middle of a 29 MB upload.
    server.restart();
    eventually("the four small uploads", Duration::from_secs(20), || async { e.db.pending_uploads(100).await.unwrap().is_empty() }).await;
    let (key, info) = record(&e.spool, "acme", "big", 30 * 60);
    let before = relay.uploaded.load(Ordering::Relaxed);
    let id = add_row(&e.db, e.acme, None, &key, &info, Timestamp::now()).await;
    add(key.clone(), id);
    up.notify();
    eventually("the big upload in transit", Duration::from_secs(30), || async { relay.uploaded.load(Ordering::Relaxed) > before + 4_000_000 }).await;
    server.stop();
    let failures = up.stats().failures.load(Ordering::Relaxed);
    // Calls still record meanwhile.
    for i in 0..2 {
        let (key, info) = record(&e.spool, "other", &format!("during{i}"), 1);
        let id = add_row(&e.db, e.other, None, &key, &info, Timestamp::now()).await;
        up.notify();
        add(key, id);
    }
    eventually("the interrupted upload fails", Duration::from_secs(20), || async { up.stats().failures.load(Ordering::Relaxed) > failures }).await;
    assert!(e.spool.join(key.as_str()).exists(), "nothing leaves the spool while the server is down");
    assert!(e.db.stored_recording(e.acme, id).await.unwrap().upload.is_none());

    // 4. Back again: everything arrives, once.
    server.restart();
    eventually("all uploads", Duration::from_secs(60), || async { e.db.pending_uploads(100).await.unwrap().is_empty() }).await;
    up.shutdown().await;

    let objects = store.list("").await.unwrap();
    let mut keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    keys.sort();
    let mut want: Vec<&str> = expected.iter().map(|(k, _, _)| k.as_str()).collect();
    want.sort();
    assert_eq!(keys, want, "exactly one object per recording");
    for (key, id, sha) in &expected {
        assert_eq!(&sha_hex(&read_object(&*store, key).await), sha, "{key}");
        let org = if key.org_slug() == "acme" { e.acme } else { e.other };
        assert_eq!(e.db.stored_recording(org, *id).await.unwrap().upload.unwrap().sha256, *sha);
        assert!(!e.spool.join(key.as_str()).exists());
    }
    let report = oncall_recordings::verify::verify(&e.db, &*store, &e.spool).await.unwrap();
    assert!(report.is_clean() && report.archived == expected.len(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_killed_mid_call_is_repaired_registered_and_uploaded() {
    let e = env().await;
    let server = S3Server::start(&e.s3_root);
    let store = s3_store(&server.endpoint(), 16 * 1024 * 1024).await;

    // A call is being recorded when the process is SIGKILLed: the recorder checkpointed a second ago, more audio
    // reached the file after that, and nothing was finalized or written to the database.
    let key = ObjectKey::new("acme/2024/06/killed-message.wav").unwrap();
    let path = e.spool.join(key.as_str());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut rec = WavRecorder::create(&path, 1, 8000).unwrap();
    let tone: Vec<i16> = (0..8000 * 5).map(|n| ((n as f64 * 0.2).sin() * 12000.0) as i16).collect();
    rec.write(&tone[..16000]).unwrap();
    rec.checkpoint().unwrap();
    rec.write(&tone[16000..]).unwrap();
    std::mem::forget(rec);
    // More than 2 s of audio is on disk, but the header says 2 s: a player would stop early or reject it.
    assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 16000);

    let up = uploader::start(e.db.clone(), store.clone(), fast_uploader(&e.spool)).await.unwrap();
    assert_eq!(up.recovery.repaired, vec![path.clone()]);
    assert_eq!(up.recovery.registered.len(), 1);
    let (org, id, registered_key) = up.recovery.registered[0].clone();
    assert_eq!((org, registered_key.as_str()), (e.acme, key.as_str()));
    eventually("upload", Duration::from_secs(20), || async { e.db.pending_uploads(10).await.unwrap().is_empty() }).await;
    up.shutdown().await;

    // The archived copy is a valid WAV with everything that reached the disk.
    let bytes = read_object(&*store, &key).await;
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert!(samples.len() > 16000, "recovered more than the checkpoint: {}", samples.len());
    assert_eq!(&samples[..], &tone[..samples.len()]);
    let row = e.db.stored_recording(e.acme, id).await.unwrap();
    assert_eq!((row.kind.as_str(), row.request, row.duration_ms), ("message", None, samples.len() as i64 / 8));
    assert!(row.peak > 0.3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_recordings_and_logs_it() {
    let e = env().await;
    let server = S3Server::start(&e.s3_root);
    let store = s3_store(&server.endpoint(), 16 * 1024 * 1024).await;
    let now = Timestamp::now();
    let day = 86_400_000;
    let request = e.db.create_request(e.acme, &NewRequest { caller: "+15550002".into(), summary: "old".into(), call: None }, Timestamp(now.0 - 100 * day)).await.unwrap();
    let (old_key, info) = record(&e.spool, "acme", "old", 1);
    let old = add_row(&e.db, e.acme, Some(request), &old_key, &info, Timestamp(now.0 - 100 * day)).await;
    let (new_key, info) = record(&e.spool, "acme", "new", 1);
    let new = add_row(&e.db, e.acme, Some(request), &new_key, &info, Timestamp(now.0 - day)).await;
    let (other_key, info) = record(&e.spool, "other", "old", 1);
    let other_old = add_row(&e.db, e.other, None, &other_key, &info, Timestamp(now.0 - 100 * day)).await;
    let up = uploader::start(e.db.clone(), store.clone(), fast_uploader(&e.spool)).await.unwrap();
    eventually("uploads", Duration::from_secs(20), || async { e.db.pending_uploads(10).await.unwrap().is_empty() }).await;
    up.shutdown().await;

    let policy = oncall_recordings::uploader::RetentionPolicy { default_days: None, per_org: [("acme".to_string(), 30)].into() };
    let deleted = uploader::apply_retention(&e.db, &*store, &e.spool, &policy, now).await.unwrap();
    assert_eq!(deleted, 1);
    assert!(store.head(&old_key).await.unwrap().is_none());
    assert!(matches!(e.db.stored_recording(e.acme, old).await, Err(StoreError::NotFound(_))));
    assert!(e.db.stored_recording(e.acme, new).await.is_ok());
    assert!(e.db.stored_recording(e.other, other_old).await.is_ok(), "the other organization keeps recordings forever");
    let events = e.db.request_events(e.acme, request).await.unwrap();
    assert!(events.iter().any(|ev| ev.kind == "recording" && ev.detail.contains("30-day retention")), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_local_archive_to_s3() {
    let e = env().await;
    let server = S3Server::start(&e.s3_root);
    let s3 = s3_store(&server.endpoint(), 16 * 1024 * 1024).await;
    let local: Arc<dyn RecordingStore> = Arc::new(LocalStore::new(&e.spool));

    // A year on the local backend: recorded, "archived" in place.
    let mut keys = Vec::new();
    for i in 0..3 {
        let (key, info) = record(&e.spool, "acme", &format!("m{i}"), 1);
        add_row(&e.db, e.acme, None, &key, &info, Timestamp::now()).await;
        keys.push(key);
    }
    let up = uploader::start(e.db.clone(), local.clone(), fast_uploader(&e.spool)).await.unwrap();
    eventually("local archiving", Duration::from_secs(20), || async { e.db.pending_uploads(10).await.unwrap().is_empty() }).await;
    up.shutdown().await;
    assert!(keys.iter().all(|k| e.spool.join(k.as_str()).exists()), "the local archive is the spool: never deleted");

    let report = oncall_recordings::migrate::migrate(&e.db, &*local, &*s3, false).await.unwrap();
    assert_eq!((report.copied, report.already_there, report.failed.len(), report.missing_source.len()), (3, 0, 0, 0));
    let again = oncall_recordings::migrate::migrate(&e.db, &*local, &*s3, true).await.unwrap();
    assert_eq!((again.copied, again.already_there), (0, 3));
    assert!(keys.iter().all(|k| !e.spool.join(k.as_str()).exists()), "deleted after a verified copy");
    let report = oncall_recordings::verify::verify(&e.db, &*s3, &e.spool).await.unwrap();
    assert!(report.is_clean() && report.archived == 3, "{report}");
}
