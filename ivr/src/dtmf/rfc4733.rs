//! RFC 4733 telephone-events: DTMF carried as RTP packets instead of audio.
//!
//! [`TelephoneEvent::parse`] reads the 4-byte payload of RFC 4733 §2.3 (event, E bit, R bit, volume, duration).
//! [`EventDecoder`] turns the packet stream into key presses. A sender repeats every event many times (RFC 4733
//! §2.5.1.2: a start packet with the marker bit, continuation packets with a growing duration, and §2.5.1.4: the end
//! packet sent three times), and any of those may be lost or reordered. All packets of one press share the RTP
//! timestamp of its start (§2.5.1.1), so the timestamp is the press's identity: the decoder reports a press on the
//! first packet it sees with a new timestamp (so barge-in does not wait for the key to be released) and ignores the
//! rest.
//!
//! Deliberately not handled: RFC 2198 redundant payloads (the caller strips the redundancy header first), non-DTMF
//! events (codes ≥ 16 are parsed but never reported as digits), and how long a key was held.

use thiserror::Error;

use crate::digit::Digit;

/// A malformed telephone-event payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rfc4733Error {
    #[error("telephone-event payload is {len} bytes, needs at least 4")]
    TooShort { len: usize },
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (§3.2): 0-15 are DTMF keys, higher codes are other tones.
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level of the tone, in −dBm0 (0 = loudest, 63 = quietest); 6 bits.
    pub volume: u8,
    /// How long the event has lasted so far, in RTP timestamp units, counted from the packet's RTP timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first four bytes of `payload`. Longer payloads are accepted and the rest ignored, since the only
    /// legitimate extra content (RFC 2198 redundancy) needs the caller's help to interpret anyway.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, Rfc4733Error> {
        let [event, flags, d0, d1] = match payload {
            [a, b, c, d, ..] => [*a, *b, *c, *d],
            _ => return Err(Rfc4733Error::TooShort { len: payload.len() }),
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            // The R bit (0x40) is reserved: senders must send 0, receivers must ignore it.
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The DTMF key, if this event is one (codes 0-15).
    pub fn digit(&self) -> Option<Digit> {
        Digit::from_event_code(self.event)
    }

    /// Encodes the event into a 4-byte payload (used by tests and by anything that sends DTMF).
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3f), d0, d1]
    }
}

/// How many recent event timestamps the decoder remembers. A late packet of the press before the current one is the
/// realistic case; four covers a burst of fast presses on a jittery path at the cost of 24 bytes.
const REMEMBERED_EVENTS: usize = 4;

/// Turns a stream of telephone-event packets of one RTP stream into key presses, each reported once.
///
/// One blind spot, accepted because it needs three lost end packets *and* a lost start packet: a new press of the
/// same key whose marker packet is lost, right after a press whose end was never seen, looks like a long-event
/// segment and is not reported.
///
/// Allocation-free; one per call (per RTP SSRC). Call [`EventDecoder::reset`] if the remote SSRC
/// changes, since timestamps of the new stream have nothing to do with the old one.
#[derive(Debug, Clone, Default)]
pub struct EventDecoder {
    /// Ring of the last events seen, newest at `newest`: (RTP timestamp, event code).
    seen: [Option<(u32, u8)>; REMEMBERED_EVENTS],
    newest: usize,
    /// Whether the newest event's end packet has been seen (needed to recognise long-event segments, below).
    newest_ended: bool,
}

impl EventDecoder {
    pub fn new() -> EventDecoder {
        EventDecoder::default()
    }

    /// Feeds one telephone-event packet: its payload, RTP timestamp and marker bit. Returns the digit when this
    /// packet is the first one seen of a new key press.
    pub fn feed(&mut self, payload: &[u8], rtp_timestamp: u32, marker: bool) -> Result<Option<Digit>, Rfc4733Error> {
        let event = TelephoneEvent::parse(payload)?;
        Ok(self.feed_event(&event, rtp_timestamp, marker))
    }

    /// As [`EventDecoder::feed`], for an already parsed payload.
    pub fn feed_event(&mut self, event: &TelephoneEvent, rtp_timestamp: u32, marker: bool) -> Option<Digit> {
        if let Some(index) = self.seen.iter().position(|s| *s == Some((rtp_timestamp, event.event))) {
            // A repeat (continuation, retransmitted end) or a late packet of a press already reported.
            if index == self.newest && event.end {
                self.newest_ended = true;
            }
            return None;
        }

        // RFC 4733 §2.5.1.3: an event longer than the 16-bit duration field can express is sent as several segments,
        // each with a new timestamp but *without* the marker bit. A new timestamp for the same, still-running event
        // and no marker is such a segment, not a new press.
        let continues_long_event =
            !marker && !self.newest_ended && matches!(self.seen[self.newest], Some((_, code)) if code == event.event);

        self.newest = (self.newest + 1) % REMEMBERED_EVENTS;
        self.seen[self.newest] = Some((rtp_timestamp, event.event));
        self.newest_ended = event.end;

        if continues_long_event {
            None
        } else {
            event.digit()
        }
    }

    /// Forgets every event seen, e.g. when the sender's SSRC changes.
    pub fn reset(&mut self) {
        *self = EventDecoder::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
    }

