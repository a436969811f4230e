//! The upload queue as a sans-IO state machine, and the start-up scan of the spool folder.
//!
//! [`UploadQueue`] holds the recordings waiting to go to the archive, with attempt counts and next-try instants.
//! The driver ([`crate::uploader`]) feeds it `enqueue(job, now)`, asks `poll_start(now)` for the next job due, reports
//! `handle_success` / `handle_failure(now)`, and sleeps until `poll_timeout()`. Time is a parameter, so the backoff
//! schedule is tested with a virtual clock. A job is never dropped for failing: a storage hiccup that lasts a week
//! still ends with every file archived (the delay stops growing at `RetryPolicy::max`).
//!
//! [`scan_spool`] lists the finished WAV files under the spool folder, and [`plan_recovery`] decides, from that
//! list and the database rows for the same keys, what start-up must do with each: upload it, forget it (already
//! archived), or register it first (a recording the database never heard of: the process died mid-call).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oncall_core::store::recording_uploads::StoredRecording;
use oncall_core::{OrgId, RecordingId};

use crate::storage::ObjectKey;

/// Exponential backoff with jitter: attempt `n` (1-based) waits `base * 2^(n-1)`, capped at `max`, then shortened by
/// up to `jitter` of itself so that many files failing together do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// 0.0 (none) ..= 1.0 (anywhere between 0 and the full delay).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(300), jitter: 0.2 }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based), for a uniform random `unit` in `0.0..1.0`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        full.mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0))
    }
}

/// One recording to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    pub org: OrgId,
    pub recording: RecordingId,
    pub key: ObjectKey,
    /// The spool file.
    pub path: PathBuf,
}

#[derive(Debug)]
struct Entry {
    job: UploadJob,
    attempts: u32,
    next_at: Instant,
    in_flight: bool,
}

/// Recordings waiting for upload, keyed by recording id (so a job enqueued twice is one job).
#[derive(Debug)]
pub struct UploadQueue {
    policy: RetryPolicy,
    max_in_flight: usize,
    entries: BTreeMap<RecordingId, Entry>,
    /// xorshift64 state for the jitter: deterministic for a given seed, which tests rely on.
    rng: u64,
}

impl UploadQueue {
    pub fn new(policy: RetryPolicy, max_in_flight: usize, seed: u64) -> UploadQueue {
        UploadQueue { policy, max_in_flight: max_in_flight.max(1), entries: BTreeMap::new(), rng: seed | 1 }
    }

    /// Adds a job due now; returns false if that recording is already queued.
    pub fn enqueue(&mut self, job: UploadJob, now: Instant) -> bool {
        if self.entries.contains_key(&job.recording) {
            return false;
        }
        self.entries.insert(job.recording, Entry { job, attempts: 0, next_at: now, in_flight: false });
        true
    }

    pub fn contains(&self, id: RecordingId) -> bool {
        self.entries.contains_key(&id)
    }

    /// The next job due at `now`, marked in flight; `None` if none is due or enough are in flight.
    pub fn poll_start(&mut self, now: Instant) -> Option<UploadJob> {
        if self.in_flight() >= self.max_in_flight {
            return None;
        }
        let entry = self
            .entries
            .values_mut()
            .filter(|e| !e.in_flight && e.next_at <= now)
            .min_by_key(|e| (e.next_at, e.job.recording))?;
        entry.in_flight = true;
        Some(entry.job.clone())
    }

    /// The job is done: it leaves the queue.
    pub fn handle_success(&mut self, id: RecordingId) {
        self.entries.remove(&id);
    }

    /// The job failed; it is retried after the backoff delay, which is returned.
    pub fn handle_failure(&mut self, id: RecordingId, now: Instant) -> Option<Duration> {
        let unit = self.next_unit();
        let entry = self.entries.get_mut(&id)?;
        entry.in_flight = false;
        entry.attempts += 1;
        let delay = self.policy.delay(entry.attempts, unit);
        entry.next_at = now + delay;
        Some(delay)
    }

    /// The job cannot ever succeed (its file is gone and the archive has no copy): it leaves the queue.
    pub fn handle_abandoned(&mut self, id: RecordingId) {
        self.entries.remove(&id);
    }

    /// When the next waiting job becomes due (`None` if nothing waits, or all are in flight).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries.values().filter(|e| !e.in_flight).map(|e| e.next_at).min()
    }

    pub fn attempts(&self, id: RecordingId) -> Option<u32> {
        self.entries.get(&id).map(|e| e.attempts)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.entries.values().filter(|e| e.in_flight).count()
    }

    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A finished recording found in the spool folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    pub key: ObjectKey,
    pub path: PathBuf,
}

/// Every `*.wav` under `root` whose relative path is a valid key (hidden and temporary files are skipped), in key
/// order. A missing folder is an empty spool.
pub fn scan_spool(root: &Path) -> std::io::Result<Vec<SpoolFile>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ty = entry.file_type()?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() && name.ends_with(".wav") {
                if let Ok(key) = ObjectKey::from_path(root, &entry.path()) {
                    out.push(SpoolFile { key, path: entry.path() });
                }
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// What start-up does with one spool file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryAction {
    /// The row exists and waits for its upload (or its archived copy must be checked and redone).
    Upload(UploadJob),
    /// The row says it is archived: delete the spool copy once the archive is seen to hold it.
    AlreadyArchived { org: OrgId, recording: RecordingId, file: SpoolFile },
    /// No row: the process died before the call ended. Register the recording, then upload it.
    Register(SpoolFile),
}

