//! Text to speech for the page call of an alert (issue 20): the summary is what the employee hears where a
//! caller's message would be. The engine sits behind [`Speaker`]; the built-in one runs espeak-ng (Debian's
//! `espeak-ng`) as a subprocess and turns its 22 050 Hz WAV into the 8 kHz the media engine plays. Phrases are
//! kept once spoken (alerts repeat). Without espeak-ng the page carries no speech and says so in the log; the
//! keys work as for any page.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Turns a sentence into 8 kHz mono samples; `None` when it cannot.
pub trait Speaker: Send + Sync + 'static {
    fn speak<'a>(&'a self, text: &'a str) -> Pin<Box<dyn Future<Output = Option<Arc<[i16]>>> + Send + 'a>>;
}

/// Phrases kept at most (a phrase is a few seconds: ~50 KiB at 8 kHz).
const KEEP: usize = 200;

/// espeak-ng as a subprocess, `voice` its language (`en`, `de`, …).
pub struct EspeakNg {
    program: String,
    voice: String,
    spoken: Mutex<HashMap<String, Arc<[i16]>>>,
}

impl EspeakNg {
    pub fn new(voice: &str) -> EspeakNg {
        EspeakNg { program: "espeak-ng".into(), voice: voice.into(), spoken: Mutex::default() }
    }

    async fn render(&self, text: &str) -> Result<Vec<i16>, String> {
        let (program, voice, text) = (self.program.clone(), self.voice.clone(), text.to_string());
        // A blocking child on the blocking pool (the tokio `process` feature is not worth it for this).
        let run = tokio::task::spawn_blocking(move || std::process::Command::new(&program).args(["-v", &voice, "-s", "150", "--stdout"]).arg(&text).output());
        let out = run
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot run {}: {e} (install espeak-ng to hear alert summaries)", self.program))?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", self.program, String::from_utf8_lossy(&out.stderr).trim()));
        }
        let reader = hound::WavReader::new(std::io::Cursor::new(out.stdout)).map_err(|e| format!("{} wrote no WAV: {e}", self.program))?;
        let rate = reader.spec().sample_rate;
        let samples: Vec<i16> = reader.into_samples::<i16>().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        Ok(to_8khz(&samples, rate))
    }
}

impl Speaker for EspeakNg {
    fn speak<'a>(&'a self, text: &'a str) -> Pin<Box<dyn Future<Output = Option<Arc<[i16]>>> + Send + 'a>> {
        Box::pin(async move {
            if let Some(kept) = self.spoken.lock().unwrap_or_else(|p| p.into_inner()).get(text) {
                return Some(kept.clone());
            }
            match self.render(text).await {
                Ok(samples) => {
                    let samples: Arc<[i16]> = samples.into();
                    let mut spoken = self.spoken.lock().unwrap_or_else(|p| p.into_inner());
                    if spoken.len() >= KEEP {
                        spoken.clear();
                    }
                    spoken.insert(text.to_string(), samples.clone());
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
    fn resampling_keeps_the_duration_and_the_level() {
        let tone: Vec<i16> = (0..22050).map(|i| if (i / 100) % 2 == 0 { 8000 } else { -8000 }).collect();
        let out = to_8khz(&tone, 22050);
        assert_eq!(out.len(), 8000, "one second stays one second");
        assert!(out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) >= 7000);
        assert_eq!(to_8khz(&[1, 2, 3], 8000), vec![1, 2, 3]);
    }
}
