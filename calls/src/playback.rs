//! What the caller's IVR session and the employee's paging session share: a queue of clips played
//! into 20 ms frames, and the three sources of key presses (RFC 4733 events, SIP INFO bodies, and
//! in-band tones when telephone-event was not negotiated).
//!
//! Both run on a media thread, so nothing here allocates per frame or blocks: clips are shared
//! `Arc<[i16]>` (prompts from the `PromptLibrary`, or a caller's decoded message).

use oncall_ivr::dtmf::{goertzel::ToneDetector, rfc4733::EventDecoder, sip_info};
use oncall_ivr::Digit;
use std::collections::VecDeque;
use std::sync::Arc;

/// A queue of 8 kHz mono clips and the position in the one playing.
#[derive(Default)]
pub struct Playback {
    queue: VecDeque<Arc<[i16]>>,
    playing: Option<(Arc<[i16]>, usize)>,
    /// Whether someone waits to hear that the queue ran dry (the flow asked for a playback).
    awaiting: bool,
}

impl Playback {
    /// Stops whatever plays and forgets the queue; nobody waits for its end any more.
    pub fn stop(&mut self) {
        self.queue.clear();
        self.playing = None;
        self.awaiting = false;
    }

    /// Appends clips after what is queued; the end of the queue will be reported by [`Playback::fill`].
    pub fn enqueue(&mut self, clips: impl IntoIterator<Item = Arc<[i16]>>) {
        self.queue.extend(clips);
        self.awaiting = true;
    }

    /// Replaces what plays with `clips`.
    pub fn play(&mut self, clips: impl IntoIterator<Item = Arc<[i16]>>) {
        self.stop();
        self.enqueue(clips);
    }

    /// Fills `out` with the next samples (silence once the queue is empty). Returns true exactly
    /// once when a requested playback has finished, so the flow can be told `PlaybackFinished`.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        let mut filled = 0;
        while filled < out.len() {
            if self.playing.is_none() {
                match self.queue.pop_front() {
                    Some(p) => self.playing = Some((p, 0)),
                    None => break,
                }
            }
            let Some((p, pos)) = &mut self.playing else { break };
            let n = (p.len() - *pos).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&p[*pos..*pos + n]);
            *pos += n;
            filled += n;
            if *pos >= p.len() {
                self.playing = None;
            }
        }
        out[filled..].fill(0);
        if self.awaiting && self.playing.is_none() && self.queue.is_empty() {
            self.awaiting = false;
            return true;
        }
        false
    }
}

/// Key presses from every source a phone may use.
pub struct KeyInput {
    events: EventDecoder,
    /// In-band detection only when telephone-event was not negotiated and no key came by SIP INFO (otherwise
    /// tones would count twice, and the detector's work would be for nothing).
    tones: Option<ToneDetector>,
}

impl KeyInput {
    pub fn new(in_band: bool) -> KeyInput {
        KeyInput { events: EventDecoder::new(), tones: in_band.then(ToneDetector::new) }
    }

    /// One frame of audio heard (in-band DTMF).
    pub fn on_audio(&mut self, pcm: &[i16]) -> Option<Digit> {
        self.tones.as_mut().and_then(|t| t.feed(pcm))
    }

    /// One RFC 4733 telephone-event packet.
    pub fn on_telephone_event(&mut self, payload: &[u8], timestamp: u32, marker: bool) -> Option<Digit> {
        self.events.feed(payload, timestamp, marker).ok().flatten()
    }

    /// A SIP INFO body (`application/dtmf-relay` and friends).
    pub fn on_info(&mut self, content_type: &str, body: &[u8]) -> Option<Digit> {
        match sip_info::parse(content_type, body) {
            Ok(d) => {
                // This phone signals keys out of band: its tones, if it also plays them, are not new keys.
                self.tones = None;
                Some(d)
            }
            Err(e) => {
                tracing::debug!(error = %e, "INFO without a usable digit");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_key_by_sip_info_tones_are_not_keys() {
        let tone = |d| oncall_ivr::dtmf::goertzel::generate_tone(Digit::from_char(d).unwrap(), 100, 0.3);
        let heard = |keys: &mut KeyInput, audio: &[i16]| audio.chunks(160).find_map(|f| keys.on_audio(f));
        let mut keys = KeyInput::new(true);
        assert_eq!(heard(&mut keys, &tone('4')), Digit::from_char('4'), "in band before any INFO");
        assert_eq!(keys.on_info("application/dtmf-relay", b"Signal=1\r\nDuration=160\r\n"), Digit::from_char('1'));
        assert_eq!(heard(&mut keys, &[vec![0; 800], tone('5')].concat()), None, "the phone's own tone of an INFO key");
    }

    #[test]
    fn clips_play_in_order_and_the_end_is_reported_once() {
        let mut p = Playback::default();
        p.enqueue([Arc::from(vec![1i16; 100]), Arc::from(vec![2i16; 100])]);
        let mut out = [0i16; 160];
        assert!(!p.fill(&mut out));
        assert_eq!((out[0], out[99], out[100], out[159]), (1, 1, 2, 2));
        assert!(p.fill(&mut out), "the queue ran dry during this frame");
        assert_eq!((out[0], out[39], out[40]), (2, 2, 0));
        assert!(!p.fill(&mut out), "reported once");
        p.play([Arc::from(vec![3i16; 10])]);
        p.stop();
        assert!(!p.fill(&mut out), "a stopped playback is not reported");
    }
}
