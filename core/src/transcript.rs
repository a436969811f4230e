//! What the caller said, in words (issue 23): the outcome of a transcription job and the pure rules around it.
//!
//! The store (`store/transcriptions.rs`) keeps the queue; `oncall-transcribe` runs the engines. Here: what a
//! finished job holds, when a job has nothing worth sending to an engine (silence), when a transcript counts as
//! low quality, what becomes of a failed attempt ([`crate::webhook::RetryPolicy`], shared with webhooks), and
//! the word error rate the tests and the bench score engines with.

use crate::timestamp::{Millis, Timestamp};
use crate::webhook::{NextStep, RetryPolicy};
use serde::{Deserialize, Serialize};

/// Where a recording's transcription stands (`transcriptions.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptionStatus {
    /// Waiting for (or in) an engine, or for its next attempt.
    Pending,
    /// Text written (which may be empty: `reason` says why).
    Done,
    /// Nothing to transcribe (silence, too short); `reason` says which. Never sent to an engine.
    Empty,
    /// Given up after the last attempt; `reason` is the last error.
    Failed,
}

impl TranscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptionStatus::Pending => "pending",
            TranscriptionStatus::Done => "done",
            TranscriptionStatus::Empty => "empty",
            TranscriptionStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TranscriptionStatus> {
        [TranscriptionStatus::Pending, TranscriptionStatus::Done, TranscriptionStatus::Empty, TranscriptionStatus::Failed]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// What an engine heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Transcript {
    pub text: String,
    /// 0..1, where the engine gives one (pocketsphinx: the mean word posterior; Whisper: from token log-probs).
    pub confidence: Option<f64>,
    /// The engine's own doubt (Whisper's no-speech probability) or a confidence under [`LOW_CONFIDENCE`].
    pub low_quality: bool,
}

/// Below this confidence a transcript is flagged "low quality" in the admin site and the webhook.
pub const LOW_CONFIDENCE: f64 = 0.5;

impl Transcript {
    /// `text` tidied (one space between words), with the low-quality flag set from `confidence` too.
    pub fn new(text: &str, confidence: Option<f64>, engine_doubts: bool) -> Transcript {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let confidence = confidence.filter(|c| c.is_finite()).map(|c| c.clamp(0.0, 1.0));
        let low_quality = engine_doubts || confidence.is_some_and(|c| c < LOW_CONFIDENCE);
        Transcript { text, confidence, low_quality }
    }
}

/// A leased job, with what the worker needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionJob {
    /// The recording to read (never written).
    pub recording: crate::request::Recording,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The organization's language, if it set one.
    pub language: Option<String>,
}

/// How a job ends this attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done { transcript: Transcript, engine: String, language: String, engine_time: Millis },
    /// Not sent to an engine, or the engine heard no words: the reason is shown instead of a text.
    Empty { reason: String },
    /// Try again at `at` (the error is kept as the reason meanwhile).
    Retry { at: Timestamp, reason: String },
    Failed { reason: String },
}

/// Recordings shorter than this, or quieter, are not sent to an engine.
pub const MIN_AUDIO: Millis = Millis(500);
/// Peak level (0..1 of full scale) under which a recording is taken as silence: about −50 dBFS, below the
/// quietest speech that survives a phone line and above G.711's idle noise.
pub const SILENCE_PEAK: f64 = 0.003;

/// Why a recording is not worth transcribing, if it is not.
pub fn nothing_to_transcribe(duration_ms: i64, peak: f64) -> Option<String> {
    if duration_ms < MIN_AUDIO.0 {
        return Some(format!("the recording is {duration_ms} ms long: too short to hold words"));
    }
    if peak < SILENCE_PEAK {
        return Some("the recording is silent".into());
    }
    None
}

/// What becomes of attempt number `attempts` (1-based) that failed with `reason` at `now`.
pub fn after_failure(policy: &RetryPolicy, attempts: u32, reason: String, now: Timestamp) -> JobOutcome {
    match policy.after_attempt(attempts, false, now) {
        NextStep::RetryAt(at) => JobOutcome::Retry { at, reason },
        NextStep::GiveUp | NextStep::Delivered => JobOutcome::Failed { reason },
    }
}

