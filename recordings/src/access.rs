//! Reading a recording wherever it is now: the local spool folder while the file is there, the archive
//! (`[storage]`, S3 or a local folder) once the uploader has deleted the spool copy (`keep_spool = false`),
//! or when another instance of a cluster recorded it.
//!
//! [`RecordingSource`] is the blocking read seam the admin site serves playback and downloads from
//! ([`LocalRecordings`]: a folder; [`SpoolThenArchive`]: the spool, then the archive); [`fetch_archived`]
//! is what paging uses to replay a caller's message it has no local file for. Keys are the database's
//! `storage_key`, which is also the archive's object key (the uploader archives under it). Not here: who
//! may read a recording (the web layer checks), HTTP ranges (the web layer parses them), presigned redirects.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::storage::{ByteRange, ObjectKey, RecordingStore, StorageError};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

/// Read access to stored recordings by storage key. Blocking: callers use `spawn_blocking`.
pub trait RecordingSource: Send + Sync + 'static {
    /// Size in bytes; `ErrorKind::NotFound` if the key does not exist.
    fn size(&self, key: &str) -> io::Result<u64>;
    /// The bytes of `range` (already clipped to the size).
    fn read(&self, key: &str, range: Range<u64>) -> io::Result<Vec<u8>>;
}

/// Recordings as files under a root folder (`storage.recordings_dir`).
#[derive(Debug, Clone)]
pub struct LocalRecordings {
    root: PathBuf,
}

impl LocalRecordings {
    pub fn new(root: impl Into<PathBuf>) -> LocalRecordings {
        LocalRecordings { root: root.into() }
    }

    /// The file for `key`. Keys come from our own database, but a key that would leave the root
    /// (absolute, `..`) is refused anyway: defence in depth against a hand-edited row.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(io::Error::new(io::ErrorKind::NotFound, "storage key outside the recordings folder"));
        }
        Ok(self.root.join(rel))
    }
}

impl RecordingSource for LocalRecordings {
    fn size(&self, key: &str) -> io::Result<u64> {
        let meta = std::fs::metadata(self.path(key)?)?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a file"));
        }
        Ok(meta.len())
    }

    fn read(&self, key: &str, range: Range<u64>) -> io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(self.path(key)?)?;
        f.seek(SeekFrom::Start(range.start))?;
        let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(|_| io::Error::other("range too large"))?;
        let mut buf = Vec::with_capacity(len);
        f.take(len as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// The spool folder first, then the archive.
#[derive(Debug)]
pub struct SpoolThenArchive {
    spool: LocalRecordings,
    archive: Arc<dyn RecordingStore>,
    /// `RecordingSource` is blocking (the web layer calls it from `spawn_blocking`), the archive is
    /// async: its futures are driven on the server's runtime from that blocking thread.
    runtime: Handle,
}

impl SpoolThenArchive {
    /// Must be called inside the tokio runtime that will serve the reads.
    pub fn new(spool_dir: &Path, archive: Arc<dyn RecordingStore>) -> SpoolThenArchive {
        SpoolThenArchive { spool: LocalRecordings::new(spool_dir), archive, runtime: Handle::current() }
    }
}

impl RecordingSource for SpoolThenArchive {
    fn size(&self, key: &str) -> io::Result<u64> {
        match self.spool.size(key) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = object_key(key)?;
                match self.runtime.block_on(self.archive.head(&key)).map_err(to_io)? {
                    Some(info) => Ok(info.size),
                    None => Err(io::Error::new(io::ErrorKind::NotFound, format!("{key} is neither in the spool nor in the archive"))),
                }
            }
            other => other,
        }
    }

    fn read(&self, key: &str, range: Range<u64>) -> io::Result<Vec<u8>> {
        // The uploader may delete the spool copy between `size` and `read`: then the archive, which
        // held a verified copy before the deletion, answers.
        match self.spool.read(key, range.clone()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.runtime.block_on(fetch_archived(&*self.archive, key, Some(range))),
            other => other,
        }
    }
}

/// The bytes of `key` in the archive (all of them, or `range`, already clipped to the object's size).
/// A missing object is `ErrorKind::NotFound`.
pub async fn fetch_archived(archive: &dyn RecordingStore, key: &str, range: Option<Range<u64>>) -> io::Result<Vec<u8>> {
    let key = object_key(key)?;
    let range = match range {
        // `ByteRange` cannot be empty, and nothing needs to be asked for nothing.
        Some(r) if r.start >= r.end => return Ok(Vec::new()),
        Some(r) => Some(ByteRange { first: r.start, last: r.end - 1 }),
        None => None,
    };
    let mut body = archive.get(&key, range).await.map_err(to_io)?;
    let mut bytes = Vec::with_capacity(range.map_or(0, |r| r.len() as usize));
    body.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// The caller's message as 8 kHz mono, decoded off the media threads and off the paging loop's
/// executor thread; empty (paging goes on without it) when it cannot be read. From `path` in the
/// spool while it is there, else from the archive under its key (`path` relative to `spool_root`).
pub async fn load_message(request: oncall_core::RequestId, path: PathBuf, spool_root: &Path, archive: &dyn RecordingStore) -> Arc<[i16]> {
    let p = path.clone();
    let decoded = if tokio::fs::try_exists(&path).await.unwrap_or(true) {
        tokio::task::spawn_blocking(move || crate::decode_to_8k_mono(&p)).await
    } else {
        let key = path.strip_prefix(spool_root).unwrap_or(&path).to_string_lossy().into_owned();
        let bytes = match fetch_archived(archive, &key, None).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%request, key, error = %e, "message neither in the spool nor in the archive; paging without it");
                return Arc::from(Vec::new());
            }
        };
        tracing::info!(%request, key, bytes = bytes.len(), "message read from the archive (no spool copy)");
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_string);
        tokio::task::spawn_blocking(move || crate::decode_bytes_to_8k_mono(&bytes, ext.as_deref())).await
    };
    match decoded {
        Ok(Ok(samples)) => samples.into(),
        Ok(Err(e)) => {
            tracing::warn!(%request, path = %path.display(), error = %e, "cannot decode the message; paging without it");
            Arc::from(Vec::new())
        }
        Err(e) => {
            tracing::warn!(%request, error = %e, "message decoder failed; paging without it");
            Arc::from(Vec::new())
        }
    }
}

