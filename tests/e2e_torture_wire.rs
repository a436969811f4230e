//! RFC 4475 over the wire: each of the 50 torture messages is sent to a running `oncall serve` over UDP (one socket
//! per file) and over TCP (one connection per file), and the first final response must be the one in the table of
//! `docs/conformance.md` (the table is read from the document, so the document and the server cannot drift apart).
//! Messages that reach the IVR (100 Trying, then 200 OK) are acknowledged and hung up with BYE, and at the end the
//! server must stop at once on SIGTERM: a call left behind would hold it for the whole shutdown drain.
//!
//! TCP differs from UDP where a message's framing depends on Content-Length (RFC 3261 §18.3: on a stream the
//! Content-Length header is mandatory and alone says where a message ends; §20.14). These are decided here:
//!
//! - `CLERR_I` (Content-Length 9999, 154 bytes follow): over TCP the message is simply not complete yet, so OnCall
//!   waits for the rest and answers nothing.
//! - `BADDN_I` ends right after its last header line, without the empty line that ends a header section: a
//!   datagram's end closes it over UDP (400), but on a stream the message is not complete, so no answer.
//! - `NCL_I` (Content-Length -999): the stream cannot be framed nor resynchronised, so OnCall closes the
//!   connection without an answer (it cannot know where a 400 would belong). Over UDP it is answered 400.
//! - `INV2543_I` (no Content-Length, an SDP body): Content-Length is mandatory on streams (§18.3, §20.14) but
//!   OnCall's framer reads a missing one as 0 (lenient, documented in `transport/framing.rs`), so the INVITE is
//!   served as a call without an offer (OnCall offers in its 200) and the SDP bytes after it are the start of a
//!   next message that never completes. Same answer as over UDP: a call.
//! - `DBLREQ` (a REGISTER with Content-Length 0 followed by an INVITE): over UDP the INVITE is ignored bytes after
//!   the body; over TCP it is the next message on the stream, so after the 405 to the REGISTER comes a call.
//! - `MCL01_I` (two Content-Length headers): see [`tcp_expectation`].
//!
//! Over UDP none of the messages asks for `rport`, so the answers of OnCall's transaction layer (100 Trying, the 200
//! to OPTIONS, 481) go to the source IP at the Via's sent-by port, 5060 when it has none (RFC 3261 §18.2.2), not
//! back to the sending socket; a catcher bound on 127.0.0.1:5060 collects them by Call-ID. When another program
//! holds that port, those messages are reported as unobservable instead of failing the test. Each transport gets
//! its own server: the messages' branches and sent-bys are the same over both, so the TCP copy of a message would
//! otherwise match the UDP copy's transaction (§17.2.3 does not look at the transport) and be absorbed as its
//! retransmission.
//!
//! Then a normal SIPp call must still succeed over UDP and over TCP.
//!
//! The 192.0.2.x documentation addresses in the messages are rewritten to 127.0.0.x (same length, so every
//! Content-Length stays as it was) so that anything OnCall sends back (RTP to an SDP address) stays on loopback.

mod support;

use oncall_sip::transport::framing::StreamFramer;
use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// What a message must get back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// This final status first.
    Final(u16),
    /// A call: 100 Trying and 200 OK (acknowledged and hung up by the test).
    Call,
    /// Nothing at all.
    Nothing,
    /// Nothing, and the server closes the connection (TCP only).
    Closed,
    /// Several answers in order on one connection (TCP only): the finals, `200` standing for a call.
    Sequence(Vec<u16>),
}

/// The "OnCall's answer" column of docs/conformance.md, by file name (without `TC_` and `.dat`).
fn conformance_table() -> BTreeMap<String, Expect> {
    let path = repo_root().join("docs/conformance.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | file | section | expected | answer |  → ["", file, section, expected, answer, ""]
        if cells.len() < 6 || cells[1] == "file" || cells[1].starts_with("---") {
            continue;
        }
        let answer = cells[4];
        let expect = if answer.contains("call offered") {
            Expect::Call
        } else if answer.contains("no answer") {
            Expect::Nothing
        } else {
            let status = answer
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|t| t.parse::<u16>().ok())
                .find(|s| (200..700).contains(s))
                .unwrap_or_else(|| {
                    panic!(
                        "docs/conformance.md: no final status in the answer of {}: {answer}",
                        cells[1]
                    )
                });
            Expect::Final(status)
        };
        out.insert(cells[1].to_string(), expect);
    }
    out
}

