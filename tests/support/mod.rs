//! Shared helpers for the end-to-end tests: they run the real `oncall` binary and drive it with real SIP peers
//! (SIPp, baresip, sipsak) over loopback.
//!
//! Each test gets its own [`Server`]: free ports (probed by binding), its own working directory (config, data dir,
//! peer logs), the process killed when the value is dropped. When a test panics, the server's log tail and the
//! working directory's path are printed and the directory is kept for a post-mortem.
//!
//! The peers are installed by `scripts/install-test-deps.sh`; a missing binary fails the test with that hint. Every
//! external program runs with a hard time limit ([`run_for`], [`Spawned`]) so a stuck peer fails the test instead
//! of hanging the suite.
//!
//! The suite (about 80 s; test binaries run one after another, tests inside one in parallel):
//! `e2e_call` (baresip: greeting, RFC 4733 keys, recorded message), `e2e_dtmf` (SIP INFO, in-band tones),
//! `e2e_signalling` (CANCEL → 487, G.729-only → 488, sipsak OPTIONS), `e2e_robustness` (malformed UDP/TCP input),
//! `e2e_silent_caller` (RTP pacing, timeouts, retries, goodbye, BYE), `e2e_torture_wire` (RFC 4475 over UDP and
//! TCP), `e2e_scanners` (svmap, svwar), `e2e_flood` (per-source call rate limit under a SIPp flood; figures in
//! docs/reliability.md), `e2e_paging` (baresip employees: accept, decline → next person, no answer →
//! exhausted), `e2e_paging_devices` (phones registered to OnCall ring together, 486 → next step, keys across
//! the bridge), `e2e_kamailio_trunk` (page call and text through Kamailio with 407). Run one with
//! `cargo test --test e2e_dtmf`;
//! SIPp scenarios are in `tests/scenarios/`, and on failure the kept working directory holds every peer's logs
//! (SIPp's `messages.log` is a full SIP trace).
//!
//! Deliberately not here: any SIP or RTP implementation of our own beyond what measuring needs ([`RtpSink`] only
//! records packets; [`write_rtp_pcap`] only writes a capture for SIPp to play).
#![allow(dead_code)] // each test binary uses a different subset

pub mod http_peer;

use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const LOOPBACK: &str = "127.0.0.1";

/// The workspace root (the `oncall` package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A SIPp scenario in `tests/scenarios/`.
pub fn scenario(name: &str) -> PathBuf {
    let path = repo_root().join("tests/scenarios").join(name);
    assert!(path.is_file(), "missing scenario {}", path.display());
    path
}

pub fn sounds_dir() -> PathBuf {
    repo_root().join("sounds")
}

/// Finds an external program on PATH, or fails the test saying how to install it.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed; run scripts/install-test-deps.sh (installs sipp, baresip, sipsak, espeak-ng, sox)"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Ports and directories

/// Ports handed out by this process. Each test process starts in its own region of 20000-29999 (below the kernel's
/// ephemeral range, so sockets the OS numbers itself never land there) and every port is probed by binding it on
/// UDP and TCP before it is handed out.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn port_bindable(port: u16) -> bool {
    UdpSocket::bind((LOOPBACK, port)).is_ok() && TcpListener::bind((LOOPBACK, port)).is_ok()
}

