//! The background uploader: the thin tokio task around [`crate::spool::UploadQueue`] that moves finished recordings
//! from the local spool folder to the archive, records each verified copy in the database, deletes the spool copy
//! (unless `keep_spool`), and applies retention.
//!
//! Calls always record to the spool (the recordings folder); nothing on the call path waits for the archive. The
//! database is the queue's source of truth: every recording row without `uploaded_at` is a job, so a job survives
//! restarts by construction, and [`start`] first repairs partial WAVs left by a crash and registers recordings the
//! database never heard of (the process died mid-call), then resumes. A failed upload is retried with exponential
//! backoff forever; the spool copy is only deleted after the archive holds a verified copy *and* the database says
//! so. Uploads are idempotent (same key, same bytes), so a retry after a crash between those steps duplicates
//! nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use oncall_core::request::NewRecording;
use oncall_core::store::recording_uploads::{StoredRecording, UploadRecord};
use oncall_core::{OrgId, RecordingId, RecordingKind, Store, StoreError, Timestamp};
use thiserror::Error;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::levels::LevelMeter;
use crate::spool::{plan_recovery, scan_spool, RecoveryAction, RetryPolicy, SpoolFile, UploadJob, UploadQueue};
use crate::storage::{ObjectKey, RecordingStore, StorageError};

#[derive(Debug, Error)]
pub enum UploadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("spool folder {path}: {source}")]
    Spool { path: PathBuf, source: std::io::Error },
    #[error("reading {path}: {detail}")]
    Wav { path: PathBuf, detail: String },
}

/// Days to keep recordings, per organization slug, with a default; `None` keeps them forever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub default_days: Option<u32>,
    pub per_org: BTreeMap<String, u32>,
}

impl RetentionPolicy {
    pub fn days_for(&self, org_slug: &str) -> Option<u32> {
        self.per_org.get(org_slug).copied().or(self.default_days)
    }
}

#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// Where calls record (the recordings folder).
    pub spool_dir: PathBuf,
    /// Keep the spool copy after a verified upload.
    pub keep_spool: bool,
    pub retry: RetryPolicy,
    /// How often the database is asked for new pending recordings (a [`Uploader::notify`] asks at once).
    pub poll_interval: Duration,
    /// Uploads running at once.
    pub max_in_flight: usize,
    pub retention: RetentionPolicy,
    /// How often retention runs (first run one interval after start).
    pub retention_interval: Duration,
}

impl UploaderConfig {
    pub fn new(spool_dir: impl Into<PathBuf>) -> UploaderConfig {
        UploaderConfig {
            spool_dir: spool_dir.into(),
            keep_spool: false,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(5),
            max_in_flight: 2,
            retention: RetentionPolicy::default(),
            retention_interval: Duration::from_secs(6 * 3600),
        }
    }
}

/// What start-up recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAV files whose header was rewritten.
    pub repaired: Vec<PathBuf>,
    /// Files with no database row, registered as recordings without a request.
    pub registered: Vec<(OrgId, RecordingId, String)>,
    /// Spool copies of archived recordings deleted.
    pub cleaned: usize,
    /// Files left alone (unknown organization, unreadable); see the log.
    pub skipped: Vec<PathBuf>,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub uploaded: AtomicU64,
    pub failures: AtomicU64,
    pub lost: AtomicU64,
}

/// The running uploader. Dropping it leaves the task running; call [`Uploader::shutdown`] to stop it.
#[derive(Debug)]
pub struct Uploader {
    notify: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<UploadStats>,
    pub recovery: RecoveryReport,
}

impl Uploader {
    /// Looks for new pending recordings now (call after adding a recording row; otherwise they are found within
    /// `poll_interval`).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    pub fn stats(&self) -> &UploadStats {
        &self.stats
    }

    /// Stops the task. Uploads in flight are cancelled; their files stay in the spool and go up after restart.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Repairs and scans the spool, then starts the background task. Call before calls are accepted (recovery assumes
