//! A small jitter buffer for G.711 (one byte per sample), placed by RTP timestamp so any packet
//! size works (10, 20, 30 ms...) while playout always takes 20 ms frames. It reorders, drops
//! duplicates and late packets, and fills gaps with the codec's silence.
//!
//! Depth is fixed (default 60 ms): enough for LAN and loopback reordering while adding little delay
//! to the IVR. It does not stretch or shrink audio (no adaptive playout, no packet-loss concealment).

use super::SAMPLES_PER_FRAME;

const SLOTS: usize = 8;
/// Largest payload kept per packet: 60 ms.
const MAX_PAYLOAD: usize = 480;

#[derive(Debug, Clone, Copy)]
struct Slot {
    timestamp: u32,
    len: u16,
    data: [u8; MAX_PAYLOAD],
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    depth_samples: u32,
    slots: [Option<Slot>; SLOTS],
    /// RTP timestamp of the next sample to play; None until primed.
    playout: Option<u32>,
    pub late: u64,
    pub duplicates: u64,
    pub lost_frames: u64,
}

/// `a - b` in RTP timestamp space (wrapping, signed).
fn diff(a: u32, b: u32) -> i64 {
    a.wrapping_sub(b) as i32 as i64
}

impl JitterBuffer {
    /// `depth_frames` of 20 ms are buffered before playout starts.
    pub fn new(depth_frames: u16) -> Self {
        JitterBuffer {
            depth_samples: depth_frames.clamp(1, 6) as u32 * SAMPLES_PER_FRAME as u32,
            slots: [None; SLOTS],
            playout: None,
            late: 0,
            duplicates: 0,
            lost_frames: 0,
        }
    }

