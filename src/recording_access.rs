//! Reading a recording wherever it is now: the local spool folder while the file is there, the archive
//! (`[storage]`, S3 or a local folder) once the uploader has deleted the spool copy (`keep_spool = false`),
//! or when another instance of a cluster recorded it.
//!
//! [`SpoolThenArchive`] is the admin site's [`RecordingSource`] (playback and download on the request
//! page); [`fetch_archived`] is what the paging task uses to replay a caller's message it has no local
//! file for. Keys are the database's `storage_key`, which is also the archive's object key (the uploader
//! archives under it). Not here: who may read a recording (the web layer checks), presigned redirects.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use oncall_recordings::storage::{ByteRange, ObjectKey, RecordingStore, StorageError};
use oncall_web::{LocalRecordings, RecordingSource};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

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
    use oncall_recordings::storage::LocalStore;
    use std::path::PathBuf;

    /// A fresh folder under the system temp dir, removed on drop (the binary has no `tempfile`).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("oncall-recording-access-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const KEY: &str = "acme/2026/11/t1-message.wav";

    fn data() -> Vec<u8> {
        (0..5000u32).map(|i| (i % 251) as u8).collect()
    }

    /// Spool in one folder, archive in another: the S3 set-up with the local backend standing in.
    async fn setup(name: &str) -> (Scratch, Arc<SpoolThenArchive>, PathBuf) {
        let dir = Scratch::new(name);
        let spool = dir.0.join("spool");
        let file = spool.join("acme/2026/11/t1-message.wav");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, data()).unwrap();
        let archive: Arc<dyn RecordingStore> = Arc::new(LocalStore::new(dir.0.join("archive")));
        archive.put(&ObjectKey::new(KEY).unwrap(), &file).await.unwrap();
        (dir, Arc::new(SpoolThenArchive::new(&spool, archive)), file)
    }

    async fn size_and_read(src: &Arc<SpoolThenArchive>, key: &str, range: Range<u64>) -> io::Result<(u64, Vec<u8>)> {
        let (src, key) = (src.clone(), key.to_string());
        tokio::task::spawn_blocking(move || Ok((src.size(&key)?, src.read(&key, range)?))).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_the_archive_once_the_spool_copy_is_gone() {
        let (_dir, src, file) = setup("fallback").await;
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
        let (_dir, src, _file) = setup("missing").await;
        for key in ["acme/2026/11/other-message.wav", "../escape.wav", "", "a b.wav"] {
            let e = size_and_read(&src, key, 0..1).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{key:?}: {e}");
        }
        let e = fetch_archived(&*src.archive, "acme/none.wav", None).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    /// The paging task replays the caller's message from the archive when the spool copy is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paging_decodes_the_message_from_the_archive() {
        let dir = Scratch::new("paging");
        let spool = dir.0.join("spool");
        let file = spool.join("acme/2026/11/t2-message.wav");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&file, spec).unwrap();
        for i in 0..4000i32 {
            w.write_sample(((i % 80 - 40) * 300) as i16).unwrap();
        }
        w.finalize().unwrap();
        let archive: Arc<dyn RecordingStore> = Arc::new(LocalStore::new(dir.0.join("archive")));
        archive.put(&ObjectKey::new("acme/2026/11/t2-message.wav").unwrap(), &file).await.unwrap();
        let request = oncall_core::RequestId(7);

        let from_spool = crate::paging::load_message(request, file.clone(), &spool, &*archive).await;
        assert_eq!(from_spool.len(), 4000);
        std::fs::remove_file(&file).unwrap();
        let from_archive = crate::paging::load_message(request, file.clone(), &spool, &*archive).await;
        assert_eq!(from_archive, from_spool, "same samples from the archive");
        archive.delete(&ObjectKey::new("acme/2026/11/t2-message.wav").unwrap()).await.unwrap();
        assert!(crate::paging::load_message(request, file, &spool, &*archive).await.is_empty(), "gone everywhere: no message");
    }
}
