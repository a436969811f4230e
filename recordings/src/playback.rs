//! The HTTP-agnostic half of the admin site's "play this recording" endpoint: finds the recording *within the
//! caller's organization* (another organization's id is `NotFound`, which the web layer answers with 404), then
//! either a presigned S3 URL to redirect to or a body to stream with Range support — from the archive once
//! uploaded, from the local spool while the upload is pending. The web layer checks the user's role (managers of
//! the organization, or the employee assigned to the request) before calling this.

use std::path::Path;
use std::time::Duration;

use oncall_core::store::recording_uploads::StoredRecording;
use oncall_core::{OrgId, RecordingId, Store, StoreError};

use crate::storage::{open_for_playback, LocalStore, ObjectKey, Playback, RecordingStore, StorageError};
use crate::uploader::UploadError;

/// What to answer.
#[derive(Debug)]
pub enum PlaybackAnswer {
    /// 302/307 to this URL.
    Redirect(String),
    /// 200/206/416 with this head and body.
    Stream(Playback),
}

/// Looks the recording up in `org` and opens it. `presign_ttl` (from `ArchiveSettings::presign_ttl`) asks for a
/// redirect where the archive can presign; `Err(UploadError::Store(StoreError::NotFound))` or
/// `Err(UploadError::Storage(StorageError::NotFound))` mean 404.
pub async fn open_recording(
    db: &Store,
    archive: &dyn RecordingStore,
    spool_dir: &Path,
    org: OrgId,
    id: RecordingId,
    range_header: Option<&str>,
    presign_ttl: Option<Duration>,
) -> Result<(StoredRecording, PlaybackAnswer), UploadError> {
    let rec = db.stored_recording(org, id).await?;
    let answer = match &rec.upload {
        Some(u) => {
            let key = ObjectKey::new(u.object_key.clone())?;
            match presign_ttl {
                Some(ttl) => match archive.presign_get(&key, ttl).await? {
                    Some(url) => PlaybackAnswer::Redirect(url),
                    None => PlaybackAnswer::Stream(open_for_playback(archive, &key, range_header).await?),
                },
                None => PlaybackAnswer::Stream(open_for_playback(archive, &key, range_header).await?),
            }
        }
        None => {
            let key = ObjectKey::new(rec.storage_key.clone())?;
            let spool = LocalStore::new(spool_dir);
            PlaybackAnswer::Stream(open_for_playback(&spool, &key, range_header).await?)
        }
    };
    Ok((rec, answer))
}

/// True when `e` should be answered with 404.
pub fn is_not_found(e: &UploadError) -> bool {
    matches!(e, UploadError::Store(StoreError::NotFound(_)) | UploadError::Storage(StorageError::NotFound(_)))
}