/// A key the archive would refuse (a hand-edited row) is as good as absent.
fn object_key(key: &str) -> io::Result<ObjectKey> {
    ObjectKey::new(key).map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))
}

fn to_io(e: StorageError) -> io::Error {
    match e {
        StorageError::NotFound(_) | StorageError::InvalidKey { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        StorageError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => source,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStore;
    const KEY: &str = "acme/2026/11/t1-message.wav";

    fn data() -> Vec<u8> {
        (0..5000u32).map(|i| (i % 251) as u8).collect()
    }

    /// Spool in one folder, archive in another: the S3 set-up with the local backend standing in.
    async fn setup() -> (tempfile::TempDir, Arc<SpoolThenArchive>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let file = spool.join("acme/2026/11/t1-message.wav");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, data()).unwrap();
        let archive: Arc<dyn RecordingStore> = Arc::new(LocalStore::new(dir.path().join("archive")));
        archive.put(&ObjectKey::new(KEY).unwrap(), &file).await.unwrap();
        (dir, Arc::new(SpoolThenArchive::new(&spool, archive)), file)
    }

    async fn size_and_read(src: &Arc<SpoolThenArchive>, key: &str, range: Range<u64>) -> io::Result<(u64, Vec<u8>)> {
        let (src, key) = (src.clone(), key.to_string());
        tokio::task::spawn_blocking(move || Ok((src.size(&key)?, src.read(&key, range)?))).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_the_archive_once_the_spool_copy_is_gone() {
        let (_dir, src, file) = setup().await;
        let d = data();
        assert_eq!(size_and_read(&src, KEY, 0..5000).await.unwrap(), (5000, d.clone()), "from the spool");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(size_and_read(&src, KEY, 0..5000).await.unwrap(), (5000, d.clone()), "whole, from the archive");
        assert_eq!(size_and_read(&src, KEY, 100..200).await.unwrap().1, d[100..200], "a range from the archive");
        assert_eq!(size_and_read(&src, KEY, 4990..5000).await.unwrap().1, d[4990..], "the tail");
        assert!(size_and_read(&src, KEY, 7..7).await.unwrap().1.is_empty());
        assert_eq!(fetch_archived(&*src.archive, KEY, None).await.unwrap(), d);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_everywhere_and_bad_keys_are_not_found() {
        let (_dir, src, _file) = setup().await;
        for key in ["acme/2026/11/other-message.wav", "../escape.wav", "", "a b.wav"] {
            let e = size_and_read(&src, key, 0..1).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{key:?}: {e}");
        }
        let e = fetch_archived(&*src.archive, "acme/none.wav", None).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    /// Paging replays the caller's message from the archive when the spool copy is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paging_decodes_the_message_from_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let file = spool.join("acme/2026/11/t2-message.wav");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&file, spec).unwrap();
        for i in 0..4000i32 {
            w.write_sample(((i % 80 - 40) * 300) as i16).unwrap();
        }
        w.finalize().unwrap();
        let archive: Arc<dyn RecordingStore> = Arc::new(LocalStore::new(dir.path().join("archive")));
        archive.put(&ObjectKey::new("acme/2026/11/t2-message.wav").unwrap(), &file).await.unwrap();
        let request = oncall_core::RequestId(7);

        let from_spool = load_message(request, file.clone(), &spool, &*archive).await;
        assert_eq!(from_spool.len(), 4000);
        std::fs::remove_file(&file).unwrap();
        let from_archive = load_message(request, file.clone(), &spool, &*archive).await;
        assert_eq!(from_archive, from_spool, "same samples from the archive");
        archive.delete(&ObjectKey::new("acme/2026/11/t2-message.wav").unwrap()).await.unwrap();
        assert!(load_message(request, file, &spool, &*archive).await.is_empty(), "gone everywhere: no message");
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wav"), b"0123456789").unwrap();
        let src = LocalRecordings::new(dir.path());
        assert_eq!(src.size("a.wav").unwrap(), 10);
        assert_eq!(src.read("a.wav", 2..5).unwrap(), b"234");
        for bad in ["../a.wav", "/etc/passwd", "", "x/../../a.wav"] {
            assert_eq!(src.size(bad).unwrap_err().kind(), io::ErrorKind::NotFound, "{bad}");
        }
    }
}
