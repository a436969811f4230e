//! CPU per concurrent call of OnCall's media engine with plain RTP, SRTP (issue 21) and a browser's WebRTC leg
//! (DTLS-SRTP through str0m, issue 19). SIPp can do neither, so this is OnCall's own load: one media thread
//! carries N calls, a peer thread plays the other end of every call (one G.711 packet per call every 20 ms,
//! SRTP-protected when the call is; a str0m peer in the browser's role for a browser leg) and reads what the
//! engine sends. Only the media thread's CPU time is counted (from /proc/self/task/*/schedstat), so the peers'
//! own cost does not blur the figure; a browser run is measured once every leg has connected.
//!
//! `cargo run --release -p oncall-sip --example media_load [CALLS...] [--secs S]` (default 50 200, 10 s);
//! bench/srtp.sh runs it.

use oncall_sip::media::webrtc::BrowserLeg;
use oncall_sip::media::webrtc_peer::Browser;
use oncall_sip::media::{MediaApp, MediaCallSpec, MediaCommand, MediaEngine, Signal};
use oncall_sip::rtp::srtp::{Srtp, Suite, MASTER_LEN};
use oncall_sip::rtp::{g711, RtpSender, SAMPLES_PER_FRAME};
use oncall_sip::sdp::{Codec, Direction, Negotiated, Sdes};
use oncall_sip::ua::CallRef;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Hears the peer and answers with a tone: the work of an IVR or bridge leg without its logic.
struct Tone;

impl MediaApp for Tone {
    fn on_audio(&mut self, pcm: &[i16], _now: Instant) {
        std::hint::black_box(pcm);
    }
    fn on_telephone_event(&mut self, _payload: &[u8], _timestamp: u32, _marker: bool, _now: Instant) {}
    fn next_frame(&mut self, out: &mut [i16], _now: Instant) -> bool {
        for (i, s) in out.iter_mut().enumerate() {
            *s = if i % 20 < 10 { 4000 } else { -4000 };
        }
        true
    }
    fn on_signal(&mut self, _signal: Signal, _now: Instant) {}
    fn finish(&mut self, _now: Instant) {}
}

/// CPU time the thread named `name` has run, in ns (`/proc/self/task/*/schedstat`: ns, not 10 ms ticks).
fn thread_ns(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            return stat.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// How a run's calls carry their audio.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Srtp,
    Browser,
}

struct Leg {
    peer: UdpSocket,
    to: std::net::SocketAddr,
    sender: RtpSender,
    protect: Option<Srtp>,
    unprotect: Option<Srtp>,
}

