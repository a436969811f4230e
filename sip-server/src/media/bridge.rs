//! The audio path between two calls (caller and paged employee): each leg hands the 20 ms frames it
//! heard to the other through a small shared mailbox, decoded to PCM so each leg encodes with its own
//! codec (PCMU↔PCMA transcoding falls out of that). The legs may live on different media threads.
//!
//! The mailbox holds at most [`MAX_QUEUED`] frames per direction; beyond that the oldest is dropped, so
//! a leg that ticks slightly faster than the other never builds up delay. Digits are not relayed here.

use super::super::rtp::SAMPLES_PER_FRAME;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// 60 ms of audio per direction at most.
pub const MAX_QUEUED: usize = 3;

type Frame = [i16; SAMPLES_PER_FRAME];

#[derive(Default)]
struct Mailbox {
    /// Frames for side A to play (heard by B), and for side B.
    to_a: VecDeque<Frame>,
    to_b: VecDeque<Frame>,
    closed: bool,
    dropped: u64,
}

/// One leg's end of a bridge.
pub struct BridgeLink {
    shared: Arc<Mutex<Mailbox>>,
    is_a: bool,
}

impl BridgeLink {
    /// Two connected ends.
    pub fn pair() -> (BridgeLink, BridgeLink) {
        let shared = Arc::new(Mutex::new(Mailbox::default()));
        (BridgeLink { shared: shared.clone(), is_a: true }, BridgeLink { shared, is_a: false })
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

    #[test]
    fn stereo_interleaving() {
        let mut out = [0i16; 8];
        interleave(&[1, 2, 3, 4], &[5, 6, 7, 8], &mut out);
        assert_eq!(out, [1, 5, 2, 6, 3, 7, 4, 8]);
    }
}
