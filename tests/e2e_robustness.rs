//! Garbage in, no crash: 200 malformed or random datagrams over UDP (random bytes, truncated and mangled INVITEs,
//! the RFC 4475 torture messages) and broken TCP streams; afterwards the process must still run, answer /healthz,
//! and take a normal SIPp call over UDP and over TCP.

mod support;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;
use support::*;

/// xorshift64*: a fixed seed keeps the barrage the same from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A well-formed INVITE to the server whose Via and SDP point at `reply_port` on loopback.
fn invite(server: &Server, reply_port: u16, n: usize, transport: &str) -> Vec<u8> {
    let sdp = format!(
        "v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {reply_port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
    format!(
        "INVITE sip:oncall@{addr} SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{reply_port};branch=z9hG4bKfuzz{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:fuzz@127.0.0.1>;tag=f{n}\r\nTo: <sip:oncall@{addr}>\r\nCall-ID: fuzz-{n}@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:{reply_port}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        addr = server.sip_udp,
        len = sdp.len()
    )
    .into_bytes()
}


#[test]
fn malformed_udp_and_tcp_input_does_not_stop_the_server() {
    // The barrage holds dozens of valid INVITEs from one address: without the per-source call rate limit (on by
    // default), so that every one of them reaches the call path the fuzzing is meant to exercise.
    let mut server = Server::start("fuzz", ServerOptions { extra_sip: "calls_per_second_per_source = 0".into(), ..ServerOptions::default() });
    let mut rng = Rng(0x0ca1_1e2e_5eed_0001);
    // Replies (400s, 200s for the valid torture INVITEs, retransmissions) come back here and are drained below.
    let sock = UdpSocket::bind((LOOPBACK, 0)).expect("bind fuzz socket");
    sock.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let port = sock.local_addr().unwrap().port();

    let mut datagrams: Vec<(String, Vec<u8>)> = torture_messages();
    assert!(
        datagrams.len() >= 50,
        "expected the 50 RFC 4475 messages, found {}",
        datagrams.len()
    );
    let mut n = 0;
    while datagrams.len() < 200 {
        n += 1;
        let whole = invite(&server, port, n, "UDP");
        let (kind, bytes) = match n % 4 {
            0 => {
                let len = 1 + rng.below(1400);
                ("random", rng.bytes(len))
            }
            1 => ("truncated", whole[..rng.below(whole.len())].to_vec()),
            2 => {
                // a few bytes replaced by random ones (CR, LF, NUL, ':' and space included often)
                let mut b = whole.clone();
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(b.len());
                    b[i] = [0u8, b'\r', b'\n', b':', b' ', b'<', b'>', b';'][rng.below(8)] ^ (rng.next() as u8 & 0x80);
                }
                ("mangled", b)
            }
            _ => {
                // structurally odd: huge Content-Length, header without colon, absurd CSeq, empty lines first
                let variants: [&[u8]; 5] = [
                    b"INVITE sip:oncall@127.0.0.1 SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n",
                    b"OPTIONS sip:x SIP/2.0\r\nVia SIP/2.0/UDP nowhere\r\nCSeq: -1 OPTIONS\r\n\r\n",
                    b"\r\n\r\n\r\n\r\n",
                    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnope\r\nCSeq: 1 INVITE\r\n\r\n",
                    b"BYE sip:oncall@127.0.0.1 SIP/2.0\r\nCall-ID: \x00\xff\xfe\r\nCSeq: 4294967296 BYE\r\nContent-Length: 0\r\n\r\n",
                ];
                ("odd", variants[rng.below(variants.len())].to_vec())
            }
        };
        datagrams.push((format!("{kind}-{n}"), bytes));
    }

    let mut replies = 0;
    let mut buf = [0u8; 65536];
    for (name, bytes) in &datagrams {
        if let Err(e) = sock.send_to(bytes, server.sip_udp) {
            eprintln!("[e2e] sending {name} ({} bytes): {e}", bytes.len());
        }
        while sock.recv_from(&mut buf).is_ok() {
            replies += 1;
        }
        thread::sleep(Duration::from_millis(2));
    }
    eprintln!("[e2e] sent {} datagrams, {replies} replies so far", datagrams.len());

    // TCP: streams that end mid-message, garbage, lies about Content-Length, an endless header line, and an idle
    // connection kept open during the calls below.
    let mut idle = Vec::new();
    let whole = invite(&server, port, 9999, "TCP");
    let streams: Vec<Vec<u8>> = vec![
        whole[..whole.len() / 2].to_vec(),
        whole[..40].to_vec(),
        rng.bytes(4096),
        [&whole[..whole.len() - 20], b"\x00\x00\x00".as_slice()].concat(),
        b"INVITE sip:oncall@127.0.0.1 SIP/2.0\r\nContent-Length: 100000\r\n\r\nshort".to_vec(),
        [
            b"OPTIONS sip:oncall@127.0.0.1 SIP/2.0\r\nX-Long: ".as_slice(),
            &vec![b'a'; 300_000],
        ]
        .concat(),
        vec![b'\n'; 10_000],
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ];
    for (i, bytes) in streams.iter().enumerate() {
        match TcpStream::connect_timeout(&server.sip_tcp, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(bytes); // the server may close early on garbage: fine
                if i == 1 {
                    idle.push(s); // half a request line, then silence
                }
            }
            Err(e) => panic!(
                "TCP connect #{i} to {} failed: {e}\n{}",
                server.sip_tcp,
                server.log_tail(40)
            ),
        }
    }
    thread::sleep(Duration::from_millis(500));

    assert!(
        server.is_running(),
        "oncall died under malformed input; log:\n{}",
        server.log_tail(80)
    );
    assert_eq!(
        http_get(server.http, "/healthz").map(|r| r.0),
        Some(200),
        "/healthz does not answer 200 after the barrage; log:\n{}",
        server.log_tail(60)
    );

    let udp = Sipp::new(&server, "uac_call.xml", "sipp-after-udp")
        .limit(Duration::from_secs(20))
        .run();
    assert!(
        udp.success(),
        "a normal UDP call failed after the barrage:\n{}",
        udp.describe()
    );
    let tcp = Sipp::new_tcp(&server, "uac_call.xml", "sipp-after-tcp").limit(Duration::from_secs(20));
    let tcp = tcp.run();
    assert!(
        tcp.success(),
        "a normal TCP call failed after the barrage:\n{}",
        tcp.describe()
    );
    drop(idle);

    assert!(
        server.is_running(),
        "oncall died during the calls after the barrage; log:\n{}",
        server.log_tail(80)
    );
    let log = server.log();
    assert!(
        !log.contains("panicked"),
        "a task panicked under malformed input:\n{}",
        tail(&log, 80)
    );
}