/// no recording is being written).
pub async fn start(db: Store, archive: Arc<dyn RecordingStore>, cfg: UploaderConfig) -> Result<Uploader, UploadError> {
    let recovery = recover(&db, &*archive, &cfg).await?;
    let notify = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let stats = Arc::new(UploadStats::default());
    let task = tokio::spawn(run(db, archive, cfg, notify.clone(), shutdown_rx, stats.clone()));
    Ok(Uploader { notify, shutdown, task, stats, recovery })
}

/// Start-up: repair partial WAVs, register unknown ones, clean spool copies of archived recordings.
pub async fn recover(db: &Store, archive: &dyn RecordingStore, cfg: &UploaderConfig) -> Result<RecoveryReport, UploadError> {
    let mut report = RecoveryReport::default();
    let root = cfg.spool_dir.clone();
    let (repairs, files) = tokio::task::spawn_blocking(move || {
        let repairs = crate::repair::repair_dir(&root);
        (repairs, scan_spool(&root).map_err(|source| UploadError::Spool { path: root, source }))
    })
    .await
    .map_err(|e| UploadError::Spool { path: cfg.spool_dir.clone(), source: std::io::Error::other(e) })?;
    for (path, outcome) in repairs {
        match outcome {
            Ok(crate::RepairOutcome::Repaired { old_data_len, new_data_len }) => {
                tracing::warn!(path = %path.display(), old_data_len, new_data_len, "repaired a recording cut short by a crash");
                report.repaired.push(path);
            }
            Ok(crate::RepairOutcome::AlreadyValid) => {}
            Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot repair recording; it is uploaded as it is"),
        }
    }
    let files = files?;
    let mut rows: HashMap<ObjectKey, Vec<StoredRecording>> = HashMap::new();
    for f in &files {
        rows.insert(f.key.clone(), db.recordings_by_storage_key(f.key.as_str()).await?);
    }
    for action in plan_recovery(files, |k| rows.get(k).cloned().unwrap_or_default()) {
        match action {
            // Pending rows are picked up from the database by the task.
            RecoveryAction::Upload(_) => {}
            RecoveryAction::AlreadyArchived { file, .. } => {
                if cfg.keep_spool || is_archive_copy(archive, &file.key, &file.path) {
                    continue;
                }
                let size = tokio::fs::metadata(&file.path).await.map(|m| m.len()).ok();
                match archive.head(&file.key).await {
                    Ok(Some(info)) if Some(info.size) == size => {
                        remove_spool_file(&file.path).await;
                        report.cleaned += 1;
                    }
                    // The archive does not hold it (a different backend than the row was archived to, or lost):
                    // keep the file; `oncall recordings migrate` or `verify` sorts it out.
                    Ok(_) => tracing::warn!(key = %file.key, "recording marked archived but the archive has no matching copy; keeping the spool file"),
                    Err(e) => tracing::warn!(key = %file.key, error = %e, "cannot check the archive; keeping the spool file"),
                }
            }
            RecoveryAction::Register(file) => match register(db, &file).await {
                Ok(Some((org, id))) => {
                    tracing::warn!(key = %file.key, recording = %id, "registered a recording left by a crash");
                    report.registered.push((org, id, file.key.to_string()));
                }
                Ok(None) => report.skipped.push(file.path),
                Err(e) => {
                    tracing::error!(key = %file.key, error = %e, "cannot register recording left by a crash");
                    report.skipped.push(file.path);
                }
            },
        }
    }
    Ok(report)
}

/// Adds a row (no request) for a spool file the database does not know.
async fn register(db: &Store, file: &SpoolFile) -> Result<Option<(OrgId, RecordingId)>, UploadError> {
    let Some(org) = db.organization_by_slug(file.key.org_slug()).await? else {
        tracing::error!(key = %file.key, "recording of an unknown organization; left in the spool");
        return Ok(None);
    };
    let path = file.path.clone();
    let (duration_ms, peak, rms, modified) = tokio::task::spawn_blocking(move || measure_wav(&path))
        .await
        .map_err(|e| UploadError::Wav { path: file.path.clone(), detail: e.to_string() })??;
    let new = NewRecording {
        request: None,
        // The `-<kind>.wav` end of the name; a name without a known kind is taken for a message.
        kind: file.key.kind().and_then(|k| k.parse().ok()).unwrap_or(RecordingKind::Message),
        storage_key: file.key.to_string(),
        duration_ms: duration_ms as i64,
        peak: f64::from(peak),
        rms: f64::from(rms),
        created_at: modified,
    };
    let id = db.add_recording(org.id, &new).await?;
    Ok(Some((org.id, id)))
}

