//! `[transcription]`: which engine turns messages into words, and how the queue runs.

pub use crate::openai::HttpEngineConfig;
use crate::pocketsphinx::{find_program, locate_model};
pub use crate::pocketsphinx::PocketsphinxConfig;
use oncall_core::request::RecordingKind;
use oncall_core::transcript::valid_language;
use oncall_core::webhook::RetryPolicy;
use oncall_core::Millis;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscriptionConfig {
    /// `auto` (pocketsphinx when it and its model are installed, else off), `pocketsphinx`, `http`, `whisper`
    /// (a build with `--features whisper`) or `none`.
    pub engine: String,
    /// The language callers speak, where the organization sets none (`oncall org set --language`).
    pub language: String,
    /// Also transcribe bridged conversations, each side on its own.
    pub conversations: bool,
    /// Jobs at once. Each takes about one core while it runs (pocketsphinx, whisper); keep it under the cores
    /// the calls do not need.
    pub workers: usize,
    /// One attempt's limit; a job that takes longer is stopped and tried again.
    pub timeout_secs: u64,
    /// Attempts before a job is given up (its reason shown on the request).
    pub max_attempts: u32,
    /// Wait after the first failed attempt, doubling after each further one.
    pub retry_initial_secs: u64,
    /// How often an idle worker looks for new jobs.
    pub poll_interval_ms: u64,
    pub pocketsphinx: PocketsphinxConfig,
    pub http: HttpEngineConfig,
    pub whisper: WhisperConfig,
}

impl Default for TranscriptionConfig {
    fn default() -> Self {
        TranscriptionConfig {
            engine: "auto".into(),
            language: "en-US".into(),
            conversations: false,
            workers: 1,
            timeout_secs: 120,
            max_attempts: 3,
            retry_initial_secs: 30,
            poll_interval_ms: 2000,
            pocketsphinx: PocketsphinxConfig::default(),
            http: HttpEngineConfig::default(),
            whisper: WhisperConfig::default(),
        }
    }
}



#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhisperConfig {
    /// A ggml model file (`ggml-base.en.bin`, …) the operator downloaded; nothing is fetched at run time.
    pub model: PathBuf,
    /// Threads per job.
    pub threads: u32,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        WhisperConfig { model: PathBuf::new(), threads: 1 }
    }
}

/// What `engine = "auto"` resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Off,
    Pocketsphinx,
    Http,
    Whisper,
}

impl TranscriptionConfig {
    /// Checks the settings (the error names the key to fix) and resolves `auto`.
    pub fn choice(&self) -> Result<Choice, String> {
        if !valid_language(&self.language) {
            return Err(format!("transcription.language = {:?}: use a language tag such as en, en-US or de", self.language));
        }
        if !(1..=64).contains(&self.workers) {
            return Err(format!("transcription.workers = {}: use 1 to 64", self.workers));
        }
        if self.timeout_secs == 0 {
            return Err("transcription.timeout_secs must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return Err("transcription.max_attempts must be at least 1".into());
        }
        match self.engine.as_str() {
            "none" | "off" => Ok(Choice::Off),
            "auto" => {
                let installed = find_program(&self.pocketsphinx.program).is_some() && locate_model(&self.pocketsphinx.model_dir).is_ok();
                Ok(if installed { Choice::Pocketsphinx } else { Choice::Off })
            }
            "pocketsphinx" => {
                find_program(&self.pocketsphinx.program).ok_or_else(|| {
                    format!("transcription.pocketsphinx.program = {:?} is not installed (apt install pocketsphinx pocketsphinx-en-us)", self.pocketsphinx.program)
                })?;
                locate_model(&self.pocketsphinx.model_dir)?;
                Ok(Choice::Pocketsphinx)
            }
            "http" => {
                let url = self.http.url.trim();
                if url.is_empty() {
                    return Err("transcription.engine = \"http\" needs transcription.http.url (…/v1/audio/transcriptions)".into());
                }
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.parse::<hyper::Uri>().is_err() {
                    return Err(format!("transcription.http.url = {url:?} must be an http:// or https:// URL"));
                }
                Ok(Choice::Http)
            }
            "whisper" => {
                let model = &self.whisper.model;
                if model.as_os_str().is_empty() {
                    return Err("transcription.engine = \"whisper\" needs transcription.whisper.model (a ggml model file)".into());
                }
                if !model.is_file() {
                    return Err(format!("transcription.whisper.model = {:?}: no such file", model.display()));
                }
                if !cfg!(feature = "whisper") {
                    return Err("transcription.engine = \"whisper\": this build has no whisper.cpp; build with `cargo build --release --features oncall-transcribe/whisper`, or run whisper.cpp's server and use engine = \"http\"".into());
                }
                Ok(Choice::Whisper)
            }
            other => Err(format!("transcription.engine = {other:?}: use auto, pocketsphinx, http, whisper or none")),
        }
    }

    /// The recording kinds the worker takes.
    pub fn kinds(&self) -> Vec<RecordingKind> {
        let mut k = vec![RecordingKind::Message];
        if self.conversations {
            k.push(RecordingKind::Conversation);
        }
        k
    }

    pub fn retry(&self) -> RetryPolicy {
        let initial = Millis::seconds(self.retry_initial_secs.max(1) as i64);
        RetryPolicy { initial, max_delay: Millis::hours(1).max(initial), max_attempts: Some(self.max_attempts) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(engine: &str) -> TranscriptionConfig {
        TranscriptionConfig { engine: engine.into(), ..TranscriptionConfig::default() }
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = TranscriptionConfig { pocketsphinx: PocketsphinxConfig { model_dir: "/nonexistent".into(), ..Default::default() }, ..with("pocketsphinx") }.choice().unwrap_err();
        assert!(e.contains("transcription.pocketsphinx"), "{e}");
        assert!(with("http").choice().unwrap_err().contains("transcription.http.url"));
        let bad_url = TranscriptionConfig { http: HttpEngineConfig { url: "ftp://x".into(), ..Default::default() }, ..with("http") };
        assert!(bad_url.choice().unwrap_err().contains("http:// or https://"));
        assert!(with("whisper").choice().unwrap_err().contains("transcription.whisper.model"));
        let missing = TranscriptionConfig { whisper: WhisperConfig { model: "/nonexistent/ggml-base.en.bin".into(), threads: 1 }, ..with("whisper") };
        let e = missing.choice().unwrap_err();
        assert!(e.contains("transcription.whisper.model") && e.contains("no such file"), "{e}");
        assert!(with("vosk").choice().unwrap_err().contains("transcription.engine"));
        assert!(TranscriptionConfig { language: "english please".into(), ..with("none") }.choice().unwrap_err().contains("transcription.language"));
        assert_eq!(with("none").choice().unwrap(), Choice::Off);
    }

    #[test]
    fn auto_is_off_without_the_decoder() {
        let c = TranscriptionConfig { pocketsphinx: PocketsphinxConfig { program: "/nonexistent/pocketsphinx".into(), ..Default::default() }, ..with("auto") };
        assert_eq!(c.choice().unwrap(), Choice::Off);
    }

    #[test]
    fn conversations_are_taken_only_when_asked() {
        assert_eq!(with("none").kinds(), vec![RecordingKind::Message]);
        assert_eq!(TranscriptionConfig { conversations: true, ..with("none") }.kinds().len(), 2);
    }
}
