//! A small fixed-depth jitter buffer for 20 ms G.711 frames: reorders by sequence number, drops
//! duplicates and late packets, and hands out exactly one frame per tick (or a gap) once primed.
//!
//! Depth is a few frames (default 3 = 60 ms): enough for loopback and LAN reordering while
//! adding little delay to the IVR. It does not stretch or shrink audio (no adaptive playout).

use super::SAMPLES_PER_FRAME;

const SLOTS: usize = 8;

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    depth: u16,
    slots: [Option<[u8; SAMPLES_PER_FRAME]>; SLOTS],
    /// Sequence number of the next frame to play; None until the first packet.
    next: Option<u16>,
    primed: bool,
    pub late: u64,
    pub duplicates: u64,
    pub lost: u64,
}

impl JitterBuffer {
    pub fn new(depth: u16) -> Self {
        JitterBuffer { depth: depth.clamp(1, SLOTS as u16 - 1), slots: [None; SLOTS], next: None, primed: false, late: 0, duplicates: 0, lost: 0 }
    }

    /// Stores a frame of G.711 payload (shorter payloads are zero-padded, longer ones cut).
    pub fn push(&mut self, sequence: u16, payload: &[u8]) {
        let next = *self.next.get_or_insert(sequence);
        let ahead = sequence.wrapping_sub(next);
        if ahead >= 0x8000 {
            self.late += 1;
            return;
        }
        if ahead as usize >= SLOTS {
            // Far ahead (a gap or a restart): jump forward, dropping what was queued.
            self.slots = [None; SLOTS];
            self.next = Some(sequence);
            self.lost += ahead as u64;
        }
        let idx = sequence as usize % SLOTS;
        if self.slots[idx].is_some() {
            self.duplicates += 1;
            return;
        }
        let mut frame = [0xffu8; SAMPLES_PER_FRAME];
        let n = payload.len().min(SAMPLES_PER_FRAME);
        frame[..n].copy_from_slice(&payload[..n]);
        self.slots[idx] = Some(frame);
        if !self.primed && self.buffered() >= self.depth as usize {
            self.primed = true;
        }
    }

    fn buffered(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The frame for this tick: `Some(frame)`, or `None` for a gap (lost or not yet primed).
    pub fn pop(&mut self) -> Option<[u8; SAMPLES_PER_FRAME]> {
        if !self.primed {
            return None;
        }
        let next = self.next?;
        let frame = self.slots[next as usize % SLOTS].take();
        self.next = Some(next.wrapping_add(1));
        if frame.is_none() {
            self.lost += 1;
            if self.buffered() == 0 {
                // Ran dry: wait to refill to depth before playing again.
                self.primed = false;
                self.next = None;
            }
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_and_drops_duplicates_and_late() {
        let mut jb = JitterBuffer::new(2);
        jb.push(11, &[1; 160]);
        jb.push(10, &[0; 160]); // arrives first-after: earlier than next=11, so late
        assert_eq!(jb.late, 1);
        jb.push(12, &[2; 160]);
        jb.push(12, &[2; 160]);
        assert_eq!(jb.duplicates, 1);
        assert_eq!(jb.pop().unwrap()[0], 1);
        assert_eq!(jb.pop().unwrap()[0], 2);
        assert!(jb.pop().is_none());
    }

    #[test]
    fn wraps_sequence_numbers() {
        let mut jb = JitterBuffer::new(1);
        for s in [65534u16, 65535, 0, 1] {
            jb.push(s, &[s as u8; 160]);
            assert_eq!(jb.pop().unwrap()[0], s as u8);
        }
    }
}
