//! The local-folder backend: `<root>/<key>`, the embedded default (`./data/recordings`).
//!
//! A `put` from elsewhere copies to a hidden temporary name beside the target, syncs it, checks its SHA-256 against
//! the source and only then renames it into place, so a reader never sees half a file and a crash leaves at most a
//! `.*.part` file that listings skip. A `put` of the file that already is `<root>/<key>` (the spool folder and the
//! archive being the same, as in the default set-up) only checksums it. No presigned URLs: the web layer streams.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::digest::sha256_of_file;
use super::{Body, ByteRange, ObjectInfo, ObjectKey, PutOutcome, RecordingStore, StorageError, StoreFuture};

/// Recordings in a folder on this machine.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.as_str().split('/'));
        p
    }

    fn put_blocking(&self, key: &ObjectKey, local: &Path) -> Result<PutOutcome, StorageError> {
        let target = self.path_of(key);
        let (size, sha256) = sha256_of_file(local)?;
        if same_file(local, &target) {
            return Ok(PutOutcome { key: key.clone(), size, sha256, already_present: true });
        }
        let dir = target.parent().expect("a key has at least one segment, so the target has a parent");
        crate::private_files::create_dir_all(dir).map_err(StorageError::io(dir))?;
        let name = target.file_name().expect("keys end in a file name").to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.part", std::process::id()));
        let copy = || -> std::io::Result<()> {
            let mut from = std::fs::File::open(local)?;
            let mut to = crate::private_files::create(&temp)?;
            std::io::copy(&mut from, &mut to)?;
            to.sync_all()
        };
        if let Err(e) = copy() {
            let _ = std::fs::remove_file(&temp);
            return Err(StorageError::Io { path: temp, source: e });
        }
        let (_, copied) = sha256_of_file(&temp)?;
        if copied != sha256 {
            let _ = std::fs::remove_file(&temp);
            return Err(StorageError::Integrity { key: key.to_string(), detail: "copy differs from the source".into() });
        }
        std::fs::rename(&temp, &target).map_err(StorageError::io(&target))?;
        Ok(PutOutcome { key: key.clone(), size, sha256, already_present: false })
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::Io { path: dir, source: e }),
            };
            for entry in entries {
                let entry = entry.map_err(StorageError::io(&dir))?;
                let ty = entry.file_type().map_err(StorageError::io(entry.path()))?;
                let path = entry.path();
                if ty.is_dir() {
                    stack.push(path);
                } else if ty.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                    // Files whose names are not valid keys are not recordings (notes, stray files): skip them.
                    let Ok(key) = ObjectKey::from_path(&self.root, &path) else { continue };
                    if key.as_str().starts_with(prefix) {
                        let size = entry.metadata().map_err(StorageError::io(&path))?.len();
                        out.push(ObjectInfo { key, size, sha256: None });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StorageError> + Send + 'static) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Backend(format!("file task failed: {e}")))?
}

impl RecordingStore for LocalStore {
    fn backend_name(&self) -> &'static str {
        "local"
    }

    fn put<'a>(&'a self, key: &'a ObjectKey, local: &'a Path) -> StoreFuture<'a, PutOutcome> {
        let (this, key, local) = (self.clone(), key.clone(), local.to_path_buf());
        Box::pin(blocking(move || this.put_blocking(&key, &local)))
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectInfo>> {
        Box::pin(async move {
            let path = self.path_of(key);
            match tokio::fs::metadata(&path).await {
                Ok(m) if m.is_file() => Ok(Some(ObjectInfo { key: key.clone(), size: m.len(), sha256: None })),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StorageError::Io { path, source: e }),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a ObjectKey, range: Option<ByteRange>) -> StoreFuture<'a, Body> {
        Box::pin(async move {
            let path = self.path_of(key);
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound(key.to_string())),
                Err(e) => return Err(StorageError::Io { path, source: e }),
            };
            match range {
                None => Ok(Box::pin(file) as Body),
                Some(r) => {
                    file.seek(SeekFrom::Start(r.first)).await.map_err(StorageError::io(&path))?;
                    Ok(Box::pin(file.take(r.len())) as Body)
                }
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path_of(key);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StorageError::Io { path, source: e }),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectInfo>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        Box::pin(blocking(move || this.list_blocking(&prefix)))
    }

    fn presign_get<'a>(&'a self, _key: &'a ObjectKey, _ttl: Duration) -> StoreFuture<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }

    fn local_path(&self, key: &ObjectKey) -> Option<PathBuf> {
        Some(self.path_of(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::open_for_playback;

    async fn read_all(mut body: Body) -> Vec<u8> {
        let mut v = Vec::new();
        body.read_to_end(&mut v).await.unwrap();
        v
    }

    #[tokio::test]
    async fn put_get_range_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("archive"));
        let src = dir.path().join("spool.wav");
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let key = ObjectKey::new("acme/2024/06/t1-message.wav").unwrap();

        let out = store.put(&key, &src).await.unwrap();
        assert_eq!((out.size, out.already_present), (5000, false));
        // Putting the archived file onto itself only verifies it.
        let again = store.put(&key, &store.local_path(&key).unwrap()).await.unwrap();
        assert!(again.already_present);
        assert_eq!(again.sha256, out.sha256);

        let p = open_for_playback(&store, &key, Some("bytes=100-199")).await.unwrap();
        assert_eq!((p.head.status, p.head.content_length), (206, 100));
        assert_eq!(read_all(p.body.unwrap()).await, &data[100..200]);
        let p = open_for_playback(&store, &key, None).await.unwrap();
        assert_eq!(read_all(p.body.unwrap()).await, data);
        let p = open_for_playback(&store, &key, Some("bytes=9000-")).await.unwrap();
        assert_eq!(p.head.status, 416);

        std::fs::write(dir.path().join("archive/acme/2024/06/.x.part"), b"temp").unwrap();
        let listed = store.list("acme/").await.unwrap();
        assert_eq!(listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["acme/2024/06/t1-message.wav"]);
        assert!(store.list("other/").await.unwrap().is_empty());

        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(store.head(&key).await.unwrap().is_none());
        assert!(matches!(open_for_playback(&store, &key, None).await, Err(StorageError::NotFound(_))));
    }
}
