//! `/metrics` families read from the database and the disk (issue 24 item 5): requests by status, notifications by
//! channel and outcome, time to acknowledge, and the free space of the data folder. A scrape must not wait on the
//! database, so a task refreshes them every 15 s and the scrape writes the last snapshot.

use oncall_core::prometheus_text::{Kind, PrometheusText};
use oncall_core::store::transcriptions::TranscriptionCounts;
use oncall_core::store::PagingTotals;
use oncall_core::Store;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub struct StoreGauges {
    data_dir: PathBuf,
    totals: Mutex<Option<PagingTotals>>,
    transcriptions: Mutex<Option<TranscriptionCounts>>,
}

impl StoreGauges {
    pub fn new(data_dir: PathBuf) -> StoreGauges {
        StoreGauges { data_dir, totals: Mutex::new(None), transcriptions: Mutex::new(None) }
    }

    /// Reads the store once. Called before the server listens, so the first scrape already has these families.
    pub async fn refresh(&self, store: &Store) {
        match store.paging_totals().await {
            Ok(t) => *self.totals.lock().unwrap_or_else(|e| e.into_inner()) = Some(t),
            Err(e) => tracing::warn!(error = %e, "cannot read request totals for /metrics"),
        }
        match store.transcription_counts().await {
            Ok(c) => *self.transcriptions.lock().unwrap_or_else(|e| e.into_inner()) = Some(c),
            Err(e) => tracing::warn!(error = %e, "cannot read transcription counts for /metrics"),
        }
    }

    /// Refreshes the snapshot every 15 s until `stop` turns true.
    pub async fn run(self: std::sync::Arc<Self>, store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = stop.changed() => return,
            }
            self.refresh(&store).await;
        }
    }

    pub fn write(&self, out: &mut PrometheusText) {
        if let Some((free, size)) = disk_space(&self.data_dir) {
            out.family("oncall_data_dir_free_bytes", Kind::Gauge, "Free space for OnCall on the data folder's file system.").sample(&[], free);
            out.family("oncall_data_dir_size_bytes", Kind::Gauge, "Size of the data folder's file system.").sample(&[], size);
        }
        if let Some(c) = *self.transcriptions.lock().unwrap_or_else(|e| e.into_inner()) {
            let mut f = out.family("oncall_transcriptions", Kind::Gauge, "Recordings' transcription jobs by status (pending: queued or being retried).");
            for (status, n) in [("pending", c.pending), ("done", c.done), ("empty", c.empty), ("failed", c.failed)] {
                f.sample(&[("status", status)], n);
            }
        }
        let Some(t) = self.totals.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let mut f = out.family("oncall_requests", Kind::Gauge, "Requests in the database by organization and status.");
        for (org, status, n) in &t.requests {
            f.sample(&[("org", org), ("status", status)], *n);
        }
        let mut f = out.family("oncall_notifications", Kind::Gauge, "Notifications sent (pages by call, texts), by organization, channel and outcome.");
        for (org, channel, status, n) in &t.notifications {
            f.sample(&[("org", org), ("channel", channel), ("status", status)], *n);
        }
        let mut f = out.family("oncall_request_acknowledge_seconds", Kind::Summary, "Time from a request's arrival to its acknowledgement.");
        for (org, n, secs) in &t.acknowledged {
            f.summary(&[("org", org)], &[], Some(*secs), *n);
        }
    }
}

/// (bytes available to an unprivileged user, file system size) of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass; `path` is a NUL-terminated string that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    Some((st.f_bavail as u64 * block, st.f_blocks as u64 * block))
}
