//! A browser's leg of a call (issue 19): WebRTC (ICE-lite, DTLS-SRTP) carrying G.711, driven by the media
//! thread like any RTP leg. str0m is the WebRTC stack (sans-IO: datagrams and the clock in, datagrams and
//! events out), chosen on the figures in docs/architecture.md ("Browser phone"). The leg owns one UDP socket; its
//! audio goes through the same jitter buffer, `MediaApp` and bridge as a SIP leg's.
//!
//! Status: the media path (answering a browser's offer, connecting, G.711 both ways) is here and tested against a
//! str0m peer in a browser's role; the signalling (WebSocket, ringing the tab) and the page in the browser are not
//! yet (see the note).

use crate::sdp::Codec;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    #[error("the browser's offer is not SDP: {0}")]
    BadOffer(String),
    #[error("the browser's offer cannot be answered: {0}")]
    Refused(String),
    #[error("no address for the browser to reach: {0}")]
    Candidate(String),
}

/// What a leg hands the media thread from one input: audio frames (G.711 payloads with their RTP timestamps)
/// and datagrams to send.
#[derive(Default)]
pub struct LegOutput {
    pub frames: Vec<(u32, Vec<u8>)>,
    pub transmits: Vec<(SocketAddr, Vec<u8>)>,
}

pub struct BrowserLeg {
    rtc: Rtc,
    local: SocketAddr,
    mid: Option<Mid>,
    pt: Option<Pt>,
    codec: Option<Codec>,
    rtp_time: u64,
    next_timeout: Instant,
    /// ICE or DTLS gave up (the tab closed, the network went): the call should end.
    pub gone: bool,
    /// `gone` was handed on (`newly_gone`).
    gone_told: bool,
}

