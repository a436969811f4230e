//! A small HTTP/1.1 server on loopback for tests that play a service OnCall calls out to (an SMS gateway, a
//! transcription server, a webhook receiver).

use super::LOOPBACK;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// One HTTP request a loopback server of this test read.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Post {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub enum Reply {
    Answer(u16, &'static str),
    /// Read the request and never answer (the client's timeout is what ends it).
    Hang,
}

/// An HTTP/1.1 server on loopback, one thread per connection; `reply(n, post)` answers the n-th request
/// (from 0). Every request read goes down the channel. Stops with the test process.
pub fn serve(reply: impl Fn(usize, &Post) -> Reply + Send + Sync + 'static) -> (SocketAddr, mpsc::Receiver<Post>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a loopback HTTP server");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let reply = Arc::new(reply);
    let count = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let (tx, reply, count) = (tx.clone(), reply.clone(), count.clone());
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let post = Post { path, headers, body, at: Instant::now() };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer = reply(n, &post);
                let _ = tx.send(post);
                match answer {
                    Reply::Answer(status, body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Reply::Hang => thread::sleep(Duration::from_secs(15)),
                }
            });
        }
    });
    (addr, rx)
}

/// Everything `rx` has received by now, and what arrives within `limit` until `done` holds for what came.
pub fn collect(rx: &mpsc::Receiver<Post>, got: &mut Vec<Post>, limit: Duration, done: impl Fn(&[Post]) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        while let Ok(p) = rx.try_recv() {
            got.push(p);
        }
        if done(got) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

