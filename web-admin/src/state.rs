//! Shared state of every handler: the store, the settings, where recordings live and the
//! login limiter. Cheap to clone (everything behind `Arc`).

use crate::config::WebConfig;
use crate::rate_limit::LoginLimiter;
use crate::recording_source::RecordingSource;
use oncall_core::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What deleting an organization needs beyond its rows (the operator area): its recording files and archived
/// objects, filed under its slug (the binary knows the recordings folder and the archive).
pub trait OrgFiles: Send + Sync + 'static {
    /// Removes them; how many files or objects went.
    fn remove_recordings(&self, slug: String) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + '_>>;
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<WebConfig>,
    pub recordings: Arc<dyn RecordingSource>,
    pub login_limiter: Arc<LoginLimiter>,
    /// Removes a deleted organization's recordings (the operator area); `None`: none to remove.
    pub org_files: Option<Arc<dyn OrgFiles>>,
}

impl AppState {
    pub fn new(store: Store, config: WebConfig, recordings: Arc<dyn RecordingSource>) -> AppState {
        // The limiter's failures live in the store, so every instance on this database shares them.
        let login_limiter = Arc::new(LoginLimiter::new(store.clone(), config.login_policy));
        AppState { store, config: Arc::new(config), recordings, login_limiter, org_files: None }
    }

    /// With the recordings remover the operator's "delete organization" uses.
    pub fn with_org_files(mut self, files: Arc<dyn OrgFiles>) -> AppState {
        self.org_files = Some(files);
        self
    }
}
