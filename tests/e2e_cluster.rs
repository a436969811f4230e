//! Several OnCall instances behind Kamailio with one PostgreSQL database and one S3 bucket (issue 10,
//! docs/deploy.md): two `oncall serve` processes (`[instance] id` "a" and "b"), a database of their own in the
//! PostgreSQL cluster of `ONCALL_TEST_POSTGRES_URL` (scripts/with-postgres.sh; the test is skipped with a
//! message when it is unset), s3s-fs as the S3 server, and Kamailio 5.6 running `docs/deploy/kamailio.cfg` as
//! is (only its listen address and dispatcher list are given, with `-A`).
//!
//! `two_instances_share_calls_sessions_and_recordings_and_survive_one_dying`, in one run (~50 s):
//! 1. ten SIPp callers leave a message through Kamailio: every call succeeds, the calls land on both instances
//!    (`calls.instance`, each instance's /metrics), and every recording reaches the bucket
//!    (`oncall recordings verify` clean, nothing pending);
//! 2. a web session opened on a is accepted by b (the session lives in the database);
//! 3. while two message calls (one on each instance) and a stream of short calls run, a is killed with
//!    `kill -9`. Measured and printed, not asserted: how long until Kamailio marked a down, how many short calls
//!    failed (those a held when it died) and how many were delayed by the failover. Asserted: the calls made
//!    after the failover all succeed, on b;
//! 4. a comes back: it closes the call it was carrying, registers the cut recording and uploads its spool, so
//!    `oncall recordings verify` is clean again; Kamailio's probe marks it up;
//! 5. a dies again with no calls: Kamailio's probes alone mark it down (measured).
//!
//! `an_escalation_left_by_a_dead_instance_is_taken_over_by_another` (~55 s, in parallel with the first): both
//! instances page through the same carrier trunk (Kamailio as the carrier, [`Kamailio::start_trunk`]); a takes a
//! "page on-call" call, rings the first person's mobile through the trunk (it never answers) and is killed; b
//! takes the escalation over when its lease expired and rings the second person through the trunk; the first
//! person was rung once in all.
//!
//! `a_burst_of_escalations_left_by_a_dead_instance_is_notified_once` (~65 s, in parallel with the others): a third
//! instance c opens ten escalations at once that notify by text through an SMS gateway played by the test (each
//! instance has its own URL there, so the gateway knows who sent what), texts the first person of each and is
//! killed; a and b, whose heartbeats coincide, race for the ten expired leases and text the second person: each
//! (request, person) text reaches the gateway exactly once.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const S3_ACCESS_KEY: &str = "oncall-cluster";
const S3_SECRET_KEY: &str = "oncall-cluster-secret";
const BUCKET: &str = "recordings";

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL: a database of this test's own in the cluster CI (or scripts/with-postgres.sh) started

/// `psql URL -At -c SQL`; panics when it fails.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("run psql (Debian package postgresql-client)");
    assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new, empty database in the cluster of `ONCALL_TEST_POSTGRES_URL`, so this test never meets the rows of
/// the other tests sharing the cluster. None when the variable is unset.
fn fresh_database() -> Option<String> {
    let base = std::env::var("ONCALL_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    // Tests of this binary run in parallel: the counter keeps their names apart, the clock keeps runs apart.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    let name = format!("oncall_cluster_{}_{millis}_{n}", std::process::id());
    psql(&base, &format!("CREATE DATABASE {name}"));
    let (server, _) = base.rsplit_once('/').expect("ONCALL_TEST_POSTGRES_URL ends with /<database>");
    Some(format!("{server}/{name}"))
}

// ---------------------------------------------------------------------------------------------------------------
// S3: s3s-fs serving a folder

fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ONCALL_S3S_FS") {
        return PathBuf::from(p);
    }
    let default = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/oncall-tools/bin/s3s-fs");
    if !default.exists() {
        let status = Command::new("bash").arg(repo_root().join("scripts/install-s3-server.sh")).stdout(Stdio::null()).status().expect("run install-s3-server.sh");
        assert!(status.success(), "scripts/install-s3-server.sh failed");
    }
    default
}

/// s3s-fs on a loopback port, serving `<dir>/s3` (the bucket is a folder in it); killed on drop.
struct S3Server {
    _process: Spawned,
    endpoint: String,
}

