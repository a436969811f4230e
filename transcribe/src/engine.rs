//! The one seam every engine sits behind.

use oncall_core::transcript::Transcript;
use std::future::Future;
use std::pin::Pin;

/// Mono 16-bit audio at `rate` samples per second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    pub samples: Vec<i16>,
    pub rate: u32,
}

impl Audio {
    pub fn secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// Worth another attempt later (a timeout, a 5xx, a crashed child process).
    Retry(String),
    /// Will fail the same way again (a 4xx, audio the engine refuses): given up at once.
    Permanent(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Retry(e) | EngineError::Permanent(e) => f.write_str(e),
        }
    }
}

pub type EngineFuture<'a> = Pin<Box<dyn Future<Output = Result<Transcript, EngineError>> + Send + 'a>>;

/// A speech-to-text engine. `transcribe` must not block the async runtime: engines run a child process, an
/// HTTP request, or `spawn_blocking`.
pub trait Engine: Send + Sync + 'static {
    /// Its name in logs, the request page and `transcriptions.engine` ("pocketsphinx", "http", "whisper").
    fn name(&self) -> &str;
    /// Whether it has a model for `language` (a BCP 47 tag such as en or en-US).
    fn supports(&self, language: &str) -> bool;
    fn transcribe<'a>(&'a self, audio: &'a Audio, language: &'a str) -> EngineFuture<'a>;
}