/// Decides what to do with each spool file given the database rows recorded at its key.
pub fn plan_recovery(files: Vec<SpoolFile>, rows_for: impl Fn(&ObjectKey) -> Vec<StoredRecording>) -> Vec<RecoveryAction> {
    files
        .into_iter()
        .map(|file| {
            let rows = rows_for(&file.key);
            // A pending row wins over an archived one (a re-recorded key is the newer state).
            if let Some(r) = rows.iter().find(|r| r.upload.is_none()) {
                return RecoveryAction::Upload(UploadJob { org: r.org, recording: r.id, key: file.key, path: file.path });
            }
            match rows.first() {
                Some(r) => RecoveryAction::AlreadyArchived { org: r.org, recording: r.id, file },
                None => RecoveryAction::Register(file),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::store::recording_uploads::UploadRecord;
    use oncall_core::{RecordingKind, Timestamp};

    fn job(id: i64) -> UploadJob {
        UploadJob {
            org: OrgId(1),
            recording: RecordingId(id),
            key: ObjectKey::new(format!("acme/2024/01/t{id}-message.wav")).unwrap(),
            path: PathBuf::from(format!("/spool/acme/2024/01/t{id}-message.wav")),
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_only_shortens() {
        let p = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.0 };
        let delays: Vec<u64> = (1..=9).map(|n| p.delay(n, 0.5).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay(1_000_000, 0.0), Duration::from_secs(60), "no overflow on huge attempt counts");
        let j = RetryPolicy { jitter: 0.5, ..p };
        assert_eq!(j.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(j.delay(3, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn retries_on_a_virtual_clock_until_success() {
        let t0 = Instant::now();
        let policy = RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(30), jitter: 0.25 };
        let mut q = UploadQueue::new(policy, 1, 42);
        assert!(q.enqueue(job(1), t0));
        assert!(!q.enqueue(job(1), t0), "a recording is queued once");

        // The server is down: every attempt fails; each retry comes exactly when the queue says, never earlier,
        // and the delays double up to the cap, shortened by at most 25% of jitter.
        let mut now = t0;
        for attempt in 1..=8u32 {
            let j = q.poll_start(now).expect("due");
            assert_eq!(j.recording, RecordingId(1));
            assert!(q.poll_start(now).is_none(), "in flight, not started twice");
            let d = q.handle_failure(RecordingId(1), now).unwrap();
            let full = policy.delay(attempt, 0.0);
            assert!(d <= full && d >= full.mul_f64(0.75), "attempt {attempt}: {d:?} vs {full:?}");
            let due = q.poll_timeout().unwrap();
            assert_eq!(due, now + d);
            assert!(q.poll_start(due - Duration::from_millis(1)).is_none(), "not before its time");
            now = due;
        }
        assert_eq!(q.attempts(RecordingId(1)), Some(8));
        assert!(now - t0 < Duration::from_secs(2 + 4 + 8 + 16 + 30 * 4 + 1));

        // The server is back.
        let j = q.poll_start(now).unwrap();
        q.handle_success(j.recording);
        assert!(q.is_empty() && q.poll_timeout().is_none());
    }

    #[test]
    fn limits_jobs_in_flight() {
        let t0 = Instant::now();
        let mut q = UploadQueue::new(RetryPolicy::default(), 2, 1);
        for id in 1..=3 {
            q.enqueue(job(id), t0);
        }
        let a = q.poll_start(t0).unwrap();
        let b = q.poll_start(t0).unwrap();
        assert_eq!((a.recording, b.recording), (RecordingId(1), RecordingId(2)));
        assert!(q.poll_start(t0).is_none());
        q.handle_success(a.recording);
        assert_eq!(q.poll_start(t0).unwrap().recording, RecordingId(3));
        q.handle_abandoned(b.recording);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn same_seed_same_schedule() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut q = UploadQueue::new(RetryPolicy::default(), 4, seed);
            q.enqueue(job(7), t0);
            (0..5).map(|_| {
                q.poll_start(t0 + Duration::from_secs(10_000));
                q.handle_failure(RecordingId(7), t0).unwrap()
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    fn row(id: i64, key: &str, uploaded: bool) -> StoredRecording {
        StoredRecording {
            id: RecordingId(id),
            org: OrgId(3),
            request: None,
            kind: RecordingKind::Message,
            storage_key: key.into(),
            duration_ms: 1000,
            peak: 0.5,
            rms: 0.1,
            created_at: Timestamp(0),
            upload: uploaded.then(|| UploadRecord {
                object_key: key.into(),
                sha256: "00".into(),
                size_bytes: 44,
                uploaded_at: Timestamp(1),
            }),
        }
    }

    #[test]
    fn recovery_from_a_spool_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let month = root.join("acme/2024/06");
        std::fs::create_dir_all(&month).unwrap();
        for name in ["a-message.wav", "b-message.wav", "c-message.wav", ".d-message.wav.1.part", "notes.txt", "bad name.wav"] {
            std::fs::write(month.join(name), b"RIFF").unwrap();
        }
        let files = scan_spool(root).unwrap();
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["acme/2024/06/a-message.wav", "acme/2024/06/b-message.wav", "acme/2024/06/c-message.wav"]);
        assert!(scan_spool(&root.join("missing")).unwrap().is_empty());

        let plan = plan_recovery(files, |k| match k.as_str() {
            "acme/2024/06/a-message.wav" => vec![row(1, k.as_str(), false)],
            "acme/2024/06/b-message.wav" => vec![row(2, k.as_str(), true)],
            _ => vec![],
        });
        assert!(matches!(&plan[0], RecoveryAction::Upload(j) if j.recording == RecordingId(1) && j.org == OrgId(3)));
        assert!(matches!(&plan[1], RecoveryAction::AlreadyArchived { recording: RecordingId(2), .. }));
        assert!(matches!(&plan[2], RecoveryAction::Register(f) if f.key.as_str() == "acme/2024/06/c-message.wav"));
    }
}
