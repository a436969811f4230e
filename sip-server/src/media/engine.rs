//! The media engine threads. Each owns a set of calls and wakes every 20 ms on an absolute
//! schedule (no drift: the next tick is the previous deadline + 20 ms, not now + 20 ms).

use super::batch_recv::RecvBatch;
use super::histogram::Histogram;
use super::readiness::Readiness;
use super::webrtc::{BrowserLeg, LegOutput};
use super::{MediaApp, Signal};
use crate::rtp::packet::{looks_like_rtcp, RtpPacket};
use crate::rtp::rtcp::{ntp_from_unix_micros, write_sender_report, ReceptionStats};
use crate::rtp::srtp::{self, Srtp};
use crate::rtp::{JitterBuffer, RtpSender, SAMPLES_PER_FRAME};
use crate::sdp::{Codec, Negotiated, Sdes};
use crate::ua::CallRef;
use crate::rtp::g711;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TICK: Duration = Duration::from_millis(20);
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// An outgoing packet: header, one G.711 frame and room for an SRTP tag.
const PACKET_BUF: usize = 12 + SAMPLES_PER_FRAME + srtp::MAX_OVERHEAD;

pub struct MediaCallSpec {
    pub call: CallRef,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub media: Negotiated,
    pub app: Box<dyn MediaApp>,
    /// A browser's leg (WebRTC on `rtp`) instead of plain RTP or SDES-SRTP to `media.remote`.
    pub browser: Option<Box<BrowserLeg>>,
}

pub enum MediaCommand {
    Add(Box<MediaCallSpec>),
    Update { call: CallRef, media: Negotiated },
    Signal { call: CallRef, signal: Signal },
    Remove(CallRef),
}

#[derive(Default)]
pub struct EngineStats {
    pub calls: AtomicUsize,
    pub packets_sent: AtomicU64,
    pub packets_received: AtomicU64,
    pub ticks_late: AtomicU64,
    /// Packets refused on an SRTP call: a wrong tag (forged, or plain RTP), a replay, or too short.
    pub srtp_refused: AtomicU64,
    /// |send interval - 20 ms| per packet, in µs.
    pub send_jitter: Mutex<Histogram>,
    /// Per media thread, in thousandths of a tick: how much of its 20 ms a tick used from its scheduled start to
    /// the end of its work (waking late counts, as a starved CPU does), smoothed over about 200 ms. 1000 and above
    /// is a thread that no longer keeps the 20 ms schedule.
    pub load: Vec<AtomicU32>,
}

impl EngineStats {
    /// The busiest media thread's load (1.0 = a whole tick used).
    pub fn load(&self) -> f64 {
        self.load.iter().map(|l| l.load(Ordering::Relaxed)).max().unwrap_or(0) as f64 / 1000.0
    }
}

/// One tick's share of a thread's smoothed load (an exponential average over ~10 ticks).
const LOAD_WEIGHT: f64 = 0.1;

/// The smoothed load after a tick that used `used` of its `tick`.
pub fn next_load(previous: f64, used: Duration, tick: Duration) -> f64 {
    previous + LOAD_WEIGHT * (used.as_secs_f64() / tick.as_secs_f64() - previous)
}

#[derive(Clone)]
pub struct MediaEngine {
    threads: Vec<mpsc::Sender<MediaCommand>>,
    pub stats: Arc<EngineStats>,
}

impl MediaEngine {
    pub fn start(threads: usize) -> MediaEngine {
        let threads = threads.max(1);
        let stats = Arc::new(EngineStats { load: (0..threads).map(|_| AtomicU32::new(0)).collect(), ..EngineStats::default() });
        let senders = (0..threads)
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let stats = stats.clone();
                std::thread::Builder::new()
                    .name(format!("media-{i}"))
                    .spawn(move || run(rx, stats, i))
                    .expect("spawning a media thread at start-up");
                tx
            })
            .collect();
        MediaEngine { threads: senders, stats }
    }

    pub fn send(&self, call: CallRef, cmd: MediaCommand) {
        let idx = (call.0 as usize) % self.threads.len();
        let _ = self.threads[idx].send(cmd);
    }
}