/// Over TCP, where framing by Content-Length changes the outcome (see the module documentation).
fn tcp_expectation(name: &str, udp: &Expect) -> Expect {
    match name {
        "CLERR_I" | "BADDN_I" => Expect::Nothing,
        "NCL_I" => Expect::Closed,
        "DBLREQ" => Expect::Sequence(vec![405, 200]),
        // The first Content-Length (13) frames the message, which is then rejected for its second Content-Length;
        // the 54 bytes after it are the start of a next message that never completes.
        "MCL01_I" => Expect::Final(400),
        _ => udp.clone(),
    }
}


/// The Call-ID of a message (full or compact header name), as the responses will echo it.
fn call_id_of(message: &[u8]) -> String {
    header(&String::from_utf8_lossy(message), "Call-ID", "i")
        .unwrap_or_default()
        .to_string()
}

/// Collects what OnCall sends to 127.0.0.1:5060 (the default sent-by port) while the UDP messages are answered.
/// A 200 to an INVITE that arrives here is a call: the catcher ACKs it and hangs it up (BYE) from this port, and
/// notes whether the BYE got 200.
struct Catcher {
    got: Arc<Mutex<Vec<(Instant, String, u16)>>>,
    /// Call-ID → whether its BYE was answered 200.
    calls: Arc<Mutex<BTreeMap<String, bool>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Catcher {
    fn start(server: SocketAddr) -> Option<Catcher> {
        let sock = UdpSocket::bind((LOOPBACK, 5060)).ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, c, st) = (got.clone(), calls.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let local = sock.local_addr().expect("bound");
            // Each call's ACK and BYE need their own branch, or the server sees the next BYE as a retransmission.
            let mut next_branch = 9000;
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if let Some(status) = status_of(&msg) {
                        let call_id = header(&msg, "Call-ID", "i").unwrap_or_default().to_string();
                        let cseq = header(&msg, "CSeq", "").unwrap_or_default().to_string();
                        eprintln!("[e2e] on the sent-by port 127.0.0.1:5060: {status} {cseq} {call_id}");
                        let mut calls = c.lock().unwrap();
                        if cseq.ends_with("BYE") {
                            if let Some(ok) = calls.get_mut(&call_id) {
                                *ok = status == 200;
                            }
                            continue;
                        }
                        if cseq.ends_with("INVITE") && (200..300).contains(&status) {
                            if calls.contains_key(&call_id) {
                                continue; // a retransmission of the 200 that crossed our ACK
                            }
                            let number: u32 = cseq.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(1);
                            next_branch += 1;
                            let _ = sock.send_to(&in_dialog(&msg, "ACK", number, "UDP", local, next_branch), server);
                            let _ = sock.send_to(&in_dialog(&msg, "BYE", number + 1, "UDP", local, next_branch), server);
                            calls.insert(call_id.clone(), false);
                        }
                        g.lock().unwrap().push((Instant::now(), call_id, status));
                    }
                }
            }
        });
        Some(Catcher {
            got,
            calls,
            stop,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> (Vec<(Instant, String, u16)>, BTreeMap<String, bool>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.got.lock().unwrap().clone(), self.calls.lock().unwrap().clone())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// One exchange: send a message, collect what comes back, finish any call it started.

/// Both transports behind one face: send bytes, receive whole SIP messages.
trait Wire {
    fn send(&mut self, bytes: &[u8]);
    /// The next message within `wait`; `Err(())` when the peer closed the connection.
    fn recv(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, ()>;
    fn transport(&self) -> &'static str;
    fn local(&self) -> SocketAddr;
    fn close_write(&mut self) {}
}

struct Udp {
    sock: UdpSocket,
    server: SocketAddr,
}

impl Wire for Udp {
    fn send(&mut self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("send datagram");
    }
    fn recv(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, ()> {
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Ok(Some(buf[..n].to_vec())),
            Err(_) => Ok(None),
        }
    }
    fn transport(&self) -> &'static str {
        "UDP"
    }
    fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
}

struct Tcp {
    stream: TcpStream,
    framer: StreamFramer,
    closed: bool,
}

impl Wire for Tcp {
    fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed on an unframeable message: not an error of the test.
        let _ = self.stream.write_all(bytes);
    }
    fn recv(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, ()> {
        let deadline = Instant::now() + wait;
        loop {
            match self.framer.next_message() {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(e) => panic!("OnCall sent an unframeable stream: {e}"),
            }
            if self.closed {
                return Err(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 16384];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(_) => self.closed = true, // reset by the server
            }
        }
    }
    fn transport(&self) -> &'static str {
        "TCP"
    }
    fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }
    fn close_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// What came back for one message.
#[derive(Debug, Default)]
struct Outcome {
    /// Every status line's code, in order of arrival (1xx included; answers to our own ACK/BYE excluded).
    statuses: Vec<u16>,
    /// When each of `statuses` arrived (to merge in what the catcher got).
    arrivals: Vec<Instant>,
    /// Calls set up (200 to an INVITE) and whether their BYE got 200.
    calls: Vec<bool>,
    /// The server closed the connection.
    closed: bool,
    /// Requests the server sent us (e.g. a BYE), by request line.
    requests: Vec<String>,
}

impl Outcome {
    /// Adds answers that went elsewhere (the sent-by port), in order of arrival.
    fn merge(&mut self, more: impl Iterator<Item = (Instant, u16)>) {
        let mut all: Vec<(Instant, u16)> = self
            .arrivals
            .iter()
            .copied()
            .zip(self.statuses.iter().copied())
            .collect();
        all.extend(more);
        all.sort_by_key(|(t, _)| *t);
        self.arrivals = all.iter().map(|(t, _)| *t).collect();
        self.statuses = all.iter().map(|(_, s)| *s).collect();
    }

    fn finals(&self) -> Vec<u16> {
        self.statuses.iter().copied().filter(|s| *s >= 200).collect()
    }

    fn matches(&self, expect: &Expect) -> bool {
        let finals = self.finals();
        let calls_ended = self.calls.iter().all(|ok| *ok);
        match expect {
            Expect::Final(s) => finals.first() == Some(s) && calls_ended,
            Expect::Call => finals.first() == Some(&200) && self.statuses.first() == Some(&100) && self.calls == [true],
            Expect::Nothing => self.statuses.is_empty() && self.requests.is_empty(),
            Expect::Closed => self.statuses.is_empty() && self.closed,
            Expect::Sequence(seq) => finals == *seq && calls_ended,
        }
    }
}

/// A header's value (full or compact name, case-insensitive), first occurrence.
fn header<'a>(msg: &'a str, full: &str, compact: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap_or(msg);
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case(full) || name.eq_ignore_ascii_case(compact)).then(|| value.trim())
    })
}