impl BrowserLeg {
    /// Answers the browser's SDP `offer` for a leg whose socket is bound at `local` (the address the browser
    /// can reach: `[sip] advertise` and the port). Only PCMU and PCMA are offered back, so nothing is transcoded.
    pub fn answer(offer: &str, local: SocketAddr, now: Instant) -> Result<(BrowserLeg, String), WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            // Released to the jitter buffer after three packets out of order, not fifteen: a 20 ms tick.
            .set_reordering_size_audio(3)
            .build(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| WebRtcError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| WebRtcError::Refused(e.to_string()))?;
        let leg = BrowserLeg { rtc, local, mid: None, pt: None, codec: None, rtp_time: 0, next_timeout: now, gone: false, gone_told: false };
        Ok((leg, answer.to_sdp_string()))
    }

    /// The codec the browser's media uses, once negotiated media was added.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// True once, when the leg has just gone.
    pub fn newly_gone(&mut self) -> bool {
        let newly = self.gone && !self.gone_told;
        self.gone_told |= self.gone;
        newly
    }

    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// One datagram from `from`.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8], out: &mut LegOutput) {
        let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, data) else { return };
        if self.rtc.handle_input(Input::Receive(now, receive)).is_ok() {
            self.drain(out);
        }
    }

    /// The clock: call every tick; str0m acts only when its own deadline has come.
    pub fn tick(&mut self, now: Instant, out: &mut LegOutput) {
        if now >= self.next_timeout && self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain(out);
        }
    }

    /// One 20 ms G.711 frame (already in the browser's codec) to send; dropped until ICE and DTLS are up.
    pub fn send_frame(&mut self, now: Instant, frame: &[u8], out: &mut LegOutput) {
        let (Some(mid), Some(pt)) = (self.mid, self.pt) else { return };
        if !self.rtc.is_connected() {
            return;
        }
        let time = MediaTime::new(self.rtp_time, Frequency::EIGHT_KHZ);
        self.rtp_time += frame.len() as u64;
        if let Some(writer) = self.rtc.writer(mid) {
            if writer.write(pt, now, time, frame.to_vec()).is_ok() {
                self.drain(out);
            }
        }
    }

    /// Every change to the `Rtc` is followed by taking all it has to say (str0m's rule).
    fn drain(&mut self, out: &mut LegOutput) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => out.transmits.push((t.destination, t.contents.to_vec())),
                Ok(Output::Event(Event::MediaAdded(m))) => {
                    self.mid = Some(m.mid);
                    let chosen = self.rtc.writer(m.mid).and_then(|w| w.payload_params().map(|p| p.pt()).next());
                    self.pt = chosen;
                    self.codec = chosen.and_then(|pt| match *pt {
                        0 => Some(Codec::Pcmu),
                        8 => Some(Codec::Pcma),
                        _ => None,
                    });
                }
                Ok(Output::Event(Event::MediaData(d))) => out.frames.push((d.time.numer() as u32, d.data.to_vec())),
                Ok(Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected))) => self.gone = true,
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    tracing::info!(error = %e, "browser leg failed");
                    self.gone = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{MediaApp, MediaCallSpec, MediaCommand, MediaEngine, Signal};
    use crate::sdp::{Direction as SdpDirection, Negotiated};
    use crate::ua::CallRef;
    use std::net::UdpSocket;
    use std::sync::{Arc, Mutex};
    use crate::media::webrtc_peer::Browser;
    use std::time::Duration;

    /// Runs `f` every 20 ms until it says done or 5 s passed.
    fn every_tick(mut f: impl FnMut(Instant) -> bool) {
        let start = Instant::now();
        for tick in 1.. {
            if f(Instant::now()) || start.elapsed() > Duration::from_secs(5) {
                return;
            }
            std::thread::sleep((start + Duration::from_millis(20) * tick).saturating_duration_since(Instant::now()));
        }
    }

    /// The server's socket, the browser, and the leg that answered its offer (the answer given to the browser).
    fn answered(now: Instant) -> (UdpSocket, Browser, BrowserLeg, String) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let (mut browser, pending, offer) = Browser::offer(now);
        let (leg, answer) = BrowserLeg::answer(&offer, sock.local_addr().unwrap(), now).unwrap();
        browser.accept(pending, &answer);
        (sock, browser, leg, answer)
    }

    /// One 20 ms step of the server's side: what arrived, the clock and `frame` (if any) out; the frames heard.
    fn serve(leg: &mut BrowserLeg, sock: &UdpSocket, now: Instant, frame: Option<&[u8]>) -> Vec<(u32, Vec<u8>)> {
        let mut buf = [0u8; 2000];
        let mut out = LegOutput::default();
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            leg.receive(now, from, &buf[..n], &mut out);
        }
        leg.tick(now, &mut out);
        if let Some(frame) = frame {
            leg.send_frame(now, frame, &mut out);
        }
        for (to, data) in &out.transmits {
            let _ = sock.send_to(data, to);
        }
        out.frames
    }

    #[test]
    fn a_browser_offer_is_answered_and_g711_flows_both_ways() {
        let (sock, mut browser, mut leg, answer) = answered(Instant::now());
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("PCMU/8000"), "{answer}");
        let mut heard_by_server = 0;
        every_tick(|now| {
            heard_by_server += serve(&mut leg, &sock, now, Some(&[0x10; 160])).iter().filter(|(_, f)| f.iter().any(|&b| b != 0xff)).count();
            browser.step(now);
            heard_by_server >= 20 && browser.heard >= 20
        });
        assert!(leg.is_connected(), "ICE and DTLS did not come up");
        assert_eq!(leg.codec(), Some(Codec::Pcmu));
        assert!(heard_by_server >= 20, "the server heard {heard_by_server} frames");
        assert!(browser.heard >= 20, "the browser heard {} frames", browser.heard);
        assert!(!leg.gone);
    }

    /// A browser that stops answering (its network went) is found gone on the leg's clock, once: the media engine then
    /// tells the call's app (`Signal::PeerGone`). Virtual time after the connection, no sleeping for the timeout.
    #[test]
    fn a_browser_that_goes_silent_is_gone_once() {
        let now = Instant::now();
        let (sock, mut browser, mut leg, _) = answered(now);
        let mut last = now;
        every_tick(|now| {
            last = now;
            serve(&mut leg, &sock, now, None);
            browser.step(now);
            leg.is_connected()
        });
        assert!(leg.is_connected() && !leg.gone);
        // The browser falls silent: a minute on the leg's clock, a tick every 20 ms.
        let mut gone_at = None;
        for i in 1..=3000u32 {
            let t = last + Duration::from_millis(20) * i;
            leg.tick(t, &mut LegOutput::default());
            if leg.newly_gone() {
                assert!(gone_at.is_none(), "gone reported twice");
                gone_at = Some(t - last);
            }
        }
        let gone_at = gone_at.expect("the silent browser was never found gone");
        eprintln!("a silent browser is gone after {:.1} s", gone_at.as_secs_f64());
    }

    /// A tab's offer that is not SDP is refused with a reason the tab can show (the controller sends it as `ended`).
    #[test]
    fn a_malformed_offer_is_refused_with_its_reason() {
        let local = "127.0.0.1:40000".parse().unwrap();
        let now = Instant::now();
        for offer in ["", "hello", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\u{0}\u{1}"] {
            match BrowserLeg::answer(offer, local, now) {
                Ok(_) => panic!("{offer:?} was answered"),
                Err(e) => assert!(!e.to_string().is_empty(), "{offer:?}: no reason"),
            }
        }
    }

    /// The same leg inside the media engine: its audio reaches the call's app through the jitter buffer like an
    /// RTP leg's, and the app's frames reach the browser.
    #[test]
    fn a_browser_leg_runs_in_the_media_engine() {
        let now = Instant::now();
        let engine = MediaEngine::start(1);
        let (rtp, rtcp) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
        rtp.set_nonblocking(true).unwrap();
        rtcp.set_nonblocking(true).unwrap();
        let (mut browser, pending, offer) = Browser::offer(now);
        let (leg, answer) = BrowserLeg::answer(&offer, rtp.local_addr().unwrap(), now).unwrap();
        browser.accept(pending, &answer);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let frames_with_sound = || heard.lock().unwrap().iter().filter(|&&h| h).count();
        let media = Negotiated { codec: Codec::Pcmu, telephone_event: None, remote: None, direction: SdpDirection::SendRecv, srtp: None };
        let call = CallRef(3);
        engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(crate::media::engine::tests::Hears(heard.clone())), browser: Some(Box::new(leg)) })));
        every_tick(|now| {
            browser.step(now);
            browser.heard >= 20 && frames_with_sound() >= 20
        });
        engine.send(call, MediaCommand::Remove(call));
        let app_heard = frames_with_sound();
        assert!(app_heard >= 20, "the call's app heard {app_heard} frames from the browser");
        assert!(browser.heard >= 20, "the browser heard {} frames of the app's tone", browser.heard);
    }
}
