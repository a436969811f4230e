//! `oncall recordings migrate --to s3`: copies a local recordings archive to another store (S3), verifying each
//! copy and recording it in the database, so that afterwards `[storage] backend = "s3"` finds every recording.
//! Keys stay the same on both backends. Safe to interrupt and run again: objects already there with the same
//! checksum are not sent twice. Source files are deleted only with `delete_source` and only after the copy is
//! verified and recorded.

use std::time::Duration;

use oncall_core::store::recording_uploads::UploadRecord;
use oncall_core::{RecordingId, Store, Timestamp};

use crate::storage::{ObjectKey, RecordingStore, StorageError};
use crate::uploader::UploadError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Objects sent.
    pub copied: usize,
    /// Already in the target with the same checksum.
    pub already_there: usize,
    /// Recordings whose source file does not exist (listed by key).
    pub missing_source: Vec<String>,
    /// Recordings that failed after retries, with the last error.
    pub failed: Vec<(String, String)>,
}

/// Copies every recording in the database from `from` (a local store) to `to`.
pub async fn migrate(db: &Store, from: &dyn RecordingStore, to: &dyn RecordingStore, delete_source: bool) -> Result<MigrateReport, UploadError> {
    let mut report = MigrateReport::default();
    let mut after = RecordingId(0);
    loop {
        let page = db.recordings_after(after, 200).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for r in page {
            let key_str = r.upload.as_ref().map_or(r.storage_key.clone(), |u| u.object_key.clone());
            let Ok(key) = ObjectKey::new(key_str.clone()) else {
                report.failed.push((key_str, "invalid key".into()));
                continue;
            };
            let Some(source) = from.local_path(&key) else {
                return Err(StorageError::Config("migrate reads from a local archive only".into()).into());
            };
            if !source.is_file() {
                report.missing_source.push(key_str);
                continue;
            }
            let mut last_err = None;
            for attempt in 0..4u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
                match to.put(&key, &source).await {
                    Ok(put) => {
                        let record = UploadRecord {
                            object_key: key.to_string(),
                            sha256: put.sha256,
                            size_bytes: put.size as i64,
                            uploaded_at: Timestamp::now(),
                        };
                        db.mark_uploaded(r.org, r.id, &record).await?;
                        if put.already_present {
                            report.already_there += 1;
                        } else {
                            report.copied += 1;
                        }
                        if delete_source {
                            from.delete(&key).await?;
                        }
                        last_err = None;
                        break;
                    }
                    Err(e) => last_err = Some(e.to_string()),
                }
            }
            if let Some(e) = last_err {
                tracing::error!(key = %key, error = %e, "migration of recording failed");
                report.failed.push((key_str, e));
            }
        }
    }
    Ok(report)
}