    /// The packets a typical sender emits for one 100 ms press at 8 kHz with 20 ms packetisation: marker start,
    /// continuations, three end packets (RFC 4733 §2.5.1).
    fn press(event: u8, ts: u32) -> Vec<([u8; 4], u32, bool)> {
        let mut packets = vec![(payload(event, false, 160), ts, true)];
        for d in [320, 480, 640] {
            packets.push((payload(event, false, d), ts, false));
        }
        for _ in 0..3 {
            packets.push((payload(event, true, 800), ts, false));
        }
        packets
    }

    fn decode(decoder: &mut EventDecoder, packets: &[([u8; 4], u32, bool)]) -> Vec<Digit> {
        packets.iter().filter_map(|(p, ts, m)| decoder.feed(p, *ts, *m).expect("valid payload")).collect()
    }

    #[test]
    fn parses_the_payload_fields() {
        let e = TelephoneEvent::parse(&[0x0b, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(e, TelephoneEvent { event: 11, end: true, volume: 10, duration: 800 });
        assert_eq!(e.digit(), Some(Digit::Pound));
        // The reserved R bit is ignored, extra bytes are ignored.
        let e = TelephoneEvent::parse(&[0x05, 0x4a, 0x00, 0xa0, 0xff]).unwrap();
        assert_eq!(e, TelephoneEvent { event: 5, end: false, volume: 10, duration: 160 });
        assert_eq!(TelephoneEvent::parse(&[32, 0, 0, 0]).unwrap().digit(), None);
    }

    #[test]
    fn short_payload_is_an_error() {
        for len in 0..4 {
            assert_eq!(TelephoneEvent::parse(&[0u8; 4][..len]), Err(Rfc4733Error::TooShort { len }));
        }
        assert!(EventDecoder::new().feed(&[1, 2], 0, true).is_err());
    }

    #[test]
    fn one_press_is_reported_once_on_its_first_packet() {
        let mut decoder = EventDecoder::new();
        let packets = press(5, 1000);
        assert_eq!(decoder.feed(&packets[0].0, 1000, true).unwrap(), Some(Digit::D5));
        assert_eq!(decode(&mut decoder, &packets[1..]), vec![]);
    }

    #[test]
    fn pressing_the_same_key_twice_reports_it_twice() {
        let mut decoder = EventDecoder::new();
        let mut packets = press(1, 1000);
        packets.extend(press(1, 3000));
        packets.extend(press(2, 5000));
        assert_eq!(decode(&mut decoder, &packets), vec![Digit::D1, Digit::D1, Digit::D2]);
    }

    #[test]
    fn lost_start_packet_still_reports_the_press() {
        let mut decoder = EventDecoder::new();
        let packets = press(9, 1000);
        assert_eq!(decode(&mut decoder, &packets[2..]), vec![Digit::D9]);
        // Only the end packets survived.
        let packets = press(9, 9000);
        assert_eq!(decode(&mut decoder, &packets[5..]), vec![Digit::D9]);
    }

    #[test]
    fn late_packets_of_the_previous_press_are_ignored() {
        let mut decoder = EventDecoder::new();
        let first = press(3, 1000);
        let second = press(4, 2000);
        let mut packets = vec![first[0], first[1], second[0]];
        // A retransmitted end of the first press arrives after the second press began.
        packets.push(first[6]);
        packets.extend_from_slice(&second[1..]);
        packets.push(first[5]);
        assert_eq!(decode(&mut decoder, &packets), vec![Digit::D3, Digit::D4]);
    }

    #[test]
    fn long_event_segments_are_one_press() {
        // §2.5.1.3: after 65535 units the sender starts a new segment with a new timestamp and no marker.
        let mut decoder = EventDecoder::new();
        let packets = vec![
            (payload(0, false, 160), 0, true),
            (payload(0, false, 65535), 0, false),
            (payload(0, false, 160), 65535, false),
            (payload(0, true, 1000), 65535, false),
            (payload(0, true, 1000), 65535, false),
            // A new press of the same key: new timestamp and marker.
            (payload(0, false, 160), 80000, true),
        ];
        assert_eq!(decode(&mut decoder, &packets), vec![Digit::D0, Digit::D0]);
    }

    #[test]
    fn non_dtmf_events_are_not_digits() {
        let mut decoder = EventDecoder::new();
        assert_eq!(decoder.feed(&payload(36, false, 160), 0, true).unwrap(), None); // fax CNG
        assert_eq!(decoder.feed(&payload(7, false, 160), 160, true).unwrap(), Some(Digit::D7));
    }

    #[test]
    fn timestamps_wrap_around() {
        let mut decoder = EventDecoder::new();
        let mut packets = press(1, u32::MAX - 100);
        packets.extend(press(1, 200));
        assert_eq!(decode(&mut decoder, &packets), vec![Digit::D1, Digit::D1]);
    }

    #[test]
    fn reset_forgets_seen_events() {
        let mut decoder = EventDecoder::new();
        assert_eq!(decoder.feed(&payload(2, false, 160), 77, true).unwrap(), Some(Digit::D2));
        decoder.reset();
        assert_eq!(decoder.feed(&payload(2, false, 160), 77, true).unwrap(), Some(Digit::D2));
    }
}
