//! The transcription queue (issue 23): one row per recording, added with the recording, leased to one worker
//! at a time (several instances share the queue as they share webhook deliveries), finished with the text, a
//! retry time or the reason it gave up. A worker that dies mid-job leaves a lease that expires, and the job
//! is taken again. The recording row and file are never written here.

use super::requests::{insert_event, recording_from_row, recording_kind, RECORDING_COLUMNS};
use super::rows::{f64_, i64_, opt_i64, opt_string, string, u32_};
use super::{Backend, Result, Store};
use crate::ids::{OrgId, RecordingId, RequestId};
use crate::request::{Actor, RecordingKind};
use crate::timestamp::{Millis, Timestamp};
use crate::transcript::{first_line, JobOutcome, TranscriptionJob, TranscriptionStatus};
use sqlx::any::AnyRow;

/// A transcription as the admin site shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTranscription {
    pub recording: RecordingId,
    pub kind: RecordingKind,
    pub status: TranscriptionStatus,
    pub attempts: u32,
    pub engine: Option<String>,
    pub language: Option<String>,
    pub text: Option<String>,
    pub confidence: Option<f64>,
    pub low_quality: bool,
    pub reason: Option<String>,
    pub audio_ms: Option<i64>,
    pub engine_ms: Option<i64>,
    pub finished_at: Option<Timestamp>,
}

fn stored_from_row(r: &AnyRow) -> Result<StoredTranscription> {
    let status = string(r, "status")?;
    let confidence = match opt_i64(r, "has_confidence")? {
        Some(1) => Some(f64_(r, "confidence")?),
        _ => None,
    };
    Ok(StoredTranscription {
        recording: RecordingId(i64_(r, "recording_id")?),
        kind: recording_kind(r)?,
        status: TranscriptionStatus::parse(&status).ok_or_else(|| super::rows::corrupt("transcriptions.status", &status))?,
        attempts: u32_(r, "attempts")?,
        engine: opt_string(r, "engine")?,
        language: opt_string(r, "language")?,
        text: opt_string(r, "text")?,
        confidence,
        low_quality: i64_(r, "low_quality")? != 0,
        reason: opt_string(r, "reason")?,
        audio_ms: opt_i64(r, "audio_ms")?,
        engine_ms: opt_i64(r, "engine_ms")?,
        finished_at: opt_i64(r, "finished_at")?.map(Timestamp),
    })
}

const STORED_COLUMNS: &str = "t.recording_id, r.kind, t.status, t.attempts, t.engine, t.language, t.text, \
     CASE WHEN t.confidence IS NULL THEN 0 ELSE 1 END AS has_confidence, COALESCE(t.confidence, 0.0) AS confidence, \
     t.low_quality, t.reason, t.audio_ms, t.engine_ms, t.finished_at";

/// Jobs of each status (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscriptionCounts {
    pub pending: u64,
    pub done: u64,
    pub empty: u64,
    pub failed: u64,
}

