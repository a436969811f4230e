//! What the caller said, in words (issue 23).
//!
//! Every message recording (and, when `[transcription] conversations` is on, every bridged conversation, one
//! channel per side) gets a job in the store's queue when it is stored (`store/transcriptions.rs`). The
//! [`worker::Worker`] leases due jobs, reads the audio wherever it is (spool or archive), skips silence, and runs
//! the configured [`engine::Engine`] off the media threads, one job per worker slot; the text lands on the request
//! with a `transcribed` event, which the webhooks send as `request.transcribed` and later texts quote. Paging
//! never waits for it. The pure rules (retries, silence, confidence, word error rate) are in
//! `oncall_core::transcript`.
//!
//! Engines: [`pocketsphinx`] (offline, Debian's `pocketsphinx` + `pocketsphinx-en-us`, the default when
//! installed), [`openai`] (any OpenAI-compatible `/v1/audio/transcriptions`: whisper.cpp's server,
//! faster-whisper servers, LocalAI) and, built with `--features whisper`, whisper.cpp in-process.

pub mod audio;
pub mod config;
pub mod engine;
pub mod openai;
pub mod pocketsphinx;
#[cfg(feature = "whisper")]
pub mod whisper;
pub mod worker;

pub use config::TranscriptionConfig;
pub use engine::{Audio, Engine, EngineError};

use config::{Choice, WhisperConfig};
use std::path::Path;
use std::sync::Arc;

/// The engine `config` chooses, or `None` when transcription is off. `work_dir` holds the decoders' temporary
/// files. Errors name the key to fix.
pub fn engine(config: &TranscriptionConfig, work_dir: &Path) -> Result<Option<Arc<dyn Engine>>, String> {
    Ok(match config.choice()? {
        Choice::Off => None,
        Choice::Pocketsphinx => Some(Arc::new(pocketsphinx::Pocketsphinx::new(&config.pocketsphinx, work_dir)?)),
        Choice::Http => {
            let client = oncall_paging::webhooks::http_client()?;
            Some(Arc::new(openai::OpenAiHttp::new(config.http.clone(), client)))
        }
        Choice::Whisper => whisper_engine(&config.whisper)?,
    })
}

#[cfg(feature = "whisper")]
fn whisper_engine(config: &WhisperConfig) -> Result<Option<Arc<dyn Engine>>, String> {
    Ok(Some(Arc::new(whisper::Whisper::load(config)?)))
}

#[cfg(not(feature = "whisper"))]
fn whisper_engine(_config: &WhisperConfig) -> Result<Option<Arc<dyn Engine>>, String> {
    Err("this build has no whisper.cpp (build with --features oncall-transcribe/whisper)".into())
}
