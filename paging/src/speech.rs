//! Text to speech for the page call of an alert (issue 20): the summary is what the employee hears where a
//! caller's message would be. The engine sits behind [`Speaker`]; the built-in one runs espeak-ng (Debian's
//! `espeak-ng`) as a subprocess and turns its 22 050 Hz WAV into the 8 kHz the media engine plays. Phrases are
//! kept once spoken (alerts repeat). Without espeak-ng the page carries no speech and says so in the log; the
//! keys work as for any page.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Turns a sentence into 8 kHz mono samples in `voice` (a language, `en`, `de`, …); `None` when it cannot.
pub trait Speaker: Send + Sync + 'static {
    fn speak<'a>(&'a self, text: &'a str, voice: &'a str) -> Pin<Box<dyn Future<Output = Option<Arc<[i16]>>> + Send + 'a>>;
}

/// Phrases kept at most (a phrase is a few seconds: ~50 KiB at 8 kHz).
const KEEP: usize = 200;

/// espeak-ng as a subprocess.
pub struct EspeakNg {
    program: String,
    /// Phrases by (voice, text).
    spoken: Mutex<HashMap<(String, String), Arc<[i16]>>>,
}

impl Default for EspeakNg {
    fn default() -> EspeakNg {
        EspeakNg { program: "espeak-ng".into(), spoken: Mutex::default() }
    }
}

impl EspeakNg {
    async fn render(&self, text: &str, voice: &str) -> Result<Vec<i16>, String> {
        let (program, voice, text) = (self.program.clone(), voice.to_string(), text.to_string());
        // A blocking child on the blocking pool (the tokio `process` feature is not worth it for this).
        let run = tokio::task::spawn_blocking(move || std::process::Command::new(&program).args(["-v", &voice, "-s", "150", "--stdout"]).arg(&text).output());
        let out = run
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot run {}: {e} (install espeak-ng to hear alert summaries)", self.program))?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", self.program, String::from_utf8_lossy(&out.stderr).trim()));
        }
        let (rate, samples) = streamed_wav(&out.stdout).ok_or_else(|| format!("{} wrote no 16-bit mono WAV", self.program))?;
        Ok(to_8khz(&samples, rate))
    }
}

impl Speaker for EspeakNg {
    fn speak<'a>(&'a self, text: &'a str, voice: &'a str) -> Pin<Box<dyn Future<Output = Option<Arc<[i16]>>> + Send + 'a>> {
        Box::pin(async move {
            let key = (voice.to_string(), text.to_string());
            if let Some(kept) = self.spoken.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
                return Some(kept.clone());
            }
            match self.render(text, voice).await {
                Ok(samples) => {
                    let samples: Arc<[i16]> = samples.into();
                    let mut spoken = self.spoken.lock().unwrap_or_else(|p| p.into_inner());
                    if spoken.len() >= KEEP {
                        spoken.clear();
                    }
                    spoken.insert(key, samples.clone());
                    Some(samples)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alert summary not spoken");
                    None
                }
            }
        })
    }
}

/// The rate and samples of a 16-bit mono WAV written to a pipe: espeak-ng cannot seek back to fill in the
/// sizes, so the `data` chunk is taken to run to the end whatever its header says.
pub fn streamed_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.len() < 44 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let (mut at, mut rate) = (12, None);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            let channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            let bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
            if channels != 1 || bits != 16 {
                return None;
            }
            rate = Some(u32::from_le_bytes(bytes[body + 4..body + 8].try_into().ok()?));
        } else if id == b"data" {
            let samples = bytes[body..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return Some((rate?, samples));
        }
        at = body.checked_add(len)?;
    }
    None
}

/// Resamples to 8 kHz: each output sample is the mean of the input samples it covers (a box filter, which
/// keeps speech intelligible without aliasing from a plain pick), or the input itself at 8 kHz.
pub fn to_8khz(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == 8000 || rate == 0 {
        return samples.to_vec();
    }
    let step = f64::from(rate) / 8000.0;
    let n = (samples.len() as f64 / step) as usize;
    (0..n)
        .map(|i| {
            let (start, end) = ((i as f64 * step) as usize, (((i + 1) as f64 * step) as usize).min(samples.len()));
            let span = &samples[start..end.max(start + 1).min(samples.len())];
            (span.iter().map(|&s| i64::from(s)).sum::<i64>() / span.len().max(1) as i64) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piped_wav_is_read_to_its_end() {
        let mut wav = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x01\0\x22\x56\0\0\x44\xac\0\0\x02\0\x10\0data\xff\xff\xff\xff".to_vec();
        wav.extend_from_slice(&[1, 0, 2, 0, 0xff, 0xff]);
        assert_eq!(streamed_wav(&wav), Some((22050, vec![1, 2, -1])));
        assert_eq!(streamed_wav(b"not a wav"), None);
    }

    #[test]
    fn resampling_keeps_the_duration_and_the_level() {
        let tone: Vec<i16> = (0..22050).map(|i| if (i / 100) % 2 == 0 { 8000 } else { -8000 }).collect();
        let out = to_8khz(&tone, 22050);
        assert_eq!(out.len(), 8000, "one second stays one second");
        assert!(out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) >= 7000);
        assert_eq!(to_8khz(&[1, 2, 3], 8000), vec![1, 2, 3]);
    }
}
