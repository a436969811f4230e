//! `oncall recordings verify`: checks that every recording in the database has its copy (the archived object of
//! the right size, or, while the upload is pending, the spool file) and lists objects no recording refers to.
//! Read-only: it reports and never deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use oncall_core::{OrgId, RecordingId, Store};

use crate::storage::{ObjectKey, RecordingStore};
use crate::uploader::UploadError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRecording {
    pub org: OrgId,
    pub recording: RecordingId,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Recording rows checked.
    pub checked: usize,
    /// Archived, with an object of the recorded size.
    pub archived: usize,
    /// Waiting in the spool for upload (file present).
    pub pending: usize,
    pub missing: Vec<MissingRecording>,
    /// Objects in the archive that no recording refers to.
    pub orphaned: Vec<ObjectKey>,
}

impl VerifyReport {
    /// True when nothing is missing or orphaned (the CLI exits non-zero otherwise).
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.orphaned.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.missing {
            writeln!(f, "MISSING  {} {} {}: {}", m.org, m.recording, m.key, m.reason)?;
        }
        for o in &self.orphaned {
            writeln!(f, "ORPHANED {o}")?;
        }
        writeln!(
            f,
            "{} recordings checked: {} archived, {} pending upload, {} missing; {} orphaned objects",
            self.checked,
            self.archived,
            self.pending,
            self.missing.len(),
            self.orphaned.len()
        )
    }
}

/// Checks the database against `archive` and the spool folder.
pub async fn verify(db: &Store, archive: &dyn RecordingStore, spool_dir: &Path) -> Result<VerifyReport, UploadError> {
    let objects: BTreeMap<ObjectKey, u64> = archive.list("").await?.into_iter().map(|o| (o.key, o.size)).collect();
    let mut referenced = BTreeSet::new();
    let mut report = VerifyReport::default();
    let mut after = RecordingId(0);
    loop {
        let page = db.recordings_after(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for r in page {
            report.checked += 1;
            let missing = |reason: String, key: &str| MissingRecording { org: r.org, recording: r.id, key: key.to_string(), reason };
            if let Ok(k) = ObjectKey::new(r.storage_key.clone()) {
                referenced.insert(k);
            }
            match &r.upload {
                Some(u) => {
                    let Ok(key) = ObjectKey::new(u.object_key.clone()) else {
                        report.missing.push(missing("invalid object key".into(), &u.object_key));
                        continue;
                    };
                    match objects.get(&key) {
                        Some(&size) if size as i64 == u.size_bytes => report.archived += 1,
                        Some(&size) => report.missing.push(missing(format!("object has {size} bytes, expected {}", u.size_bytes), &u.object_key)),
                        None => report.missing.push(missing(format!("no such object in the {} archive", archive.backend_name()), &u.object_key)),
                    }
                    referenced.insert(key);
                }
                None => {
                    let present = ObjectKey::new(r.storage_key.clone())
                        .map(|k| spool_dir.join(k.as_str()).is_file())
                        .unwrap_or(false);
                    if present {
                        report.pending += 1;
                    } else {
                        report.missing.push(missing("upload pending but the spool file is gone".into(), &r.storage_key));
                    }
                }
            }
        }
    }
    report.orphaned = objects.into_keys().filter(|k| !referenced.contains(k)).collect();
    Ok(report)
}
