//! Checksums of a local file, which every `put` compares with what the backend holds before it
//! reports success: SHA-256 (what the database and the local store keep), the MD5 ETag of a
//! single-part S3 upload, and the ETag S3 builds for a multipart one.

use std::io::Read;
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

use super::error::StorageError;

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
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut part = Md5::new();
        let mut in_part = 0u64;
        let mut part_md5s = Vec::new();
        let size = read_chunks(path, |mut chunk| {
            sha.update(chunk);
            md5.update(chunk);
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
        })?;
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

/// The size and SHA-256 of `path` alone (blocking): what the local store keeps. MD5 in software costs several
/// times SHA-256 with the CPU's SHA instructions, and only S3's ETags need it.
pub fn sha256_of_file(path: &Path) -> Result<(u64, String), StorageError> {
    let mut sha = Sha256::new();
    let size = read_chunks(path, |chunk| sha.update(chunk))?;
    Ok((size, hex(&sha.finalize())))
}

/// Hands `path`'s bytes to `f` in order, a buffer at a time; returns how many there were.
fn read_chunks(path: &Path, mut f: impl FnMut(&[u8])) -> Result<u64, StorageError> {
    let mut file = std::fs::File::open(path).map_err(StorageError::io(path))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(StorageError::io(path))?;
        if n == 0 {
            return Ok(size);
        }
        f(&buf[..n]);
        size += n as u64;
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
        assert_eq!(sha256_of_file(&path).unwrap(), (1000, d.sha256_hex()));
    }
}
