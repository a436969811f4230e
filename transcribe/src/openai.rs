//! An OpenAI-compatible speech-to-text endpoint: `POST <url>` (`…/v1/audio/transcriptions`) with the audio as
//! multipart form data, what whisper.cpp's `whisper-server`, faster-whisper servers, LocalAI and OpenAI itself
//! take. The answer's `text` is the transcript; with `verbose_json` the segments' `avg_logprob` give a
//! confidence and `no_speech_prob` the engine's doubt.

use crate::audio::wav_bytes;
use serde::{Deserialize, Serialize};
use crate::engine::{Audio, Engine, EngineError, EngineFuture};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use oncall_core::transcript::{primary_language, Transcript};
use oncall_paging::webhooks::HttpClient;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpEngineConfig {
    /// The endpoint, e.g. `http://127.0.0.1:8080/v1/audio/transcriptions` (whisper.cpp's server with
    /// `--inference-path /v1/audio/transcriptions`) or `https://api.openai.com/v1/audio/transcriptions`.
    pub url: String,
    /// The `model` form field (`whisper-1` for OpenAI; most self-hosted servers ignore it).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
}

impl Default for HttpEngineConfig {
    fn default() -> Self {
        HttpEngineConfig { url: String::new(), model: "whisper-1".into(), api_key: None }
    }
}

/// Answers larger than this are not transcripts.
const MAX_ANSWER: usize = 1 << 20;

pub struct OpenAiHttp {
    config: HttpEngineConfig,
    client: HttpClient,
}

impl OpenAiHttp {
    pub fn new(config: HttpEngineConfig, client: HttpClient) -> OpenAiHttp {
        OpenAiHttp { config, client }
    }

    async fn post(&self, audio: &Audio, language: &str) -> Result<Transcript, EngineError> {
        let boundary = format!("oncall-{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        let mut fields = vec![("model", self.config.model.clone()), ("response_format", "verbose_json".to_string()), ("temperature", "0".to_string())];
        let lang = primary_language(language);
        if !lang.is_empty() {
            fields.push(("language", lang));
        }
        let body = multipart(&boundary, &fields, "message.wav", &wav_bytes(audio));
        let mut req = hyper::Request::post(self.config.url.as_str())
            .header(hyper::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .header(hyper::header::USER_AGENT, concat!("OnCall/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| EngineError::Permanent(format!("bad request for {}: {e}", self.config.url)))?;
        let resp = self.client.request(req).await.map_err(|e| EngineError::Retry(format!("could not reach {}: {}", self.config.url, oncall_paging::webhooks::error_chain(&e))))?;
        let status = resp.status().as_u16();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| EngineError::Retry(format!("reading the answer of {}: {e}", self.config.url)))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        if !(200..300).contains(&status) {
            let said: String = text.chars().take(200).collect();
            let e = format!("{} answered HTTP {status}: {}", self.config.url, said.trim());
            // Overload, timeouts and server errors pass; anything else is the request itself.
            return Err(if status >= 500 || status == 429 || status == 408 { EngineError::Retry(e) } else { EngineError::Permanent(e) });
        }
        parse_answer(&text).map_err(|e| EngineError::Retry(format!("{}: {e}", self.config.url)))
    }
}

impl Engine for OpenAiHttp {
    fn name(&self) -> &str {
        "http"
    }

    fn supports(&self, _language: &str) -> bool {
        // The server knows its model; Whisper's cover about a hundred languages.
        true
    }

    fn transcribe<'a>(&'a self, audio: &'a Audio, language: &'a str) -> EngineFuture<'a> {
        Box::pin(self.post(audio, language))
    }
}

/// A `multipart/form-data` body (RFC 7578): the text fields, then the file.
pub fn multipart(boundary: &str, fields: &[(&str, String)], filename: &str, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + 512);
    for (name, value) in fields {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(file);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The transcript in a `json` or `verbose_json` answer.
pub fn parse_answer(body: &str) -> Result<Transcript, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let text = v.get("text").and_then(Value::as_str).ok_or("the answer has no \"text\"")?;
    let segments = v.get("segments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mean = |key: &str| -> Option<f64> {
        let xs: Vec<f64> = segments.iter().filter_map(|s| s.get(key).and_then(Value::as_f64)).collect();
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    };
    let confidence = mean("avg_logprob").map(f64::exp);
    let doubt = mean("no_speech_prob").is_some_and(|p| p > 0.6);
    Ok(Transcript::new(text, confidence, doubt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_answers_give_confidence_and_doubt() {
        let t = parse_answer(r#"{"text":" Water in 4B. ","segments":[{"avg_logprob":-0.1,"no_speech_prob":0.01},{"avg_logprob":-0.3,"no_speech_prob":0.02}]}"#).unwrap();
        assert_eq!(t.text, "Water in 4B.");
        assert!((t.confidence.unwrap() - (-0.2f64).exp()).abs() < 1e-9);
        assert!(!t.low_quality);
        let doubtful = parse_answer(r#"{"text":"uh","segments":[{"avg_logprob":-0.1,"no_speech_prob":0.9}]}"#).unwrap();
        assert!(doubtful.low_quality);
        let plain = parse_answer(r#"{"text":"hello"}"#).unwrap();
        assert_eq!((plain.text.as_str(), plain.confidence), ("hello", None));
    }

    #[test]
    fn answers_without_text_are_errors() {
        assert!(parse_answer("<html>").unwrap_err().contains("not JSON"));
        assert!(parse_answer(r#"{"error":"x"}"#).unwrap_err().contains("no \"text\""));
    }

    #[test]
    fn the_multipart_body_holds_fields_and_the_file() {
        let body = multipart("b0", &[("model", "whisper-1".into())], "m.wav", b"RIFF");
        let s = String::from_utf8_lossy(&body);
        assert!(s.starts_with("--b0\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"));
        assert!(s.contains("name=\"file\"; filename=\"m.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--b0--\r\n"));
    }
}