/// Slowloris: a client that trickles a message one byte at a time is cut off once the message has taken
/// `tcp_message_timeout_secs`, while a connection that is merely quiet is kept (idle timeout is longer).
#[test]
fn trickled_tcp_message_is_cut_off_but_a_quiet_connection_stays() {
    use std::io::Read;
    use std::time::Instant;
    let server = Server::start(
        "slowloris",
        ServerOptions { extra_sip: "tcp_message_timeout_secs = 2\ntcp_idle_timeout_secs = 60\n".into(), ..ServerOptions::default() },
    );
    let mut slow = TcpStream::connect(server.sip_tcp).expect("connect");
    let quiet = TcpStream::connect(server.sip_tcp).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let started = Instant::now();
    let message = b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKslow\r\n";
    let mut closed_after = None;
    for b in message.iter().cycle().take(200) {
        if slow.write_all(std::slice::from_ref(b)).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(0) = slow.read(&mut byte) {
            closed_after = Some(started.elapsed());
            break;
        }
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
        thread::sleep(Duration::from_millis(150));
    }
    let closed_after = closed_after.expect("the trickling connection was never closed");
    eprintln!("[e2e] trickled message cut off after {closed_after:?}");
    assert!(closed_after >= Duration::from_millis(1900) && closed_after < Duration::from_secs(5), "{closed_after:?}");
    // The quiet connection sent nothing: still open, and it still works.
    let mut quiet = quiet;
    quiet.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    quiet
        .write_all(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKquiet\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: quiet@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        .expect("quiet connection still open");
    let mut answer = [0u8; 512];
    let n = quiet.read(&mut answer).expect("answer on the quiet connection");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("SIP/2.0 200"), "{}", String::from_utf8_lossy(&answer[..n]));
}
