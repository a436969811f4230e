//! A str0m peer in a browser's role (full ICE, it makes the offer, sends μ-law frames), for the WebRTC leg's tests
//! and the media bench; never on the server's path. The end-to-end test drives a real Chromium instead.

use std::net::UdpSocket;
use std::time::Instant;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// A str0m peer in the browser's role (full ICE, it makes the offer, sends μ-law 0x20 frames), standing in
/// for Chromium here; the end-to-end test drives a real Chromium.
pub struct Browser {
    pub rtc: Rtc,
    sock: UdpSocket,
    mid: Mid,
    /// Frames heard that were not silence.
    pub heard: usize,
    rtp_time: u64,
}

impl Browser {
    /// The browser and its offer.
    pub fn offer(now: Instant) -> (Browser, str0m::change::SdpPendingOffer, String) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).build(now);
        rtc.add_local_candidate(Candidate::host(sock.local_addr().unwrap(), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        (Browser { rtc, sock, mid, heard: 0, rtp_time: 0 }, pending, offer.to_sdp_string())
    }

    pub fn accept(&mut self, pending: str0m::change::SdpPendingOffer, answer: &str) {
        self.rtc.sdp_api().accept_answer(pending, str0m::change::SdpAnswer::from_sdp_string(answer).unwrap()).unwrap();
    }

    /// One 20 ms step: what arrived, the clock, one frame out.
    pub fn step(&mut self, now: Instant) {
        let mut buf = [0u8; 2000];
        let local = self.sock.local_addr().unwrap();
        while let Ok((n, from)) = self.sock.recv_from(&mut buf) {
            if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                let _ = self.rtc.handle_input(Input::Receive(now, r));
                self.pump();
            }
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.pump();
        if self.rtc.is_connected() {
            let time = MediaTime::new(self.rtp_time, Frequency::EIGHT_KHZ);
            self.rtp_time += 160;
            if let Some(w) = self.rtc.writer(self.mid) {
                let pt = w.payload_params().next().map(|p| p.pt()).unwrap();
                let _ = w.write(pt, now, time, vec![0x20; 160]);
            }
            self.pump();
        }
    }

    fn pump(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => return,
                Ok(Output::Transmit(t)) => {
                    let _ = self.sock.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::MediaData(d))) => {
                    if d.data.iter().any(|&b| b != 0xff) {
                        self.heard += 1;
                    }
                }
                Ok(Output::Event(_)) => {}
            }
        }
    }
}

