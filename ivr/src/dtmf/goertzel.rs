//! In-band DTMF detection: finding key presses in the caller's audio when the far end sends neither RFC 4733 events
//! nor SIP INFO (old gateways, some mobile networks, calls transcoded on the way).
//!
//! [`ToneDetector`] runs the Goertzel algorithm on the eight DTMF frequencies (ITU-T Q.23) over blocks of
//! [`BLOCK_LEN`] samples of 8 kHz audio and applies the usual validity checks (after ITU-T Q.24 and the Bellcore
//! GR-506 talk-off practice): exactly one row and one column tone clearly stronger than the others in their group,
//! both above a minimum level, twist within limits, the two tones carrying most of the block's energy, and the same
//! key in two consecutive blocks (≈ 26 ms; Q.24 requires tones of 40 ms to be accepted). A key is reported once per
//! press: the tone has to stop (two blocks without it) before the same key can be reported again.
//!
//! It deliberately does not measure tone duration or inter-digit pause beyond that, does not cancel echo, and only
//! handles 8 kHz (decode G.711 first; wideband codecs should be resampled by the caller).

use crate::digit::Digit;

/// The only sample rate the detector works at.
pub const SAMPLE_RATE: u32 = 8000;

/// Samples per Goertzel block. 105 samples (13.1 ms) gives a bin width of ~76 Hz: narrow enough to separate
/// neighbouring DTMF frequencies (≥ 73 Hz apart), short enough that two blocks fit in the shortest valid tone.
pub const BLOCK_LEN: usize = 105;

/// Low ("row") group frequencies, Hz.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High ("column") group frequencies, Hz.
pub const COL_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

const KEYPAD: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Pound, Digit::D],
];

/// Converts a level in dB to a power ratio.
fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Detection thresholds. The defaults follow common practice (spandsp, Asterisk, Bellcore); they are public so a
/// deployment plagued by talk-off or by quiet phones can be tuned without a code change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneDetectorConfig {
    /// Minimum level of each of the two tones, dBFS (a full-scale sine is 0 dBFS). Q.24 asks for acceptance down to
    /// about −25 dBm0 per tone, i.e. −28 dBFS in G.711; −36 leaves margin for line loss.
    pub min_tone_dbfs: f32,
    /// How much louder the high tone may be than the low one ("normal twist": phones send the high group louder to
    /// make up for cable loss), dB.
    pub max_normal_twist_db: f32,
    /// How much louder the low tone may be than the high one ("reverse twist"), dB.
    pub max_reverse_twist_db: f32,
    /// How far the strongest tone in a group must stand above the other three of the group, dB.
    pub min_relative_peak_db: f32,
    /// The fraction of the block's energy the two tones must carry. Speech spreads its energy over many harmonics, so
    /// this is the main guard against talk-off.
    pub min_tone_energy_fraction: f32,
}

impl Default for ToneDetectorConfig {
    fn default() -> Self {
        ToneDetectorConfig {
            min_tone_dbfs: -36.0,
            max_normal_twist_db: 4.0,
            max_reverse_twist_db: 8.0,
            min_relative_peak_db: 8.0,
            min_tone_energy_fraction: 0.7,
        }
    }
}

/// Block-level thresholds as power ratios, precomputed so the per-block check does no `powf`.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    min_tone_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    energy_fraction: f32,
}

impl From<ToneDetectorConfig> for Thresholds {
    fn from(c: ToneDetectorConfig) -> Self {
        // A sine of peak amplitude A (as a fraction of full scale) has mean power A²/2.
        let amplitude = 10f32.powf(c.min_tone_dbfs / 20.0);
        Thresholds {
            min_tone_power: amplitude * amplitude / 2.0,
            normal_twist: db_to_power(c.max_normal_twist_db),
            reverse_twist: db_to_power(c.max_reverse_twist_db),
            relative_peak: db_to_power(c.min_relative_peak_db),
            energy_fraction: c.min_tone_energy_fraction,
        }
    }
}

