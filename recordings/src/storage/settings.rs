//! The archive part of the `[storage]` configuration, as the binary's config file spells it, and
//! [`ArchiveSettings::open`], which turns it into a store. The binary embeds these structs in its own config (so
//! one file, one set of env overrides) and calls `validate` at start-up; messages name the key.
//!
//! ```toml
//! [storage]
//! backend = "s3"          # "local" (default) or "s3"
//! keep_spool = false      # keep the local copy after a verified upload
//! retention_days = 365    # default: keep forever
//! presign_secs = 300      # S3 only: playback redirects to a presigned URL valid this long (0 or unset: stream)
//! [storage.retention_by_org]
//! acme = 90
//! [storage.s3]
//! bucket = "oncall-recordings"
//! prefix = "recordings/"
//! region = "eu-central-1"
//! endpoint = "http://127.0.0.1:9000"   # S3-compatible servers
//! path_style = true
//! access_key_id = "..."                # else the standard AWS credential chain
//! secret_access_key = "..."
//! sse = "AES256"                       # or "aws:kms" / "aws:kms:<key-id>"
//! multipart_threshold_mb = 16
//! part_size_mb = 8
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::local::LocalStore;
use super::{RecordingStore, StorageError};
use crate::uploader::RetentionPolicy;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Local,
    S3,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveSettings {
    pub backend: Backend,
    pub keep_spool: bool,
    pub retention_days: Option<u32>,
    pub retention_by_org: BTreeMap<String, u32>,
    pub presign_secs: Option<u64>,
    pub s3: Option<S3Settings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub sse: Option<String>,
    #[serde(default = "default_threshold_mb")]
    pub multipart_threshold_mb: u64,
    #[serde(default = "default_part_mb")]
    pub part_size_mb: u64,
}

fn default_threshold_mb() -> u64 {
    16
}

fn default_part_mb() -> u64 {
    8
}

impl ArchiveSettings {
    /// Checks the settings without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |m: &str| Err(StorageError::Config(m.to_string()));
        if self.retention_days == Some(0) || self.retention_by_org.values().any(|&d| d == 0) {
            return bad("storage.retention_days must be at least 1 (leave it unset to keep recordings forever)");
        }
        if let Some(p) = self.presign_secs {
            if p > 7 * 24 * 3600 {
                return bad("storage.presign_secs must be at most 604800 (7 days, the S3 maximum)");
            }
        }
        match (self.backend, &self.s3) {
            (Backend::S3, None) => bad("storage.backend = \"s3\" needs a [storage.s3] section with a bucket"),
            (_, Some(s3)) => {
                if s3.bucket.trim().is_empty() {
                    return bad("storage.s3.bucket must not be empty");
                }
                if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                    return bad("storage.s3.access_key_id and storage.s3.secret_access_key must be set together");
                }
                if s3.part_size_mb < 5 {
                    return bad("storage.s3.part_size_mb must be at least 5 (the S3 minimum)");
                }
                if s3.multipart_threshold_mb == 0 {
                    return bad("storage.s3.multipart_threshold_mb must be at least 1");
                }
                if let Some(sse) = &s3.sse {
                    if sse != "AES256" && sse != "aws:kms" && !sse.starts_with("aws:kms:") {
                        return bad("storage.s3.sse must be \"AES256\", \"aws:kms\" or \"aws:kms:<key-id>\"");
                    }
                }
                if let Some(e) = &s3.endpoint {
                    if !e.starts_with("http://") && !e.starts_with("https://") {
                        return bad("storage.s3.endpoint must start with http:// or https://");
                    }
                }
                Ok(())
            }
            (Backend::Local, None) => Ok(()),
        }
    }

    pub fn retention(&self) -> RetentionPolicy {
        RetentionPolicy { default_days: self.retention_days, per_org: self.retention_by_org.clone() }
    }

    /// The presign TTL for playback redirects, if enabled and the backend can presign.
    pub fn presign_ttl(&self) -> Option<Duration> {
        match (self.backend, self.presign_secs) {
            (Backend::S3, Some(s)) if s > 0 => Some(Duration::from_secs(s)),
            _ => None,
        }
    }

    /// The configured archive; `recordings_dir` is the local folder (and always the spool).
    pub async fn open(&self, recordings_dir: &Path) -> Result<Arc<dyn RecordingStore>, StorageError> {
        self.validate()?;
        match self.backend {
            Backend::Local => Ok(Arc::new(LocalStore::new(recordings_dir))),
            Backend::S3 => self.open_s3().await,
        }
    }

    /// The S3 store of `[storage.s3]` whatever `backend` says (for `oncall recordings migrate --to s3`).
    #[cfg(feature = "s3")]
    pub async fn open_s3(&self) -> Result<Arc<dyn RecordingStore>, StorageError> {
        use super::s3::{S3Config, S3Store, Sse};
        let Some(s) = &self.s3 else {
            return Err(StorageError::Config("no [storage.s3] section".into()));
        };
        let sse = s.sse.as_deref().map(|v| match v {
            "AES256" => Sse::S3Managed,
            "aws:kms" => Sse::Kms(None),
            other => Sse::Kms(other.strip_prefix("aws:kms:").map(str::to_string)),
        });
        let cfg = S3Config {
            bucket: s.bucket.clone(),
            prefix: s.prefix.clone(),
            region: s.region.clone(),
            endpoint: s.endpoint.clone(),
            path_style: s.path_style,
            access_key_id: s.access_key_id.clone(),
            secret_access_key: s.secret_access_key.clone(),
            sse,
            multipart_threshold: s.multipart_threshold_mb * 1024 * 1024,
            part_size: s.part_size_mb * 1024 * 1024,
        };
        Ok(Arc::new(S3Store::connect(cfg).await?))
    }

    #[cfg(not(feature = "s3"))]
    pub async fn open_s3(&self) -> Result<Arc<dyn RecordingStore>, StorageError> {
        Err(StorageError::Config("this build has no S3 support (cargo feature `s3`)".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let mut a = ArchiveSettings::default();
        assert!(a.validate().is_ok());
        a.backend = Backend::S3;
        assert!(a.validate().unwrap_err().to_string().contains("[storage.s3]"));
        a.s3 = Some(S3Settings {
            bucket: "b".into(),
            prefix: String::new(),
            region: None,
            endpoint: Some("127.0.0.1:9000".into()),
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            sse: None,
            multipart_threshold_mb: 16,
            part_size_mb: 8,
        });
        assert!(a.validate().unwrap_err().to_string().contains("storage.s3.endpoint"));
        a.s3.as_mut().unwrap().endpoint = Some("http://127.0.0.1:9000".into());
        assert!(a.validate().is_ok());
        a.s3.as_mut().unwrap().sse = Some("rot13".into());
        assert!(a.validate().unwrap_err().to_string().contains("storage.s3.sse"));
        a.s3.as_mut().unwrap().sse = Some("aws:kms:key-1".into());
        a.retention_days = Some(0);
        assert!(a.validate().unwrap_err().to_string().contains("storage.retention_days"));
        a.retention_days = Some(30);
        a.presign_secs = Some(300);
        assert!(a.validate().is_ok());
        assert_eq!(a.presign_ttl(), Some(Duration::from_secs(300)));
        assert_eq!(a.retention().days_for("x"), Some(30));
    }
}
