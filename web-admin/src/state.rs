//! Shared state of every handler: the store, the settings, where recordings live and the
//! login limiter. Cheap to clone (everything behind `Arc`).

use crate::config::WebConfig;
use crate::pages::operator::OrgFiles;
use crate::rate_limit::LoginLimiter;
use crate::recording_source::RecordingSource;
use oncall_core::Store;
use std::sync::Arc;

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
