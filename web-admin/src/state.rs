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
    /// Starts paging a request opened here (`POST /api/v1/requests`); `None`: paging is off.
    pub pager: Option<Arc<dyn crate::alerts::AlertPager>>,
    /// The tabs where people take pages (`/phone/ws`); `None`: the calls side is off.
    pub browsers: Option<oncall_core::browser_desk::BrowserDesk>,
}

/// What the binary hands the web app beyond the store and settings.
#[derive(Default, Clone)]
pub struct Hooks {
    pub org_files: Option<Arc<dyn OrgFiles>>,
    pub pager: Option<Arc<dyn crate::alerts::AlertPager>>,
    pub browsers: Option<oncall_core::browser_desk::BrowserDesk>,
}

impl AppState {
    pub fn new(store: Store, config: WebConfig, recordings: Arc<dyn RecordingSource>) -> AppState {
        // The limiter's failures live in the store, so every instance on this database shares them.
        let login_limiter = Arc::new(LoginLimiter::new(store.clone(), config.login_policy));
        AppState { store, config: Arc::new(config), recordings, login_limiter, org_files: None, pager: None, browsers: None }
    }

    /// With the binary's hooks: the recordings remover the operator's "delete organization" uses, the pager.
    pub fn with_hooks(mut self, hooks: Hooks) -> AppState {
        self.org_files = hooks.org_files;
        self.pager = hooks.pager;
        self.browsers = hooks.browsers;
        self
    }
}