/// `count` consecutive free ports (UDP and TCP), returning the first.
pub fn free_ports(count: u16) -> u16 {
    // 40 regions of 250 ports: tests of one binary run in parallel threads and share the counter; separate
    // processes (other test binaries, other engineers) most likely start in different regions.
    let _ = NEXT_PORT.compare_exchange(
        0,
        20000 + (std::process::id() % 40) as u16 * 250,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..2000 {
        let mut start = NEXT_PORT.fetch_add(count, Ordering::SeqCst);
        if start < 20000 || start.saturating_add(count) > 30000 {
            // wrapped around the region: start over at the bottom
            NEXT_PORT.store(20000 + count, Ordering::SeqCst);
            start = 20000;
        }
        if (start..start + count).all(port_bindable) {
            return start;
        }
    }
    panic!("no {count} consecutive free loopback ports in 20000-29999");
}

pub fn free_port() -> u16 {
    free_ports(1)
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, removed when dropped unless the test is failing (then kept and its path printed).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("oncall-e2e-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test dir");
        TestDir { path }
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// A sub-directory, created.
    pub fn subdir(&self, rel: &str) -> PathBuf {
        let p = self.path.join(rel);
        fs::create_dir_all(&p).expect("create sub-directory");
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("[e2e] test failed; kept its files in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Running programs with a time limit

/// How a program ended.
#[derive(Debug)]
pub struct Finished {
    pub label: String,
    /// None when it was killed at the time limit.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Exit code and the tails of both outputs, for assertion messages.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => format!("{s}"),
            None => "killed at the time limit".to_string(),
        };
        format!(
            "{} ended after {:.1} s: {status}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.label,
            self.elapsed.as_secs_f64(),
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A child process killed when dropped. Output goes to `<log_dir>/<label>.stdout|.stderr` (files, so a chatty
/// program never blocks on a full pipe).
pub struct Spawned {
    pub label: String,
    child: Option<Child>,
    started: Instant,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Spawned {
    pub fn spawn(cmd: &mut Command, log_dir: &Path, label: &str) -> Spawned {
        let stdout_path = log_dir.join(format!("{label}.stdout"));
        let stderr_path = log_dir.join(format!("{label}.stderr"));
        let out = fs::File::create(&stdout_path).expect("create stdout log");
        let err = fs::File::create(&stderr_path).expect("create stderr log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({:?}): {e}", cmd.get_program()));
        Spawned {
            label: label.to_string(),
            child: Some(child),
            started: Instant::now(),
            stdout_path,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `limit` for the program to exit by itself, then kills it.
    pub fn wait_for(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let mut child = self.child.take().expect("child present until waited for");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for {}: {e}", self.label),
            }
        };
        Finished {
            label: self.label.clone(),
            status,
            elapsed: self.started.elapsed(),
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a program to completion, killing it after `limit`.
pub fn run_for(cmd: &mut Command, limit: Duration, log_dir: &Path, label: &str) -> Finished {
    Spawned::spawn(cmd, log_dir, label).wait_for(limit)
}

// ---------------------------------------------------------------------------------------------------------------
// The OnCall server

/// The knobs a test turns; everything else comes from the server's defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub answer_after_ms: u64,
    pub timeout_secs: u64,
    pub max_retries: u32,
    pub max_message_secs: u64,
    pub silence_secs: u64,
    /// Extra `key = value` lines for the `[sip]` section (e.g. the per-source call rate limit).
    pub extra_sip: String,
    /// RTP ports for the server (two per call); 40 leave room for a few calls, a load test needs more.
    pub rtp_ports: u16,
    /// Extra TOML appended after the generated sections (e.g. a `[paging]` section).
    pub extra_config: String,
    /// Start the server with this open-file limit (soft and hard, so it cannot raise it): a small one
    /// reproduces fd exhaustion without opening tens of thousands of sockets.
    pub open_files: Option<u64>,
    /// Extra `key = value` lines for the `[http]` section (e.g. its timeouts).
    pub extra_http: String,
    /// `serve --demo`: the demo organization (and its softphone accounts, with the registrar on) is seeded first.
    pub demo: bool,
    /// `oncall restore DIR` into the (empty) data folder before the server starts.
    pub restore_from: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            answer_after_ms: 0,
            timeout_secs: 5,
            max_retries: 3,
            max_message_secs: 120,
            silence_secs: 5,
            extra_sip: String::new(),
            rtp_ports: 40,
            extra_config: String::new(),
            open_files: None,
            extra_http: String::new(),
            demo: false,
            restore_from: None,
        }
    }
}

/// A running `oncall serve`, killed when dropped.
pub struct Server {
    process: Option<Spawned>,
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub http: SocketAddr,
    pub rtp_ports: (u16, u16),
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub started: Instant,
    /// [`ServerOptions::open_files`], kept for restarts.
    pub open_files: Option<u64>,
    /// [`ServerOptions::demo`], kept for restarts.
    demo: bool,
    /// Dropped last: holds the config, data dir and every peer's logs.
    pub dir: TestDir,
}

impl Server {
    /// Starts the server with its own ports and directory and waits until `GET /healthz` answers 200.
    pub fn start(name: &str, options: ServerOptions) -> Server {
        let dir = TestDir::new(name);
        let sip_udp: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        let sip_tcp: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        // RTP needs an even port and its RTCP neighbour per call.
        let count = options.rtp_ports.max(2);
        let mut rtp_min = free_ports(count + 1);
        if rtp_min % 2 == 1 {
            rtp_min += 1;
        }
        let rtp_max = rtp_min + count - 1;
        let data_dir = dir.subdir("data");
        let config_path = dir.join("oncall.toml");
        let config = format!(
            r#"# written by tests/support/mod.rs for one end-to-end test
[sip]
listen_udp = "{sip_udp}"
listen_tcp = "{sip_tcp}"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
answer_after_ms = {answer_after_ms}
{extra_sip}

[http]
listen = "{http}"
{extra_http}

[storage]
data_dir = "{data_dir}"

[ivr]
timeout_secs = {timeout_secs}
max_retries = {max_retries}
max_message_secs = {max_message_secs}
silence_secs = {silence_secs}

{extra_config}
"#,
            answer_after_ms = options.answer_after_ms,
            extra_sip = options.extra_sip,
            extra_http = options.extra_http,
            data_dir = data_dir.display(),
            timeout_secs = options.timeout_secs,
            max_retries = options.max_retries,
            max_message_secs = options.max_message_secs,
            silence_secs = options.silence_secs,
            // Paging is on by default; a test that does not configure it gets the IVR alone (callers released
            // after their message, nobody phoned), which is what the tests written before paging expect.
            extra_config = {
                let mut extra = options.extra_config.clone();
                if !extra.contains("[paging]") {
                    extra.push_str("\n[paging]\nenabled = false\n");
                }
                // Transcription likewise (issue 23): off unless the test is about it, so no decoder competes
                // with the calls of tests that measure timing.
                if !extra.contains("[transcription]") {
                    extra.push_str("\n[transcription]\nengine = \"none\"\n");
                }
                extra
            },
        );
        fs::write(&config_path, config).expect("write server config");
        if let Some(backup) = &options.restore_from {
            let out = Command::new(env!("CARGO_BIN_EXE_oncall")).arg("--config").arg(&config_path).arg("restore").arg(backup).output().expect("run oncall restore");
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "oncall restore {} failed:\n{text}", backup.display());
            eprintln!("[e2e] {}", text.trim());
        }
        let process = Server::launch(&config_path, &dir.path, options.open_files, options.demo);
        let mut server = Server {
            process: Some(process),
            sip_udp,
            sip_tcp,
            http,
            rtp_ports: (rtp_min, rtp_max),
            config_path,
            data_dir,
            started: Instant::now(),
            open_files: options.open_files,
            demo: options.demo,
            dir,
        };
        server.wait_ready(Duration::from_secs(20));
        server
    }

    fn launch(config_path: &Path, log_dir: &Path, open_files: Option<u64>, demo: bool) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is a plain system call, safe between fork and exec.
            unsafe {
                cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        cmd.arg("serve")
            .arg("--config")
            .arg(config_path)
            .env("RUST_LOG", "info,oncall=debug");
        if demo {
            cmd.arg("--demo");
        }
        // A developer's environment must not override the test's config.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ONCALL_") {
                cmd.env_remove(key);
            }
        }
        Spawned::spawn(&mut cmd, log_dir, "oncall")
    }

    /// The server's process id (to stop and continue it, as a busy machine would).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("the server runs").pid()
    }

    /// `kill -9` the server (no drain, no flush), keep its log as `oncall-killed.*`, and start it again on the
    /// same configuration and data; returns once it is ready.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
        for ext in ["stderr", "stdout"] {
            let _ = fs::rename(
                self.dir.join(&format!("oncall.{ext}")),
                self.dir.join(&format!("oncall-killed.{ext}")),
            );
        }
        self.process = Some(Server::launch(&self.config_path, &self.dir.path, self.open_files, self.demo));
        self.wait_ready(Duration::from_secs(20));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_running() {
                panic!("oncall exited before it was ready; log:\n{}", self.log_tail(60));
            }
            if http_get(self.http, "/healthz").map(|(status, _)| status) == Some(200) {
                self.started = Instant::now();
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "oncall not ready after {limit:?} (GET /healthz); log:\n{}",
                    self.log_tail(60)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Graceful stop: SIGTERM, then waits up to `limit` for the process to exit by itself. `None` when it was still
    /// running at the limit (it is then killed): with no calls in progress OnCall exits at once, so a test that
    /// left a call behind (or a call OnCall failed to end) sees the shutdown drain run out instead.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let process = self.process.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(process.pid().to_string())
            .status();
        let finished = process.wait_for(limit);
        if finished.timed_out() {
            eprintln!("[e2e] oncall did not exit within {limit:?} of SIGTERM");
        }
        finished.status
    }

    pub fn log(&self) -> String {
        // Read from the files (not through the process handle) so the log stays readable after [`Server::terminate`].
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("oncall.stderr") + &read("oncall.stdout")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// `sip:oncall@127.0.0.1:<udp port>`
    pub fn sip_uri(&self) -> String {
        format!("sip:oncall@{}", self.sip_udp)
    }

    /// Runs `oncall <args> --config <this server's config>` (against the running server's database) and returns
    /// its standard output; panics when it fails.
    pub fn oncall(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
        cmd.args(args).arg("--config").arg(&self.config_path);
        let out = run_for(&mut cmd, Duration::from_secs(20), &self.dir.path, "oncall-cli");
        assert!(out.success(), "`oncall {}` failed: {}", args.join(" "), out.describe());
        out.stdout
    }

    /// Runs an `oncall` command that must fail; returns what it printed on stderr.
    pub fn oncall_fails(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oncall"));
        cmd.args(args).arg("--config").arg(&self.config_path);
        let out = run_for(&mut cmd, Duration::from_secs(20), &self.dir.path, "oncall-cli");
        assert!(!out.success(), "`oncall {}` should have failed: {}", args.join(" "), out.describe());
        out.stderr
    }

    /// The rows `oncall <listing> --json` prints (`calls`, `requests`).
    fn listing(&self, listing: &str) -> Vec<Value> {
        let out = self.oncall(&[listing, "--json"]);
        match serde_json::from_str::<Value>(out.trim()) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("`oncall {listing} --json` did not print a JSON array ({other:?}):\n{out}"),
        }
    }

    /// Polls `oncall <listing> --json` until a row satisfies `pred` (rows may be written after the BYE).
    fn wait_for_row(&self, listing: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value, Vec<Value>> {
        let deadline = Instant::now() + limit;
        loop {
            let rows = self.listing(listing);
            if let Some(row) = rows.iter().find(|r| pred(r)) {
                return Ok(row.clone());
            }
            if Instant::now() >= deadline {
                return Err(rows);
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The stored calls, from `oncall calls --json`.
    pub fn calls(&self) -> Vec<Value> {
        self.listing("calls")
    }

    pub fn wait_for_call(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value, Vec<Value>> {
        self.wait_for_row("calls", limit, pred)
    }

    /// The stored requests, from `oncall requests --json`.
    pub fn requests(&self) -> Vec<Value> {
        self.listing("requests")
    }

    pub fn wait_for_request(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value, Vec<Value>> {
        self.wait_for_row("requests", limit, pred)
    }

    /// Every file under `data_dir/recordings`.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.data_dir.join("recordings"), &mut out);
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let alive = self.is_running();
        if thread::panicking() {
            eprintln!(
                "[e2e] oncall (config {}, {}) log tail:\n{}",
                self.config_path.display(),
                if alive { "still running" } else { "NOT running" },
                self.log_tail(80)
            );
        }
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// A minimal HTTP/1.1 GET over a plain TcpStream: (status, body). None when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A string field of a call row ("" when null or missing).
pub fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Collects failed checks so a test reports all of them at once (with the server log) instead of the first.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let msg = what();
            eprintln!("[e2e] CHECK FAILED: {msg}");
            self.failures.push(msg);
        }
    }

    pub fn fail(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        eprintln!("[e2e] CHECK FAILED: {msg}");
        self.failures.push(msg);
    }

    pub fn finish(self) {
        if !self.failures.is_empty() {
            panic!(
                "{} check(s) failed:\n - {}",
                self.failures.len(),
                self.failures.join("\n - ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SIPp

/// One SIPp run: a single call (`-m 1`) of a scenario from `tests/scenarios/` against the server.
pub struct Sipp {
    label: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    limit: Duration,
    log_dir: PathBuf,
}

impl Sipp {
    pub fn new(server: &Server, scenario_name: &str, label: &str) -> Sipp {
        Sipp::to(server.sip_udp, &server.dir.path, scenario_name, label)
    }

    /// The same over TCP (one connection, to the server's TCP listener).
    pub fn new_tcp(server: &Server, scenario_name: &str, label: &str) -> Sipp {
        Sipp::to(server.sip_tcp, &server.dir.path, scenario_name, label)
            .arg("-t")
            .arg("t1")
    }

    /// Against any address (for checking a scenario against another SIPp).
    pub fn to(target: SocketAddr, log_dir: &Path, scenario_name: &str, label: &str) -> Sipp {
        require_tool("sipp");
        let log_dir = log_dir.join(label);
        fs::create_dir_all(&log_dir).expect("create sipp log dir");
        let sip_port = free_port();
        // SIPp binds its media port and the one two above (video), plus each +1 with -rtp_echo.
        let media_port = free_ports(4);
        let file = |name: &str| log_dir.join(name).display().to_string();
        let args = vec![
            target.to_string(),
            "-sf".into(),
            scenario(scenario_name).display().to_string(),
            "-s".into(),
            "oncall".into(),
            "-i".into(),
            LOOPBACK.into(),
            "-mi".into(),
            LOOPBACK.into(),
            "-p".into(),
            sip_port.to_string(),
            "-mp".into(),
            media_port.to_string(),
            "-m".into(),
            "1".into(),
            "-nostdin".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            file("messages.log"),
            "-trace_err".into(),
            "-error_file".into(),
            file("errors.log"),
            "-trace_screen".into(),
            "-screen_file".into(),
            file("screen.log"),
        ];
        Sipp {
            label: label.to_string(),
            args,
            cwd: None,
            limit: Duration::from_secs(30),
            log_dir,
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Sipp {
        self.args.push(a.into());
        self
    }

    /// A global variable for the scenario (`[$name]`).
    pub fn set(self, name: &str, value: impl ToString) -> Sipp {
        self.arg("-set").arg(name).arg(value.to_string())
    }

    /// Many calls instead of one: `-r rate` calls per second, `calls` in all, at most `concurrent` at once. The
    /// per-message trace is dropped (at load it would hold every message); SIPp's final screen keeps the counts
    /// ([`SippRun::screen_counts`]).
    pub fn load(mut self, rate: u32, calls: u32, concurrent: u32) -> Sipp {
        if let Some(i) = self.args.iter().position(|a| a == "-m") {
            self.args[i + 1] = calls.to_string();
        }
        self.args.retain(|a| a != "-trace_msg");
        if let Some(i) = self.args.iter().position(|a| a == "-message_file") {
            self.args.drain(i..i + 2);
        }
        self.arg("-r")
            .arg(rate.to_string())
            .arg("-l")
            .arg(concurrent.to_string())
    }

    /// Signalling and media from another loopback address (e.g. 127.0.0.2): a second source, as a trunk would be.
    pub fn from_ip(mut self, ip: &str) -> Sipp {
        for flag in ["-i", "-mi"] {
            if let Some(i) = self.args.iter().position(|a| a == flag) {
                self.args[i + 1] = ip.to_string();
            }
        }
        self
    }

    /// Hard limit: SIPp's own `-timeout` (counted as a failure) plus a kill a few seconds later.
    pub fn limit(mut self, limit: Duration) -> Sipp {
        self.limit = limit;
        self
    }

    /// Working directory (relative `play_pcap_audio` paths are resolved from it).
    pub fn cwd(mut self, dir: &Path) -> Sipp {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    pub fn spawn(self) -> SippRunning {
        let mut cmd = Command::new("sipp");
        cmd.args(&self.args)
            .arg("-timeout")
            .arg(format!("{}s", self.limit.as_secs().max(1)))
            .arg("-timeout_error");
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let process = Spawned::spawn(&mut cmd, &self.log_dir, "sipp");
        SippRunning {
            process,
            limit: self.limit,
            log_dir: self.log_dir,
            label: self.label,
        }
    }

    pub fn run(self) -> SippRun {
        self.spawn().wait()
    }
}

pub struct SippRunning {
    process: Spawned,
    limit: Duration,
    log_dir: PathBuf,
    label: String,
}

impl SippRunning {
    pub fn wait(self) -> SippRun {
        let finished = self.process.wait_for(self.limit + Duration::from_secs(5));
        let read = |name: &str| fs::read_to_string(self.log_dir.join(name)).unwrap_or_default();
        SippRun {
            label: self.label,
            messages: read("messages.log"),
            errors: read("errors.log"),
            screen: read("screen.log"),
            finished,
        }
    }
}

pub struct SippRun {
    pub label: String,
    pub finished: Finished,
    /// Every SIP message sent and received (`-trace_msg`).
    pub messages: String,
    pub errors: String,
    /// SIPp's final statistics screen.
    pub screen: String,
}

impl SippRun {
    pub fn success(&self) -> bool {
        self.finished.success()
    }

    /// Everything useful to understand a failed scenario.
    pub fn describe(&self) -> String {
        format!(
            "SIPp `{}`: {}\n--- SIPp errors ---\n{}\n--- SIPp screen (tail) ---\n{}\n--- SIP messages (tail) ---\n{}",
            self.label,
            self.finished.describe(),
            tail(&self.errors, 40),
            tail(&self.screen, 30),
            tail(&self.messages, 120)
        )
    }

    pub fn assert_success(&self) {
        assert!(self.success(), "{}", self.describe());
    }

    /// The message counts of SIPp's scenario screen (final dump of `-trace_screen`), for every scenario line that
    /// starts with `message` (e.g. "503", "INVITE") and has the arrow `arrow` ("<----------" received,
    /// "---------->" sent), in scenario order. A 200 to INVITE and a 200 to BYE are two lines, hence a list.
    pub fn screen_counts(&self, message: &str, arrow: &str) -> Vec<u64> {
        self.screen
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let rest = line.strip_prefix(message)?.trim_start().strip_prefix(arrow)?;
                // "E-RTD1 138 0 0 0": skip the response-time marker, take the first count
                rest.split_whitespace().find_map(|t| t.parse().ok())
            })
            .collect()
    }

    /// The status lines of the responses SIPp received, in order, e.g. ["100 Trying", "180 Ringing", "487 ..."].
    pub fn received_statuses(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut lines = self.messages.lines();
        while let Some(line) = lines.next() {
            if line.contains("message received") {
                if let Some(first) = lines.by_ref().find(|l| !l.trim().is_empty()) {
                    if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
                        out.push(rest.trim().to_string());
                    }
                }
            }
        }
        out
    }

    /// The request lines SIPp received (e.g. "BYE sip:... SIP/2.0").
    pub fn received_requests(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut lines = self.messages.lines();
        while let Some(line) = lines.next() {
            if line.contains("message received") {
                if let Some(first) = lines.by_ref().find(|l| !l.trim().is_empty()) {
                    if !first.starts_with("SIP/2.0") {
                        out.push(first.trim().to_string());
                    }
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------------------------
// baresip

/// A headless baresip: audio from a WAV (`aufile`), what it sent and heard dumped as WAVs (`sndfile`), driven over
/// its TCP control socket (`ctrl_tcp`: netstring-framed JSON commands; events come back on the same connection).
pub struct Baresip {
    process: Option<Spawned>,
    ctrl: TcpStream,
    events: mpsc::Receiver<(Instant, Value)>,
    pub snd_dir: PathBuf,
    pub dir: PathBuf,
    next_token: u32,
    /// Where it listens for SIP (UDP and TCP).
    pub sip_port: u16,
}

impl Baresip {
    /// Starts baresip with `audio_source` as its microphone; config files go to `dir`.
    pub fn start(dir: &Path, audio_source: &Path, limit: Duration) -> Baresip {
        // regint=0: no REGISTER, just calls.
        Baresip::launch(dir, audio_source, limit, |_| {
            format!("<sip:tester@{LOOPBACK}>;regint=0\n")
        }, "")
    }

    /// Any account line (given baresip's SIP port) and extra config lines, e.g. TLS and SRTP:
    /// `module srtp.so` and `sip_cafile CA.pem`.
    pub fn start_with(dir: &Path, audio_source: &Path, limit: Duration, account: impl FnOnce(u16) -> String, extra_config: &str) -> Baresip {
        Baresip::launch(dir, audio_source, limit, account, extra_config)
    }

    /// A phone that answers every incoming call by itself (an employee's phone), reachable at
    /// `sip:<user>@127.0.0.1:<sip_port>` (see [`Baresip::uri`]).
    pub fn start_callee(dir: &Path, audio_source: &Path, limit: Duration, user: &str) -> Baresip {
        Baresip::launch(dir, audio_source, limit, |port| {
            format!("<sip:{user}@{LOOPBACK}:{port}>;regint=0;answermode=auto\n")
        }, "")
    }

    /// `sip:<user>@127.0.0.1:<sip_port>`
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{LOOPBACK}:{}", self.sip_port)
    }

    fn launch(dir: &Path, audio_source: &Path, limit: Duration, account: impl FnOnce(u16) -> String, extra_config: &str) -> Baresip {
        require_tool("baresip");
        fs::create_dir_all(dir).expect("create baresip dir");
        let snd_dir = dir.join("snd");
        fs::create_dir_all(&snd_dir).expect("create snd dir");
        // baresip listens for SIP on UDP and TCP at this port and for SIP over TLS at the next one.
        let sip_port = free_ports(2);
        let ctrl_port = free_port();
        let rtp = free_ports(10);
        // Only what the test needs: no sound card, no STUN/ICE; `net_interface` keeps SIP and the SDP's c= line on
        // loopback. `audio_player none`: the decoded audio still passes the sndfile filter, which dumps it.
        let config = format!(
            "# written by tests/support/mod.rs
poll_method\tepoll
sip_listen\t{LOOPBACK}:{sip_port}
net_interface\t{LOOPBACK}
call_local_timeout\t60
audio_source\taufile,{source}
audio_player\tnone
audio_alert\tnone
ausrc_format\ts16
auplay_format\ts16
audio_buffer\t20-160
rtp_ports\t{rtp}-{rtp_end}
jitter_buffer_delay\t1-5
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taufile.so
module\tsndfile.so
module\tctrl_tcp.so
module_tmp\taccount.so
module_app\tmenu.so
snd_path\t{snd}
ctrl_tcp_listen\t{LOOPBACK}:{ctrl_port}
{extra_config}
",
            source = audio_source.display(),
            rtp_end = rtp + 9,
            snd = snd_dir.display(),
        );
        fs::write(dir.join("config"), config).expect("write baresip config");
        fs::write(dir.join("accounts"), account(sip_port)).expect("write accounts");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir).arg("-t").arg(limit.as_secs().max(1).to_string());
        let mut process = Spawned::spawn(&mut cmd, dir, "baresip");

        let ctrl_addr: SocketAddr = format!("{LOOPBACK}:{ctrl_port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            if let Ok(s) = TcpStream::connect_timeout(&ctrl_addr, Duration::from_millis(200)) {
                break s;
            }
            if !process.is_running() || Instant::now() >= deadline {
                panic!(
                    "baresip's ctrl_tcp did not come up on {ctrl_addr}:\n{}",
                    tail(&process.stdout_text(), 40)
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let (tx, events) = mpsc::channel();
        let reader = ctrl.try_clone().expect("clone ctrl socket");
        thread::spawn(move || read_netstrings(reader, tx));
        Baresip {
            process: Some(process),
            ctrl,
            events,
            snd_dir,
            dir: dir.to_path_buf(),
            next_token: 0,
            sip_port,
        }
    }

    /// Sends a command (`dial`, `sndcode`, `hangup`, `quit`, ...). Responses arrive among the events.
    pub fn command(&mut self, command: &str, params: &str) {
        self.next_token += 1;
        let msg = serde_json::json!({ "command": command, "params": params, "token": format!("t{}", self.next_token) });
        let body = msg.to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl
            .write_all(frame.as_bytes())
            .unwrap_or_else(|e| panic!("baresip ctrl_tcp write: {e}"));
    }

    /// The next event of type `kind` (e.g. "CALL_ESTABLISHED", "CALL_CLOSED") within `limit`, with its arrival time.
    pub fn wait_event(&mut self, kind: &str, limit: Duration) -> Option<(Instant, Value)> {
        self.wait_event_any(&[kind], limit)
    }

    /// The next event of any of `kinds` within `limit`.
    pub fn wait_event_any(&mut self, kinds: &[&str], limit: Duration) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((t, v)) => {
                    if v.get("event").and_then(Value::as_bool) == Some(true) && kinds.contains(&field(&v, "type")) {
                        return Some((t, v));
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The WAV baresip wrote of what it heard (decoded audio), if any.
    pub fn heard_wav(&self) -> Option<PathBuf> {
        dump_file(&self.snd_dir, "-dec.wav")
    }

    /// The WAV of what it sent.
    pub fn sent_wav(&self) -> Option<PathBuf> {
        dump_file(&self.snd_dir, "-enc.wav")
    }

    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.stdout_text() + &p.stderr_text())
            .unwrap_or_default()
    }

    /// Quits (so the dump WAVs get their final headers), killing it if it does not exit within 3 s.
    pub fn quit(&mut self) -> Option<Finished> {
        self.command("quit", "");
        self.process.take().map(|p| p.wait_for(Duration::from_secs(3)))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("[e2e] baresip log tail:\n{}", tail(&self.log(), 40));
        }
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

fn dump_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files.pop()
}

/// Reads `len:json,` frames until the connection closes.
fn read_netstrings(stream: TcpStream, tx: mpsc::Sender<(Instant, Value)>) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = Vec::new();
        if r.read_until(b':', &mut len).unwrap_or(0) == 0 {
            return;
        }
        let Ok(n) = String::from_utf8_lossy(&len[..len.len() - 1]).trim().parse::<usize>() else {
            return;
        };
        let mut body = vec![0; n + 1]; // the payload and its trailing ','
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let now = Instant::now();
        if let Ok(v) = serde_json::from_slice::<Value>(&body[..n]) {
            if tx.send((now, v)).is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Audio

/// A mono 16-bit WAV's samples and rate.
pub struct Wav {
    pub rate: u32,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn secs(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// Reads a 16-bit PCM WAV (first channel). Tolerates a header whose sizes were never finalised (a writer that was
/// killed): the data then runs to the end of the file.
pub fn read_wav(path: &Path) -> Wav {
    read_wav_channel(path, 0).0
}

/// One channel of a 16-bit PCM WAV (0 = left), and how many channels the file has.
pub fn read_wav_channel(path: &Path, channel: usize) -> (Wav, u16) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not a WAV",
        path.display()
    );
    let mut pos = 12;
    let (mut rate, mut channels, mut bits) = (0u32, 1u16, 16u16);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().unwrap());
            bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
        } else if id == b"data" {
            assert_eq!(bits, 16, "{}: only 16-bit PCM is read", path.display());
            let end = if size == 0 || size == u32::MAX as usize || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let frame = 2 * channels.max(1) as usize;
            let at = 2 * channel.min(channels.max(1) as usize - 1);
            let samples = bytes[body..end]
                .chunks_exact(frame)
                .map(|c| i16::from_le_bytes([c[at], c[at + 1]]))
                .collect::<Vec<_>>();
            return (Wav { rate, samples }, channels);
        }
        pos = body + size + (size & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Root mean square level in dBFS (a full-scale square wave is 0; digital silence is -inf).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    20.0 * ((sum / samples.len() as f64).sqrt() / 32768.0).log10()
}

/// Index of the first sample louder than `threshold` (absolute).
pub fn first_sound(samples: &[i16], threshold: i16) -> Option<usize> {
    samples.iter().position(|s| s.unsigned_abs() > threshold as u16)
}

/// Slides `needle` over `haystack[0..max_lag + needle.len()]` and returns the best (lag, normalised
/// cross-correlation). 1.0 means identical up to gain; G.711 coding keeps a match above 0.9.
pub fn best_match(haystack: &[i16], needle: &[i16], max_lag: usize) -> (usize, f64) {
    let n: Vec<f64> = needle.iter().map(|&s| s as f64).collect();
    let nn: f64 = n.iter().map(|x| x * x).sum();
    let mut best = (0, 0.0);
    if nn == 0.0 {
        return best;
    }
    for lag in 0..=max_lag {
        if lag + n.len() > haystack.len() {
            break;
        }
        let h = &haystack[lag..lag + n.len()];
        let (mut hn, mut hh) = (0.0, 0.0);
        for (x, &y) in n.iter().zip(h) {
            let y = y as f64;
            hn += x * y;
            hh += y * y;
        }
        if hh > 0.0 {
            let c = hn / (nn * hh).sqrt();
            if c > best.1 {
                best = (lag, c);
            }
        }
    }
    best
}

/// Runs a program that must succeed (sox, espeak-ng), with a time limit.
pub fn tool(log_dir: &Path, program: &str, args: &[&str]) {
    require_tool(program);
    let out = run_for(
        Command::new(program).args(args),
        Duration::from_secs(30),
        log_dir,
        program,
    );
    assert!(out.success(), "{program} {args:?} failed: {}", out.describe());
}

/// Speaks `text` with espeak-ng into an 8 kHz mono 16-bit WAV.
pub fn speech_wav(dir: &Path, name: &str, text: &str) -> PathBuf {
    let raw = dir.join(format!("{name}-raw.wav"));
    let out = dir.join(format!("{name}.wav"));
    tool(
        dir,
        "espeak-ng",
        &["-v", "en-us", "-s", "150", "-w", &raw.display().to_string(), text],
    );
    tool(
        dir,
        "sox",
        &[
            &raw.display().to_string(),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            &out.display().to_string(),
        ],
    );
    out
}

/// A DTMF key as SoX `synth` makes it: the row and column sines (ITU-T Q.23) at -9 dBFS each, 8 kHz mono.
pub fn dtmf_wav(dir: &Path, key: char, secs: f64) -> PathBuf {
    let (row, col) = dtmf_frequencies(key);
    let name = match key {
        '*' => "star".to_string(),
        '#' => "pound".to_string(),
        k => k.to_string(),
    };
    let out = dir.join(format!("dtmf-{name}.wav"));
    let d = format!("{secs}");
    tool(
        dir,
        "sox",
        &[
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            &out.display().to_string(),
            "synth",
            &d,
            "sine",
            &row.to_string(),
            "synth",
            &d,
            "sine",
            "mix",
            &col.to_string(),
            "vol",
            "0.7",
        ],
    );
    out
}

pub fn dtmf_frequencies(key: char) -> (u32, u32) {
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    for (r, row) in KEYS.iter().enumerate() {
        if let Some(c) = row.find(key) {
            return ([697, 770, 852, 941][r], [1209, 1336, 1477, 1633][c]);
        }
    }
    panic!("{key:?} is not a DTMF key");
}

/// Writes `samples` (8 kHz) as a PCMU RTP stream in a pcap file SIPp's `play_pcap_audio` can replay: Ethernet/IPv4/UDP
/// frames, one RTP packet of 20 ms every 20 ms (SIPp paces by the capture timestamps and rewrites the addresses).
pub fn write_rtp_pcap(path: &Path, samples: &[i16]) {
    let mut out = Vec::new();
    // pcap global header: magic, version 2.4, GMT offset, accuracy, snaplen, link type 1 (Ethernet)
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let ssrc: u32 = 0x0e2e_7e57;
    for (i, chunk) in samples.chunks(160).enumerate() {
        let mut payload: Vec<u8> = chunk
            .iter()
            .map(|&s| oncall_sip::rtp::g711::linear_to_ulaw(s))
            .collect();
        payload.resize(160, oncall_sip::rtp::g711::linear_to_ulaw(0));
        let mut rtp = Vec::with_capacity(172);
        rtp.push(0x80);
        rtp.push(if i == 0 { 0x80 } else { 0x00 }); // marker on the first packet, payload type 0 (PCMU)
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i as u32) * 160).to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(&payload);

        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]); // dst, src MAC, IPv4
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        let sum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&40000u16.to_be_bytes()); // ports: rewritten by SIPp
        frame.extend_from_slice(&40002u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (allowed on IPv4)
        frame.extend_from_slice(&rtp);

        let t_us = i as u64 * 20_000;
        out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    fs::write(path, out).expect("write pcap");
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// ---------------------------------------------------------------------------------------------------------------
// RTP measurement

/// One RTP packet as it arrived.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub at: Instant,
    pub from: SocketAddr,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// A UDP socket on loopback that records every RTP packet sent to it, for a SIPp scenario whose SDP names this port
/// as its media address (SIPp does the signalling; this only listens).
pub struct RtpSink {
    pub port: u16,
    packets: Arc<Mutex<Vec<RtpPacket>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RtpSink {
    pub fn start() -> RtpSink {
        let port = free_ports(2) & !1; // even port; its neighbour stays free for RTCP
        let socket = UdpSocket::bind((LOOPBACK, port))
            .or_else(|_| UdpSocket::bind((LOOPBACK, 0)))
            .expect("bind RTP sink");
        let port = socket.local_addr().unwrap().port();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let at = Instant::now();
                    if n < 12 || buf[0] >> 6 != 2 {
                        continue;
                    }
                    let cc = (buf[0] & 0x0f) as usize;
                    let start = (12 + 4 * cc).min(n);
                    p.lock().unwrap().push(RtpPacket {
                        at,
                        from,
                        payload_type: buf[1] & 0x7f,
                        seq: u16::from_be_bytes([buf[2], buf[3]]),
                        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                        payload: buf[start..n].to_vec(),
                    });
                }
            }
        });
        RtpSink {
            port,
            packets,
            stop,
            thread: Some(thread),
        }
    }

    pub fn packets(&self) -> Vec<RtpPacket> {
        self.packets.lock().unwrap().clone()
    }

    pub fn stop(&mut self) -> Vec<RtpPacket> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.packets()
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Decodes G.711 packets (PCMU = 0, PCMA = 8) into one sample stream, in arrival order.
pub fn decode_g711(packets: &[RtpPacket]) -> Vec<i16> {
    let mut out = Vec::new();
    for p in packets {
        match p.payload_type {
            0 => out.extend(p.payload.iter().map(|&b| oncall_sip::rtp::g711::ulaw_to_linear(b))),
            8 => out.extend(p.payload.iter().map(|&b| oncall_sip::rtp::g711::alaw_to_linear(b))),
            _ => {}
        }
    }
    out
}

/// Inter-arrival statistics of a packet stream, in milliseconds.
#[derive(Debug)]
pub struct Pacing {
    pub packets: usize,
    pub mean_ms: f64,
    /// Share of gaps between 10 and 30 ms.
    pub within_10ms: f64,
    pub max_ms: f64,
    /// Packets per second over the whole stream.
    pub rate: f64,
}

pub fn pacing(packets: &[RtpPacket]) -> Pacing {
    let gaps: Vec<f64> = packets
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64() * 1000.0)
        .collect();
    let n = gaps.len().max(1) as f64;
    let span = match (packets.first(), packets.last()) {
        (Some(a), Some(b)) => (b.at - a.at).as_secs_f64(),
        _ => 0.0,
    };
    Pacing {
        packets: packets.len(),
        mean_ms: gaps.iter().sum::<f64>() / n,
        within_10ms: gaps.iter().filter(|g| (10.0..=30.0).contains(*g)).count() as f64 / n,
        max_ms: gaps.iter().cloned().fold(0.0, f64::max),
        rate: if span > 0.0 {
            (packets.len() - 1) as f64 / span
        } else {
            0.0
        },
    }
}

/// Does `heard` start with the greeting prompt? Compares the first second of speech of `sounds/greeting.wav` with
/// the first `search_secs` of `heard` (both 8 kHz) and returns (offset in seconds, normalised correlation).
pub fn greeting_match(heard: &[i16], search_secs: f64) -> (f64, f64) {
    let greeting = read_wav(&sounds_dir().join("greeting.wav"));
    assert_eq!(greeting.rate, 8000, "sounds/greeting.wav must be 8 kHz");
    let start = first_sound(&greeting.samples, 300).unwrap_or(0);
    let needle = &greeting.samples[start..(start + 8000).min(greeting.samples.len())];
    let (lag, c) = best_match(heard, needle, (search_secs * 8000.0) as usize);
    (lag as f64 / 8000.0, c)
}

// ---------------------------------------------------------------------------------------------------------------
// Kamailio as a trunk's registrar (tests/e2e_trunk_register.rs)

/// Server options whose config file also holds `trunks_toml` (`[[trunks]]` tables). It rides in `extra_sip`: a
/// table header there simply ends the `[sip]` section, which TOML allows.
pub fn options_with_trunks(trunks_toml: &str) -> ServerOptions {
    ServerOptions {
        extra_sip: format!("\n{trunks_toml}\n"),
        ..ServerOptions::default()
    }
}

/// One line the registrar's script logged: `kind` is REGISTER (arrived), CHALLENGE (answered 401) or ACCEPTED
/// (binding saved, 200); `at` is the wall clock in seconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarEvent {
    pub kind: String,
    pub at: f64,
    pub cseq: u32,
    pub expires: String,
    pub user: String,
}

/// Kamailio 5.6 (Debian `kamailio`) as a registrar on a loopback UDP port, with digest authentication of one user
/// against a plain-text password (`pv_www_authenticate`, no database), `qop=auth`, MD5 or SHA-256, and bindings
/// in memory (`usrloc`). Every REGISTER and what became of it is logged by the script as a `TEST ...` line.
/// Runs in its own process group under `timeout`, and the whole group is stopped on drop.
pub struct Kamailio {
    process: Option<Spawned>,
    pub addr: SocketAddr,
    /// Its TLS listener, when started with one ([`Kamailio::start_trunk_tls`]).
    pub tls_addr: Option<SocketAddr>,
    pub config_path: PathBuf,
}

impl Kamailio {
    pub const MODULES: &'static str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

    /// `algorithm` is "MD5" or "SHA-256"; `min_expires` is the registrar's lower bound (kamailio's default is 60).
    pub fn start(dir: &Path, user: &str, password: &str, algorithm: &str, min_expires: u32) -> Kamailio {
        require_tool("kamailio");
        let addr: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        let config_path = dir.join("kamailio.cfg");
        let config = format!(
            r#"#!KAMAILIO
# written by tests/support/mod.rs: a registrar with digest auth for one user, no database
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:{addr}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "pv.so"
modparam("registrar", "min_expires", {min_expires})
modparam("registrar", "max_expires", 3600)
modparam("auth", "algorithm", "{algorithm}")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{
        xlog("L_NOTICE", "TEST REGISTER t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$au\n");
        pv_www_authenticate("$td", "{password}", "0");
        $var(rc) = $rc;
        if ($var(rc) < 0 || $au != "{user}") {{
            xlog("L_NOTICE", "TEST CHALLENGE t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$au rc=$var(rc)\n");
            www_challenge("$td", "1");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); exit; }}
        xlog("L_NOTICE", "TEST ACCEPTED t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$au\n");
        exit;
    }}
    sl_send_reply("404", "Not Here");
}}
"#,
            modules = Self::MODULES,
        );
        Kamailio::launch(dir, addr, config_path, &config)
    }

    /// Writes `config` to `config_path` and runs kamailio on it, listening at `addr`; returns once it answers.
    fn launch(dir: &Path, addr: SocketAddr, config_path: PathBuf, config: &str) -> Kamailio {
        fs::write(&config_path, config).expect("write kamailio config");
        let mut cmd = Command::new("timeout");
        cmd.args([
            "-s", "TERM", "150", "kamailio", "-DD", "-E", "-m", "32", "-M", "8", "-w",
        ])
        .arg(dir)
        .arg("-f")
        .arg(&config_path);
        // Its own process group, so its worker processes are stopped with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let process = Spawned::spawn(&mut cmd, dir, "kamailio");
        let mut k = Kamailio {
            process: Some(process),
            addr,
            tls_addr: None,
            config_path,
        };
        k.wait_ready(Duration::from_secs(10));
        k
    }

    /// Waits until an OPTIONS gets an answer (our script says 404 to anything but REGISTER).
    fn wait_ready(&mut self, limit: Duration) {
        let sock = UdpSocket::bind((LOOPBACK, 0)).expect("bind probe socket");
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let deadline = Instant::now() + limit;
        for n in 0.. {
            let probe = format!(
                "OPTIONS sip:probe@{a} SIP/2.0\r\nVia: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bKprobe{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{LOOPBACK}>;tag=p{n}\r\nTo: <sip:probe@{a}>\r\n\
                 Call-ID: probe{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                a = self.addr
            );
            let _ = sock.send_to(probe.as_bytes(), self.addr);
            let mut buf = [0u8; 2048];
            if sock.recv_from(&mut buf).is_ok() {
                return;
            }
            let alive = self.process.as_mut().is_some_and(|p| p.is_running());
            if !alive || Instant::now() >= deadline {
                panic!(
                    "kamailio not answering on {} (running: {alive}); log:\n{}",
                    self.addr,
                    tail(&self.log(), 40)
                );
            }
        }
    }

    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.stderr_text() + &p.stdout_text())
            .unwrap_or_default()
    }

    /// The script's `TEST ...` lines, in order.
    pub fn events(&self) -> Vec<RegistrarEvent> {
        self.log()
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find("TEST ")? + 5..];
                let mut words = rest.split_whitespace();
                let kind = words.next()?.to_string();
                let mut ev = RegistrarEvent {
                    kind,
                    at: 0.0,
                    cseq: 0,
                    expires: String::new(),
                    user: String::new(),
                };
                for w in words {
                    match w.split_once('=') {
                        Some(("t", v)) => ev.at = v.parse().unwrap_or(0.0),
                        Some(("cseq", v)) => ev.cseq = v.parse().unwrap_or(0),
                        Some(("expires", v)) => ev.expires = v.to_string(),
                        Some(("user", v)) => ev.user = v.to_string(),
                        _ => {}
                    }
                }
                Some(ev)
            })
            .collect()
    }

    /// Polls [`Kamailio::events`] until `pred` holds for one of them.
    pub fn wait_event(&self, limit: Duration, pred: impl Fn(&RegistrarEvent) -> bool) -> Option<RegistrarEvent> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "[e2e] kamailio ({}) log tail:\n{}",
                self.config_path.display(),
                tail(&self.log(), 40)
            );
        }
        if let Some(p) = self.process.take() {
            // The group: `timeout`, kamailio's main process and its workers.
            let group = format!("-{}", p.pid());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = p.wait_for(Duration::from_secs(3));
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The value of one sample (`name{labels} value`) in a Prometheus text page; None when absent.
pub fn metric(page: &str, sample: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
}

/// Sends one INVITE (with an SDP offer) to `target` over UDP from `from_ip`, and returns the status codes of the
/// responses that arrive within `limit` (stopping at the first final one). ACKs a non-2xx final response.
pub fn udp_invite_statuses(from_ip: &str, target: SocketAddr, limit: Duration) -> Vec<u16> {
    let sock = UdpSocket::bind((from_ip, 0)).unwrap_or_else(|e| panic!("bind {from_ip}: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = sock.local_addr().unwrap();
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 {from_ip}\r\ns=-\r\nc=IN IP4 {from_ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n");
    let head = |method: &str, cseq: &str| {
        format!(
            "{method} sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKinv{port}\r\nMax-Forwards: 70\r\n\
             From: <sip:tester@{from_ip}>;tag=t{port}\r\nTo: <sip:100@{target}>\r\nCall-ID: inv{port}@{from_ip}\r\n\
             CSeq: {cseq}\r\nContact: <sip:tester@{local}>\r\n",
            port = local.port()
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE", "1 INVITE"),
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), target).expect("send INVITE");
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
        let text = String::from_utf8_lossy(&buf[..n]);
        let Some(code) = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
        else {
            continue;
        };
        out.push(code);
        if code >= 200 {
            if code >= 300 {
                let to = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("to:"))
                    .unwrap_or("")
                    .to_string();
                let ack = head("ACK", "1 ACK").replace(&format!("To: <sip:100@{target}>\r\n"), &format!("{to}\r\n"));
                let _ = sock.send_to(format!("{ack}Content-Length: 0\r\n\r\n").as_bytes(), target);
            }
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Small shared pieces of the suites.

pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

/// Length of a shipped prompt, seconds.
pub fn prompt_secs(name: &str) -> f64 {
    read_wav(&sounds_dir().join(format!("{name}.wav"))).secs()
}

/// The 50 RFC 4475 torture messages keyed by name without `TC_` (e.g. `BADDN_I`), sorted, with their
/// 192.0.2.x documentation addresses moved to 127.0.0.x (same length, so Content-Length stays right) so that
/// whatever OnCall sends back stays on loopback.
pub fn torture_messages() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("sip-server/tests/fixtures/rfc4475");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "dat") {
            let mut bytes = fs::read(&path).expect("read torture message");
            let mut i = 0;
            while i + 8 <= bytes.len() {
                if &bytes[i..i + 8] == b"192.0.2." {
                    bytes[i..i + 8].copy_from_slice(b"127.0.0.");
                    i += 8;
                } else {
                    i += 1;
                }
            }
            let stem = path.file_stem().unwrap().to_string_lossy();
            out.push((stem.trim_start_matches("TC_").to_string(), bytes));
        }
    }
    out.sort();
    out
}

/// A minimal HTTP/1.1 POST over a plain TcpStream with extra `headers`: (status, body). None when nothing answers.
pub fn http_post(addr: SocketAddr, path: &str, content_type: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Runs a SIPVicious tool (`svmap`, `svwar`, `svcrack`, …) against the server's UDP port from loopback, with
/// a free local port; fails the test when it does not finish within `limit`.
pub fn sipvicious(server: &Server, tool: &str, label: &str, args: &[&str], limit: Duration) -> Finished {
    require_tool(tool);
    let mut cmd = Command::new(tool);
    cmd.arg("-p")
        .arg(server.sip_udp.port().to_string())
        .arg("-b")
        .arg(LOOPBACK)
        .arg("-P")
        .arg(free_port().to_string())
        .args(args)
        .arg(LOOPBACK);
    let out = run_for(&mut cmd, limit, &server.dir.path, label);
    assert!(!out.timed_out(), "{tool} did not finish: {}", out.describe());
    out
}

/// When a paging caller presses 1 ("page on-call"), seconds after the call is established.
pub const KEY_1_AT: f64 = 2.0;
/// Silence between the record beep and the caller's speech, and after it before #.
pub const LEAD_IN: f64 = 0.7;
pub const TAIL: f64 = 0.8;

/// A caller (baresip) dials OnCall, presses 1 ("page on-call") [`KEY_1_AT`] s after the answer, says `text`
/// after the record prompt and beep, presses # and is hung up on (or hangs up). Returns the speech WAV.
pub fn leave_page_message(server: &Server, work: &Path, text: &str) -> PathBuf {
    leave_page_message_to(server, work, text, "oncall")
}

/// A caller who presses 1, leaves `message` and then stays on the line (holding), saying `reply` every
/// 5 s from 2 s after the message. Returns the caller's phone and when the call was established.
pub fn call_and_hold(server: &Server, work: &Path, message: &Path, reply: &Path) -> (Baresip, Instant) {
    let record_prompt = prompt_secs("record_after_tone") + prompt_secs("beep");
    let speech_at = KEY_1_AT + record_prompt + LEAD_IN;
    let pound_at = speech_at + read_wav(message).secs() + TAIL;
    let mut clips = vec![(speech_at, message)];
    clips.extend((0..16).map(|i| (pound_at + 2.0 + 5.0 * i as f64, reply)));
    let microphone = work.join("caller-microphone.wav");
    compose_wav(&microphone, pound_at + 90.0, &clips);
    let mut caller = Baresip::start(&work.join("caller"), &microphone, Duration::from_secs(120));
    caller.command("dial", &server.sip_uri());
    let Some((established, _)) = caller.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) else {
        panic!("the caller's call was not established:\n{}", tail(&caller.log(), 40));
    };
    sleep_until(established + Duration::from_secs_f64(KEY_1_AT));
    caller.command("sndcode", "1");
    sleep_until(established + Duration::from_secs_f64(pound_at));
    caller.command("sndcode", "#");
    (caller, established)
}

/// Checks that `who` (their phone's dump of what it heard) heard `needle` in the 9 s from `from_secs` into the call
/// (the bridge's start), as the bridge tests measure it.
pub fn check_heard(checks: &mut Checks, who: &str, heard: Option<PathBuf>, from_secs: f64, needle: &Path) {
    match heard {
        None => checks.fail(format!("{who}'s phone wrote no dump of what it heard")),
        Some(path) => {
            let (at, corr, level) = find_speech(&read_wav(&path).samples, from_secs, 9.0, needle);
            eprintln!("[e2e] {who} heard {level:.1} dBFS in the bridge; the other side's words {at:.2} s in, correlation {corr:.3}");
            checks.check(corr > 0.6, || format!("{who} did not hear the other side through the bridge (best correlation {corr:.2})"));
        }
    }
}

/// Checks the bridge's stereo recording (waited for up to 5 s): the caller saying `left` on the left channel, the
/// employee (`right_who`) saying `right` on the right.
pub fn check_conversation(server: &Server, checks: &mut Checks, left_speech: &Path, right_who: &str, right_speech: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let conversation = loop {
        let found = server.recordings().into_iter().find(|p| p.to_string_lossy().ends_with("-conversation.wav"));
        if found.is_some() || Instant::now() > deadline {
            break found;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let Some(path) = conversation else {
        return checks.fail(format!("no conversation recording among {:?}", server.recordings()));
    };
    let (left, channels) = read_wav_channel(&path, 0);
    let (right, _) = read_wav_channel(&path, 1);
    let (_, caller_corr, caller_level) = find_speech(&left.samples, 0.0, left.secs(), left_speech);
    let (_, right_corr, right_level) = find_speech(&right.samples, 0.0, right.secs(), right_speech);
    eprintln!(
        "[e2e] conversation {:.1} s, {channels} channels: caller {caller_level:.1} dBFS (match {caller_corr:.2}), {right_who} {right_level:.1} dBFS (match {right_corr:.2})",
        left.secs()
    );
    checks.check(channels == 2, || format!("the conversation has {channels} channels, expected 2"));
    checks.check(caller_corr > 0.6, || format!("the left channel is not the caller (correlation {caller_corr:.2})"));
    checks.check(right_corr > 0.6, || format!("the right channel is not {right_who} (correlation {right_corr:.2})"));
}

/// [`leave_page_message`] to `number` (the Request-URI user: which organization's IVR answers).
pub fn leave_page_message_to(server: &Server, work: &Path, text: &str, number: &str) -> PathBuf {
    let speech = speech_wav(work, "speech", text);
    leave_recorded_message(server, work, &speech, number);
    speech
}

/// [`leave_page_message_to`] saying the 8 kHz mono WAV `speech` (another voice, or silence).
pub fn leave_recorded_message(server: &Server, work: &Path, speech: &Path, number: &str) {
    let speech_secs = read_wav(speech).secs();
    let record_prompt = prompt_secs("record_after_tone") + prompt_secs("beep");
    let speech_at = KEY_1_AT + record_prompt + LEAD_IN;
    let microphone = work.join("caller-microphone.wav");
    tool(work, "sox", &[&speech.display().to_string(), &microphone.display().to_string(), "pad", &format!("{speech_at:.3}"), "40"]);
    let mut caller = Baresip::start(&work.join("caller"), &microphone, Duration::from_secs(60));
    caller.command("dial", &format!("sip:{number}@{}", server.sip_udp));
    let Some((established, _)) = caller.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) else {
        panic!("the caller's call was not established:\n{}", tail(&caller.log(), 40));
    };
    sleep_until(established + Duration::from_secs_f64(KEY_1_AT));
    caller.command("sndcode", "1");
    thread::sleep(Duration::from_secs_f64(record_prompt + LEAD_IN + speech_secs + TAIL));
    caller.command("sndcode", "#");
    let closing = prompt_secs("request_created") + prompt_secs("goodbye");
    if caller.wait_event("CALL_CLOSED", Duration::from_secs_f64(closing + 4.0)).is_none() {
        caller.command("hangup", "");
    }
    caller.quit();
    eprintln!("[e2e] caller left a {speech_secs:.1} s message");
}

// ---------------------------------------------------------------------------------------------------------------
// Phones registered somewhere (OnCall's registrar, or Kamailio as a trunk)

impl Baresip {
    /// A baresip whose `accounts` file is `account(sip_port)` (e.g. a line with `regint` and `auth_pass`, so it
    /// registers), driven over `ctrl_tcp` like the others.
    pub fn start_with_account(dir: &Path, audio_source: &Path, limit: Duration, account: impl FnOnce(u16) -> String) -> Baresip {
        Baresip::launch(dir, audio_source, limit, account, "")
    }

    /// Every event and response that arrives within `limit`, with arrival times (for a test that needs the order
    /// of several, or to see what a baresip said).
    pub fn drain_events(&mut self, limit: Duration) -> Vec<(Instant, Value)> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while let Ok(ev) = self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            out.push(ev);
        }
        out
    }
}

/// `secs` seconds of digital silence as an 8 kHz mono WAV in `dir` (a phone's microphone: baresip hangs up when
/// its source ends).
pub fn silence_wav_secs(dir: &Path, secs: u32) -> PathBuf {
    let path = dir.join(format!("silence-{secs}.wav"));
    if !path.exists() {
        tool(dir, "sox", &["-n", "-r", "8000", "-c", "1", "-b", "16", &path.display().to_string(), "trim", "0", &secs.to_string()]);
    }
    path
}

/// Header `name` (case-insensitive, long form only) of a raw SIP message.
pub fn sip_header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// A response to the raw request `req`: its Via, From, Call-ID and CSeq copied, a tag added to To when it has
/// none, `extra` header lines (each ending in CRLF) and no body.
pub fn sip_response(req: &str, status: &str, tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.lines().take_while(|l| !l.trim().is_empty()).skip(1) {
        let Some((k, _)) = line.split_once(':') else { continue };
        let k = k.trim().to_ascii_lowercase();
        if matches!(k.as_str(), "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq") {
            out.push_str(line.trim_end());
            out.push_str("\r\n");
        } else if k == "to" || k == "t" {
            out.push_str(line.trim_end());
            if !line.contains(";tag=") {
                out.push_str(&format!(";tag={tag}"));
            }
            out.push_str("\r\n");
        }
    }
    format!("{out}{extra}Content-Length: 0\r\n\r\n")
}

impl Kamailio {
    /// Kamailio 5.6 as a small carrier trunk: a registrar (the trunk user `user` with digest auth, any other
    /// user, e.g. a phone, without) and a proxy that challenges every INVITE and MESSAGE with 407
    /// (`proxy_challenge`, MD5, `qop=auth`) unless it carries `user`'s credentials, then delivers it to the
    /// phone registered under the Request-URI's user (a leading `+` dropped; `lookup("location")`). No
    /// Record-Route: in-dialog requests go straight between the ends (or are relayed to their Request-URI).
    /// The script logs `TEST <kind> t=...` lines read by [`Kamailio::events`]: `REGISTER`, `CHALLENGE`,
    /// `ACCEPTED` (REGISTERs), `<METHOD>-CHALLENGED`, `<METHOD>-AUTHORIZED`, `<METHOD>-RELAYED`,
    /// `<METHOD>-NOTFOUND` and `REPLY-<status>` (responses relayed back, with `cseq=`).
    pub fn start_trunk(dir: &Path, user: &str, password: &str) -> Kamailio {
        Kamailio::trunk(dir, user, password, None)
    }

    /// [`Kamailio::start_trunk`] with a TLS listener too (Debian `kamailio-tls-modules`), presenting `certs`.
    pub fn start_trunk_tls(dir: &Path, user: &str, password: &str, certs: &TestCerts) -> Kamailio {
        Kamailio::trunk(dir, user, password, Some(certs))
    }

    fn trunk(dir: &Path, user: &str, password: &str, certs: Option<&TestCerts>) -> Kamailio {
        require_tool("kamailio");
        let addr: SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
        let tls_addr: Option<SocketAddr> = certs.map(|_| format!("{LOOPBACK}:{}", free_port()).parse().unwrap());
        let config_path = dir.join("kamailio-trunk.cfg");
        let tls = match (certs, tls_addr) {
            (Some(c), Some(tls_addr)) => {
                let tls_cfg = dir.join("kamailio-tls.cfg");
                fs::write(
                    &tls_cfg,
                    format!(
                        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {}\ncertificate = {}\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
                        c.key.display(),
                        c.cert.display()
                    ),
                )
                .expect("write kamailio tls.cfg");
                format!("enable_tls=yes\nlisten=tls:{tls_addr}\nloadmodule \"{}/tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n", Self::MODULES, tls_cfg.display())
            }
            _ => String::new(),
        };
        let config = format!(
            r#"#!KAMAILIO
# written by tests/support/mod.rs: a trunk (registrar + authenticating proxy), no database
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:{addr}
{tls}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "pv.so"
modparam("registrar", "min_expires", 10)
modparam("registrar", "max_expires", 3600)
modparam("auth", "algorithm", "MD5")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (has_totag()) {{
        # In-dialog (no Record-Route, so only when an end sends it here): on to the Request-URI.
        xlog("L_NOTICE", "TEST $rm-INDIALOG t=$TV(Sn) cseq=$cs\n");
        t_relay();
        exit;
    }}
    if (is_method("REGISTER")) {{
        xlog("L_NOTICE", "TEST REGISTER t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$tU\n");
        if ($tU == "{user}") {{
            pv_www_authenticate("$td", "{password}", "0");
            $var(rc) = $rc;
            if ($var(rc) < 0 || $au != "{user}") {{
                xlog("L_NOTICE", "TEST CHALLENGE t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$au rc=$var(rc)\n");
                www_challenge("$td", "1");
                exit;
            }}
        }}
        if (!save("location")) {{ sl_reply_error(); exit; }}
        xlog("L_NOTICE", "TEST ACCEPTED t=$TV(Sn) cseq=$cs expires=$hdr(Expires) user=$tU\n");
        exit;
    }}
    if (is_method("INVITE|MESSAGE")) {{
        pv_proxy_authenticate("$fd", "{password}", "0");
        $var(rc) = $rc;
        if ($var(rc) < 0 || $au != "{user}") {{
            xlog("L_NOTICE", "TEST $rm-CHALLENGED t=$TV(Sn) cseq=$cs user=$au rc=$var(rc)\n");
            proxy_challenge("$fd", "1");
            exit;
        }}
        xlog("L_NOTICE", "TEST $rm-AUTHORIZED t=$TV(Sn) cseq=$cs user=$au\n");
        consume_credentials();
        if ($(rU{{s.substr,0,1}}) == "+") {{ $rU = $(rU{{s.strip,1}}); }}
        if (!lookup("location")) {{
            xlog("L_NOTICE", "TEST $rm-NOTFOUND t=$TV(Sn) cseq=$cs user=$rU\n");
            sl_send_reply("404", "Not Found");
            exit;
        }}
        xlog("L_NOTICE", "TEST $rm-RELAYED t=$TV(Sn) cseq=$cs user=$rU\n");
        t_on_reply("LOG_REPLY");
        if (!t_relay()) {{ sl_reply_error(); }}
        exit;
    }}
    sl_send_reply("404", "Not Here");
}}

onreply_route[LOG_REPLY] {{
    xlog("L_NOTICE", "TEST REPLY-$rs t=$TV(Sn) cseq=$cs\n");
}}
"#,
            modules = Self::MODULES,
        );
        let mut k = Kamailio::launch(dir, addr, config_path, &config);
        k.tls_addr = tls_addr;
        k
    }
}

