//! A WebDriver client for Debian's headless Chromium (chromedriver), shared by the admin site's browser tests and
//! the browser phone's: a few blocking HTTP calls over `TcpStream` (JSON in, JSON out), no extra dependency.
//! Chromium and chromedriver come from `scripts/install-browser.sh`, which [`ensure_browser`] runs if missing.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn workspace() -> PathBuf {
    // Included from the root package's tests and from web-admin's: the repository is the one holding `scripts/`.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("scripts").exists() { manifest } else { manifest.parent().unwrap().to_path_buf() }
}

fn have(bin: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {bin}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs Chromium and chromedriver when they are missing.
pub fn ensure_browser() {
    if have("chromium") && have("chromedriver") {
        return;
    }
    let script = workspace().join("scripts/install-browser.sh");
    let ok = Command::new("sh").arg(&script).status().is_ok_and(|s| s.success());
    assert!(ok && have("chromium") && have("chromedriver"), "chromium/chromedriver missing and {} failed", script.display());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 exchange with chromedriver.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}", payload.len())?;
    // chromedriver may keep the connection open: read the head, then exactly Content-Length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break raw.len();
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(len) => {
            while raw.len() < head_end + len {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            s.read_to_end(&mut raw)?;
        }
    }
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(&rest) } else { rest };
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// One Chromium session, ended (and chromedriver stopped) when dropped.
pub struct Driver {
    process: Child,
    port: u16,
    pub session: String,
    pub base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    /// Headless Chromium on `base` (`http://127.0.0.1:port`), its profile in `profile`, with `extra` flags.
    pub fn start(base: String, profile: &Path, extra: &[String]) -> Driver {
        let port = free_port();
        let mut process = Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(port, "GET", "/status", None).map(|(_, v)| v["value"]["ready"] != json!(true)).unwrap_or(true) {
            if Instant::now() > deadline {
                let _ = process.kill();
                let _ = process.wait();
                panic!("chromedriver did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args = vec![
            "--headless".to_string(), "--no-sandbox".into(), "--disable-gpu".into(), "--disable-background-networking".into(), "--disable-quic".into(),
            "--no-first-run".into(), "--disable-component-update".into(), "--disable-sync".into(), "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(), format!("--user-data-dir={}", profile.display()),
        ];
        args.extend_from_slice(extra);
        // Browser logs on: the console is where Chromium reports Content-Security-Policy refusals.
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let (status, v) = http(port, "POST", "/session", Some(&caps)).unwrap();
        assert_eq!(status, 200, "new session: {v}");
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Driver { process, port, session, base }
    }

    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" { None } else { Some(&body) };
        let (status, v) = http(self.port, method, &format!("/session/{}{path}", self.session), body).unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    pub fn go(&self, path: &str) {
        self.cmd("POST", "/url", json!({"url": format!("{}{path}", self.base)}));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", json!({})).as_str().unwrap().to_string()
    }

    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, v) = http(self.port, "POST", &format!("/session/{}/element", self.session), Some(&json!({"using": "css selector", "value": css}))).unwrap();
            if status == 200 {
                return v["value"][ELEMENT].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no element {css} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), json!({}));
    }

    pub fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), json!({}));
        self.cmd("POST", &format!("/element/{id}/value"), json!({"text": text}));
    }

    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": script, "args": args}))
    }

    /// An async script: it ends by calling `arguments[arguments.length - 1](value)`.
    pub fn js_async(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/async", json!({"script": script, "args": args}))
    }

    /// Sets a form control's value the way a user's choice would (selects, dates).
    pub fn set(&self, css: &str, value: &str) {
        self.find(css);
        self.js("const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('change', {bubbles: true}));", json!([css, value]));
    }

    pub fn text(&self) -> String {
        self.js("return document.body.innerText", json!([])).as_str().unwrap_or("").to_string()
    }

    /// Waits up to 15 s for `script` to return something other than null or false; returns it.
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_up_to(Duration::from_secs(15), what, script)
    }

    pub fn wait_up_to(&self, limit: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script, json!([]));
            if v != Value::Null && v != json!(false) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Logs in on the site's login page as `email`.
    pub fn login(&self, email: &str, password: &str) {
        self.go("/login");
        self.type_in("input[name=email]", email);
        self.type_in("input[name=password]", password);
        self.click("form button[type=submit]");
        self.wait_for("the dashboard", "return location.pathname === '/' && document.querySelector('h1') && document.querySelector('h1').innerText === 'Dashboard'");
    }
}
