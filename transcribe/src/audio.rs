//! Turning a stored recording into what engines take: mono or per-channel samples, at 16 kHz for the engines
//! trained on wideband speech, as WAV bytes for the ones that read files.

use crate::engine::Audio;
use std::io::Cursor;

/// The channels of a 16-bit PCM WAV (a message has one; a conversation two: caller left, on-call person right).
pub fn decode_wav(bytes: &[u8]) -> Result<(Vec<Vec<i16>>, u32), String> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| format!("not a WAV file: {e}"))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!("unsupported WAV: {} bits {:?}", spec.bits_per_sample, spec.sample_format));
    }
    let n = usize::from(spec.channels.max(1));
    let mut channels = vec![Vec::new(); n];
    for (i, s) in reader.samples::<i16>().enumerate() {
        // A file cut short by a crash still has its first samples: keep what decodes.
        let Ok(s) = s else { break };
        channels[i % n].push(s);
    }
    Ok((channels, spec.sample_rate))
}

/// The channels mixed to one (a message recorded in stereo by an older build, or a single-sided view).
pub fn mix(channels: &[Vec<i16>]) -> Vec<i16> {
    let len = channels.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            let sum: i32 = channels.iter().map(|c| i32::from(c.get(i).copied().unwrap_or(0))).sum();
            (sum / channels.len().max(1) as i32).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        })
        .collect()
}

/// `audio` at `rate`, by linear interpolation: phone audio holds nothing above 4 kHz, so nothing is lost that a
/// better filter would keep, and engines trained at 16 kHz get the sample rate they expect.
pub fn resample(audio: &Audio, rate: u32) -> Audio {
    if audio.rate == rate || audio.samples.is_empty() || audio.rate == 0 {
        return Audio { samples: audio.samples.clone(), rate: if audio.rate == 0 { rate } else { audio.rate } };
    }
    let out_len = (audio.samples.len() as u64 * u64::from(rate) / u64::from(audio.rate)) as usize;
    let step = f64::from(audio.rate) / f64::from(rate);
    let last = audio.samples.len() - 1;
    let samples = (0..out_len)
        .map(|i| {
            let x = i as f64 * step;
            let j = (x as usize).min(last);
            let frac = x - j as f64;
            let a = f64::from(audio.samples[j]);
            let b = f64::from(audio.samples[(j + 1).min(last)]);
            (a + (b - a) * frac).round() as i16
        })
        .collect();
    Audio { samples, rate }
}

/// Mono 16-bit WAV bytes.
pub fn wav_bytes(audio: &Audio) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: audio.rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = Cursor::new(Vec::with_capacity(44 + audio.samples.len() * 2));
    {
        // Writing to memory cannot fail for 16-bit samples.
        let mut w = hound::WavWriter::new(&mut out, spec).expect("WAV header");
        for s in &audio.samples {
            let _ = w.write_sample(*s);
        }
        let _ = w.finalize();
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_round_trips_and_resamples_to_twice_the_length() {
        let a = Audio { samples: (0..800).map(|i| ((i as f64 / 8.0).sin() * 8000.0) as i16).collect(), rate: 8000 };
        let (ch, rate) = decode_wav(&wav_bytes(&a)).unwrap();
        assert_eq!((ch.len(), rate), (1, 8000));
        assert_eq!(ch[0], a.samples);
        let up = resample(&a, 16_000);
        assert_eq!((up.samples.len(), up.rate), (1600, 16_000));
        assert_eq!(up.samples[0], a.samples[0]);
        assert_eq!(up.samples[200], a.samples[100]);
        assert!((up.secs() - a.secs()).abs() < 1e-9);
    }

    #[test]
    fn stereo_splits_into_channels_and_mixes() {
        let spec = hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
            for i in 0..10i16 {
                w.write_sample(i * 100).unwrap();
                w.write_sample(-i * 100).unwrap();
            }
            w.finalize().unwrap();
        }
        let (ch, _) = decode_wav(&buf.into_inner()).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0][3], 300);
        assert_eq!(ch[1][3], -300);
        assert!(mix(&ch).iter().all(|s| *s == 0));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(decode_wav(b"not audio").unwrap_err().contains("not a WAV"));
    }
}