fn status_of(msg: &str) -> Option<u16> {
    msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// ACK and BYE for a 200 to an INVITE: same From, To (with OnCall's tag) and Call-ID; sent to the server (over
/// the same connection for TCP) with the Contact as Request-URI.
fn in_dialog(ok: &str, method: &str, cseq: u32, transport: &str, local: SocketAddr, n: u32) -> Vec<u8> {
    let from = header(ok, "From", "f").unwrap_or_default();
    let to = header(ok, "To", "t").unwrap_or_default();
    let call_id = header(ok, "Call-ID", "i").unwrap_or_default();
    let contact = header(ok, "Contact", "m").unwrap_or("<sip:oncall@127.0.0.1>");
    let target = contact
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(uri, _)| uri)
        .unwrap_or(contact);
    format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bKwire{n}{method}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
    )
    .into_bytes()
}

/// Sends `message` and watches the answers for `window` (or until `expect` is satisfied).
fn exchange(wire: &mut dyn Wire, message: &[u8], expect: &Expect, window: Duration, n: u32) -> Outcome {
    let mut out = Outcome::default();
    wire.send(message);
    let deadline = Instant::now() + window;
    // Call-IDs acknowledged, and the CSeq number of their BYE (to recognise its 200).
    let mut pending_bye: Vec<(String, u32)> = Vec::new();
    let mut acked: Vec<String> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let done = match expect {
            Expect::Nothing | Expect::Closed => false,
            Expect::Final(_) | Expect::Call => !out.finals().is_empty() && pending_bye.is_empty(),
            Expect::Sequence(seq) => out.finals().len() >= seq.len() && pending_bye.is_empty(),
        };
        if done {
            break;
        }
        let msg = match wire.recv(left.min(Duration::from_millis(200))) {
            Ok(Some(m)) => String::from_utf8_lossy(&m).into_owned(),
            Ok(None) => continue,
            Err(()) => {
                out.closed = true;
                break;
            }
        };
        let Some(status) = status_of(&msg) else {
            out.requests.push(msg.lines().next().unwrap_or_default().to_string());
            continue;
        };
        let cseq = header(&msg, "CSeq", "").unwrap_or_default().to_string();
        let call_id = header(&msg, "Call-ID", "i").unwrap_or_default().to_string();
        if cseq.ends_with("BYE") {
            if let Some(i) = pending_bye.iter().position(|(c, _)| *c == call_id) {
                pending_bye.remove(i);
                if let Some(last) = out.calls.last_mut() {
                    *last = status == 200;
                }
            }
            continue;
        }
        if cseq.ends_with("INVITE") && (200..300).contains(&status) {
            let number: u32 = cseq.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(1);
            if acked.contains(&call_id) {
                continue; // a retransmission of the 200 that crossed our ACK
            }
            acked.push(call_id.clone());
            out.statuses.push(status);
            out.arrivals.push(Instant::now());
            let (transport, local) = (wire.transport(), wire.local());
            wire.send(&in_dialog(&msg, "ACK", number, transport, local, n));
            wire.send(&in_dialog(&msg, "BYE", number + 1, transport, local, n));
            pending_bye.push((call_id, number + 1));
            out.calls.push(false);
            continue;
        }
        out.statuses.push(status);
        out.arrivals.push(Instant::now());
    }
    if *expect == Expect::Closed && !out.closed {
        // Give the server the end of our stream: it must close (it may wait for its idle timeout otherwise).
        wire.close_write();
        if let Err(()) = wire.recv(Duration::from_secs(2)) {
            out.closed = true;
        }
    }
    out
}