/// Finds DTMF key presses in 8 kHz audio. One per call; feed it every received frame, in any chunk size.
///
/// Cost: 8 multiply-adds per sample plus a few dozen operations per 105-sample block; no allocation after `new`.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    thresholds: Thresholds,
    /// Goertzel coefficients 2·cos(2πf/fs), rows then columns.
    coeffs: [f32; 8],
    /// Goertzel state of the current block: s[n-1] and s[n-2] per frequency.
    s1: [f32; 8],
    s2: [f32; 8],
    /// Sum of squared samples of the current block.
    block_energy: f32,
    /// Samples accumulated in the current block.
    filled: usize,
    /// What the previous block looked like.
    last_hit: Option<Digit>,
    /// The key currently held down (already reported), if any.
    pressed: Option<Digit>,
}

impl Default for ToneDetector {
    fn default() -> Self {
        ToneDetector::new()
    }
}

impl ToneDetector {
    /// A detector with the default thresholds.
    pub fn new() -> ToneDetector {
        ToneDetector::with_config(ToneDetectorConfig::default())
    }

    pub fn with_config(config: ToneDetectorConfig) -> ToneDetector {
        let mut coeffs = [0f32; 8];
        for (coeff, hz) in coeffs.iter_mut().zip(ROW_HZ.iter().chain(COL_HZ.iter())) {
            // The exact frequency rather than the nearest integer bin: the block length is not a multiple of any
            // DTMF period, and rounding to bins would put some tones ~20 Hz off centre.
            *coeff = 2.0 * (2.0 * std::f32::consts::PI * hz / SAMPLE_RATE as f32).cos();
        }
        ToneDetector {
            thresholds: config.into(),
            coeffs,
            s1: [0.0; 8],
            s2: [0.0; 8],
            block_energy: 0.0,
            filled: 0,
            last_hit: None,
            pressed: None,
        }
    }

    /// Feeds audio and returns the key whose press was recognised in it, if any.
    ///
    /// At most one key can be recognised per two blocks (210 samples), so with 10-20 ms frames nothing is lost. For
    /// longer buffers use [`ToneDetector::feed_with`], which reports every key.
    pub fn feed(&mut self, samples: &[i16]) -> Option<Digit> {
        let mut found = None;
        self.feed_with(samples, |digit| {
            found.get_or_insert(digit);
        });
        found
    }

