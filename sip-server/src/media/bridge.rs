//! The audio path between two calls (caller and paged employee): each leg hands the 20 ms frames it
//! heard to the other through a small shared mailbox, decoded to PCM so each leg encodes with its own
//! codec (PCMU↔PCMA transcoding falls out of that). The legs may live on different media threads.
//!
//! The mailbox holds at most [`MAX_QUEUED`] frames per direction; beyond that the oldest is dropped, so
//! a leg that ticks slightly faster than the other never builds up delay.
//!
//! RFC 4733 telephone-events (keys pressed on one phone) cross over too, as the raw 4-byte payloads with
//! their source RTP timestamp. The receiving end re-stamps them on its own leg's RTP clock ([`EventRetimer`]):
//! the first packet of an event gets the leg's current timestamp and the marker bit, its updates and its
//! (repeated) end packets keep that timestamp, so the duration field carries over unchanged (both legs are
//! 8 kHz G.711). The engine sends them with the leg's negotiated telephone-event payload type, or drops them
//! when that leg has none. SIP INFO and in-band digits are not relayed.

use super::super::rtp::SAMPLES_PER_FRAME;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// 60 ms of audio per direction at most.
pub const MAX_QUEUED: usize = 3;

type Frame = [i16; SAMPLES_PER_FRAME];

/// Telephone-event packets waiting per direction at most (a key press is ~10 packets over 200 ms; the
/// other leg takes them every 20 ms).
pub const MAX_QUEUED_EVENTS: usize = 32;

/// One RFC 4733 telephone-event packet: the 4-byte payload (event, E/R/volume, duration), its RTP
/// timestamp and marker bit. Crossing the bridge the timestamp is the sending leg's; from
/// [`BridgeLink::recv_event`] on it is the receiving leg's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub payload: [u8; 4],
    pub timestamp: u32,
    pub marker: bool,
}

#[derive(Default)]
struct Mailbox {
    /// Frames for side A to play (heard by B), and for side B.
    to_a: VecDeque<Frame>,
    to_b: VecDeque<Frame>,
    /// Telephone-events for side A to send (pressed on B's phone), and for side B.
    events_to_a: VecDeque<TelephoneEvent>,
    events_to_b: VecDeque<TelephoneEvent>,
    closed: bool,
    dropped: u64,
}

/// Maps the events of the other leg onto this leg's RTP clock: one event (one source timestamp) keeps
/// one timestamp here, the leg's timestamp when its first packet arrived; that first packet is marked.
#[derive(Debug, Default, Clone)]
pub struct EventRetimer {
    /// (source timestamp, this leg's timestamp) of the event being relayed.
    current: Option<(u32, u32)>,
}

impl EventRetimer {
    /// `event` as sent on this leg, whose next RTP timestamp is `leg_timestamp`.
    pub fn retime(&mut self, event: TelephoneEvent, leg_timestamp: u32) -> TelephoneEvent {
        match self.current {
            Some((source, ours)) if source == event.timestamp => TelephoneEvent { timestamp: ours, marker: false, ..event },
            _ => {
                self.current = Some((event.timestamp, leg_timestamp));
                TelephoneEvent { timestamp: leg_timestamp, marker: true, ..event }
            }
        }
    }
}

/// One leg's end of a bridge.
pub struct BridgeLink {
    shared: Arc<Mutex<Mailbox>>,
    is_a: bool,
    retimer: EventRetimer,
    /// The source timestamp of an event not to relay (the key press that made the bridge).
    ignored_event: Option<u32>,
}

impl BridgeLink {
    /// Two connected ends.
    pub fn pair() -> (BridgeLink, BridgeLink) {
        let shared = Arc::new(Mutex::new(Mailbox::default()));
        (
            BridgeLink { shared: shared.clone(), is_a: true, retimer: EventRetimer::default(), ignored_event: None },
            BridgeLink { shared, is_a: false, retimer: EventRetimer::default(), ignored_event: None },
        )
    }