impl S3Server {
    fn start(dir: &Path) -> S3Server {
        let root = dir.join("s3");
        fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(s3s_fs_binary());
        cmd.args(["--host", LOOPBACK, "--port", &port.to_string(), "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY]).arg(&root);
        let process = Spawned::spawn(&mut cmd, dir, "s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((LOOPBACK, port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port}");
            thread::sleep(Duration::from_millis(20));
        }
        S3Server { _process: process, endpoint: format!("http://{LOOPBACK}:{port}") }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Kamailio running docs/deploy/kamailio.cfg

/// Kamailio on `docs/deploy/kamailio.cfg` as shipped, listening on a loopback port and dispatching to the
/// instances in a `dispatcher.list` the test writes. Its own process group under `timeout`; stopped on drop.
struct Balancer {
    process: Option<Spawned>,
    addr: SocketAddr,
}

impl Balancer {
    fn start(dir: &Path, instances: &[&Server]) -> Balancer {
        require_tool("kamailio");
        let config = repo_root().join("docs/deploy/kamailio.cfg");
        let list = dir.join("dispatcher.list");
        let lines: String = instances.iter().map(|s| format!("1 sip:{} 0 0\n", s.sip_udp)).collect();
        fs::write(&list, lines).unwrap();
        let addr: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "TERM", "300", "kamailio", "-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-w")
            .arg(dir)
            .arg("-Y")
            .arg(dir)
            .arg("-f")
            .arg(&config)
            .arg("-A")
            .arg(format!("LISTEN=udp:{addr}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()));
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let process = Spawned::spawn(&mut cmd, dir, "kamailio");
        let mut b = Balancer { process: Some(process), addr };
        b.wait_ready(Duration::from_secs(10));
        b
    }

    /// Waits for the configuration's own answer to a keepalive OPTIONS (no user part: "200 Keepalive").
    fn wait_ready(&mut self, limit: Duration) {
        let sock = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let deadline = Instant::now() + limit;
        for n in 0.. {
            let probe = format!(
                "OPTIONS sip:{a} SIP/2.0\r\nVia: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bKready{n}\r\nMax-Forwards: 70\r\n\
                 From: <sip:probe@{LOOPBACK}>;tag=r{n}\r\nTo: <sip:{a}>\r\nCall-ID: ready{n}@test\r\nCSeq: 1 OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                a = self.addr
            );
            let _ = sock.send_to(probe.as_bytes(), self.addr);
            let mut buf = [0u8; 2048];
            if let Ok((len, _)) = sock.recv_from(&mut buf) {
                let answer = String::from_utf8_lossy(&buf[..len]).to_string();
                assert!(answer.starts_with("SIP/2.0 200"), "kamailio answered its keepalive with: {}", answer.lines().next().unwrap_or(""));
                return;
            }
            let alive = self.process.as_mut().is_some_and(|p| p.is_running());
            assert!(alive && Instant::now() < deadline, "kamailio not answering on {} (running: {alive}); log:\n{}", self.addr, tail(&self.log(), 40));
        }
    }

    fn log(&self) -> String {
        self.process.as_ref().map(|p| p.stderr_text() + &p.stdout_text()).unwrap_or_default()
    }

    /// The script's "OnCall balancer: ..." lines.
    fn events(&self) -> Vec<String> {
        self.log().lines().filter_map(|l| l.find("OnCall balancer: ").map(|i| l[i + 17..].to_string())).collect()
    }

    /// How many balancer lines contain `needle`.
    fn count(&self, needle: &str) -> usize {
        self.events().iter().filter(|e| e.contains(needle)).count()
    }

    /// Polls the log until more than `seen` balancer lines contain `needle`; the moment it was seen.
    fn wait_event(&self, needle: &str, seen: usize, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if self.count(needle) > seen {
                return Some(Instant::now());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("[e2e] kamailio log tail:\n{}", tail(&self.log(), 60));
        }
        if let Some(p) = self.process.take() {
            let group = format!("-{}", p.pid());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = p.wait_for(Duration::from_secs(3));
            let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The instances

/// One OnCall instance of the cluster: `[instance] id`, the shared database and (with `s3`) the shared bucket;
/// `extra` is more TOML (e.g. `[paging]`). Server::start writes `[storage]` itself (SQLite, local recordings), so
/// the instance is started once on that, stopped, its `[storage]` pointed at PostgreSQL (and S3), and started
/// again on the same ports.
fn start_instance(name: &str, id: &str, database_url: &str, s3: Option<&S3Server>, extra: &str) -> Server {
    let s3_section = s3.map_or(String::new(), |s3| {
        format!(
            "[storage.s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n\
             access_key_id = \"{S3_ACCESS_KEY}\"\nsecret_access_key = \"{S3_SECRET_KEY}\"\n",
            s3.endpoint
        )
    });
    let mut server = Server::start(
        name,
        ServerOptions { rtp_ports: 80, extra_config: format!("[instance]\nid = \"{id}\"\n\n{s3_section}\n{extra}"), ..ServerOptions::default() },
    );
    server.terminate(Duration::from_secs(10));
    let backend = if s3.is_some() { "backend = \"s3\"\n" } else { "" };
    let config = fs::read_to_string(&server.config_path).unwrap();
    let config = config.replacen("[storage]\n", &format!("[storage]\n{backend}database_url = \"{database_url}\"\n"), 1);
    fs::write(&server.config_path, config).unwrap();
    server.kill_and_restart();
    server
}

fn calls_received(server: &Server) -> f64 {
    let page = http_get(server.http, "/metrics").map(|(_, body)| body).unwrap_or_default();
    metric(&page, "oncall_calls_received_total").unwrap_or(-1.0)
}

/// `oncall recordings verify` on `server`'s config: (clean, its summary line). Not clean while an upload is
/// pending on another instance (the file is in that instance's spool, which this one cannot see).
fn verify(server: &Server) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
    cmd.args(["recordings", "verify", "--config"]).arg(&server.config_path);
    let out = run_for(&mut cmd, Duration::from_secs(20), &server.dir.path, "oncall-verify");
    let summary = out.stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    if out.success() && summary.contains(", 0 pending upload") {
        (true, summary)
    } else {
        (false, format!("{}{}", out.stdout, tail(&out.stderr, 5)))
    }
}

/// Polls [`verify`] until it is clean with nothing pending; the last output either way.
fn wait_verified(server: &Server, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let (clean, out) = verify(server);
        if clean {
            return Ok(out);
        }
        if Instant::now() >= deadline {
            return Err(out);
        }
        thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP with headers (web login)

// ---------------------------------------------------------------------------------------------------------------
// SIPp figures

/// "Successful call" and "Failed call" totals from SIPp's final screen.
fn sipp_totals(run: &SippRun) -> (u64, u64) {
    let total = |label: &str| {
        run.screen
            .lines()
            .filter(|l| l.trim_start().starts_with(label))
            .filter_map(|l| l.split('|').next_back()?.trim().parse().ok())
            .next_back()
            .unwrap_or(0)
    };
    (total("Successful call"), total("Failed call"))
}

/// The INVITE → 200 times (ms) SIPp wrote with `-trace_rtt -rtt_freq 1` into `dir/*_rtt.csv`, one per call.
fn response_times_ms(dir: &Path) -> Vec<f64> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().ends_with("_rtt.csv") {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            // "Date_ms;response_time_ms;rtd_no" (SIPp 3.6)
            out.extend(text.lines().skip(1).filter_map(|l| l.split(';').nth(1)?.trim().parse::<f64>().ok()));
        }
    }
    out
}

#[test]
fn two_instances_share_calls_sessions_and_recordings_and_survive_one_dying() {
    let Some(database_url) = fresh_database() else {
        eprintln!("[e2e] SKIPPED e2e_cluster: ONCALL_TEST_POSTGRES_URL is not set (run under scripts/with-postgres.sh; CI does)");
        return;
    };
    let t0 = Instant::now();
    let dir = TestDir::new("cluster");
    let s3 = S3Server::start(&dir.path);
    let mut a = start_instance("cluster-a", "a", &database_url, Some(&s3), "");
    let b = start_instance("cluster-b", "b", &database_url, Some(&s3), "");
    let kam = Balancer::start(&dir.path, &[&a, &b]);
    let mut checks = Checks::default();
    eprintln!("[e2e] instances a {} and b {} behind kamailio {}; database {database_url}; s3 {}", a.sip_udp, b.sip_udp, kam.addr, s3.endpoint);

    // 1. Ten callers leave a message through Kamailio (5 a second, all at once).
    let calls = Sipp::to(kam.addr, &dir.path, "uac_message_via_proxy.xml", "messages").load(5, 10, 10).limit(Duration::from_secs(45)).spawn();

    // 2. Meanwhile: a web session opened on a is good on b.
    a.oncall(&["user", "add", "--name", "Mia", "--email", "mia@example.test", "--role", "manager", "--password", "cluster-pass-1"]);
    let session = web_login(&a, "mia@example.test", "cluster-pass-1");
    let on_b = get_with_cookie(b.http, "/account", &format!("oncall_session={session}"));
    checks.check(on_b.as_ref().is_some_and(|(s, _, body)| *s == 200 && body.contains("mia@example.test")), || {
        format!("the session from a was not accepted by b: {:?}", on_b.as_ref().map(|(s, h, _)| (s, h)))
    });
    let anonymous = get_with_cookie(b.http, "/account", "x=y").map(|(s, _, _)| s);
    checks.check(anonymous == Some(303), || format!("b let /account through without a session: {anonymous:?}"));

    let run = calls.wait();
    let (ok, failed) = sipp_totals(&run);
    eprintln!("[e2e] {:.1} s: messages through kamailio: {ok} successful, {failed} failed", t0.elapsed().as_secs_f64());
    if !run.success() {
        panic!("message calls through kamailio failed; balancer: {:?}\n{}", kam.events(), run.describe());
    }
    let per_instance = psql(&database_url, "SELECT instance || '=' || count(*) FROM calls GROUP BY instance ORDER BY instance");
    let (on_a, on_b) = (calls_received(&a), calls_received(&b));
    eprintln!("[e2e] calls per instance (database): {}; /metrics oncall_calls_received_total a={on_a} b={on_b}", per_instance.replace('\n', ", "));
    checks.check(on_a >= 1.0 && on_b >= 1.0 && on_a + on_b == 10.0, || format!("the 10 calls did not land on both instances: a={on_a} b={on_b}"));
    checks.check(per_instance.lines().count() == 2, || format!("calls.instance should name a and b: {per_instance:?}"));
    let taken = psql(&database_url, "SELECT detail || '=' || count(*) FROM request_events WHERE kind = 'instance' GROUP BY detail ORDER BY detail");
    eprintln!("[e2e] request events: {}", taken.replace('\n', ", "));
    checks.check(taken.contains("call taken by instance a") && taken.contains("call taken by instance b"), || {
        format!("the requests' event logs should say which instance took each call: {taken:?}")
    });
    match wait_verified(&a, Duration::from_secs(20)) {
        Ok(out) => eprintln!("[e2e] {:.1} s: after the messages: {out}", t0.elapsed().as_secs_f64()),
        Err(out) => checks.fail(format!("recordings did not all reach the bucket: {out}")),
    }

    // 3. Two message calls (one per instance: round robin) and a stream of short calls; a dies mid-way.
    let cut = Sipp::to(kam.addr, &dir.path, "uac_message_via_proxy.xml", "cut").load(10, 2, 2).limit(Duration::from_secs(60)).spawn();
    thread::sleep(Duration::from_secs(5));
    let stream_dir = dir.subdir("stream");
    let stream = Sipp::to(kam.addr, &dir.path, "uac_call_timed.xml", "stream")
        .load(4, 40, 20)
        .arg("-trace_rtt")
        .arg("-rtt_freq")
        .arg("1")
        .cwd(&stream_dir)
        .limit(Duration::from_secs(45))
        .spawn();
    thread::sleep(Duration::from_secs(4));
    let seen_down = (kam.count("marked down"), kam.count("DOWN"));
    let killed_at = Instant::now();
    eprintln!("[e2e] {:.1} s: kill -9 a", t0.elapsed().as_secs_f64());
    a.kill();
    let down = kam.wait_event("marked down", seen_down.0, Duration::from_secs(15)).or_else(|| kam.wait_event("DOWN", seen_down.1, Duration::from_secs(1)));
    let down_secs = down.map(|t| (t - killed_at).as_secs_f64());
    let stream = stream.wait();
    let (ok, failed) = sipp_totals(&stream);
    let times = response_times_ms(&stream_dir);
    let delayed: Vec<f64> = times.iter().copied().filter(|&t| t > 1000.0).collect();
    eprintln!(
        "[e2e] a killed: kamailio marked it down after {}; short calls: {ok} successful, {failed} failed; {} of {} answered \
         after more than 1 s (failed over: {:?} ms)",
        down_secs.map_or("never".to_string(), |s| format!("{s:.2} s")),
        delayed.len(),
        times.len(),
        delayed.iter().map(|t| t.round()).collect::<Vec<_>>()
    );
    checks.check(down.is_some(), || format!("kamailio never marked a down: {:?}", kam.events()));
    checks.check(ok + failed == 40, || format!("the stream should have made 40 calls: {}", stream.describe()));
    // Only the calls a held when it died may fail: 4 calls a second, 2 s each, half of them on a.
    checks.check(failed <= 6, || format!("{failed} short calls failed across the failover: {}", stream.describe()));

    // After the failover every new call succeeds, on b.
    let before = calls_received(&b);
    let after = Sipp::to(kam.addr, &dir.path, "uac_call_timed.xml", "after").load(6, 6, 6).limit(Duration::from_secs(20)).run();
    let taken_by_b = calls_received(&b) - before;
    eprintln!("[e2e] after the failover: {:?} (6 calls, {taken_by_b} received by b)", sipp_totals(&after));
    checks.check(after.success() && taken_by_b == 6.0, || format!("calls after the failover should all succeed on b ({taken_by_b} on b): {}", after.describe()));

    // 4. a comes back: it closes its cut call, uploads what its spool holds, and kamailio takes it back.
    let seen_up = kam.count(&format!("UP sip:{}", a.sip_udp));
    let restarted = Instant::now();
    a.kill_and_restart();
    let up = kam.wait_event(&format!("UP sip:{}", a.sip_udp), seen_up, Duration::from_secs(10));
    eprintln!("[e2e] a restarted; kamailio marked it up {}", up.map_or("never".to_string(), |t| format!("{:.2} s later", (t - restarted).as_secs_f64())));
    checks.check(up.is_some(), || format!("kamailio did not take a back: {:?}", kam.events()));
    let open = psql(&database_url, "SELECT count(*) FROM calls WHERE instance = 'a' AND ended_at IS NULL");
    checks.check(open == "0", || format!("a left {open} calls open after its restart"));
    match wait_verified(&b, Duration::from_secs(30)) {
        Ok(out) => eprintln!("[e2e] {:.1} s: after a's restart: {out}", t0.elapsed().as_secs_f64()),
        Err(out) => checks.fail(format!("a's spool did not reach the bucket after its restart: {out}\n{}", a.log_tail(30))),
    }
    // With S3 and no `keep_spool`, the uploader may archive a's cut recording (and delete the spool file) before the
    // call recovery opens the request the message was for: the recovery then takes the measurements from the row
    // the uploader registered. Every recording ends up with its request.
    let cut_requests = psql(&database_url, "SELECT count(*) FROM request_events WHERE detail LIKE 'the call was cut by a restart%'");
    let unattached = psql(&database_url, "SELECT count(*) FROM recordings WHERE request_id IS NULL");
    eprintln!("[e2e] a's cut message: {cut_requests} request(s) opened for it; {unattached} recording(s) without a request");
    checks.check(unattached == "0", || format!("{unattached} recording(s) left without a request after a's restart"));
    drop(cut);

    // 5. With no call to notice it, a dead instance is found by the probes alone.
    let probe_down = format!("DOWN noticed on OPTIONS sip:{}", a.sip_udp);
    let seen_probe_down = kam.count(&probe_down);
    let idle_kill = Instant::now();
    a.kill();
    let probed = kam.wait_event(&probe_down, seen_probe_down, Duration::from_secs(10));
    eprintln!(
        "[e2e] a killed again with no calls: the probes marked it down after {}",
        probed.map_or("never".to_string(), |t| format!("{:.2} s", (t - idle_kill).as_secs_f64()))
    );
    checks.check(probed.is_some(), || format!("the probes never marked the idle, dead a down: {:?}", kam.events()));
    eprintln!("[e2e] balancer: {:?}", kam.events().iter().filter(|e| !e.starts_with("INVITE to") && !e.starts_with("OPTIONS to")).collect::<Vec<_>>());
    checks.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Escalation takeover between instances, paging through a trunk

const TRUNK_USER: &str = "oncall-trunk";
const TRUNK_PASSWORD: &str = "trunk-s3cret";

/// An employee's mobile at the carrier that never answers: a UDP socket registered at the trunk (Kamailio,
/// [`Kamailio::start_trunk`]) under `user`, keeping for every INVITE it receives when, its Call-ID and its Via
/// headers (the lowest is the OnCall instance that placed the call). Retransmissions share the Call-ID, so
/// distinct Call-IDs are distinct notifications.
struct CarrierPhone {
    invites: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String, Vec<String>)>>>,
}

impl CarrierPhone {
    fn register(trunk: &Kamailio, user: &str) -> CarrierPhone {
        let sock = UdpSocket::bind((LOOPBACK, 0)).expect("bind a phone");
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let local = sock.local_addr().unwrap();
        let registrar = trunk.addr;
        let register = format!(
            "REGISTER sip:{registrar} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{port};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{user}@{registrar}>;tag=r{port}\r\nTo: <sip:{user}@{registrar}>\r\nCall-ID: reg-{port}@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\nContact: <sip:{user}@{local}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
            port = local.port()
        );
        sock.send_to(register.as_bytes(), registrar).expect("send REGISTER");
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no answer to REGISTER from the trunk");
            if let Ok((len, _)) = sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..len]);
                assert!(text.starts_with("SIP/2.0 200"), "REGISTER at the trunk answered: {}", text.lines().next().unwrap_or(""));
                break;
            }
        }
        let invites = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = invites.clone();
        // Detached: it ends with the test binary (the read timeout only lets the loop spin).
        thread::spawn(move || loop {
            let Ok((len, _)) = sock.recv_from(&mut buf) else { continue };
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            if text.starts_with("INVITE ") {
                let call_id = sip_header(&text, "Call-ID").unwrap_or("").to_string();
                let vias = text
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .filter(|l| l.to_ascii_lowercase().starts_with("via:") || l.starts_with("v:"))
                    .map(str::to_string)
                    .collect();
                seen.lock().unwrap().push((Instant::now(), call_id, vias));
            }
        });
        CarrierPhone { invites }
    }

    /// When the first INVITE arrived and its Via headers, waiting up to `limit`.
    fn wait_invite(&self, limit: Duration) -> Option<(Instant, Vec<String>)> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((at, _, vias)) = self.invites.lock().unwrap().first() {
                return Some((*at, vias.clone()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Distinct Call-IDs of the INVITEs received: how many times this phone was rung.
    fn rings(&self) -> usize {
        let mut ids: Vec<String> = self.invites.lock().unwrap().iter().map(|(_, id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

/// Whether the lowest Via of an INVITE names `instance` (the UA that placed the call; proxies add theirs above).
fn placed_by(vias: &[String], instance: &Server) -> bool {
    vias.last().is_some_and(|v| v.contains(&instance.sip_udp.to_string()))
}

/// A caller pages on-call through instance a; both instances have the same carrier trunk (Kamailio playing the
/// carrier: 407 challenge, then delivery to the phone registered under the number). a rings the first person's
/// mobile through the trunk (it never answers) and is killed. b, sharing the database, finds the escalation's lease
/// expired on one of its heartbeats (every 10 s; the lease is 30 s), takes it over ("escalation taken over by
/// instance b" in the request's event log) and, the first step's 30 s being over, rings the second person's
/// mobile through the same trunk. The first person is rung once in all.
#[test]
fn an_escalation_left_by_a_dead_instance_is_taken_over_by_another() {
    let Some(database_url) = fresh_database() else {
        eprintln!("[e2e] SKIPPED e2e_cluster: ONCALL_TEST_POSTGRES_URL is not set (run under scripts/with-postgres.sh; CI does)");
        return;
    };
    let dir = TestDir::new("takeover");
    let trunk = Kamailio::start_trunk(&dir.path, TRUNK_USER, TRUNK_PASSWORD);
    let extra = format!(
        "[paging]\nenabled = true\nkey_timeout_secs = 8\nmax_retries = 1\nmax_hold_secs = 0\n\n\
         [[trunks]]\nname = \"carrier\"\nregistrar = \"sip:{}\"\nusername = \"{TRUNK_USER}\"\npassword = \"{TRUNK_PASSWORD}\"\nexpires_secs = 300\n",
        trunk.addr
    );
    let mut a = start_instance("takeover-a", "a", &database_url, None, &extra);
    let b = start_instance("takeover-b", "b", &database_url, None, &extra);
    let mut checks = Checks::default();
    let ghost = CarrierPhone::register(&trunk, "15550002222");
    let erin = CarrierPhone::register(&trunk, "15550003333");
    a.oncall(&["person", "add", "--name", "Ghost", "--email", "ghost@example.test", "--phone", "+15550002222"]);
    a.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", "+15550003333"]);
    a.oncall(&["policy", "add", "--name", "Chain", "--person", "ghost@example.test", "--person", "erin@example.test", "--wait-secs", "30"]);

    let caller = Sipp::new(&a, "uac_message_via_proxy.xml", "caller").limit(Duration::from_secs(40)).spawn();
    let Some((rung_at, vias)) = ghost.wait_invite(Duration::from_secs(40)) else {
        panic!("nobody rang the first person through the trunk; trunk: {:?}\na's log:\n{}", trunk.events(), a.log_tail(40));
    };
    checks.check(placed_by(&vias, &a), || format!("the first person's call was not placed by a ({}): {vias:?}", a.sip_udp));
    thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    let killed_wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    a.kill();
    eprintln!("[e2e] a rang the first person through the trunk, then was killed {:.1} s later", (killed_at - rung_at).as_secs_f64());
    match erin.wait_invite(Duration::from_secs(60)) {
        Some((at, vias)) => {
            eprintln!(
                "[e2e] the second person was rung through the trunk by {} {:.1} s after the kill ({:.1} s after the first step began)",
                if placed_by(&vias, &b) { "b" } else { "someone else" },
                (at - killed_at).as_secs_f64(),
                (at - rung_at).as_secs_f64()
            );
            checks.check(placed_by(&vias, &b), || format!("the second person's call was not placed by b ({}): {vias:?}", b.sip_udp));
        }
        None => checks.fail(format!("after a died nobody rang the second person; trunk: {:?}\nb's log:\n{}", trunk.events(), b.log_tail(40))),
    }
    let events = psql(&database_url, "SELECT detail FROM request_events WHERE kind = 'instance' ORDER BY id");
    eprintln!("[e2e] the request's instance events: {:?}", events.lines().collect::<Vec<_>>());
    let taken_at = psql(&database_url, "SELECT at FROM request_events WHERE detail = 'escalation taken over by instance b'");
    if let Ok(at) = taken_at.parse::<i64>() {
        eprintln!("[e2e] b took the escalation over {:.1} s after a was killed (lease 30 s, heartbeat 10 s)", (at - killed_wall_ms) as f64 / 1000.0);
    }
    checks.check(events.contains("escalation run by instance a"), || format!("no \"escalation run by instance a\": {events:?}"));
    checks.check(events.contains("escalation taken over by instance b"), || format!("no \"escalation taken over by instance b\": {events:?}"));
    checks.check(ghost.rings() == 1, || format!("the first person was rung {} times (once expected)", ghost.rings()));
    drop(caller);
    checks.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// A burst of escalations left by a dead instance, raced for by two others, counted at an SMS gateway

/// One text the fake gateway received: when, from which instance (the last path segment before
/// `/Messages.json`: each instance is given its own URL), to whom, and the body.
#[derive(Clone, Debug)]
struct GatewayText {
    at: Instant,
    instance: String,
    to: String,
    body: String,
}

/// `application/x-www-form-urlencoded` value decoding (`+` is a space, `%XX` a byte).
fn form_value(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Twilio-like SMS gateway on loopback answering 201 to every POST and keeping every text it was given
/// (one thread per connection, so instances sending at once are not serialised by the test).
struct SmsGateway {
    addr: SocketAddr,
    texts: std::sync::Arc<std::sync::Mutex<Vec<GatewayText>>>,
}

impl SmsGateway {
    fn start() -> SmsGateway {
        let listener = std::net::TcpListener::bind((LOOPBACK, 0)).expect("bind the SMS gateway");
        let addr = listener.local_addr().unwrap();
        let texts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = texts.clone();
        // Detached: it ends with the test binary.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                thread::spawn(move || {
                    if let Some(text) = SmsGateway::serve(stream) {
                        kept.lock().unwrap().push(text);
                    }
                });
            }
        });
        SmsGateway { addr, texts }
    }

    /// Reads one HTTP request, answers 201 with a Twilio-style JSON body, returns the text it carried.
    fn serve(mut stream: TcpStream) -> Option<GatewayText> {
        use std::io::BufRead;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let path = line.split_whitespace().nth(1)?.to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        let at = Instant::now();
        let body = String::from_utf8_lossy(&body).into_owned();
        let form: std::collections::HashMap<String, String> =
            body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (form_value(k), form_value(v))).collect();
        let answer = "{\"sid\":\"SM1\",\"status\":\"queued\"}";
        let _ = write!(stream, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
        let instance = path.trim_end_matches("/Messages.json").rsplit('/').next().unwrap_or("").to_string();
        Some(GatewayText { at, instance, to: form.get("To").cloned().unwrap_or_default(), body: form.get("Body").cloned().unwrap_or_default() })
    }

    fn texts(&self) -> Vec<GatewayText> {
        self.texts.lock().unwrap().clone()
    }

    /// `[texts]` for one instance: the gateway's URL with the instance's id in its path.
    fn config(&self, instance: &str) -> String {
        format!(
            "[texts]\nenabled = true\ntransport = \"http\"\nurl = \"http://{}/2010-04-01/Accounts/AC123/{instance}/Messages.json\"\n\
             account = \"AC123\"\ntoken = \"tok\"\nfrom = \"+15550001111\"\n",
            self.addr
        )
    }

    /// Polls until `pred` holds for the texts received so far; the texts either way.
    fn wait_until(&self, limit: Duration, pred: impl Fn(&[GatewayText]) -> bool) -> Result<Vec<GatewayText>, Vec<GatewayText>> {
        let deadline = Instant::now() + limit;
        loop {
            let texts = self.texts();
            if pred(&texts) {
                return Ok(texts);
            }
            if Instant::now() >= deadline {
                return Err(texts);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The request number in a notification's body ("OnCall: new request #12 from …").
fn request_in(body: &str) -> Option<i64> {
    body.split("request #").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

const FIRST_PHONE: &str = "+15550004444";
const SECOND_PHONE: &str = "+15550005555";
const BURST: usize = 10;

/// Issue 10: "two instances process the same burst of due steps concurrently: each notification happens once".
/// Instance c takes ten "page on-call" calls at once; the policy texts the first person (step 1), then after 30 s
/// (the shortest wait a policy allows) the second (step 2), through an SMS gateway played by the test. c is killed
/// with `kill -9` once the ten first texts went out, its ten escalations still leased to it. a and b, running all
/// along on the same database with the same gateway and restarted together so that their heartbeats coincide,
/// find the leases expired at the same moment and race to claim them (one `UPDATE … FOR UPDATE SKIP LOCKED`);
/// every escalation goes on on exactly one of them, which texts the second person. Counted at the gateway: each
/// (request, person) text exactly once (twenty in all, none twice), the first ones from c, the second ones from a
/// or b. Printed: how the ten were split between a and b and how long after the kill they were taken over (~65 s).
#[test]
fn a_burst_of_escalations_left_by_a_dead_instance_is_notified_once() {
    let Some(database_url) = fresh_database() else {
        eprintln!("[e2e] SKIPPED e2e_cluster: ONCALL_TEST_POSTGRES_URL is not set (run under scripts/with-postgres.sh; CI does)");
        return;
    };
    let t0 = Instant::now();
    let gateway = SmsGateway::start();
    let paging = "[paging]\nenabled = true\nmax_hold_secs = 0\n\n";
    let mut a = start_instance("burst-a", "a", &database_url, None, &format!("{paging}{}", gateway.config("a")));
    let mut b = start_instance("burst-b", "b", &database_url, None, &format!("{paging}{}", gateway.config("b")));
    // Restarted together, a and b beat (every 10 s from their start) within milliseconds of each other: the first
    // beats after c's leases expired look for orphaned escalations at the same time, a real race for the claim.
    thread::scope(|s| {
        s.spawn(|| a.kill_and_restart());
        s.spawn(|| b.kill_and_restart());
    });
    let mut c = start_instance("burst-c", "c", &database_url, None, &format!("{paging}{}", gateway.config("c")));
    let mut checks = Checks::default();
    a.oncall(&["person", "add", "--name", "Fay", "--email", "fay@example.test", "--phone", FIRST_PHONE, "--text"]);
    a.oncall(&["person", "add", "--name", "Gus", "--email", "gus@example.test", "--phone", SECOND_PHONE, "--text"]);
    a.oncall(&["policy", "add", "--name", "Texts", "--person", "fay@example.test", "--person", "gus@example.test", "--wait-secs", "30"]);
    eprintln!("[e2e] {:.1} s: a, b and c up on {database_url}; gateway {}", t0.elapsed().as_secs_f64(), gateway.addr);

    // Ten callers page on-call through c, all at once.
    let callers = Sipp::new(&c, "uac_message_via_proxy.xml", "burst").load(10, BURST as u32, BURST as u32).limit(Duration::from_secs(40)).spawn();
    let first = gateway.wait_until(Duration::from_secs(40), |t| t.iter().filter(|t| t.to == FIRST_PHONE).count() >= BURST);
    let first = match first {
        Ok(texts) => texts,
        Err(texts) => panic!("c did not text the first person for {BURST} requests: {texts:?}\nc's log:\n{}", c.log_tail(40)),
    };
    // The callers hear c's goodbye after their message is stored (and their request paged): let them finish.
    let run = callers.wait();
    let (ok, failed) = sipp_totals(&run);
    checks.check(failed == 0, || format!("{failed} of the {BURST} callers failed: {}", run.describe()));
    let killed_at = Instant::now();
    let killed_wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    c.kill();
    // `first` holds at least BURST texts (the wait above succeeded): max and min exist.
    eprintln!(
        "[e2e] {:.1} s: {ok} callers paged through c, which texted the first person for {} requests ({:.1} s from the first \
         text to the last), then was killed",
        t0.elapsed().as_secs_f64(),
        first.len(),
        (first.iter().map(|t| t.at).max().unwrap() - first.iter().map(|t| t.at).min().unwrap()).as_secs_f64(),
    );
    let leased = psql(&database_url, "SELECT coalesce(lease_owner, '-') || '=' || count(*) FROM escalation_work GROUP BY lease_owner ORDER BY lease_owner");
    eprintln!("[e2e] escalation leases when c died: {}", leased.replace('\n', ", "));
    checks.check(leased == format!("c={BURST}"), || format!("the {BURST} escalations should all be leased to c when it dies: {leased:?}"));

    // a and b take them over when the leases (30 s, renewed every 10 s) expire, and text the second person.
    let second = gateway.wait_until(Duration::from_secs(50), |t| t.iter().filter(|t| t.to == SECOND_PHONE).count() >= BURST);
    let last_second = match &second {
        Ok(texts) => texts.iter().filter(|t| t.to == SECOND_PHONE).map(|t| t.at).max(),
        Err(_) => None,
    };
    // A duplicate would come right after the first copy: listen a little longer.
    thread::sleep(Duration::from_secs(2));
    let texts = gateway.texts();
    let mut per_key: std::collections::BTreeMap<(i64, String), Vec<&GatewayText>> = std::collections::BTreeMap::new();
    for t in &texts {
        per_key.entry((request_in(&t.body).unwrap_or(-1), t.to.clone())).or_default().push(t);
    }
    let requests: Vec<i64> = psql(&database_url, "SELECT id FROM requests ORDER BY id").lines().filter_map(|l| l.parse().ok()).collect();
    let duplicates: Vec<String> = per_key.iter().filter(|(_, v)| v.len() > 1).map(|((r, to), v)| format!("#{r} {to} x{}", v.len())).collect();
    let missing: Vec<String> = requests
        .iter()
        .flat_map(|r| [FIRST_PHONE, SECOND_PHONE].map(|to| (*r, to.to_string())))
        .filter(|k| !per_key.contains_key(k))
        .map(|(r, to)| format!("#{r} {to}"))
        .collect();
    let senders = |to: &str| {
        let mut by: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for t in texts.iter().filter(|t| t.to == to) {
            *by.entry(t.instance.clone()).or_default() += 1;
        }
        by
    };
    let (step1_by, step2_by) = (senders(FIRST_PHONE), senders(SECOND_PHONE));
    let taken = psql(&database_url, "SELECT detail || '=' || count(*) FROM request_events WHERE detail LIKE 'escalation taken over%' GROUP BY detail ORDER BY detail");
    let taken_at: Vec<f64> = psql(&database_url, "SELECT at FROM request_events WHERE detail LIKE 'escalation taken over%' ORDER BY at")
        .lines()
        .filter_map(|l| l.parse::<i64>().ok())
        .map(|at| (at - killed_wall_ms) as f64 / 1000.0)
        .collect();
    eprintln!(
        "[e2e] {:.1} s: {} texts at the gateway for {} requests ({} duplicates, {} missing); step 1 sent by {step1_by:?}, step 2 by {step2_by:?}",
        t0.elapsed().as_secs_f64(),
        texts.len(),
        requests.len(),
        duplicates.len(),
        missing.len()
    );
    eprintln!(
        "[e2e] takeovers: {}; {:.1}–{:.1} s after the kill (lease 30 s, heartbeat 10 s); last step-2 text {} after the kill",
        taken.replace('\n', ", "),
        taken_at.first().copied().unwrap_or(f64::NAN),
        taken_at.last().copied().unwrap_or(f64::NAN),
        last_second.map_or("never".to_string(), |t| format!("{:.1} s", (t - killed_at).as_secs_f64()))
    );
    checks.check(requests.len() == BURST, || format!("{} requests were opened, {BURST} expected", requests.len()));
    checks.check(duplicates.is_empty(), || format!("texts sent more than once: {duplicates:?}"));
    checks.check(missing.is_empty(), || format!("texts never sent: {missing:?}\na's log:\n{}\nb's log:\n{}", a.log_tail(20), b.log_tail(20)));
    checks.check(texts.len() == 2 * BURST, || format!("{} texts at the gateway, {} expected: {texts:?}", texts.len(), 2 * BURST));
    checks.check(step1_by.keys().all(|i| i == "c"), || format!("the first texts should all come from c: {step1_by:?}"));
    checks.check(step2_by.keys().all(|i| i == "a" || i == "b"), || format!("the second texts should come from a or b: {step2_by:?}"));
    let taken_count: usize = taken.lines().filter_map(|l| l.rsplit('=').next()?.parse::<usize>().ok()).sum();
    checks.check(taken_count == BURST, || format!("each escalation should be taken over exactly once: {taken:?}"));
    let sent_counts = psql(&database_url, "SELECT count(*) || '/' || count(DISTINCT (request_id, stage, person_id)) FROM notifications");
    checks.check(sent_counts == format!("{0}/{0}", 2 * BURST), || format!("the ledger holds (rows/distinct) {sent_counts}, {} expected", 2 * BURST));
    checks.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// An employee's phone registering through Kamailio

/// A baresip registers with OnCall's registrar through Kamailio in front of two instances, with a short interval
/// so it refreshes during the test. Each instance only accepts the digest nonces it issued, so the balancer must
/// send a phone's authenticated REGISTER (and its refreshes) where its challenge came from: docs/deploy/kamailio.cfg
/// hashes REGISTERs by Call-ID. (With round robin the answer always reached the other instance, which challenged
/// again, and the phone never registered.) The binding lands in the shared database. Then a baresip caller dials the
/// IVR through Kamailio and hangs up: the call is answered and its row ended.
#[test]
fn a_phone_registers_through_kamailio_with_two_instances() {
    let Some(database_url) = fresh_database() else {
        eprintln!("[e2e] SKIPPED e2e_cluster: ONCALL_TEST_POSTGRES_URL is not set (run under scripts/with-postgres.sh; CI does)");
        return;
    };
    let dir = TestDir::new("cluster-register");
    let registrar = "[registrar]\nenabled = true\nrealm = \"oncall-test\"\nalgorithms = [\"MD5\"]\nmin_expires_secs = 5\n";
    let a = start_instance("cluster-reg-a", "a", &database_url, None, registrar);
    let b = start_instance("cluster-reg-b", "b", &database_url, None, registrar);
    let kam = Balancer::start(&dir.path, &[&a, &b]);
    a.oncall(&["person", "add", "--name", "Erin", "--email", "erin@example.test", "--phone", "+15550003333"]);
    let out = a.oncall(&["person", "sip-account", "erin@example.test", "--username", "erin", "--password", "desk-phone-7"]);
    assert!(out.contains("SIP account erin set"), "{out}");
    // Both instances re-read the accounts every 3 s.
    thread::sleep(Duration::from_secs(4));

    let work = dir.subdir("phone");
    let mic = silence_wav_secs(&work, 60);
    let proxy = kam.addr;
    let started = Instant::now();
    let _phone = Baresip::start_with_account(&work, &mic, Duration::from_secs(60), move |_port| {
        format!("<sip:erin@{proxy};transport=udp>;auth_pass=desk-phone-7;regint=6\n")
    });
    // The first registration and at least one refresh.
    let registered = |s: &Server| s.log().matches("device registered username=erin").count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while registered(&a) + registered(&b) < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
    let (on_a, on_b) = (registered(&a), registered(&b));
    let secs = started.elapsed().as_secs_f64();
    let bindings = psql(&database_url, "SELECT count(*) FROM sip_bindings");
    let dispatched = kam.count("REGISTER to");
    eprintln!("[e2e] through kamailio: {} registrations in {secs:.1} s (a={on_a}, b={on_b}), {dispatched} REGISTERs dispatched, {bindings} binding(s) in the database", on_a + on_b);
    let mut checks = Checks::default();
    checks.check(on_a + on_b >= 2, || format!("the phone did not register and refresh through kamailio: a={on_a} b={on_b}; balancer: {:?}", kam.events()));
    checks.check(bindings != "0", || "no binding in the shared database".into());
    // A challenge and its answer per registration: no ping-pong between instances.
    checks.check(dispatched <= 2 * (on_a + on_b) + 2, || format!("{dispatched} REGISTERs for {} registrations: {:?}", on_a + on_b, kam.events()));

    // A baresip caller through Kamailio: answered by an instance's IVR, and its BYE finds the way back
    // (record-routed) so the call ends on both sides.
    let mut caller = Baresip::start(&dir.subdir("caller"), &mic, Duration::from_secs(40));
    caller.command("dial", &format!("sip:100@{proxy};transport=udp"));
    let established = caller.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    checks.check(established.is_some(), || format!("baresip's call through kamailio was not answered: {}", tail(&caller.log(), 30)));
    thread::sleep(Duration::from_secs(2));
    caller.command("hangup", "");
    let closed = caller.wait_event("CALL_CLOSED", Duration::from_secs(5));
    checks.check(closed.is_some(), || "the caller's hang-up did not close the call".into());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ended = String::new();
    while Instant::now() < deadline {
        ended = psql(&database_url, "SELECT instance || ':' || (ended_at IS NOT NULL) FROM calls ORDER BY id LIMIT 1");
        if ended.ends_with("true") {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!("[e2e] a baresip call through kamailio: answered {}, row {ended:?}", established.is_some());
    checks.check(ended.ends_with("true"), || format!("the call row through kamailio did not end: {ended:?}"));
    checks.finish();
}