/// Runs every message in its own thread (its own socket or connection) and returns the outcomes by name.
fn run_all(
    messages: &[(String, Vec<u8>)],
    expects: &BTreeMap<String, Expect>,
    connect: impl Fn() -> Box<dyn Wire + Send> + Sync,
) -> BTreeMap<String, Outcome> {
    thread::scope(|scope| {
        let handles: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                let expect = expects[name].clone();
                let mut wire = connect();
                scope.spawn(move || {
                    let window = match expect {
                        Expect::Nothing | Expect::Closed => Duration::from_millis(1500),
                        _ => Duration::from_secs(5),
                    };
                    (name.clone(), exchange(wire.as_mut(), bytes, &expect, window, i as u32))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("exchange thread"))
            .collect()
    })
}

#[test]
fn rfc4475_messages_get_the_documented_answers_over_udp_and_tcp() {
    let table = conformance_table();
    let messages = torture_messages();
    assert_eq!(messages.len(), 50, "expected the 50 RFC 4475 messages");
    let mut checks = Checks::default();
    for (name, _) in &messages {
        checks.check(table.contains_key(name), || {
            format!("{name} is missing from docs/conformance.md")
        });
    }
    let udp_expect: BTreeMap<String, Expect> = messages
        .iter()
        .map(|(n, _)| (n.clone(), table.get(n).cloned().unwrap_or(Expect::Nothing)))
        .collect();
    let tcp_expect: BTreeMap<String, Expect> = udp_expect
        .iter()
        .map(|(n, e)| (n.clone(), tcp_expectation(n, e)))
        .collect();
    let call_ids: BTreeMap<String, String> = messages.iter().map(|(n, m)| (n.clone(), call_id_of(m))).collect();

    let mut servers = Vec::new();
    let mut sent_by_observed = true;
    for transport in ["udp", "tcp"] {
        let mut server = Server::start(&format!("torture-wire-{transport}"), ServerOptions::default());
        let outcomes = if transport == "udp" {
            let server_udp = server.sip_udp;
            let catcher = Catcher::start(server_udp);
            let mut udp = run_all(&messages, &udp_expect, || {
                let sock = UdpSocket::bind((LOOPBACK, 0)).expect("bind UDP");
                Box::new(Udp {
                    sock,
                    server: server_udp,
                })
            });
            match catcher {
                Some(c) => {
                    thread::sleep(Duration::from_millis(200));
                    let (caught, calls) = c.finish();
                    for (name, outcome) in udp.iter_mut() {
                        let id = &call_ids[name];
                        if let Some(ended) = calls.get(id) {
                            outcome.calls.push(*ended);
                        }
                        outcome.merge(
                            caught
                                .iter()
                                .filter(|(_, c, _)| !id.is_empty() && c == id)
                                .map(|(t, _, s)| (*t, *s)),
                        );
                    }
                }
                None => {
                    sent_by_observed = false;
                    eprintln!(
                        "[e2e] 127.0.0.1:5060 is taken by another program: answers sent to the sent-by port are not \
                         observed, and messages answered only there are not checked"
                    );
                }
            }
            udp
        } else {
            let server_tcp = server.sip_tcp;
            run_all(&messages, &tcp_expect, || {
                let stream = TcpStream::connect_timeout(&server_tcp, Duration::from_secs(2))
                    .expect("connect to OnCall over TCP");
                Box::new(Tcp {
                    stream,
                    framer: StreamFramer::new(),
                    closed: false,
                })
            })
        };
        let expects = if transport == "udp" { &udp_expect } else { &tcp_expect };
        eprintln!("[e2e] {transport}: file, statuses in order, calls (BYE answered 200), connection closed by OnCall");
        for (name, _) in &messages {
            let o = &outcomes[name];
            eprintln!(
                "[e2e] {transport} {name:15} {:?} {:?} closed={}",
                o.statuses, o.calls, o.closed
            );
            // Without the catcher, an answer that went only to the sent-by port looks like no answer at all (and a
            // call like a call without 100 Trying).
            let unobservable = transport == "udp"
                && !sent_by_observed
                && !o.matches(&expects[name])
                && (o.statuses.is_empty() || (expects[name] == Expect::Call && o.calls == [true]));
            if unobservable {
                eprintln!("[e2e] udp {name}: not checked (its answer goes to the sent-by port)");
                continue;
            }
            checks.check(o.matches(&expects[name]), || {
                format!("{transport} {name}: expected {:?}, got {o:?}", expects[name])
            });
        }
        checks.check(server.is_running(), || {
            format!("oncall died; log:\n{}", server.log_tail(60))
        });
        servers.push(server);
    }

    let (udp_server, tcp_server) = (&servers[0], &servers[1]);
    let call = Sipp::new(udp_server, "uac_call.xml", "sipp-after-udp")
        .limit(Duration::from_secs(20))
        .run();
    checks.check(call.success(), || {
        format!("a normal UDP call failed afterwards:\n{}", call.describe())
    });
    let call = Sipp::new_tcp(tcp_server, "uac_call.xml", "sipp-after-tcp")
        .limit(Duration::from_secs(20))
        .run();
    checks.check(call.success(), || {
        format!("a normal TCP call failed afterwards:\n{}", call.describe())
    });

    // No call may be left behind: with none in progress, SIGTERM stops the server at once (the default drain for
    // calls in progress is 30 s).
    for server in servers.iter_mut() {
        let started = Instant::now();
        let status = server.terminate(Duration::from_secs(8));
        checks.check(status.is_some(), || {
            format!(
                "oncall still running 8 s after SIGTERM (calls left behind?); log:\n{}",
                server.log_tail(40)
            )
        });
        eprintln!(
            "[e2e] oncall exited ({status:?}) {:.1} s after SIGTERM",
            started.elapsed().as_secs_f64()
        );
        let log = server.log();
        checks.check(!log.contains("panicked"), || {
            format!("a task panicked:\n{}", tail(&log, 60))
        });
    }
    checks.finish();
}