    /// The rest of the event with source timestamp `timestamp` (its updates and end packets) stays on this
    /// leg: it is the key press that made the bridge (an employee's 1), which the other leg must not hear.
    pub fn ignore_event(&mut self, timestamp: Option<u32>) {
        self.ignored_event = timestamp;
    }

    /// Hands a telephone-event packet this leg received (`payload` as it came, its RTP timestamp and
    /// marker) to the other leg. Anything but a 4-byte payload (RFC 4733 §2.3) is ignored.
    pub fn send_event(&self, payload: &[u8], timestamp: u32, marker: bool) {
        let Ok(payload) = <[u8; 4]>::try_from(payload.get(..4).unwrap_or(&[])) else { return };
        if self.ignored_event == Some(timestamp) {
            return;
        }
        let is_a = self.is_a;
        self.with(|m| {
            if m.closed {
                return;
            }
            let q = if is_a { &mut m.events_to_b } else { &mut m.events_to_a };
            if q.len() >= MAX_QUEUED_EVENTS {
                q.pop_front();
            }
            q.push_back(TelephoneEvent { payload, timestamp, marker });
        });
    }

    /// The next telephone-event the other leg relayed, re-stamped for this leg whose next RTP timestamp
    /// is `leg_timestamp`.
    pub fn recv_event(&mut self, leg_timestamp: u32) -> Option<TelephoneEvent> {
        let is_a = self.is_a;
        let event = self.with(|m| if is_a { m.events_to_a.pop_front() } else { m.events_to_b.pop_front() })?;
        Some(self.retimer.retime(event, leg_timestamp))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Mailbox) -> R) -> R {
        let mut m = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    /// Hands a frame this leg heard to the other leg.
    pub fn send(&self, pcm: &[i16]) {
        let mut frame = [0i16; SAMPLES_PER_FRAME];
        let n = pcm.len().min(SAMPLES_PER_FRAME);
        frame[..n].copy_from_slice(&pcm[..n]);
        let is_a = self.is_a;
        self.with(|m| {
            if m.closed {
                return;
            }
            let q = if is_a { &mut m.to_b } else { &mut m.to_a };
            if q.len() >= MAX_QUEUED {
                q.pop_front();
                m.dropped += 1;
            }
            q.push_back(frame);
        });
    }

    /// The next frame to play to this leg; false (and silence) when the other leg sent nothing yet.
    pub fn recv(&self, out: &mut [i16]) -> bool {
        let is_a = self.is_a;
        let frame = self.with(|m| if is_a { m.to_a.pop_front() } else { m.to_b.pop_front() });
        match frame {
            Some(f) => {
                let n = out.len().min(SAMPLES_PER_FRAME);
                out[..n].copy_from_slice(&f[..n]);
                true
            }
            None => {
                out.fill(0);
                false
            }
        }
    }

    /// Either leg ends the bridge; the other sees `is_closed`.
    pub fn close(&self) {
        self.with(|m| {
            m.closed = true;
            m.to_a.clear();
            m.to_b.clear();
            m.events_to_a.clear();
            m.events_to_b.clear();
        });
    }

    pub fn is_closed(&self) -> bool {
        self.with(|m| m.closed)
    }

    /// Frames dropped because a leg fell behind.
    pub fn dropped(&self) -> u64 {
        self.with(|m| m.dropped)
    }
}