    /// Feeds audio, calling `on_digit` for every key press recognised in it, in order.
    pub fn feed_with(&mut self, samples: &[i16], mut on_digit: impl FnMut(Digit)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = rest.len().min(BLOCK_LEN - self.filled);
            let (chunk, tail) = rest.split_at(take);
            self.accumulate(chunk);
            rest = tail;
            if self.filled == BLOCK_LEN {
                let hit = self.finish_block();
                if let Some(digit) = self.debounce(hit) {
                    on_digit(digit);
                }
            }
        }
    }

    /// The key currently held down, once it has been reported; `None` between presses.
    pub fn pressed(&self) -> Option<Digit> {
        self.pressed
    }

    /// Forgets any partial block and any key in progress (e.g. when the call is put on hold).
    pub fn reset(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.block_energy = 0.0;
        self.filled = 0;
        self.last_hit = None;
        self.pressed = None;
    }

    /// Runs the Goertzel recurrences over part of a block. This is the hot loop.
    fn accumulate(&mut self, chunk: &[i16]) {
        // Digital silence into a block that has had only silence leaves every recurrence at zero: skip the
        // arithmetic. Most frames of a call are such silence (the ticks when the caller sent nothing).
        if self.block_energy == 0.0 && chunk.iter().all(|&s| s == 0) {
            self.filled += chunk.len();
            return;
        }
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut energy = self.block_energy;
        for &sample in chunk {
            // Scale to ±1 so powers compare directly with dBFS thresholds.
            let x = f32::from(sample) / 32768.0;
            energy += x * x;
            for i in 0..8 {
                let s0 = x + self.coeffs[i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.block_energy = energy;
        self.filled += chunk.len();
    }

    /// Ends a block: classifies it and clears the Goertzel state for the next one.
    fn finish_block(&mut self) -> Option<Digit> {
        let n = BLOCK_LEN as f32;
        let mut power = [0f32; 8];
        for (i, p) in power.iter_mut().enumerate() {
            let (s1, s2) = (self.s1[i], self.s2[i]);
            // |X(f)|² from the final state, scaled by 2/N² so a sine of amplitude A reads A²/2, its mean power.
            *p = (s1 * s1 + s2 * s2 - self.coeffs[i] * s1 * s2) * 2.0 / (n * n);
        }
        let mean_power = self.block_energy / n;

        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.block_energy = 0.0;
        self.filled = 0;

        self.classify(&power, mean_power)
    }

    fn classify(&self, power: &[f32; 8], mean_power: f32) -> Option<Digit> {
        let t = &self.thresholds;
        let (rows, cols) = power.split_at(4);
        let row = strongest(rows)?;
        let col = strongest(cols)?;
        let (row_power, col_power) = (rows[row], cols[col]);

        if row_power < t.min_tone_power || col_power < t.min_tone_power {
            return None;
        }
        if col_power > row_power * t.normal_twist || row_power > col_power * t.reverse_twist {
            return None;
        }
        let stands_out = |group: &[f32], best: usize| {
            group.iter().enumerate().all(|(i, &p)| i == best || p * t.relative_peak <= group[best])
        };
        if !stands_out(rows, row) || !stands_out(cols, col) {
            return None;
        }
        if row_power + col_power < t.energy_fraction * mean_power {
            return None;
        }
        Some(KEYPAD[row][col])
    }

    /// Turns per-block hits into presses: a key is reported when two consecutive blocks agree on it and it is not
    /// already the pressed key; two consecutive blocks without a tone release the key.
    fn debounce(&mut self, hit: Option<Digit>) -> Option<Digit> {
        let agreed = hit == self.last_hit;
        self.last_hit = hit;
        if agreed && hit != self.pressed {
            self.pressed = hit;
            return hit;
        }
        None
    }
}

/// Index of the largest value, `None` for an empty slice or NaNs (never in practice: inputs are finite).
fn strongest(powers: &[f32]) -> Option<usize> {
    powers.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
}

/// The (low, high) frequency pair of a key, Hz.
pub fn frequencies(digit: Digit) -> (f32, f32) {
    for (r, row) in KEYPAD.iter().enumerate() {
        if let Some(c) = row.iter().position(|&d| d == digit) {
            return (ROW_HZ[r], COL_HZ[c]);
        }
    }
    // KEYPAD holds all sixteen digits.
    unreachable!("every digit is on the keypad")
}

/// 8 kHz audio of a key press: both tones at `amplitude` (peak, as a fraction of full scale, so 0.1 is −20 dBFS per
/// tone; keep it ≤ 0.5 so the sum cannot clip), with 2 ms ramps so the edges do not splash energy into other bins.
pub fn generate_tone(digit: Digit, duration_ms: u32, amplitude: f32) -> Vec<i16> {
    let (low, high) = frequencies(digit);
    generate_dual_tone(low, high, amplitude, amplitude, duration_ms)
}

/// 8 kHz audio of two simultaneous sines with separate amplitudes (for twist and off-frequency tests and tools).
pub fn generate_dual_tone(low_hz: f32, high_hz: f32, low_amp: f32, high_amp: f32, duration_ms: u32) -> Vec<i16> {
    let len = (SAMPLE_RATE * duration_ms / 1000) as usize;
    let ramp = (SAMPLE_RATE as usize * 2 / 1000).min(len / 2).max(1);
    let w = |hz: f32| 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(SAMPLE_RATE);
    (0..len)
        .map(|n| {
            let t = n as f64;
            let edge = (n.min(len - 1 - n) as f64 / ramp as f64).min(1.0);
            let v = f64::from(low_amp) * (w(low_hz) * t).sin() + f64::from(high_amp) * (w(high_hz) * t).sin();
            (v * edge * 32767.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn detect_all(samples: &[i16], chunk: usize) -> Vec<Digit> {
        let mut detector = ToneDetector::new();
        let mut found = Vec::new();
        for frame in samples.chunks(chunk) {
            detector.feed_with(frame, |d| found.push(d));
        }
        found
    }

    fn silence(ms: u32) -> Vec<i16> {
        vec![0; (SAMPLE_RATE * ms / 1000) as usize]
    }

    /// Gaussian noise of standard deviation `sigma` (fraction of full scale), added in place.
    fn add_noise(samples: &mut [i16], sigma: f64, rng: &mut StdRng) {
        for s in samples {
            // Box-Muller.
            let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
            let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            *s = (f64::from(*s) + g * sigma * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    #[test]
    fn detects_every_key_at_minus_20_dbfs() {
        for digit in Digit::ALL {
            let mut audio = silence(30);
            audio.extend(generate_tone(digit, 80, 0.1));
            audio.extend(silence(30));
            assert_eq!(detect_all(&audio, 160), vec![digit], "{digit}");
        }
    }

    #[test]
    fn detects_every_key_in_noise_at_20_db_snr() {
        let mut rng = StdRng::seed_from_u64(4733);
        for amplitude in [0.1f32, 0.3, 0.03] {
            for digit in Digit::ALL {
                let mut audio = silence(60);
                audio.extend(generate_tone(digit, 70, amplitude));
                audio.extend(silence(60));
                // Signal power is 2·A²/2 = A²; 20 dB below that is a noise power of A²/100.
                add_noise(&mut audio, f64::from(amplitude) / 10.0, &mut rng);
                for chunk in [160, 80, 1, 1000] {
                    assert_eq!(detect_all(&audio, chunk), vec![digit], "{digit} at {amplitude}, chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn a_sequence_with_short_gaps_is_reported_in_order() {
        let mut audio = Vec::new();
        for digit in [Digit::D1, Digit::D2, Digit::D3, Digit::Pound, Digit::Pound, Digit::D0] {
            audio.extend(generate_tone(digit, 60, 0.15));
            audio.extend(silence(50));
        }
        let mut rng = StdRng::seed_from_u64(1);
        add_noise(&mut audio, 0.005, &mut rng);
        let expected = vec![Digit::D1, Digit::D2, Digit::D3, Digit::Pound, Digit::Pound, Digit::D0];
        assert_eq!(detect_all(&audio, 160), expected);
        // `feed` with 20 ms frames sees the same.
        let mut detector = ToneDetector::new();
        let found: Vec<Digit> = audio.chunks(160).filter_map(|f| detector.feed(f)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_long_press_is_one_digit() {
        let mut audio = generate_tone(Digit::D5, 2000, 0.2);
        audio.extend(silence(100));
        assert_eq!(detect_all(&audio, 160), vec![Digit::D5]);
    }

    #[test]
    fn a_change_of_key_without_a_gap_is_a_new_press() {
        let mut audio = generate_tone(Digit::D4, 100, 0.2);
        audio.extend(generate_tone(Digit::D8, 100, 0.2));
        assert_eq!(detect_all(&audio, 160), vec![Digit::D4, Digit::D8]);
    }

    #[test]
    fn tones_shorter_than_two_blocks_are_ignored() {
        let mut audio = silence(20);
        audio.extend(generate_tone(Digit::D7, 20, 0.2));
        audio.extend(silence(50));
        assert_eq!(detect_all(&audio, 160), vec![]);
    }

    #[test]
    fn twist_within_limits_is_accepted_and_beyond_rejected() {
        let db = |d: f32| 10f32.powf(d / 20.0);
        let (low, high) = frequencies(Digit::D9);
        let case = |low_amp: f32, high_amp: f32| {
            let mut audio = generate_dual_tone(low, high, low_amp, high_amp, 100);
            audio.extend(silence(40));
            detect_all(&audio, 160)
        };
        let base = 0.1;
        // Normal twist: high group louder.
        assert_eq!(case(base, base * db(3.0)), vec![Digit::D9]);
        assert_eq!(case(base, base * db(6.0)), vec![]);
        // Reverse twist: low group louder.
        assert_eq!(case(base * db(7.0), base), vec![Digit::D9]);
        assert_eq!(case(base * db(10.0), base), vec![]);
    }

    #[test]
    fn quiet_tones_and_single_tones_are_ignored() {
        // −45 dBFS per tone is below the −36 dBFS minimum.
        assert_eq!(detect_all(&generate_tone(Digit::D1, 200, 0.0056), 160), vec![]);
        let (low, high) = frequencies(Digit::D1);
        assert_eq!(detect_all(&generate_dual_tone(low, high, 0.3, 0.0, 200), 160), vec![]);
        assert_eq!(detect_all(&generate_dual_tone(1000.0, 1000.0, 0.3, 0.0, 400), 160), vec![]);
    }

    #[test]
    fn frequency_deviation_of_1_5_percent_is_accepted() {
        for digit in Digit::ALL {
            let (low, high) = frequencies(digit);
            for (fl, fh) in [(1.015, 1.015), (0.985, 0.985), (1.015, 0.985)] {
                let audio = generate_dual_tone(low * fl, high * fh, 0.1, 0.1, 80);
                assert_eq!(detect_all(&audio, 160), vec![digit], "{digit} ×{fl}/{fh}");
            }
        }
    }

    #[test]
    fn reset_allows_the_same_key_again() {
        let tone = generate_tone(Digit::A, 100, 0.2);
        let mut detector = ToneDetector::new();
        let mut found = Vec::new();
        detector.feed_with(&tone, |d| found.push(d));
        assert_eq!(detector.pressed(), Some(Digit::A));
        detector.reset();
        detector.feed_with(&tone, |d| found.push(d));
        assert_eq!(found, vec![Digit::A, Digit::A]);
    }

    /// A crude voiced-speech model: a glottal harmonic series (−6 dB/octave) shaped by three formant resonances,
    /// with the pitch gliding from `f0_start` to `f0_end`.
    fn vowel(formants: [(f32, f32); 3], f0_start: f32, f0_end: f32, ms: u32, amplitude: f32) -> Vec<i16> {
        let len = (SAMPLE_RATE * ms / 1000) as usize;
        let fs = SAMPLE_RATE as f32;
        let gain = |f: f32| {
            formants.iter().fold(1.0, |g, &(fc, bw)| {
                let num = fc * fc;
                let den = ((fc * fc - f * f).powi(2) + (bw * f).powi(2)).sqrt();
                g * num / den
            })
        };
        let mut phase = 0f32;
        let mut raw: Vec<f32> = (0..len)
            .map(|n| {
                let f0 = f0_start + (f0_end - f0_start) * n as f32 / len as f32;
                phase = (phase + 2.0 * std::f32::consts::PI * f0 / fs) % (2.0 * std::f32::consts::PI * 1000.0);
                let mut v = 0.0;
                let mut k = 1;
                while k as f32 * f0 < 3800.0 {
                    v += gain(k as f32 * f0) / k as f32 * (k as f32 * phase).sin();
                    k += 1;
                }
                v
            })
            .collect();
        let peak = raw.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-9);
        raw.iter_mut().for_each(|v| *v *= amplitude / peak);
        raw.iter().map(|v| (v * 32767.0) as i16).collect()
    }

    const VOWELS: [(&str, [(f32, f32); 3]); 6] = [
        ("a", [(730.0, 90.0), (1090.0, 110.0), (2440.0, 170.0)]),
        ("i", [(270.0, 60.0), (2290.0, 100.0), (3010.0, 120.0)]),
        ("u", [(300.0, 60.0), (870.0, 90.0), (2240.0, 100.0)]),
        ("e", [(530.0, 70.0), (1840.0, 100.0), (2480.0, 140.0)]),
        ("o", [(570.0, 70.0), (840.0, 90.0), (2410.0, 140.0)]),
        // A vowel with both formants right on DTMF frequencies: the worst case for talk-off.
        ("worst", [(697.0, 60.0), (1209.0, 70.0), (2500.0, 150.0)]),
    ];

    #[test]
    fn synthetic_vowels_with_pitch_glides_do_not_trigger() {
        for (name, formants) in VOWELS {
            for (f0_start, f0_end) in [(80.0, 160.0), (120.0, 250.0), (200.0, 320.0), (300.0, 140.0), (110.0, 95.0)] {
                let audio = vowel(formants, f0_start, f0_end, 1500, 0.5);
                assert_eq!(detect_all(&audio, 160), vec![], "vowel {name} {f0_start}->{f0_end} Hz");
            }
        }
    }

    #[test]
    fn synthetic_vowels_at_steady_pitch_do_not_trigger() {
        for (name, formants) in VOWELS {
            for f0 in (80..=320).step_by(6) {
                let audio = vowel(formants, f0 as f32, f0 as f32, 300, 0.5);
                assert_eq!(detect_all(&audio, 160), vec![], "vowel {name} at {f0} Hz");
            }
        }
    }

    fn read_wav(path: &std::path::Path) -> Vec<i16> {
        let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(reader.spec().sample_rate, SAMPLE_RATE, "{}", path.display());
        assert_eq!(reader.spec().channels, 1, "{}", path.display());
        reader.samples::<i16>().map(|s| s.expect("valid sample")).collect()
    }

    #[test]
    fn shipped_prompts_do_not_trigger() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("sounds/ exists") {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("wav") {
                continue;
            }
            let audio = read_wav(&path);
            for chunk in [160, 105, 333] {
                assert_eq!(detect_all(&audio, chunk), vec![], "{} (chunk {chunk})", path.display());
            }
            // Louder and quieter than shipped, as a phone line might deliver them back as echo.
            let loud: Vec<i16> = audio.iter().map(|&s| s.saturating_mul(2)).collect();
            let quiet: Vec<i16> = audio.iter().map(|&s| s / 8).collect();
            assert_eq!(detect_all(&loud, 160), vec![], "{} (×2)", path.display());
            assert_eq!(detect_all(&quiet, 160), vec![], "{} (÷8)", path.display());
            checked += 1;
        }
        assert!(checked >= 20, "expected the shipped prompts in {}, found {checked}", dir.display());
    }

    #[test]
    fn a_key_pressed_over_a_prompt_is_still_found() {
        // Barge-in: the caller presses a key while the prompt echoes back at −12 dB.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds");
        let prompt = read_wav(&dir.join("menu.wav"));
        let tone = generate_tone(Digit::D2, 100, 0.25);
        let mut audio: Vec<i16> = prompt.iter().map(|&s| s / 4).collect();
        let at = audio.len() / 2;
        for (i, &t) in tone.iter().enumerate() {
            audio[at + i] = audio[at + i].saturating_add(t);
        }
        assert_eq!(detect_all(&audio, 160), vec![Digit::D2]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn random_noise_never_panics_or_triggers(
                samples in proptest::collection::vec(any::<i16>(), 0..4000),
                chunk in 1usize..400,
            ) {
                prop_assert_eq!(detect_all(&samples, chunk), vec![]);
            }

            #[test]
            fn chunking_does_not_change_the_result(
                digits in proptest::collection::vec(0u8..16, 1..5),
                chunk in 1usize..400,
            ) {
                let mut audio = Vec::new();
                let expected: Vec<Digit> = digits.iter().filter_map(|&c| Digit::from_event_code(c)).collect();
                for &digit in &expected {
                    audio.extend(generate_tone(digit, 60, 0.2));
                    audio.extend(silence(50));
                }
                prop_assert_eq!(detect_all(&audio, chunk), expected);
            }
        }
    }
}