/// A test CA and a server certificate signed by it for 127.0.0.1 and `<name>.test`, made with openssl.
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    pub fn make(dir: &Path, name: &str) -> TestCerts {
        let (ca, ca_key) = (dir.join(format!("{name}-ca.pem")), dir.join(format!("{name}-ca.key")));
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let path = |p: &Path| p.display().to_string();
        let subject = format!("/CN={name} test CA");
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-days", "2", "-subj", &subject]);
        let (ca_key_s, ca_s) = (path(&ca_key), path(&ca));
        args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
        tool(dir, "openssl", &args);
        let (key, csr, cert, ext) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")), dir.join(format!("{name}.pem")), dir.join(format!("{name}.ext")));
        fs::write(&ext, format!("subjectAltName=IP:127.0.0.1,DNS:{name}.test\n")).expect("write openssl extensions");
        let (key_s, csr_s, cert_s, ext_s) = (path(&key), path(&csr), path(&cert), path(&ext));
        let leaf_subject = format!("/CN={name}.test");
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-subj", &leaf_subject, "-keyout", &key_s, "-out", &csr_s]);
        tool(dir, "openssl", &args);
        tool(dir, "openssl", &["x509", "-req", "-in", &csr_s, "-CA", &ca_s, "-CAkey", &ca_key_s, "-CAcreateserial", "-days", "2", "-extfile", &ext_s, "-out", &cert_s]);
        TestCerts { ca, cert, key }
    }
}

