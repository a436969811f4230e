//! The transcription queue (issue 23): one row per recording, added with the recording, leased to one worker
//! at a time (several instances share the queue as they share webhook deliveries), finished with the text, a
//! retry time or the reason it gave up. A worker that dies mid-job leaves a lease that expires, and the job
//! is taken again. The recording row and file are never written here.

use super::requests::{insert_event, recording_kind};
use super::rows::{f64_, i64_, opt_i64, opt_string, string, u32_};
use super::{Backend, Result, Store};
use crate::ids::{OrgId, RecordingId, RequestId};
use crate::request::{Actor, RecordingKind};
use crate::timestamp::{Millis, Timestamp};
use crate::transcript::{first_line, JobOutcome, TranscriptionJob, TranscriptionStatus};
use sqlx::any::AnyRow;

/// Queues a new recording's transcription (inside `add_recording`'s transaction).
pub(super) async fn enqueue(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, id: RecordingId, at: Timestamp) -> Result<()> {
    sqlx::query("INSERT INTO transcriptions (recording_id, org_id, status, next_attempt_at, created_at) VALUES ($1, $2, 'pending', $3, $3)")
        .bind(id.0)
        .bind(org.0)
        .bind(at.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

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
            let row = sqlx::query(
                "SELECT r.id, r.org_id, r.request_id, r.kind, r.storage_key, r.duration_ms, r.peak, r.rms, o.language \
                 FROM recordings r JOIN organizations o ON o.id = r.org_id WHERE r.id = $1",
            )
            .bind(i64_(l, "recording_id")?)
            .fetch_one(self.pool())
            .await?;
            jobs.push(TranscriptionJob {
                recording: RecordingId(i64_(&row, "id")?),
                org: OrgId(i64_(&row, "org_id")?),
                request: opt_i64(&row, "request_id")?.map(RequestId),
                kind: recording_kind(&row)?,
                storage_key: string(&row, "storage_key")?,
                duration_ms: i64_(&row, "duration_ms")?,
                peak: f64_(&row, "peak")?,
                rms: f64_(&row, "rms")?,
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
             engine = COALESCE($5, engine), language = COALESCE($6, language), confidence = $7, low_quality = $8, \
             audio_ms = $9, engine_ms = $10, finished_at = $11, lease_owner = NULL, lease_expires_at = NULL \
             WHERE recording_id = $12 AND org_id = $13 AND status = 'pending' AND lease_owner = $14",
        )
        .bind(status.as_str())
        .bind(next_at.0)
        .bind(text.clone())
        .bind(reason.clone())
        .bind(engine)
        .bind(language)
        .bind(confidence)
        .bind(i64::from(low_quality))
        .bind(job.duration_ms)
        .bind(cpu)
        .bind(finished.then_some(now.0))
        .bind(job.recording.0)
        .bind(job.org.0)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if finished {
            if let Some(request) = job.request {
                if job.kind == RecordingKind::Message {
                    sqlx::query("UPDATE requests SET transcript = $1 WHERE org_id = $2 AND id = $3")
                        .bind(text.clone().filter(|t| !t.is_empty()))
                        .bind(job.org.0)
                        .bind(request.0)
                        .execute(&mut *tx)
                        .await?;
                }
                let said = match (&text, &reason) {
                    (Some(t), _) if !t.is_empty() => first_line(t, 500),
                    (_, Some(r)) => r.clone(),
                    _ => String::new(),
                };
                let detail = format!("{} {}: {}: {said}", job.kind, job.recording, status.as_str());
                insert_event(&mut tx, job.org, request, now, Actor::System, super::requests::event_kind::TRANSCRIBED, &detail).await?;
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
