//! Where finished recordings live for years: the [`RecordingStore`] interface and its two backends, a local folder
//! ([`local::LocalStore`], the embedded default) and S3 ([`s3::S3Store`], behind the `s3` cargo feature).
//!
//! Keys are the recording's path relative to the recordings folder, `<org-slug>/<yyyy>/<mm>/<token>-<kind>.wav`, the
//! same string the database keeps as `storage_key`; an S3 store adds its configured prefix. Every `put` verifies what
//! the backend holds against a checksum of the local file before it reports success, so the caller may then delete
//! the local copy. Also here: HTTP `Range` handling ([`range`]) and [`open_for_playback`], the HTTP-agnostic half of
//! the admin site's playback endpoint. Not here: who may fetch a recording (the web layer checks the organization
//! before it asks), retries (the [`crate::uploader`] does those).

mod digest;
mod error;
pub mod local;
pub mod range;
#[cfg(feature = "s3")]
pub mod s3;
pub mod settings;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::io::AsyncRead;

pub use digest::FileDigest;
pub use error::StorageError;
pub use local::LocalStore;
pub use range::{ByteRange, RangeRequest, ResponseHead};
pub use settings::{ArchiveSettings, Backend, S3Settings};

/// A boxed future, so the trait stays object-safe (`Arc<dyn RecordingStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// A body to stream to the client.
pub type Body = Pin<Box<dyn AsyncRead + Send>>;

/// A validated object key: a relative path of `[A-Za-z0-9._-]` segments separated by `/`, without `.` or `..`
/// segments, so it can neither escape the local folder nor mean different objects on different backends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<ObjectKey, StorageError> {
        let key = key.into();
        let bad = |reason| Err(StorageError::InvalidKey { key: key.clone(), reason });
        if key.is_empty() || key.len() > 900 {
            return bad("must be 1 to 900 bytes");
        }
        for segment in key.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return bad("empty, '.' or '..' path segment");
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return bad("only letters, digits, '.', '_', '-' and '/' are allowed");
            }
        }
        Ok(ObjectKey(key))
    }

    /// The key of the file at `path` under `root` (the recordings folder).
    pub fn from_path(root: &Path, path: &Path) -> Result<ObjectKey, StorageError> {
        let rel = path.strip_prefix(root).map_err(|_| StorageError::InvalidKey {
            key: path.display().to_string(),
            reason: "not under the recordings folder",
        })?;
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        ObjectKey::new(parts.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organization slug: the first path segment.
    pub fn org_slug(&self) -> &str {
        self.0.split('/').next().unwrap_or("")
    }

    /// The recording kind from `<token>-<kind>.wav` ("message", "conversation"), if the name has that shape.
    pub fn kind(&self) -> Option<&str> {
        let name = self.0.rsplit('/').next()?;
        let stem = name.strip_suffix(".wav")?;
        stem.rsplit_once('-').map(|(_, kind)| kind).filter(|k| !k.is_empty())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a successful `put` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub key: ObjectKey,
    pub size: u64,
    /// SHA-256 of the content, lowercase hex; also kept in the database and (S3) as object metadata.
    pub sha256: String,
    /// True when the object was already there with this content and nothing was sent.
    pub already_present: bool,
}

/// An object as a listing or `head` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: ObjectKey,
    pub size: u64,
    /// The SHA-256 recorded with the object, when the backend keeps one.
    pub sha256: Option<String>,
}

/// The recording archive.
pub trait RecordingStore: Send + Sync + fmt::Debug {
    /// "local" or "s3", for logs and reports.
    fn backend_name(&self) -> &'static str;

    /// Stores the file at `local` under `key` (replacing what was there) and verifies what the backend holds
    /// against the file's checksum. Idempotent: storing the same file twice leaves one object.
    fn put<'a>(&'a self, key: &'a ObjectKey, local: &'a Path) -> StoreFuture<'a, PutOutcome>;

    /// Size and checksum of an object, or `None` if there is none.
    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectInfo>>;

    /// Streams the object, or `range` of it (which must lie inside the object: see [`open_for_playback`]).
    fn get<'a>(&'a self, key: &'a ObjectKey, range: Option<ByteRange>) -> StoreFuture<'a, Body>;

    /// Removes the object; removing one that does not exist succeeds.
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()>;

    /// Every object whose key starts with `prefix` ("" for all), in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectInfo>>;

    /// A URL that lets anyone holding it GET the object for `ttl`, if the backend can make one (S3 can; the local
    /// folder cannot, and the web layer streams instead).
    fn presign_get<'a>(&'a self, key: &'a ObjectKey, ttl: Duration) -> StoreFuture<'a, Option<String>>;

    /// Where the object lives on this machine's disk, if this is a local store. The uploader uses it to recognize
    /// a spool file that already *is* the archived copy, which must never be deleted.
    fn local_path(&self, _key: &ObjectKey) -> Option<PathBuf> {
        None
    }
}

/// What the playback endpoint sends: the head of a 200, 206 or 416 answer and, unless 416, the body to stream.
pub struct Playback {
    pub head: ResponseHead,
    pub total_size: u64,
    pub body: Option<Body>,
}

impl fmt::Debug for Playback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Playback").field("head", &self.head).field("total_size", &self.total_size).finish_non_exhaustive()
    }
}

/// Answers a GET of `key` with an optional `Range` header: 200 with everything, 206 with exactly the asked bytes
/// (`Content-Range` set), or 416. `Err(NotFound)` when the object does not exist. The caller has already checked
/// that the asking user may see this recording, and adds `Content-Type: audio/wav` and `Accept-Ranges: bytes`.
pub async fn open_for_playback(
    store: &dyn RecordingStore,
    key: &ObjectKey,
    range_header: Option<&str>,
) -> Result<Playback, StorageError> {
    let info = store.head(key).await?.ok_or_else(|| StorageError::NotFound(key.to_string()))?;
    let request = RangeRequest::parse(range_header, info.size);
    let head = request.head(info.size);
    let body = match request {
        RangeRequest::Unsatisfiable => None,
        RangeRequest::Full => Some(store.get(key, None).await?),
        RangeRequest::Partial(r) => Some(store.get(key, Some(r)).await?),
    };
    Ok(Playback { head, total_size: info.size, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_relative_paths() {
        let k = ObjectKey::new("acme/2024/06/ab12-message.wav").unwrap();
        assert_eq!((k.org_slug(), k.kind()), ("acme", Some("message")));
        for bad in ["", "/abs.wav", "a//b", "a/../b", "./a", "a/b/", "a b", "a\\b", "ä.wav"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?}");
        }
        let root = Path::new("/data/rec");
        assert_eq!(ObjectKey::from_path(root, Path::new("/data/rec/o/2024/01/x-message.wav")).unwrap().as_str(), "o/2024/01/x-message.wav");
        assert!(ObjectKey::from_path(root, Path::new("/elsewhere/x.wav")).is_err());
    }
}
