//! Where recordings are read from, and HTTP Range (RFC 9110 §14) over them.
//!
//! [`RecordingSource`] is the seam for the storage backends (a local folder here; the server
//! plugs in the spool-then-archive source of `src/recording_access.rs`, which reads S3 once the
//! spool copy is gone): it answers "how big is this key" and "give me these bytes".
//! The handler does the HTTP part: one `bytes=a-b` / `a-` / `-n` range answers 206 with
//! `Content-Range`, an unsatisfiable one 416, none 200. Multi-range requests get the whole
//! file (allowed by the RFC), since browsers' audio elements never send them.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

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

/// What a `Range` header asks of a resource of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send everything with 200.
    Full,
    /// One satisfiable range: 206.
    Partial(Range<u64>),
    /// A range beyond the end: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value against `size`.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(h) = header else { return RangeRequest::Full };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix: the last n bytes.
        let Ok(n) = b.parse::<u64>() else { return RangeRequest::Full };
        if n == 0 {
            return RangeRequest::Unsatisfiable;
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(start) = a.parse::<u64>() else { return RangeRequest::Full };
        let end = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                Ok(last) if last >= start => last.saturating_add(1).min(size),
                _ => return RangeRequest::Full,
            }
        };
        if start >= size {
            return RangeRequest::Unsatisfiable;
        }
        start..end
    };
    if range.start >= range.end {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-"), 100), RangeRequest::Partial(0..100));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), RangeRequest::Partial(10..20));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), RangeRequest::Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), RangeRequest::Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), RangeRequest::Partial(0..100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), RangeRequest::Full);
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
