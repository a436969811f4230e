//! whisper.cpp in-process (feature `whisper`), through `whisper-rs`, with a ggml model file the operator
//! supplies (`[transcription.whisper] model`). The model is loaded once at start-up; each job gets its own
//! decoder state on a blocking thread, so the async runtime never waits on it.
//!
//! Building it needs cmake and a C++ compiler; without libclang, set `WHISPER_DONT_GENERATE_BINDINGS=1` and
//! the crate's bundled bindings are used.

use crate::audio::resample;
use crate::config::WhisperConfig;
use crate::engine::{Audio, Engine, EngineError, EngineFuture};
use oncall_core::transcript::{primary_language, Transcript};
use std::sync::Arc;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

pub struct Whisper {
    context: Arc<WhisperContext>,
    threads: i32,
}

impl Whisper {
    /// Loads the model; an unreadable or invalid file is a start-up error naming the key.
    pub fn load(config: &WhisperConfig) -> Result<Whisper, String> {
        let key = "transcription.whisper.model";
        let path = config.model.to_str().ok_or_else(|| format!("{key} = {:?}: not a UTF-8 path", config.model.display()))?;
        whisper_rs::install_logging_hooks();
        let context = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| format!("{key} = {path:?}: whisper.cpp could not load it ({e}); use a ggml model file such as ggml-base.en.bin"))?;
        Ok(Whisper { context: Arc::new(context), threads: config.threads.clamp(1, 64) as i32 })
    }
}

/// One decode: the text of every segment, and the mean probability of its text tokens as the confidence.
fn decode(context: &WhisperContext, threads: i32, audio: &Audio, language: &str) -> Result<Transcript, EngineError> {
    let wide = resample(audio, 16_000);
    let samples: Vec<f32> = wide.samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mut state = context.create_state().map_err(|e| EngineError::Retry(format!("whisper.cpp: no decoder state: {e}")))?;
    let lang = primary_language(language);
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads);
    params.set_language(Some(if lang.is_empty() { "auto" } else { lang.as_str() }));
    params.set_no_context(true);
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    params.set_suppress_blank(true);
    state.full(params, &samples).map_err(|e| EngineError::Permanent(format!("whisper.cpp could not decode the audio: {e}")))?;
    let failed = |e: whisper_rs::WhisperError| EngineError::Retry(format!("whisper.cpp: {e}"));
    let eot = context.token_eot();
    let (mut text, mut probabilities) = (String::new(), Vec::new());
    for segment in 0..state.full_n_segments().map_err(failed)? {
        text.push_str(&state.full_get_segment_text_lossy(segment).map_err(failed)?);
        text.push(' ');
        for token in 0..state.full_n_tokens(segment).map_err(failed)? {
            // Ids from the end-of-text token up are timestamps and markers, not words.
            if state.full_get_token_id(segment, token).map_err(failed)? < eot {
                probabilities.push(f64::from(state.full_get_token_prob(segment, token).map_err(failed)?));
            }
        }
    }
    let confidence = (!probabilities.is_empty()).then(|| probabilities.iter().sum::<f64>() / probabilities.len() as f64);
    Ok(Transcript::new(&text, confidence, false))
}

impl Engine for Whisper {
    fn name(&self) -> &str {
        "whisper"
    }

    fn supports(&self, _language: &str) -> bool {
        // A multilingual model covers about a hundred languages; an `.en` model still answers, in English.
        true
    }

    fn transcribe<'a>(&'a self, audio: &'a Audio, language: &'a str) -> EngineFuture<'a> {
        let (context, threads, audio, language) = (self.context.clone(), self.threads, audio.clone(), language.to_string());
        Box::pin(async move {
            // A timed-out job's decode runs to its end on the blocking pool; its result is dropped.
            tokio::task::spawn_blocking(move || decode(&context, threads, &audio, &language))
                .await
                .map_err(|e| EngineError::Retry(format!("whisper.cpp stopped: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that is not a ggml model is a start-up error naming the key, not a crash.
    #[test]
    fn a_file_that_is_no_model_names_the_key() {
        let dir = std::env::temp_dir().join(format!("oncall-whisper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("ggml-none.bin");
        std::fs::write(&model, b"not a model").unwrap();
        let err = Whisper::load(&WhisperConfig { model, threads: 1 }).err().expect("refused");
        assert!(err.starts_with("transcription.whisper.model = ") && err.contains("could not load it"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
