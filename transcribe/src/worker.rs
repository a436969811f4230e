//! The worker: leases due jobs from the store's queue, runs the engine on each and writes what became of it.
//! `[transcription] workers` slots run side by side, each one job at a time; everything else (retry times,
//! silence, confidence) is decided by the pure rules in `oncall_core::transcript`.

use crate::audio::{decode_wav, mix};
use crate::config::TranscriptionConfig;
use crate::engine::{Audio, Engine, EngineError};
use oncall_core::request::RecordingKind;
use oncall_core::transcript::{after_failure, nothing_to_transcribe, JobOutcome, Transcript, TranscriptionJob, LOW_CONFIDENCE, SILENCE_PEAK};
use oncall_core::webhook::RetryPolicy;
use oncall_core::{Millis, Store, Timestamp};
use oncall_recordings::access::RecordingSource;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Recordings larger than this are not read into memory (an hour of 8 kHz stereo is 115 MB).
const MAX_BYTES: u64 = 256 << 20;

pub struct Worker {
    pub store: Store,
    pub recordings: Arc<dyn RecordingSource>,
    pub engine: Arc<dyn Engine>,
    pub config: TranscriptionConfig,
    /// This instance's id: the lease owner, so instances sharing a database share the queue.
    pub owner: String,
}

impl Worker {
    /// Runs the slots until `stop` turns true; a job in progress is finished (or its lease left to expire).
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        tracing::info!(engine = self.engine.name(), workers = self.config.workers, language = %self.config.language, conversations = self.config.conversations, "transcription on");
        let slots: Vec<_> = (0..self.config.workers).map(|_| tokio::spawn(self.clone().slot(stop.clone()))).collect();
        for s in slots {
            let _ = s.await;
        }
    }

    async fn slot(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let kinds = self.config.kinds();
        let lease = Millis::seconds(self.config.timeout_secs as i64 * 2 + 30);
        loop {
            if *stop.borrow() {
                return;
            }
            match self.store.claim_transcriptions(&self.owner, &kinds, Timestamp::now(), lease, 1).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        self.process(&job).await;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "transcription: cannot read the queue"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.config.poll_interval_ms.max(50))) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One attempt at `job`, written back to the store.
    pub async fn process(&self, job: &TranscriptionJob) {
        let started = Instant::now();
        let outcome = self.attempt(job).await;
        let took = started.elapsed();
        match &outcome {
            JobOutcome::Done { transcript, .. } => tracing::info!(
                recording = %job.recording.id, request = ?job.recording.request.map(|r| r.0), engine = self.engine.name(), audio_secs = job.recording.duration_ms as f64 / 1000.0,
                engine_secs = took.as_secs_f64(), words = transcript.text.split_whitespace().count(), confidence = ?transcript.confidence,
                low_quality = transcript.low_quality, "transcribed"
            ),
            JobOutcome::Empty { reason } => tracing::info!(recording = %job.recording.id, %reason, "not transcribed"),
            JobOutcome::Retry { reason, at } => {
                tracing::warn!(recording = %job.recording.id, attempt = job.attempts + 1, %reason, retry_in_secs = (at.0 - Timestamp::now().0) / 1000, "transcription failed; will try again")
            }
            JobOutcome::Failed { reason } => tracing::warn!(recording = %job.recording.id, attempts = job.attempts + 1, %reason, "transcription given up"),
        }
        match self.store.finish_transcription(job, &self.owner, &outcome, Timestamp::now()).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(recording = %job.recording.id, "transcription: the lease expired before the job finished; another worker has it"),
            Err(e) => tracing::warn!(recording = %job.recording.id, error = %e, "transcription: cannot store the result (the job will be taken again)"),
        }
    }

    async fn attempt(&self, job: &TranscriptionJob) -> JobOutcome {
        if let Some(reason) = nothing_to_transcribe(job.recording.duration_ms, job.recording.peak) {
            return JobOutcome::Empty { reason };
        }
        let language = job.language.clone().unwrap_or_else(|| self.config.language.clone());
        if !self.engine.supports(&language) {
            return JobOutcome::Failed {
                reason: format!("{} has no model for language {language}: set the organization's language or use another engine", self.engine.name()),
            };
        }
        let retry = self.config.retry();
        let attempt = job.attempts + 1;
        let failed = |reason: String| after_failure(&retry, attempt, reason, Timestamp::now());
        let bytes = match self.read(&job.recording.storage_key).await {
            Ok(b) => b,
            Err(e) => return failed(format!("cannot read the recording: {e}")),
        };
        let (channels, rate) = match decode_wav(&bytes) {
            Ok(c) => c,
            Err(reason) => return JobOutcome::Failed { reason },
        };
        let sides: Vec<(Option<&str>, Audio)> = match (job.recording.kind, channels.len()) {
            // A bridged call is recorded caller left, on-call person right (oncall_sip::media::bridge::interleave).
            (RecordingKind::Conversation, 2..) => vec![
                (Some("Caller"), Audio { samples: channels[0].clone(), rate }),
                (Some("On call"), Audio { samples: channels[1].clone(), rate }),
            ],
            _ => vec![(None, Audio { samples: mix(&channels), rate })],
        };
        transcribe_sides(self.engine.as_ref(), &sides, &language, Duration::from_secs(self.config.timeout_secs), &retry, attempt).await
    }

    async fn read(&self, key: &str) -> Result<Vec<u8>, String> {
        let source = self.recordings.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let size = source.size(&key).map_err(|e| e.to_string())?;
            if size > MAX_BYTES {
                return Err(format!("{size} bytes is too large to transcribe"));
            }
            source.read(&key, 0..size).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Runs the engine on each side (one for a message), each within `limit`, and joins the texts ("Caller: …" on
/// its own line for a conversation). A silent side is skipped.
pub async fn transcribe_sides(engine: &dyn Engine, sides: &[(Option<&str>, Audio)], language: &str, limit: Duration, retry: &RetryPolicy, attempt: u32) -> JobOutcome {
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut confidences = Vec::new();
    let mut doubt = false;
    for (label, audio) in sides {
        let peak = audio.samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        if f64::from(peak) / 32768.0 < SILENCE_PEAK {
            continue;
        }
        let t = match tokio::time::timeout(limit, engine.transcribe(audio, language)).await {
            Err(_) => return after_failure(retry, attempt, format!("{} took longer than {} s", engine.name(), limit.as_secs()), Timestamp::now()),
            Ok(Err(EngineError::Retry(e))) => return after_failure(retry, attempt, e, Timestamp::now()),
            Ok(Err(EngineError::Permanent(reason))) => return JobOutcome::Failed { reason },
            Ok(Ok(t)) => t,
        };
        if !t.text.is_empty() {
            lines.push(match label {
                Some(l) => format!("{l}: {}", t.text),
                None => t.text.clone(),
            });
        }
        confidences.extend(t.confidence);
        doubt |= t.low_quality;
    }
    if lines.is_empty() && sides.iter().all(|(_, a)| a.samples.iter().all(|s| f64::from(s.unsigned_abs()) / 32768.0 < SILENCE_PEAK)) {
        return JobOutcome::Empty { reason: "the recording is silent".into() };
    }
    let confidence = (!confidences.is_empty()).then(|| confidences.iter().sum::<f64>() / confidences.len() as f64);
    let transcript = Transcript { text: lines.join("\n"), confidence, low_quality: doubt || confidence.is_some_and(|c| c < LOW_CONFIDENCE) };
    JobOutcome::Done {
        transcript,
        engine: engine.name().to_string(),
        language: language.to_string(),
        engine_time: Millis(started.elapsed().as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineFuture;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers each call from a script: a text, an error, or never (a hang).
    struct Scripted {
        answers: Vec<Result<&'static str, EngineError>>,
        hang: bool,
        calls: AtomicU32,
    }

    impl Engine for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn supports(&self, l: &str) -> bool {
            l.starts_with("en")
        }
        fn transcribe<'a>(&'a self, _audio: &'a Audio, _language: &'a str) -> EngineFuture<'a> {
            let i = self.calls.fetch_add(1, Ordering::Relaxed) as usize;
            let answer = self.answers.get(i).cloned().unwrap_or(Ok(""));
            let hang = self.hang;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                answer.map(|t| Transcript::new(t, Some(0.8), false))
            })
        }
    }

    fn speech() -> Audio {
        Audio { samples: (0..8000).map(|i| ((i as f64 / 5.0).sin() * 6000.0) as i16).collect(), rate: 8000 }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { initial: Millis::seconds(30), max_delay: Millis::hours(1), max_attempts: Some(3) }
    }

    #[tokio::test(start_paused = true)]
    async fn a_conversation_is_transcribed_per_side() {
        let e = Scripted { answers: vec![Ok("water in the kitchen"), Ok("on my way")], hang: false, calls: AtomicU32::new(0) };
        let sides = [(Some("Caller"), speech()), (Some("On call"), speech())];
        let JobOutcome::Done { transcript, engine, .. } = transcribe_sides(&e, &sides, "en", Duration::from_secs(5), &policy(), 1).await else { panic!() };
        assert_eq!(transcript.text, "Caller: water in the kitchen\nOn call: on my way");
        assert_eq!((engine.as_str(), transcript.confidence), ("scripted", Some(0.8)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_engine_times_out_and_is_retried_then_given_up() {
        let e = Scripted { answers: vec![], hang: true, calls: AtomicU32::new(0) };
        let sides = [(None, speech())];
        let first = transcribe_sides(&e, &sides, "en", Duration::from_secs(5), &policy(), 1).await;
        assert!(matches!(&first, JobOutcome::Retry { reason, .. } if reason.contains("longer than 5 s")), "{first:?}");
        let last = transcribe_sides(&e, &sides, "en", Duration::from_secs(5), &policy(), 3).await;
        assert!(matches!(last, JobOutcome::Failed { .. }), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_gives_up_at_once_and_silence_is_empty() {
        let e = Scripted { answers: vec![Err(EngineError::Permanent("HTTP 400".into()))], hang: false, calls: AtomicU32::new(0) };
        let out = transcribe_sides(&e, &[(None, speech())], "en", Duration::from_secs(5), &policy(), 1).await;
        assert_eq!(out, JobOutcome::Failed { reason: "HTTP 400".into() });
        let quiet = Audio { samples: vec![3; 8000], rate: 8000 };
        let out = transcribe_sides(&e, &[(None, quiet)], "en", Duration::from_secs(5), &policy(), 1).await;
        assert!(matches!(out, JobOutcome::Empty { .. }), "{out:?}");
        assert_eq!(e.calls.load(Ordering::Relaxed), 1, "silence is never sent to the engine");
    }
}