impl Server {
    /// `kill -9` the server and leave it down (its log stays in place); [`Server::kill_and_restart`] brings it
    /// back on the same configuration and data. For a cluster test's "one instance died".
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The web admin as a browser sees it (cookies, the login form)

/// One HTTP/1.1 exchange, `request` written as is: (status, head, body bytes). None when nothing answers.
pub fn http_exchange_raw(addr: SocketAddr, request: &str) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1000)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, raw.get(split + 4..).unwrap_or_default().to_vec()))
}

/// [`http_exchange_raw`] with the body as text.
pub fn http_exchange(addr: SocketAddr, request: &str) -> Option<(u16, String, String)> {
    http_exchange_raw(addr, request).map(|(status, head, body)| (status, head, String::from_utf8_lossy(&body).to_string()))
}

pub fn get_with_cookie(addr: SocketAddr, path: &str, cookie: &str) -> Option<(u16, String, String)> {
    http_exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"))
}

/// The value of cookie `name` set by a response head.
pub fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .find_map(|l| l.split_once(':')?.1.trim().strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_string))
        .filter(|v| !v.is_empty())
}

/// Logs in on `server`'s web admin the way a browser does (login page for the CSRF cookie, then the form);
/// the session cookie's value.
pub fn web_login(server: &Server, email: &str, password: &str) -> String {
    let addr = server.http;
    let (_, head, _) = get_with_cookie(addr, "/login", "x=y").expect("GET /login");
    let csrf = set_cookie(&head, "oncall_login_csrf").unwrap_or_else(|| panic!("no CSRF cookie from /login:\n{head}"));
    let body = format!("email={}&password={password}&csrf={csrf}&next=%2Faccount", email.replace('@', "%40"));
    let (status, head, _) = http_exchange(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nCookie: oncall_login_csrf={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .expect("POST /login");
    assert_eq!(status, 303, "login on {addr} answered {status}:\n{head}");
    set_cookie(&head, "oncall_session").unwrap_or_else(|| panic!("no session cookie after login:\n{head}"))
}

/// Where `needle`'s first sound best matches in `heard[from_secs..from_secs + window_secs]`: (seconds in, correlation).
pub fn find_speech(heard: &[i16], from_secs: f64, window_secs: f64, needle_wav: &Path) -> (f64, f64, f64) {
    let from = ((from_secs * 8000.0) as usize).min(heard.len());
    let window = &heard[from..(from + (window_secs * 8000.0) as usize).min(heard.len())];
    let voice = read_wav(needle_wav);
    let start = first_sound(&voice.samples, 300).unwrap_or(0);
    let needle = &voice.samples[start..(start + 4000).min(voice.samples.len())];
    let (lag, corr) = best_match(window, needle, window.len().saturating_sub(needle.len()));
    (lag as f64 / 8000.0, corr, rms_dbfs(window))
}

/// A microphone of `total` seconds with each clip placed at its start time (seconds), 8 kHz mono.
pub fn compose_wav(path: &Path, total: f64, clips: &[(f64, &Path)]) {
    let mut samples = vec![0i16; (total * 8000.0) as usize];
    for (at, clip) in clips {
        let clip = read_wav(clip);
        let from = (at * 8000.0) as usize;
        for (i, s) in clip.samples.iter().enumerate() {
            if let Some(slot) = samples.get_mut(from + i) {
                *slot = *s;
            }
        }
    }
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create microphone WAV");
    for s in samples {
        w.write_sample(s).expect("write microphone WAV");
    }
    w.finalize().expect("finish microphone WAV");
}

/// Where the prompt `sounds/<name>.wav` starts in what `phone` heard (within its first `search_secs`), and how well
/// it matched: (seconds, correlation). None when the phone wrote no dump of what it heard.
pub fn prompt_heard(phone: &Baresip, name: &str, search_secs: f64) -> Option<(f64, f64)> {
    let heard = read_wav(&phone.heard_wav()?).samples;
    let prompt = read_wav(&sounds_dir().join(format!("{name}.wav")));
    let start = first_sound(&prompt.samples, 300).unwrap_or(0);
    let needle = &prompt.samples[start..(start + 6000).min(prompt.samples.len())];
    let (lag, corr) = best_match(&heard, needle, (search_secs * 8000.0) as usize);
    Some((lag as f64 / 8000.0, corr))
}

/// How long a paged employee's announcement plays before a key press counts for sure.
pub fn announcement_secs() -> f64 {
    prompt_secs("new_request") + prompt_secs("from") + prompt_secs("press_1_talk")
}

/// The paged employee on `phone` (answered at `answered_at`) hears the announcement, presses 1 and hangs up.
/// Checks the request was acknowledged by `person` and that the phone heard "new request".
pub fn accept_page_on(server: &Server, phone: &mut Baresip, answered_at: Instant, person: i64, checks: &mut Checks) {
    sleep_until(answered_at + Duration::from_secs_f64(announcement_secs() + 0.5));
    phone.command("sndcode", "1");
    match server.wait_for_request(Duration::from_secs(10), |r| field(r, "status") == "acknowledged") {
        Ok(row) => checks.check(field(&row, "acknowledged_by") == format!("person:{person}"), || format!("acknowledged_by {:?}", field(&row, "acknowledged_by"))),
        Err(rows) => checks.fail(format!("the request was not acknowledged after the employee pressed 1: {rows:#?}")),
    }
    phone.command("hangup", "");
    phone.quit();
    match prompt_heard(phone, "new_request", 4.0) {
        None => checks.fail("the phone wrote no dump of what it heard"),
        Some((at, corr)) => {
            eprintln!("[e2e] the phone heard \"new request\" {at:.2} s in (correlation {corr:.3})");
            checks.check(corr > 0.8, || format!("the phone did not hear the announcement (correlation {corr:.2})"));
        }
    }
}
