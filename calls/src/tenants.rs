//! What the call side holds per organization (issue 17): its slug (the recordings prefix), its IVR
//! menu and prompts, and its business hours. A call routed to an organization by its number
//! ([`crate::numbers`]) is answered with that organization's copy, never another's.
//!
//! The settings watch keeps the map fresh: it re-reads the list of organizations, adds a copy for
//! one created since (`oncall org add` on a running server serves its numbers within one reload),
//! and refreshes every copy's IVR and hours. Every organization starts from the config file's
//! `[ivr]` and the built-in prompts until its managers save their own; the binary writes the config
//! file's `[business_hours]` for the first organization alone, before the first reload.

use crate::ivr_settings::{IvrSource, IvrWatch};
use crate::opening_hours::{HoursSource, HoursWatch};
use crate::settings_watch::Watched;
use oncall_core::{OrgId, Store};
use oncall_ivr::IvrConfig;
use oncall_recordings::PromptLibrary;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

/// One organization as the call side sees it.
#[derive(Clone)]
pub struct Tenant {
    pub org: OrgId,
    pub slug: String,
    /// Its calls in progress at once (the operator's `oncall org set --max-calls`); `None`: no own limit.
    pub max_calls: Option<u32>,
    pub ivr: IvrSource,
    pub hours: HoursSource,
}

/// Every organization's copy, by id.
#[derive(Clone, Default)]
pub struct Tenants {
    map: Arc<RwLock<HashMap<OrgId, Tenant>>>,
}

impl Tenants {
    fn insert(&self, t: Tenant) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).insert(t.org, t);
    }

    /// The organization's copy, when the watch has read it.
    pub fn get(&self, org: OrgId) -> Option<Tenant> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).get(&org).cloned()
    }

    /// The copy the settings watch keeps fresh; the map is empty until its first reload.
    pub fn watched(&self, file_ivr: IvrConfig, data_dir: PathBuf, prompts: PromptLibrary) -> TenantsWatch {
        TenantsWatch { tenants: self.clone(), file_ivr, data_dir, prompts, watches: HashMap::new() }
    }
}

pub struct TenantsWatch {
    tenants: Tenants,
    file_ivr: IvrConfig,
    data_dir: PathBuf,
    prompts: PromptLibrary,
    watches: HashMap<OrgId, (IvrWatch, HoursWatch)>,
}

impl TenantsWatch {
    /// Adds a copy for each organization the map lacks (the config file's menu and the built-in
    /// prompts until its managers save their own, and no business hours until they set them), and
    /// takes the operator's limits of the others.
    fn add_new(&mut self, orgs: Vec<oncall_core::store::Organization>) {
        for org in orgs {
            if self.watches.contains_key(&org.id) {
                if let Some(t) = self.tenants.map.write().unwrap_or_else(|p| p.into_inner()).get_mut(&org.id) {
                    t.max_calls = org.limits.max_calls;
                }
                continue;
            }
            let ivr = IvrSource::new(self.file_ivr.clone(), self.prompts.clone());
            let hours = HoursSource::default();
            let w = (ivr.watched(org.id, self.file_ivr.clone(), self.data_dir.clone(), self.prompts.clone()), hours.watched(org.id));
            tracing::info!(organization = %org.slug, "organization served by the call side");
            self.tenants.insert(Tenant { org: org.id, slug: org.slug, max_calls: org.limits.max_calls, ivr, hours });
            self.watches.insert(org.id, w);
        }
    }
}

impl Watched for TenantsWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match store.list_organizations().await {
                Ok(orgs) => self.add_new(orgs),
                Err(e) => tracing::warn!(error = %e, "cannot re-read the organizations; serving the ones already known"),
            }
            for (ivr, hours) in self.watches.values_mut() {
                ivr.reload(store).await;
                hours.reload(store).await;
            }
        })
    }
}