/// Duration, peak and RMS of a 16-bit WAV, and its modification time.
pub fn measure_wav(path: &Path) -> Result<(u64, f32, f32, Timestamp), UploadError> {
    let wav_err = |e: hound::Error| UploadError::Wav { path: path.to_path_buf(), detail: e.to_string() };
    let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
    let spec = reader.spec();
    let mut meter = LevelMeter::new();
    let mut buf = Vec::with_capacity(4096);
    for s in reader.samples::<i16>() {
        buf.push(s.map_err(wav_err)?);
        if buf.len() == buf.capacity() {
            meter.update(&buf);
            buf.clear();
        }
    }
    meter.update(&buf);
    let frames = meter.samples() / u64::from(spec.channels.max(1));
    let duration_ms = frames * 1000 / u64::from(spec.sample_rate.max(1));
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or_else(Timestamp::now, |d| Timestamp(d.as_millis() as i64));
    Ok((duration_ms, meter.peak(), meter.rms(), modified))
}

fn is_archive_copy(archive: &dyn RecordingStore, key: &ObjectKey, spool_path: &Path) -> bool {
    archive.local_path(key).is_some_and(|p| match (p.canonicalize(), spool_path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => p == spool_path,
    })
}

async fn remove_spool_file(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot delete the spool copy"),
    }
}

enum JobOutcome {
    Archived,
    /// Neither the spool file nor an archived copy exists, or the row was deleted (retention) meanwhile.
    Gone,
}

/// One attempt at one job.
async fn upload_one(db: &Store, archive: &dyn RecordingStore, job: &UploadJob, keep_spool: bool) -> Result<JobOutcome, UploadError> {
    let local_exists = tokio::fs::metadata(&job.path).await.is_ok();
    let record = if local_exists {
        let put = archive.put(&job.key, &job.path).await?;
        UploadRecord { object_key: job.key.to_string(), sha256: put.sha256, size_bytes: put.size as i64, uploaded_at: Timestamp::now() }
    } else {
        // Deleted after a verified upload whose database update was lost? Then the archive has it.
        match archive.head(&job.key).await? {
            Some(info) => UploadRecord {
                object_key: job.key.to_string(),
                sha256: info.sha256.unwrap_or_default(),
                size_bytes: info.size as i64,
                uploaded_at: Timestamp::now(),
            },
            None => return Ok(JobOutcome::Gone),
        }
    };
    match db.mark_uploaded(job.org, job.recording, &record).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            // Retention deleted the row while we uploaded: the copy must go too.
            if !is_archive_copy(archive, &job.key, &job.path) {
                archive.delete(&job.key).await?;
            }
            return Ok(JobOutcome::Gone);
        }
        Err(e) => return Err(e.into()),
    }
    if local_exists && !keep_spool && !is_archive_copy(archive, &job.key, &job.path) {
        remove_spool_file(&job.path).await;
    }
    Ok(JobOutcome::Archived)
}

