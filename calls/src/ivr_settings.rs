//! Which IVR menu and prompts a new call gets: the config file's `[ivr]`, unless the organization's
//! managers saved a menu or uploaded a greeting on the web site. A background task re-reads the
//! organization's settings every few seconds, so web changes reach the next call without a restart.

use oncall_core::{OrgId, Store};
use oncall_ivr::IvrConfig;
use oncall_recordings::PromptLibrary;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The prompt name an uploaded greeting is registered under.
const ORG_GREETING: &str = "org_greeting";
const RELOAD_EVERY: Duration = Duration::from_secs(5);

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

    /// Follows the organization's saved settings until the process ends.
    pub fn spawn_reload(&self, store: Store, org: OrgId, file_ivr: IvrConfig, data_dir: PathBuf, base_prompts: PromptLibrary) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                match store.ivr_settings(org).await {
                    Ok(Some(s)) if seen != Some(s.updated_at) => {
                        seen = Some(s.updated_at);
                        match load(&s.menu_json, s.greeting_key.as_deref(), &data_dir, &file_ivr, &base_prompts) {
                            Ok((ivr, prompts)) => {
                                tracing::info!(updated_at = %s.updated_at.to_utc(), "IVR settings from the web site applied");
                                this.set(ivr, prompts);
                            }
                            Err(e) => tracing::error!(error = %e, "IVR settings saved on the web site are unusable; keeping the previous menu"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read IVR settings"),
                }
                tokio::time::sleep(RELOAD_EVERY).await;
            }
        });
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
    if let Some(missing) = ivr.prompt_names().into_iter().find(|n| prompts.get(n).is_none()) {
        return Err(format!("the menu plays prompt {missing:?}, which has no audio file"));
    }
    Ok((ivr, prompts))
}