    pub fn push(&mut self, timestamp: u32, payload: &[u8]) {
        let len = payload.len().min(MAX_PAYLOAD);
        if len == 0 {
            return;
        }
        if let Some(p) = self.playout {
            if diff(timestamp.wrapping_add(len as u32), p) <= 0 {
                self.late += 1;
                return;
            }
            if diff(timestamp, p) > 48_000 {
                // Six seconds ahead: the sender jumped (new stream); start over.
                self.reset();
            }
        }
        if self.slots.iter().flatten().any(|s| s.timestamp == timestamp) {
            self.duplicates += 1;
            return;
        }
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            // Full: playout fell behind (the receiving thread stalled and a burst arrived at once).
            // Catch up to the newest audio instead of dropping the oldest packet forever after, which
            // left playout behind everything kept and the call silent for good (issue 18 item 3).
            None => {
                self.catch_up(timestamp.wrapping_add(len as u32));
                self.slots.iter().position(Option::is_none).or_else(|| self.oldest()).unwrap_or(0)
            }
        };
        let mut data = [0u8; MAX_PAYLOAD];
        data[..len].copy_from_slice(&payload[..len]);
        self.slots[idx] = Some(Slot { timestamp, len: len as u16, data });
    }

    fn oldest(&self) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                if best.is_none_or(|(_, t)| diff(s.timestamp, t) < 0) {
                    best = Some((i, s.timestamp));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Moves playout to `depth` before `newest_end` (the end of the newest packet) and drops what lies
    /// before it: the buffer's normal delay again, at the cost of skipping the stalled audio.
    fn catch_up(&mut self, newest_end: u32) {
        let newest_end = self.slots.iter().flatten().map(|s| s.timestamp.wrapping_add(s.len as u32)).fold(newest_end, |a, b| if diff(b, a) > 0 { b } else { a });
        let target = newest_end.wrapping_sub(self.depth_samples);
        for slot in self.slots.iter_mut() {
            if slot.is_some_and(|s| diff(s.timestamp.wrapping_add(s.len as u32), target) <= 0) {
                *slot = None;
            }
        }
        if self.playout.is_none_or(|p| diff(target, p) > 0) {
            self.playout = Some(target);
        }
    }

    fn buffered_samples(&self) -> u32 {
        self.slots.iter().flatten().map(|s| s.len as u32).sum()
    }

    fn reset(&mut self) {
        self.slots = [None; SLOTS];
        self.playout = None;
    }

    /// Fills `out` with the next 20 ms; returns false (and fills `silence`) when nothing was there.
    pub fn pop(&mut self, out: &mut [u8; SAMPLES_PER_FRAME], silence: u8) -> bool {
        out.fill(silence);
        if self.playout.is_none() {
            if self.buffered_samples() < self.depth_samples {
                return false;
            }
            self.playout = self.oldest().and_then(|i| self.slots[i].map(|s| s.timestamp));
        }
        let Some(start) = self.playout else { return false };
        let mut copied = false;
        for slot in self.slots.iter_mut() {
            let Some(s) = slot else { continue };
            // Overlap of [s.ts, s.ts+len) with [start, start+160), in samples relative to start.
            let from = diff(s.timestamp, start).max(0);
            let to = (diff(s.timestamp, start) + s.len as i64).min(SAMPLES_PER_FRAME as i64);
            if from < to {
                let src_from = (from - diff(s.timestamp, start)) as usize;
                let n = (to - from) as usize;
                out[from as usize..from as usize + n].copy_from_slice(&s.data[src_from..src_from + n]);
                copied = true;
            }
            if diff(s.timestamp.wrapping_add(s.len as u32), start.wrapping_add(SAMPLES_PER_FRAME as u32)) <= 0 {
                *slot = None; // fully played
            }
        }
        self.playout = Some(start.wrapping_add(SAMPLES_PER_FRAME as u32));
        if !copied {
            self.lost_frames += 1;
            if self.buffered_samples() == 0 {
                // Ran dry: refill to depth before playing again.
                self.playout = None;
            }
        }
        copied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(jb: &mut JitterBuffer) -> Option<u8> {
        let mut out = [0u8; 160];
        jb.pop(&mut out, 0xff).then_some(out[0])
    }

    #[test]
    fn reorders_and_drops_duplicates_and_late() {
        let mut jb = JitterBuffer::new(2);
        jb.push(160, &[1; 160]);
        jb.push(0, &[0; 160]);
        jb.push(160, &[1; 160]);
        assert_eq!(jb.duplicates, 1);
        assert_eq!(frame(&mut jb), Some(0));
        assert_eq!(frame(&mut jb), Some(1));
        jb.push(0, &[9; 160]);
        assert_eq!(jb.late, 1);
        assert_eq!(frame(&mut jb), None);
    }

    #[test]
    fn thirty_ms_packets_play_as_twenty_ms_frames() {
        let mut jb = JitterBuffer::new(1);
        let mut played = Vec::new();
        for i in 0..4u32 {
            jb.push((u32::MAX - 100).wrapping_add(i * 240), &[(i + 1) as u8; 240]);
            if i >= 1 {
                let mut out = [0u8; 160];
                assert!(jb.pop(&mut out, 0xff));
                played.extend_from_slice(&out);
            }
        }
        // 3 frames = 480 samples = packets 1 and 2 exactly, across the timestamp wrap
        assert_eq!(&played[..240], &[1u8; 240][..]);
        assert_eq!(&played[240..480], &[2u8; 240][..]);
    }

    #[test]
    fn gap_is_silence() {
        let mut jb = JitterBuffer::new(1);
        jb.push(0, &[1; 160]);
        jb.push(320, &[3; 160]);
        assert_eq!(frame(&mut jb), Some(1));
        let mut out = [0u8; 160];
        assert!(!jb.pop(&mut out, 0xd5));
        assert_eq!(out[0], 0xd5);
        assert_eq!(frame(&mut jb), Some(3));
    }

    /// The receiving thread stalls for 300 ms (a busy machine): 15 packets wait in the socket and arrive in
    /// one tick, more than the buffer holds. Playout must move on to what was kept, not stay behind it and
    /// play silence for the rest of the call (issue 18 item 3: a bridge silent both ways).
    #[test]
    fn a_stall_longer_than_the_buffer_resumes_playout() {
        let mut jb = JitterBuffer::new(3);
        let mut ts = 0u32;
        let mut next = |jb: &mut JitterBuffer| {
            jb.push(ts, &[(ts / 160 % 200 + 1) as u8; 160]);
            ts = ts.wrapping_add(160);
        };
        for _ in 0..20 {
            next(&mut jb);
            frame(&mut jb);
        }
        for _ in 0..15 {
            next(&mut jb);
        }
        let mut heard = 0;
        for _ in 0..50 {
            next(&mut jb);
            heard += frame(&mut jb).is_some() as u32;
        }
        assert!(heard >= 45, "audio resumes after the stall: {heard} of 50 frames heard");
        // And what resumes is the newest audio, in order.
        let mut out = [0u8; 160];
        next(&mut jb);
        assert!(jb.pop(&mut out, 0xff));
        let newest = (ts / 160 - 1) % 200 + 1;
        assert!(newest.abs_diff(out[0] as u32) <= 8, "played {} while {newest} is the newest", out[0]);
    }
}
