//! The sending side of one RTP stream: sequence numbers and timestamps that advance by exactly one
//! frame per 20 ms tick, a random SSRC and initial values (RFC 3550 §5.1), and the marker bit on the
//! first packet of a talkspurt. The pacing clock is the media engine's; this only numbers packets.

use super::packet::RtpHeader;
use super::SAMPLES_PER_FRAME;

#[derive(Debug, Clone)]
pub struct RtpSender {
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
    marker_next: bool,
    pub packets_sent: u64,
    pub octets_sent: u64,
}

impl RtpSender {
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> Self {
        RtpSender { ssrc, sequence: first_sequence, timestamp: first_timestamp, marker_next: true, packets_sent: 0, octets_sent: 0 }
    }

    /// Header for the next audio frame; advances sequence and timestamp.
    pub fn next_audio(&mut self, payload_type: u8, payload_len: usize) -> RtpHeader {
        let h = RtpHeader { marker: self.marker_next, payload_type, sequence: self.sequence, timestamp: self.timestamp, ssrc: self.ssrc };
        self.marker_next = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_FRAME as u32);
        self.packets_sent += 1;
        self.octets_sent += payload_len as u64;
        h
    }

    /// Header for a packet that is not the next audio frame (an RFC 4733 telephone-event, whose timestamp
    /// is its event's start): takes the next sequence number, leaves the audio timestamp alone.
    pub fn next_other(&mut self, payload_type: u8, timestamp: u32, marker: bool, payload_len: usize) -> RtpHeader {
        let h = RtpHeader { marker, payload_type, sequence: self.sequence, timestamp, ssrc: self.ssrc };
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent += 1;
        self.octets_sent += payload_len as u64;
        h
    }

    /// A frame time passes with nothing sent (hold, silence suppression): the timestamp still advances
    /// and the next packet starts a talkspurt.
    pub fn skip_frame(&mut self) {
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_FRAME as u32);
        self.marker_next = true;
    }

    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_wraps_and_marks_talkspurts() {
        let mut s = RtpSender::new(7, 65535, u32::MAX - 100);
        let a = s.next_audio(0, 160);
        let b = s.next_audio(0, 160);
        assert!(a.marker && !b.marker);
        assert_eq!((a.sequence, b.sequence), (65535, 0));
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(160));
        s.skip_frame();
        let c = s.next_audio(0, 160);
        assert!(c.marker);
        assert_eq!(c.timestamp, b.timestamp.wrapping_add(320));
    }
}