/// Interleaves two mono frames into one stereo frame (left = `left`, right = `right`) for the
/// conversation recording (caller left, employee right).
pub fn interleave(left: &[i16], right: &[i16], out: &mut [i16]) {
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        pair[0] = left.get(i).copied().unwrap_or(0);
        pair[1] = right.get(i).copied().unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_over_and_backlog_is_bounded() {
        let (a, b) = BridgeLink::pair();
        let mut out = [0i16; SAMPLES_PER_FRAME];
        assert!(!b.recv(&mut out), "nothing sent yet");
        a.send(&[7; SAMPLES_PER_FRAME]);
        assert!(b.recv(&mut out) && out[0] == 7);
        assert!(!a.recv(&mut out), "a does not hear itself");
        for i in 0..10 {
            b.send(&[i; SAMPLES_PER_FRAME]);
        }
        assert_eq!(a.dropped(), 7);
        assert!(a.recv(&mut out) && out[0] == 7, "only the newest 60 ms are kept");
        b.close();
        assert!(a.is_closed());
        a.send(&[1; SAMPLES_PER_FRAME]);
        assert!(!b.recv(&mut out));
    }

    /// A key pressed on B's phone (event 5: three updates, then the end packet sent three times, all with
    /// B's timestamp 1000) reaches A stamped with A's clock at the time, the first packet marked.
    #[test]
    fn telephone_events_cross_over_restamped_for_the_other_leg() {
        let (mut a, b) = BridgeLink::pair();
        assert_eq!(a.recv_event(50_000), None);
        let packet = |end: bool, duration: u16| {
            let d = duration.to_be_bytes();
            [5, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
        };
        b.send_event(&packet(false, 160), 1000, true);
        b.send_event(&packet(false, 320), 1000, false);
        b.send_event(&packet(false, 480), 1000, false);
        for _ in 0..3 {
            b.send_event(&packet(true, 640), 1000, false);
        }
        b.send_event(&[1, 2], 1000, false); // malformed: ignored
        // A's next audio timestamp is 50000 when the first packet is taken, later ones tick on.
        let first = a.recv_event(50_000).unwrap();
        assert_eq!(first, TelephoneEvent { payload: packet(false, 160), timestamp: 50_000, marker: true });
        let rest: Vec<TelephoneEvent> = (1..6).map(|i| a.recv_event(50_000 + 160 * i).unwrap()).collect();
        assert!(rest.iter().all(|e| e.timestamp == 50_000 && !e.marker), "one event keeps one timestamp: {rest:?}");
        assert_eq!(rest[4].payload, packet(true, 640), "the end packets carry the duration unchanged");
        assert_eq!(a.recv_event(51_000), None, "the short packet was dropped");
        assert_eq!(b.recv_event_for_test(), None, "b does not hear its own keys");
        // The next key (a new source timestamp) starts a new event on A's clock.
        b.send_event(&packet(false, 160), 9000, false);
        assert_eq!(a.recv_event(52_000).map(|e| (e.timestamp, e.marker)), Some((52_000, true)));
    }

    #[test]
    fn the_key_that_made_the_bridge_is_not_relayed() {
        let (mut a, mut b) = BridgeLink::pair();
        b.ignore_event(Some(4000));
        b.send_event(&[1, 0x80 | 10, 3, 32], 4000, false);
        assert_eq!(a.recv_event(0), None);
        b.send_event(&[4, 10, 0, 160], 4800, true);
        assert_eq!(a.recv_event(0).map(|e| e.payload[0]), Some(4));
    }

    #[test]
    fn events_backlog_is_bounded_and_closing_drops_them() {
        let (mut a, b) = BridgeLink::pair();
        for i in 0..(MAX_QUEUED_EVENTS as u32 + 8) {
            b.send_event(&[1, 0, 0, 160], i, false);
        }
        let first = a.recv_event(0).unwrap();
        assert_eq!(first.payload, [1, 0, 0, 160]);
        let mut n = 1;
        while a.recv_event(0).is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED_EVENTS);
        b.send_event(&[1, 0, 0, 160], 99, false);
        b.close();
        assert_eq!(a.recv_event(0), None);
    }

    impl BridgeLink {
        fn recv_event_for_test(&self) -> Option<TelephoneEvent> {
            let is_a = self.is_a;
            self.with(|m| if is_a { m.events_to_a.pop_front() } else { m.events_to_b.pop_front() })
        }
    }

    #[test]
    fn stereo_interleaving() {
        let mut out = [0i16; 8];
        interleave(&[1, 2, 3, 4], &[5, 6, 7, 8], &mut out);
        assert_eq!(out, [1, 5, 2, 6, 3, 7, 4, 8]);
    }
}