/// The media thread's share of a core per call, for `calls` calls over `secs`.
fn run(calls: usize, mode: Mode, secs: u64, first_call: u64) -> f64 {
    if mode == Mode::Browser {
        return run_browsers(calls, secs, first_call);
    }
    let srtp = mode == Mode::Srtp;
    let engine = MediaEngine::start(1);
    let mut legs = Vec::new();
    for i in 0..calls {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
        rtp.set_nonblocking(true).expect("nonblocking");
        let rtcp = UdpSocket::bind("127.0.0.1:0").expect("bind RTCP");
        rtcp.set_nonblocking(true).expect("nonblocking");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
        peer.set_nonblocking(true).expect("nonblocking");
        let keys = Sdes { suite: Suite::AesCm128HmacSha1_80, tag: 1, remote: [i as u8; MASTER_LEN], local: [!(i as u8); MASTER_LEN], savp: true };
        let media = Negotiated { codec: Codec::Pcmu, telephone_event: None, remote: Some(peer.local_addr().expect("addr")), direction: Direction::SendRecv, srtp: srtp.then_some(keys) };
        let to = rtp.local_addr().expect("addr");
        let call = CallRef(first_call + i as u64);
        engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(Tone), browser: None })));
        legs.push(Leg {
            peer,
            to,
            sender: RtpSender::new(i as u32, 0, 0),
            protect: srtp.then(|| Srtp::new(keys.suite, &keys.remote)),
            unprotect: srtp.then(|| Srtp::new(keys.suite, &keys.local)),
        });
    }
    let mut packet = [0u8; 12 + SAMPLES_PER_FRAME + oncall_sip::rtp::srtp::MAX_OVERHEAD];
    let mut buf = [0u8; 2048];
    let tone: Vec<i16> = (0..SAMPLES_PER_FRAME).map(|i| if i % 16 < 8 { 3000 } else { -3000 }).collect();
    let start = Instant::now();
    let warmup = Duration::from_secs(2);
    let mut measured_from = None;
    let mut tick = 0u32;
    loop {
        let now = Instant::now();
        if measured_from.is_none() && now >= start + warmup {
            measured_from = Some((now, thread_ns("media-0").unwrap_or(0)));
        }
        if let Some((from, ticks)) = measured_from {
            if now >= from + Duration::from_secs(secs) {
                let used = thread_ns("media-0").unwrap_or(0) - ticks;
                let share = used as f64 / 1e9 / (now - from).as_secs_f64();
                for i in 0..calls {
                    engine.send(CallRef(first_call + i as u64), MediaCommand::Remove(CallRef(first_call + i as u64)));
                }
                return share * 100.0 / calls as f64;
            }
        }
        for leg in &mut legs {
            let off = leg.sender.next_audio(0, SAMPLES_PER_FRAME).write(&mut packet);
            g711::encode_ulaw(&tone, &mut packet[off..off + SAMPLES_PER_FRAME]);
            let len = match leg.protect.as_mut() {
                Some(s) => s.protect(&mut packet, off + SAMPLES_PER_FRAME).expect("room for the tag"),
                None => off + SAMPLES_PER_FRAME,
            };
            let _ = leg.peer.send_to(&packet[..len], leg.to);
            while let Ok((n, _)) = leg.peer.recv_from(&mut buf) {
                if let Some(s) = leg.unprotect.as_mut() {
                    let _ = s.unprotect(&mut buf[..n]);
                }
            }
        }
        tick += 1;
        let due = start + Duration::from_millis(20) * tick;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

/// The media thread's share of a core per browser leg: `calls` str0m peers, each answered by a `BrowserLeg` in the
/// engine; measured for `secs` once all have connected (ICE and DTLS are a one-off cost per call).
fn run_browsers(calls: usize, secs: u64, first_call: u64) -> f64 {
    let engine = MediaEngine::start(1);
    let mut peers = Vec::new();
    let now = Instant::now();
    for i in 0..calls {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
        rtp.set_nonblocking(true).expect("nonblocking");
        let rtcp = UdpSocket::bind("127.0.0.1:0").expect("bind RTCP");
        rtcp.set_nonblocking(true).expect("nonblocking");
        let (mut peer, pending, offer) = Browser::offer(now);
        let (leg, answer) = BrowserLeg::answer(&offer, rtp.local_addr().expect("addr"), now).expect("an answer");
        peer.accept(pending, &answer);
        let media = Negotiated { codec: Codec::Pcmu, telephone_event: None, remote: None, direction: Direction::SendRecv, srtp: None };
        let call = CallRef(first_call + i as u64);
        engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(Tone), browser: Some(Box::new(leg)) })));
        peers.push(peer);
    }
    let start = Instant::now();
    let mut measured_from = None;
    let mut tick = 0u32;
    loop {
        let now = Instant::now();
        if measured_from.is_none() && (peers.iter().all(|p| p.rtc.is_connected()) || now > start + Duration::from_secs(30)) {
            let connected = peers.iter().filter(|p| p.rtc.is_connected()).count();
            assert_eq!(connected, calls, "{connected} of {calls} browser legs connected in 30 s");
            // A second more, so every leg's first frames are through before counting.
            measured_from = Some((now + Duration::from_secs(1), None));
        }
        if let Some((from, base)) = measured_from.as_mut() {
            if now >= *from && base.is_none() {
                *base = thread_ns("media-0");
            }
            if let Some(ns) = *base {
                if now >= *from + Duration::from_secs(secs) {
                    let used = thread_ns("media-0").unwrap_or(0) - ns;
                    let share = used as f64 / 1e9 / (now - *from).as_secs_f64();
                    for i in 0..calls {
                        engine.send(CallRef(first_call + i as u64), MediaCommand::Remove(CallRef(first_call + i as u64)));
                    }
                    let heard = peers.iter().filter(|p| p.heard > 0).count();
                    assert_eq!(heard, calls, "{heard} of {calls} peers heard the engine");
                    return share * 100.0 / calls as f64;
                }
            }
        }
        for peer in &mut peers {
            peer.step(now);
        }
        tick += 1;
        let due = start + Duration::from_millis(20) * tick;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut secs = 10;
    if let Some(i) = args.iter().position(|a| a == "--secs") {
        secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(secs);
        args.drain(i..(i + 2).min(args.len()));
    }
    let counts: Vec<usize> = if args.is_empty() { vec![50, 200] } else { args.iter().filter_map(|a| a.parse().ok()).collect() };
    println!("calls  %core/call: plain RTP     SRTP  browser (WebRTC)   SRTP/plain  browser/plain   (media thread only, {secs} s each)");
    let mut next = 1;
    for calls in counts {
        let mut share = |mode| {
            let s = run(calls, mode, secs, next);
            // The last run's media thread sees its engine dropped on its next tick and ends; then "media-0" is ours.
            std::thread::sleep(Duration::from_millis(200));
            next += calls as u64;
            s
        };
        let (plain, srtp, browser) = (share(Mode::Plain), share(Mode::Srtp), share(Mode::Browser));
        println!("{calls:>5}  {plain:>20.4}  {srtp:>7.4}  {browser:>16.4}  {:>11.2}  {:>13.2}", srtp / plain, browser / plain);
    }
}
