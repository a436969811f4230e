//! Which IVR menu and prompts a new call gets: the config file's `[ivr]`, unless the organization's
//! managers saved a menu or uploaded a greeting on the web site. The settings watch re-reads the
//! organization's settings every few seconds, so web changes reach the next call without a restart.

use crate::settings_watch::Watched;
use oncall_core::{OrgId, Store, Timestamp};
use oncall_ivr::IvrConfig;
use oncall_recordings::PromptLibrary;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::future::Future;
use std::pin::Pin;

/// The prompt name an uploaded greeting is registered under.
const ORG_GREETING: &str = "org_greeting";

#[derive(Clone)]
pub struct IvrSource {
    current: Arc<RwLock<(Arc<IvrConfig>, Arc<PromptLibrary>)>>,
}

impl IvrSource {
    pub fn new(ivr: IvrConfig, prompts: PromptLibrary) -> Self {
        IvrSource { current: Arc::new(RwLock::new((Arc::new(ivr), Arc::new(prompts)))) }
    }

    /// The menu and prompts for a call starting now.
    pub fn get(&self) -> (Arc<IvrConfig>, Arc<PromptLibrary>) {
        let g = self.current.read().unwrap_or_else(|p| p.into_inner());
        (g.0.clone(), g.1.clone())
    }

    fn set(&self, ivr: IvrConfig, prompts: PromptLibrary) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(ivr), Arc::new(prompts));
    }

    /// The copy the settings watch keeps fresh from the organization's saved settings.
    pub fn watched(&self, org: OrgId, file_ivr: IvrConfig, data_dir: PathBuf, base_prompts: PromptLibrary) -> IvrWatch {
        IvrWatch { target: self.clone(), org, file_ivr, data_dir, base_prompts, seen: None }
    }
}

/// Re-reads the organization's IVR settings; applies them when their stamp changed.
pub struct IvrWatch {
    target: IvrSource,
    org: OrgId,
    file_ivr: IvrConfig,
    data_dir: PathBuf,
    base_prompts: PromptLibrary,
    seen: Option<Timestamp>,
}

impl Watched for IvrWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match store.ivr_settings(self.org).await {
                Ok(Some(s)) if self.seen != Some(s.updated_at) => {
                    self.seen = Some(s.updated_at);
                    match load(&s.menu_json, s.greeting_key.as_deref(), &self.data_dir, &self.file_ivr, &self.base_prompts) {
                        Ok((ivr, prompts)) => {
                            tracing::info!(updated_at = %s.updated_at.to_utc(), "IVR settings from the web site applied");
                            self.target.set(ivr, prompts);
                        }
                        Err(e) => tracing::error!(error = %e, "IVR settings saved on the web site are unusable; keeping the previous menu"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read IVR settings"),
            }
        })
    }
}

/// Builds the menu and prompt set from an organization's saved settings.
fn load(menu_json: &str, greeting_key: Option<&str>, data_dir: &std::path::Path, file_ivr: &IvrConfig, base: &PromptLibrary) -> Result<(IvrConfig, PromptLibrary), String> {
    let mut ivr = if menu_json.trim().is_empty() { file_ivr.clone() } else { oncall_ivr::menu_json::from_json(menu_json).map_err(|e| e.to_string())? };
    let mut prompts = base.clone();
    if let Some(key) = greeting_key {
        let samples = oncall_recordings::decode_to_8k_mono(data_dir.join(key)).map_err(|e| format!("greeting {key}: {e}"))?;
        prompts.insert(ORG_GREETING, samples);
        ivr.greeting = ORG_GREETING.into();
    }
    // The same check the web makes before it says "Saved." (issue 18 item 7).
    ivr.check(|n| prompts.get(n).is_some()).map_err(|e| e.to_string())?;
    Ok((ivr, prompts))
}
