//! Recording storage bookkeeping (issue 4): which recordings still wait in the local spool, where each archived
//! copy is and its checksum, and retention deletes.
//!
//! A recording row is created by `add_recording` when the call ends, with `object_key` NULL; the uploader sets the
//! key, SHA-256, size and time with [`Store::mark_uploaded`] once the archive holds a verified copy. The
//! uploader, `oncall recordings verify` and `migrate` look across organizations (they serve the whole instance),
//! so those few methods take no `OrgId`; everything a tenant can trigger does.

use super::requests::{insert_event, recording_kind};
use super::rows::{f64_, i64_, opt_i64, opt_string, string, ts};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{OrgId, RecordingId, RequestId};
use crate::request::{Actor, RecordingKind};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use sqlx::any::AnyRow;

/// A recording as storage sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecording {
    pub id: RecordingId,
    pub org: OrgId,
    pub request: Option<RequestId>,
    pub kind: RecordingKind,
    /// The spool path relative to the recordings folder, as recorded.
    pub storage_key: String,
    pub duration_ms: i64,
    pub peak: f64,
    pub rms: f64,
    pub created_at: Timestamp,
    /// Where the archive holds it; `None` while the upload is pending.
    pub upload: Option<UploadRecord>,
}

/// A verified copy in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub object_key: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    pub size_bytes: i64,
    pub uploaded_at: Timestamp,
}

const COLUMNS: &str =
    "id, org_id, request_id, kind, storage_key, duration_ms, peak, rms, created_at, object_key, sha256, size_bytes, uploaded_at";

fn from_row(r: &AnyRow) -> Result<StoredRecording> {
    let upload = match (opt_string(r, "object_key")?, opt_i64(r, "uploaded_at")?) {
        (Some(object_key), Some(at)) => Some(UploadRecord {
            object_key,
            sha256: opt_string(r, "sha256")?.unwrap_or_default(),
            size_bytes: opt_i64(r, "size_bytes")?.unwrap_or(0),
            uploaded_at: Timestamp(at),
        }),
        _ => None,
    };
    Ok(StoredRecording {
        id: RecordingId(i64_(r, "id")?),
        org: OrgId(i64_(r, "org_id")?),
        request: opt_i64(r, "request_id")?.map(RequestId),
        kind: recording_kind(r)?,
        storage_key: string(r, "storage_key")?,
        duration_ms: i64_(r, "duration_ms")?,
        peak: f64_(r, "peak")?,
        rms: f64_(r, "rms")?,
        created_at: ts(r, "created_at")?,
        upload,
    })
}

impl Store {
    /// Recordings waiting for their upload, oldest first, across all organizations.
    pub async fn pending_uploads(&self, limit: i64) -> Result<Vec<StoredRecording>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE uploaded_at IS NULL ORDER BY id LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Every recording with `id > after`, in id order, `limit` at a time (for verify and migrate).
    pub async fn recordings_after(&self, after: RecordingId, limit: i64) -> Result<Vec<StoredRecording>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after.0)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The recordings recorded at `storage_key` (normally one), across organizations: the spool scan at start-up
    /// finds files by path.
    pub async fn recordings_by_storage_key(&self, storage_key: &str) -> Result<Vec<StoredRecording>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE storage_key = $1 ORDER BY id"))
            .bind(storage_key)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// One recording of `org`; `NotFound` for another organization's (the playback endpoint answers 404).
    pub async fn stored_recording(&self, org: OrgId, id: RecordingId) -> Result<StoredRecording> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE org_id = $1 AND id = $2"))
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => from_row(&r),
            None => Err(StoreError::NotFound(id.to_string())),
        }
    }

    /// Gives a recording registered without a request (a crash cut its call) to the request opened for it since.
    /// Only a request-less row moves: a recording never changes request.
    pub async fn attach_recording(&self, org: OrgId, id: RecordingId, request: RequestId, at: Timestamp) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE recordings SET request_id = $1 WHERE org_id = $2 AND id = $3 AND request_id IS NULL RETURNING kind")
            .bind(request.0)
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = done else {
            return Err(StoreError::NotFound(format!("{id} without a request")));
        };
        let kind = string(&row, "kind")?;
        insert_event(&mut tx, org, request, at, Actor::System, super::requests::event_kind::RECORDING, &format!("{kind} {id}")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the archive holds a verified copy.
    pub async fn mark_uploaded(&self, org: OrgId, id: RecordingId, upload: &UploadRecord) -> Result<()> {
        if upload.object_key.trim().is_empty() {
            return Err(ValidationError::new("object_key", "must not be empty").into());
        }
        if upload.size_bytes < 0 {
            return Err(ValidationError::new("size_bytes", "must not be negative").into());
        }
        let done = sqlx::query(
            "UPDATE recordings SET object_key = $1, sha256 = $2, size_bytes = $3, uploaded_at = $4 WHERE org_id = $5 AND id = $6",
        )
        .bind(&upload.object_key)
        .bind(&upload.sha256)
        .bind(upload.size_bytes)
        .bind(upload.uploaded_at.0)
        .bind(org.0)
        .bind(id.0)
        .execute(self.pool())
        .await?;
        one_row(&done, id)
    }

    /// `org`'s recordings created before `cutoff`, oldest first (retention).
    pub async fn recordings_older_than(&self, org: OrgId, cutoff: Timestamp, limit: i64) -> Result<Vec<StoredRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE org_id = $1 AND created_at < $2 ORDER BY created_at, id LIMIT $3"
        ))
        .bind(org.0)
        .bind(cutoff.0)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes the row and, if it belonged to a request, writes `detail` to that request's event log (kind
    /// `recording`), in one transaction. Call after the stored copies are gone.
    pub async fn delete_recording_row(&self, org: OrgId, id: RecordingId, at: Timestamp, detail: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT request_id FROM recordings WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let request = opt_i64(&row, "request_id")?.map(RequestId);
        // Its transcription job goes with it (the request keeps the transcript text).
        sqlx::query("DELETE FROM transcriptions WHERE org_id = $1 AND recording_id = $2").bind(org.0).bind(id.0).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM recordings WHERE org_id = $1 AND id = $2").bind(org.0).bind(id.0).execute(&mut *tx).await?;
        if let Some(req) = request {
            insert_event(&mut tx, org, req, at, Actor::System, super::requests::event_kind::RECORDING, detail).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