async fn run(
    db: Store,
    archive: Arc<dyn RecordingStore>,
    cfg: UploaderConfig,
    notify: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<UploadStats>,
) {
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut queue = UploadQueue::new(cfg.retry, cfg.max_in_flight, seed);
    let mut tasks: JoinSet<(RecordingId, Result<JobOutcome, UploadError>)> = JoinSet::new();
    // Task id → recording, so a panicking upload still returns its job to the queue.
    let mut running: HashMap<tokio::task::Id, RecordingId> = HashMap::new();
    // Pending rows with no file here and no archived copy: lost, or spooled by another instance sharing the
    // database. Not retried until restart (`verify` reports them).
    let mut not_here: HashSet<RecordingId> = HashSet::new();
    let mut poll = tokio::time::interval(cfg.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention = tokio::time::interval_at(tokio::time::Instant::now() + cfg.retention_interval, cfg.retention_interval);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refill = true;
    loop {
        if refill {
            refill = false;
            match db.pending_uploads(1000).await {
                Ok(rows) => {
                    for r in rows {
                        if queue.contains(r.id) || not_here.contains(&r.id) {
                            continue;
                        }
                        let job = ObjectKey::new(r.storage_key.clone()).map(|key| UploadJob {
                            org: r.org,
                            recording: r.id,
                            path: cfg.spool_dir.join(key.as_str()),
                            key,
                        });
                        match job {
                            Ok(job) => {
                                queue.enqueue(job, Instant::now());
                            }
                            Err(e) => tracing::error!(recording = %r.id, error = %e, "recording has an unusable storage key"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read pending uploads; retrying"),
            }
        }
        while let Some(job) = queue.poll_start(Instant::now()) {
            let (db, archive, keep) = (db.clone(), archive.clone(), cfg.keep_spool);
            let id = job.recording;
            let handle = tasks.spawn(async move {
                let result = upload_one(&db, &*archive, &job, keep).await;
                (job.recording, result)
            });
            running.insert(handle.id(), id);
        }
        let wake = queue.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            done = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (task, id, result) = match done {
                    Some(Ok((task, (id, result)))) => (task, id, result),
                    Some(Err(e)) => {
                        let id = running.get(&e.id()).copied();
                        running.remove(&e.id());
                        if let Some(id) = id {
                            tracing::error!(recording = %id, error = %e, "upload task failed");
                            queue.handle_failure(id, Instant::now());
                        }
                        continue;
                    }
                    None => continue,
                };
                running.remove(&task);
                match result {
                    Ok(JobOutcome::Archived) => {
                        stats.uploaded.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(recording = %id, "recording archived");
                        queue.handle_success(id);
                    }
                    Ok(JobOutcome::Gone) => {
                        stats.lost.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(recording = %id, "recording has neither a spool file here nor an archived copy");
                        not_here.insert(id);
                        queue.handle_abandoned(id);
                    }
                    Err(e) => {
                        stats.failures.fetch_add(1, Ordering::Relaxed);
                        let delay = queue.handle_failure(id, Instant::now());
                        tracing::warn!(recording = %id, error = %e, retry_in = ?delay, "upload failed; will retry");
                    }
                }
            }
            _ = sleep_until(wake) => {}
            _ = notify.notified() => refill = true,
            _ = poll.tick() => refill = true,
            _ = retention.tick() => {
                if let Err(e) = apply_retention(&db, &*archive, &cfg.spool_dir, &cfg.retention, Timestamp::now()).await {
                    tracing::error!(error = %e, "retention run failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    tasks.shutdown().await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Deletes every recording older than its organization's retention (archive copy, spool copy, row), each logged in
/// its request's event log. Returns how many were deleted.
pub async fn apply_retention(
    db: &Store,
    archive: &dyn RecordingStore,
    spool_dir: &Path,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Result<usize, UploadError> {
    let mut deleted = 0;
    for org in db.list_organizations().await? {
        let Some(days) = policy.days_for(&org.slug) else { continue };
        let cutoff = Timestamp(now.0 - i64::from(days) * 86_400_000);
        loop {
            let old = db.recordings_older_than(org.id, cutoff, 200).await?;
            if old.is_empty() {
                break;
            }
            for r in old {
                let key = r.upload.as_ref().map_or(r.storage_key.as_str(), |u| u.object_key.as_str());
                if let Ok(key) = ObjectKey::new(key) {
                    archive.delete(&key).await?;
                }
                if let Ok(key) = ObjectKey::new(r.storage_key.clone()) {
                    remove_spool_file(&spool_dir.join(key.as_str())).await;
                }
                let detail = format!("{} {} deleted: older than the {days}-day retention", r.kind, r.id);
                db.delete_recording_row(r.org, r.id, now, &detail).await?;
                tracing::info!(org = %org.slug, recording = %r.id, days, "recording deleted by retention");
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}
