//! Sample-rate conversion for prompt loading: a Kaiser-windowed sinc interpolator for any pair of rates.
//!
//! Each output sample is the input convolved with a low-pass sinc centred on the output instant. The cut-off sits at
//! 90 % of the lower of the two Nyquist frequencies (3.6 kHz when producing 8 kHz), so downsampling music or a
//! 44.1 kHz recording does not fold high frequencies back into the telephone band. The kernel is tabulated once per
//! call and linearly interpolated, so no trigonometry runs per tap.
//!
//! This is an offline tool (prompts are converted once at start-up); it allocates its output and is not meant for
//! the per-packet path. It does not do streaming or fixed-point.

use std::f64::consts::PI;

/// Sinc zero crossings on each side of the centre. 16 gives a transition band of ≈ 10 % of the cut-off with a
/// stopband around −80 dB, plenty for telephone speech.
const ZERO_CROSSINGS: usize = 16;
/// Kernel table entries per zero crossing.
const TABLE_RESOLUTION: usize = 256;
/// Kaiser window β: the trade between stopband depth and transition width (8.0 ≈ −80 dB).
const KAISER_BETA: f64 = 8.0;
/// Cut-off as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.9;

/// Converts `input` (one channel at `from_hz`) to `to_hz`. The output has `round(len × to / from)` samples.
pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == to_hz || input.is_empty() || from_hz == 0 || to_hz == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    // Cut-off in cycles per input sample.
    let cutoff = 0.5 * ratio.min(1.0) * ROLLOFF;
    // How far either side of the output instant the kernel reaches, in input samples.
    let half_width = ZERO_CROSSINGS as f64 / (2.0 * cutoff);
    let table = kernel_table();
    let out_len = (input.len() as f64 * ratio).round() as usize;
    let last_input = (input.len() - 1) as f64;

    (0..out_len)
        .map(|n| {
            let centre = n as f64 / ratio;
            let first = (centre - half_width).ceil().max(0.0) as usize;
            let last = (centre + half_width).floor().min(last_input) as usize;
            let mut acc = 0.0f64;
            for (i, &x) in input.iter().enumerate().take(last + 1).skip(first) {
                let distance = (centre - i as f64).abs() * 2.0 * cutoff; // in zero crossings
                acc += f64::from(x) * kernel(&table, distance);
            }
            (acc * 2.0 * cutoff) as f32
        })
        .collect()
}

/// The windowed sinc sampled at `TABLE_RESOLUTION` points per zero crossing, from 0 to `ZERO_CROSSINGS` (+1 guard
/// entry so interpolation at the end stays in bounds).
fn kernel_table() -> Vec<f64> {
    let i0_beta = bessel_i0(KAISER_BETA);
    (0..=ZERO_CROSSINGS * TABLE_RESOLUTION + 1)
        .map(|i| {
            let u = i as f64 / TABLE_RESOLUTION as f64;
            if u >= ZERO_CROSSINGS as f64 {
                return 0.0;
            }
            let sinc = if u == 0.0 { 1.0 } else { (PI * u).sin() / (PI * u) };
            let r = u / ZERO_CROSSINGS as f64;
            sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / i0_beta
        })
        .collect()
}

fn kernel(table: &[f64], distance: f64) -> f64 {
    let position = distance * TABLE_RESOLUTION as f64;
    let index = position as usize;
    match (table.get(index), table.get(index + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * (position - index as f64),
        _ => 0.0,
    }
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the β used here).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half_x = x / 2.0;
    for k in 1..50 {
        term *= (half_x / k as f64) * (half_x / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n).map(|i| (0.5 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as f32).collect()
    }

    /// RMS over the middle of the signal (the ends are affected by the kernel running off the input).
    fn middle_rms(x: &[f32]) -> f64 {
        let m = &x[x.len() / 4..x.len() * 3 / 4];
        (m.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / m.len() as f64).sqrt()
    }

    #[test]
    fn passband_tone_keeps_its_level() {
        for from in [44100, 48000, 16000, 22050, 11025, 6000] {
            let out = resample(&sine(1000.0, from, 0.5), from, 8000);
            assert_eq!(out.len(), 4000, "from {from}");
            let rms = middle_rms(&out);
            assert!((rms - 0.3536).abs() < 0.01, "from {from}: rms {rms}");
        }
    }

    #[test]
    fn frequencies_above_the_new_nyquist_are_removed() {
        // 5 kHz and 7 kHz would alias to 3 kHz and 1 kHz at 8 kHz without the low-pass.
        for hz in [5000.0, 7000.0, 12000.0] {
            let out = resample(&sine(hz, 44100, 0.5), 44100, 8000);
            let rms = middle_rms(&out);
            assert!(rms < 0.3536 * 0.001, "{hz} Hz leaked at rms {rms}");
        }
    }

    #[test]
    fn identity_and_empty() {
        let x = vec![0.1, -0.2, 0.3];
        assert_eq!(resample(&x, 8000, 8000), x);
        assert!(resample(&[], 44100, 8000).is_empty());
    }
}
