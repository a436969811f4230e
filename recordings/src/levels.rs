//! Signal levels of 16-bit PCM: peak and RMS, as fractions of full scale and in dBFS.
//!
//! [`LevelMeter`] accumulates over a whole recording, one frame at a time, so the recorder can report how loud a
//! message was (an all-silent voicemail is worth flagging) without keeping the audio. Levels are relative to a
//! full-scale *square* wave: 1.0 is the largest sample magnitude, and a full-scale sine has an RMS of 0.707 (−3 dBFS).

/// Running peak and RMS over any number of samples. No allocation; `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelMeter {
    /// Largest magnitude seen (32768 for `i16::MIN`).
    peak: u32,
    /// Sum of squared samples. u128 because a u64 would overflow after ~24 days of 8 kHz audio at full scale.
    sum_squares: u128,
    samples: u64,
}

impl LevelMeter {
    pub fn new() -> LevelMeter {
        LevelMeter::default()
    }

    /// Adds samples (interleaved channels are fine: the levels are over all channels together).
    pub fn update(&mut self, samples: &[i16]) {
        // A frame's sum fits a u64 easily (2^30 per sample), so the wide addition happens once per call.
        let mut sum: u64 = 0;
        let mut peak = self.peak;
        for &s in samples {
            let magnitude = u32::from(s.unsigned_abs());
            peak = peak.max(magnitude);
            sum += u64::from(magnitude * magnitude);
        }
        self.peak = peak;
        self.sum_squares += u128::from(sum);
        self.samples += samples.len() as u64;
    }

    /// Largest sample magnitude as a fraction of full scale, 0.0..=1.0.
    pub fn peak(&self) -> f32 {
        self.peak as f32 / 32768.0
    }

    /// Root mean square as a fraction of full scale, 0.0..=1.0; 0.0 when nothing was measured.
    pub fn rms(&self) -> f32 {
        if self.samples == 0 {
            return 0.0;
        }
        ((self.sum_squares as f64 / self.samples as f64).sqrt() / 32768.0) as f32
    }

    /// How many samples were measured.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// Peak magnitude of `samples` as a fraction of full scale.
pub fn peak(samples: &[i16]) -> f32 {
    let mut meter = LevelMeter::new();
    meter.update(samples);
    meter.peak()
}

/// RMS of `samples` as a fraction of full scale.
pub fn rms(samples: &[i16]) -> f32 {
    let mut meter = LevelMeter::new();
    meter.update(samples);
    meter.rms()
}

/// A level (fraction of full scale) in dBFS; `-inf` for 0.
pub fn to_dbfs(level: f32) -> f32 {
    20.0 * level.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_square_and_sine() {
        let square: Vec<i16> = (0..800).map(|n| if n % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        assert!((peak(&square) - 1.0).abs() < 1e-4);
        assert!((rms(&square) - 1.0).abs() < 1e-4);
        let sine: Vec<i16> = (0..8000).map(|n| (32767.0 * (n as f64 * 0.05).sin()) as i16).collect();
        assert!((to_dbfs(rms(&sine)) + 3.01).abs() < 0.05);
    }

    #[test]
    fn empty_and_silent_are_zero() {
        assert_eq!(LevelMeter::new().rms(), 0.0);
        assert_eq!(peak(&[0; 10]), 0.0);
        assert_eq!(to_dbfs(0.0), f32::NEG_INFINITY);
    }

    #[test]
    fn incremental_equals_whole() {
        let audio: Vec<i16> = (0..1000).map(|n| ((n * 37) % 2001 - 1000) as i16).collect();
        let mut meter = LevelMeter::new();
        for chunk in audio.chunks(160) {
            meter.update(chunk);
        }
        assert_eq!(meter.peak(), peak(&audio));
        assert_eq!(meter.rms(), rms(&audio));
        assert_eq!(meter.samples(), 1000);
    }
}
