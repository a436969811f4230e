//! Where finished recordings live for years: the [`RecordingStore`] interface and its two backends, a local folder
//! ([`local::LocalStore`], the embedded default) and S3 ([`s3::S3Store`], behind the `s3` cargo feature).
//!
//! Keys are the recording's path relative to the recordings folder, `<org-slug>/<yyyy>/<mm>/<token>-<kind>.wav`, the
//! same string the database keeps as `storage_key`; an S3 store adds its configured prefix. Every `put` verifies what
//! the backend holds against a checksum of the local file before it reports success, so the caller may then delete
//! the local copy. Also here: HTTP `Range` handling ([`range`]) and [`open_for_playback`], the HTTP-agnostic half of
//! the admin site's playback endpoint. Not here: who may fetch a recording (the web layer checks the organization
//! before it asks), retries (the [`crate::uploader`] does those).

pub mod local;
pub mod range;
#[cfg(feature = "s3")]
pub mod s3;
pub mod settings;

use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::AsyncRead;

pub use local::LocalStore;
pub use range::{ByteRange, RangeRequest, ResponseHead};
pub use settings::{ArchiveSettings, Backend, S3Settings};

/// A boxed future, so the trait stays object-safe (`Arc<dyn RecordingStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// A body to stream to the client.
pub type Body = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("object {0} not found")]
    NotFound(String),
    #[error("local file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("upload of {key} did not verify: {detail}")]
    Integrity { key: String, detail: String },
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("storage configuration: {0}")]
    Config(String),
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { path, source }
    }
}

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

/// Checksums of a local file, computed in one read: SHA-256 of everything, MD5 of everything, and MD5 of each
/// `part_size` part (what S3 builds a multipart ETag from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
    pub part_md5s: Vec<[u8; 16]>,
}

impl FileDigest {
    /// Reads `path` (blocking; call from `spawn_blocking`).
    pub fn of_file(path: &Path, part_size: u64) -> Result<FileDigest, StorageError> {
        let mut file = std::fs::File::open(path).map_err(StorageError::io(path))?;
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut part = Md5::new();
        let mut in_part = 0u64;
        let mut part_md5s = Vec::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(StorageError::io(path))?;
            if n == 0 {
                break;
            }
            let mut chunk = &buf[..n];
            sha.update(chunk);
            md5.update(chunk);
            size += n as u64;
            while !chunk.is_empty() {
                let take = ((part_size - in_part) as usize).min(chunk.len());
                part.update(&chunk[..take]);
                in_part += take as u64;
                chunk = &chunk[take..];
                if in_part == part_size {
                    part_md5s.push(part.finalize_reset().into());
                    in_part = 0;
                }
            }
        }
        if in_part > 0 || part_md5s.is_empty() {
            part_md5s.push(part.finalize().into());
        }
        Ok(FileDigest { size, sha256: sha.finalize().into(), md5: md5.finalize().into(), part_md5s })
    }

    pub async fn of_file_async(path: PathBuf, part_size: u64) -> Result<FileDigest, StorageError> {
        tokio::task::spawn_blocking(move || FileDigest::of_file(&path, part_size))
            .await
            .map_err(|e| StorageError::Backend(format!("checksum task failed: {e}")))?
    }

    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// The ETag S3 gives a single-part upload: the MD5 in hex.
    pub fn single_etag(&self) -> String {
        hex(&self.md5)
    }

    /// The ETag S3 gives a multipart upload: MD5 of the concatenated part MD5s, then `-<parts>`.
    pub fn multipart_etag(&self) -> String {
        let mut all = Md5::new();
        for p in &self.part_md5s {
            all.update(p);
        }
        let digest: [u8; 16] = all.finalize().into();
        format!("{}-{}", hex(&digest), self.part_md5s.len())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
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

    #[test]
    fn digest_matches_known_values_and_part_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let d = FileDigest::of_file(&path, 5 * 1024 * 1024).unwrap();
        assert_eq!(d.sha256_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(d.single_etag(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.part_md5s, vec![d.md5]);

        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let d = FileDigest::of_file(&path, 300).unwrap();
        assert_eq!(d.size, 1000);
        assert_eq!(d.part_md5s.len(), 4);
        let expect: Vec<[u8; 16]> = data.chunks(300).map(|c| Md5::digest(c).into()).collect();
        assert_eq!(d.part_md5s, expect);
        assert!(d.multipart_etag().ends_with("-4"));
    }
}
