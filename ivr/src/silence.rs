//! Silence detection on 8 kHz audio: "the caller has stopped talking" for the recording step and "nobody is there"
//! for input timeouts.
//!
//! [`SilenceDetector`] measures energy over fixed 10 ms windows (independent of the caller's frame size) and counts
//! how long the audio has continuously stayed below a threshold. It reports silence from the start of the stream too
//! (a caller who never speaks is silent); [`SilenceDetector::heard_sound`] tells the caller whether anything was
//! heard, so it can treat the two cases differently.
//!
//! Deliberately simple: a fixed threshold, no noise-floor tracking, no hangover or hysteresis beyond the window,
//! no voice-activity classification. Comfort noise from the far end should be kept below the threshold.

/// The only sample rate the detector works at.
pub const SAMPLE_RATE: u32 = 8000;

/// Samples per energy window: 10 ms, short enough to react promptly, long enough to smooth over a zero crossing.
const WINDOW_LEN: usize = SAMPLE_RATE as usize / 100;

/// Counts continuous silence in a stream of 8 kHz samples. One per call; feed every frame, in any chunk size.
/// No allocation.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    /// Sum of squares a 10 ms window must reach to count as sound.
    threshold_energy: f64,
    /// Silence needed before [`SilenceDetector::is_silent`] turns true, in windows.
    required_windows: u32,
    window_energy: f64,
    window_filled: usize,
    /// Consecutive silent windows since the last sound (or the start).
    silent_windows: u32,
    heard_sound: bool,
}

impl SilenceDetector {
    /// `threshold_dbfs`: RMS level below which audio counts as silence, relative to a full-scale square wave (so a
    /// full-scale sine is −3 dBFS). Around −45 dBFS suits phone lines: speech sits near −20, line noise below −55.
    /// `min_silence_ms`: how long silence must last to be reported, rounded up to 10 ms.
    pub fn new(threshold_dbfs: f32, min_silence_ms: u32) -> SilenceDetector {
        let rms = 10f64.powf(f64::from(threshold_dbfs) / 20.0) * 32768.0;
        SilenceDetector {
            threshold_energy: rms * rms * WINDOW_LEN as f64,
            required_windows: min_silence_ms.div_ceil(10),
            window_energy: 0.0,
            window_filled: 0,
            silent_windows: 0,
            heard_sound: false,
        }
    }

    /// Feeds audio; returns whether silence has now lasted at least the configured duration.
    pub fn feed(&mut self, samples: &[i16]) -> bool {
        for &sample in samples {
            let x = f64::from(sample);
            self.window_energy += x * x;
            self.window_filled += 1;
            if self.window_filled == WINDOW_LEN {
                if self.window_energy < self.threshold_energy {
                    self.silent_windows = self.silent_windows.saturating_add(1);
                } else {
                    self.silent_windows = 0;
                    self.heard_sound = true;
                }
                self.window_energy = 0.0;
                self.window_filled = 0;
            }
        }
        self.is_silent()
    }

    /// Whether silence has lasted at least the configured duration.
    pub fn is_silent(&self) -> bool {
        self.silent_windows >= self.required_windows
    }

    /// How long the current run of silence has lasted, in ms (in 10 ms steps).
    pub fn silence_ms(&self) -> u32 {
        self.silent_windows.saturating_mul(10)
    }

    /// Whether any window above the threshold has been seen since creation or the last reset.
    pub fn heard_sound(&self) -> bool {
        self.heard_sound
    }

    /// Starts over, keeping the configuration (e.g. when the next menu begins).
    pub fn reset(&mut self) {
        self.window_energy = 0.0;
        self.window_filled = 0;
        self.silent_windows = 0;
        self.heard_sound = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, amplitude: f64) -> Vec<i16> {
        (0..SAMPLE_RATE * ms / 1000).map(|n| (amplitude * 32767.0 * (f64::from(n) * 0.3).sin()) as i16).collect()
    }

    fn feed_frames(d: &mut SilenceDetector, audio: &[i16]) -> bool {
        audio.chunks(160).fold(false, |_, frame| d.feed(frame))
    }

    #[test]
    fn silence_after_speech_is_reported_after_the_configured_time() {
        let mut d = SilenceDetector::new(-45.0, 1000);
        assert!(!feed_frames(&mut d, &tone(500, 0.1)));
        assert!(d.heard_sound());
        assert!(!feed_frames(&mut d, &vec![0; 7920])); // 990 ms
        assert_eq!(d.silence_ms(), 990);
        assert!(d.feed(&[0; 80]));
        assert!(d.is_silent());
        // Sound again restarts the count.
        assert!(!feed_frames(&mut d, &tone(20, 0.1)));
        assert_eq!(d.silence_ms(), 0);
    }

    #[test]
    fn silence_from_the_start_is_reported_too() {
        let mut d = SilenceDetector::new(-45.0, 300);
        assert!(feed_frames(&mut d, &vec![0; 2400]));
        assert!(!d.heard_sound());
    }

    #[test]
    fn quiet_noise_below_the_threshold_is_silence() {
        // −60 dBFS is well under −45.
        let mut d = SilenceDetector::new(-45.0, 200);
        assert!(feed_frames(&mut d, &tone(300, 0.001)));
        assert!(!d.heard_sound());
        // −30 dBFS is sound.
        assert!(!feed_frames(&mut d, &tone(300, 0.03)));
        assert!(d.heard_sound());
    }

    #[test]
    fn chunk_size_does_not_matter() {
        let mut audio = tone(200, 0.2);
        audio.extend(vec![0; 4000]);
        let mut a = SilenceDetector::new(-40.0, 400);
        let mut b = SilenceDetector::new(-40.0, 400);
        let ra = audio.iter().fold(false, |_, s| a.feed(std::slice::from_ref(s)));
        let rb = b.feed(&audio);
        assert_eq!((ra, a.silence_ms()), (rb, b.silence_ms()));
        assert_eq!(a.silence_ms(), 500);
    }

    #[test]
    fn reset_clears_state() {
        let mut d = SilenceDetector::new(-45.0, 100);
        feed_frames(&mut d, &tone(100, 0.5));
        feed_frames(&mut d, &vec![0; 1600]);
        assert!(d.is_silent());
        d.reset();
        assert!(!d.is_silent());
        assert!(!d.heard_sound());
        assert_eq!(d.silence_ms(), 0);
    }
}