impl Store {
    /// Leases up to `limit` due jobs of recordings of `kinds` to `owner` until `now + lease`, oldest first.
    pub async fn claim_transcriptions(
        &self,
        owner: &str,
        kinds: &[RecordingKind],
        now: Timestamp,
        lease: Millis,
        limit: i64,
    ) -> Result<Vec<TranscriptionJob>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Kinds come from our enum, never from input, so inlining them is safe.
        let kinds = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE transcriptions SET lease_owner = $1, lease_expires_at = $2 \
             WHERE recording_id IN (SELECT t.recording_id FROM transcriptions t JOIN recordings r ON r.id = t.recording_id \
                 WHERE t.status = 'pending' AND t.next_attempt_at <= $3 \
                 AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= $3) AND r.kind IN ({kinds}) \
                 ORDER BY t.next_attempt_at, t.recording_id LIMIT $4{lock}) \
             RETURNING recording_id, attempts"
        );
        let mut tx = self.pool().begin().await?;
        let leased = sqlx::query(&sql).bind(owner).bind((now + lease).0).bind(now.0).bind(limit.clamp(0, 100)).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut jobs = Vec::with_capacity(leased.len());
        for l in &leased {
            let row = sqlx::query(&format!(
                "SELECT {RECORDING_COLUMNS}, org_id, (SELECT language FROM organizations o WHERE o.id = recordings.org_id) AS language \
                 FROM recordings WHERE id = $1"
            ))
            .bind(i64_(l, "recording_id")?)
            .fetch_one(self.pool())
            .await?;
            jobs.push(TranscriptionJob {
                recording: recording_from_row(OrgId(i64_(&row, "org_id")?), &row)?,
                attempts: u32_(l, "attempts")?,
                language: opt_string(&row, "language")?.filter(|s| !s.is_empty()),
            });
        }
        Ok(jobs)
    }

    /// Ends attempt `job.attempts + 1` with `outcome`, if `owner` still holds the lease (false: it expired and
    /// another worker has the job now, so nothing is written). A final outcome logs a `transcribed` event on the
    /// request (which the webhooks send as `request.transcribed`) and, for the caller's message, sets the
    /// request's transcript.
    pub async fn finish_transcription(&self, job: &TranscriptionJob, owner: &str, outcome: &JobOutcome, now: Timestamp) -> Result<bool> {
        let clip = |s: &str| s.chars().take(2000).collect::<String>();
        let (status, next_at, text, reason) = match outcome {
            JobOutcome::Done { transcript, .. } => {
                let reason = transcript.text.is_empty().then(|| "the engine heard no words".to_string());
                (TranscriptionStatus::Done, now, Some(transcript.text.clone()), reason)
            }
            JobOutcome::Empty { reason } => (TranscriptionStatus::Empty, now, Some(String::new()), Some(clip(reason))),
            JobOutcome::Retry { at, reason } => (TranscriptionStatus::Pending, *at, None, Some(clip(reason))),
            JobOutcome::Failed { reason } => (TranscriptionStatus::Failed, now, None, Some(clip(reason))),
        };
        let (engine, language, confidence, low_quality, cpu) = match outcome {
            JobOutcome::Done { transcript, engine, language, engine_time } => {
                (Some(engine.clone()), Some(language.clone()), transcript.confidence, transcript.low_quality, Some(engine_time.0))
            }
            _ => (None, None, None, false, None),
        };
        let finished = status != TranscriptionStatus::Pending;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE transcriptions SET status = $1, attempts = attempts + 1, next_attempt_at = $2, text = $3, reason = $4, \
             engine = COALESCE($5, engine), language = COALESCE($6, language), confidence = CASE WHEN $15 = 1 THEN $7 ELSE NULL END, low_quality = $8, \
             audio_ms = $9, engine_ms = $10, finished_at = $11, lease_owner = NULL, lease_expires_at = NULL \
             WHERE recording_id = $12 AND org_id = $13 AND status = 'pending' AND lease_owner = $14",
        )
        .bind(status.as_str())
        .bind(next_at.0)
        .bind(text.clone())
        .bind(reason.clone())
        .bind(engine)
        .bind(language)
        // A NULL f64 would fix the cached statement's parameter type on PostgreSQL (sqlx Any): bind a value and a flag.
        .bind(confidence.unwrap_or(0.0))
        .bind(i64::from(low_quality))
        .bind(job.recording.duration_ms)
        .bind(cpu)
        .bind(finished.then_some(now.0))
        .bind(job.recording.id.0)
        .bind(job.recording.org.0)
        .bind(owner)
        .bind(i64::from(confidence.is_some()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if finished {
            if let Some(request) = job.recording.request {
                if job.recording.kind == RecordingKind::Message {
                    sqlx::query("UPDATE requests SET transcript = $1 WHERE org_id = $2 AND id = $3")
                        .bind(text.clone().filter(|t| !t.is_empty()))
                        .bind(job.recording.org.0)
                        .bind(request.0)
                        .execute(&mut *tx)
                        .await?;
                }
                let said = match (&text, &reason) {
                    (Some(t), _) if !t.is_empty() => first_line(t, 500),
                    (_, Some(r)) => r.clone(),
                    _ => String::new(),
                };
                let detail = format!("{} {}: {}: {said}", job.recording.kind, job.recording.id, status.as_str());
                insert_event(&mut tx, job.recording.org, request, now, Actor::System, super::requests::event_kind::TRANSCRIBED, &detail).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The transcriptions of a request's recordings, in recording order.
    pub async fn transcriptions_for_request(&self, org: OrgId, request: RequestId) -> Result<Vec<StoredTranscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM transcriptions t JOIN recordings r ON r.id = t.recording_id \
             WHERE t.org_id = $1 AND r.org_id = $1 AND r.request_id = $2 ORDER BY r.created_at, r.id"
        ))
        .bind(org.0)
        .bind(request.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// One recording's transcription.
    pub async fn transcription(&self, org: OrgId, recording: RecordingId) -> Result<Option<StoredTranscription>> {
        let row = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM transcriptions t JOIN recordings r ON r.id = t.recording_id \
             WHERE t.org_id = $1 AND t.recording_id = $2"
        ))
        .bind(org.0)
        .bind(recording.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(stored_from_row).transpose()
    }

    /// Jobs of each status, every organization.
    pub async fn transcription_counts(&self) -> Result<TranscriptionCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM transcriptions GROUP BY status").fetch_all(self.pool()).await?;
        let mut c = TranscriptionCounts::default();
        for r in &rows {
            let n = i64_(r, "n")?.max(0) as u64;
            match TranscriptionStatus::parse(&string(r, "status")?) {
                Some(TranscriptionStatus::Pending) => c.pending = n,
                Some(TranscriptionStatus::Done) => c.done = n,
                Some(TranscriptionStatus::Empty) => c.empty = n,
                Some(TranscriptionStatus::Failed) => c.failed = n,
                None => {}
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{NewRecording, NewRequest};
    use crate::store::testing::{on_each_backend, TestDb};
    use crate::transcript::Transcript;
    use crate::webhook::{NewWebhook, WebhookEvent};

    const NOW: Timestamp = Timestamp(1_717_200_000_000);
    const LEASE: Millis = Millis::seconds(270);

    fn recording(request: RequestId, kind: RecordingKind, key: &str) -> NewRecording {
        NewRecording {
            request: Some(request),
            kind,
            storage_key: key.into(),
            duration_ms: 8_000,
            peak: 0.7,
            rms: 0.2,
            created_at: NOW,
        }
    }

    fn done(text: &str) -> JobOutcome {
        JobOutcome::Done {
            transcript: Transcript::new(text, Some(0.42), false),
            engine: "pocketsphinx".into(),
            language: "en-US".into(),
            engine_time: Millis(1_300),
        }
    }

    /// Every recording is queued with it; a job is leased to one worker, retried when due, taken over when its
    /// lease runs out, and finished once: the message's text lands on the request, an event on its timeline,
    /// and a `request.transcribed` delivery for a webhook that asked for it. Other organizations see nothing.
    #[tokio::test]
    async fn the_queue_leases_retries_and_finishes_each_recording_once() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let a = s.create_organization("A", "a", "UTC", NOW).await.unwrap();
            let b = s.create_organization("B", "b", "UTC", NOW).await.unwrap();
            let hook = NewWebhook { name: "Ops".into(), url: "https://x.example/h".into(), events: vec![WebhookEvent::Transcribed], ..NewWebhook::default() };
            s.create_webhook(a, &hook, NOW).await.unwrap();
            let req = s.create_request(a, &NewRequest { caller: "+15550100".into(), summary: String::new(), call: None }, NOW).await.unwrap();
            let msg = s.add_recording(a, &recording(req, RecordingKind::Message, "m.wav")).await.unwrap();
            let talk = s.add_recording(a, &recording(req, RecordingKind::Conversation, "c.wav")).await.unwrap();
            assert_eq!(s.transcription(a, msg).await.unwrap().unwrap().status, TranscriptionStatus::Pending, "{}", db.label);
            assert!(s.transcription(b, msg).await.unwrap().is_none());
            assert_eq!(s.transcription_counts().await.unwrap().pending, 2);

            // Only the kinds asked for; a leased job is nobody else's until its lease ends.
            let jobs = s.claim_transcriptions("w1", &[RecordingKind::Message], NOW, LEASE, 10).await.unwrap();
            assert_eq!(jobs.iter().map(|j| (j.recording.id, j.attempts, j.recording.request)).collect::<Vec<_>>(), [(msg, 0, Some(req))]);
            assert!(s.claim_transcriptions("w2", &[RecordingKind::Message], NOW, LEASE, 10).await.unwrap().is_empty());

            // A retry is due later; the first worker's late answer after a takeover is thrown away.
            let retry = JobOutcome::Retry { at: NOW + Millis::seconds(30), reason: "HTTP 500".into() };
            assert!(s.finish_transcription(&jobs[0], "w1", &retry, NOW).await.unwrap());
            assert!(s.claim_transcriptions("w2", &[RecordingKind::Message], NOW + Millis(29_999), LEASE, 10).await.unwrap().is_empty());
            let again = s.claim_transcriptions("w2", &[RecordingKind::Message], NOW + Millis::seconds(30), LEASE, 10).await.unwrap();
            assert_eq!(again[0].attempts, 1);
            let expired = NOW + Millis::seconds(30) + LEASE;
            let taken = s.claim_transcriptions("w3", &[RecordingKind::Message], expired, LEASE, 10).await.unwrap();
            assert_eq!(taken.len(), 1, "a dead worker's job is taken again");
            assert!(!s.finish_transcription(&again[0], "w2", &done("too late"), expired).await.unwrap());
            assert!(s.finish_transcription(&taken[0], "w3", &done("water is coming through the ceiling"), expired).await.unwrap());
            assert!(!s.finish_transcription(&taken[0], "w3", &done("twice"), expired).await.unwrap(), "finished once");

            let t = s.transcription(a, msg).await.unwrap().unwrap();
            assert_eq!((t.status, t.attempts, t.text.as_deref(), t.confidence, t.low_quality), (TranscriptionStatus::Done, 2, Some("water is coming through the ceiling"), Some(0.42), true));
            assert_eq!((t.engine.as_deref(), t.engine_ms, t.audio_ms), (Some("pocketsphinx"), Some(1_300), Some(8_000)));
            assert_eq!(s.request(a, req).await.unwrap().transcript.as_deref(), Some("water is coming through the ceiling"));
            let events = s.request_events(a, req).await.unwrap();
            let said = events.iter().find(|e| e.kind == "transcribed").expect("a transcribed event");
            assert_eq!(said.detail, format!("message {msg}: done: water is coming through the ceiling"));

            // A conversation's outcome goes on the timeline but not into the request's transcript.
            let conv = s.claim_transcriptions("w3", &[RecordingKind::Conversation], expired, LEASE, 10).await.unwrap();
            assert_eq!(conv[0].recording.id, talk);
            let empty = JobOutcome::Empty { reason: "the recording is silent".into() };
            assert!(s.finish_transcription(&conv[0], "w3", &empty, expired).await.unwrap());
            let c = s.transcription(a, talk).await.unwrap().unwrap();
            assert_eq!((c.status, c.reason.as_deref()), (TranscriptionStatus::Empty, Some("the recording is silent")));
            assert_eq!(s.request(a, req).await.unwrap().transcript.as_deref(), Some("water is coming through the ceiling"));
            assert_eq!(s.transcriptions_for_request(a, req).await.unwrap().iter().map(|t| t.recording).collect::<Vec<_>>(), [msg, talk]);
            assert!(s.transcriptions_for_request(b, req).await.unwrap().is_empty());
            let counts = s.transcription_counts().await.unwrap();
            assert_eq!((counts.pending, counts.done, counts.empty, counts.failed), (0, 1, 1, 0));

            // The webhook that asked for transcripts gets one delivery per finished job.
            // (Deliveries of one request go out one at a time, in order.)
            assert_eq!(s.enqueue_webhook_deliveries(expired + Millis::seconds(60), Millis::seconds(5)).await.unwrap(), 2, "{}", db.label);
            let deliveries = s.claim_webhook_deliveries("hooks", expired + Millis::seconds(60), LEASE, 10).await.unwrap();
            assert_eq!((deliveries[0].event, deliveries[0].request.id), (WebhookEvent::Transcribed, req));
            assert_eq!(deliveries[0].request.transcript.as_deref(), Some("water is coming through the ceiling"));
        })
        .await;
    }

    /// A job that keeps failing is marked failed with the reason and never claimed again.
    #[tokio::test]
    async fn a_failed_job_stays_failed() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let a = s.create_organization("A", "a", "UTC", NOW).await.unwrap();
            let req = s.create_request(a, &NewRequest { caller: "+15550100".into(), summary: String::new(), call: None }, NOW).await.unwrap();
            let msg = s.add_recording(a, &recording(req, RecordingKind::Message, "m.wav")).await.unwrap();
            let jobs = s.claim_transcriptions("w", &[RecordingKind::Message], NOW, LEASE, 10).await.unwrap();
            let failed = JobOutcome::Failed { reason: "gave up after 3 attempts: HTTP 500".into() };
            assert!(s.finish_transcription(&jobs[0], "w", &failed, NOW).await.unwrap());
            assert!(s.claim_transcriptions("w", &[RecordingKind::Message], NOW + Millis::seconds(3_600), LEASE, 10).await.unwrap().is_empty());
            let t = s.transcription(a, msg).await.unwrap().unwrap();
            assert_eq!((t.status, t.reason.as_deref(), t.text), (TranscriptionStatus::Failed, Some("gave up after 3 attempts: HTTP 500"), None), "{}", db.label);
            assert_eq!(s.request(a, req).await.unwrap().transcript, None);
        })
        .await;
    }
}