struct Call {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    media: Negotiated,
    remote: Option<SocketAddr>,
    latched: bool,
    sender: RtpSender,
    jitter: JitterBuffer,
    app: Box<dyn MediaApp>,
    last_send: Option<Instant>,
    next_rtcp: Instant,
    next_rtcp_drain: Instant,
    rx: ReceptionStats,
    packets_received: u64,
    /// Reported readable by this tick's `epoll_wait`.
    readable: bool,
    /// Its RTP socket is in the thread's epoll set; otherwise (no epoll, or the watch failed) it is read every tick.
    watched: bool,
    srtp: Option<SrtpPair>,
    browser: Option<Box<BrowserLeg>>,
}

/// Both directions of an SRTP call, and the keys they came from (a re-INVITE with the same keys keeps them).
struct SrtpPair {
    keys: Sdes,
    inbound: Srtp,
    outbound: Srtp,
}

impl SrtpPair {
    fn for_media(media: &Negotiated) -> Option<SrtpPair> {
        media.srtp.map(|keys| SrtpPair { keys, inbound: Srtp::new(keys.suite, &keys.remote), outbound: Srtp::new(keys.suite, &keys.local) })
    }
}

fn run(rx: Receiver<MediaCommand>, stats: Arc<EngineStats>, thread: usize) {
    let mut calls: HashMap<CallRef, Call> = HashMap::new();
    let mut buf = [0u8; 2048];
    let mut batch = RecvBatch::default();
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    let mut payload = [0u8; PACKET_BUF];
    let mut local_hist = Histogram::default();
    let mut deadline = Instant::now() + TICK;
    let mut load = 0.0;
    let mut readiness = Readiness::new().expect("an epoll instance for a media thread at start-up");
    loop {
        // This tick was due at `deadline - TICK`.
        let scheduled = deadline - TICK;
        loop {
            match rx.try_recv() {
                Ok(cmd) => apply(cmd, &mut calls, &mut readiness, &stats),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        readiness.ready(|token| {
            if let Some(call) = calls.get_mut(&CallRef(token)) {
                call.readable = true;
            }
        });
        let (mut sent, mut received) = (0u64, 0u64);
        for call in calls.values_mut() {
            let now = Instant::now();
            received += receive(call, &mut batch, &mut buf, &mut pcm, now, &stats);
            if send(call, &mut pcm, &mut payload, now, &mut local_hist) {
                sent += 1;
            }
        }
        stats.packets_sent.fetch_add(sent, Ordering::Relaxed);
        stats.packets_received.fetch_add(received, Ordering::Relaxed);
        if local_hist.count() >= 5000 {
            if let Ok(mut h) = stats.send_jitter.lock() {
                h.merge(&local_hist);
            }
            local_hist = Histogram::default();
        }
        let now = Instant::now();
        load = next_load(load, now.saturating_duration_since(scheduled), TICK);
        stats.load[thread].store((load * 1000.0) as u32, Ordering::Relaxed);
        if now < deadline {
            std::thread::sleep(deadline - now);
            deadline += TICK;
        } else {
            stats.ticks_late.fetch_add(1, Ordering::Relaxed);
            // More than a few ticks behind (machine stalled): restart the schedule instead of bursting.
            deadline = if now - deadline > TICK * 5 { now + TICK } else { deadline + TICK };
        }
    }
}

fn apply(cmd: MediaCommand, calls: &mut HashMap<CallRef, Call>, readiness: &mut Readiness, stats: &EngineStats) {
    let now = Instant::now();
    match cmd {
        MediaCommand::Add(spec) => {
            let spec = *spec;
            let mut call = Call {
                remote: spec.media.remote,
                latched: false,
                sender: RtpSender::new(rand::random(), rand::random(), rand::random()),
                jitter: JitterBuffer::new(3),
                rtp: spec.rtp,
                rtcp: spec.rtcp,
                media: spec.media,
                app: spec.app,
                last_send: None,
                next_rtcp: now + RTCP_INTERVAL,
                next_rtcp_drain: now,
                rx: ReceptionStats::default(),
                packets_received: 0,
                readable: true,
                watched: false,
                srtp: SrtpPair::for_media(&spec.media),
                browser: spec.browser,
            };
            match readiness.add(&call.rtp, spec.call.0) {
                Ok(()) => call.watched = Readiness::PRECISE,
                Err(e) => tracing::warn!(call = spec.call.0, error = %e, "cannot watch the call's RTP socket: reading it every tick"),
            }
            // A call added again replaces its old media: that socket leaves the epoll set before it closes.
            if let Some(old) = calls.insert(spec.call, call) {
                readiness.remove(&old.rtp);
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        MediaCommand::Update { call, media } => {
            if let Some(c) = calls.get_mut(&call) {
                if c.srtp.as_ref().map(|p| p.keys) != media.srtp {
                    c.srtp = SrtpPair::for_media(&media);
                }
                c.media = media;
                if !c.latched {
                    c.remote = media.remote;
                }
            }
        }
        MediaCommand::Signal { call, signal } => {
            if let Some(c) = calls.get_mut(&call) {
                c.app.on_signal(signal, now);
            }
        }
        MediaCommand::Remove(call) => {
            if let Some(mut c) = calls.remove(&call) {
                readiness.remove(&c.rtp);
                c.app.finish(now);
                stats.calls.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads what arrived; returns the number of RTP packets taken.
fn receive(call: &mut Call, batch: &mut RecvBatch, buf: &mut [u8], pcm: &mut [i16; SAMPLES_PER_FRAME], now: Instant, stats: &EngineStats) -> u64 {
    let mut n = 0;
    let waiting = if call.readable || !call.watched { batch.recv(&call.rtp) } else { 0 };
    call.readable = false;
    if call.browser.is_some() {
        return receive_browser(call, batch, waiting, pcm, now);
    }
    for i in 0..waiting {
        let (mut data, from) = batch.get(i);
        if looks_like_rtcp(data) {
            continue;
        }
        if let Some(pair) = call.srtp.as_mut() {
            // Decrypted into the scratch buffer; a packet that fails its tag (plain RTP injected into the call, a
            // forgery, a replay) is dropped before it can move the media address or reach the caller's audio.
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            match pair.inbound.unprotect(&mut buf[..n]) {
                Ok(len) => data = &buf[..len],
                Err(_) => {
                    stats.srtp_refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let Ok(pkt) = RtpPacket::parse(data) else { continue };
        // Symmetric RTP (RFC 4961): answer where the caller's media really comes from (NAT).
        if !call.latched {
            call.remote = from.or(call.remote);
            call.latched = true;
        }
        n += 1;
        call.packets_received += 1;
        call.rx.remote_ssrc = pkt.header.ssrc;
        call.rx.highest_seq = pkt.header.sequence as u32;
        if pkt.header.payload_type == call.media.codec.payload_type() {
            call.jitter.push(pkt.header.timestamp, pkt.payload);
        } else if Some(pkt.header.payload_type) == call.media.telephone_event {
            call.app.on_telephone_event(pkt.payload, pkt.header.timestamp, pkt.header.marker, now);
        }
    }
    // Incoming RTCP is only drained (OnCall does not use its reports), once a second rather than every
    // tick: an empty read is a syscall, and this saves 49 of them per call per second.
    if now >= call.next_rtcp_drain {
        call.next_rtcp_drain = now + Duration::from_secs(1);
        while call.rtcp.recv_from(buf).is_ok() {}
    }
    play_out(call, pcm, now);
    n
}

/// The browser's leg: every datagram (STUN, DTLS, SRTP, SRTCP) goes to its WebRTC stack, which hands back G.711
/// frames for the same jitter buffer and datagrams to send.
fn receive_browser(call: &mut Call, batch: &mut RecvBatch, waiting: usize, pcm: &mut [i16; SAMPLES_PER_FRAME], now: Instant) -> u64 {
    let Some(leg) = call.browser.as_mut() else { return 0 };
    let mut out = LegOutput::default();
    for i in 0..waiting {
        if let (data, Some(from)) = batch.get(i) {
            leg.receive(now, from, data, &mut out);
        }
    }
    leg.tick(now, &mut out);
    if let Some(codec) = leg.codec() {
        call.media.codec = codec;
    }
    if leg.newly_gone() {
        call.app.on_signal(Signal::PeerGone, now);
    }
    let n = out.frames.len() as u64;
    call.packets_received += n;
    for (timestamp, payload) in &out.frames {
        call.jitter.push(*timestamp, payload);
    }
    for (to, data) in &out.transmits {
        let _ = call.rtp.send_to(data, to);
    }
    play_out(call, pcm, now);
    n
}

/// This tick's frame from the jitter buffer, decoded, to the app.
fn play_out(call: &mut Call, pcm: &mut [i16; SAMPLES_PER_FRAME], now: Instant) {
    let mut frame = [0u8; SAMPLES_PER_FRAME];
    if call.jitter.pop(&mut frame, silence_byte(call.media.codec)) {
        match call.media.codec {
            Codec::Pcmu => g711::decode_ulaw(&frame, pcm),
            Codec::Pcma => g711::decode_alaw(&frame, pcm),
        }
    } else {
        pcm.fill(0);
    }
    call.rx.lost = call.jitter.lost_frames as u32;
    call.app.on_audio(pcm, now);
}

/// Keys relayed from a bridged call (RFC 4733), ahead of this tick's audio frame; dropped when this call
/// negotiated no telephone-event or sends nothing (held, no address yet).
fn send_telephone_events(call: &mut Call, packet: &mut [u8; PACKET_BUF]) {
    while let Some(ev) = call.app.next_telephone_event(call.sender.timestamp()) {
        let (Some(pt), Some(remote)) = (call.media.telephone_event, call.remote.filter(|_| call.media.direction.we_send())) else { continue };
        let header = call.sender.next_other(pt, ev.timestamp, ev.marker, ev.payload.len());
        let off = header.write(packet);
        packet[off..off + 4].copy_from_slice(&ev.payload);
        if let Some(len) = protect(call.srtp.as_mut(), packet, off + 4) {
            let _ = call.rtp.send_to(&packet[..len], remote);
        }
    }
}

/// The code of silence (linear 0) in each law.
fn silence_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xff,
        Codec::Pcma => 0xd5,
    }
}

/// The packet in `packet[..len]` as it goes on the wire: encrypted with its tag on an SRTP call; its length.
fn protect(srtp: Option<&mut SrtpPair>, packet: &mut [u8], len: usize) -> Option<usize> {
    match srtp {
        Some(pair) => pair.outbound.protect(packet, len).ok(),
        None => Some(len),
    }
}

fn send(call: &mut Call, pcm: &mut [i16; SAMPLES_PER_FRAME], packet: &mut [u8; PACKET_BUF], now: Instant, hist: &mut Histogram) -> bool {
    let wants = call.app.next_frame(pcm, now);
    send_telephone_events(call, packet);
    if let Some(leg) = call.browser.as_mut().filter(|_| wants) {
        // The WebRTC stack stamps and encrypts the frame itself.
        let mut frame = [0u8; SAMPLES_PER_FRAME];
        match call.media.codec {
            Codec::Pcmu => g711::encode_ulaw(pcm, &mut frame),
            Codec::Pcma => g711::encode_alaw(pcm, &mut frame),
        }
        let mut out = LegOutput::default();
        leg.send_frame(now, &frame, &mut out);
        for (to, data) in &out.transmits {
            let _ = call.rtp.send_to(data, to);
        }
        return true;
    }
    let Some(remote) = call.remote.filter(|_| call.media.direction.we_send()) else {
        call.sender.skip_frame();
        return false;
    };
    if !wants {
        call.sender.skip_frame();
        return false;
    }

    let header = call.sender.next_audio(call.media.codec.payload_type(), SAMPLES_PER_FRAME);
    let off = header.write(packet);
    let end = off + SAMPLES_PER_FRAME;
    match call.media.codec {
        Codec::Pcmu => g711::encode_ulaw(pcm, &mut packet[off..end]),
        Codec::Pcma => g711::encode_alaw(pcm, &mut packet[off..end]),
    }
    let ok = protect(call.srtp.as_mut(), packet, end).is_some_and(|len| call.rtp.send_to(&packet[..len], remote).is_ok());
    if let Some(last) = call.last_send {
        let interval = now.duration_since(last);
        let dev = if interval > TICK { interval - TICK } else { TICK - interval };
        hist.record_us(dev.as_micros() as u64);
    }
    call.last_send = Some(now);
    if now >= call.next_rtcp {
        call.next_rtcp = now + RTCP_INTERVAL;
        let unix_us = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let mut sr = [0u8; 128];
        let rx = (call.packets_received > 0).then_some(call.rx);
        let mut len = write_sender_report(&mut sr, call.sender.ssrc, ntp_from_unix_micros(unix_us), call.sender.timestamp(), call.sender.packets_sent as u32, call.sender.octets_sent as u32, rx);
        if let Some(pair) = call.srtp.as_mut() {
            len = pair.outbound.protect_rtcp(&mut sr, len).unwrap_or(0);
        }
        let rtcp_to = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        if len > 0 {
            let _ = call.rtcp.send_to(&sr[..len], rtcp_to);
        }
    }
    ok
}

#[cfg(test)]
pub(crate) mod tests {

    use super::*;
    use crate::media::bridge::TelephoneEvent;
    use crate::sdp::Direction;

    #[test]
    fn load_follows_the_share_of_each_tick_used() {
        let tick = Duration::from_millis(20);
        let mut load = 0.0;
        for _ in 0..60 {
            load = next_load(load, Duration::from_millis(5), tick);
        }
        assert!((load - 0.25).abs() < 0.01, "5 of 20 ms: {load}");
        // Starved: ticks that end a whole tick after they were due push it past 1 within ~10 ticks.
        for _ in 0..20 {
            load = next_load(load, Duration::from_millis(25), tick);
        }
        assert!(load > 1.0, "{load}");
        // One slow tick alone does not.
        let mut calm = 0.2;
        calm = next_load(calm, Duration::from_millis(40), tick);
        assert!(calm < 0.4, "{calm}");
    }


    /// An app that sends silence and, on the first tick, one relayed telephone-event stamped with the
    /// stream's timestamp at that tick.
    struct RelayOnce(bool);

    impl MediaApp for RelayOnce {
        fn on_audio(&mut self, _pcm: &[i16], _now: Instant) {}
        fn on_telephone_event(&mut self, _payload: &[u8], _timestamp: u32, _marker: bool, _now: Instant) {}
        fn next_frame(&mut self, out: &mut [i16], _now: Instant) -> bool {
            out.fill(0);
            true
        }
        fn on_signal(&mut self, _signal: Signal, _now: Instant) {}
        fn finish(&mut self, _now: Instant) {}
        fn next_telephone_event(&mut self, rtp_timestamp: u32) -> Option<TelephoneEvent> {
            std::mem::replace(&mut self.0, false).then_some(TelephoneEvent { payload: [4, 10, 0, 160], timestamp: rtp_timestamp, marker: true })
        }
    }

    /// One tick of a call whose peer negotiated `telephone_event`; returns what the peer received.
    fn tick(telephone_event: Option<u8>) -> Vec<Vec<u8>> {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let media = Negotiated { codec: Codec::Pcmu, telephone_event, remote: Some(peer.local_addr().unwrap()), direction: Direction::SendRecv, srtp: None };
        let spec = MediaCallSpec {
            call: CallRef(1),
            rtp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            rtcp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            media,
            app: Box::new(RelayOnce(true)),
            browser: None,
        };
        let mut calls = HashMap::new();
        apply(MediaCommand::Add(Box::new(spec)), &mut calls, &mut Readiness::new().unwrap(), &EngineStats::default());
        let call = calls.get_mut(&CallRef(1)).unwrap();
        let (mut pcm, mut packet, mut hist) = ([0i16; SAMPLES_PER_FRAME], [0u8; PACKET_BUF], Histogram::default());
        assert!(send(call, &mut pcm, &mut packet, Instant::now(), &mut hist));
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = peer.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
            // Without telephone-event, wait out the read timeout: nothing but the frame may come.
            if got.len() == 2 {
                break;
            }
        }
        got
    }

    #[test]
    fn a_relayed_telephone_event_goes_out_with_the_legs_payload_type_before_the_frame() {
        let got = tick(Some(96));
        assert_eq!(got.len(), 2);
        let (event, audio) = (RtpPacket::parse(&got[0]).unwrap(), RtpPacket::parse(&got[1]).unwrap());
        assert_eq!((event.header.payload_type, event.header.marker, event.payload), (96, true, &[4, 10, 0, 160][..]));
        assert_eq!(audio.header.payload_type, 0);
        assert_eq!(audio.header.sequence, event.header.sequence.wrapping_add(1), "one sequence for both");
        assert_eq!(audio.header.timestamp, event.header.timestamp, "the event starts at this tick's timestamp");
        assert_eq!(audio.header.ssrc, event.header.ssrc);
    }

    #[test]
    fn without_telephone_event_the_relayed_key_is_dropped() {
        let got = tick(None);
        assert_eq!(got.len(), 1);
        assert_eq!(RtpPacket::parse(&got[0]).unwrap().header.payload_type, 0);
    }

    /// Adds a PCMU call running `app` to `engine`, sending to a new peer socket; returns it and the call's address.
    fn add_call(engine: &MediaEngine, call: CallRef, srtp: Option<Sdes>, app: Box<dyn MediaApp>) -> (UdpSocket, SocketAddr) {
        let (rtp, rtcp, peer) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
        rtp.set_nonblocking(true).unwrap();
        rtcp.set_nonblocking(true).unwrap();
        let ours = rtp.local_addr().unwrap();
        let media = Negotiated { codec: Codec::Pcmu, telephone_event: None, remote: Some(peer.local_addr().unwrap()), direction: Direction::SendRecv, srtp };
        engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app, browser: None })));
        (peer, ours)
    }

    /// Records whether each frame it was handed had sound; its media thread stalls 300 ms once, on the
    /// 10th tick (a busy machine), while the peer keeps sending.
    struct StallsOnce {
        ticks: u32,
        heard: Arc<Mutex<Vec<bool>>>,
    }

    impl MediaApp for StallsOnce {
        fn on_audio(&mut self, pcm: &[i16], _now: Instant) {
            self.heard.lock().unwrap().push(pcm.iter().any(|&s| s != 0));
        }
        fn on_telephone_event(&mut self, _payload: &[u8], _timestamp: u32, _marker: bool, _now: Instant) {}
        fn next_frame(&mut self, out: &mut [i16], _now: Instant) -> bool {
            self.ticks += 1;
            if self.ticks == 10 {
                std::thread::sleep(Duration::from_millis(300));
            }
            out.fill(0);
            true
        }
        fn on_signal(&mut self, _signal: Signal, _now: Instant) {}
        fn finish(&mut self, _now: Instant) {}
    }

    /// Issue 18 item 3: after the media thread stalls, the call's incoming audio must come back. Before,
    /// the burst that waited in the socket overflowed the jitter buffer, playout stayed behind everything
    /// it kept, and the call heard silence to the end (a bridge silent both ways on a busy machine).
    #[test]
    fn incoming_audio_survives_a_stalled_media_thread() {
        let engine = MediaEngine::start(1);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (peer, ours) = add_call(&engine, CallRef(7), None, Box::new(StallsOnce { ticks: 0, heard: heard.clone() }));
        // The peer speaks (a constant non-zero level) for 1.6 s at 20 ms a packet, on its own clock.
        let mut sender = RtpSender::new(1, 2, 3);
        let mut packet = [0u8; 12 + SAMPLES_PER_FRAME];
        let start = Instant::now();
        for i in 0..80u32 {
            let header = sender.next_audio(0, SAMPLES_PER_FRAME);
            let off = header.write(&mut packet);
            g711::encode_ulaw(&[3000; SAMPLES_PER_FRAME], &mut packet[off..]);
            peer.send_to(&packet, ours).unwrap();
            let due = start + TICK * (i + 1);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(TICK * 5);
        engine.send(CallRef(7), MediaCommand::Remove(CallRef(7)));
        let heard = heard.lock().unwrap().clone();
        // The last 20 frames handed to the app come well after the stall (ticks 10..25 span it).
        assert!(heard.len() > 40, "the call ran: {} frames", heard.len());
        let tail = &heard[heard.len() - 25..heard.len() - 5];
        assert!(tail.iter().all(|&h| h), "after the stall the peer is heard again: {tail:?}");
    }

    /// Records whether each frame it was handed had sound, and sends a constant tone (also the browser leg's test app).
    pub(crate) struct Hears(pub(crate) Arc<Mutex<Vec<bool>>>);

    impl MediaApp for Hears {
        fn on_audio(&mut self, pcm: &[i16], _now: Instant) {
            self.0.lock().unwrap().push(pcm.iter().any(|&s| s != 0));
        }
        fn on_telephone_event(&mut self, _payload: &[u8], _timestamp: u32, _marker: bool, _now: Instant) {}
        fn next_frame(&mut self, out: &mut [i16], _now: Instant) -> bool {
            out.fill(2000);
            true
        }
        fn on_signal(&mut self, _signal: Signal, _now: Instant) {}
        fn finish(&mut self, _now: Instant) {}
    }

    /// Issue 21: an SRTP call sends only what the peer's key opens, hears the peer's SRTP, and drops plain RTP
    /// injected from elsewhere without moving its media address there.
    #[test]
    fn srtp_call_encrypts_decrypts_and_drops_plain_rtp() {
        use crate::rtp::srtp::{Suite, MASTER_LEN};
        let engine = MediaEngine::start(1);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
        let keys = Sdes { suite: Suite::AesCm128HmacSha1_80, tag: 1, remote: [1; MASTER_LEN], local: [2; MASTER_LEN], savp: true };
        let (peer, ours) = add_call(&engine, CallRef(9), Some(keys), Box::new(Hears(heard.clone())));
        peer.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let (mut plain_tx, mut srtp_tx) = (RtpSender::new(1, 2, 3), RtpSender::new(4, 5, 6));
        let mut peer_srtp = Srtp::new(keys.suite, &keys.remote);
        let mut packet = [0u8; PACKET_BUF];
        for _ in 0..25 {
            // Plain RTP first, from another address: dropped, never latched.
            let off = plain_tx.next_audio(0, SAMPLES_PER_FRAME).write(&mut packet);
            g711::encode_ulaw(&[3000; SAMPLES_PER_FRAME], &mut packet[off..off + SAMPLES_PER_FRAME]);
            attacker.send_to(&packet[..off + SAMPLES_PER_FRAME], ours).unwrap();
            std::thread::sleep(TICK);
        }
        for _ in 0..25 {
            let off = srtp_tx.next_audio(0, SAMPLES_PER_FRAME).write(&mut packet);
            g711::encode_ulaw(&[3000; SAMPLES_PER_FRAME], &mut packet[off..off + SAMPLES_PER_FRAME]);
            let n = peer_srtp.protect(&mut packet, off + SAMPLES_PER_FRAME).unwrap();
            peer.send_to(&packet[..n], ours).unwrap();
            std::thread::sleep(TICK);
        }
        // What reached the peer opens with OnCall's key, and is not G.711 in the clear.
        let mut ours_in = Srtp::new(keys.suite, &keys.local);
        let mut buf = [0u8; 2048];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(n, 12 + SAMPLES_PER_FRAME + 10);
        let clear = ours_in.unprotect(&mut buf[..n]).unwrap();
        assert_eq!(clear, 12 + SAMPLES_PER_FRAME);
        engine.send(CallRef(9), MediaCommand::Remove(CallRef(9)));
        std::thread::sleep(TICK * 3);
        let heard = heard.lock().unwrap().clone();
        let loud = heard.iter().filter(|&&h| h).count();
        assert!(loud >= 15, "the peer's SRTP audio was heard: {loud} of {} frames", heard.len());
        assert!(heard[..20].iter().all(|&h| !h), "the injected plain RTP was not: {heard:?}");
        assert!(engine.stats.srtp_refused.load(Ordering::Relaxed) >= 20);
        assert!(attacker.set_nonblocking(true).is_ok() && attacker.recv_from(&mut buf).is_err(), "no media went to the attacker");
    }
}