/// A BCP 47-looking tag: letters, digits and dashes, starting with a 2–3 letter language.
pub fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The primary language of a tag, lowercase (`en-US` → `en`): what Whisper and the OpenAI API take.
pub fn primary_language(tag: &str) -> String {
    tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase()
}

/// Words of `text` for scoring: lowercase, punctuation dropped (apostrophes kept: "don't").
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate: (substitutions + deletions + insertions) / words of the reference, by edit distance over
/// words. 0 is perfect; above 1 when the engine adds more words than were said. An empty reference scores the
/// hypothesis' length (0 for an empty one).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() {
        return h.len() as f64;
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitute = prev[j] + usize::from(rw != hw);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len() as f64
}

/// The first `max` characters of a transcript on one line, with an ellipsis when cut (lists and texts).
pub fn first_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        // End on a word boundary when there is one in the last third.
        let end = cut.rfind(' ').filter(|i| *i > max * 2 / 3).unwrap_or(cut.len());
        format!("{}…", &cut[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_counts_edits_over_reference_words() {
        assert_eq!(word_error_rate("water in the kitchen", "water in the kitchen"), 0.0);
        assert_eq!(word_error_rate("Water, in the kitchen!", "water in the kitchen"), 0.0);
        assert_eq!(word_error_rate("water in the kitchen", "water on the kitchen"), 0.25);
        assert_eq!(word_error_rate("water in the kitchen", "water the kitchen"), 0.25);
        assert_eq!(word_error_rate("water in the kitchen", "water in in the kitchen"), 0.25);
        assert_eq!(word_error_rate("water in the kitchen", ""), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
        assert!(word_error_rate("a b", "c d e f") > 1.0);
    }

    #[test]
    fn silence_and_short_recordings_are_not_sent_to_an_engine() {
        assert!(nothing_to_transcribe(300, 0.5).unwrap().contains("too short"));
        assert!(nothing_to_transcribe(8_000, 0.0005).unwrap().contains("silent"));
        assert_eq!(nothing_to_transcribe(8_000, 0.3), None);
    }

    #[test]
    fn low_confidence_flags_the_transcript() {
        assert!(Transcript::new("a  b", Some(0.2), false).low_quality);
        assert!(!Transcript::new("a b", Some(0.9), false).low_quality);
        assert!(Transcript::new("a b", None, true).low_quality);
        assert_eq!(Transcript::new(" a \n b ", None, false).text, "a b");
        assert_eq!(Transcript::new("x", Some(f64::NAN), false).confidence, None);
    }

    #[test]
    fn failures_are_retried_then_given_up() {
        let policy = RetryPolicy { initial: Millis::seconds(10), max_delay: Millis::seconds(60), max_attempts: Some(3) };
        let now = Timestamp(1_000_000);
        assert_eq!(after_failure(&policy, 1, "timeout".into(), now), JobOutcome::Retry { at: now + Millis::seconds(10), reason: "timeout".into() });
        assert_eq!(after_failure(&policy, 2, "timeout".into(), now), JobOutcome::Retry { at: now + Millis::seconds(20), reason: "timeout".into() });
        assert_eq!(after_failure(&policy, 3, "500".into(), now), JobOutcome::Failed { reason: "500".into() });
    }

    #[test]
    fn languages_are_checked_and_reduced_to_their_primary_tag() {
        for ok in ["en", "en-US", "de", "pt_BR", "yue"] {
            assert!(valid_language(ok), "{ok}");
        }
        for bad in ["", "e", "english-language-tag-too-long-part", "en US", "12", "en-"] {
            assert!(!valid_language(bad), "{bad}");
        }
        assert_eq!(primary_language("en-US"), "en");
    }

    #[test]
    fn the_first_line_is_cut_on_a_word() {
        assert_eq!(first_line("water\ncoming through", 100), "water coming through");
        assert_eq!(first_line("water coming through the ceiling", 17), "water coming…");
    }
}
