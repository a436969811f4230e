//! The storage layer's error: bad keys, missing objects, local I/O, failed verification, backend and
//! configuration trouble. Its own module, below `storage/mod.rs` like `digest`, so the parent keeps
//! the store interface and only re-exports the modules beneath it (`settings` among them), which
//! in turn import from it: the dependency points one way.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

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
